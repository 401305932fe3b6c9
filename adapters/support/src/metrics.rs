//! A server's Prometheus metrics endpoint (Triton's metrics port, TF Serving's
//! monitoring endpoint), read as the cumulative counters of one model.
//!
//! The text exposition format is parsed by `prometheus-parse`. A sample counts for a
//! model when its `model` (Triton) or `model_name` (TF Serving) label names it; samples
//! of one metric name are summed over their other labels (versions, statuses, GPUs).
//! Counters and untyped samples only (a histogram's `_sum` and `_count` lines are
//! read as untyped, so they count too); gauges say nothing about an interval.
//!
//! TF Serving names its metrics with colons, the first one leading
//! (`:tensorflow:serving:request_count`). The exposition format allows colons in names,
//! but prometheus-parse 0.2 matches names with `\w+` and silently skips every line it
//! cannot match, so TF Serving's counters would all be lost. Each line's metric name is
//! therefore rewritten before parsing ([`normalise`]): the leading colon dropped and the
//! others made underscores (`tensorflow_serving_request_count`), the names the deltas
//! are reported under.

use std::collections::BTreeMap;

use contract::BackendError;
use prometheus_parse::{Scrape, Value};

/// The counters of `model` in one scrape of the exposition text `text`, by metric name.
pub fn counters(text: &str, model: &str) -> Result<BTreeMap<String, f64>, BackendError> {
    let scrape = Scrape::parse(text.lines().map(|l| Ok(normalise(l))))
        .map_err(|e| BackendError::Protocol(format!("unreadable metrics: {e}")))?;
    let mut out = BTreeMap::new();
    for s in scrape.samples {
        let of_model = [s.labels.get("model"), s.labels.get("model_name")]
            .into_iter()
            .flatten()
            .any(|m| m == model);
        let value = match s.value {
            Value::Counter(v) | Value::Untyped(v) => v,
            _ => continue,
        };
        if of_model && value.is_finite() {
            *out.entry(s.metric).or_insert(0.0) += value;
        }
    }
    Ok(out)
}

/// `line` with its metric name (of a sample, or of a `# HELP` / `# TYPE` comment)
/// spelled without colons: `:a:b_total{x="1"} 2` is `a_b_total{x="1"} 2`. Labels and
/// values are left as they are; a name without colons leaves the line unchanged.
pub fn normalise(line: &str) -> String {
    let name = |n: &str| n.trim_start_matches(':').replace(':', "_");
    let trimmed = line.trim_start();
    for prefix in ["# HELP ", "# TYPE "] {
        if let Some(rest) = trimmed.strip_prefix(prefix) {
            let rest = rest.trim_start();
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            return format!("{prefix}{}{}", name(&rest[..end]), &rest[end..]);
        }
    }
    if trimmed.starts_with('#') {
        return line.to_string();
    }
    let end = trimmed
        .find(|c: char| c == '{' || c.is_whitespace())
        .unwrap_or(trimmed.len());
    format!("{}{}", name(&trimmed[..end]), &trimmed[end..])
}

/// What grew between two scrapes: `after - before` per metric (a metric missing from
/// `before` counts from zero); metrics that went down (a restarted server) are left out.
pub fn deltas(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(k, &a)| {
            let d = a - before.get(k).copied().unwrap_or(0.0);
            (d >= 0.0).then(|| (k.clone(), d))
        })
        .collect()
}

/// A client for metrics endpoints: short deadlines, so a silent endpoint costs
/// little.
#[derive(Debug, Clone)]
pub struct Scraper(crate::http::Client);

impl Scraper {
    /// A scraper whose requests give up after 2 s (1 s to connect).
    pub fn new() -> Result<Scraper, BackendError> {
        let deadlines = crate::Deadlines {
            connect: std::time::Duration::from_secs(1),
            request: std::time::Duration::from_secs(2),
        };
        Ok(Scraper(crate::http::Client::new(1, deadlines)))
    }

    /// Scrapes `url` and reads the counters of `model`.
    pub async fn counters(
        &self,
        url: &str,
        model: &str,
    ) -> Result<BTreeMap<String, f64>, BackendError> {
        scrape(&self.0, url, model).await
    }
}

