//! The filter language of vector search and matrix search: parsed once per query into [`Filter`], then
//! matched against each candidate.
//!
//! `{"field": value}` is equality, `{"field": {"op": arg, ...}}` applies operators; every condition is
//! ANDed. A list-valued field equals a scalar when it contains it, so `{"certifications": "OSHA 10"}` works
//! on a list of certifications. A missing or null field matches nothing (not even `not_in`). Range bounds are
//! numbers, or ISO dates (`2025-01-13`) / RFC 3339 timestamps compared as points in time, never as strings.
//! `{"$and": [filter, ...]}` ANDs whole filters, for a caller combining conditions on the same field.
//!
//! It lives here, with the wire types, because two services evaluate it: vectord inside its graph walk and
//! matrixd inside its keyword retrieval, and both must agree on every item.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use crate::vector::Metadata;

/// The operators understood inside `{"field": {...}}`.
const OPERATORS: &[&str] = &[
    "eq",
    "in",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains_all",
];

/// The key that ANDs a list of whole filters.
pub const AND: &str = "$and";

/// Most conditions in one filter: each is checked against every candidate a search looks at.
pub const MAX_CONDITIONS: usize = 64;

/// Most values in one `in`, `not_in` or `contains_all` list: each is compared with every candidate's value.
pub const MAX_LIST_VALUES: usize = 1024;

/// A filter that cannot be understood; the message names the field and says what is expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(pub String);

type Result<T, E = FilterError> = std::result::Result<T, E>;

/// A parsed filter. Empty filters match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    conditions: Vec<(String, Condition)>,
    /// The filter as JSON text: equal text, equal filter (a cache key).
    source: String,
}

#[derive(Debug, Clone)]
enum Condition {
    Eq(Value),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Range { op: RangeOp, bound: Bound },
    ContainsAll(Vec<Value>),
}

#[derive(Debug, Clone, Copy)]
enum RangeOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone, Copy)]
enum Bound {
    Number(f64),
    /// Milliseconds since the epoch, UTC; a bare date is its midnight.
    Time(i64),
}

impl Filter {
    /// Parses a filter; `null` or absent is the empty filter.
    pub fn parse(value: Option<&Value>) -> Result<Filter> {
        let object = match value {
            None | Some(Value::Null) => return Ok(Filter::default()),
            Some(Value::Object(object)) => object,
            Some(other) => {
                return Err(FilterError(format!(
                    "a filter is a JSON object of field conditions, got {}",
                    kind(other)
                )));
            }
        };
        let mut conditions = Vec::new();
        Self::parse_into(object, &mut conditions, 0)?;
        if conditions.len() > MAX_CONDITIONS {
            return Err(FilterError(format!(
                "the filter has {} conditions; at most {MAX_CONDITIONS} are allowed",
                conditions.len()
            )));
        }
        let source = if conditions.is_empty() {
            String::new()
        } else {
            // serde_json's maps are ordered by key: the same conditions give the same text.
            serde_json::to_string(object).unwrap_or_default()
        };
        Ok(Filter { conditions, source })
    }

    /// The filter as canonical JSON text (empty for the empty filter): a key for caching what it matches.
    pub fn key(&self) -> &str {
        &self.source
    }

    fn parse_into(
        object: &serde_json::Map<String, Value>,
        conditions: &mut Vec<(String, Condition)>,
        depth: usize,
    ) -> Result<()> {
        for (field, spec) in object {
            if field == AND {
                let parts = spec.as_array().ok_or_else(|| {
                    FilterError(format!(
                        "'{AND}' takes a list of filters, got {}",
                        kind(spec)
                    ))
                })?;
                if depth >= 4 {
                    return Err(FilterError(format!("'{AND}' nests too deeply")));
                }
                for part in parts {
                    let Value::Object(part) = part else {
                        return Err(FilterError(format!(
                            "every item of '{AND}' is a filter object, got {}",
                            kind(part)
                        )));
                    };
                    Self::parse_into(part, conditions, depth + 1)?;
                }
                continue;
            }
            let Value::Object(ops) = spec else {
                conditions.push((field.clone(), Condition::Eq(spec.clone())));
                continue;
            };
            if ops.is_empty() {
                return Err(FilterError(format!(
                    "field '{field}' has an empty condition object; use one of {}",
                    OPERATORS.join(", ")
                )));
            }
            for (op, arg) in ops {
                conditions.push((field.clone(), parse_op(field, op, arg)?));
            }
        }
        Ok(())
    }

