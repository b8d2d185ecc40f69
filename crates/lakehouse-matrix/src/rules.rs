//! The eligibility judge: declarative rules, bound to a job order, checked on each candidate.
//!
//! A rule names a field, a test and the reason shown when it fails:
//! `{"field": "status", "equals": "active", "reason": "not active"}`. Tests: `equals`, `not_in`,
//! `contains_all`, `lte`, `gte`, and `within_miles` (with `lat`, `lon` and `of`). A value is a literal or
//! `{"order": "column"}`, taken from the job order; a rule whose order value is absent is skipped. A null
//! field fails its rule.
//!
//! Every test but `within_miles` compiles to a condition of the filter language, so the judge and the
//! retrieval filters (the rules pushed into the vector walk when the first candidates were not eligible
//! enough) agree on every item by construction. `within_miles` is a haversine distance; pushed into
//! retrieval it becomes the bounding box of its circle, and the judge decides the corners.

use lakehouse_types::filter::{Filter, parse_time};
use lakehouse_types::matrix::Fields;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

/// The tests a rule may use.
const TESTS: &[&str] = &[
    "equals",
    "not_in",
    "contains_all",
    "lte",
    "gte",
    "within_miles",
];

/// Miles per degree of latitude.
const MILES_PER_DEGREE: f64 = 69.0;
/// The Earth's mean radius in miles.
const EARTH_RADIUS_MILES: f64 = 3958.8;

/// A rule's value: a literal, or a column of the job order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Literal(Value),
    Order(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Test {
    Equals(Operand),
    NotIn(Operand),
    ContainsAll(Operand),
    Lte(Operand),
    Gte(Operand),
    Within {
        miles: Operand,
        lat: String,
        lon: String,
        of_lat: Operand,
        of_lon: Operand,
    },
}

/// One parsed rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rule {
    /// Its place in the definition (0-based), for messages.
    pub(crate) position: usize,
    field: Option<String>,
    test: Test,
    /// Shown when the rule fails.
    pub(crate) reason: String,
}

fn bad(position: usize, message: impl std::fmt::Display) -> Error {
    Error::BadRequest(format!("eligibility rule {}: {message}", position + 1))
}

fn operand(position: usize, test: &str, value: &Value) -> Result<Operand> {
    if let Value::Object(map) = value {
        return match (map.len(), map.get("order")) {
            (1, Some(Value::String(column))) if !column.is_empty() => {
                Ok(Operand::Order(column.clone()))
            }
            _ => Err(bad(
                position,
                format!(
                    "the value of '{test}' is a literal or {{\"order\": \"column\"}}, got {value}"
                ),
            )),
        };
    }
    let ok = match test {
        "lte" | "gte" => {
            value.is_number() || value.as_str().is_some_and(|s| parse_time(s).is_some())
        }
        "within_miles" | "lat" | "lon" => value.is_number(),
        "not_in" | "contains_all" => value.is_array() || value.is_string(),
        _ => !value.is_null(),
    };
    if ok {
        Ok(Operand::Literal(value.clone()))
    } else {
        Err(bad(
            position,
            format!(
                "'{test}' cannot compare with {value}: use a number, an ISO date, a list or text as the test needs"
            ),
        ))
    }
}

fn string_key(position: usize, map: &Map<String, Value>, key: &str) -> Result<String> {
    match map.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(bad(position, format!("'{key}' must name a column"))),
    }
}

