//! `lag` and `lead` over sorted input, the window partitions of a batch at once.
//!
//! DataFusion's `BoundedWindowAggExec` keeps state for each window partition and evaluates each one on its
//! own: about 2.4 µs per partition. `lag(hours) OVER (PARTITION BY worker_id ORDER BY week_ending)` over 1M
//! timesheets has 50,000 partitions, and the operator took 125 ms of the query's CPU (the sort before it,
//! 92 ms). Over input sorted by its partition keys, a shift needs no state per partition: the partitions of
//! a batch are found in one pass (arrow's `partition`), and each row takes the value `offset` rows before
//! (lag) or after (lead), or the default where that row is in another partition: one `take` for the batch.
//! As DataFusion's operator does, it keeps only the rows later shifts may read, however long a window
//! partition is. Measured: that query went from 171 to 123 ms (docs/benchmarks.md).
//!
//! [`ShiftWindows`] puts [`ShiftWindowExec`] in place of a `BoundedWindowAggExec` only where it computes
//! exactly the same: input sorted by the partition keys, and every window function a `lag` or `lead` as
//! written (not reversed by the optimizer, not `IGNORE NULLS`) with a literal offset and default, whose
//! result has the value's type. Anything else stays with DataFusion's operator.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, RecordBatch, Scalar, UInt32Array};
use arrow::compute::kernels::zip::zip;
use arrow::compute::{concat_batches, partition, take};
use arrow::datatypes::SchemaRef;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::window::StandardWindowExpr;
use datafusion::physical_expr::{OrderingRequirements, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::distribution_requirements::InputDistributionRequirements;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::expressions::Literal;
use datafusion::physical_plan::metrics::{
    BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet, RecordOutput, Time,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowUDFExpr};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
};
use futures::StreamExt;

/// The physical optimizer rule: see the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct ShiftWindows;

