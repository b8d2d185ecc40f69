//! A version's data files, each row group's columns encoded on two threads and stored as they are encoded.
//!
//! deltalake's write plans the input through DataFusion and encodes on one thread, buffering each file whole
//! before storing it. In a 1M-row ingest that thread is busy for the whole second pass while the decoding
//! threads wait on it, and storing the file comes after it (figures in docs/benchmarks.md). This module
//! writes the same files with the parquet crate's column writers (`ArrowRowGroupWriterFactory`,
//! `ArrowColumnWriter`):
//! - a helper thread encodes some of each row group's columns, shared out by what each cost in the row group
//!   before;
//! - encoded row groups are sent on to the store while the next ones are encoded (a multipart upload once a
//!   file passes the store writer's buffer);
//! - rows stay in the order they arrive: one file at a time, its row groups in order;
//! - files are cut at the same size and written with the same properties as deltalake's writer would, but
//!   that a column Snappy barely shrinks is stored uncompressed after the first row group ([`compresses`]);
//! - each file is described by the Add action deltalake's writer gives it, statistics included. deltalake
//!   builds those in a function private to it, hence [`statistics`] here.
//!
//! Only the column types ingest produces go this way ([`handles`]). A write with any other type goes through
//! deltalake's writer, which converts types Delta cannot hold as they are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::{DataType, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use deltalake::kernel::Add;
use deltalake::parquet::arrow::ArrowWriter;
use deltalake::parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory,
    compute_leaves,
};
use deltalake::parquet::basic::Compression;
use deltalake::parquet::errors::ParquetError;
use deltalake::parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData, RowGroupMetaData};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::file::statistics::Statistics;
use deltalake::parquet::file::writer::SerializedFileWriter;
use deltalake::protocol::{ColumnCountStat, ColumnValueStat, Stats};
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::tables::ROW_GROUP_ROWS;
use crate::{Error, Result};

/// Columns with statistics: Delta's default for `delta.dataSkippingNumIndexedCols`, as deltalake's writer has it.
const STATS_COLUMNS: usize = 32;

/// Batches in flight from the input to the encoder.
const BATCHES_IN_FLIGHT: usize = 4;

/// Encoded bytes are sent on to the store in pieces of about this size, so that storing a file overlaps with
/// encoding it (and a file is never held whole).
const PIECE_BYTES: usize = 4 * 1024 * 1024;

/// A file is stored as one object up to this size, in parts of it past that (the store writer's default).
const UPLOAD_BUFFER: usize = 10 * 1024 * 1024;

/// Pieces in flight from the encoder to the store.
const PIECES_IN_FLIGHT: usize = 4;

/// Whether this writer takes a schema: text, booleans, 64-bit integers and floats, dates and UTC timestamps in
/// microseconds, each a top-level column. These are what CSV and NDJSON ingest produce, and Delta holds each
/// as it is.
pub(crate) fn handles(schema: &Schema) -> bool {
    !schema.fields().is_empty()
        && schema.fields().iter().all(|f| {
            matches!(
                f.data_type(),
                DataType::Utf8
                    | DataType::Boolean
                    | DataType::Int64
                    | DataType::Float64
                    | DataType::Date32
            ) || matches!(f.data_type(), DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC")
        })
}

/// Writes `batches` as Parquet files into `store` (rooted at the table), cutting a file once it holds
/// `target_size` bytes; their Add actions, in order, and the rows written. Nothing is left behind that a
/// reader would see: a failed write may leave files no version refers to.
pub(crate) async fn write(
    store: Arc<dyn ObjectStore>,
    batches: SendableRecordBatchStream,
    properties: WriterProperties,
    target_size: usize,
) -> Result<(Vec<Add>, u64)> {
    let sizes = Sizes {
        file: target_size,
        piece: PIECE_BYTES,
        upload: UPLOAD_BUFFER,
    };
    write_sized(store, batches, properties, sizes).await
}

/// How large things get.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    /// A file is finished once it holds this many bytes.
    file: usize,
    /// Encoded bytes are sent on to the store in pieces of about this size.
    piece: usize,
    /// The store's writer sends a file as one object up to this size, as a multipart upload past it.
    upload: usize,
}

