//! [`S3Server`]: a real S3-compatible server for the storage suite.
//!
//! `moto_server` (PyPI `moto[server]` 5.x) speaks the S3 API and honours conditional writes. The test command
//! installs it; the binary is found through `LAKEHOUSE_MOTO_SERVER` or on `PATH`.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
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
                "[s3.primary]\nendpoint = \"{}\"\nbucket = \"{}\"\nregion = \"us-east-1\"\naccess_key_id = \"test\"\nsecret_access_key = \"test\"\n",
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
