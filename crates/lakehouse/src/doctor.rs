//! `lakehouse doctor`: checks what the server needs, and says how to fix each failure.

use std::time::Duration;

use lakehouse_config::{Config, StorageBackend};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::Serialize;

use crate::cli::ConfigArgs;

/// One check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found.
    pub detail: String,
    /// How to fix it, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// Every check's outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// The checks, in the order they ran.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_owned(),
            ok: true,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, name: &str, detail: impl Into<String>, fix: impl Into<String>) {
        self.checks.push(Check {
            name: name.to_owned(),
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// Runs every check.
pub async fn run(args: &ConfigArgs) -> Report {
    let mut report = Report::default();
    let config = match args.load(None) {
        Ok(config) => {
            report.pass(
                "config",
                args.config
                    .as_ref()
                    .map_or("built-in defaults".to_owned(), |p| p.display().to_string()),
            );
            config
        }
        Err(err) => {
            report.fail(
                "config",
                format!("{err:#}"),
                "correct the setting named above in the config file or environment",
            );
            return report;
        }
    };
    check_secrets_file(&config, &mut report);
    check_storage(&config, &mut report).await;
    check_listen(&config, &mut report).await;
    report
}

fn check_secrets_file(config: &Config, report: &mut Report) {
    let (StorageBackend::S3(s3), Some(path)) =
        (&config.storage.backend, &config.storage.secrets_file)
    else {
        return;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            report.fail(
                "s3 credentials",
                format!("{} is readable by other users", path.display()),
                format!("chmod 600 {}", path.display()),
            );
            return;
        }
    }
    report.pass(
        "s3 credentials",
        format!(
            "{} (bucket {}, key id {})",
            path.display(),
            s3.bucket,
            s3.access_key_id
        ),
    );
}

async fn check_storage(config: &Config, report: &mut Report) {
    let where_ = config.storage.backend.describe();
    let fix = match &config.storage.backend {
        StorageBackend::Local { root } => format!(
            "make {} a writable directory (mkdir -p, chown), or choose another with --data",
            root.display()
        ),
        StorageBackend::S3(s3) => format!(
            "check that {} is reachable, that bucket {:?} exists, and that the key in the secrets file may read and write it",
            s3.endpoint.as_deref().unwrap_or("AWS S3"),
            s3.bucket
        ),
    };
    let store = match lakehouse_storage::build_object_store(&config.storage) {
        Ok(store) => store,
        Err(err) => return report.fail("storage", format!("{where_}: {err}"), fix),
    };
    match tokio::time::timeout(PROBE_TIMEOUT, probe(store.as_ref())).await {
        Ok(Ok(conditional)) => report.pass(
            "storage",
            format!("{where_}: readable and writable{conditional}"),
        ),
        Ok(Err(err)) => report.fail("storage", format!("{where_}: {err}"), fix),
        Err(_) => report.fail(
            "storage",
            format!("{where_}: no answer within {}s", PROBE_TIMEOUT.as_secs()),
            fix,
        ),
    }
}

/// Writes, reads back and deletes a probe object; checks conditional writes (catalog and Delta commits need them).
async fn probe(store: &dyn ObjectStore) -> anyhow::Result<&'static str> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let path = Path::from(format!("_lakehouse/doctor-{}-{nonce}", std::process::id()));
    let body = b"lakehouse doctor probe";
    store.put(&path, PutPayload::from_static(body)).await?;
    let read = store.get(&path).await?.bytes().await?;
    anyhow::ensure!(
        read.as_ref() == body,
        "read back different bytes than written"
    );
    let create = PutOptions {
        mode: PutMode::Create,
        ..PutOptions::default()
    };
    let second = store
        .put_opts(&path, PutPayload::from_static(body), create)
        .await;
    store.delete(&path).await?;
    match second {
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Ok("; conditional writes honoured"),
        Ok(_) => anyhow::bail!(
            "the store accepted a create-if-absent write over an existing object: it does not support conditional \
             writes, which the catalog and Delta commits need"
        ),
        Err(err) => Err(err.into()),
    }
}

async fn check_listen(config: &Config, report: &mut Report) {
    if let Err(err) = crate::serve::check_exposure(config) {
        report.fail(
            "listen",
            format!("{err:#}"),
            "add [[auth.keys]] or listen on 127.0.0.1",
        );
        return;
    }
    match tokio::net::TcpListener::bind(config.listen).await {
        Ok(_) => report.pass("listen", format!("{} is free", config.listen)),
        Err(err) => {
            let health = reqwest::Client::new()
                .get(format!("http://{}/health", config.listen))
                .timeout(Duration::from_secs(3))
                .send()
                .await
                .ok()
                .filter(|r| r.status().is_success());
            match health {
                Some(_) => report.pass(
                    "listen",
                    format!("a lakehouse server is already running at {}", config.listen),
                ),
                None => report.fail(
                    "listen",
                    format!("cannot bind {}: {err}", config.listen),
                    "stop what uses the port, or choose another with --listen",
                ),
            }
        }
    }
}

/// Prints the report for people, or as JSON.
pub fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"ok": report.ok(), "checks": report.checks})
            )?
        );
        return Ok(());
    }
    for check in &report.checks {
        let mark = if check.ok { "ok  " } else { "FAIL" };
        println!("{mark} {:<15} {}", check.name, check.detail);
        if let Some(fix) = &check.fix {
            println!("     {:<15} fix: {fix}", "");
        }
    }
    println!(
        "{}",
        if report.ok() {
            "all checks passed"
        } else {
            "some checks failed"
        }
    );
    Ok(())
}