async fn write_sized(
    store: Arc<dyn ObjectStore>,
    batches: SendableRecordBatchStream,
    properties: WriterProperties,
    sizes: Sizes,
) -> Result<(Vec<Add>, u64)> {
    let schema = batches.schema();
    let (batch_tx, mut batch_rx) = mpsc::channel::<Input>(BATCHES_IN_FLIGHT);
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(PIECES_IN_FLIGHT);
    let encoder = {
        let schema = schema.clone();
        tokio::task::spawn_blocking(move || {
            encode(&schema, properties, sizes, &mut batch_rx, &out_tx)
        })
    };
    let feed = async move {
        let mut batches = batches;
        let mut rows = 0u64;
        while let Some(batch) = batches.next().await {
            let batch = batch?;
            rows += batch.num_rows() as u64;
            if batch.num_rows() > 0 && batch_tx.send(Input::Batch(batch)).await.is_err() {
                // The encoder stopped; its error says why.
                return Ok(rows);
            }
        }
        // Only a whole input is finished into a file.
        let _ = batch_tx.send(Input::End).await;
        Ok::<u64, DataFusionError>(rows)
    };
    // Owning its receiver, the upload closes it when it fails: the encoder then stops instead of waiting.
    let upload = async move {
        let mut adds = Vec::new();
        let mut current: Option<Upload> = None;
        while let Some(output) = out_rx.recv().await {
            let file = match &mut current {
                Some(file) => file,
                None => current.insert(Upload::start(&store, adds.len(), sizes.upload)),
            };
            match output {
                Output::Bytes(bytes) => file.put(bytes).await?,
                Output::Finished(metadata) => {
                    if let Some(file) = current.take() {
                        adds.push(file.finish(&schema, &metadata).await?);
                    }
                }
            }
        }
        // A file not finished belongs to a failed write: what of it was stored goes.
        if let Some(mut file) = current {
            let _ = file.writer.abort().await;
        }
        Ok::<Vec<Add>, Error>(adds)
    };
    let (fed, uploaded) = tokio::join!(feed, upload);
    let encoded = encoder.await;
    // The first failure in the data's path names the cause: the input, then encoding, then the upload.
    let rows = fed.map_err(|e| match Error::from_input(&e) {
        Some(input) => input,
        None => Error::DataFusion(e),
    })?;
    encoded.map_err(|e| {
        Error::Parquet(ParquetError::General(format!(
            "the encoding thread stopped: {e}"
        )))
    })??;
    Ok((uploaded?, rows))
}

/// What the input sends the encoder.
enum Input {
    Batch(RecordBatch),
    /// The input was read to its end.
    End,
}

/// What the encoder sends the upload: a file's bytes in order, then its footer's metadata; the next file's
/// bytes after that.
enum Output {
    Bytes(Vec<u8>),
    Finished(ParquetMetaData),
}

/// Encodes the batches it is sent into files of about `sizes.file` bytes, sending on their bytes as they are
/// encoded. Runs on a blocking thread, with a helper thread that encodes some of the columns: while the
/// decoding threads wait on the encoder, a second core has room for it.
fn encode(
    schema: &SchemaRef,
    properties: WriterProperties,
    sizes: Sizes,
    batches: &mut mpsc::Receiver<Input>,
    out: &mpsc::Sender<Output>,
) -> Result<()> {
    let group_rows = properties
        .max_row_group_row_count()
        .unwrap_or(ROW_GROUP_ROWS)
        .max(1);
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    std::thread::scope(|scope| {
        let helper = (cores > 1 && schema.fields().len() > 1).then(|| Helper::start(scope));
        // A receiver gone means the upload failed, which says why: the encoder just stops.
        let mut open: Option<OpenFile> = None;
        while let Some(input) = batches.blocking_recv() {
            let batch = match input {
                Input::Batch(batch) => batch,
                Input::End => {
                    if let Some(file) = open.take() {
                        file.finish(helper.as_ref(), out)?;
                    }
                    return Ok(());
                }
            };
            let mut offset = 0;
            while offset < batch.num_rows() {
                let file = match &mut open {
                    Some(file) => file,
                    None => {
                        open.insert(OpenFile::new(schema, properties.clone(), helper.as_ref())?)
                    }
                };
                let take = (group_rows - file.group_rows).min(batch.num_rows() - offset);
                file.write(&batch.slice(offset, take), helper.as_ref())?;
                offset += take;
                if file.group_rows < group_rows {
                    continue;
                }
                file.close_group(helper.as_ref())?;
                // `bytes_written` counts what was encoded, sent on or not.
                if file.writer.bytes_written() >= sizes.file {
                    if let Some(file) = open.take()
                        && !file.finish(helper.as_ref(), out)?
                    {
                        return Ok(());
                    }
                    continue;
                }
                file.start_group(helper.as_ref())?;
                if file.writer.inner().len() >= sizes.piece {
                    let bytes = std::mem::take(file.writer.inner_mut());
                    if out.blocking_send(Output::Bytes(bytes)).is_err() {
                        return Ok(());
                    }
                }
            }
        }
        // The input stopped before its end: it failed, and nothing is finished.
        Ok(())
    })
}

/// A column writer of the open row group, with its leaf's index and the time spent encoding it.
type Column = (usize, ArrowColumnWriter, Duration);

/// A closed column chunk, with its leaf's index and the time spent encoding it.
type Closed = (usize, ArrowColumnChunk, Duration);

