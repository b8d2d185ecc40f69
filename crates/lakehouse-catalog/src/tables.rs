//! Delta tables on the shared object store: open (at a version), list, write a stream of batches, delete.
//!
//! Tables live under `datasets/<name>/` of the store the storage service uses. deltalake is handed that
//! store with [`DeltaTableBuilder::with_storage_backend`] and a `memory:///datasets/<name>` URL: once a
//! backend is supplied, deltalake reads the URL only for its path (the prefix inside the store) and its scheme
//! (which picks the default log store, whose commits are conditional `PutMode::Create` puts — what both a
//! local directory and an S3-compatible store with conditional writes honour). The same store is registered
//! with DataFusion under `memory:///`, the root URL of every table.

use std::collections::{HashMap, HashSet};
use std::num::NonZeroU64;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use deltalake::delta_datafusion::DeltaSessionContext;
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties};
use deltalake::kernel::{Action, MetadataExt, StructType};
use deltalake::operations::create::CreateBuilder;
use deltalake::operations::write::{SchemaMode, WriteBuilder};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};
use futures::{StreamExt, TryStreamExt};
use lakehouse_types::dataset::{ColumnInfo, WriteMode};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use url::Url;

use crate::datafiles::{self, writer_properties};
pub use crate::datafiles::{ROW_GROUP_ROWS, TARGET_FILE_SIZE};
use crate::names::validate_name;
use crate::schema::{Reconciled, columns_of, reconcile, summarize};
use crate::{Error, Result};

mod compact;
mod current;
mod retention;
#[cfg(test)]
mod testing;
mod vacuum;
pub use compact::CompactPolicy;
use current::Opened;
pub(crate) use current::commit_path;
pub use retention::Retention;
pub use vacuum::VacuumPolicy;

/// A checkpoint is written after every this many commits, so that reading a table's current version
/// costs one checkpoint and fewer commits than this, whatever its age (deltalake's own default).
pub const CHECKPOINT_INTERVAL: u64 = 100;

/// The session a write is planned in: deltalake's own, without the round-robin repartitioning that would
/// spread the input's batches over several streams into the one writer and so shuffle the rows of a table
/// away from the order they arrived in.
fn write_session() -> Result<Arc<dyn datafusion::catalog::Session>> {
    let overrides = HashMap::from([(
        "datafusion.optimizer.enable_round_robin_repartition".to_owned(),
        "false".to_owned(),
    )]);
    let context = DeltaSessionContext::new_with_session_overrides(&overrides)?;
    Ok(Arc::new(context.state()))
}

/// The prefix every table lives under.
pub const DATASETS_PREFIX: &str = "datasets";

/// The URL of the store's root as deltalake and DataFusion see it.
pub fn root_url() -> Url {
    // A constant that parses; kept in one place.
    Url::parse("memory:///").unwrap_or_else(|_| unreachable!("constant URL"))
}

/// The tables of one object store.
#[derive(Debug, Clone)]
pub struct Tables {
    store: Arc<dyn ObjectStore>,
    /// Tables opened by [`Tables::open_current`], kept to be brought up to date rather than read afresh.
    current: Arc<std::sync::Mutex<HashMap<String, Opened>>>,
    /// One lock per table name, held while a kept table is brought up to date.
    updating: Arc<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// How long versions stay time-travel targets.
    retention: Arc<Retention>,
}

/// What to write: a stream of batches into a table as one new version.
pub struct WriteArgs {
    /// Dataset name.
    pub name: String,
    /// The table as loaded before the write; `None` creates it.
    pub table: Option<DeltaTable>,
    /// Create, append or overwrite.
    pub mode: WriteMode,
    /// Whether new columns may be merged into the table's schema on append.
    pub merge_schema: bool,
    /// The batches (their schema already reconciled with the table's).
    pub batches: SendableRecordBatchStream,
    /// Recorded in the commit's info (`lakehouse` key): idempotency key, source format.
    pub metadata: serde_json::Value,
    /// Columns written without dictionary encoding, because their values rarely repeat.
    pub plain_columns: Vec<String>,
}

impl std::fmt::Debug for WriteArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteArgs")
            .field("name", &self.name)
            .field(
                "version",
                &self.table.as_ref().and_then(DeltaTable::version),
            )
            .field("mode", &self.mode)
            .field("merge_schema", &self.merge_schema)
            .field("plain_columns", &self.plain_columns)
            .finish_non_exhaustive()
    }
}

