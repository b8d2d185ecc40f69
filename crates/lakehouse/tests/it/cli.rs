//! The command line: doctor, hash-key, demo.

use std::process::Command;

fn lakehouse() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_lakehouse"));
    command
        .env_remove("LAKEHOUSE_CONFIG")
        .env_remove("LAKEHOUSE_LISTEN")
        .env_remove("LAKEHOUSE_DATA_DIR");
    command
}

#[test]
fn doctor_passes_on_a_writable_directory_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let output = lakehouse()
        .args(["doctor", "--json", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("d"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["ok"], true);
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"storage") && names.contains(&"listen"),
        "{names:?}"
    );
}

#[test]
fn doctor_names_the_fix_for_each_failure() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the data directory should be.
    let blocked = dir.path().join("not-a-dir");
    std::fs::write(&blocked, "x").unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let output = lakehouse()
        .args([
            "doctor",
            "--listen",
            &busy.local_addr().unwrap().to_string(),
            "--data",
        ])
        .arg(&blocked)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("FAIL storage"), "{text}");
    assert!(text.contains("fix: make"), "{text}");
    assert!(text.contains("FAIL listen"), "{text}");
    assert!(text.contains("fix: stop what uses the port"), "{text}");

    let config = dir.path().join("s3.toml");
    std::fs::write(
        &config,
        "[storage]\nbackend = \"s3\"\nsecrets_file = \"missing-secrets.toml\"\n",
    )
    .unwrap();
    let output = lakehouse()
        .arg("doctor")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success());
    assert!(
        text.contains("FAIL config") && text.contains("missing-secrets.toml"),
        "{text}"
    );
}

#[test]
fn hash_key_prints_the_sha256() {
    let output = lakehouse().args(["hash-key", "secret"]).output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
    );
}

#[test]
fn demo_shows_storage_sql_and_a_search_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let output = lakehouse()
        .args(["demo", "--exit", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("GET /health → \"ok\""), "{text}");
    let stored = std::fs::read(dir.path().join("demo/workers.csv")).unwrap();
    assert!(
        text.contains(&format!("the same {} bytes", stored.len())),
        "{text}"
    );
    assert!(stored.starts_with(b"worker_id,"));
    // The table, its SQL answer and a search in words over the profiles (with the real model).
    assert!(
        text.contains("POST /v1/ingest/demo_workers → version 0, 5 rows"),
        "{text}"
    );
    assert!(
        text.contains(r#"→ [["CA",2,36.0],["TX",3,26.83]]"#),
        "{text}"
    );
    let search = text
        .lines()
        .find(|l| l.starts_with("POST /v1/vectors/index/demo-workers/search"))
        .unwrap_or_else(|| panic!("no search line in {text}"));
    let hits = search.rsplit("→ ").next().unwrap();
    assert!(
        hits.starts_with("w-2 ("),
        "the forklift operator in TX first: {search}"
    );
}