/// What the encoder asks of its helper.
enum Job {
    /// The columns of a new row group to encode.
    Start(Vec<Column>),
    /// The leaves of a slice of rows (all of them; the helper encodes its own).
    Write(Arc<Vec<ArrowLeafColumn>>),
    /// Close the row group's columns and send back their chunks.
    Close,
}

/// The thread that encodes some of a row group's columns. It waits on a channel, not in a spin, so it takes
/// no CPU from the decoding threads when it has nothing to do.
struct Helper {
    jobs: std::sync::mpsc::SyncSender<Job>,
    closed: std::sync::mpsc::Receiver<Result<Vec<Closed>>>,
}

/// Slices of rows that the helper may be behind by.
const HELPER_BACKLOG: usize = 8;

impl Helper {
    fn start<'scope>(scope: &'scope std::thread::Scope<'scope, '_>) -> Self {
        let (jobs, job_rx) = std::sync::mpsc::sync_channel::<Job>(HELPER_BACKLOG);
        let (closed_tx, closed) = std::sync::mpsc::sync_channel(1);
        scope.spawn(move || {
            let mut columns: Vec<Column> = Vec::new();
            let mut failed: Option<Error> = None;
            for job in job_rx {
                match job {
                    Job::Start(next) => columns = next,
                    Job::Write(leaves) => {
                        if failed.is_none()
                            && let Err(e) = write_columns(&mut columns, &leaves)
                        {
                            failed = Some(e);
                        }
                    }
                    Job::Close => {
                        let result = match failed.take() {
                            Some(e) => Err(e),
                            None => close_columns(std::mem::take(&mut columns)),
                        };
                        if closed_tx.send(result).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Helper { jobs, closed }
    }

    fn send(&self, job: Job) -> Result<()> {
        self.jobs.send(job).map_err(|_| helper_stopped())
    }

    fn close(&self) -> Result<Vec<Closed>> {
        self.send(Job::Close)?;
        self.closed.recv().map_err(|_| helper_stopped())?
    }
}

fn helper_stopped() -> Error {
    Error::Parquet(ParquetError::General(
        "the column encoding thread stopped".into(),
    ))
}

fn write_columns(columns: &mut [Column], leaves: &[ArrowLeafColumn]) -> Result<()> {
    for (index, writer, busy) in columns {
        let started = Instant::now();
        writer.write(&leaves[*index])?;
        *busy += started.elapsed();
    }
    Ok(())
}

fn close_columns(columns: Vec<Column>) -> Result<Vec<Closed>> {
    columns
        .into_iter()
        .map(|(index, writer, busy)| {
            let started = Instant::now();
            let chunk = writer.close()?;
            Ok((index, chunk, busy + started.elapsed()))
        })
        .collect()
}

/// Whether a column whose chunk came out as `chunk` is worth compressing: its codec took at least an
/// eighth off its bytes. Most of a staffing table's columns are dictionary indices, floats and timestamps
/// that Snappy shrinks by 0–10%, and every query pays for decompressing them: Snappy was 18% of the CPU of
/// a query scanning four columns of 1M timesheets, and storing seven of the ten columns as they are took it
/// from 21.4 to 18.2 ms, for 3.8% more bytes (docs/benchmarks.md). Each compressed chunk is judged once
/// written, so a file's first row group is compressed whole; a column found incompressible is stored as it
/// is for the rest of the file. Every Parquet reader takes the codec from each column chunk's own metadata.
fn compresses(chunk: &ColumnChunkMetaData) -> bool {
    let (compressed, plain) = (chunk.compressed_size(), chunk.uncompressed_size());
    chunk.compression() == Compression::UNCOMPRESSED
        || compressed.saturating_mul(8) <= plain.saturating_mul(7)
}

/// A file being encoded.
struct OpenFile {
    schema: SchemaRef,
    writer: SerializedFileWriter<Vec<u8>>,
    /// The properties the file was opened with.
    properties: WriterProperties,
    /// Per column: whether its chunks are still compressed (see [`compresses`]).
    compressed: Vec<bool>,
    /// Makes the column writers of a row group.
    factory: ArrowRowGroupWriterFactory,
    /// The open row group's columns that this thread encodes.
    mine: Vec<Column>,
    /// Whether the helper has columns of the open row group.
    helped: bool,
    /// Time spent on each column in the last row group, to share the next one's out by.
    cost: Vec<Duration>,
    /// Row groups closed.
    groups: usize,
    /// Rows in the open row group.
    group_rows: usize,
}

impl OpenFile {
    fn new(
        schema: &SchemaRef,
        properties: WriterProperties,
        helper: Option<&Helper>,
    ) -> Result<Self> {
        // Going through `ArrowWriter` puts the Arrow schema in the file's metadata, as its own files have it.
        let (writer, factory) =
            ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties.clone()))?
                .into_serialized_writer()?;
        let compressed = vec![true; writer.schema_descr().num_columns()];
        // Before any column was timed: text is the costly kind.
        let cost = schema
            .fields()
            .iter()
            .map(|f| {
                if matches!(f.data_type(), DataType::Utf8) {
                    Duration::from_micros(3)
                } else {
                    Duration::from_micros(1)
                }
            })
            .collect();
        let mut file = OpenFile {
            schema: schema.clone(),
            writer,
            properties,
            compressed,
            factory,
            mine: Vec::new(),
            helped: false,
            cost,
            groups: 0,
            group_rows: 0,
        };
        file.start_group(helper)?;
        Ok(file)
    }

    /// A factory of column writers with the file's properties, but for the columns that [`compresses`]
    /// found incompressible, stored as they are. The parquet crate takes a factory's properties from a
    /// file writer, so this one comes from a writer of nothing with those properties; the column chunks
    /// it encodes are appended to this file as any other.
    fn factory_now(&self) -> Result<ArrowRowGroupWriterFactory> {
        let descriptor = self.writer.schema_descr();
        let properties = self
            .compressed
            .iter()
            .enumerate()
            .filter(|(_, compressed)| !**compressed)
            .fold(self.properties.clone().into_builder(), |builder, (i, _)| {
                builder.set_column_compression(
                    descriptor.column(i).path().clone(),
                    Compression::UNCOMPRESSED,
                )
            });
        let shape = SerializedFileWriter::new(
            std::io::sink(),
            descriptor.root_schema_ptr(),
            Arc::new(properties.build()),
        )?;
        Ok(ArrowRowGroupWriterFactory::new(&shape, self.schema.clone()))
    }

    /// Opens a row group: its columns shared out between this thread and the helper, the costliest first,
    /// each to the side with less so far.
    fn start_group(&mut self, helper: Option<&Helper>) -> Result<()> {
        let writers = self.factory.create_column_writers(self.groups)?;
        let Some(helper) = helper else {
            self.mine = writers
                .into_iter()
                .enumerate()
                .map(|(i, w)| (i, w, Duration::ZERO))
                .collect();
            return Ok(());
        };
        let mut order: Vec<usize> = (0..writers.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(self.cost.get(i).copied().unwrap_or_default()));
        let mut theirs_index = vec![false; writers.len()];
        let (mut mine_load, mut theirs_load) = (Duration::ZERO, Duration::ZERO);
        for i in order {
            let cost = self.cost.get(i).copied().unwrap_or_default();
            if theirs_load < mine_load {
                theirs_index[i] = true;
                theirs_load += cost;
            } else {
                mine_load += cost;
            }
        }
        let (mut mine, mut theirs) = (Vec::new(), Vec::new());
        for (i, writer) in writers.into_iter().enumerate() {
            let column = (i, writer, Duration::ZERO);
            if theirs_index[i] {
                theirs.push(column);
            } else {
                mine.push(column);
            }
        }
        self.mine = mine;
        self.helped = !theirs.is_empty();
        if self.helped {
            helper.send(Job::Start(theirs))?;
        }
        Ok(())
    }

    /// Encodes a slice of rows that fits in the open row group.
    fn write(&mut self, batch: &RecordBatch, helper: Option<&Helper>) -> Result<()> {
        let mut leaves = Vec::with_capacity(self.schema.fields().len());
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            leaves.extend(compute_leaves(field, column)?);
        }
        let leaves = Arc::new(leaves);
        if let Some(helper) = helper.filter(|_| self.helped) {
            helper.send(Job::Write(leaves.clone()))?;
        }
        write_columns(&mut self.mine, &leaves)?;
        self.group_rows += batch.num_rows();
        Ok(())
    }

    /// Closes the open row group: both sides' chunks appended in column order.
    fn close_group(&mut self, helper: Option<&Helper>) -> Result<()> {
        let mut closed = close_columns(std::mem::take(&mut self.mine))?;
        if let Some(helper) = helper.filter(|_| self.helped) {
            closed.extend(helper.close()?);
        }
        closed.sort_by_key(|(index, _, _)| *index);
        self.cost = closed.iter().map(|(_, _, busy)| *busy).collect();
        let mut changed = false;
        for (index, chunk, _) in &closed {
            if let Some(compressed) = self.compressed.get_mut(*index)
                && *compressed
                && !compresses(&chunk.close().metadata)
            {
                *compressed = false;
                changed = true;
            }
        }
        if changed {
            self.factory = self.factory_now()?;
        }
        let mut group = self.writer.next_row_group()?;
        for (_, chunk, _) in closed {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.groups += 1;
        self.group_rows = 0;
        self.helped = false;
        Ok(())
    }

    /// Closes the last row group, writes the footer, and sends the rest of the file's bytes and its
    /// metadata; whether the upload took them.
    fn finish(mut self, helper: Option<&Helper>, out: &mpsc::Sender<Output>) -> Result<bool> {
        if self.group_rows > 0 {
            self.close_group(helper)?;
        } else if let Some(helper) = helper.filter(|_| self.helped) {
            // An opened row group with no rows: the helper's columns are closed and dropped.
            helper.close()?;
        }
        let metadata = self.writer.finish()?;
        // Taking the bytes leaves the writer's count of them, and so the footer's offsets, as they are.
        let bytes = std::mem::take(self.writer.inner_mut());
        Ok(out.blocking_send(Output::Bytes(bytes)).is_ok()
            && out.blocking_send(Output::Finished(metadata)).is_ok())
    }
}

/// A file being stored.
struct Upload {
    path: String,
    writer: BufWriter,
    size: usize,
}

impl Upload {
    /// A new file, named as deltalake's writer names its files.
    fn start(store: &Arc<dyn ObjectStore>, index: usize, buffer: usize) -> Self {
        let path = format!(
            "part-{index:05}-{}-c000.snappy.parquet",
            uuid::Uuid::new_v4()
        );
        let writer = BufWriter::with_capacity(store.clone(), Path::from(path.as_str()), buffer);
        Upload {
            path,
            writer,
            size: 0,
        }
    }

    async fn put(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.size += bytes.len();
        if let Err(e) = self.writer.put(bytes.into()).await {
            let _ = self.writer.abort().await;
            return Err(e.into());
        }
        Ok(())
    }

    /// Completes the object; the file's Add action.
    async fn finish(mut self, schema: &Schema, metadata: &ParquetMetaData) -> Result<Add> {
        if let Err(e) = self.writer.shutdown().await {
            let _ = self.writer.abort().await;
            return Err(Error::Store(object_store::Error::Generic {
                store: "data file",
                source: Box::new(e),
            }));
        }
        let stats = serde_json::to_string(&statistics(metadata, schema))
            .map_err(|e| Error::Unprocessable(format!("file statistics: {e}")))?;
        Ok(Add {
            path: self.path,
            size: i64::try_from(self.size).unwrap_or(i64::MAX),
            partition_values: HashMap::new(),
            modification_time: chrono::Utc::now().timestamp_millis(),
            data_change: true,
            stats: Some(stats),
            tags: None,
            deletion_vector: None,
            base_row_id: None,
            default_row_commit_version: None,
            clustering_provider: None,
        })
    }
}

/// A file's statistics in the Delta log's form, from its Parquet footer: rows, and for each of the first
/// [`STATS_COLUMNS`] columns its null count and (when it has a value) its least and greatest values, written
/// as deltalake's writer writes them (dates as `YYYY-MM-DD`, timestamps in UTC to the millisecond).
pub(crate) fn statistics(metadata: &ParquetMetaData, schema: &Schema) -> Stats {
    let groups = metadata.row_groups();
    let mut stats = Stats {
        num_records: metadata.file_metadata().num_rows(),
        ..Stats::default()
    };
    for (index, field) in schema.fields().iter().enumerate().take(STATS_COLUMNS) {
        // A row group without statistics leaves the column without any: a count over part of the file
        // would be wrong.
        let Some(all) = groups
            .iter()
            .map(|g| g.column(index).statistics())
            .collect::<Option<Vec<&Statistics>>>()
        else {
            continue;
        };
        if let Some(nulls) = all.iter().map(|s| s.null_count_opt()).sum::<Option<u64>>() {
            stats.null_count.insert(
                field.name().clone(),
                ColumnCountStat::Value(i64::try_from(nulls).unwrap_or(i64::MAX)),
            );
        }
        if let Some((min, max)) = bounds(groups, index, field.data_type()) {
            stats
                .min_values
                .insert(field.name().clone(), ColumnValueStat::Value(min));
            stats
                .max_values
                .insert(field.name().clone(), ColumnValueStat::Value(max));
        }
    }
    stats
}

/// The least and greatest value of a column over the row groups that have them, as JSON.
#[allow(clippy::wildcard_enum_match_arm)] // the types `handles` takes, of Arrow's many
fn bounds(
    groups: &[RowGroupMetaData],
    index: usize,
    data_type: &DataType,
) -> Option<(Value, Value)> {
    let stats = groups.iter().filter_map(|g| g.column(index).statistics());
    match data_type {
        DataType::Boolean => fold(stats.filter_map(|s| {
            if let Statistics::Boolean(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        .map(|(min, max)| (Value::from(min), Value::from(max))),
        DataType::Int64 => fold(stats.filter_map(|s| {
            if let Statistics::Int64(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        .map(|(min, max)| (Value::from(min), Value::from(max))),
        DataType::Float64 => fold(stats.filter_map(|s| {
            if let Statistics::Double(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        // JSON has no infinity; no bound is a safe bound.
        .filter(|(min, max)| min.is_finite() && max.is_finite())
        .map(|(min, max)| (Value::from(min), Value::from(max))),
        DataType::Date32 => fold(stats.filter_map(|s| {
            if let Statistics::Int32(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        .and_then(|(min, max)| Some((date(min)?, date(max)?))),
        DataType::Timestamp(..) => fold(stats.filter_map(|s| {
            if let Statistics::Int64(v) = s {
                Some((*v.min_opt()?, *v.max_opt()?))
            } else {
                None
            }
        }))
        .and_then(|(min, max)| {
            // Kept to the millisecond, the least value rounds down and the greatest up, so both stay bounds.
            let down = min.checked_sub(min.rem_euclid(1000))?;
            let up = max.checked_add((1000 - max.rem_euclid(1000)) % 1000)?;
            Some((timestamp(down)?, timestamp(up)?))
        }),
        DataType::Utf8 => fold(stats.filter_map(|s| {
            if let Statistics::ByteArray(v) = s {
                Some((v.min_bytes_opt()?, v.max_bytes_opt()?))
            } else {
                None
            }
        }))
        .and_then(|(min, max)| {
            Some((
                Value::from(std::str::from_utf8(min).ok()?),
                Value::from(std::str::from_utf8(max).ok()?),
            ))
        }),
        _ => None,
    }
}

/// The least of the least values and the greatest of the greatest.
fn fold<T: PartialOrd>(mut each: impl Iterator<Item = (T, T)>) -> Option<(T, T)> {
    let first = each.next()?;
    Some(each.fold(first, |(min, max), (lo, hi)| {
        (
            if lo < min { lo } else { min },
            if hi > max { hi } else { max },
        )
    }))
}

fn date(days: i32) -> Option<Value> {
    let day = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?
        .checked_add_signed(chrono::Duration::days(i64::from(days)))?;
    Some(Value::from(day.format("%Y-%m-%d").to_string()))
}

fn timestamp(micros: i64) -> Option<Value> {
    use chrono::Timelike;
    let at = chrono::DateTime::from_timestamp_micros(micros)?.naive_utc();
    // The Delta log keeps timestamps to the millisecond; whole seconds are written without a fraction.
    let format = if at.nanosecond() == 0 {
        "%Y-%m-%dT%H:%M:%SZ"
    } else {
        "%Y-%m-%dT%H:%M:%S%.3fZ"
    };
    Some(Value::from(at.format(format).to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, StringArray,
        TimestampMicrosecondArray,
    };
    use arrow::datatypes::Field;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use deltalake::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

    fn stream(
        schema: SchemaRef,
        items: Vec<Result<RecordBatch, DataFusionError>>,
    ) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(items),
        ))
    }

    fn properties(group_rows: usize) -> WriterProperties {
        WriterProperties::builder()
            .set_max_row_group_row_count(Some(group_rows))
            .build()
    }

    async fn read_back(store: &InMemory, add: &Add) -> Vec<RecordBatch> {
        let bytes = store
            .get(&Path::from(add.path.as_str()))
            .await
            .expect("file")
            .bytes()
            .await
            .expect("bytes");
        ParquetRecordBatchReaderBuilder::try_new(bytes)
            .expect("parquet")
            .build()
            .expect("reader")
            .collect::<Result<Vec<_>, _>>()
            .expect("batches")
    }

    fn stats_of(add: &Add) -> Value {
        serde_json::from_str(add.stats.as_deref().expect("stats")).expect("json")
    }

    #[tokio::test]
    async fn columns_the_codec_cannot_shrink_are_stored_as_they_are_after_the_first_row_group() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("noise", DataType::Int64, false),
        ]));
        let mut state = 3u64;
        let batches = (0..8)
            .map(|b| {
                let n: Vec<i64> = (b * 500..(b + 1) * 500).collect();
                let noise: Vec<i64> = n
                    .iter()
                    .map(|_| {
                        state = state
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        state as i64
                    })
                    .collect();
                Ok(RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(n)) as ArrayRef,
                        Arc::new(Int64Array::from(noise)),
                    ],
                )?)
            })
            .collect::<Vec<_>>();
        let expected: Vec<RecordBatch> = batches
            .iter()
            .map(|b| b.as_ref().expect("batch").clone())
            .collect();
        let store = Arc::new(InMemory::new());
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(1000))
            .set_column_dictionary_enabled("noise".into(), false)
            .build();
        let sizes = Sizes {
            file: 1 << 30,
            piece: 1 << 20,
            upload: 1 << 30,
        };
        let (adds, rows) = write_sized(
            store.clone(),
            stream(schema.clone(), batches),
            properties,
            sizes,
        )
        .await
        .expect("write");
        assert_eq!((adds.len(), rows), (1, 4000));
        let bytes = store
            .get(&Path::from(adds[0].path.as_str()))
            .await
            .expect("file")
            .bytes()
            .await
            .expect("bytes");
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes).expect("parquet");
        let codecs: Vec<(Compression, Compression)> = reader
            .metadata()
            .row_groups()
            .iter()
            .map(|g| (g.column(0).compression(), g.column(1).compression()))
            .collect();
        let (snappy, plain) = (Compression::SNAPPY, Compression::UNCOMPRESSED);
        assert_eq!(
            codecs,
            vec![
                (snappy, snappy),
                (snappy, plain),
                (snappy, plain),
                (snappy, plain)
            ]
        );
        let read: Vec<RecordBatch> = reader
            .build()
            .expect("reader")
            .collect::<Result<_, _>>()
            .expect("batches");
        assert_eq!(
            arrow::compute::concat_batches(&schema, &read).expect("concat"),
            arrow::compute::concat_batches(&schema, &expected).expect("concat")
        );
    }

    #[tokio::test]
    async fn files_keep_the_rows_in_order_and_are_cut_at_the_target_size() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("label", DataType::Utf8, true),
        ]));
        let batches = (0..10)
            .map(|b| {
                let n: Vec<i64> = (b * 700..(b + 1) * 700).collect();
                let label: Vec<String> = n.iter().map(|v| format!("row {v}")).collect();
                Ok(RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from(n)) as ArrayRef,
                        Arc::new(StringArray::from(label)) as ArrayRef,
                    ],
                )
                .expect("batch"))
            })
            .collect();
        let store = Arc::new(InMemory::new());
        // A file is past a target of five bytes (the four of its magic number, and one) once a row group of
        // 1,000 rows is in it: a file per 1,000 rows, cut inside every other batch of 700.
        // Every encoded piece is sent on at once, and a file past 64 bytes is a multipart upload.
        let sizes = Sizes {
            file: 5,
            piece: 1,
            upload: 64,
        };
        let (adds, rows) = write_sized(
            store.clone(),
            stream(schema, batches),
            properties(1000),
            sizes,
        )
        .await
        .expect("write");
        assert_eq!(rows, 7000);
        assert_eq!(adds.len(), 7);
        let mut next = 0i64;
        for (index, add) in adds.iter().enumerate() {
            assert!(
                add.path.starts_with(&format!("part-{index:05}-")),
                "{}",
                add.path
            );
            let stats = stats_of(add);
            assert_eq!(stats["numRecords"], 1000);
            assert_eq!(stats["minValues"]["n"], next);
            assert_eq!(stats["maxValues"]["n"], next + 999);
            assert_eq!(stats["minValues"]["label"], format!("row {next}"));
            assert_eq!(stats["nullCount"]["label"], 0);
            for batch in read_back(&store, add).await {
                let n = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .expect("int64");
                let label = batch
                    .column(1)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .expect("text");
                for row in 0..batch.num_rows() {
                    assert_eq!(n.value(row), next);
                    assert_eq!(label.value(row), format!("row {next}"));
                    next += 1;
                }
            }
        }
        assert_eq!(next, 7000);
    }

    #[tokio::test]
    async fn statistics_bound_every_column_over_every_row_group() {
        let utc: Arc<str> = Arc::from("UTC");
        let schema = Arc::new(Schema::new(vec![
            Field::new("flag", DataType::Boolean, true),
            Field::new("count", DataType::Int64, true),
            Field::new("rate", DataType::Float64, true),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone())),
                true,
            ),
            Field::new("name", DataType::Utf8, true),
            Field::new("nothing", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    None,
                    Some(true),
                    Some(false),
                    None,
                ])),
                Arc::new(Int64Array::from(vec![
                    Some(5),
                    Some(-3),
                    None,
                    Some(12),
                    Some(0),
                ])),
                Arc::new(Float64Array::from(vec![
                    Some(2.5),
                    Some(f64::NAN),
                    Some(-1.25),
                    None,
                    Some(9.0),
                ])),
                // 2024-02-29, 1969-12-31, 2024-03-01
                Arc::new(Date32Array::from(vec![
                    Some(19782),
                    None,
                    Some(-1),
                    Some(19783),
                    None,
                ])),
                // 2024-01-01T00:00:00Z, then 0.0005 s later (rounded up as a greatest value), then 1.5 s before
                Arc::new(
                    TimestampMicrosecondArray::from(vec![
                        Some(1_704_067_200_000_000),
                        Some(1_704_067_200_000_500),
                        None,
                        Some(1_704_067_198_500_000),
                        None,
                    ])
                    .with_timezone(utc),
                ),
                Arc::new(StringArray::from(vec![
                    Some("mia"),
                    Some("Zoe"),
                    None,
                    Some("ángel"),
                    Some("bo"),
                ])),
                Arc::new(StringArray::from(vec![None::<&str>; 5])),
            ],
        )
        .expect("batch");
        let store = Arc::new(InMemory::new());
        // Two rows per row group: three groups to combine.
        let (adds, _) = write(
            store.clone(),
            stream(schema, vec![Ok(batch)]),
            properties(2),
            usize::MAX,
        )
        .await
        .expect("write");
        assert_eq!(adds.len(), 1);
        assert_eq!(
            stats_of(&adds[0]),
            serde_json::json!({
                "numRecords": 5,
                "minValues": {
                    "flag": false, "count": -3, "rate": -1.25, "day": "1969-12-31",
                    "at": "2023-12-31T23:59:58.500Z", "name": "Zoe"
                },
                "maxValues": {
                    "flag": true, "count": 12, "rate": 9.0, "day": "2024-03-01",
                    "at": "2024-01-01T00:00:00.001Z", "name": "ángel"
                },
                "nullCount": {
                    "flag": 2, "count": 1, "rate": 1, "day": 2, "at": 2, "name": 1, "nothing": 5
                }
            })
        );
    }

    #[tokio::test]
    async fn timestamps_out_of_range_get_no_bounds() {
        let utc: Arc<str> = Arc::from("UTC");
        let kind = DataType::Timestamp(TimeUnit::Microsecond, Some(utc.clone()));
        let schema = Arc::new(Schema::new(vec![
            Field::new("low", kind.clone(), true),
            Field::new("high", kind, true),
        ]));
        // A Parquet body can hold any microsecond count; the extremes are no date a bound can name, and
        // rounding them to the millisecond must not overflow.
        let column = |values: Vec<i64>| {
            Arc::new(TimestampMicrosecondArray::from(values).with_timezone(utc.clone())) as ArrayRef
        };
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![column(vec![i64::MIN + 1, 0]), column(vec![0, i64::MAX])],
        )
        .expect("batch");
        let store = Arc::new(InMemory::new());
        let (adds, _) = write(
            store,
            stream(schema, vec![Ok(batch)]),
            properties(10),
            usize::MAX,
        )
        .await
        .expect("write");
        let stats = stats_of(&adds[0]);
        assert_eq!(stats["numRecords"], 2);
        for column in ["low", "high"] {
            assert_eq!(stats["nullCount"][column], 0);
            assert!(stats["minValues"].get(column).is_none(), "{stats}");
            assert!(stats["maxValues"].get(column).is_none(), "{stats}");
        }
    }

    #[tokio::test]
    async fn a_failed_input_leaves_nothing_in_the_store() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..1000)) as ArrayRef],
        )
        .expect("batch");
        let failure = DataFusionError::Execution("the body was cut off".into());
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("store"),
        );
        // The first batch's row groups are on their way into a multipart upload when the input fails.
        let sizes = Sizes {
            file: usize::MAX,
            piece: 1,
            upload: 64,
        };
        let err = write_sized(
            store,
            stream(schema, vec![Ok(batch), Err(failure)]),
            properties(100),
            sizes,
        )
        .await
        .expect_err("a failed input fails the write");
        assert!(err.to_string().contains("the body was cut off"), "{err}");
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.map(|e| e.file_name()))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[tokio::test]
    async fn a_failed_upload_fails_the_write_without_waiting_on_it() {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let batches = (0..50)
            .map(|b| {
                let n = Int64Array::from_iter_values(b * 1000..(b + 1) * 1000);
                Ok(
                    RecordBatch::try_new(schema.clone(), vec![Arc::new(n) as ArrayRef])
                        .expect("batch"),
                )
            })
            .collect();
        // A store rooted at a plain file: nothing can be stored under it.
        let dir = tempfile::tempdir().expect("dir");
        let root = dir.path().join("a-file");
        std::fs::write(&root, b"not a directory").expect("file");
        let store =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(&root).expect("store"));
        // Every row group is a piece, and the first pieces start a multipart upload, which fails; the
        // encoder has far more to send than the channels hold.
        let sizes = Sizes {
            file: usize::MAX,
            piece: 1,
            upload: 64,
        };
        let written = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            write_sized(store, stream(schema, batches), properties(100), sizes),
        )
        .await
        .expect("the write ends");
        let err = written.expect_err("an upload that fails fails the write");
        assert!(matches!(err, Error::Store(_)), "{err}");
    }

    #[test]
    fn only_the_types_ingest_produces_are_taken() {
        let utc = Some(Arc::from("UTC"));
        let taken = |t: DataType| handles(&Schema::new(vec![Field::new("c", t, true)]));
        assert!(taken(DataType::Utf8));
        assert!(taken(DataType::Timestamp(TimeUnit::Microsecond, utc)));
        assert!(!taken(DataType::Timestamp(TimeUnit::Microsecond, None)));
        assert!(!taken(DataType::Timestamp(
            TimeUnit::Nanosecond,
            Some(Arc::from("UTC"))
        )));
        assert!(!taken(DataType::Int32));
        assert!(!taken(DataType::Utf8View));
        assert!(!handles(&Schema::empty()));
    }
}
