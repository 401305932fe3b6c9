//! Where a server's request time goes: client latency beside the server's own timings.
//!
//! For backends that report server-side statistics (Triton), every measured point holds
//! per-request averages of the server's queue, compute input, compute infer and compute
//! output times ([`crate::results::Breakdown`], read before and after the window). This
//! table sets them beside the client's mean latency, as `perf_analyzer` does; what the
//! server does not account for — the remainder — is network, protocol (encoding,
//! HTTP/gRPC framing) and the server's own request handling.

use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::report::table::ms;
use crate::results::Results;

/// The breakdown table under a title line, or an empty string when no backend reported
/// server-side statistics. `narrow` shortens the column names to fit 120 columns.
pub fn breakdown_table(results: &Results, markdown: bool, narrow: bool) -> String {
    let rows: Vec<_> = results
        .results
        .iter()
        .filter_map(|r| Some((r, r.server?, r.latency_ms.as_ref()?)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut builder = Builder::default();
    builder.push_record(if narrow {
        [
            "model",
            "batch",
            "backend",
            "client mean",
            "queue",
            "input",
            "infer",
            "output",
            "remainder",
        ]
    } else {
        [
            "model",
            "batch",
            "backend",
            "client mean",
            "queue",
            "compute input",
            "compute infer",
            "compute output",
            "remainder (network + protocol)",
        ]
    });
    for (r, s, l) in rows {
        let server = s.queue_ms + s.compute_input_ms + s.compute_infer_ms + s.compute_output_ms;
        builder.push_record([
            r.model.clone(),
            r.batch_size.to_string(),
            r.backend.clone(),
            ms(l.mean),
            ms(s.queue_ms),
            ms(s.compute_input_ms),
            ms(s.compute_infer_ms),
            ms(s.compute_output_ms),
            remainder(l.mean, server),
        ]);
    }
    let mut table = builder.build();
    if markdown {
        table.with(Style::markdown());
    } else {
        table.with(Style::rounded());
    }
    let title = if narrow {
        "Server-side breakdown: mean ms per request (client vs the server's queue and compute; remainder: network + protocol)"
    } else {
        "Server-side breakdown: mean ms per request (client latency vs the server's own statistics)"
    };
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "## Server-side breakdown\n\n{title}\n\n{table}\n");
    } else {
        let _ = writeln!(out, "{title}\n{table}\n");
    }
    out
}

/// `client - server` with its share of the client latency, such as `1.20 (35%)`.
fn remainder(client: f64, server: f64) -> String {
    let rest = client - server;
    if client > 0.0 {
        format!(
            "{} ({:.0}%)",
            ms(rest.max(0.0)),
            100.0 * rest.max(0.0) / client
        )
    } else {
        ms(rest.max(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remainder_is_client_minus_server() {
        assert_eq!(remainder(10.0, 7.5), "2.50 (25%)");
        // Clocks differ: never a negative remainder.
        assert_eq!(remainder(1.0, 1.2), "0.000 (0%)");
    }
}
