//! What a service reports to `/metrics` of the counters and gauges it keeps itself ([`Reports`]), read at
//! each scrape. The HTTP layer exports them under its prefix; the composition root only registers them.

/// A service that keeps counters of its own (a cache's hits, compactions made, ...).
pub trait Reports: Send + Sync {
    /// Its readings now.
    fn readings(&self) -> Vec<Reading>;
}

/// One value read from a service at scrape time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    /// Metric name, without the `lakehouse_` prefix (and, for counters, without `_total`).
    pub name: &'static str,
    /// The `# HELP` text.
    pub help: &'static str,
    /// The value.
    pub value: ReadingValue,
    /// Labels of this sample (readings of one name follow each other, one per label set).
    pub labels: Vec<(&'static str, String)>,
}

/// A reading's type and value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadingValue {
    /// Only ever grows (resets with the process).
    Counter(u64),
    /// Goes up and down.
    Gauge(i64),
}

impl Reading {
    /// A counter reading.
    pub fn counter(name: &'static str, help: &'static str, value: u64) -> Self {
        Reading {
            name,
            help,
            value: ReadingValue::Counter(value),
            labels: Vec::new(),
        }
    }

    /// A gauge reading.
    pub fn gauge(name: &'static str, help: &'static str, value: u64) -> Self {
        Reading {
            name,
            help,
            value: ReadingValue::Gauge(i64::try_from(value).unwrap_or(i64::MAX)),
            labels: Vec::new(),
        }
    }

    /// The reading with one more label (`dataset="workers"`, say).
    pub fn label(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((key, value.into()));
        self
    }
}
