//! Structured logs with tracing: text for people, JSON for machines (`[log] format = "json"`).

use lakehouse_config::Config;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. `RUST_LOG` wins over `[log] level`.
pub fn init(config: &Config) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests running several commands in one process) keeps the first subscriber.
    let _ = if config.log_format == "json" {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}
