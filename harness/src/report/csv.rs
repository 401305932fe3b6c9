//! `--format csv`: perf_analyzer's CSV columns, so tooling that reads
//! `perf_analyzer -f results.csv` reads ours.
//!
//! The first column is `Concurrency` (closed loop) or `Request Rate` (open loop), then
//! `Inferences/Second` (samples per second, as perf_analyzer counts a batch), the client
//! and server latency parts in µs, and the percentiles in µs. Parts the harness does not
//! know are 0: `Client Send` and `Client Recv` (encoding happens before timing) and every
//! server part for backends without server statistics; for Triton the server parts come
//! from its statistics ([`crate::results::Breakdown`]) and `Network+Server Send/Recv` is
//! the remainder of the mean. Three extra columns at the end name the model, backend
//! and batch size of each row.

use crate::results::Results;

/// perf_analyzer's header after the load column.
const COLUMNS: &str = "Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,Model,Backend,Batch";

/// The CSV document: one row per measured point.
pub fn csv(results: &Results) -> String {
    let open = results
        .config
        .loads
        .iter()
        .any(|l| l.request_rate().is_some());
    let mut out = format!(
        "{},{COLUMNS}\n",
        if open { "Request Rate" } else { "Concurrency" }
    );
    for r in &results.results {
        let Some(l) = &r.latency_ms else { continue };
        let us = |ms: f64| format!("{:.0}", ms * 1000.0);
        let (queue, input, infer, output, network) = match &r.server {
            Some(s) => {
                let server =
                    s.queue_ms + s.compute_input_ms + s.compute_infer_ms + s.compute_output_ms;
                (
                    s.queue_ms,
                    s.compute_input_ms,
                    s.compute_infer_ms,
                    s.compute_output_ms,
                    (l.mean - server).max(0.0),
                )
            }
            None => (0.0, 0.0, 0.0, 0.0, 0.0),
        };
        let load = match (r.concurrency, r.request_rate) {
            (Some(c), _) => c.to_string(),
            (None, Some(rate)) => rate.to_string(),
            (None, None) => String::new(),
        };
        out.push_str(
            &[
                load,
                format!("{:.2}", r.samples_per_s),
                "0".into(),
                us(network),
                us(queue),
                us(input),
                us(infer),
                us(output),
                "0".into(),
                us(l.p50),
                us(l.p90),
                us(l.p95),
                us(l.p99),
                us(l.mean),
                r.model.clone(),
                r.backend.clone(),
                r.batch_size.to_string(),
            ]
            .join(","),
        );
        out.push('\n');
    }
    out
}
