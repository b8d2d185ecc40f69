//! The SQL side of the role policy: a role's hidden columns are not in any table it reads, whatever the
//! statement does; a role without SQL is refused; `matrix_recordings` is readable by the roles given it.

use lakehouse_api::QueryApi;
use lakehouse_types::dataset::{SqlRequest, WriteMode};
use lakehouse_types::{Caller, ErrorCode, RequestContext, Role};

use crate::Env;

fn as_role(role: &str) -> RequestContext {
    RequestContext {
        caller: Caller {
            name: "t".into(),
            role: Role(role.into()),
            credential: None,
        },
        request_id: "t".into(),
    }
}

async fn run(env: &Env, role: &str, sql: &str) -> Result<String, lakehouse_types::ApiError> {
    let result = env
        .query
        .sql(
            &as_role(role),
            SqlRequest {
                sql: sql.to_owned(),
                max_rows: None,
            },
        )
        .await?;
    let answer = result.to_sql_response()?;
    Ok(serde_json::to_string(&answer).unwrap_or_default())
}

async fn staffing() -> Env {
    let env = Env::new().await;
    env.csv(
        "people",
        WriteMode::Create,
        "id,name,email,pay_rate_min\n1,Ada,ada@secret.example,41.5\n2,Grace,grace@secret.example,39\n",
    )
    .await
    .expect("people");
    env.csv(
        "matrix_recordings",
        WriteMode::Create,
        "recording_id,query\nr1,secret search\n",
    )
    .await
    .expect("recordings");
    env
}

/// The built-in client hides email and pay; a role defined here may run SQL with the same hidden fields.
fn policy() -> std::sync::Arc<lakehouse_types::policy::Policy> {
    let configured = serde_json::from_value(serde_json::json!({
        "analyst": {"actions": ["sql"], "hidden_fields": ["Email", "pay_rate_min"]},
    }))
    .expect("roles");
    std::sync::Arc::new(lakehouse_types::policy::Policy::new(configured))
}

#[tokio::test]
async fn hidden_columns_are_in_no_table() {
    let mut env = staffing().await;
    env.query = env.query.clone().with_policy(policy());
    // Everything that names or expands a column: none reaches a hidden one.
    for sql in [
        "SELECT * FROM people",
        "SELECT p.* FROM people p",
        "SELECT * FROM \"people@v0\"",
        "SELECT * FROM people a JOIN people b ON a.id = b.id",
        "WITH w AS (SELECT * FROM people) SELECT * FROM w",
        "SELECT * FROM (SELECT * FROM people) s",
        "DESCRIBE people",
        "SHOW COLUMNS FROM people",
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'people'",
        "EXPLAIN SELECT * FROM people",
        "EXPLAIN VERBOSE SELECT * FROM people",
    ] {
        let answer = run(&env, "analyst", sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        for secret in ["secret.example", "41.5", "email", "pay_rate_min"] {
            assert!(!answer.contains(secret), "{sql} shows {secret}: {answer}");
        }
        assert!(
            answer.contains("name") || answer.contains("Ada"),
            "{sql}: {answer}"
        );
    }
    // Naming a hidden column is the usual unknown-column error, and the error names no value.
    for sql in [
        "SELECT email FROM people",
        "SELECT people.email FROM people",
        "SELECT \"email\" FROM \"people@v0\"",
        "SELECT upper(email) FROM people",
        "SELECT id FROM people WHERE pay_rate_min > 40",
        "SELECT (SELECT max(email) FROM people) AS x",
        "SELECT count(*) FROM people GROUP BY email",
    ] {
        let err = run(&env, "analyst", sql).await.expect_err(sql);
        assert_eq!(err.code, ErrorCode::BadRequest, "{sql}: {err}");
        assert!(!err.message.contains("secret.example"), "{sql}: {err}");
    }
    // The admin sees everything.
    let all = run(&env, "admin", "SELECT * FROM people")
        .await
        .expect("admin");
    assert!(
        all.contains("ada@secret.example") && all.contains("41.5"),
        "{all}"
    );
}

#[tokio::test]
async fn sql_and_recordings_follow_the_role() {
    let mut env = staffing().await;
    env.query = env.query.clone().with_policy(policy());
    let err = run(&env, "client", "SELECT 1").await.expect_err("client");
    assert_eq!(err.code, ErrorCode::Forbidden);
    assert!(
        err.message.contains("may not run SQL") && err.message.contains("`sql`"),
        "{err}"
    );
    let err = run(&env, "nobody", "SELECT 1")
        .await
        .expect_err("undefined role");
    assert_eq!(err.code, ErrorCode::Forbidden);
    for role in ["recruiter", "analyst"] {
        let err = run(&env, role, "SELECT query FROM matrix_recordings")
            .await
            .expect_err(role);
        assert_eq!(err.code, ErrorCode::Forbidden, "{role}: {err}");
        assert!(
            err.message.contains("may not read matrix_recordings"),
            "{err}"
        );
        let tables = run(&env, role, "SHOW TABLES").await.expect("show tables");
        assert!(!tables.contains("matrix_recordings"), "{tables}");
    }
    let admin = run(&env, "admin", "SELECT query FROM matrix_recordings")
        .await
        .expect("admin");
    assert!(admin.contains("secret search"));
    let recruiter = run(&env, "recruiter", "SELECT email FROM people")
        .await
        .expect("recruiter");
    assert!(recruiter.contains("ada@secret.example"));
}
