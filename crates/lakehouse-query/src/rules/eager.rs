//! Aggregation before a join ("eager aggregation"): a logical optimizer rule.
//!
//! A staffing report joins a fact table to a dimension and groups by the dimension:
//! `sum(t.hours) ... FROM timesheets t JOIN workers w ON t.worker_id = w.worker_id GROUP BY w.state,
//! w.worker_id`. DataFusion plans it as written: every one of the 1M timesheets is probed into the join,
//! carries the dimension's columns out of it, and is then grouped by a key of several columns (a string
//! among them), the costliest part of the query. Summing the timesheets by `worker_id` first gives one row
//! per worker (50,000), grouped by one integer; the join and the grouping above it then see those rows
//! only. The staffing benchmark's `top_workers_per_state` and `top_clients_by_revenue` (two joins, where the
//! rule applies at both) gain most (docs/benchmarks.md).
//!
//! [`EagerAggregation`] rewrites
//!
//! ```text
//! Aggregate: groupBy=[G], aggr=[f(a)]             Projection: G, F AS "f(a)"
//!   [Projection: columns]                            Aggregate: groupBy=[G], aggr=[f'(F) AS F]
//!     Inner Join: l.k = r.k                 into         Inner Join: l.k = r.k
//!       L                                                  Aggregate: groupBy=[l.k, L's columns in G], aggr=[f(a) AS F]
//!       R                                                    L
//!                                                          R
//! ```
//!
//! where every aggregate reads only L's columns (or none, as `count(*)`), and is `sum`, `count`, `min` or
//! `max` (f' is `sum` for `count`, f otherwise) with no DISTINCT, FILTER or ORDER BY. The result is the
//! same because each joined row of the original is one row of L matched with one row of R: a group of L
//! rows sharing a key and G's columns is matched with the same R rows as each of its members, so its
//! partial aggregate enters the same final groups as often as its rows did. Rows with a null key drop out
//! of the inner join on either path. (A floating-point sum adds in another order, so it may differ in its
//! last bits, as it does between two runs of the same plan over differently split input.) The rule
//! requires:
//!
//! - at least one GROUP BY expression and no grouping sets: over no rows, `count(*)` without GROUP BY is 0
//!   but the `sum` of no partial counts would be null;
//! - an inner join on column pairs only, with no other join condition, null never equal to null;
//! - join keys of types whose grouping and join equality agree (integers, decimals, text, dates, times,
//!   booleans; not floats, whose `-0.0`/`0.0` and NaN could group where they would not join);
//! - L several times larger than R by the tables' row counts and a guess at what filters keep
//!   ([`MIN_RATIO`], [`estimated_rows`]): when the join follows a foreign key, L's keys are at most R's rows,
//!   so the pre-aggregate cuts the rows the join and the final grouping see by at least that much. Where
//!   row counts are unknown, nothing is rewritten.
//!
//! The new aggregates are named `__eager_agg…`; an aggregate over such a column is not rewritten again, so
//! the rule reaches a fixed point. Applied top-down, it also goes through a chain of joins: the
//! pre-aggregate over `timesheets ⋈ job_orders` is itself pushed below that join.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, NullEquality, Result};
use datafusion::datasource::source_as_provider;
use datafusion::functions_aggregate::count::Count;
use datafusion::functions_aggregate::min_max::{Max, Min};
use datafusion::functions_aggregate::sum::{Sum, sum_udaf};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{
    Aggregate, AggregateUDF, Cast, Expr, Join, JoinType, LogicalPlan, Projection,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};

/// How many times more rows the aggregated side must have than the other side (see the module's
/// documentation). Grouping L by its key costs about one hash-table pass over L's rows; it saves the join's
/// probe and output for those rows and the final grouping by G, which together cost more than that pass
/// (23 ms of grouping and 8 ms of join against 10 ms of grouping by `worker_id`, for 1M timesheets), so
/// even a modest reduction pays. Four leaves room for joins that do not follow a foreign key.
const MIN_RATIO: usize = 4;

/// The prefix of the partial aggregates' names.
const PREFIX: &str = "__eager_agg";

/// The logical optimizer rule: see the module's documentation.
#[derive(Debug, Default)]
pub(crate) struct EagerAggregation;

