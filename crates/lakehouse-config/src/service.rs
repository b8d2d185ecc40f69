//! The services and their default ports.

/// A Lakehouse service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ServiceName {
    /// The entry point: routing, auth, request ids, metrics.
    Gateway,
    /// Object I/O.
    Storaged,
    /// Dataset registry.
    Catalogd,
    /// CSV / NDJSON / Parquet → tables.
    Ingestd,
    /// Read-only SQL.
    Queryd,
    /// Vector indexes.
    Vectord,
    /// Text → vectors.
    Embedd,
    /// Matrix search.
    Matrixd,
}

impl ServiceName {
    /// Every service.
    pub const ALL: &'static [ServiceName] = &[
        ServiceName::Gateway,
        ServiceName::Storaged,
        ServiceName::Catalogd,
        ServiceName::Ingestd,
        ServiceName::Queryd,
        ServiceName::Vectord,
        ServiceName::Embedd,
        ServiceName::Matrixd,
    ];

    /// The service's name as written in config and `--only`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Gateway => "gateway",
            ServiceName::Storaged => "storaged",
            ServiceName::Catalogd => "catalogd",
            ServiceName::Ingestd => "ingestd",
            ServiceName::Queryd => "queryd",
            ServiceName::Vectord => "vectord",
            ServiceName::Embedd => "embedd",
            ServiceName::Matrixd => "matrixd",
        }
    }

    /// Parses a name as written in config.
    pub fn parse(name: &str) -> Option<ServiceName> {
        ServiceName::ALL
            .iter()
            .copied()
            .find(|s| s.as_str() == name)
    }

    /// The port the service listens on when run alone.
    pub fn default_port(self) -> u16 {
        match self {
            ServiceName::Gateway => 3110,
            ServiceName::Storaged => 3211,
            ServiceName::Catalogd => 3212,
            ServiceName::Ingestd => 3213,
            ServiceName::Queryd => 3214,
            ServiceName::Vectord => 3215,
            ServiceName::Embedd => 3216,
            ServiceName::Matrixd => 3217,
        }
    }
}

impl std::fmt::Display for ServiceName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
