//! A corpus definition checked against its dataset's schema and compiled into a [`Plan`]: the columns to
//! read, the text template, the filterable and metadata columns, the eligibility rules.

use lakehouse_types::dataset::ColumnInfo;
use lakehouse_types::matrix::CorpusDefinition;

use crate::error::{Error, Result};
use crate::rules::Rule;

/// Longest corpus name (the vector index is named `matrix-<name>`, and index names stop at 64).
const MAX_NAME: usize = 48;

/// The list separator when the definition names none.
pub(crate) const DEFAULT_SEPARATOR: &str = ";";

/// A text made of literal pieces and column values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Column(String),
}

impl Template {
    /// A column name alone, or a template with `{column}` places (`{{` and `}}` are braces).
    pub(crate) fn parse(text: &str) -> Result<Template> {
        if !text.contains('{') && !text.contains('}') {
            let column = text.trim();
            if column.is_empty() {
                return Err(Error::BadRequest(
                    "text is empty: name a column or write a template like \"{title}: {description}\""
                        .into(),
                ));
            }
            return Ok(Template {
                parts: vec![Part::Column(column.to_owned())],
            });
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => name.push(c),
                            None => {
                                return Err(Error::BadRequest(format!(
                                    "text template {text:?} has a '{{' without its '}}'"
                                )));
                            }
                        }
                    }
                    let name = name.trim();
                    if name.is_empty() {
                        return Err(Error::BadRequest(format!(
                            "text template {text:?} has an empty {{}}; put a column name inside"
                        )));
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Column(name.to_owned()));
                }
                '}' => {
                    return Err(Error::BadRequest(format!(
                        "text template {text:?} has a '}}' without its '{{' (write }}}} for a brace)"
                    )));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        if !parts.iter().any(|p| matches!(p, Part::Column(_))) {
            return Err(Error::BadRequest(format!(
                "text template {text:?} names no column; put column names in braces"
            )));
        }
        Ok(Template { parts })
    }

    /// The columns the template reads, in order, each once.
    pub(crate) fn columns(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for part in &self.parts {
            if let Part::Column(c) = part
                && !out.contains(&c.as_str())
            {
                out.push(c);
            }
        }
        out
    }

    /// The text of one row; a null column renders as nothing.
    pub(crate) fn render(&self, value: impl Fn(&str) -> Option<String>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Column(c) => {
                    if let Some(v) = value(c) {
                        out.push_str(&v);
                    }
                }
            }
        }
        out.trim().to_owned()
    }
}

/// A definition checked against its dataset: what to read and how to index and judge it.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) definition: CorpusDefinition,
    pub(crate) template: Template,
    /// Every column read from the dataset (id first).
    pub(crate) columns: Vec<String>,
    /// Columns filters may name.
    pub(crate) filterable: Vec<String>,
    /// Whether `filterable` is the default (every column but the id), narrowed once the data is read.
    pub(crate) filterable_default: bool,
    /// Columns a rule reads (always metadata).
    pub(crate) rule_columns: Vec<String>,
    /// Columns stored as vector metadata: filterable, and every column a rule reads.
    pub(crate) metadata: Vec<String>,
    /// Columns split into lists when the definition names them (otherwise found in the data).
    pub(crate) list_columns: Option<Vec<String>>,
    /// Columns that must be lists whatever the data holds (those of `contains_all` rules).
    pub(crate) rule_list_columns: Vec<String>,
    pub(crate) separator: String,
    pub(crate) rules: Vec<Rule>,
}

impl Plan {
    /// The vector index holding this corpus's embeddings.
    pub(crate) fn index_name(&self) -> String {
        index_name(&self.definition.name)
    }
}

impl Plan {
    /// Narrows a default `filterable` to the columns that are not prose (`prose`: text columns with a
    /// value longer than a list or a label ever is), and the metadata with it.
    pub(crate) fn drop_prose(&mut self, prose: &[String]) {
        if !self.filterable_default {
            return;
        }
        self.filterable.retain(|c| !prose.contains(c));
        let mut metadata = self.filterable.clone();
        for column in &self.rule_columns {
            push_unique(&mut metadata, column);
        }
        self.metadata = metadata;
    }
}

/// The vector index of corpus `name`.
pub(crate) fn index_name(name: &str) -> String {
    format!("matrix-{name}")
}

/// Checks a corpus name: 1–48 of `a-z 0-9 _ -`, starting with a letter or digit.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "corpus name {name:?} is not valid: use 1–{MAX_NAME} characters of a-z, 0-9, _ and -, starting \
             with a letter or digit"
        )))
    }
}

fn require(schema: &[ColumnInfo], dataset: &str, column: &str, role: &str) -> Result<()> {
    if schema.iter().any(|c| c.column == column) {
        return Ok(());
    }
    let known: Vec<&str> = schema.iter().map(|c| c.column.as_str()).collect();
    Err(Error::BadRequest(format!(
        "{role} '{column}' is not a column of dataset '{dataset}' (its columns: {})",
        known.join(", ")
    )))
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|c| c == item) {
        list.push(item.to_owned());
    }
}

