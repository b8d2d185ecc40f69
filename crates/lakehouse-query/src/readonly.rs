//! The read-only gate: one statement, and only SELECT / WITH / EXPLAIN / SHOW / DESCRIBE.
//!
//! Checked on the parsed statement before planning, so the answer names what was refused; the planner is also
//! run with DDL, DML and statements disallowed, which catches forms the parser check might let through
//! (`SELECT ... INTO` is a query that creates a table).

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;

use crate::Error;

/// Checks `sql` is exactly one read-only statement.
pub fn check(sql: &str) -> Result<(), Error> {
    let statements = DFParser::parse_sql_with_dialect(sql, &GenericDialect {})
        .map_err(|e| Error::BadRequest(format!("the SQL does not parse: {e}")))?;
    match statements.len() {
        0 => Err(Error::BadRequest("the SQL holds no statement".into())),
        1 => statements.front().map_or(Ok(()), allowed),
        n => Err(Error::BadRequest(format!(
            "send one statement per request; this SQL holds {n}"
        ))),
    }
}

fn allowed(statement: &DfStatement) -> Result<(), Error> {
    match statement {
        DfStatement::Statement(s) => allowed_sql(s),
        DfStatement::Explain(explain) => allowed(&explain.statement),
        DfStatement::CreateExternalTable(_) => Err(refused("CREATE EXTERNAL TABLE")),
        DfStatement::CopyTo(_) => Err(refused("COPY")),
        DfStatement::Reset(_) => Err(refused("RESET")),
    }
}

#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "an allow-list: every statement not named is refused"
)]
fn allowed_sql(statement: &Statement) -> Result<(), Error> {
    match statement {
        Statement::Query(_)
        | Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowFunctions { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowViews { .. }
        | Statement::ExplainTable { .. } => Ok(()),
        Statement::Explain { statement, .. } => allowed_sql(statement),
        other => {
            let text = other.to_string();
            let kind: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            Err(refused(&kind.to_ascii_uppercase()))
        }
    }
}

fn refused(kind: &str) -> Error {
    Error::ReadOnly(format!(
        "{kind} is not allowed: SQL here is read-only (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE); \
         write data with POST /v1/ingest/{{dataset}}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass_and_writes_are_refused() {
        for ok in [
            "SELECT 1",
            "WITH t AS (SELECT 1 AS a) SELECT a FROM t",
            "EXPLAIN SELECT 1",
            "SHOW TABLES",
            "DESCRIBE workers",
            "SELECT * FROM \"workers@v2\"",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in [
            "CREATE TABLE t (a INT)",
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '/etc/passwd'",
            "CREATE VIEW v AS SELECT 1",
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET a = 1",
            "DELETE FROM t",
            "DROP TABLE t",
            "COPY (SELECT 1) TO 'x.csv'",
            "SET datafusion.execution.batch_size = 1",
            "EXPLAIN INSERT INTO t VALUES (1)",
            "ALTER TABLE t ADD COLUMN b INT",
            "TRUNCATE TABLE t",
        ] {
            assert!(
                matches!(check(bad), Err(Error::ReadOnly(_))),
                "{bad}: {:?}",
                check(bad)
            );
        }
        assert!(matches!(
            check("SELECT 1; SELECT 2"),
            Err(Error::BadRequest(_))
        ));
        assert!(matches!(check("SELEC 1"), Err(Error::BadRequest(_))));
    }
}