impl OptimizerRule for EagerAggregation {
    fn name(&self) -> &str {
        "eager_aggregation"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::TopDown)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        // A rewrite that cannot be built leaves the plan as it was rather than failing the query.
        Ok(match push_below_join(aggregate) {
            Ok(Some(rewritten)) => Transformed::yes(rewritten),
            Ok(None) => Transformed::no(plan),
            Err(e) => {
                tracing::debug!(error = %e, "aggregation left above the join");
                Transformed::no(plan)
            }
        })
    }
}

/// The aggregate functions the rule moves, and how their partial results are combined.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Sum,
    Count,
    Min,
    Max,
}

impl Kind {
    fn of(func: &AggregateUDF) -> Option<Kind> {
        // By type, not by name: a function registered under the name `sum` may compute something else.
        let inner: &dyn Any = func.inner().as_ref();
        if inner.is::<Sum>() {
            Some(Kind::Sum)
        } else if inner.is::<Count>() {
            Some(Kind::Count)
        } else if inner.is::<Min>() {
            Some(Kind::Min)
        } else if inner.is::<Max>() {
            Some(Kind::Max)
        } else {
            None
        }
    }
}

/// One aggregate of the original node.
struct Moved<'a> {
    function: &'a AggregateFunction,
    kind: Kind,
}

/// Which join input the aggregates read.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Left,
    Right,
}