async fn scrape(
    client: &crate::http::Client,
    url: &str,
    model: &str,
) -> Result<BTreeMap<String, f64>, BackendError> {
    let response = client
        .send(&crate::http::Request::get(url))
        .await
        .map_err(|e| BackendError::Transport(format!("metrics at {url}: {e}")))?;
    if !response.status.is_success() {
        return Err(BackendError::Protocol(format!(
            "metrics at {url} answered {}",
            response.status
        )));
    }
    counters(&String::from_utf8_lossy(&response.body), model)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Triton 2.51 writes them, and TF Serving's `model_name` label.
    const TEXT: &str = r#"# HELP nv_inference_request_success Number of successful inference requests, all batch sizes
# TYPE nv_inference_request_success counter
nv_inference_request_success{model="text-cnn",version="1"} 12
nv_inference_request_success{model="resnet18",version="1"} 7
# HELP nv_inference_count Number of inferences performed
# TYPE nv_inference_count counter
nv_inference_count{model="text-cnn",version="1"} 48
# HELP nv_inference_queue_duration_us Cumulative inference queuing duration in microseconds
# TYPE nv_inference_queue_duration_us counter
nv_inference_queue_duration_us{model="text-cnn",version="1"} 1500
# HELP nv_gpu_utilization GPU utilization rate [0.0 - 1.0)
# TYPE nv_gpu_utilization gauge
nv_gpu_utilization{gpu_uuid="GPU-1"} 0.5
# TYPE request_count counter
request_count{model_name="text-cnn",status="OK"} 3
request_count{model_name="text-cnn",status="INVALID_ARGUMENT"} 1
"#;

    #[test]
    fn counters_of_one_model_summed_over_their_other_labels() {
        let c = counters(TEXT, "text-cnn").unwrap();
        assert_eq!(c["nv_inference_request_success"], 12.0);
        assert_eq!(c["nv_inference_count"], 48.0);
        assert_eq!(c["nv_inference_queue_duration_us"], 1500.0);
        assert_eq!(c["request_count"], 4.0);
        assert!(!c.contains_key("nv_gpu_utilization"), "{c:?}");
        let r = counters(TEXT, "resnet18").unwrap();
        assert_eq!(r.len(), 1);
    }

    /// TF Serving 2.x's monitoring endpoint, as `curl .../monitoring/prometheus/metrics`
    /// prints it (trimmed): colon names, `model_name` labels, latency histograms in µs.
    const TF_SERVING: &str = r#"# TYPE :tensorflow:cc:saved_model:load_attempt_count counter
:tensorflow:cc:saved_model:load_attempt_count{model_path="/models/text-cnn/1",status="success"} 1
# TYPE :tensorflow:core:graph_runs counter
:tensorflow:core:graph_runs 9
# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="text-cnn",status="OK"} 7
:tensorflow:serving:request_count{model_name="text-cnn",status="INVALID_ARGUMENT"} 2
:tensorflow:serving:request_count{model_name="resnet18",status="OK"} 4
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="text-cnn",API="predict",entrypoint="REST",le="1000"} 5
:tensorflow:serving:request_latency_bucket{model_name="text-cnn",API="predict",entrypoint="REST",le="+Inf"} 9
:tensorflow:serving:request_latency_sum{model_name="text-cnn",API="predict",entrypoint="REST"} 13500
:tensorflow:serving:request_latency_count{model_name="text-cnn",API="predict",entrypoint="REST"} 9
# TYPE :tensorflow:serving:runtime_latency histogram
:tensorflow:serving:runtime_latency_bucket{model_name="text-cnn",API="Predict",runtime="TF1",le="+Inf"} 9
:tensorflow:serving:runtime_latency_sum{model_name="text-cnn",API="Predict",runtime="TF1"} 9000
:tensorflow:serving:runtime_latency_count{model_name="text-cnn",API="Predict",runtime="TF1"} 9
"#;

    #[test]
    fn tf_serving_colon_names_are_read() {
        let c = counters(TF_SERVING, "text-cnn").unwrap();
        assert_eq!(c["tensorflow_serving_request_count"], 9.0, "{c:?}");
        assert_eq!(c["tensorflow_serving_request_latency_sum"], 13500.0);
        assert_eq!(c["tensorflow_serving_request_latency_count"], 9.0);
        assert_eq!(c["tensorflow_serving_runtime_latency_sum"], 9000.0);
        // Not the model's: no `model_name` label of it.
        assert!(!c.contains_key("tensorflow_core_graph_runs"), "{c:?}");
        assert_eq!(
            counters(TF_SERVING, "resnet18").unwrap()["tensorflow_serving_request_count"],
            4.0
        );
        // Without the rewrite the parser skips every one of these lines.
        let raw = Scrape::parse(TF_SERVING.lines().map(|l| Ok(l.to_string()))).unwrap();
        assert!(raw.samples.is_empty(), "{:?}", raw.samples);
    }

    #[test]
    fn names_lose_their_colons_and_nothing_else() {
        assert_eq!(
            normalise(":a:b_total{x=\"1:2\"} 3"),
            "a_b_total{x=\"1:2\"} 3"
        );
        assert_eq!(normalise("# TYPE :a:b counter"), "# TYPE a_b counter");
        assert_eq!(normalise("# HELP :a:b Some: help"), "# HELP a_b Some: help");
        assert_eq!(
            normalise("nv_inference_count{model=\"m\"} 4"),
            "nv_inference_count{model=\"m\"} 4"
        );
        assert_eq!(normalise("# a comment: here"), "# a comment: here");
        assert_eq!(normalise(":up 1"), "up 1");
    }

    #[test]
    fn deltas_are_growth_between_scrapes() {
        let before = counters(TEXT, "text-cnn").unwrap();
        let mut after = before.clone();
        *after.get_mut("nv_inference_count").unwrap() += 40.0;
        after.insert("new_total".into(), 2.0);
        *after.get_mut("nv_inference_request_success").unwrap() = 0.0;
        let d = deltas(&before, &after);
        assert_eq!(d["nv_inference_count"], 40.0);
        assert_eq!(d["new_total"], 2.0);
        assert_eq!(d["nv_inference_queue_duration_us"], 0.0);
        assert!(!d.contains_key("nv_inference_request_success"));
    }
}
