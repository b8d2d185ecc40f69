//! Corpora built in memory for the steps' tests: the definition compiled against a schema, rows rendered and
//! keyword-indexed as a build makes them, and job orders, with no service behind them.

use std::collections::HashMap;
use std::sync::Arc;

use lakehouse_types::dataset::ColumnInfo;
use lakehouse_types::matrix::{CorpusDefinition, Fields};
use lakehouse_types::{Caller, RequestContext, Role};
use serde_json::{Value, json};

use crate::corpus::{Corpora, Corpus, Order, Orders, Snapshot};
use crate::definition::compile;
use crate::keyword::KeywordIndex;
use crate::rows::Row;
use crate::store::StoredState;

/// A request context for a caller of `role`.
pub(crate) fn ctx(role: &str) -> RequestContext {
    RequestContext {
        caller: Caller {
            name: format!("{role}-key"),
            role: Role(role.to_owned()),
            credential: None,
        },
        request_id: String::new(),
    }
}

fn column(name: &str, data_type: &str) -> ColumnInfo {
    ColumnInfo {
        column: name.to_owned(),
        data_type: data_type.to_owned(),
        nullable: true,
    }
}

/// Corpus `workers` over rows of `id`, `role`, `city`, `status` and `pay_rate_min` (hidden from the
/// client role), filterable on `city` and `status`, with a rule on each of `status` and `pay_rate_min`
/// (the latter bound to an order's `pay_rate`), and job orders `o1` (pays 20) and `o2` (pays 30).
/// `ready: false` leaves it building, with nothing searchable.
pub(crate) fn workers(rows: &[Value], ready: bool) -> Arc<Corpus> {
    let definition: CorpusDefinition = serde_json::from_value(json!({
        "name": "workers",
        "dataset": "workers",
        "id_column": "id",
        "text": "{role} in {city}",
        "fields": ["role", "city", "status", "pay_rate_min"],
        "filterable": ["city", "status"],
        "orders": {"dataset": "job_orders", "id_column": "order_id", "text": "{title}"},
        "eligibility": [
            {"field": "status", "equals": "active", "reason": "not active"},
            {"field": "pay_rate_min", "lte": {"order": "pay_rate"}, "reason": "asks more than the order pays"},
        ],
    }))
    .expect("a valid definition");
    let schema: Vec<ColumnInfo> = ["id", "role", "city", "status"]
        .iter()
        .map(|c| column(c, "string"))
        .chain([column("pay_rate_min", "double")])
        .collect();
    let orders_schema = [
        column("order_id", "string"),
        column("title", "string"),
        column("pay_rate", "double"),
    ];
    let plan =
        Arc::new(compile(definition.clone(), &schema, Some(&orders_schema)).expect("compiles"));
    let corpus = Arc::new(Corpus::new(definition, StoredState::default()));
    if !ready {
        return corpus;
    }
    let rows: Vec<Row> = rows
        .iter()
        .map(|r| {
            let values: Fields = r.as_object().cloned().unwrap_or_default();
            let text = plan
                .template
                .render(|c| values.get(c).and_then(Value::as_str).map(str::to_owned));
            Row {
                id: values["id"].as_str().unwrap_or_default().to_owned(),
                text,
                values,
            }
        })
        .collect();
    let keyword = KeywordIndex::build(rows.iter().map(|r| r.text.as_str())).expect("indexed");
    let by_id = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), u32::try_from(i).unwrap_or(u32::MAX)))
        .collect();
    corpus.set_snapshot(Arc::new(Snapshot {
        version: 3,
        plan,
        model: None,
        rows,
        by_id,
        keyword,
        admitted: std::sync::Mutex::default(),
    }));
    let order = |title: &str, pay: f64| Order {
        text: title.to_owned(),
        fields: json!({"title": title, "pay_rate": pay})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    };
    corpus.set_orders(Arc::new(Orders {
        version: 1,
        by_id: HashMap::from([
            ("o1".to_owned(), order("Forklift operator", 20.0)),
            ("o2".to_owned(), order("Welder", 30.0)),
        ]),
    }));
    corpus
}

/// Five workers: forklift operators in Austin (one inactive, one asking 25), welders in Dallas.
pub(crate) fn five_workers() -> Vec<Value> {
    vec![
        json!({"id": "w1", "role": "forklift operator", "city": "Austin", "status": "active", "pay_rate_min": 18.0}),
        json!({"id": "w2", "role": "forklift driver", "city": "Austin", "status": "inactive", "pay_rate_min": 17.0}),
        json!({"id": "w3", "role": "forklift operator", "city": "Austin", "status": "active", "pay_rate_min": 25.0}),
        json!({"id": "w4", "role": "welder", "city": "Dallas", "status": "active", "pay_rate_min": 28.0}),
        json!({"id": "w5", "role": "welder", "city": "Dallas", "status": "active", "pay_rate_min": 35.0}),
    ]
}

/// The corpora holding `corpus`.
pub(crate) fn holding(corpus: Arc<Corpus>) -> Corpora {
    let corpora = Corpora::default();
    corpora.add(corpus);
    corpora
}