impl Rule {
    /// Parses rule number `position` of a definition.
    pub(crate) fn parse(position: usize, raw: &Value) -> Result<Rule> {
        let Value::Object(map) = raw else {
            return Err(bad(
                position,
                "a rule is an object like {\"field\": \"status\", \"equals\": \"active\", \"reason\": \"not active\"}",
            ));
        };
        let tests: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| TESTS.contains(k))
            .collect();
        for key in map.keys() {
            let known = TESTS.contains(&key.as_str())
                || ["field", "reason", "lat", "lon", "of"].contains(&key.as_str());
            if !known {
                return Err(bad(
                    position,
                    format!(
                        "unknown test or key '{key}'; tests are {}",
                        TESTS.join(", ")
                    ),
                ));
            }
        }
        let [name] = tests.as_slice() else {
            return Err(bad(
                position,
                format!(
                    "a rule has exactly one test ({}); found {}",
                    TESTS.join(", "),
                    tests.len()
                ),
            ));
        };
        let name = *name;
        let value = map.get(name).unwrap_or(&Value::Null);
        let (field, test) = if name == "within_miles" {
            let Some(Value::Object(of)) = map.get("of") else {
                return Err(bad(
                    position,
                    "within_miles needs \"of\": {\"lat\": ..., \"lon\": ...}",
                ));
            };
            let of_lat = of
                .get("lat")
                .ok_or_else(|| bad(position, "\"of\" needs \"lat\""))?;
            let of_lon = of
                .get("lon")
                .ok_or_else(|| bad(position, "\"of\" needs \"lon\""))?;
            let test = Test::Within {
                miles: operand(position, name, value)?,
                lat: string_key(position, map, "lat")?,
                lon: string_key(position, map, "lon")?,
                of_lat: operand(position, "lat", of_lat)?,
                of_lon: operand(position, "lon", of_lon)?,
            };
            (None, test)
        } else {
            if map.contains_key("lat") || map.contains_key("lon") || map.contains_key("of") {
                return Err(bad(
                    position,
                    "'lat', 'lon' and 'of' belong to within_miles",
                ));
            }
            let field = string_key(position, map, "field")?;
            let value = operand(position, name, value)?;
            let test = match name {
                "equals" => Test::Equals(value),
                "not_in" => Test::NotIn(value),
                "contains_all" => Test::ContainsAll(value),
                "lte" => Test::Lte(value),
                _ => Test::Gte(value),
            };
            (Some(field), test)
        };
        let reason = match map.get("reason") {
            None => match &field {
                Some(field) => format!("{field} fails {name}"),
                None => "too far".to_owned(),
            },
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(other) => {
                return Err(bad(position, format!("'reason' must be text, got {other}")));
            }
        };
        Ok(Rule {
            position,
            field,
            test,
            reason,
        })
    }

    /// The corpus columns the rule reads.
    pub(crate) fn columns(&self) -> Vec<&str> {
        match &self.test {
            Test::Within { lat, lon, .. } => vec![lat.as_str(), lon.as_str()],
            Test::Equals(_)
            | Test::NotIn(_)
            | Test::ContainsAll(_)
            | Test::Lte(_)
            | Test::Gte(_) => self.field.as_deref().into_iter().collect(),
        }
    }

    /// The column a `contains_all` rule reads (a list column).
    pub(crate) fn list_column(&self) -> Option<&str> {
        match &self.test {
            Test::ContainsAll(_) => self.field.as_deref(),
            Test::Equals(_)
            | Test::NotIn(_)
            | Test::Lte(_)
            | Test::Gte(_)
            | Test::Within { .. } => None,
        }
    }

    /// The order columns the rule reads.
    pub(crate) fn order_columns(&self) -> Vec<&str> {
        let operands: Vec<&Operand> = match &self.test {
            Test::Equals(v)
            | Test::NotIn(v)
            | Test::ContainsAll(v)
            | Test::Lte(v)
            | Test::Gte(v) => {
                vec![v]
            }
            Test::Within {
                miles,
                of_lat,
                of_lon,
                ..
            } => vec![miles, of_lat, of_lon],
        };
        operands
            .into_iter()
            .filter_map(|o| match o {
                Operand::Order(c) => Some(c.as_str()),
                Operand::Literal(_) => None,
            })
            .collect()
    }

    /// The rule with its values resolved against `order`; `None` when a value it needs is absent (the
    /// rule is skipped).
    pub(crate) fn bind(&self, order: Option<&Fields>, separator: &str) -> Option<BoundRule> {
        let resolve = |operand: &Operand| -> Option<Value> {
            match operand {
                Operand::Literal(v) => Some(v.clone()),
                Operand::Order(column) => order
                    .and_then(|o| o.get(column))
                    .filter(|v| !v.is_null())
                    .cloned(),
            }
        };
        let list = |v: Value| -> Value {
            match v {
                Value::String(s) => Value::Array(
                    s.split(separator)
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(|p| Value::String(p.to_owned()))
                        .collect(),
                ),
                Value::Array(items) => Value::Array(items),
                other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_)) => {
                    Value::Array(vec![other])
                }
            }
        };
        let field = self.field.clone().unwrap_or_default();
        let condition = |op: &str, value: Value| {
            let mut test = Map::new();
            test.insert(op.to_owned(), value);
            let mut condition = Map::new();
            condition.insert(field.clone(), Value::Object(test));
            Value::Object(condition)
        };
        let (check, pushdown) = match &self.test {
            Test::Equals(v) => {
                let f = condition("eq", resolve(v)?);
                (Check::Filter(Filter::parse(Some(&f)).ok()?), f)
            }
            Test::NotIn(v) => {
                let f = condition("not_in", list(resolve(v)?));
                (Check::Filter(Filter::parse(Some(&f)).ok()?), f)
            }
            Test::ContainsAll(v) => {
                let f = condition("contains_all", list(resolve(v)?));
                (Check::Filter(Filter::parse(Some(&f)).ok()?), f)
            }
            Test::Lte(v) | Test::Gte(v) => {
                let op = if matches!(self.test, Test::Lte(_)) {
                    "lte"
                } else {
                    "gte"
                };
                // An order value that is neither a number nor a date cannot be compared: skipped, like
                // an absent one.
                let f = condition(op, resolve(v)?);
                (Check::Filter(Filter::parse(Some(&f)).ok()?), f)
            }
            Test::Within {
                miles,
                lat,
                lon,
                of_lat,
                of_lon,
            } => {
                let miles = resolve(miles)?.as_f64()?;
                let center = (resolve(of_lat)?.as_f64()?, resolve(of_lon)?.as_f64()?);
                let check = Check::Within {
                    lat: lat.clone(),
                    lon: lon.clone(),
                    center,
                    miles,
                };
                (check, bounding_box(lat, lon, center, miles))
            }
        };
        Some(BoundRule {
            reason: self.reason.clone(),
            check,
            pushdown,
            hidden: false,
        })
    }
}

