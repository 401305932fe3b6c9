//! What the servers' own Prometheus counters say about each point: their growth over
//! the measured windows (scraped before and after each window), for servers with a
//! metrics endpoint (Triton's metrics port, TF Serving's monitoring endpoint). Per
//! request: the queue and compute time the server counted; and how many inferences
//! (samples) and executions (batches the model ran) it counted, which shows the dynamic
//! batcher at work. TF Serving counts requests and the time its model ran
//! (`runtime_latency`, µs), which is its compute; it has no queue without batching.

use std::collections::BTreeMap;

use tabled::builder::Builder;

use crate::report::table::{ms, titled};
use crate::results::Results;

/// One server's counter names.
struct Names {
    /// Requests (Triton: successful ones; TF Serving: every status).
    requests: &'static str,
    inferences: Option<&'static str>,
    executions: Option<&'static str>,
    /// Cumulative queue durations, µs.
    queue_us: &'static [&'static str],
    /// Cumulative compute durations, µs.
    compute_us: &'static [&'static str],
}

/// Triton's counters.
const TRITON: Names = Names {
    requests: REQUESTS,
    inferences: Some("nv_inference_count"),
    executions: Some("nv_inference_exec_count"),
    queue_us: &[QUEUE_US],
    compute_us: &COMPUTE_US,
};
const REQUESTS: &str = "nv_inference_request_success";
const QUEUE_US: &str = "nv_inference_queue_duration_us";
const COMPUTE_US: [&str; 3] = [
    "nv_inference_compute_input_duration_us",
    "nv_inference_compute_infer_duration_us",
    "nv_inference_compute_output_duration_us",
];

/// TF Serving's counters, as `support::metrics` spells its colon names.
const TF_SERVING: Names = Names {
    requests: "tensorflow_serving_request_count",
    inferences: None,
    executions: None,
    queue_us: &[],
    compute_us: &["tensorflow_serving_runtime_latency_sum"],
};

/// The server metrics table under a title line, or an empty string when no server
/// reported metrics.
pub fn server_metrics_table(results: &Results, markdown: bool) -> String {
    let rows: Vec<_> = results
        .results
        .iter()
        .filter_map(|r| Some((r, figures(&r.server_metrics)?)))
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
    for (r, figures) in rows {
        let mut row = vec![
            r.model.clone(),
            r.batch_size.to_string(),
            r.load.clone(),
            r.backend.clone(),
        ];
        row.extend(figures);
        builder.push_record(row);
    }
    let title =
        "Server metrics (the server's Prometheus counters, growth over the measured windows)";
    titled(builder, markdown, "Server metrics", title)
}

/// Requests, inferences, executions, queue and compute ms per request of a row's
/// counters, from whichever server's names they hold; `None` for neither.
fn figures(m: &BTreeMap<String, f64>) -> Option<[String; 5]> {
    let names = [TRITON, TF_SERVING]
        .into_iter()
        .find(|n| m.contains_key(n.requests))?;
    let (requests, per) = per_request(m, names.requests);
    let count = |k: Option<&str>| {
        k.and_then(|k| m.get(k))
            .map_or("-".to_string(), |v| format!("{v:.0}"))
    };
    Some([
        format!("{requests:.0}"),
        count(names.inferences),
        count(names.executions),
        per(names.queue_us),
        per(names.compute_us),
    ])
}

/// The requests counted (under `requests`), and a reader of summed microsecond
/// counters as ms per request (`-` for none).
fn per_request<'a>(
    m: &'a BTreeMap<String, f64>,
    requests: &str,
) -> (f64, impl Fn(&[&str]) -> String + 'a) {
    let requests = m.get(requests).copied().unwrap_or(0.0);
    let per = move |keys: &[&str]| {
        let us: Option<f64> = match keys {
            [] => None,
            keys => keys.iter().map(|k| m.get(*k)).sum(),
        };
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
        let (n, per) = per_request(&m, REQUESTS);
        assert_eq!(n, 10.0);
        assert_eq!(per(&[QUEUE_US]), "0.500");
        assert_eq!(per(&COMPUTE_US), "2.00");
        assert_eq!(per(&["missing"]), "-");
        assert_eq!(per(&[]), "-");
    }

    #[test]
    fn tf_serving_rows_show_its_requests_and_runtime() {
        let counters = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let tf = counters(&[
            ("tensorflow_serving_request_count", 4.0),
            ("tensorflow_serving_runtime_latency_sum", 6000.0),
            ("tensorflow_serving_request_latency_sum", 8000.0),
        ]);
        assert_eq!(figures(&tf).unwrap(), ["4", "-", "-", "-", "1.50"]);
        let triton = counters(&[
            (REQUESTS, 2.0),
            ("nv_inference_count", 8.0),
            (QUEUE_US, 400.0),
        ]);
        assert_eq!(figures(&triton).unwrap(), ["2", "8", "-", "0.200", "-"]);
        assert!(figures(&counters(&[("other_total", 1.0)])).is_none());
    }
}
