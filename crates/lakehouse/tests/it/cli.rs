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

/// The demo on a fresh directory: data generated, every table ingested, both corpora built, two searches
/// printed, the page's address; no log line above INFO. A second run reuses it all.
#[test]
fn demo_shows_the_product_and_a_second_run_reuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        let started = std::time::Instant::now();
        let output = lakehouse()
            .env_remove("RUST_LOG")
            .args([
                "demo",
                "--exit",
                "--workers",
                "150",
                "--listen",
                "127.0.0.1:0",
                "--data",
            ])
            .arg(dir.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let errors = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{text}\n{errors}");
        for level in ["WARN", "ERROR"] {
            assert!(
                !errors.contains(level),
                "a healthy demo logs no {level}: {errors}"
            );
        }
        (text, started.elapsed())
    };
    let (first, _) = run();
    for table in [
        "workers",
        "clients",
        "job_orders",
        "placements",
        "timesheets",
    ] {
        assert!(
            first
                .lines()
                .any(|l| l.trim_start().starts_with(table) && l.contains("(ingested)")),
            "{table}: {first}"
        );
    }
    assert!(first.contains("Search: \"forklift operator"), "{first}");
    assert!(first.contains("Search from job order JO-"), "{first}");
    assert!(
        first.contains("eligible") && first.contains("reasons"),
        "{first}"
    );
    assert!(first.contains("workers@v0"), "{first}");
    assert!(first.contains("Open http://127.0.0.1:"), "{first}");
    assert!(first.contains("lakehouse search"), "{first}");

    let (second, took) = run();
    assert!(second.contains("reusing"), "{second}");
    assert!(second.contains("(already ingested)"), "{second}");
    assert!(!second.contains("(ingested)"), "{second}");
    assert!(second.contains("Search from job order JO-"), "{second}");
    assert!(
        took < std::time::Duration::from_secs(60),
        "a second run took {took:?}"
    );
}
