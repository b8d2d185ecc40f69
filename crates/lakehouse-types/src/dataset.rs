//! Dataset (catalog, ingest, SQL) types. Filled by the datasets work.
