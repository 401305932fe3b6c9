//! What the servers' own Prometheus counters say about each point: their growth over
//! the measured windows (scraped before and after each window), for servers with a
//! metrics endpoint (Triton's metrics port). Per request: the queue and compute time
//! the server counted; and how many inferences (samples) and executions (batches the
//! model ran) it counted, which shows the dynamic batcher at work.

use std::collections::BTreeMap;

use tabled::builder::Builder;

use crate::report::table::{ms, titled};
use crate::results::Results;

/// Triton's counters: successful requests, inferences, executions, and the cumulative
/// durations in microseconds.
const REQUESTS: &str = "nv_inference_request_success";
const INFERENCES: &str = "nv_inference_count";
const EXECUTIONS: &str = "nv_inference_exec_count";
const QUEUE_US: &str = "nv_inference_queue_duration_us";
const COMPUTE_US: [&str; 3] = [
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
];

/// The server metrics table under a title line, or an empty string when no server
/// reported metrics.
pub fn server_metrics_table(results: &Results, markdown: bool) -> String {
    let rows: Vec<_> = results
        .results
        .iter()
        .filter(|r| r.server_metrics.contains_key(REQUESTS))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut builder = Builder::default();
    builder.push_record([
        "model",
        "batch",
        "load",
        "backend",
        "requests",
        "inferences",
        "executions",
        "queue ms/req",
        "compute ms/req",
    ]);
    for r in rows {
        let m = &r.server_metrics;
        let (requests, per) = per_request(m);
        let count = |k: &str| m.get(k).map_or("-".to_string(), |v| format!("{v:.0}"));
        builder.push_record([
            r.model.clone(),
            r.batch_size.to_string(),
            r.load.clone(),
            r.backend.clone(),
            format!("{requests:.0}"),
            count(INFERENCES),
            count(EXECUTIONS),
            per(&[QUEUE_US]),
            per(&COMPUTE_US),
        ]);
    }
    let title =
        "Server metrics (the server's Prometheus counters, growth over the measured windows)";
    titled(builder, markdown, "Server metrics", title)
}

/// The requests counted, and a reader of summed microsecond counters as ms per request.
fn per_request(m: &BTreeMap<String, f64>) -> (f64, impl Fn(&[&str]) -> String + '_) {
    let requests = m.get(REQUESTS).copied().unwrap_or(0.0);
    let per = move |keys: &[&str]| {
        let us: Option<f64> = keys.iter().map(|k| m.get(*k)).sum();
        match us {
            Some(us) if requests > 0.0 => ms(us / requests / 1000.0),
            _ => "-".to_string(),
        }
    };
    (requests, per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_per_request_in_ms() {
        let m: BTreeMap<String, f64> = [
            (REQUESTS, 10.0),
            (QUEUE_US, 5000.0),
            (COMPUTE_US[0], 1000.0),
            (COMPUTE_US[1], 18000.0),
            (COMPUTE_US[2], 1000.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let (n, per) = per_request(&m);
        assert_eq!(n, 10.0);
        assert_eq!(per(&[QUEUE_US]), "0.500");
        assert_eq!(per(&COMPUTE_US), "2.00");
        assert_eq!(per(&["missing"]), "-");
    }
}
