//! [`TestServer`]: the real binary on an ephemeral port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How to start a [`TestServer`].
#[derive(Debug, Clone)]
pub struct TestServerBuilder {
    binary: PathBuf,
    config: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    listen: String,
}

impl TestServerBuilder {
    /// The address to listen on (default `127.0.0.1:0`).
    pub fn listen(mut self, addr: &str) -> Self {
        addr.clone_into(&mut self.listen);
        self
    }

    /// Extra TOML for the config file (`data_dir` and `server.listen` are set by the server).
    pub fn config(mut self, toml: &str) -> Self {
        self.config.push_str(toml);
        self.config.push('\n');
        self
    }

    /// Extra command-line arguments for `serve` (`--only storaged`, ...).
    pub fn arg(mut self, arg: &str) -> Self {
        self.args.push(arg.to_owned());
        self
    }

    /// An environment variable for the server process.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the server over a new temporary data directory and waits until `/health` answers.
    pub async fn spawn(self) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut server = TestServer {
            builder: self,
            dir,
            child: None,
            url: String::new(),
        };
        server.start().await;
        server
    }
}

/// A running `lakehouse serve` child process.
#[derive(Debug)]
pub struct TestServer {
    builder: TestServerBuilder,
    dir: TempDir,
    child: Option<Child>,
    url: String,
}

impl TestServer {
    /// A builder for a server run from `binary` (`env!("CARGO_BIN_EXE_lakehouse")` in the tests).
    pub fn builder(binary: impl Into<PathBuf>) -> TestServerBuilder {
        TestServerBuilder {
            binary: binary.into(),
            config: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            listen: "127.0.0.1:0".to_owned(),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The temporary directory holding data, config and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts (or restarts) the process over the same data directory.
    pub async fn start(&mut self) {
        assert!(self.child.is_none(), "already running");
        let config_path = self.dir.path().join("lakehouse.toml");
        std::fs::write(&config_path, &self.builder.config).unwrap();
        let addr_file = self.dir.path().join("addr");
        let _ = std::fs::remove_file(&addr_file);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut command = Command::new(&self.builder.binary);
        command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .arg("--data")
            .arg(self.data_dir())
            .arg("--listen")
            .arg(&self.builder.listen)
            .arg("--addr-file")
            .arg(&addr_file)
            .args(&self.builder.args)
            .env_remove("LAKEHOUSE_CONFIG")
            .env_remove("LAKEHOUSE_LISTEN")
            .env_remove("LAKEHOUSE_ONLY")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (key, value) in &self.builder.env {
            command.env(key, value);
        }
        self.child = Some(command.spawn().expect("start the lakehouse binary"));

        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                self.child = None;
                panic!(
                    "lakehouse serve exited with {status} during start-up; log:\n{}",
                    self.log()
                );
            }
            if let Ok(addr) = std::fs::read_to_string(&addr_file) {
                self.url = format!("http://{}", addr.trim());
                // A server bound to every interface is reached on loopback.
                let probe = self.url.replace("0.0.0.0", "127.0.0.1");
                if let Ok(response) = reqwest::get(format!("{probe}/health")).await
                    && response.status().is_success()
                {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server did not become healthy in 60 s; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit; its exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        signal(child.id(), "TERM");
        self.wait_exit(Duration::from_secs(60)).await
    }

    /// Sends SIGTERM without waiting.
    pub fn send_sigterm(&self) {
        signal(self.pid().expect("running"), "TERM");
    }

    /// Waits for the process to exit by itself.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut().expect("running");
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `kill -9`: the process dies at once, mid-whatever.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{name} {pid} failed");
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
