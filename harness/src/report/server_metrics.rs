//! What the servers' own Prometheus counters say about each point: their growth over
//! the measured windows (scraped before and after each window), for servers with a
//! metrics endpoint (Triton's metrics port, MLServer's, TF Serving's monitoring
//! endpoint). Per request: the queue and compute time the server counted; and how many
//! inferences (samples) and executions (batches the model ran) it counted, which shows
//! the dynamic batcher at work. Each server names its counters its own way
//! ([`Dialect`]); a counter a server does not have is `-`. TF Serving counts requests
//! and the time its model ran (`runtime_latency`, µs), which is its compute; it has no
//! queue without batching.

use std::collections::BTreeMap;

use tabled::builder::Builder;

use crate::report::table::{ms, titled};
use crate::results::Results;

/// Which counters of a server fill the table's columns.
struct Dialect {
    /// Successful requests (a point's row shows when its metrics have this counter).
    requests: &'static str,
    /// Inferences (samples) performed.
    inferences: Option<&'static str>,
    /// Model executions (batches run).
    executions: Option<&'static str>,
    /// Cumulative queueing time.
    queue: &'static [&'static str],
    /// Cumulative compute time (summed).
    compute: &'static [&'static str],
    /// The count the duration counters are divided by (the requests they timed).
    timed: &'static str,
    /// Microseconds in one unit of the duration counters.
    us_per_unit: f64,
}

/// Triton: durations in microseconds, compute = input + infer + output.
const TRITON: Dialect = Dialect {
    requests: "nv_inference_request_success",
    inferences: Some("nv_inference_count"),
    executions: Some("nv_inference_exec_count"),
    queue: &["nv_inference_queue_duration_us"],
    compute: &[
        "nv_inference_compute_input_duration_us",
        "nv_inference_compute_infer_duration_us",
        "nv_inference_compute_output_duration_us",
    ],
    timed: "nv_inference_request_success",
    us_per_unit: 1.0,
};

/// MLServer 1.7: successful requests, and the summary of time in its data plane (the
/// dispatch to a parallel worker and the model's run; failed requests included, so
/// divided by its own count) in seconds, shown as compute.
const MLSERVER: Dialect = Dialect {
    requests: "model_infer_request_success_total",
    inferences: None,
    executions: None,
    queue: &[],
    compute: &["model_infer_request_duration_sum"],
    timed: "model_infer_request_duration_count",
    us_per_unit: 1e6,
};

/// TF Serving, as `support::metrics` spells its colon names: every request, and the
/// time its model ran, in microseconds.
const TF_SERVING: Dialect = Dialect {
    requests: "tensorflow_serving_request_count",
    inferences: None,
    executions: None,
    queue: &[],
    compute: &["tensorflow_serving_runtime_latency_sum"],
    timed: "tensorflow_serving_request_count",
    us_per_unit: 1.0,
};

const DIALECTS: [&Dialect; 3] = [&TRITON, &MLSERVER, &TF_SERVING];

/// The dialect of a point's metrics: the first whose request counter they have.
fn dialect(m: &BTreeMap<String, f64>) -> Option<&'static Dialect> {
    DIALECTS.into_iter().find(|d| m.contains_key(d.requests))
}

/// The server metrics table under a title line, or an empty string when no server
/// reported metrics.
pub fn server_metrics_table(results: &Results, markdown: bool) -> String {
    let rows: Vec<_> = results
        .results
        .iter()
        .filter_map(|r| Some((r, dialect(&r.server_metrics)?)))
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
    for (r, d) in rows {
        let m = &r.server_metrics;
        let (requests, per) = per_request(m, d);
        let count = |k: Option<&str>| {
            k.and_then(|k| m.get(k))
                .map_or("-".to_string(), |v| format!("{v:.0}"))
        };
        builder.push_record([
            r.model.clone(),
            r.batch_size.to_string(),
            r.load.clone(),
            r.backend.clone(),
            format!("{requests:.0}"),
            count(d.inferences),
            count(d.executions),
            per(d.queue),
            per(d.compute),
        ]);
    }
    let title =
        "Server metrics (the server's Prometheus counters, growth over the measured windows)";
    titled(builder, markdown, "Server metrics", title)
}