/// A rule ready to judge: its reason, its check, and the filter that pushes it into retrieval.
#[derive(Debug, Clone)]
pub(crate) struct BoundRule {
    pub(crate) reason: String,
    check: Check,
    /// The condition in the filter language (for `within_miles`, the bounding box of its circle).
    pub(crate) pushdown: Value,
    /// Whether the rule reads a field hidden from the caller: it still decides eligibility, but its reason
    /// is withheld (the reason would tell the caller something about the hidden value).
    pub(crate) hidden: bool,
}

#[derive(Debug, Clone)]
enum Check {
    Filter(Filter),
    Within {
        lat: String,
        lon: String,
        center: (f64, f64),
        miles: f64,
    },
}

impl BoundRule {
    /// Whether an item passes, reading its fields through `get`.
    pub(crate) fn passes<'a>(&self, get: &impl Fn(&str) -> Option<&'a Value>) -> bool {
        match &self.check {
            Check::Filter(filter) => filter.matches_by(get),
            Check::Within {
                lat,
                lon,
                center,
                miles,
            } => match (
                get(lat).and_then(Value::as_f64),
                get(lon).and_then(Value::as_f64),
            ) {
                (Some(a), Some(b)) => haversine_miles((a, b), *center) <= *miles,
                _ => false,
            },
        }
    }
}

/// Great-circle distance in miles between two (lat, lon) points in degrees.
pub(crate) fn haversine_miles(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_MILES * h.sqrt().min(1.0).asin()
}