impl PhysicalOptimizerRule for ShiftWindows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(window) = node.downcast_ref::<BoundedWindowAggExec>() else {
                return Ok(Transformed::no(node));
            };
            Ok(match ShiftWindowExec::try_new(window)? {
                Some(shift) => Transformed::yes(Arc::new(shift) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "shift_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// One `lag` or `lead`: the value, the rows to look back (negative: ahead), and the value where that row is
/// outside the partition.
#[derive(Debug, Clone)]
struct Shift {
    value: Arc<dyn PhysicalExpr>,
    back: i64,
    default: ScalarValue,
}

/// `lag` and `lead` over input sorted by the partition keys. It stands in for the `BoundedWindowAggExec` it
/// was made from, and takes its schema, properties and requirements on the input.
#[derive(Debug)]
pub(crate) struct ShiftWindowExec {
    window: Arc<BoundedWindowAggExec>,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    shifts: Vec<Shift>,
    /// Rows out and compute time, as `EXPLAIN ANALYZE` shows them.
    metrics: ExecutionPlanMetricsSet,
}

impl ShiftWindowExec {
    /// The replacement for `window`, where it computes the same.
    fn try_new(window: &BoundedWindowAggExec) -> Result<Option<Self>> {
        if window.input_order_mode != InputOrderMode::Sorted {
            return Ok(None);
        }
        let input = window.input().schema();
        let output = window.schema();
        let mut shifts = Vec::new();
        let mut partition_by: Option<Vec<Arc<dyn PhysicalExpr>>> = None;
        for (i, expr) in window.window_expr().iter().enumerate() {
            let Some(standard) = expr.as_any().downcast_ref::<StandardWindowExpr>() else {
                return Ok(None);
            };
            let function = standard.get_standard_func_expr();
            let Some(udf) = function.as_any().downcast_ref::<WindowUDFExpr>() else {
                return Ok(None);
            };
            let name = udf.fun().name();
            // The optimizer turns a `lag` into a reversed `lead` (and back) to read its input backwards; the
            // display name stays what was written. Only a function as written is taken, and never with
            // IGNORE NULLS.
            let written = function.name();
            let as_written = written.starts_with(&format!("{name}("));
            if !matches!(name, "lag" | "lead") || !as_written || written.contains("IGNORE NULLS") {
                return Ok(None);
            }
            let (value, offset, default) = match udf.args() {
                [value] => (value, None, None),
                [value, offset] => (value, Some(offset), None),
                [value, offset, default] => (value, Some(offset), Some(default)),
                _ => return Ok(None),
            };
            let Some(field) = output.fields().get(input.fields().len() + i) else {
                return Ok(None);
            };
            if value.data_type(&input)? != *field.data_type() {
                return Ok(None);
            }
            let back = match offset.map(literal) {
                None => 1,
                Some(Some(ScalarValue::Int64(n))) => n.unwrap_or(0),
                Some(_) => return Ok(None),
            };
            let default = match default.map(literal) {
                None => ScalarValue::try_from(field.data_type())?,
                Some(Some(d)) => match d.cast_to(field.data_type()) {
                    Ok(d) => d,
                    Err(_) => return Ok(None),
                },
                Some(None) => return Ok(None),
            };
            let back = if name == "lag" {
                back
            } else {
                back.saturating_neg()
            };
            match &partition_by {
                None => partition_by = Some(expr.partition_by().to_vec()),
                Some(keys) if keys.as_slice() == expr.partition_by() => {}
                Some(_) => return Ok(None),
            }
            shifts.push(Shift {
                value: Arc::clone(value),
                back,
                default,
            });
        }
        let Some(partition_by) = partition_by.filter(|keys| !keys.is_empty()) else {
            return Ok(None);
        };
        Ok(Some(ShiftWindowExec {
            window: Arc::new(window.clone()),
            partition_by,
            shifts,
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

fn literal(expr: &Arc<dyn PhysicalExpr>) -> Option<ScalarValue> {
    expr.downcast_ref::<Literal>().map(|l| l.value().clone())
}

impl DisplayAs for ShiftWindowExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.window.window_expr().iter().map(|e| e.name()).collect();
        write!(f, "ShiftWindowExec: wdw=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for ShiftWindowExec {
    fn name(&self) -> &str {
        "ShiftWindowExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.window.properties()
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.window.input_distribution_requirements()
    }

    fn required_input_ordering(&self) -> Vec<Option<OrderingRequirements>> {
        self.window.required_input_ordering()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.window.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        let values = self.shifts.iter().map(|shift| &shift.value);
        for expr in self.partition_by.iter().chain(values) {
            if f(expr)? == TreeNodeRecursion::Stop {
                return Ok(TreeNodeRecursion::Stop);
            }
        }
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let window = Arc::clone(&self.window).replace_children(children, options)?;
        let Some(bounded) = window.downcast_ref::<BoundedWindowAggExec>() else {
            return internal_err!("a window operator's new children made another operator");
        };
        Ok(match ShiftWindowExec::try_new(bounded)? {
            Some(shift) => Arc::new(shift),
            None => window,
        })
    }

    // Required by the trait; what `replace_children` does, as DataFusion's own operators have it.
    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.window.input().execute(partition, context)?;
        let metrics = BaselineMetrics::new(&self.metrics, partition);
        let schema = self.window.schema();
        let mut state = Shifting::new(
            Arc::clone(&schema),
            self.partition_by.clone(),
            self.shifts.clone(),
        );
        state.compute = metrics.elapsed_compute().clone();
        let batches = futures::stream::unfold(
            (input, state, false),
            move |(mut input, mut state, done)| {
                let metrics = metrics.clone();
                async move {
                    if done {
                        return None;
                    }
                    loop {
                        let next = match input.next().await {
                            Some(Ok(batch)) => match state.advance(Some(batch)) {
                                Ok(None) => continue,
                                out => out.transpose().map(|out| {
                                    let failed = out.is_err();
                                    (out, failed)
                                }),
                            },
                            Some(Err(e)) => Some((Err(e), true)),
                            None => state.advance(None).transpose().map(|out| (out, true)),
                        };
                        return next.map(|(out, done)| {
                            (out.record_output(&metrics), (input, state, done))
                        });
                    }
                }
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// The rows of one input partition as they arrive. A row is sent on once every row its shifts read has
/// arrived: at once for `lag`, `offset` rows later for `lead` (or at the end of its window partition).
/// Only the rows the next shifts may still read are kept: memory is bounded by the offsets, not by the
/// size of a window partition.
struct Shifting {
    schema: SchemaRef,
    partition_by: Vec<Arc<dyn PhysicalExpr>>,
    shifts: Vec<Shift>,
    /// Rows kept: the first `sent` were sent on already, and are kept for the lags of the rows after them.
    rows: Option<RecordBatch>,
    sent: usize,
    /// The most rows a lag reads back, and a lead ahead.
    behind: usize,
    ahead: usize,
    /// Where the time spent shifting is counted.
    compute: Time,
}

impl Shifting {
    fn new(
        schema: SchemaRef,
        partition_by: Vec<Arc<dyn PhysicalExpr>>,
        shifts: Vec<Shift>,
    ) -> Self {
        let reach = |back: i64| usize::try_from(back.unsigned_abs()).unwrap_or(usize::MAX);
        let behind = shifts
            .iter()
            .filter(|s| s.back > 0)
            .map(|s| reach(s.back))
            .max();
        let ahead = shifts
            .iter()
            .filter(|s| s.back < 0)
            .map(|s| reach(s.back))
            .max();
        Shifting {
            schema,
            partition_by,
            shifts,
            rows: None,
            sent: 0,
            behind: behind.unwrap_or(0),
            ahead: ahead.unwrap_or(0),
            compute: Time::new(),
        }
    }

    /// Takes a batch (none at the end of the input); the rows that can be sent on.
    fn advance(&mut self, batch: Option<RecordBatch>) -> Result<Option<RecordBatch>> {
        let compute = self.compute.clone();
        let _timer = compute.timer();
        let finished = batch.is_none();
        let rows = match (self.rows.take(), batch) {
            (Some(kept), Some(batch)) => concat_batches(&batch.schema(), [&kept, &batch])?,
            (Some(kept), None) => kept,
            (None, Some(batch)) => batch,
            (None, None) => return Ok(None),
        };
        let len = rows.num_rows();
        if len == 0 {
            return Ok(None);
        }
        let ranges = self.ranges(&rows)?;
        // A row of the last window partition, which may go on in the next batch, waits for the rows its
        // leads read.
        let end = if finished {
            len
        } else {
            let last = ranges.last().map_or(0, |range| range.start);
            last.max(len.saturating_sub(self.ahead))
        };
        let out = if end > self.sent {
            Some(self.shift(&rows, &ranges, self.sent..end)?)
        } else {
            None
        };
        let keep = end.saturating_sub(self.behind);
        self.rows = Some(rows.slice(keep, len - keep));
        self.sent = end - keep;
        Ok(out)
    }

    fn ranges(&self, rows: &RecordBatch) -> Result<Vec<Range<usize>>> {
        let keys = self
            .partition_by
            .iter()
            .map(|key| key.evaluate(rows)?.into_array(rows.num_rows()))
            .collect::<Result<Vec<ArrayRef>>>()?;
        Ok(partition(&keys)?.ranges())
    }

    /// The rows `send` of `rows` (whose window partitions are `ranges`), with the shifted columns after the
    /// input's.
    fn shift(
        &self,
        rows: &RecordBatch,
        ranges: &[Range<usize>],
        send: Range<usize>,
    ) -> Result<RecordBatch> {
        let sent = rows.slice(send.start, send.len());
        let mut columns = sent.columns().to_vec();
        for shift in &self.shifts {
            let values = shift.value.evaluate(rows)?.into_array(rows.num_rows())?;
            let mut from = Vec::with_capacity(send.len());
            for range in ranges {
                let (start, end) = (range.start as i64, range.end as i64);
                let rows = range.start.max(send.start)..range.end.min(send.end);
                for row in rows.start as i64..rows.end as i64 {
                    let source = row
                        .checked_sub(shift.back)
                        .filter(|s| (start..end).contains(s));
                    from.push(source.and_then(|s| u32::try_from(s).ok()));
                }
            }
            let from = UInt32Array::from(from);
            let shifted = take(&values, &from, None)?;
            let column = if shift.default.is_null() {
                shifted
            } else {
                let inside = BooleanArray::from_iter(from.iter().map(|i| Some(i.is_some())));
                let default = Scalar::new(shift.default.to_array()?);
                zip(&inside, &shifted, &default)?
            };
            columns.push(column);
        }
        Ok(RecordBatch::try_new(Arc::clone(&self.schema), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{answer, numbers, session, uneven_table};
    use arrow::array::{Array, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    /// Rows in batches of uneven sizes, window partitions running across them; keys and values with nulls.
    fn table(partitions: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("o", DataType::Int64, false),
            Field::new("v", DataType::Float64, true),
        ]));
        let mut next = numbers(7);
        let mut order = 0i64;
        let sizes = [1usize, 7, 64, 3, 200, 17, 1000, 5, 300];
        uneven_table(schema, partitions, &sizes, |size| {
            let k: Vec<Option<i64>> = (0..size)
                .map(|_| (next(20) != 0).then(|| next(40) as i64))
                .collect();
            let s: Vec<Option<String>> = (0..size)
                .map(|_| (next(10) != 0).then(|| format!("s{}", next(3))))
                .collect();
            // Unique, so that every order is total, and not the order rows arrive in.
            let o: Vec<i64> = (0..size)
                .map(|_| {
                    order += 1;
                    order * 7919 % 100_003
                })
                .collect();
            let v: Vec<Option<f64>> = (0..size)
                .map(|_| (next(5) != 0).then(|| next(1000) as f64 / 4.0))
                .collect();
            vec![
                Arc::new(Int64Array::from(k)),
                Arc::new(StringArray::from(s)),
                Arc::new(Int64Array::from(o)),
                Arc::new(Float64Array::from(v)),
            ]
        })
    }

    fn context(shift: bool, partitions: usize) -> SessionContext {
        let ctx = session(partitions, 50, |builder| {
            if shift {
                builder.with_physical_optimizer_rule(Arc::new(ShiftWindows))
            } else {
                builder
            }
        });
        ctx.register_table("t", Arc::new(table(partitions)))
            .expect("register");
        ctx
    }

    #[test]
    fn one_long_window_partition_is_not_held_whole() {
        use datafusion::physical_plan::expressions::col;
        let input = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let output = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
            Field::new("lag", DataType::Int64, true),
            Field::new("lead", DataType::Int64, true),
        ]));
        let v = col("v", &input).expect("column");
        let shifts = vec![
            Shift {
                value: v.clone(),
                back: 1,
                default: ScalarValue::Int64(None),
            },
            Shift {
                value: v,
                back: -2,
                default: ScalarValue::Int64(Some(-1)),
            },
        ];
        let mut shifting = Shifting::new(output, vec![col("k", &input).expect("column")], shifts);
        let mut out = Vec::new();
        for b in 0..100i64 {
            let batch = RecordBatch::try_new(
                input.clone(),
                vec![
                    Arc::new(Int64Array::from(vec![7; 100])),
                    Arc::new(Int64Array::from_iter_values(b * 100..(b + 1) * 100)),
                ],
            )
            .expect("batch");
            out.extend(shifting.advance(Some(batch)).expect("advance"));
            let kept = shifting.rows.as_ref().map_or(0, RecordBatch::num_rows);
            assert!(kept <= 1 + 2, "{kept} rows kept after batch {b}");
        }
        out.extend(shifting.advance(None).expect("finish"));
        let rows: Vec<(i64, Option<i64>, Option<i64>)> = out
            .iter()
            .flat_map(|batch| {
                let column = |i: usize| {
                    batch
                        .column(i)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .expect("int64")
                        .clone()
                };
                let (v, lag, lead) = (column(1), column(2), column(3));
                (0..batch.num_rows()).map(move |r| {
                    (
                        v.value(r),
                        lag.is_valid(r).then(|| lag.value(r)),
                        lead.is_valid(r).then(|| lead.value(r)),
                    )
                })
            })
            .collect();
        assert_eq!(rows.len(), 10_000);
        for (i, (v, lag, lead)) in rows.into_iter().enumerate() {
            let i = i as i64;
            assert_eq!(v, i);
            assert_eq!(lag, (i > 0).then_some(i - 1));
            assert_eq!(lead, Some(if i + 2 < 10_000 { i + 2 } else { -1 }));
        }
    }

    #[tokio::test]
    async fn shifts_give_what_the_window_operator_gives() {
        let queries = [
            ("lag(v) OVER (PARTITION BY k ORDER BY o)", true),
            ("lag(v, 2, 0.5) OVER (PARTITION BY k, s ORDER BY o)", true),
            ("lead(v) OVER (PARTITION BY k ORDER BY o)", true),
            (
                "lead(v, 3, -1.0) OVER (PARTITION BY s ORDER BY o DESC)",
                true,
            ),
            ("lag(v, -1) OVER (PARTITION BY k ORDER BY o)", true),
            ("lag(v, 0) OVER (PARTITION BY k ORDER BY o)", true),
            ("lag(v, 5000) OVER (PARTITION BY k ORDER BY o)", true),
            ("lag(o) OVER (PARTITION BY k ORDER BY v, o)", true),
            ("lag(s, 1, 'none') OVER (PARTITION BY k ORDER BY o)", true),
            // Not taken: IGNORE NULLS, no partition, and a window that is not a shift.
            (
                "lag(v) IGNORE NULLS OVER (PARTITION BY k ORDER BY o)",
                false,
            ),
            ("lag(v) OVER (ORDER BY o)", false),
            ("row_number() OVER (PARTITION BY k ORDER BY o)", false),
        ];
        for partitions in [1, 3] {
            let (with, without) = (context(true, partitions), context(false, partitions));
            for (window, taken) in queries {
                let sql = format!(
                    "SELECT k, s, o, v, {window} AS w, lead(o, 2) OVER (PARTITION BY k ORDER BY o) AS w2 \
                     FROM t ORDER BY o, k, s"
                );
                let sql = if window.starts_with("lag(v) IGNORE") || !taken {
                    sql.replace(", lead(o, 2) OVER (PARTITION BY k ORDER BY o) AS w2", "")
                } else {
                    sql
                };
                let ours = answer(&with, &sql).await;
                let (ours, plan) = (ours.text, ours.physical);
                let theirs = answer(&without, &sql).await.text;
                let differ = ours.lines().zip(theirs.lines()).find(|(a, b)| a != b);
                assert!(
                    differ.is_none() && ours.len() == theirs.len(),
                    "{sql} on {partitions} partitions: first difference {differ:?}"
                );
                assert_eq!(
                    plan.contains("ShiftWindowExec"),
                    taken,
                    "{sql} on {partitions} partitions:\n{plan}"
                );
            }
        }
    }
}
