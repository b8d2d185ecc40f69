//! Filter predicates evaluated a word at a time where DataFusion goes a row or a run at a time.
//!
//! Two things took most of the filter's CPU in `pending_by_client` (`WHERE status = 'pending' AND
//! submitted_at >= ..` over 1M timesheets):
//! - `a AND b`: where `a` holds for at most a fifth of a batch's rows, DataFusion evaluates `b` on those
//!   rows only and then puts the answers back in place one run of rows at a time, slicing an array per
//!   run. With a tenth of the rows kept, scattered, that took longer than evaluating `b` on every row.
//! - `text = 'literal'` over `Utf8View`: arrow compares each row through a chain of branches (buffers,
//!   length, prefix), about 2 ns a row.
//!
//! [`FastFilters`] changes only the predicates of `FilterExec`s, after every other rule has run:
//! - A conjunction at the top of a predicate becomes a [`Conjunction`]: the conjuncts that compare a
//!   column with a literal are evaluated first, on every row; each other conjunct on the rows still kept
//!   when they are few (then scattered back by their positions), or on every row. A filter keeps the rows
//!   where its predicate is true, so a null is taken as false: a `Conjunction` is only a filter's
//!   predicate, never a value.
//! - `column = 'literal'` or `<>`, where the column is `Utf8View` and the literal is at most 12 bytes,
//!   becomes [`InlineEquals`]: such a literal is stored whole in its 16-byte view, and Arrow pads an
//!   inline view with zeros (arrow's own comparison relies on that where an array has no data buffers),
//!   so a row equals it exactly when its view does: one 128-bit comparison a row.
//!
//! Measured (docs/benchmarks.md): that filter went from 5.9–6.8 ms of CPU to 2.0–2.1 ms (`EXPLAIN
//! ANALYZE`), the query from 18.3 to 15.9 ms.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use arrow::array::builder::make_view;
use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::buffer::{BooleanBuffer, MutableBuffer};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Schema};
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::{collect_columns, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::expressions::{
    BinaryExpr, Column, IsNotNullExpr, IsNullExpr, Literal,
};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

/// The physical optimizer rule: see the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct FastFilters;

impl PhysicalOptimizerRule for FastFilters {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let Some(predicate) = rewrite(filter.predicate(), &schema)? else {
                return Ok(Transformed::no(node));
            };
            let rebuilt = FilterExecBuilder::from(filter)
                .with_predicate(predicate)
                .build()?;
            Ok(Transformed::yes(Arc::new(rebuilt) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "fast_filters"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The predicate with short text comparisons as [`InlineEquals`] and a conjunction as a [`Conjunction`];
/// `None` when neither applies.
fn rewrite(
    predicate: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Option<Arc<dyn PhysicalExpr>>> {
    let compared = Arc::clone(predicate).transform_up(|e| {
        Ok(match InlineEquals::try_from_binary(&e, schema)? {
            Some(fast) => Transformed::yes(Arc::new(fast) as Arc<dyn PhysicalExpr>),
            None => Transformed::no(e),
        })
    })?;
    let changed = compared.transformed;
    let compared = compared.data;
    let conjuncts: Vec<Arc<dyn PhysicalExpr>> =
        split_conjunction(&compared).into_iter().cloned().collect();
    if conjuncts.len() > 1 {
        return Ok(Some(Arc::new(Conjunction::new(conjuncts, schema)?)));
    }
    Ok(changed.then_some(compared))
}

/// `value = 'literal'` (or `<>`) over `Utf8View`, for a literal of at most 12 bytes: see the module's
/// documentation.
#[derive(Debug, Eq)]
pub(crate) struct InlineEquals {
    value: Arc<dyn PhysicalExpr>,
    literal: String,
    /// The literal's view: length, then the bytes, zero-padded.
    view: u128,
    negated: bool,
}

// By hand: a derived `PartialEq` cannot compare `Arc<dyn PhysicalExpr>` fields (and `Hash` must agree).
impl PartialEq for InlineEquals {
    fn eq(&self, other: &Self) -> bool {
        self.value.as_ref() == other.value.as_ref()
            && self.view == other.view
            && self.negated == other.negated
    }
}

impl Hash for InlineEquals {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.value.hash(state);
        self.view.hash(state);
        self.negated.hash(state);
    }
}

/// The longest string a view holds inline.
const INLINE_BYTES: usize = 12;

impl InlineEquals {
    fn new(value: Arc<dyn PhysicalExpr>, literal: &str, negated: bool) -> Option<Self> {
        (literal.len() <= INLINE_BYTES).then(|| InlineEquals {
            value,
            literal: literal.to_owned(),
            view: make_view(literal.as_bytes(), 0, 0),
            negated,
        })
    }

    /// The fast form of `e`, when `e` compares a `Utf8View` column with a short text literal.
    fn try_from_binary(e: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Option<Self>> {
        let Some(binary) = e.downcast_ref::<BinaryExpr>() else {
            return Ok(None);
        };
        let negated = *binary.op() == Operator::NotEq;
        if !negated && *binary.op() != Operator::Eq {
            return Ok(None);
        }
        let (column, literal) = match (
            binary.left().downcast_ref::<Column>(),
            binary.right().downcast_ref::<Literal>(),
            binary.right().downcast_ref::<Column>(),
            binary.left().downcast_ref::<Literal>(),
        ) {
            (Some(_), Some(literal), _, _) => (binary.left(), literal),
            (_, _, Some(_), Some(literal)) => (binary.right(), literal),
            _ => return Ok(None),
        };
        if column.data_type(schema)? != DataType::Utf8View {
            return Ok(None);
        }
        let (ScalarValue::Utf8View(Some(text))
        | ScalarValue::Utf8(Some(text))
        | ScalarValue::LargeUtf8(Some(text))) = literal.value()
        else {
            return Ok(None);
        };
        Ok(InlineEquals::new(Arc::clone(column), text, negated))
    }
}

impl fmt::Display for InlineEquals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.negated { "!=" } else { "=" };
        write!(f, "{} {op} {:?} (inline)", self.value, self.literal)
    }
}

impl PhysicalExpr for InlineEquals {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.value.nullable(schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let values = self.value.evaluate(batch)?.into_array(batch.num_rows())?;
        let Some(text) = values.as_string_view_opt() else {
            return internal_err!("{self}: expected Utf8View, got {}", values.data_type());
        };
        let views = text.views();
        let (view, negated) = (self.view, self.negated);
        let equal = BooleanBuffer::collect_bool(views.len(), |i| (views[i] == view) != negated);
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            equal,
            text.nulls().cloned(),
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.value]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let Ok([value]) = <[_; 1]>::try_from(children) else {
            return internal_err!("InlineEquals takes one child");
        };
        Ok(Arc::new(InlineEquals {
            value,
            literal: self.literal.clone(),
            view: self.view,
            negated: self.negated,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt_sql(f)?;
        let op = if self.negated { "!=" } else { "=" };
        write!(f, " {op} '{}'", self.literal.replace('\'', "''"))
    }
}

/// Where no more than one in this many of a batch's rows is still kept, a conjunct that is not a plain
/// comparison is evaluated on those rows only (DataFusion's threshold for the same choice).
const FEW_ROWS: usize = 5;

/// One conjunct, with what evaluating it on the kept rows only needs.
#[derive(Debug, Eq)]
struct Conjunct {
    expr: Arc<dyn PhysicalExpr>,
    /// A plain comparison (see [`is_plain`]): evaluated on every row.
    plain: bool,
    /// The input columns it reads, ascending ...
    columns: Vec<usize>,
    /// ... and the conjunct over a batch of those columns alone.
    narrowed: Arc<dyn PhysicalExpr>,
}

impl Conjunct {
    fn new(expr: Arc<dyn PhysicalExpr>, plain: bool) -> Result<Self> {
        let mut columns: Vec<usize> = collect_columns(&expr).iter().map(Column::index).collect();
        columns.sort_unstable();
        let narrowed = Arc::clone(&expr)
            .transform_up(|e| {
                let Some(column) = e.downcast_ref::<Column>() else {
                    return Ok(Transformed::no(e));
                };
                let Ok(at) = columns.binary_search(&column.index()) else {
                    return internal_err!("column {column} not collected");
                };
                Ok(Transformed::yes(
                    Arc::new(Column::new(column.name(), at)) as Arc<dyn PhysicalExpr>
                ))
            })
            .data()?;
        Ok(Conjunct {
            expr,
            plain,
            columns,
            narrowed,
        })
    }
}

impl PartialEq for Conjunct {
    fn eq(&self, other: &Self) -> bool {
        self.expr.as_ref() == other.expr.as_ref() && self.plain == other.plain
    }
}

impl Hash for Conjunct {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
        self.plain.hash(state);
    }
}

/// A comparison of a column with a literal or another column of a fixed-width type, a null test of a
/// column, or an [`InlineEquals`]: a few instructions a row.
fn is_plain(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<bool> {
    let leaf = |e: &Arc<dyn PhysicalExpr>| e.is::<Column>() || e.is::<Literal>();
    if expr.is::<InlineEquals>() {
        return Ok(true);
    }
    if let Some(test) = expr.downcast_ref::<IsNullExpr>() {
        return Ok(test.arg().is::<Column>());
    }
    if let Some(test) = expr.downcast_ref::<IsNotNullExpr>() {
        return Ok(test.arg().is::<Column>());
    }
    let Some(binary) = expr.downcast_ref::<BinaryExpr>() else {
        return Ok(false);
    };
    let comparison = matches!(
        binary.op(),
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
    );
    if !(comparison && leaf(binary.left()) && leaf(binary.right())) {
        return Ok(false);
    }
    let fixed = |t: DataType| t.is_primitive() || t == DataType::Boolean;
    Ok(fixed(binary.left().data_type(schema)?) && fixed(binary.right().data_type(schema)?))
}

/// The conjunction at the top of a filter's predicate: see the module's documentation. True where every
/// conjunct is true; false elsewhere, null included.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Conjunction {
    conjuncts: Vec<Conjunct>,
}

impl Conjunction {
    /// Plain comparisons first, the others in the order written. A plain comparison cannot fail, so
    /// taking it first changes no answer; it can only leave the others fewer rows to fail on.
    fn new(conjuncts: Vec<Arc<dyn PhysicalExpr>>, schema: &Schema) -> Result<Self> {
        let mut conjuncts = conjuncts
            .into_iter()
            .map(|c| {
                let plain = is_plain(&c, schema)?;
                Conjunct::new(c, plain)
            })
            .collect::<Result<Vec<_>>>()?;
        conjuncts.sort_by_key(|c| !c.plain);
        Ok(Conjunction { conjuncts })
    }
}

/// The rows where a filter result keeps its row: true and not null.
fn kept(result: &BooleanArray) -> BooleanBuffer {
    match result.nulls() {
        Some(nulls) => result.values() & nulls.inner(),
        None => result.values().clone(),
    }
}

/// A conjunct's answer as the rows it keeps, `rows` long.
fn evaluate_kept(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<BooleanBuffer> {
    let rows = batch.num_rows();
    match expr.evaluate(batch)? {
        ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => Ok(BooleanBuffer::new_set(rows)),
        ColumnarValue::Scalar(ScalarValue::Boolean(_)) => Ok(BooleanBuffer::new_unset(rows)),
        ColumnarValue::Scalar(other) => {
            internal_err!("a filter conjunct gave {}", other.data_type())
        }
        ColumnarValue::Array(array) => match array.as_boolean_opt() {
            Some(result) if result.len() == rows => Ok(kept(result)),
            Some(result) => internal_err!(
                "a filter conjunct gave {} answers for {rows} rows",
                result.len()
            ),
            None => internal_err!("a filter conjunct gave {}", array.data_type()),
        },
    }
}

/// `selected` (the answers for the set rows of `mask`, in order) put back in place: set where both are.
fn scatter(mask: &BooleanBuffer, selected: &BooleanBuffer) -> BooleanBuffer {
    let mut out = MutableBuffer::from_len_zeroed(mask.len().div_ceil(8));
    let bits = out.as_slice_mut();
    for (position, row) in mask.set_indices().enumerate() {
        if selected.value(position) {
            bits[row / 8] |= 1 << (row % 8);
        }
    }
    BooleanBuffer::new(out.into(), 0, mask.len())
}

impl fmt::Display for Conjunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.conjuncts.iter().enumerate() {
            if i > 0 {
                write!(f, " AND ")?;
            }
            write!(f, "{}", c.expr)?;
        }
        Ok(())
    }
}

impl PhysicalExpr for Conjunction {
    fn data_type(&self, _schema: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _schema: &Schema) -> Result<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let rows = batch.num_rows();
        let mut mask: Option<BooleanBuffer> = None;
        for conjunct in &self.conjuncts {
            let Some(current) = &mask else {
                mask = Some(evaluate_kept(&conjunct.expr, batch)?);
                continue;
            };
            let left = current.count_set_bits();
            if left == 0 {
                break;
            }
            let few = left.saturating_mul(FEW_ROWS) <= rows;
            mask = Some(if conjunct.plain || !few {
                current & &evaluate_kept(&conjunct.expr, batch)?
            } else {
                let narrow = batch.project(&conjunct.columns)?;
                let narrow =
                    filter_record_batch(&narrow, &BooleanArray::new(current.clone(), None))?;
                scatter(current, &evaluate_kept(&conjunct.narrowed, &narrow)?)
            });
        }
        let mask = mask.unwrap_or_else(|| BooleanBuffer::new_set(rows));
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(
            mask, None,
        ))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.conjuncts.iter().map(|c| &c.expr).collect()
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        if children.len() != self.conjuncts.len() {
            return internal_err!(
                "{} children for a conjunction of {}",
                children.len(),
                self.conjuncts.len()
            );
        }
        // Without the input schema, `plain` is kept from the conjunct replaced: it chooses how a conjunct
        // is evaluated, never its answer.
        let conjuncts = self
            .conjuncts
            .iter()
            .zip(children)
            .map(|(old, expr)| Conjunct::new(expr, old.plain))
            .collect::<Result<Vec<_>>>()?;
        Ok(Arc::new(Conjunction { conjuncts }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.conjuncts.iter().enumerate() {
            if i > 0 {
                write!(f, " AND ")?;
            }
            c.expr.fmt_sql(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{answer, numbers, session, uneven_table};
    use arrow::array::{Int64Array, StringArray, StringViewArray};
    use arrow::datatypes::Field;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    /// Text that is short, exactly 12 bytes, 13 bytes, long with a short value's first bytes, of a short
    /// value's length and first bytes but another last byte, multi-byte, empty, and null, as views (`v`)
    /// and as plain strings (`p`); numbers with nulls; batches of uneven sizes.
    fn table(partitions: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("n", DataType::Int64, true),
            Field::new("v", DataType::Utf8View, true),
            Field::new("p", DataType::Utf8, true),
        ]));
        let texts = [
            Some("a"),
            Some("pending"),
            Some("pendinG"),
            Some("approved"),
            Some(""),
            Some("exactly12byt"),
            Some("exactly12bYt"),
            Some("exactly12byte"),
            Some("pending, and then some"),
            Some("café"),
            None,
        ];
        let mut next = numbers(11);
        let sizes = [1usize, 9, 300, 64, 1000, 3, 700];
        uneven_table(schema, partitions, &sizes, |size| {
            let k: Vec<Option<i64>> = (0..size)
                .map(|_| (next(25) != 0).then(|| next(40) as i64))
                .collect();
            let n: Vec<Option<i64>> = (0..size)
                .map(|_| (next(7) != 0).then(|| next(100) as i64))
                .collect();
            let text: Vec<Option<&str>> = (0..size)
                .map(|_| texts[next(texts.len() as u64) as usize])
                .collect();
            vec![
                Arc::new(Int64Array::from(k)),
                Arc::new(Int64Array::from(n)),
                Arc::new(StringViewArray::from(text.clone())),
                Arc::new(StringArray::from(text)),
            ]
        })
    }

    fn context(fast: bool, partitions: usize) -> SessionContext {
        let ctx = session(partitions, 100, |builder| {
            if fast {
                builder.with_physical_optimizer_rule(Arc::new(FastFilters))
            } else {
                builder
            }
        });
        ctx.register_table("t", Arc::new(table(partitions)))
            .expect("register");
        ctx
    }

    #[tokio::test]
    async fn fast_filters_keep_the_rows_datafusion_keeps() {
        // (query, whether a view comparison is inline, whether the filter is a conjunction)
        let queries = [
            ("SELECT k, v FROM t WHERE v = 'pending'", true, false),
            ("SELECT k, v FROM t WHERE v <> 'pending'", true, false),
            ("SELECT k, v FROM t WHERE 'a' = v", true, false),
            ("SELECT k, v FROM t WHERE v = ''", true, false),
            ("SELECT k, v FROM t WHERE v = 'exactly12byt'", true, false),
            ("SELECT k, v FROM t WHERE v = 'café'", true, false),
            ("SELECT k, v FROM t WHERE v = 'exactly12byte'", false, false),
            (
                "SELECT k, v FROM t WHERE v = 'pending, and then some'",
                false,
                false,
            ),
            (
                "SELECT k, v FROM t WHERE v = 'a' OR v = 'approved'",
                true,
                false,
            ),
            ("SELECT k, v FROM t WHERE NOT (v = 'a')", true, false),
            ("SELECT k, p FROM t WHERE p = 'pending'", false, false),
            (
                "SELECT k, n FROM t WHERE v = 'pending' AND n > 50",
                true,
                true,
            ),
            (
                "SELECT k, n FROM t WHERE n > 50 AND v <> 'approved'",
                true,
                true,
            ),
            // `k = 3` keeps about 1 row in 40: the LIKE runs on those rows only, then is scattered back.
            (
                "SELECT k, n, v FROM t WHERE k = 3 AND lower(v) LIKE '%e%'",
                false,
                true,
            ),
            (
                "SELECT k, n, v FROM t WHERE lower(v) LIKE '%e%' AND k = 3",
                false,
                true,
            ),
            // Nulls on both sides of the conjunction.
            (
                "SELECT k, n FROM t WHERE k < 20 AND n < 30 AND n IS NOT NULL",
                false,
                true,
            ),
            (
                "SELECT k, n FROM t WHERE v = 'a' AND (n > 90 OR n IS NULL)",
                true,
                true,
            ),
            (
                "SELECT k, v FROM t WHERE k IS NULL AND v LIKE 'p%' AND length(v) > 7",
                false,
                true,
            ),
            ("SELECT k FROM t WHERE n = 1000 AND k = 3", false, true),
            // A condition that reads no column, on the few rows kept.
            (
                "SELECT k, n FROM t WHERE k = 3 AND random() < 2.0",
                false,
                true,
            ),
            (
                "SELECT v, count(*) FROM t WHERE n > 10 GROUP BY v HAVING count(*) > 3",
                false,
                false,
            ),
        ];
        for partitions in [1, 3] {
            let plain = context(false, partitions);
            let fast = context(true, partitions);
            for (sql, inline, conjunction) in queries {
                let expected = answer(&plain, sql).await.sorted_lines();
                let got = answer(&fast, sql).await;
                let (got, plan) = (got.sorted_lines(), got.physical);
                assert_eq!(got, expected, "{sql} on {partitions} partitions");
                assert!(
                    expected.len() > 4 || sql.contains("n = 1000"),
                    "{sql}: too few rows to tell"
                );
                assert_eq!(plan.contains("(inline)"), inline, "{sql}\n{plan}");
                let filter = plan
                    .lines()
                    .find(|l| l.contains("FilterExec"))
                    .unwrap_or_default();
                assert_eq!(filter.contains(" AND "), conjunction, "{sql}\n{plan}");
            }
        }
    }

    #[test]
    fn a_selective_conjunct_is_evaluated_on_the_kept_rows_and_put_back_in_place() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Utf8View, true),
        ]));
        let rows = 1000i64;
        let k = Int64Array::from_iter_values(0..rows);
        let v: StringViewArray = (0..rows)
            .map(|i| (i % 3 != 0).then(|| format!("value number {i}")))
            .collect();
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(k), Arc::new(v)]).expect("batch");
        let ctx = SessionContext::new();
        let df_schema =
            datafusion::common::DFSchema::try_from(schema.as_ref().clone()).expect("schema");
        let expr = |sql: &str| {
            let logical = ctx.parse_sql_expr(sql, &df_schema).expect("parse");
            ctx.create_physical_expr(logical, &df_schema)
                .expect("physical")
        };
        // The first conjunct keeps 180 rows of 1000: the second (not plain) runs on those only.
        let conjunction = Conjunction::new(vec![expr("v LIKE '%7%'"), expr("k % 10 = 7")], &schema)
            .expect("conjunction");
        assert!(!conjunction.conjuncts[0].plain && !conjunction.conjuncts[1].plain);
        let got = conjunction
            .evaluate(&batch)
            .and_then(|r| r.into_array(batch.num_rows()))
            .expect("evaluate");
        let got = got.as_boolean();
        assert_eq!(got.null_count(), 0);
        for i in 0..rows {
            let want = i % 3 != 0 && i.to_string().contains('7') && i % 10 == 7;
            assert_eq!(got.value(i as usize), want, "row {i}");
        }
    }
}
