//! The worker grid (`--workers 1,2,4`) as the Paddle Serving study prints it: per
//! model, worker count, batch size (and load) and backend, what it cost (CPU % of the
//! machine, peak resident memory, GPU % and memory where a GPU is visible) beside what
//! it delivered (qps, samples/s, requests, mean / p50 / p80 / p90 / p99 latency, total
//! time), and the efficiency: samples/s per core used (and per GPU watt where known).
//!
//! `report.md` and `--wide` have it as one table. The terminal's default page splits it
//! in two per model, cost and latency, each within [`crate::report::WIDTH`] columns.

use std::fmt::Write;

use tabled::builder::Builder;

use crate::report::table::{ms, render};
use crate::results::{PointResult, Results, Scope};

/// The grid tables under their titles, or an empty string for a run of one worker
/// count. `narrow`: two tables per model that fit the terminal's default page.
pub fn grid_table(results: &Results, markdown: bool, narrow: bool) -> String {
    if results.config.grid().len() < 2 || results.results.is_empty() {
        return String::new();
    }
    let gpu = results
        .results
        .iter()
        .any(|r| r.resources.gpu_util_pct.is_some());
    let cores = results.system.cores.max(1);
    let mut out = String::new();
    if !narrow {
        let mut head = vec!["model", "workers", "batch", "load", "backend"];
        head.extend(cost_head(gpu, true));
        head.extend(LATENCY_HEAD);
        let mut builder = Builder::default();
        builder.push_record(head);
        for r in rows(results, None) {
            let mut row = lead(r, true);
            row.extend(cost(r, gpu, true, cores));
            row.extend(latency(r));
            builder.push_record(row);
        }
        let title = format!(
            "Worker grid: CPU % of the machine's {cores} cores, peak resident MiB, qps, samples/s, requests, latency in ms, total time in s, samples/s per core used{}",
            if gpu { " and per GPU W" } else { "" }
        );
        if markdown {
            let _ = writeln!(
                out,
                "## Worker grid\n\n{title}.\n\n{}\n",
                render(builder, true)
            );
        } else {
            let _ = writeln!(out, "{title}\n{}\n", render(builder, false));
        }
        return out;
    }
    for model in &results.config.models {
        let mine: Vec<&PointResult> = rows(results, Some(model.as_str())).collect();
        if mine.is_empty() {
            continue;
        }
        let mut builder = Builder::default();
        let mut head = vec!["workers", "batch", "load", "backend"];
        head.extend(cost_head(gpu, false));
        builder.push_record(head);
        for r in &mine {
            let mut row = lead(r, false);
            row.extend(cost(r, gpu, false, cores));
            builder.push_record(row);
        }
        let _ = writeln!(
            out,
            "{model}, worker grid: CPU % of {cores} cores, peak resident MiB, samples/s per core used{}\n{}\n",
            if gpu { ", GPU % and MiB" } else { "" },
            render(builder, false)
        );
        let mut builder = Builder::default();
        let mut head = vec!["workers", "batch", "load", "backend"];
        head.extend(LATENCY_HEAD);
        builder.push_record(head);
        for r in &mine {
            let mut row = lead(r, false);
            row.extend(latency(r));
            builder.push_record(row);
        }
        let _ = writeln!(
            out,
            "{model}, worker grid: latency in ms, requests in the reported windows, their total time in s\n{}\n",
            render(builder, false)
        );
    }
    out
}

/// The columns of what a row delivered and how fast.
const LATENCY_HEAD: [&str; 8] = [
    "requests", "mean", "p50", "p80", "p90", "p99", "time s", "qps",
];