/// Checks `definition` against the dataset's schema (and the orders dataset's, when it has orders) and
/// compiles it.
pub(crate) fn compile(
    definition: CorpusDefinition,
    schema: &[ColumnInfo],
    orders_schema: Option<&[ColumnInfo]>,
) -> Result<Plan> {
    check_name(&definition.name)?;
    let dataset = definition.dataset.as_str();
    require(schema, dataset, &definition.id_column, "id_column")?;
    let template = Template::parse(&definition.text)?;
    for column in template.columns() {
        require(schema, dataset, column, "the text names column")?;
    }
    for field in &definition.fields {
        require(schema, dataset, field, "field")?;
    }
    let separator = definition
        .list_separator
        .clone()
        .unwrap_or_else(|| DEFAULT_SEPARATOR.to_owned());
    if separator.is_empty() {
        return Err(Error::BadRequest("list_separator is empty".into()));
    }

    let has_orders = match (&definition.orders, orders_schema) {
        (Some(source), Some(orders_schema)) => {
            require(
                orders_schema,
                &source.dataset,
                &source.id_column,
                "orders.id_column",
            )?;
            let template = Template::parse(&source.text)?;
            for column in template.columns() {
                require(
                    orders_schema,
                    &source.dataset,
                    column,
                    "the orders text names column",
                )?;
            }
            true
        }
        (Some(source), None) => return Err(Error::DatasetNotFound(source.dataset.clone())),
        (None, _) => false,
    };

    let rules = definition
        .eligibility
        .iter()
        .enumerate()
        .map(|(i, raw)| Rule::parse(i, raw))
        .collect::<Result<Vec<_>>>()?;
    let mut rule_columns = Vec::new();
    let mut rule_list_columns = Vec::new();
    for rule in &rules {
        for column in rule.columns() {
            require(schema, dataset, column, "an eligibility rule reads")?;
            push_unique(&mut rule_columns, column);
        }
        if let Some(column) = rule.list_column() {
            push_unique(&mut rule_list_columns, column);
        }
        for column in rule.order_columns() {
            match orders_schema {
                Some(orders_schema) if has_orders => {
                    let orders_dataset = definition
                        .orders
                        .as_ref()
                        .map_or("", |o| o.dataset.as_str());
                    require(
                        orders_schema,
                        orders_dataset,
                        column,
                        "an eligibility rule reads the order's",
                    )?;
                }
                _ => {
                    return Err(Error::BadRequest(format!(
                        "eligibility rule {} reads the order's '{column}', but the corpus has no orders; add \
                         \"orders\": {{\"dataset\", \"id_column\", \"text\"}}",
                        rule.position + 1
                    )));
                }
            }
        }
    }

    let filterable = match &definition.filterable {
        Some(list) => {
            for column in list {
                require(schema, dataset, column, "filterable column")?;
            }
            list.clone()
        }
        None => schema
            .iter()
            .map(|c| c.column.as_str())
            .filter(|c| *c != definition.id_column)
            .map(str::to_owned)
            .collect(),
    };
    if let Some(list) = &definition.list_columns {
        for column in list {
            require(schema, dataset, column, "list column")?;
        }
    }
    let mut metadata = filterable.clone();
    for column in &rule_columns {
        push_unique(&mut metadata, column);
    }
    let mut columns = vec![definition.id_column.clone()];
    for column in template
        .columns()
        .into_iter()
        .chain(definition.fields.iter().map(String::as_str))
        .chain(metadata.iter().map(String::as_str))
    {
        push_unique(&mut columns, column);
    }
    Ok(Plan {
        list_columns: definition.list_columns.clone(),
        filterable_default: definition.filterable.is_none(),
        definition,
        template,
        columns,
        filterable,
        rule_columns,
        metadata,
        rule_list_columns,
        separator,
        rules,
    })
}

/// `"name"` quoted for SQL.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let t = Template::parse("{primary_role} in {city}, {state}. {profile_text}").expect("ok");
        assert_eq!(
            t.columns(),
            vec!["primary_role", "city", "state", "profile_text"]
        );
        let text = t.render(|c| match c {
            "primary_role" => Some("welder".into()),
            "city" => Some("Austin".into()),
            "state" => Some("TX".into()),
            _ => None,
        });
        assert_eq!(text, "welder in Austin, TX.");
        let plain = Template::parse("profile_text").expect("ok");
        assert_eq!(plain.columns(), vec!["profile_text"]);
        let braces = Template::parse("{{x}} {a}").expect("ok");
        assert_eq!(braces.render(|_| Some("1".into())), "{x} 1");
        for bad in ["{a", "a}", "{}", "no columns {{here}}", ""] {
            assert!(Template::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("workers").is_ok());
        assert!(check_name("job_orders-2").is_ok());
        for bad in ["", "Workers", "-x", "a/b", &"x".repeat(49)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