/// Latitude and longitude ranges holding every point within `miles` of `center`. Near the poles or across
/// the antimeridian the longitude is left unbounded (a box too large is still a superset).
fn bounding_box(lat: &str, lon: &str, center: (f64, f64), miles: f64) -> Value {
    // A little slack so rounding never drops a point on the circle.
    let d_lat = miles / MILES_PER_DEGREE * 1.01 + 1e-9;
    let mut filter = Map::new();
    filter.insert(
        lat.to_owned(),
        json!({"gte": center.0 - d_lat, "lte": center.0 + d_lat}),
    );
    let cos = (center.0.abs() + d_lat).min(90.0).to_radians().cos();
    if cos > 0.01 {
        let d_lon = miles / (MILES_PER_DEGREE * cos) * 1.01 + 1e-9;
        if center.1 - d_lon > -180.0 && center.1 + d_lon < 180.0 {
            filter.insert(
                lon.to_owned(),
                json!({"gte": center.1 - d_lon, "lte": center.1 + d_lon}),
            );
        }
    }
    Value::Object(filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(raw: Value) -> Rule {
        Rule::parse(0, &raw).expect("valid rule")
    }

    fn fields(v: Value) -> Fields {
        v.as_object().cloned().unwrap_or_default()
    }

    fn passes(rule: &BoundRule, item: &Fields) -> bool {
        rule.passes(&|f: &str| item.get(f))
    }

    #[test]
    fn literal_tests() {
        let item = fields(
            json!({"status": "active", "certs": ["OSHA 10", "Forklift"], "rate": 18.5,
                                 "from": "2025-01-10", "gone": null}),
        );
        let check = |raw: Value| passes(&rule(raw).bind(None, ";").expect("bound"), &item);
        assert!(check(json!({"field": "status", "equals": "active"})));
        assert!(!check(json!({"field": "status", "equals": "inactive"})));
        assert!(check(
            json!({"field": "status", "not_in": ["do_not_rehire"]})
        ));
        assert!(!check(json!({"field": "status", "not_in": "active;x"})));
        assert!(check(
            json!({"field": "certs", "contains_all": "Forklift;OSHA 10"})
        ));
        assert!(!check(json!({"field": "certs", "contains_all": ["CDL-A"]})));
        assert!(check(json!({"field": "rate", "lte": 20})));
        assert!(!check(json!({"field": "rate", "gte": 20})));
        assert!(check(json!({"field": "from", "lte": "2025-01-13"})));
        assert!(!check(json!({"field": "from", "gte": "2025-01-13"})));
        // A null or missing field fails its rule.
        assert!(!check(json!({"field": "gone", "not_in": ["x"]})));
        assert!(!check(json!({"field": "missing", "lte": 3})));
    }

    #[test]
    fn order_values_bind_and_absent_ones_skip() {
        let r = rule(
            json!({"field": "rate", "lte": {"order": "pay_rate"}, "reason": "asks more than the order pays"}),
        );
        assert_eq!(r.order_columns(), vec!["pay_rate"]);
        assert!(r.bind(None, ";").is_none(), "no order: skipped");
        let order = fields(json!({"pay_rate": null}));
        assert!(r.bind(Some(&order), ";").is_none(), "null value: skipped");
        let order = fields(json!({"pay_rate": 19}));
        let bound = r.bind(Some(&order), ";").expect("bound");
        assert!(passes(&bound, &fields(json!({"rate": 18.5}))));
        assert!(!passes(&bound, &fields(json!({"rate": 19.5}))));
        assert_eq!(bound.reason, "asks more than the order pays");
        assert_eq!(bound.pushdown, json!({"rate": {"lte": 19}}));
    }

    #[test]
    fn within_miles_and_its_box() {
        let r = rule(
            json!({"within_miles": {"order": "radius"}, "lat": "lat", "lon": "lon",
                            "of": {"lat": {"order": "site_lat"}, "lon": {"order": "site_lon"}},
                            "reason": "too far from the site"}),
        );
        assert_eq!(r.columns(), vec!["lat", "lon"]);
        // Dallas; Fort Worth is ~31 miles away, Houston ~225.
        let order = fields(json!({"radius": 50, "site_lat": 32.7767, "site_lon": -96.7970}));
        let bound = r.bind(Some(&order), ";").expect("bound");
        let fort_worth = fields(json!({"lat": 32.7555, "lon": -97.3308}));
        let houston = fields(json!({"lat": 29.7604, "lon": -95.3698}));
        assert!(passes(&bound, &fort_worth));
        assert!(!passes(&bound, &houston));
        assert!(!passes(&bound, &fields(json!({"lat": null, "lon": -97.0}))));
        let pushed = Filter::parse(Some(&bound.pushdown)).expect("filter");
        assert!(pushed.matches(&fort_worth) && !pushed.matches(&houston));
        let d = haversine_miles((32.7767, -96.7970), (29.7604, -95.3698));
        assert!((d - 225.0).abs() < 10.0, "{d}");
    }

    #[test]
    fn bad_rules_name_the_problem() {
        for (raw, says) in [
            (json!({"field": "x", "between": [1, 2]}), "unknown test"),
            (json!({"field": "x"}), "exactly one test"),
            (
                json!({"field": "x", "equals": 1, "lte": 2}),
                "exactly one test",
            ),
            (json!({"equals": 1}), "'field'"),
            (json!({"field": "x", "lte": "soon"}), "cannot compare"),
            (json!({"field": "x", "lte": {"order": 3}}), "literal or"),
            (json!({"within_miles": 5, "lat": "lat"}), "\"of\""),
            (json!("status = active"), "an object"),
        ] {
            let err = Rule::parse(0, &raw).expect_err("refused").to_string();
            assert!(err.contains(says), "{raw}: {err}");
        }
    }

    /// Rules built from the rule language's keys, bound against generated orders and judged against
    /// generated items: parsing answers or refuses, binding and judging never panic, whatever the values
    /// (NaN-free numbers at the edges, bad dates, coordinates off the globe, lists where text is due).
    #[test]
    fn fuzz_rules() {
        use lakehouse_test_helpers::fuzz::{Gen, cases};
        // The rule language's own keys (every test among them), then names it does not know.
        let others = [
            "field", "reason", "lat", "lon", "of", "order.", "status", "certs", "rate", "from", "x",
        ];
        let keys: Vec<&str> = TESTS.iter().copied().chain(others).collect();
        let words = [
            "order.status",
            "order.certs",
            "order.lat",
            "order.lon",
            "order.",
            "status",
            "certs",
            "lat",
            "lon",
            "active",
            "2025-01-13",
            "2031-13-45",
            "OSHA 10;Forklift",
            ";",
            "",
            "91",
            "-181",
        ];
        let mut g = Gen::new(6);
        let mut parsed = 0usize;
        let count = cases(20_000);
        for _ in 0..count {
            let mut raw = g.json(3, &keys, &words);
            if g.one_in(2) {
                // The shape of a rule, with generated parts.
                let mut rule = serde_json::Map::new();
                rule.insert("field".into(), Value::from(*g.pick(&words)));
                let test = *g.pick(TESTS);
                rule.insert(test.into(), g.json(1, &keys, &words));
                if test == "within_miles" {
                    rule.remove("field");
                    rule.insert("lat".into(), Value::from(*g.pick(&words)));
                    rule.insert("lon".into(), Value::from(*g.pick(&words)));
                    let of = serde_json::json!({
                        "lat": g.json(0, &keys, &words),
                        "lon": g.json(0, &keys, &words),
                    });
                    rule.insert("of".into(), of);
                }
                if g.one_in(2) {
                    rule.insert("reason".into(), Value::from(*g.pick(&words)));
                }
                raw = Value::Object(rule);
            }
            let Ok(rule) = Rule::parse(0, &raw) else {
                continue;
            };
            parsed += 1;
            let order = g.json(2, &keys, &words);
            let bound = rule.bind(order.as_object(), ";");
            let item = g.json(2, &keys, &words);
            if let (Some(bound), Some(item)) = (bound, item.as_object()) {
                let _ = bound.passes(&|f: &str| item.get(f));
            }
        }
        // Meaningful only if rules got past the parser.
        assert!(
            parsed > count / 100,
            "only {parsed} of {count} rules parsed"
        );
    }
}
