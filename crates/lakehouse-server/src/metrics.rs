//! The Prometheus registry: requests by route and status, a latency histogram, requests in flight, and
//! whatever the services register at start-up.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The process's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    in_flight: Gauge<i64, std::sync::atomic::AtomicI64>,
}

/// Decrements the in-flight gauge when the request ends, however it ends.
#[derive(Debug)]
pub struct InFlight(Gauge<i64, std::sync::atomic::AtomicI64>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the HTTP metrics.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("lakehouse");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        // 0.25 ms .. ~8 s.
        let latency: LatencyFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.00025, 2.0, 16)));
        registry.register(
            "http_request_duration_seconds",
            "Time to the response head",
            latency.clone(),
        );
        let in_flight = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being served",
            in_flight.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            in_flight,
        }
    }

    /// The registry, for services to register their own metrics before the server starts.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// A counter registered under `name` (services' own counters: cache hits, ...).
    pub fn counter(&mut self, name: &str, help: &str) -> Counter<u64, AtomicU64> {
        let counter = Counter::<u64, AtomicU64>::default();
        self.registry.register(name, help, counter.clone());
        counter
    }

    /// Counts a request as in flight until the guard drops.
    pub fn track_in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Records a finished request.
    pub fn record_request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let method = method.to_owned();
        let route = route.to_owned();
        self.latency
            .get_or_create(&RouteLabels {
                method: method.clone(),
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }

    /// The registry in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(err) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::error!(error = %err, "could not encode metrics");
        }
        text
    }
}

/// `GET /metrics`.
pub async fn render(State(metrics): State<Arc<Metrics>>) -> Response {
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
        .into_response()
}