/// `aggregate` with its aggregation moved below the join under it, or `None` where the rule does not apply.
fn push_below_join(aggregate: &Aggregate) -> Result<Option<LogicalPlan>> {
    if aggregate.group_expr.is_empty()
        || aggregate
            .group_expr
            .iter()
            .any(|e| matches!(e, Expr::GroupingSet(_)))
    {
        return Ok(None);
    }
    let mut input = aggregate.input.as_ref();
    if let LogicalPlan::Projection(projection) = input
        && projection.expr.iter().all(|e| matches!(e, Expr::Column(_)))
    {
        input = projection.input.as_ref();
    }
    let LogicalPlan::Join(join) = input else {
        return Ok(None);
    };
    if join.join_type != JoinType::Inner
        || join.filter.is_some()
        || join.null_equality != NullEquality::NullEqualsNothing
        || join.null_aware
        || join.on.is_empty()
    {
        return Ok(None);
    }

    let Some(moved) = movable(&aggregate.aggr_expr) else {
        return Ok(None);
    };
    let read: HashSet<&Column> = moved
        .iter()
        .flat_map(|m| m.function.params.args.iter().flat_map(Expr::column_refs))
        .collect();
    let (left_rows, right_rows) = (estimated_rows(&join.left), estimated_rows(&join.right));
    let side = if read.is_empty() {
        match left_rows.zip(right_rows) {
            Some((l, r)) if l >= r => Side::Left,
            Some(_) => Side::Right,
            None => return Ok(None),
        }
    } else if read.iter().all(|c| only_in(c, &join.left, &join.right)) {
        Side::Left
    } else if read.iter().all(|c| only_in(c, &join.right, &join.left)) {
        Side::Right
    } else {
        return Ok(None);
    };
    let (inner, other, inner_rows, other_rows) = match side {
        Side::Left => (&join.left, &join.right, left_rows, right_rows),
        Side::Right => (&join.right, &join.left, right_rows, left_rows),
    };
    match inner_rows.zip(other_rows) {
        Some((i, o)) if i >= o.max(1).saturating_mul(MIN_RATIO) => {}
        _ => return Ok(None),
    }

    // The pre-aggregate's groups: the join keys, then the columns of this side that GROUP BY reads.
    let mut groups: Vec<Column> = Vec::new();
    for (l, r) in &join.on {
        let key = if side == Side::Left { l } else { r };
        let Expr::Column(column) = key else {
            return Ok(None);
        };
        if !joins_as_it_groups(
            inner
                .schema()
                .qualified_field_from_column(column)?
                .1
                .data_type(),
        ) {
            return Ok(None);
        }
        if !groups.contains(column) {
            groups.push(column.clone());
        }
    }
    for expr in &aggregate.group_expr {
        let mut read: Vec<&Column> = expr.column_refs().into_iter().collect();
        read.sort();
        for column in read {
            if !inner.schema().has_column(column) {
                continue;
            }
            if other.schema().has_column(column) {
                return Ok(None);
            }
            if !groups.contains(column) {
                groups.push(column.clone());
            }
        }
    }

    let names = partial_names(join.schema.as_ref(), moved.len());
    let partial = Aggregate::try_new(
        Arc::clone(inner),
        groups.into_iter().map(Expr::Column).collect(),
        moved
            .iter()
            .zip(&names)
            .map(|(m, name)| Expr::AggregateFunction(m.function.clone()).alias(name))
            .collect(),
    )?;
    let partial = Arc::new(LogicalPlan::Aggregate(partial));
    let (left, right) = match side {
        Side::Left => (partial, Arc::clone(other)),
        Side::Right => (Arc::clone(other), partial),
    };
    let joined = Join::try_new(
        left,
        right,
        join.on.clone(),
        None,
        JoinType::Inner,
        join.join_constraint,
        join.null_equality,
        false,
    )?;

    let combined = moved
        .iter()
        .zip(&names)
        .map(|(m, name)| {
            let func = match m.kind {
                Kind::Sum | Kind::Count => sum_udaf(),
                Kind::Min | Kind::Max => Arc::clone(&m.function.func),
            };
            Expr::AggregateFunction(AggregateFunction::new_udf(
                func,
                vec![Expr::Column(Column::new_unqualified(name))],
                false,
                None,
                vec![],
                None,
            ))
            .alias(name)
        })
        .collect();
    let combined = Aggregate::try_new(
        Arc::new(LogicalPlan::Join(joined)),
        aggregate.group_expr.clone(),
        combined,
    )?;

    // The original output, name for name and type for type.
    let groups = aggregate.group_expr.len();
    let mut exprs = Vec::with_capacity(aggregate.schema.fields().len());
    for (i, (qualifier, field)) in aggregate.schema.iter().enumerate() {
        let (ours_qualifier, ours) = combined.schema.qualified_field(i);
        let mut expr = Expr::Column(Column::new(ours_qualifier.cloned(), ours.name()));
        let cast = i >= groups && ours.data_type() != field.data_type();
        if cast {
            expr = Expr::Cast(Cast::new(Box::new(expr), field.data_type().clone()));
        }
        if cast || ours_qualifier != qualifier || ours.name() != field.name() {
            expr = expr.alias_qualified(qualifier.cloned(), field.name());
        }
        exprs.push(expr);
    }
    let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(combined)))?;
    // Defensive: were the output to differ, DataFusion's optimizer would fail the query.
    if !projection
        .schema
        .logically_equivalent_names_and_types(&aggregate.schema)
    {
        return Ok(None);
    }
    Ok(Some(LogicalPlan::Projection(projection)))
}

/// The aggregates, when every one can be computed in two steps.
fn movable(aggr_expr: &[Expr]) -> Option<Vec<Moved<'_>>> {
    aggr_expr
        .iter()
        .map(|expr| {
            let expr = if let Expr::Alias(alias) = expr {
                alias.expr.as_ref()
            } else {
                expr
            };
            let Expr::AggregateFunction(function) = expr else {
                return None;
            };
            let params = &function.params;
            let plain = !params.distinct
                && params.filter.is_none()
                && params.order_by.is_empty()
                && params.null_treatment.is_none()
                && !params.args.iter().any(Expr::is_volatile)
                // Already a partial result of this rule.
                && !params
                    .args
                    .iter()
                    .flat_map(Expr::column_refs)
                    .any(|c| c.name.starts_with(PREFIX));
            let kind = Kind::of(&function.func)?;
            plain.then_some(Moved { function, kind })
        })
        .collect()
}

/// Whether `column` is a column of `plan` and not of `other`.
fn only_in(column: &Column, plan: &LogicalPlan, other: &LogicalPlan) -> bool {
    plan.schema().has_column(column) && !other.schema().has_column(column)
}

