//! What catalogd reports to `/metrics`: its compactions and vacuums, and the data files of each table
//! read since start.

use lakehouse_api::{Reading, Reports};

use crate::Catalog;

impl Reports for Catalog {
    fn readings(&self) -> Vec<Reading> {
        let mut readings = self.upkeep_readings();
        readings.extend(self.file_readings());
        readings
    }
}

impl Catalog {
    /// Compactions and vacuums made.
    fn upkeep_readings(&self) -> Vec<Reading> {
        use std::sync::atomic::Ordering::Relaxed;
        let s = self.maintenance_stats();
        vec![
            Reading::counter(
                "catalog_compactions",
                "Compaction commits made (small data files rewritten into large ones)",
                s.compactions.load(Relaxed),
            ),
            Reading::counter(
                "catalog_compaction_files_removed",
                "Data files compactions removed from their tables",
                s.files_removed.load(Relaxed),
            ),
            Reading::counter(
                "catalog_compaction_files_added",
                "Data files compactions wrote",
                s.files_added.load(Relaxed),
            ),
            Reading::counter(
                "catalog_compaction_bytes_removed",
                "Bytes of the data files compactions removed from their tables",
                s.bytes_removed.load(Relaxed),
            ),
            Reading::counter(
                "catalog_compaction_failures",
                "Compaction runs that failed or gave way to another writer",
                s.failures.load(Relaxed),
            ),
            Reading::gauge(
                "catalog_last_compaction_timestamp_seconds",
                "When the last compaction committed (seconds since the epoch; 0: never)",
                s.last_compaction_unix.load(Relaxed),
            ),
            Reading::counter(
                "catalog_vacuums",
                "Vacuums that removed files no kept version needed",
                s.vacuums.load(Relaxed),
            ),
            Reading::counter(
                "catalog_vacuum_files_removed",
                "Data files vacuums removed from storage",
                s.files_vacuumed.load(Relaxed),
            ),
            Reading::counter(
                "catalog_vacuum_bytes_reclaimed",
                "Bytes vacuums reclaimed on storage",
                s.bytes_reclaimed.load(Relaxed),
            ),
            Reading::counter(
                "catalog_vacuum_log_files_removed",
                "Log entries removed from before the oldest kept versions",
                s.log_files_removed.load(Relaxed),
            ),
            Reading::gauge(
                "catalog_last_vacuum_timestamp_seconds",
                "When the last vacuum ran (seconds since the epoch; 0: never)",
                s.last_vacuum_unix.load(Relaxed),
            ),
        ]
    }

    /// Data files, and small ones, of each table's current version.
    fn file_readings(&self) -> Vec<Reading> {
        let small = self.maintenance_config().compact_small_bytes;
        let counts = self.tables().kept_file_counts(small);
        let mut readings = Vec::with_capacity(counts.len() * 2);
        for (name, files, _) in &counts {
            readings.push(
                Reading::gauge(
                    "table_files",
                    "Data files of each table's current version (tables read since start)",
                    *files as u64,
                )
                .label("dataset", name.clone()),
            );
        }
        for (name, _, small) in counts {
            readings.push(
                Reading::gauge(
                    "table_small_files",
                    "Data files under [datasets] compact_small_bytes in each table's current version",
                    small as u64,
                )
                .label("dataset", name),
            );
        }
        readings
    }
}