/// The columns of what a row cost.
/// The whole grid as a header and rows of cells (`None` for a run of one worker count):
/// for report.html, which draws its own tables.
pub fn grid_cells(results: &Results) -> Option<(Vec<&'static str>, Vec<Vec<String>>)> {
    if results.config.grid().len() < 2 || results.results.is_empty() {
        return None;
    }
    let gpu = results
        .results
        .iter()
        .any(|r| r.resources.gpu_util_pct.is_some());
    let cores = results.system.cores.max(1);
    let mut head = vec!["model", "workers", "batch", "load", "backend"];
    head.extend(cost_head(gpu, true));
    head.extend(LATENCY_HEAD);
    let rows = rows(results, None)
        .map(|r| {
            let mut row = lead(r, true);
            row.extend(cost(r, gpu, true, cores));
            row.extend(latency(r));
            row
        })
        .collect();
    Some((head, rows))
}

fn cost_head(gpu: bool, per_watt: bool) -> Vec<&'static str> {
    let mut head = vec!["CPU %", "MiB"];
    if gpu {
        head.extend(["GPU %", "GPU MiB"]);
    }
    head.extend(["samples/s", "per core"]);
    if gpu && per_watt {
        head.push("per W");
    }
    head
}

/// The rows of `model` (every model: `None`) in grid order: model, batch size, load,
/// worker count, then the run's backend order.
fn rows<'a>(results: &'a Results, model: Option<&'a str>) -> impl Iterator<Item = &'a PointResult> {
    let mut rows: Vec<&PointResult> = results
        .results
        .iter()
        .filter(|r| model.is_none_or(|m| r.model == m))
        .collect();
    let place = |v: &[String], x: &str| v.iter().position(|m| m == x).unwrap_or(usize::MAX);
    let loads: Vec<String> = results.config.loads.iter().map(|l| l.label()).collect();
    rows.sort_by_key(|r| {
        (
            place(&results.config.models, &r.model),
            r.batch_size,
            place(&loads, &r.load),
            r.workers,
        )
    });
    rows.into_iter()
}

/// Model (when `with_model`), workers, batch, load and backend of a row.
fn lead(r: &PointResult, with_model: bool) -> Vec<String> {
    let mut row = Vec::with_capacity(20);
    if with_model {
        row.push(r.model.clone());
    }
    row.extend([
        r.workers.to_string(),
        r.batch_size.to_string(),
        r.load.clone(),
        r.backend.clone(),
    ]);
    row
}

/// A figure with `digits` decimals, `-` where unknown.
fn opt(x: Option<f64>, digits: usize) -> String {
    x.map_or("-".to_string(), |v| format!("{v:.digits$}"))
}

/// What a row cost, as [`cost_head`] names it.
fn cost(r: &PointResult, gpu: bool, per_watt: bool, cores: usize) -> Vec<String> {
    let u = &r.resources;
    let e = &r.efficiency;
    let visible = u.scope != Scope::NotVisible;
    let seen = |x: Option<f64>| x.filter(|_| visible);
    let mut row = vec![
        opt(seen(u.cpu_cores).map(|c| c / cores as f64 * 100.0), 0),
        opt(seen(u.peak_memory_mb), 0),
    ];
    if gpu {
        row.extend([opt(u.gpu_util_pct, 0), opt(u.gpu_memory_mb, 0)]);
    }
    row.extend([
        format!("{:.1}", r.samples_per_s),
        opt(seen(e.samples_per_s_per_core), 1),
    ]);
    if gpu && per_watt {
        row.push(opt(e.samples_per_s_per_gpu_watt, 1));
    }
    row
}

/// What a row delivered, as [`LATENCY_HEAD`] names it.
fn latency(r: &PointResult) -> Vec<String> {
    let mut row = vec![r.measurement.total_requests.to_string()];
    match &r.latency_ms {
        Some(l) => row.extend([l.mean, l.p50, l.p80, l.p90, l.p99].map(ms)),
        None => row.extend(std::iter::repeat_n("failed".to_string(), 5)),
    }
    row.push(format!("{:.1}", r.measurement.total_wall_s));
    row.push(format!("{:.1}", r.throughput_rps));
    row
}
