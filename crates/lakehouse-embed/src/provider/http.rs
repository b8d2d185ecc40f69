//! What the remote providers share: one HTTP client per provider, per-attempt timeouts, bounded retries with
//! backoff on failures that may pass (connection errors, timeouts, 429, 5xx), and the mapping of everything
//! else onto the crate's errors.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The first retry waits this long; each next one twice as long.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Error bodies are quoted in messages up to this many bytes.
const MAX_QUOTED_BODY: usize = 300;

/// A JSON-over-HTTP caller for one provider.
#[derive(Debug, Clone)]
pub(crate) struct HttpCaller {
    pub(crate) provider: &'static str,
    /// The setting holding the credentials, named when they are refused.
    pub(crate) auth_hint: &'static str,
    client: reqwest::Client,
    retries: u32,
    api_key: Option<String>,
}

impl HttpCaller {
    pub(crate) fn new(
        provider: &'static str,
        auth_hint: &'static str,
        timeout: Duration,
        retries: u32,
        api_key: Option<String>,
    ) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .build()
            .map_err(|err| Error::ProviderUnavailable {
                provider,
                url: String::new(),
                message: format!("building the HTTP client: {err}"),
            })?;
        Ok(HttpCaller {
            provider,
            auth_hint,
            client,
            retries,
            api_key,
        })
    }

    /// POSTs a JSON body and decodes the JSON answer, retrying transient failures.
    pub(crate) async fn post<B: Serialize + Sync, R: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<R> {
        self.call(url, |client| client.post(url).json(body)).await
    }

    /// GETs a JSON answer, retrying transient failures.
    pub(crate) async fn get<R: DeserializeOwned>(&self, url: &str) -> Result<R> {
        self.call(url, |client| client.get(url)).await
    }

    async fn call<R: DeserializeOwned>(
        &self,
        url: &str,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<R> {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            let mut request = build(&self.client);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key);
            }
            let failure = match request.send().await {
                Ok(response) => match self.classify(url, response).await {
                    Outcome::Done(result) => return result,
                    Outcome::Transient(message) => message,
                },
                Err(err) => describe(&err),
            };
            if attempt >= self.retries {
                return Err(Error::ProviderUnavailable {
                    provider: self.provider,
                    url: url.to_owned(),
                    message: format!("{failure} (after {} attempts)", attempt + 1),
                });
            }
            tracing::warn!(
                provider = self.provider,
                url,
                attempt,
                failure,
                "embedding provider call failed; retrying"
            );
            tokio::time::sleep(backoff).await;
            backoff *= 2;
            attempt += 1;
        }
    }

    async fn classify<R: DeserializeOwned>(
        &self,
        url: &str,
        response: reqwest::Response,
    ) -> Outcome<R> {
        let status = response.status();
        let body = match response.bytes().await {
            Ok(body) => body,
            Err(err) => {
                return Outcome::Transient(format!("reading the answer: {}", describe(&err)));
            }
        };
        if status.is_success() {
            return Outcome::Done(serde_json::from_slice(&body).map_err(|err| {
                Error::ProviderProtocol {
                    provider: self.provider,
                    message: format!("{url} answered JSON that does not parse as expected: {err}"),
                }
            }));
        }
        let message = error_message(&body);
        let code = status.as_u16();
        if code == 429 || status.is_server_error() {
            return Outcome::Transient(format!("HTTP {code}: {message}"));
        }
        if code == 401 || code == 403 {
            return Outcome::Done(Err(Error::ProviderAuth {
                provider: self.provider,
                status: code,
                hint: self.auth_hint,
            }));
        }
        Outcome::Done(Err(Error::ProviderRejected {
            provider: self.provider,
            status: code,
            message,
        }))
    }
}

enum Outcome<R> {
    Done(Result<R>),
    Transient(String),
}

fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "cannot connect (is it running?)".to_owned()
    } else {
        // reqwest's Display names only the outermost layer; the source chain says why.
        let mut message = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        message
    }
}

/// The message of an error body: Ollama's `{"error": "..."}`, OpenAI's `{"error": {"message": "..."}}`, or the
/// start of whatever else came back.
fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = &value["error"];
        if let Some(message) = error.as_str().or_else(|| error["message"].as_str()) {
            return message.to_owned();
        }
    }
    let text = String::from_utf8_lossy(body);
    let mut end = text.len().min(MAX_QUOTED_BODY);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text[..end].to_owned()
    }
}