    /// Whether the filter has no conditions.
    pub fn is_empty(&self) -> bool {
        self.conditions.is_empty()
    }

    /// Whether an item's metadata satisfies every condition.
    pub fn matches(&self, metadata: &Metadata) -> bool {
        self.matches_by(|field| metadata.get(field))
    }

    /// Whether an item satisfies every condition, reading its fields through `get`.
    pub fn matches_by<'a>(&self, get: impl Fn(&str) -> Option<&'a Value>) -> bool {
        self.conditions.iter().all(|(field, condition)| {
            get(field).is_some_and(|value| !value.is_null() && condition.matches(value))
        })
    }

    /// The fields the filter names, each once, in order.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = Vec::new();
        for (field, _) in &self.conditions {
            if !fields.contains(&field.as_str()) {
                fields.push(field);
            }
        }
        fields
    }
}

fn parse_op(field: &str, op: &str, arg: &Value) -> Result<Condition> {
    let list = |arg: &Value| match arg.as_array() {
        Some(values) if values.len() > MAX_LIST_VALUES => Err(FilterError(format!(
            "'{op}' on field '{field}' has {} values; at most {MAX_LIST_VALUES} are allowed",
            values.len()
        ))),
        Some(values) => Ok(values.clone()),
        None => Err(FilterError(format!(
            "'{op}' on field '{field}' takes a list, got {}",
            kind(arg)
        ))),
    };
    let range = |op: RangeOp| parse_bound(field, arg).map(|bound| Condition::Range { op, bound });
    match op {
        "eq" => Ok(Condition::Eq(arg.clone())),
        "in" => list(arg).map(Condition::In),
        "not_in" => list(arg).map(Condition::NotIn),
        "contains_all" => list(arg).map(Condition::ContainsAll),
        "gt" => range(RangeOp::Gt),
        "gte" => range(RangeOp::Gte),
        "lt" => range(RangeOp::Lt),
        "lte" => range(RangeOp::Lte),
        unknown => Err(FilterError(format!(
            "unknown operator '{unknown}' on field '{field}'; use one of {}",
            OPERATORS.join(", ")
        ))),
    }
}

fn parse_bound(field: &str, arg: &Value) -> Result<Bound> {
    if let Some(n) = arg.as_f64() {
        return Ok(Bound::Number(n));
    }
    if let Some(s) = arg.as_str() {
        return parse_time(s).map(Bound::Time).ok_or_else(|| {
            FilterError(format!(
                "range bound '{s}' on field '{field}' is neither a number nor an ISO date (YYYY-MM-DD) \
                 or RFC 3339 timestamp"
            ))
        });
    }
    Err(FilterError(format!(
        "range bound on field '{field}' must be a number or an ISO date, got {}",
        kind(arg)
    )))
}

