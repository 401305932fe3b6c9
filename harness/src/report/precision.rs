//! The throughput-by-precision table, as the OneFlow/TensorRT study prints it: rows are
//! models, columns backend(precision), cells samples/s at one batch size with the ratio
//! to fp32 of the same backend and its 95 % interval. Only runs with `--precision`
//! beyond fp32 have it.

use std::fmt::Write;

use tabled::builder::Builder;

use crate::report::table::titled;
use crate::report::WIDTH;
use crate::results::{PointResult, Ratio, Results};

/// The table under its title (empty for an fp32-only run). On the narrow terminal, a
/// table wider than [`WIDTH`] is printed with one row per backend(precision) instead.
pub fn precision_table(results: &Results, markdown: bool, narrow: bool) -> String {
    let c = &results.config;
    if c.precisions.iter().all(|p| p == "fp32") {
        return String::new();
    }
    let Some(load) = c.loads.first().map(|l| l.label()) else {
        return String::new();
    };
    let batch = c.precision_batch;
    let at = |r: &&PointResult| r.batch_size == batch && r.load == load;
    // Columns: every backend that measured a row there, in the order they opened.
    let columns: Vec<(&str, &str)> = results
        .backends
        .iter()
        .filter(|b| {
            results
                .results
                .iter()
                .filter(at)
                .any(|r| r.backend == b.name)
        })
        .map(|b| (b.name.as_str(), b.precision.as_str()))
        .collect();
    let label = |(name, precision): (&str, &str)| crate::precision::label(name, precision);
    let cell = |model: &str, name: &str| -> String {
        let Some(row) = results
            .results
            .iter()
            .filter(at)
            .find(|r| r.model == model && r.backend == name)
        else {
            return "-".into();
        };
        let sps = format!("{:.1}", row.samples_per_s);
        match find_ratio(&results.precision_ratios, row) {
            Some(r) => format!("{sps} {}", throughput_ratio(r)),
            None => sps,
        }
    };
    let title = format!(
        "Throughput by precision: samples/s at batch {batch} ({load}), and the ratio to fp32 \
         of the same backend [95% interval]"
    );
    let mut wide = Builder::default();
    let mut head = vec!["model".to_string()];
    head.extend(columns.iter().map(|&c| label(c)));
    wide.push_record(head);
    for model in &c.models {
        let mut line = vec![model.clone()];
        line.extend(columns.iter().map(|(name, _)| cell(model, name)));
        wide.push_record(line);
    }
    let table = titled(wide, markdown, "Throughput by precision", &title);
    let too_wide = table.lines().any(|l| l.chars().count() > WIDTH);
    if !narrow || !too_wide {
        return table;
    }
    let mut long = Builder::default();
    long.push_record(["model", "backend(precision)", "samples/s and ratio to fp32"]);
    for model in &c.models {
        for &col in &columns {
            let value = cell(model, col.0);
            if value != "-" {
                long.push_record([model.clone(), label(col), value]);
            }
        }
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "{}",
        titled(long, markdown, "Throughput by precision", &title)
    );
    out
}

/// The ratio of `row`'s backend to its fp32 self at `row`'s point.
fn find_ratio<'a>(ratios: &'a [Ratio], row: &PointResult) -> Option<&'a Ratio> {
    ratios.iter().find(|r| {
        r.backend == row.backend
            && r.model == row.model
            && r.batch_size == row.batch_size
            && r.load == row.load
    })
}

/// `x1.52 [1.40, 1.66]`: throughput over fp32's (the inverse of the mean latency ratio,
/// one request in flight), with its interval; `~` when the interval contains 1.
fn throughput_ratio(r: &Ratio) -> String {
    let (x, lo, hi) = (
        1.0 / r.mean_ratio,
        1.0 / r.mean_ci_high,
        1.0 / r.mean_ci_low,
    );
    let tilde = if lo <= 1.0 && 1.0 <= hi { "~" } else { "" };
    format!("{tilde}x{x:.2} [{lo:.2}, {hi:.2}]")
}
