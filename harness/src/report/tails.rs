//! The tails table: every percentile, the slowest requests and how much was measured.
//!
//! One table per model, one row per batch size, load and backend: mean, p50, p80, p90,
//! p95, p99 and max; the 1st, 10th, 20th and 50th slowest requests (torchpipe's
//! columns); requests and wall time behind the figures, and the flags. `harness run`
//! prints this table alone, like perf_analyzer for one model.

use std::fmt::Write;

use tabled::builder::Builder;

use crate::report::table::{flag_letters, ms, render};
use crate::results::Results;

/// Every model's tails table, each under a title line.
pub fn tails_tables(results: &Results, markdown: bool) -> String {
    let mut out = String::new();
    for model in &results.config.models {
        let mut builder = Builder::default();
        builder.push_record([
            "batch",
            "load",
            "backend",
            "req/s",
            "mean",
            "p50",
            "p80",
            "p90",
            "p95",
            "p99",
            "max",
            "slowest 1st",
            "10th",
            "20th",
            "50th",
            "requests",
            "wall s",
            "flags",
        ]);
        let mut any = false;
        for r in results.results.iter().filter(|r| &r.model == model) {
            any = true;
            let opt = |x: Option<f64>| x.map_or("-".to_string(), ms);
            let mut row = vec![
                r.batch_size.to_string(),
                r.load.clone(),
                r.backend.clone(),
                format!("{:.1}", r.throughput_rps),
            ];
            match &r.latency_ms {
                Some(l) => row.extend([
                    ms(l.mean),
                    ms(l.p50),
                    ms(l.p80),
                    ms(l.p90),
                    ms(l.p95),
                    ms(l.p99),
                    ms(l.max),
                    opt(l.slowest.n1),
                    opt(l.slowest.n10),
                    opt(l.slowest.n20),
                    opt(l.slowest.n50),
                ]),
                None => row.extend(std::iter::repeat_n("failed".to_string(), 11)),
            }
            row.push(format!(
                "{} of {}",
                r.requests, r.measurement.total_requests
            ));
            row.push(format!("{:.2}", r.measurement.total_wall_s));
            row.push(flag_letters(&r.flags).trim().to_string());
            builder.push_record(row);
        }
        if !any {
            continue;
        }
        let title = format!(
            "{model}: latency tails in ms over {} trial(s); requests: in the reported windows (the last 3 of each trial) of all measured",
            results.config.trials
        );
        if markdown {
            let _ = writeln!(out, "### {title}\n");
        } else {
            let _ = writeln!(out, "{title}");
        }
        let _ = writeln!(out, "{}\n", render(builder, markdown));
    }
    out
}
