//! [`S3Server`]: a real S3-compatible server for the storage suite.
//!
//! `moto_server` (PyPI `moto[server]` 5.x) speaks the S3 API and honours conditional writes. The test command
//! installs it; the binary is found through `LAKEHOUSE_MOTO_SERVER` or on `PATH`.
//!
//! S3 checks a write's condition (`If-None-Match: *`, on which every Delta commit relies) and stores the
//! object as one step. moto checks, then stores, on one thread per request: two instances committing the same
//! version at once could both be told they won (seen: an acknowledged append lost in a two-instance test).
//! So the server is started from moto's own Python with its application behind one lock, which makes each
//! request one step again, as on S3.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// moto's server with every request under one lock (see the module's documentation); argv: host, port.
const SERIALIZED_MOTO: &str = r#"
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def one_at_a_time(environ, start_response):
    with lock:
        return list(app(environ, start_response))
run_simple(sys.argv[1], int(sys.argv[2]), one_at_a_time, threaded=True, request_handler=MotoRequestHandler)
"#;

/// The Python that runs `program` (a `moto_server` script found as given or on `PATH`), from its `#!` line.
fn interpreter_of(program: &str) -> Option<std::path::PathBuf> {
    let path = if program.contains('/') {
        std::path::PathBuf::from(program)
    } else {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())?
    };
    let text = std::fs::read(&path).ok()?;
    let first = text.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(first).ok()?.strip_prefix("#!")?.trim();
    (line.contains("python") && !line.contains(' ')).then(|| std::path::PathBuf::from(line))
}

/// A running S3-compatible server with one bucket.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    endpoint: String,
    bucket: String,
}

impl S3Server {
    /// Starts a server and creates `bucket` on it.
    pub async fn start(bucket: &str) -> S3Server {
        let program =
            std::env::var("LAKEHOUSE_MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
        // moto has no "port 0 and tell me": take a free port from the OS and hand it over.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = match interpreter_of(&program) {
            Some(python) => {
                let mut c = Command::new(python);
                c.args(["-c", SERIALIZED_MOTO, "127.0.0.1", &port.to_string()]);
                c
            }
            None => {
                let mut c = Command::new(&program);
                c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                c
            }
        };
        let child = command
            .env("MOTO_PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the S3 test server {program:?}: {e}. Run the tests with the README's test \
                     command, which installs it (pip install 'moto[server]'), or set LAKEHOUSE_MOTO_SERVER"
                )
            });
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: bucket.to_owned(),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // Creating the bucket doubles as the readiness probe.
            if let Ok(response) = client
                .put(format!("{}/{bucket}", server.endpoint))
                .send()
                .await
            {
                assert!(
                    response.status().is_success(),
                    "creating bucket {bucket}: {}",
                    response.status()
                );
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "the S3 test server did not start in 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Writes a secrets file for this server and returns the config TOML that uses it.
    pub fn config_toml(&self, dir: &Path) -> String {
        let secrets = dir.join("s3-secrets.toml");
        std::fs::write(
            &secrets,
            format!(
                "[s3.primary]\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"us-east-1\"\n\
                 access_key_id = \"test\"\nsecret_access_key = \"test\"\n",
                self.endpoint, self.bucket
            ),
        )
        .unwrap();
        format!(
            "[storage]\nbackend = \"s3\"\nsecrets_file = {:?}\n",
            secrets.display().to_string()
        )
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
