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
//!   builds those in a function private to it, hence [`crate::stats`].
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
use deltalake::parquet::file::metadata::{ColumnChunkMetaData, ParquetMetaData};
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::parquet::file::writer::SerializedFileWriter;
use deltalake::parquet::schema::types::ColumnPath;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::{Error, Result};

/// Data files are cut at about this size.
pub const TARGET_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Rows per Parquet row group. A row group is the unit a scan hands to one thread (and the unit statistics
/// prune), so a 1M-row file cut into groups of this size is read on every core; DuckDB's default is close
/// (122,880 rows). The writer's default of 1Mi rows made a 1M-row table one single-threaded scan.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// How data files are written: Snappy (fast to write and read, what other Delta writers use by default),
/// dictionary encoding and page statistics as the parquet crate's defaults have them — except for the
/// `plain` columns, whose values rarely repeat: a dictionary of them is as large as the values, and
/// building it was the largest single cost of writing a table. Ingest's own writer then stores the columns
/// Snappy barely shrinks uncompressed (`datafiles::compresses`).
pub(crate) fn writer_properties(plain: &[String]) -> WriterProperties {
    plain
        .iter()
        .fold(
            WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS)),
            |builder, column| {
                builder.set_column_dictionary_enabled(ColumnPath::from(column.as_str()), false)
            },
        )
        .build()
}

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
        let stats = serde_json::to_string(&crate::stats::statistics(metadata, schema))
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

#[cfg(test)]
mod tests;
