//! The writer against deltalake's: the same rows, files, row groups and statistics.

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
use serde_json::Value;

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
    let store =
        Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).expect("store"));
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
            Ok(RecordBatch::try_new(schema.clone(), vec![Arc::new(n) as ArrayRef]).expect("batch"))
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
