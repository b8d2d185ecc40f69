//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use lakehouse_config::{Config, Overrides};

/// Lakehouse turns the CSV exports of a staffing company into versioned tables you can query with SQL, and
/// finds the right eligible workers for a job order. Everything runs on this machine; it can also run on S3
/// storage and several servers.
///
/// New here? Run `lakehouse demo`: it makes a sample data set, starts the server and opens a search page.
#[derive(Debug, Parser)]
#[command(name = "lakehouse", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the server (every service in one process, or some of them with --only).
    Serve(ServeArgs),
    /// Try it: sample staffing data, the server, example searches and the web page, in one command.
    Demo(DemoArgs),
    /// Check storage, the embedding model, ports and credentials, and say how to fix each problem.
    Doctor(DoctorArgs),
    /// Ingest a CSV, NDJSON or Parquet file into a dataset, through a running server.
    Ingest(crate::datasets_cli::IngestArgs),
    /// Run one read-only SQL statement on a running server.
    Sql(crate::datasets_cli::SqlArgs),
    /// List the datasets of a running server.
    Datasets(crate::datasets_cli::DatasetsArgs),
    /// Find eligible workers: matrix search on a running server.
    Search(crate::matrix_cli::SearchArgs),
    /// Write a realistic staffing data set (workers, clients, job orders, placements, timesheets) as CSV.
    Generate(crate::matrix_cli::GenerateArgs),
    /// Give an AI assistant the tools (MCP over stdin/stdout), acting through a running server.
    Mcp(crate::mcp_cli::McpArgs),
    /// Print the SHA-256 of an API key, for `[[auth.keys]] key_sha256` in the config.
    HashKey {
        /// The key; read from standard input when absent (keeps it out of shell history).
        key: Option<String>,
    },
}

/// Where configuration comes from; shared by every command that reads it.
#[derive(Debug, Clone, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, env = "LAKEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Data directory (objects, when storage is local).
    #[arg(long = "data", env = "LAKEHOUSE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:3110, or the service's own port with one --only service).
    #[arg(long, env = "LAKEHOUSE_LISTEN")]
    pub listen: Option<SocketAddr>,
}

impl ConfigArgs {
    /// Loads the configuration with these flags on top.
    pub fn load(&self, only: Option<String>) -> anyhow::Result<Config> {
        let overrides = Overrides {
            config_file: self.config.clone(),
            data_dir: self.data_dir.clone(),
            listen: self.listen,
            only: only.map(|list| vec![list]),
        };
        Ok(Config::load(&overrides)?)
    }
}

/// `lakehouse serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Run only these services (comma-separated: gateway, storaged, ...); the others are reached at the URLs
    /// of the `[services]` config table.
    #[arg(long, env = "LAKEHOUSE_ONLY")]
    only: Option<String>,
    /// Write the bound address to this file once listening (for scripts and tests using port 0).
    #[arg(long)]
    addr_file: Option<PathBuf>,
}

/// `lakehouse demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Exit after showing the server working instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
    /// Workers in the generated staffing data set.
    #[arg(long, default_value_t = 2000)]
    workers: usize,
}

/// `lakehouse doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print the checks as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs the command line; the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Stack of every runtime thread. DataFusion names a projected expression by printing it, and printing
/// recurses once per level of the expression tree: a chain of 500 `+` overflowed the default 2 MiB in a
/// debug build and aborted the process. With 16 MiB a debug build answers chains of 2,000; the SQL gate
/// admits at most 1,024 operators (`readonly::MAX_OPERATORS` in the query crate). Only the pages a thread
/// touches are resident.
const THREAD_STACK_BYTES: usize = 16 << 20;

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(THREAD_STACK_BYTES)
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let config = args.config.load(args.only)?;
            crate::logging::init(&config);
            runtime()?.block_on(crate::serve::run(config, args.addr_file))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => {
            let mut config = args.config.load(None)?;
            // The demo narrates what it does; the server's request log would drown it. Warnings and
            // errors still show (RUST_LOG overrides).
            "warn".clone_into(&mut config.log_level);
            crate::logging::init(&config);
            runtime()?.block_on(crate::demo::run(
                config,
                crate::demo::DemoOptions {
                    keep_serving: !args.exit,
                    workers: args.workers,
                },
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Doctor(args) => {
            let report = runtime()?.block_on(crate::doctor::run(&args.config));
            crate::doctor::print(&report, args.json)?;
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Ingest(args) => {
            runtime()?.block_on(crate::datasets_cli::ingest(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Sql(args) => {
            runtime()?.block_on(crate::datasets_cli::sql(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Datasets(args) => {
            runtime()?.block_on(crate::datasets_cli::datasets(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Search(args) => {
            runtime()?.block_on(crate::matrix_cli::search(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Mcp(args) => {
            // Standard output belongs to the protocol: logs go to standard error, warnings and up.
            let _ = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
                )
                .with_writer(std::io::stderr)
                .with_ansi(false)
                .try_init();
            runtime()?.block_on(crate::mcp_cli::run(args))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate(args) => {
            crate::matrix_cli::generate(&args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::HashKey { key } => {
            let key = match key {
                Some(key) => key,
                None => {
                    let mut line = String::new();
                    std::io::stdin().read_line(&mut line)?;
                    line.trim().to_owned()
                }
            };
            anyhow::ensure!(!key.is_empty(), "the key is empty");
            println!("{}", hex::encode(lakehouse_config::hash_key(&key)));
            Ok(ExitCode::SUCCESS)
        }
    }
}
