//! Answers as text tables, for people and for assistants: [`aligned`] for a terminal (`lakehouse sql`,
//! `lakehouse datasets`), [`tsv`] for the MCP tools (compact, one row per line, unambiguous to read back).

use serde_json::Value;

/// A JSON value as a cell: text as it is, null empty, anything else as JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other @ (Value::Bool(_) | Value::Number(_) | Value::Array(_) | Value::Object(_)) => {
            other.to_string()
        }
    }
}

/// Columns padded to their widest cell, a rule under the header.
pub fn aligned(header: &[String], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| -> String {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header);
    out.push_str(&line(
        &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    ));
    for row in rows {
        out.push_str(&line(row));
    }
    out
}

/// Tab-separated rows under a header; backslashes, line breaks and tabs inside a cell are escaped, so each
/// row is one line and each column one field.
pub fn tsv(header: &[String], rows: &[Vec<String>]) -> String {
    let escaped = |cells: &[String]| -> String {
        cells
            .iter()
            .map(|c| {
                c.replace('\\', "\\\\")
                    .replace('\n', "\\n")
                    .replace('\t', "\\t")
            })
            .collect::<Vec<_>>()
            .join("\t")
    };
    let mut out = escaped(header);
    out.push('\n');
    for row in rows {
        out.push_str(&escaped(row));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align() {
        let t = aligned(
            &["a".into(), "bb".into()],
            &[vec!["xyz".into(), "1".into()]],
        );
        assert_eq!(t, "a    bb\n---  --\nxyz  1\n");
    }

    #[test]
    fn tsv_keeps_one_row_per_line() {
        let rows = vec![vec![
            cell(&json!("a\tb\nc\\")),
            cell(&Value::Null),
            cell(&json!(["x", 1])),
        ]];
        let header = ["h1", "h2", "h3"].map(str::to_owned);
        assert_eq!(
            tsv(&header, &rows),
            "h1\th2\th3\na\\tb\\nc\\\\\t\t[\"x\",1]\n"
        );
    }
}