/// `n` names for partial aggregates that no column of `schema` has.
fn partial_names(schema: &DFSchema, n: usize) -> Vec<String> {
    let taken = |level: usize| {
        let prefix = format!("{PREFIX}{level}_");
        schema
            .fields()
            .iter()
            .any(|f| f.name().starts_with(&prefix))
    };
    let level = (0..).find(|&l| !taken(l)).unwrap_or(0);
    (0..n).map(|i| format!("{PREFIX}{level}_{i}")).collect()
}

/// Types whose equality in a join is the equality of grouping.
#[allow(clippy::wildcard_enum_match_arm)] // a few of Arrow's many types
fn joins_as_it_groups(data_type: &DataType) -> bool {
    use DataType::*;
    match data_type {
        Dictionary(_, value) => joins_as_it_groups(value),
        Boolean
        | Int8
        | Int16
        | Int32
        | Int64
        | UInt8
        | UInt16
        | UInt32
        | UInt64
        | Utf8
        | LargeUtf8
        | Utf8View
        | Date32
        | Date64
        | Time32(_)
        | Time64(_)
        | Timestamp(_, _)
        | Decimal32(_, _)
        | Decimal64(_, _)
        | Decimal128(_, _)
        | Decimal256(_, _) => true,
        _ => false,
    }
}

