//! The Prometheus registry: requests by route and status, a latency histogram, requests in flight, and
//! whatever the services register at start-up.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use lakehouse_api::metrics::{Reading, ReadingValue, Reports};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
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

    /// Registers the metrics a service keeps itself (a cache's hit count, say): read at each scrape and
    /// exported under the registry's prefix.
    pub fn report(&mut self, service: Arc<dyn Reports>) {
        self.read_at_scrape(move || service.readings());
    }

    /// Registers metrics read by `read` at each scrape, exported under the registry's prefix.
    pub fn read_at_scrape(&mut self, read: impl Fn() -> Vec<Reading> + Send + Sync + 'static) {
        self.registry.register_collector(Box::new(ReadAtScrape {
            read: Box::new(read),
        }));
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

type ReadFn = Box<dyn Fn() -> Vec<Reading> + Send + Sync>;

struct ReadAtScrape {
    read: ReadFn,
}

impl std::fmt::Debug for ReadAtScrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadAtScrape")
    }
}

impl Collector for ReadAtScrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let readings = (self.read)();
        // Readings of one name are one metric: its descriptor once, then a sample per label set.
        for group in readings.chunk_by(|a, b| a.name == b.name) {
            let first = &group[0];
            let metric_type = match first.value {
                ReadingValue::Counter(_) => ConstCounter::new(0u64).metric_type(),
                ReadingValue::Gauge(_) => ConstGauge::new(0i64).metric_type(),
            };
            let mut out = encoder.encode_descriptor(first.name, first.help, None, metric_type)?;
            for reading in group {
                if reading.labels.is_empty() {
                    encode_value(reading.value, out)?;
                    break;
                }
                encode_value(reading.value, out.encode_family(&reading.labels)?)?;
            }
        }
        Ok(())
    }
}

fn encode_value(
    value: ReadingValue,
    out: prometheus_client::encoding::MetricEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    match value {
        ReadingValue::Counter(v) => ConstCounter::new(v).encode(out),
        ReadingValue::Gauge(v) => ConstGauge::new(v).encode(out),
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn readings_are_taken_at_each_scrape_under_the_prefix() {
        let mut metrics = Metrics::new();
        let hits = Arc::new(AtomicU64::new(3));
        let seen = Arc::clone(&hits);
        metrics.read_at_scrape(move || {
            vec![
                Reading::counter("cache_hits", "Hits", seen.load(Ordering::Relaxed)),
                Reading::gauge("cache_entries", "Entries held", 7),
                Reading::gauge("table_files", "Files", 2).label("dataset", "a"),
                Reading::gauge("table_files", "Files", 5).label("dataset", "b"),
            ]
        });
        let first = metrics.encode();
        assert!(
            first.contains("# TYPE lakehouse_cache_hits counter"),
            "{first}"
        );
        assert!(
            first.contains("\nlakehouse_cache_hits_total 3\n"),
            "{first}"
        );
        assert!(first.contains("\nlakehouse_cache_entries 7\n"), "{first}");
        assert_eq!(
            first.matches("# TYPE lakehouse_table_files gauge").count(),
            1,
            "{first}"
        );
        assert!(
            first.contains("\nlakehouse_table_files{dataset=\"a\"} 2\n"),
            "{first}"
        );
        assert!(
            first.contains("\nlakehouse_table_files{dataset=\"b\"} 5\n"),
            "{first}"
        );
        hits.store(10, Ordering::Relaxed);
        assert!(
            metrics
                .encode()
                .contains("\nlakehouse_cache_hits_total 10\n")
        );
    }
}