/// The requests counted, and a reader of summed duration counters as ms per timed
/// request.
fn per_request<'a>(
    m: &'a BTreeMap<String, f64>,
    d: &'a Dialect,
) -> (f64, impl Fn(&[&str]) -> String + 'a) {
    let requests = m.get(d.requests).copied().unwrap_or(0.0);
    let timed = m.get(d.timed).copied().unwrap_or(0.0);
    let per = move |keys: &[&str]| {
        let total: Option<f64> = keys.iter().map(|k| m.get(*k)).sum();
        match total {
            Some(t) if timed > 0.0 && !keys.is_empty() => ms(t * d.us_per_unit / timed / 1000.0),
            _ => "-".to_string(),
        }
    };
    (requests, per)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    #[test]
    fn durations_are_per_request_in_ms() {
        let m = metrics(&[
            (TRITON.requests, 10.0),
            (TRITON.queue[0], 5000.0),
            (TRITON.compute[0], 1000.0),
            (TRITON.compute[1], 18000.0),
            (TRITON.compute[2], 1000.0),
        ]);
        let d = dialect(&m).unwrap();
        assert_eq!(d.requests, TRITON.requests);
        let (n, per) = per_request(&m, d);
        assert_eq!(n, 10.0);
        assert_eq!(per(d.queue), "0.500");
        assert_eq!(per(d.compute), "2.00");
        assert_eq!(per(&["missing"]), "-");
    }

    /// MLServer's counters as `support::metrics` reads them from its exposition text
    /// (a summary's `_sum` and `_count` lines count as untyped).
    #[test]
    fn mlservers_counters_fill_requests_and_compute_in_seconds() {
        let text = "# TYPE model_infer_request_success_total counter\n\
            model_infer_request_success_total{model=\"text-cnn\",version=\"None\"} 4.0\n\
            # TYPE model_infer_request_failure_total counter\n\
            model_infer_request_failure_total{model=\"text-cnn\",version=\"None\"} 1.0\n\
            # TYPE model_infer_request_duration summary\n\
            model_infer_request_duration_count{model=\"text-cnn\",version=\"None\"} 5.0\n\
            model_infer_request_duration_sum{model=\"text-cnn\",version=\"None\"} 0.03\n\
            # TYPE parallel_request_queue histogram\n\
            parallel_request_queue_sum 5.0\n";
        let m = support::metrics::counters(text, "text-cnn").unwrap();
        assert_eq!(m["model_infer_request_duration_count"], 5.0);
        let d = dialect(&m).unwrap();
        assert_eq!(d.requests, MLSERVER.requests);
        let (n, per) = per_request(&m, d);
        assert_eq!(n, 4.0);
        // 30 ms over the 5 requests timed (one failed).
        assert_eq!(per(d.compute), "6.00");
        assert_eq!(per(d.queue), "-");
        assert!(dialect(&metrics(&[("other_total", 1.0)])).is_none());
    }

    #[test]
    fn tf_serving_rows_show_its_requests_and_runtime() {
        let m = metrics(&[
            ("tensorflow_serving_request_count", 4.0),
            ("tensorflow_serving_runtime_latency_sum", 6000.0),
            ("tensorflow_serving_request_latency_sum", 8000.0),
        ]);
        let d = dialect(&m).unwrap();
        assert_eq!(d.requests, TF_SERVING.requests);
        let (n, per) = per_request(&m, d);
        assert_eq!(n, 4.0);
        assert_eq!(per(d.compute), "1.50");
        assert_eq!(per(d.queue), "-");
    }
}
