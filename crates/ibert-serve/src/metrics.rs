//! `/metrics` in Prometheus's text format (the `prometheus-client` crate): requests by route and
//! status, request latencies, the generation queue's depth, tokens in and out, generations
//! cancelled by reason, and the time to first token of streamed answers.

use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

/// What the model's thread counts itself, so that a generation whose client left is counted
/// too (its handler is gone by then). The counters share their values with their clones.
#[derive(Clone, Default)]
pub struct GenerationCounters {
    pub prompt_tokens: Counter,
    pub generated_tokens: Counter,
    /// Generations stopped, or requests dropped before they started, by why: `deadline` or
    /// `client_gone`.
    pub cancelled: Family<ReasonLabel, Counter>,
}

impl GenerationCounters {
    pub fn count_cancelled(&self, reason: &'static str) {
        self.cancelled.get_or_create(&ReasonLabel { reason }).inc();
    }
}

pub struct Metrics {
    registry: Mutex<Registry>,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabel, Histogram>,
    pub queue_depth: Gauge,
    pub generation: GenerationCounters,
    pub first_token: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        // 1 ms to about 9 minutes.
        let latency = Family::<RouteLabel, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 20)));
        let queue_depth = Gauge::default();
        let generation = GenerationCounters::default();
        let first_token = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        let mut registry = Registry::with_prefix("ibert");
        registry.register("http_requests", "HTTP requests answered, by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "Time to answer a request, by route", latency.clone());
        registry.register("generation_queue_depth", "Generation requests waiting for the model", queue_depth.clone());
        registry.register("prompt_tokens", "Prompt tokens run through the model", generation.prompt_tokens.clone());
        registry.register("generated_tokens", "Tokens generated", generation.generated_tokens.clone());
        registry.register("generations_cancelled", "Generations cancelled, by reason (deadline, client_gone)", generation.cancelled.clone());
        registry.register("time_to_first_token_seconds", "From a streamed request's arrival to its first token", first_token.clone());
        Metrics { registry: Mutex::new(registry), requests, latency, queue_depth, generation, first_token }
    }
}

impl Metrics {
    pub fn observe_request(&self, route: &str, status: u16, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { route: route.to_string(), status }).inc();
        self.latency.get_or_create(&RouteLabel { route: route.to_string() }).observe(elapsed.as_secs_f64());
    }

    /// The text exposition, with the queue depth as of now.
    pub fn render(&self, queue_depth: usize) -> String {
        self.queue_depth.set(queue_depth as i64);
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        encode(&mut text, &registry).expect("writing to a String cannot fail");
        text
    }
}