/// About how many rows `plan` gives, by the tables' row counts, where those are known: each condition of a
/// filter is taken to keep a fifth of the rows (DataFusion's default selectivity for a filter it knows
/// nothing about), and an inner join to give as many rows as its larger input (as a join along a foreign key
/// does). A filter that keeps few rows leaves little for the rule to save: `pending_by_client` keeps 3.4% of
/// 1M timesheets for 20,000 job orders and was about 1 ms slower rewritten.
#[allow(clippy::wildcard_enum_match_arm)] // a few of DataFusion's many plan nodes
fn estimated_rows(plan: &LogicalPlan) -> Option<usize> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let statistics = source_as_provider(&scan.source).ok()?.statistics()?;
            let rows = *statistics.num_rows.get_value()?;
            Some(scan.fetch.map_or(rows, |fetch| fetch.min(rows)))
        }
        LogicalPlan::Filter(filter) => {
            let conditions = split_conjunction(&filter.predicate).len();
            let kept = (0..conditions).fold(estimated_rows(&filter.input)?, |rows, _| rows / 5);
            Some(kept.max(1))
        }
        LogicalPlan::Projection(projection) => estimated_rows(&projection.input),
        LogicalPlan::SubqueryAlias(alias) => estimated_rows(&alias.input),
        LogicalPlan::Join(join) if join.join_type == JoinType::Inner => {
            Some(estimated_rows(&join.left)?.max(estimated_rows(&join.right)?))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{answer, numbers, session};
    use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{Field, Schema, SchemaRef};
    use async_trait::async_trait;
    use datafusion::catalog::{Session, TableProvider};
    use datafusion::common::Statistics;
    use datafusion::common::stats::Precision;
    use datafusion::datasource::{MemTable, TableType};
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::prelude::SessionContext;

    /// An in-memory table that knows its row count, as the dataset tables do.
    #[derive(Debug)]
    struct Counted {
        rows: usize,
        inner: MemTable,
    }

    #[async_trait]
    impl TableProvider for Counted {
        fn schema(&self) -> SchemaRef {
            self.inner.schema()
        }

        fn table_type(&self) -> TableType {
            TableType::Base
        }

        async fn scan(
            &self,
            state: &dyn Session,
            projection: Option<&Vec<usize>>,
            filters: &[Expr],
            limit: Option<usize>,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            self.inner.scan(state, projection, filters, limit).await
        }

        fn statistics(&self) -> Option<Statistics> {
            let mut statistics = Statistics::new_unknown(&self.inner.schema());
            statistics.num_rows = Precision::Exact(self.rows);
            Some(statistics)
        }
    }

    /// `columns` cut into batches of uneven sizes, spread over `partitions`.
    fn table(columns: Vec<(&str, arrow::array::ArrayRef)>, partitions: usize) -> Arc<Counted> {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, array)| array).collect(),
        )
        .expect("batch");
        let rows = batch.num_rows();
        let mut parts = vec![Vec::new(); partitions];
        let (mut start, mut i) = (0, 0);
        for size in [1usize, 90, 7, 300, 33, 600].into_iter().cycle() {
            if start >= rows {
                break;
            }
            let size = size.min(rows - start);
            parts[i % partitions].push(batch.slice(start, size));
            start += size;
            i += 1;
        }
        Arc::new(Counted {
            rows,
            inner: MemTable::try_new(schema, parts).expect("table"),
        })
    }

    /// Facts `f` (2,000 rows: keys into `d` and `e` with nulls and misses, values with nulls), a dimension
    /// `d` (50 rows, two keys twice, one null key) pointing into `e` (8 rows).
    fn context(eager: bool, partitions: usize) -> SessionContext {
        let mut next = numbers(11);
        let n = 2000;
        let f = table(
            vec![
                ("id", Arc::new(Int64Array::from_iter_values(0..n))),
                (
                    "k",
                    Arc::new(Int64Array::from_iter(
                        (0..n).map(|_| (next(25) != 0).then(|| next(52) as i64)),
                    )),
                ),
                (
                    "k2",
                    Arc::new(StringArray::from_iter(
                        (0..n).map(|_| (next(10) != 0).then(|| format!("e{}", next(9)))),
                    )),
                ),
                (
                    "s",
                    Arc::new(StringArray::from_iter((0..n).map(|_| {
                        (next(30) != 0).then(|| ["a", "b", "x"][next(3) as usize])
                    }))),
                ),
                (
                    "v",
                    Arc::new(Float64Array::from_iter(
                        (0..n).map(|_| (next(8) != 0).then(|| next(400) as f64 / 4.0 - 20.0)),
                    )),
                ),
                (
                    "n",
                    Arc::new(Int64Array::from_iter(
                        (0..n).map(|_| (next(12) != 0).then(|| next(100) as i64 - 30)),
                    )),
                ),
            ],
            partitions,
        );
        let keys: Vec<Option<i64>> = (0..47).map(Some).chain([Some(3), Some(9), None]).collect();
        let d = table(
            vec![
                ("k", Arc::new(Int64Array::from(keys))),
                (
                    "region",
                    Arc::new(StringArray::from_iter(
                        (0..50).map(|i| (i % 11 != 10).then(|| format!("r{}", i % 4))),
                    )),
                ),
                (
                    "w",
                    Arc::new(Float64Array::from_iter_values(
                        (0..50).map(|i| f64::from(i) / 2.0),
                    )),
                ),
                (
                    "e_id",
                    Arc::new(Int64Array::from_iter(
                        (0..50).map(|i| (i % 13 != 12).then_some(i64::from(i % 9))),
                    )),
                ),
            ],
            1,
        );
        let e = table(
            vec![
                ("id", Arc::new(Int64Array::from_iter_values(0..8))),
                (
                    "name",
                    Arc::new(StringArray::from_iter_values(
                        (0..8).map(|i| format!("e{i}")),
                    )),
                ),
                (
                    "grp",
                    Arc::new(StringArray::from_iter_values(
                        (0..8).map(|i| format!("g{}", i % 3)),
                    )),
                ),
            ],
            1,
        );
        let ctx = session(partitions, 64, |builder| {
            if eager {
                builder.with_optimizer_rule(Arc::new(EagerAggregation))
            } else {
                builder
            }
        });
        for (name, table) in [("f", f), ("d", d), ("e", e)] {
            ctx.register_table(name, table).expect("register");
        }
        ctx
    }

    /// The rows, sorted, and the optimized logical plan.
    async fn run(ctx: &SessionContext, sql: &str) -> (Vec<String>, String) {
        let answer = answer(ctx, sql).await;
        (answer.sorted_lines(), answer.logical)
    }

    #[tokio::test]
    async fn aggregating_before_the_join_gives_the_same_rows() {
        let queries = [
            (
                "SELECT d.region, sum(f.v) AS x, count(*) AS c FROM f JOIN d ON f.k = d.k GROUP BY d.region",
                true,
            ),
            (
                "SELECT d.region, d.k, sum(f.n), min(f.v), max(f.s), count(f.v), count(f.s) \
                 FROM f JOIN d ON f.k = d.k GROUP BY d.region, d.k",
                true,
            ),
            (
                "SELECT f.s, d.region, sum(f.n) AS total FROM f JOIN d ON f.k = d.k WHERE f.v > 10 \
                 GROUP BY f.s, d.region",
                true,
            ),
            (
                "SELECT f.n % 3 AS m, d.region, count(*) FROM d JOIN f ON d.k = f.k GROUP BY f.n % 3, d.region",
                true,
            ),
            (
                "SELECT e.grp, sum(f.v * f.n) AS x, count(*) AS c FROM f JOIN d ON f.k = d.k \
                 JOIN e ON d.e_id = e.id WHERE f.s <> 'x' GROUP BY e.grp HAVING count(*) > 3",
                true,
            ),
            (
                "SELECT d.region, sum(CAST(f.v AS DECIMAL(12, 2))) AS x, max(f.n) FROM f JOIN d ON f.k = d.k \
                 GROUP BY d.region",
                true,
            ),
            (
                "SELECT e.grp, count(*), sum(f.n) FROM f JOIN e ON f.k2 = e.name GROUP BY e.grp",
                true,
            ),
            (
                "SELECT d.region, k, sum(f.n), count(*) FROM f JOIN d USING (k) GROUP BY d.region, k",
                true,
            ),
            (
                "SELECT region, k, x, rank() OVER (PARTITION BY region ORDER BY x DESC, k) AS r FROM \
                 (SELECT d.region, d.k, sum(f.v) AS x FROM f JOIN d ON f.k = d.k GROUP BY d.region, d.k)",
                true,
            ),
            (
                "SELECT d.region, avg(f.v) FROM f JOIN d ON f.k = d.k GROUP BY d.region",
                false,
            ),
            (
                "SELECT d.region, count(DISTINCT f.n) FROM f JOIN d ON f.k = d.k GROUP BY d.region",
                false,
            ),
            (
                "SELECT d.region, sum(f.v * d.w) FROM f JOIN d ON f.k = d.k GROUP BY d.region",
                false,
            ),
            (
                "SELECT count(*), sum(f.v) FROM f JOIN d ON f.k = d.k",
                false,
            ),
            // Two conditions are guessed to keep 1/25 of the facts: 80 rows against 50.
            (
                "SELECT d.region, sum(f.n) FROM f JOIN d ON f.k = d.k WHERE f.v > 0 AND f.n > 0 \
                 GROUP BY d.region",
                false,
            ),
            (
                "SELECT d.region, sum(f.v) FROM f LEFT JOIN d ON f.k = d.k GROUP BY d.region",
                false,
            ),
            (
                "SELECT b.s, sum(a.v) FROM f a JOIN f b ON a.id = b.id GROUP BY b.s",
                false,
            ),
            (
                "SELECT d.region, sum(f.v) FROM f JOIN d ON f.k = d.k GROUP BY ROLLUP(d.region)",
                false,
            ),
            (
                "SELECT d.region, sum(f.n) FROM f JOIN d ON f.k = d.k AND f.v > d.w GROUP BY d.region",
                false,
            ),
            (
                "SELECT d.region, sum(f.n) FROM f JOIN d ON f.v = d.w GROUP BY d.region",
                false,
            ),
        ];
        for partitions in [1, 3] {
            let (with, without) = (context(true, partitions), context(false, partitions));
            for (sql, taken) in queries {
                let (ours, plan) = run(&with, sql).await;
                let (theirs, _) = run(&without, sql).await;
                assert!(ours.len() > 4, "{sql}: no rows\n{}", ours.join("\n"));
                assert_eq!(ours, theirs, "{sql} on {partitions} partitions");
                assert_eq!(
                    plan.contains(PREFIX),
                    taken,
                    "{sql} on {partitions} partitions:\n{plan}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_chain_of_joins_is_aggregated_at_each_level() {
        let ctx = context(true, 2);
        let (_, plan) = run(
            &ctx,
            "SELECT e.grp, sum(f.n) FROM f JOIN d ON f.k = d.k JOIN e ON d.e_id = e.id GROUP BY e.grp",
        )
        .await;
        let partial = plan
            .lines()
            .filter(|l| l.trim_start().starts_with("Aggregate:"))
            .count();
        assert_eq!(partial, 3, "{plan}");
    }
}