/// The version a write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// The new version.
    pub version: u64,
    /// Rows written.
    pub rows: u64,
    /// Bytes of data files written.
    pub bytes: u64,
    /// The table's schema after the write.
    pub schema: Vec<ColumnInfo>,
}

impl Tables {
    /// Tables in `store` (rooted at the data root).
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Tables {
            store: Arc::new(crate::ordered::OrderedList::new(store)),
            current: Arc::default(),
            updating: Arc::default(),
            retention: Arc::default(),
        }
    }

    /// The same tables, keeping versions as `retention` says (7 days otherwise).
    pub fn with_retention(mut self, retention: Retention) -> Self {
        self.retention = Arc::new(retention);
        self
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The store path of a table's root.
    pub fn table_path(name: &str) -> Path {
        Path::from(format!("{DATASETS_PREFIX}/{name}"))
    }

    fn builder(&self, name: &str) -> Result<DeltaTableBuilder> {
        validate_name(name)?;
        let url = root_url()
            .join(&format!("{DATASETS_PREFIX}/{name}"))
            .map_err(|e| Error::InvalidName {
                name: name.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(DeltaTableBuilder::from_url(url.clone())?.with_storage_backend(self.store.clone(), url))
    }

    /// An unloaded handle on a table (for creating it).
    pub fn handle(&self, name: &str) -> Result<DeltaTable> {
        Ok(self.builder(name)?.build()?)
    }

    /// Whether a table has a transaction log.
    ///
    /// A log starts with commit 0, and a log whose first commits were cleaned up keeps `_last_checkpoint`,
    /// so a HEAD answers for nearly every table. The log is listed only when both are missing: on a local
    /// disk a listing stats every commit (a listing of tables took 15 ms once one had 700 commits) and on
    /// S3 it is a page of up to 1,000 keys.
    pub async fn exists(&self, name: &str) -> Result<bool> {
        validate_name(name)?;
        let log = format!("{DATASETS_PREFIX}/{name}/_delta_log");
        for marker in [
            commit_path(name, 0),
            Path::from(format!("{log}/_last_checkpoint")),
        ] {
            match self.store.head(&marker).await {
                Ok(_) => return Ok(true),
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let first = self.store.list(Some(&Path::from(log))).next().await;
        match first {
            None => Ok(false),
            Some(Ok(_)) => Ok(true),
            Some(Err(object_store::Error::NotFound { .. })) => Ok(false),
            Some(Err(e)) => Err(e.into()),
        }
    }

    /// The table at its latest version, or at `version`.
    pub async fn open(&self, name: &str, version: Option<u64>) -> Result<DeltaTable> {
        let builder = self.builder(name)?;
        // The Delta kernel logs an ERROR for a table without a log before answering "not a table"; a
        // missing dataset is an ordinary answer (every first ingest asks), so it is found out first.
        if !self.exists(name).await? {
            return Err(Error::NotFound(name.to_owned()));
        }
        let builder = match version {
            Some(v) => {
                self.check_retained(name, v).await?;
                builder.with_version(v)
            }
            None => builder,
        };
        match builder.load().await {
            Ok(table) => Ok(table),
            Err(DeltaTableError::NotATable(_)) if version.is_none() => {
                Err(Error::NotFound(name.to_owned()))
            }
            Err(e) => {
                let Some(requested) = version else {
                    return Err(e.into());
                };
                // A version past the end (or before a checkpointed start) is the caller's mistake.
                let latest = Box::pin(self.open(name, None)).await?;
                let current = latest.version().unwrap_or(0) as u64;
                if requested > current {
                    return Err(Error::VersionNotFound {
                        name: name.to_owned(),
                        version: requested,
                        current,
                    });
                }
                // Its commits cleaned from the log, once past the retention.
                let expired = self.expired(name, requested, Some(current)).await;
                if matches!(expired, Error::VersionExpired { oldest, .. } if requested < oldest) {
                    Err(expired)
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// The table at its latest version, when it exists (read like [`Tables::open_current`]).
    pub async fn open_if_exists(&self, name: &str) -> Result<Option<DeltaTable>> {
        match self.open_current(name).await {
            Ok(t) => Ok(Some(t)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Directories under `datasets/` with a valid dataset name, sorted: one listing, however many datasets
    /// there are. A directory left without a transaction log (a deletion cut short) is among them; opening
    /// it finds no table.
    pub async fn directory_names(&self) -> Result<Vec<String>> {
        let listing = self
            .store
            .list_with_delimiter(Some(&Path::from(DATASETS_PREFIX)))
            .await?;
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Names of every table (directories under `datasets/` with a transaction log), sorted.
    pub async fn names(&self) -> Result<Vec<String>> {
        let candidates = self.directory_names().await?;
        let checks = futures::stream::iter(candidates)
            .map(|n| async move { self.exists(&n).await.map(|e| e.then_some(n)) })
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await?;
        let mut names: Vec<String> = checks.into_iter().flatten().collect();
        names.sort();
        Ok(names)
    }

    /// Deletes every object of a table.
    pub async fn delete(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        if !self.exists(name).await? {
            return Err(Error::NotFound(name.to_owned()));
        }
        let prefix = Path::from(format!("{DATASETS_PREFIX}/{name}"));
        let locations = self
            .store
            .list(Some(&prefix))
            .map_ok(|m| m.location)
            .boxed();
        self.store
            .delete_stream(locations)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(())
    }

    /// Loads the table a write goes to and reconciles the incoming schema with it: `mode=create` on an existing
    /// table is [`Error::AlreadyExists`]; an append whose schema differs is [`Error::SchemaDrift`].
    pub async fn prepare(
        &self,
        name: &str,
        mode: WriteMode,
        add_columns: bool,
        incoming: &Schema,
    ) -> Result<(Option<DeltaTable>, Reconciled)> {
        let table = self.open_if_exists(name).await?;
        let reconciled = match (&table, mode) {
            (Some(_), WriteMode::Create) => return Err(Error::AlreadyExists(name.to_owned())),
            (Some(t), WriteMode::Append) => {
                let current = t.snapshot()?.snapshot().arrow_schema();
                reconcile(&current, incoming, add_columns).map_err(|diff| Error::SchemaDrift {
                    dataset: name.to_owned(),
                    summary: summarize(&diff),
                    diff,
                })?
            }
            (None, _) | (Some(_), WriteMode::Overwrite) => Reconciled::identity(incoming),
        };
        Ok((table, reconciled))
    }

    /// Writes a stream of batches as one new version: nothing is committed unless the whole stream was read
    /// and written (a failed write may leave unreferenced files, which readers never see).
    pub async fn write(&self, args: WriteArgs) -> Result<WriteOutcome> {
        let as_created = args.table.as_ref().is_none_or(written_as_created);
        if as_created && datafiles::handles(&args.batches.schema()) {
            return self.write_files(args).await;
        }
        let WriteArgs {
            name,
            table,
            mode,
            merge_schema,
            batches,
            metadata,
            plain_columns,
        } = args;
        let before: HashSet<String> = match &table {
            Some(t) => t
                .snapshot()?
                .log_data()
                .into_iter()
                .map(|f| f.path().into_owned())
                .collect(),
            None => HashSet::new(),
        };
        let (log_store, snapshot) = match &table {
            Some(t) => (t.log_store(), Some(t.snapshot()?.snapshot().clone())),
            None => (self.handle(&name)?.log_store(), None),
        };
        let rows = Arc::new(AtomicU64::new(0));
        let schema = batches.schema();
        let counted = {
            let rows = rows.clone();
            batches.inspect_ok(move |b| {
                rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
            })
        };
        let source = OneShotStream::new(Box::pin(RecordBatchStreamAdapter::new(
            schema.clone(),
            counted,
        )));
        let provider = StreamingTable::try_new(schema, vec![Arc::new(source)])?;
        let plan = LogicalPlanBuilder::scan("input", provider_as_source(Arc::new(provider)), None)?
            .build()?;

        let (save_mode, schema_mode) = match (mode, table.is_some()) {
            (WriteMode::Create, _) => (SaveMode::ErrorIfExists, None),
            (WriteMode::Append, true) => {
                (SaveMode::Append, merge_schema.then_some(SchemaMode::Merge))
            }
            (WriteMode::Append, false) => (SaveMode::Append, None),
            (WriteMode::Overwrite, true) => (SaveMode::Overwrite, Some(SchemaMode::Overwrite)),
            (WriteMode::Overwrite, false) => (SaveMode::Overwrite, None),
        };
        let commit = commit_properties([("lakehouse".to_owned(), metadata)], snapshot.is_none());
        let mut builder = WriteBuilder::new(log_store, snapshot)
            .with_session_state(write_session()?)
            .with_input_plan(plan)
            .with_save_mode(save_mode)
            .with_table_name(name.clone())
            // Files are buffered in memory until they reach this size; it bounds a write's memory.
            .with_target_file_size(NonZeroU64::new(TARGET_FILE_SIZE))
            .with_writer_properties(writer_properties(&plain_columns))
            .with_commit_properties(commit);
        if let Some(schema_mode) = schema_mode {
            builder = builder.with_schema_mode(schema_mode);
        }
        let written = builder.await.map_err(|e| Error::from_write(&name, e))?;
        if table.is_some() {
            self.remember_written(&name, &written).await;
            if let Some(version) = written.version() {
                self.checkpoint_if_due(&written, version);
            }
        }

        let state = written.snapshot()?;
        let mut bytes = 0u64;
        for file in state.log_data() {
            if !before.contains(file.path().as_ref()) {
                bytes += u64::try_from(file.size()).unwrap_or(0);
            }
        }
        Ok(WriteOutcome {
            version: written.version().unwrap_or(0) as u64,
            rows: rows.load(Ordering::Relaxed),
            bytes,
            schema: columns_of(&state.snapshot().arrow_schema()),
        })
    }

    /// Writes the data files with [`datafiles`] and commits them: a table that does
    /// not exist yet is created with them; an overwrite removes every file the table had; the schema
    /// changes where an overwrite or an append with new columns changes it.
    async fn write_files(&self, args: WriteArgs) -> Result<WriteOutcome> {
        let WriteArgs {
            name,
            table,
            mode,
            merge_schema,
            batches,
            metadata,
            plain_columns,
        } = args;
        let started = std::time::Instant::now();
        let schema = batches.schema();
        let log_store = match &table {
            Some(t) => t.log_store(),
            None => self.handle(&name)?.log_store(),
        };
        let (adds, rows) = datafiles::write(
            log_store.object_store(None),
            batches,
            writer_properties(&plain_columns),
            usize::try_from(TARGET_FILE_SIZE).unwrap_or(usize::MAX),
        )
        .await?;
        let bytes: u64 = adds
            .iter()
            .map(|a| u64::try_from(a.size).unwrap_or(0))
            .sum();
        let kernel_schema: StructType = schema.as_ref().try_into_kernel()?;
        let metrics = |removed: usize| {
            serde_json::json!({
                "num_added_files": adds.len(),
                "num_removed_files": removed,
                "num_partitions": 0,
                "num_added_rows": rows,
                "execution_time_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            })
        };
        let creating = table.is_none();
        let commit = |removed: usize| {
            commit_properties(
                [
                    ("lakehouse".to_owned(), metadata.clone()),
                    ("operationMetrics".to_owned(), metrics(removed)),
                ],
                creating,
            )
        };
        let (version, state) = match table {
            None => {
                let created = CreateBuilder::new()
                    .with_log_store(log_store)
                    .with_table_name(name.clone())
                    .with_columns(kernel_schema.fields().cloned())
                    .with_commit_properties(commit(0))
                    .with_actions(adds.iter().cloned().map(Action::Add))
                    .await
                    .map_err(|e| created_elsewhere(&name, e))?;
                let version = created.version().unwrap_or(0);
                (version, created.snapshot()?.clone())
            }
            Some(table) => {
                let save_mode = match mode {
                    WriteMode::Create => return Err(Error::AlreadyExists(name)),
                    WriteMode::Append => SaveMode::Append,
                    WriteMode::Overwrite => SaveMode::Overwrite,
                };
                // An overwrite that loses a race to another rewrite (a compaction) plans its removes again
                // from the table as it now is; its new files are already written.
                let mut table = table;
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let state = table.snapshot()?;
                    let snapshot = state.snapshot();
                    let mut actions = Vec::new();
                    if (merge_schema || mode == WriteMode::Overwrite)
                        && *snapshot.schema() != kernel_schema
                    {
                        actions.push(Action::Metadata(
                            snapshot
                                .metadata()
                                .clone()
                                .with_schema(&kernel_schema)
                                .map_err(DeltaTableError::from)?,
                        ));
                    }
                    let mut removed = 0;
                    let mut properties = commit(0);
                    if mode == WriteMode::Overwrite {
                        for file in state.log_data().iter() {
                            actions.push(Action::Remove(file.remove_action(true)));
                            removed += 1;
                        }
                        properties = commit(removed)
                            .with_application_transaction(compact::rewrite_transaction());
                    }
                    actions.extend(adds.iter().cloned().map(Action::Add));
                    let operation = DeltaOperation::Write {
                        mode: save_mode,
                        partition_by: None,
                        predicate: None,
                    };
                    match CommitBuilder::from(properties)
                        .with_actions(actions)
                        .build(Some(state), log_store.clone(), operation)
                        .await
                    {
                        Ok(committed) => {
                            table.state = Some(committed.snapshot.clone());
                            self.remember_written(&name, &table).await;
                            self.checkpoint_if_due(&table, committed.version);
                            break (committed.version, committed.snapshot);
                        }
                        Err(e) if compact::lost_to_a_rewrite(&e) && attempts < 8 => {
                            table = self.open(&name, None).await?;
                        }
                        Err(e) => return Err(Error::from_write(&name, e)),
                    }
                }
            }
        };
        Ok(WriteOutcome {
            version,
            rows,
            bytes,
            schema: columns_of(&state.snapshot().arrow_schema()),
        })
    }
}

/// How a write commits: with its metadata, a checkpoint when the log is due one, and no retry of a creation.
///
/// deltalake retries a commit whose version another writer took, after checking the two for conflicts. But a
/// creation that finds version 0 taken is retried at the next version with no check at all: a second
/// table's protocol, schema and files land on top of the first (seen with four concurrent ingests creating
/// one dataset). So a creation that loses the race fails, as a conflict its caller retries.
///
/// No checkpoint and no log clean-up are made inside the commit: deltalake's hook for them lists the whole
/// log on every commit, and a hook that fails fails the write although its version landed (a client
/// retrying it would write the rows twice). Checkpoints are written after the commit instead
/// ([`Tables::checkpoint_if_due`]).
fn commit_properties(
    metadata: impl IntoIterator<Item = (String, serde_json::Value)>,
    creating: bool,
) -> CommitProperties {
    let properties = CommitProperties::default()
        .with_metadata(metadata)
        .with_create_checkpoint(false)
        .with_cleanup_expired_logs(Some(false));
    if creating {
        properties.with_max_retries(0)
    } else {
        properties
    }
}

/// Whether a table is as this system creates tables (the oldest protocol that has what it needs, no
/// properties but retention, no partition columns), so that [`datafiles`] and a plain commit may write to it.
fn written_as_created(table: &DeltaTable) -> bool {
    let Ok(state) = table.snapshot() else {
        return false;
    };
    let snapshot = state.snapshot();
    let protocol = serde_json::to_value(snapshot.protocol()).unwrap_or_default();
    protocol.get("minReaderVersion") == Some(&1.into())
        && protocol.get("minWriterVersion") == Some(&2.into())
        // Retention is the one property a vacuum may set (see `tables/vacuum.rs`); it changes no file.
        && snapshot
            .metadata()
            .configuration()
            .keys()
            .all(|k| k == vacuum::TOMBSTONE_RETENTION)
        && snapshot.metadata().partition_columns().is_empty()
}

/// A failed creation: a table created at the same place in the meantime (deltalake says so only in its
/// message, its error type being private) is a conflict to retry, like a lost race for the first commit.
fn created_elsewhere(name: &str, err: DeltaTableError) -> Error {
    if err.to_string().contains("table already exists") {
        Error::Conflict {
            dataset: name.to_owned(),
            message: err.to_string(),
        }
    } else {
        Error::from_write(name, err)
    }
}

/// A partition that yields one stream, once: the body of an ingest cannot be read twice.
struct OneShotStream {
    schema: SchemaRef,
    stream: std::sync::Mutex<Option<SendableRecordBatchStream>>,
}

impl OneShotStream {
    fn new(stream: SendableRecordBatchStream) -> Self {
        OneShotStream {
            schema: stream.schema(),
            stream: std::sync::Mutex::new(Some(stream)),
        }
    }
}

impl std::fmt::Debug for OneShotStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneShotStream")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl PartitionStream for OneShotStream {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().ok().and_then(|mut s| s.take());
        match taken {
            Some(s) => s,
            None => Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                futures::stream::once(async {
                    Err(DataFusionError::Internal(
                        "the input stream was already consumed".into(),
                    ))
                }),
            )),
        }
    }
}
