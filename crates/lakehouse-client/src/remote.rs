//! The request plumbing every client shares.

use std::time::Duration;

use lakehouse_types::health::{HealthReport, ServiceHealth};
use lakehouse_types::{ApiError, ErrorCode, RequestContext};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;

/// Most bytes of an error body read back (bodies are small JSON; this bounds a misbehaving peer).
const MAX_ERROR_BODY: usize = 64 * 1024;

/// A remote service: its name (for messages), base URL and a pooled HTTP client.
#[derive(Debug, Clone)]
pub struct Remote {
    service: &'static str,
    base_url: String,
    http: reqwest::Client,
}

impl Remote {
    /// A client for `service` at `base_url` (`http://host:port`).
    pub fn new(service: &'static str, base_url: &str) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| {
                ApiError::internal(format!("cannot build the HTTP client for {service}: {e}"))
            })?;
        Ok(Remote {
            service,
            base_url: base_url.trim_end_matches('/').to_owned(),
            http,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A request to `path` carrying the caller's key and the request id.
    pub fn request(&self, ctx: &RequestContext, method: Method, path: &str) -> RequestBuilder {
        let mut builder = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        if !ctx.request_id.is_empty() {
            builder = builder.header("x-request-id", &ctx.request_id);
        }
        if let Some(key) = &ctx.caller.credential {
            builder = builder.bearer_auth(key);
        }
        builder
    }

    /// Sends a request; a non-2xx answer becomes the remote's [`ApiError`].
    pub async fn send(&self, builder: RequestBuilder) -> Result<Response, ApiError> {
        let response = builder.send().await.map_err(|e| self.unreachable(&e))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(self.error_from(response).await)
    }

    /// Sends a request and reads a JSON answer.
    pub async fn json<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, ApiError> {
        let response = self.send(builder).await?;
        response.json::<T>().await.map_err(|e| {
            ApiError::new(
                ErrorCode::BadGateway,
                format!("{} answered with an unreadable body: {e}", self.service),
            )
        })
    }

    /// Reads an error response back into an [`ApiError`].
    pub async fn error_from(&self, response: Response) -> ApiError {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let mut body = Vec::new();
        let mut response = response;
        while let Ok(Some(chunk)) = response.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_ERROR_BODY {
                break;
            }
        }
        ApiError::from_response(status, &body, retry_after)
    }

    /// The error for a service that cannot be reached.
    pub fn unreachable(&self, err: &reqwest::Error) -> ApiError {
        ApiError::new(
            ErrorCode::ServiceUnavailable,
            format!(
                "{} at {} cannot be reached: {err}; is it running?",
                self.service, self.base_url
            ),
        )
        .with_retry_after(1)
    }

    /// The remote service's own entry of its `/health` report.
    pub async fn health(&self) -> ServiceHealth {
        let answer = self
            .http
            .get(format!("{}/health", self.base_url))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        let report = match answer {
            Ok(response) => response
                .json::<HealthReport>()
                .await
                .map_err(|e| e.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match report {
            Ok(report) => match report.services.get(self.service) {
                Some(health) => ServiceHealth {
                    location: self.base_url.clone(),
                    ..health.clone()
                },
                None => ServiceHealth::down(
                    &self.base_url,
                    format!("{} does not serve {}", self.base_url, self.service),
                ),
            },
            Err(err) => ServiceHealth::down(&self.base_url, format!("unreachable: {err}")),
        }
    }
}