/// An ISO date or timestamp as milliseconds since the epoch (timestamps without an offset are UTC).
pub fn parse_time(s: &str) -> Option<i64> {
    // Dates are what filters compare most (availability, start dates), once per candidate: read
    // `YYYY-MM-DD` directly rather than through chrono's format parser.
    if let Some(date) = plain_date(s.as_bytes()) {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
    }
    if let Ok(date) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis());
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(s) {
        return Some(time.timestamp_millis());
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(s, format).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

/// `YYYY-MM-DD`, exactly.
fn plain_date(b: &[u8]) -> Option<NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let number = |digits: &[u8]| -> Option<u32> {
        digits.iter().try_fold(0u32, |n, d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let year = i32::try_from(number(&b[..4])?).ok()?;
    NaiveDate::from_ymd_opt(year, number(&b[5..7])?, number(&b[8..])?)
}

impl Condition {
    fn matches(&self, value: &Value) -> bool {
        match self {
            Condition::Eq(expected) => eq_or_contains(value, expected),
            Condition::In(options) => options.iter().any(|option| eq_or_contains(value, option)),
            Condition::NotIn(options) => {
                !options.iter().any(|option| eq_or_contains(value, option))
            }
            Condition::ContainsAll(required) => match value.as_array() {
                Some(items) => required
                    .iter()
                    .all(|needed| items.iter().any(|item| json_eq(item, needed))),
                None => required.iter().all(|needed| json_eq(value, needed)),
            },
            Condition::Range { op, bound } => {
                let ordering = match (bound, value) {
                    (Bound::Number(b), Value::Number(n)) => {
                        n.as_f64().and_then(|n| n.partial_cmp(b))
                    }
                    (Bound::Time(b), Value::String(s)) => parse_time(s).map(|t| t.cmp(b)),
                    _ => None,
                };
                ordering.is_some_and(|ordering| match op {
                    RangeOp::Gt => ordering.is_gt(),
                    RangeOp::Gte => ordering.is_ge(),
                    RangeOp::Lt => ordering.is_lt(),
                    RangeOp::Lte => ordering.is_le(),
                })
            }
        }
    }
}

/// Equality, where a list field "equals" a scalar it contains.
fn eq_or_contains(value: &Value, expected: &Value) -> bool {
    match (value, expected) {
        (Value::Array(items), scalar) if !scalar.is_array() => {
            items.iter().any(|item| json_eq(item, scalar))
        }
        _ => json_eq(value, expected),
    }
}

/// JSON equality where numbers compare by value, so `3` equals `3.0`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        _ => a == b,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn meta(value: Value) -> Metadata {
        value.as_object().cloned().unwrap_or_default()
    }

    fn check(filter: Value, item: Value) -> bool {
        let filter = Filter::parse(Some(&filter)).expect("valid filter");
        filter.matches(&meta(item))
    }

    #[test]
    fn equality_and_numbers() {
        let item = json!({"state": "TX", "group": 3, "certs": ["OSHA 10", "Forklift"]});
        assert!(check(json!({"state": "TX", "group": 3}), item.clone()));
        assert!(check(json!({"group": 3.0}), item.clone()));
        assert!(!check(json!({"state": "CA"}), item.clone()));
        assert!(check(json!({"certs": "Forklift"}), item.clone()));
        assert!(!check(json!({"missing": "x"}), item.clone()));
        assert!(check(json!({"state": {"eq": "TX"}}), item));
    }

    #[test]
    fn in_and_contains_all() {
        let item = json!({"role": "welder", "certs": ["OSHA 10", "Forklift"]});
        assert!(check(
            json!({"role": {"in": ["fitter", "welder"]}}),
            item.clone()
        ));
        assert!(!check(json!({"role": {"in": ["fitter"]}}), item.clone()));
        assert!(check(
            json!({"certs": {"contains_all": ["OSHA 10"]}}),
            item.clone()
        ));
        assert!(check(
            json!({"certs": {"contains_all": ["Forklift", "OSHA 10"]}}),
            item.clone()
        ));
        assert!(!check(
            json!({"certs": {"contains_all": ["OSHA 30", "OSHA 10"]}}),
            item.clone()
        ));
        assert!(check(json!({"certs": {"in": ["CDL", "Forklift"]}}), item));
    }

    #[test]
    fn ranges_on_numbers_and_dates() {
        let item =
            json!({"rating": 4.5, "available_from": "2025-01-10", "seen": "2025-01-10T12:00:00Z"});
        assert!(check(
            json!({"rating": {"gte": 4.0, "lt": 5}}),
            item.clone()
        ));
        assert!(!check(json!({"rating": {"gt": 4.5}}), item.clone()));
        assert!(check(json!({"rating": {"lte": 4.5}}), item.clone()));
        assert!(check(
            json!({"available_from": {"lte": "2025-01-13"}}),
            item.clone()
        ));
        assert!(!check(
            json!({"available_from": {"gt": "2025-01-13"}}),
            item.clone()
        ));
        // Compared as dates, not strings: "2025-1-9" style is refused, timestamps order with dates.
        assert!(check(
            json!({"seen": {"gt": "2025-01-10", "lt": "2025-01-11"}}),
            item.clone()
        ));
        // A number bound does not match a date field, nor a date bound a number.
        assert!(!check(json!({"available_from": {"gt": 3}}), item.clone()));
        assert!(!check(json!({"rating": {"gt": "2020-01-01"}}), item));
    }

    #[test]
    fn filters_are_capped() {
        let values = |n: usize| Value::Array((0..n).map(|i| json!(i)).collect());
        Filter::parse(Some(&json!({"zip": {"in": values(MAX_LIST_VALUES)}}))).expect("at the cap");
        let e = Filter::parse(Some(
            &json!({"zip": {"not_in": values(MAX_LIST_VALUES + 1)}}),
        ))
        .expect_err("over the cap");
        assert!(e.0.contains("1025 values") && e.0.contains("1024"), "{e}");
        let conditions =
            |n: usize| Value::Object((0..n).map(|i| (format!("f{i}"), json!(i))).collect());
        Filter::parse(Some(&conditions(MAX_CONDITIONS))).expect("at the cap");
        let e = Filter::parse(Some(&conditions(MAX_CONDITIONS + 1))).expect_err("over the cap");
        assert!(e.0.contains("at most 64"), "{e}");
        // Conditions joined by $and count too.
        let parts: Vec<Value> = (0..3).map(|_| conditions(30)).collect();
        let e = Filter::parse(Some(&json!({"$and": parts}))).expect_err("90 conditions");
        assert!(e.0.contains("90 conditions"), "{e}");
    }

    #[test]
    fn bad_filters_are_refused() {
        for bad in [
            json!({"rating": {"between": [1, 2]}}),
            json!({"rating": {}}),
            json!({"role": {"in": "welder"}}),
            json!({"certs": {"contains_all": "OSHA"}}),
            json!({"rating": {"gt": "soon"}}),
            json!({"rating": {"gt": [1]}}),
            json!(["state", "TX"]),
            json!({"$and": {"state": "TX"}}),
            json!({"$and": [["state"]]}),
            json!({"status": {"not_in": "x"}}),
            json!("state = TX"),
        ] {
            let err = Filter::parse(Some(&bad)).expect_err("must be refused");
            assert!(matches!(err, FilterError(_)), "{bad}: {err}");
        }
        assert!(Filter::parse(Some(&json!({}))).expect("empty").is_empty());
        assert!(Filter::parse(None).expect("none").is_empty());
    }

    #[test]
    fn not_in_and_nulls() {
        let item = json!({"status": "active", "gone": null, "certs": ["OSHA 10"]});
        assert!(check(
            json!({"status": {"not_in": ["do_not_rehire"]}}),
            item.clone()
        ));
        assert!(!check(
            json!({"status": {"not_in": ["active", "x"]}}),
            item.clone()
        ));
        assert!(!check(
            json!({"certs": {"not_in": ["OSHA 10"]}}),
            item.clone()
        ));
        // A null or missing field fails every condition, `not_in` included.
        assert!(!check(json!({"gone": {"not_in": ["x"]}}), item.clone()));
        assert!(!check(json!({"missing": {"not_in": ["x"]}}), item.clone()));
        assert!(!check(json!({"gone": null}), item));
    }

    #[test]
    fn and_combines_conditions_on_one_field() {
        let item = json!({"status": "active", "rating": 4.2});
        let both = json!({"$and": [{"status": "active"}, {"status": {"not_in": ["do_not_rehire"]}}],
                          "rating": {"gte": 4}});
        assert!(check(both, item.clone()));
        assert!(!check(
            json!({"$and": [{"rating": {"gte": 4}}, {"rating": {"gte": 4.5}}]}),
            item
        ));
        let parsed =
            Filter::parse(Some(&json!({"$and": [{"a": 1}, {"b": 2, "a": 3}]}))).expect("valid");
        assert_eq!(parsed.fields(), vec!["a", "b"]);
    }

    #[test]
    fn plain_dates_read_like_chrono_reads_them() {
        for text in ["2025-01-13", "1999-12-31", "2024-02-29", "0001-01-01"] {
            let expected = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
            assert_eq!(plain_date(text.as_bytes()), expected, "{text}");
        }
        for text in [
            "2025-02-30",
            "2025-1-13",
            "2025-01-1x",
            "20250113",
            "2025-13-01",
        ] {
            assert_eq!(plain_date(text.as_bytes()), None, "{text}");
        }
    }

    /// Filters built from the language's pieces and near-misses of them: parsing never panics, a parsed
    /// filter matches any item without panicking, and its key parses back to the same filter.
    #[test]
    fn fuzz_filters() {
        use lakehouse_test_helpers::fuzz::{Gen, cases};
        let keys = [
            "state",
            "rating",
            "certs",
            "from",
            "$and",
            "eq",
            "in",
            "not_in",
            "contains_all",
            "gt",
            "gte",
            "lt",
            "lte",
            "",
            "é",
            "$or",
        ];
        let words = [
            "TX",
            "2025-01-13",
            "2025-02-30",
            "2025-01-13T08:00:00Z",
            "9999-12-31",
            "-1",
            "1e400",
            "OSHA 10",
            "",
            "\u{0}",
            "x",
        ];
        let count = cases(20_000);
        let mut g = Gen::new(1);
        for case in 0..count {
            let raw = if g.one_in(4) {
                let text = g.json(4, &keys, &words).to_string();
                match serde_json::from_slice::<Value>(&g.mutate(&text)) {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            } else {
                g.json(5, &keys, &words)
            };
            let Ok(filter) = Filter::parse(Some(&raw)) else {
                continue;
            };
            let item = g.json(2, &keys, &words);
            if let Value::Object(item) = &item {
                let _ = filter.matches(item);
            }
            let again: Value = serde_json::from_str(filter.key()).unwrap_or(Value::Null);
            let again = Filter::parse(Some(&again)).unwrap_or_else(|e| {
                panic!("case {case}: {raw} keyed as {} fails: {e}", filter.key())
            });
            // serde_json reads a float to within an ulp, not exactly (its `float_roundtrip` is off): a key
            // holding a float may read back one ulp off (1.8446744073467442e27 did, at case 159,146 of a
            // million). That costs a cache miss, no more; from the second reading on the key is stable.
            let third: Value = serde_json::from_str(again.key()).unwrap_or(Value::Null);
            let third = Filter::parse(Some(&third)).expect("a key parses");
            assert_eq!(third.key(), again.key(), "case {case}: {raw}");
        }
    }

    /// Dates and timestamps: never a panic, and a plain date read directly agrees with chrono.
    #[test]
    fn fuzz_parse_time() {
        use lakehouse_test_helpers::fuzz::{Gen, cases};
        let pieces = [
            "2025", "-", "01", "13", "02", "30", "T", "08:00:00", "Z", "+02:00", ".5", " ", "9",
            "0",
        ];
        let mut g = Gen::new(2);
        for _ in 0..cases(50_000) {
            let text = g.join(&pieces, 8);
            let parsed = parse_time(&text);
            if let Ok(date) = NaiveDate::parse_from_str(&text, "%Y-%m-%d")
                && text.len() == 10
            {
                assert_eq!(
                    parsed,
                    date.and_hms_opt(0, 0, 0)
                        .map(|t| t.and_utc().timestamp_millis()),
                    "{text}"
                );
            }
        }
    }
}
