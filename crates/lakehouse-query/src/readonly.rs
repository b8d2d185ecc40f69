//! The read-only gate: one statement, and only SELECT / WITH / EXPLAIN / SHOW / DESCRIBE.
//!
//! Checked on the parsed statement before planning, so the answer names what was refused; the planner is also
//! run with DDL, DML and statements disallowed, which catches forms the parser check might let through
//! (`SELECT ... INTO` is a query that creates a table).

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::{Query, SetExpr, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::Error;

/// Operators and opening brackets one statement may hold.
///
/// The parser reads `1 + 1 + ... + 1` in a loop but builds a tree as deep as the chain, and freeing or
/// printing that tree recurses once per level (DataFusion names a projected expression by printing it):
/// 100,000 terms (a 200 KB body) overflowed the stack of the thread that answers and took the server down.
/// Counting on the tokens, before any tree exists, bounds the depth of every tree built from the statement.
/// The limit is half the deepest chain a debug build answers on the binary's 16 MiB thread stacks (2,000);
/// a release build's frames are smaller. A long list of values belongs in `IN (...)`, whose items are
/// commas, not operators.
pub const MAX_OPERATORS: usize = 1024;

/// Checks `sql` is exactly one read-only statement.
pub fn check(sql: &str) -> Result<(), Error> {
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| Error::BadRequest(format!("the SQL does not parse: {e}")))?;
    let operators = tokens.iter().filter(|t| nests(t)).count();
    if operators > MAX_OPERATORS {
        return Err(Error::BadRequest(format!(
            "the SQL holds {operators} operators and brackets; the limit is {MAX_OPERATORS} \
             (use IN (...) for a long list of values)"
        )));
    }
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

/// Whether a token can add a level to an expression tree.
fn nests(token: &Token) -> bool {
    if let Token::Word(word) = token {
        return matches!(
            word.keyword,
            Keyword::AND | Keyword::OR | Keyword::NOT | Keyword::XOR
        );
    }
    matches!(
        token,
        Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::DuckIntDiv
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::LParen
            | Token::LBracket
            | Token::Ampersand
            | Token::Pipe
            | Token::Caret
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::Arrow
            | Token::LongArrow
            | Token::DoubleColon
    )
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
        Statement::Query(query) => query_reads(query),
        Statement::ShowTables { .. }
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

/// A query reads only if its body and its named subqueries do: sqlparser takes `(DELETE FROM t)` and
/// `WITH d AS (DELETE ...)` as queries (the fuzz target found the first passing the gate).
fn query_reads(query: &Query) -> Result<(), Error> {
    if let Some(with) = &query.with {
        for cte in &with.cte_tables {
            query_reads(&cte.query)?;
        }
    }
    set_reads(&query.body)
}

#[allow(
    clippy::wildcard_enum_match_arm,
    reason = "an allow-list: every query body not named is refused"
)]
fn set_reads(body: &SetExpr) -> Result<(), Error> {
    match body {
        SetExpr::Select(_) | SetExpr::Values(_) | SetExpr::Table(_) => Ok(()),
        SetExpr::Query(query) => query_reads(query),
        SetExpr::SetOperation { left, right, .. } => {
            set_reads(left)?;
            set_reads(right)
        }
        other => {
            let text = other.to_string();
            let kind: Vec<&str> = text.split_whitespace().take(2).collect();
            Err(refused(&kind.join(" ").to_ascii_uppercase()))
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
            "(DELETE FROM t)",
            "(SELECT 1) UNION (DELETE FROM t)",
            "WITH d AS (DELETE FROM t) SELECT 1",
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

    /// Statements built from SQL's pieces, read and write, and nesting far past any real query: the gate
    /// never panics or overflows the stack, and whatever it lets through is one statement that starts as
    /// a read does.
    #[test]
    fn fuzz_the_read_only_gate() {
        use lakehouse_test_helpers::fuzz::{Gen, cases};
        let pieces = [
            "SELECT ",
            "WITH t AS ",
            "EXPLAIN ",
            "SHOW TABLES",
            "DESCRIBE ",
            "INSERT INTO t ",
            "UPDATE ",
            "DELETE FROM ",
            "CREATE TABLE ",
            "COPY ",
            "SET ",
            "DROP ",
            "INTO ",
            "VALUES (1)",
            "FROM t ",
            "(",
            ")",
            ";",
            ",",
            "'",
            "\"",
            "--",
            "/*",
            "*/",
            "1",
            "a",
            "* ",
            "UNION ",
            "= ",
            "\n",
            "$$",
            "E'\\'",
            "@",
            "\u{0}",
        ];
        // Right at the limit a chain passes (and its tree is freed without trouble); prefixes and brackets
        // stop at the parser's recursion limit before that. One more is refused, whichever.
        for (head, piece, tail) in [
            ("SELECT 1", "+1", ""),
            ("SELECT ", "(", "1"),
            ("SELECT ", "NOT ", "true"),
        ] {
            let at_limit = format!("{head}{}{tail}", piece.repeat(MAX_OPERATORS));
            let closed = format!("{at_limit}{}", ")".repeat(at_limit.matches('(').count()));
            assert!(
                check(&closed).is_ok() || piece != "+1",
                "{piece} x {MAX_OPERATORS}"
            );
            let over = format!("{head}{}{tail}", piece.repeat(MAX_OPERATORS + 1));
            assert!(matches!(check(&over), Err(Error::BadRequest(_))), "{piece}");
        }
        let mut g = Gen::new(5);
        let count = cases(20_000);
        for case in 0..count {
            let sql = match g.below(500) {
                0 => format!(
                    "SELECT {}1{}",
                    "(".repeat(g.below(20_000)),
                    ")".repeat(g.below(20_000))
                ),
                1 => format!("SELECT 1{}", "+1".repeat(g.below(20_000))),
                2 => format!("SELECT {}", "NOT ".repeat(g.below(20_000))),
                _ => g.join(&pieces, 12),
            };
            let Ok(()) = check(&sql) else { continue };
            let statements = DFParser::parse_sql_with_dialect(&sql, &GenericDialect {})
                .unwrap_or_else(|e| panic!("case {case}: {sql:?} passed but does not parse: {e}"));
            assert_eq!(statements.len(), 1, "case {case}: {sql:?}");
            let text = statements
                .front()
                .map(|s| s.to_string().to_ascii_uppercase())
                .unwrap_or_default();
            let text = text.trim_start_matches('(');
            assert!(
                [
                    "SELECT", "WITH", "EXPLAIN", "SHOW", "DESCRIBE", "VALUES", "FROM", "TABLE"
                ]
                .iter()
                .any(|read| text.starts_with(read)),
                "case {case}: {sql:?} passed as {text}"
            );
        }
    }
}
