//! `lakehouse serve`: bind, serve, shut down gracefully.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use lakehouse_config::Config;
use lakehouse_server::{Authenticator, Metrics};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// A bound, ready server: the address it listens on and the future that serves it.
#[derive(Debug)]
pub struct Bound {
    /// The address actually bound (port 0 resolved).
    pub addr: std::net::SocketAddr,
    listener: TcpListener,
    app: axum::Router,
    grace: Duration,
    matrix: Option<lakehouse_matrix::MatrixService>,
}

/// Refuses what must never run: an open server on a non-loopback address.
pub fn check_exposure(config: &Config) -> anyhow::Result<()> {
    if !config.auth_enabled() && !config.listen.ip().is_loopback() {
        anyhow::bail!(
            "refusing to listen on {} without API keys: anyone who can reach it would be admin. Add \
             [[auth.keys]] to the config (hash a key with `lakehouse hash-key`), or listen on 127.0.0.1",
            config.listen
        );
    }
    Ok(())
}

/// Composes the services and binds the listener.
pub async fn bind(config: &Config) -> anyhow::Result<Bound> {
    check_exposure(config)?;
    let mut metrics = Metrics::new();
    let composed = crate::compose::services(config, &mut metrics)?;
    let metrics = Arc::new(metrics);
    let auth = Arc::new(Authenticator::new(&config.api_keys));
    let app = lakehouse_server::app(
        composed.services,
        lakehouse_server::Shared {
            auth,
            metrics,
            policy: Arc::new(config.policy.clone()),
            gateway: composed.gateway,
            browsers: Arc::new(lakehouse_server::Browsers::new(
                config.listen,
                &config.allowed_hosts,
                &config.allowed_origins,
            )),
        },
    );
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {}; is another server using it? (--listen to choose)",
            config.listen
        )
    })?;
    let addr = listener.local_addr()?;
    Ok(Bound {
        addr,
        listener,
        app,
        grace: Duration::from_secs(config.shutdown_grace_secs),
        matrix: composed.matrix,
    })
}

impl Bound {
    /// Serves until `shutdown` completes, then gives in-flight requests the grace period to finish.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let signalled = Arc::new(Notify::new());
        let notify = Arc::clone(&signalled);
        let shutdown = async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            notify.notify_one();
        };
        let grace = self.grace;
        let server = lakehouse_server::serve(self.listener, self.app, shutdown);
        tokio::select! {
            result = server => result.context("server failed")?,
            () = async { signalled.notified().await; tokio::time::sleep(grace).await } => {
                tracing::warn!(
                    grace_secs = grace.as_secs(),
                    "requests still in flight after the grace period; exiting"
                );
            }
        }
        if let Some(matrix) = &self.matrix {
            // Searches have stopped: what they recorded is appended before exiting.
            matrix.shutdown().await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// `lakehouse serve`.
pub async fn run(config: Config, addr_file: Option<PathBuf>) -> anyhow::Result<()> {
    let bound = bind(&config).await?;
    for (role, action) in config.policy.unknown_actions() {
        tracing::warn!(
            role,
            action,
            "[roles.{role}] lists {action:?}, which is no action: it allows nothing (`lakehouse doctor` lists \
             the actions)"
        );
    }
    tracing::info!(
        addr = %bound.addr,
        services = %describe_services(&config),
        storage = %config.storage.backend.describe(),
        auth = if config.auth_enabled() { "api keys" } else { "open (loopback only)" },
        "listening"
    );
    if let Some(path) = addr_file {
        write_atomically(&path, &bound.addr.to_string())?;
    }
    bound.serve(shutdown_signal()).await
}

fn describe_services(config: &Config) -> String {
    match &config.only {
        None => "all".to_owned(),
        Some(list) => list
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
    }
}

/// Writes a file so readers never see it half-written.
fn write_atomically(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    fs_err::write(&tmp, text)?;
    fs_err::rename(&tmp, path)?;
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
