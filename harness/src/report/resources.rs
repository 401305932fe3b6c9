//! What each backend cost while it was measured: CPU in cores and peak resident memory
//! of whatever served the requests, and GPU use where a GPU is visible
//! ([`crate::resources`]), and the efficiency that buys: samples per second per core
//! used, and per GPU watt where a GPU reports its power. One row per measured point;
//! short columns, so the terminal's default page keeps within 120 columns.

use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::results::{Results, Scope};

/// The resources table under a title line, or an empty string when nothing was
/// measured.
pub fn resources_table(results: &Results, markdown: bool) -> String {
    if results.results.is_empty() {
        return String::new();
    }
    let gpu = results
        .results
        .iter()
        .any(|r| r.resources.gpu_util_pct.is_some());
    let mut header = vec![
        "model", "batch", "load", "backend", "cores", "MiB", "per core",
    ];
    if gpu {
        header.extend(["GPU %", "GPU MiB", "GPU W", "per W"]);
    }
    let mut builder = Builder::default();
    builder.push_record(header);
    let opt =
        |x: Option<f64>, digits: usize| x.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for r in &results.results {
        let u = &r.resources;
        let mut row = vec![
            r.model.clone(),
            r.batch_size.to_string(),
            r.load.clone(),
            r.backend.clone(),
        ];
        let e = &r.efficiency;
        if u.scope == Scope::NotVisible {
            row.extend(["-".to_string(), "-".to_string(), "-".to_string()]);
        } else {
            row.extend([
                opt(u.cpu_cores, 2),
                opt(u.peak_memory_mb, 0),
                opt(e.samples_per_s_per_core, 1),
            ]);
        }
        if gpu {
            row.extend([
                opt(u.gpu_util_pct, 0),
                opt(u.gpu_memory_mb, 0),
                opt(u.gpu_power_w, 0),
                opt(e.samples_per_s_per_gpu_watt, 1),
            ]);
        }
        builder.push_record(row);
    }
    let mut table = builder.build();
    if markdown {
        table.with(Style::markdown());
    } else {
        table.with(Style::rounded());
    }
    let title = "Resources while measured (what served the requests): CPU cores, peak resident MiB, samples/s per core and per GPU W";
    let mut hidden: Vec<&str> = Vec::new();
    for r in &results.results {
        if r.resources.scope == Scope::NotVisible && !hidden.contains(&r.backend.as_str()) {
            hidden.push(&r.backend);
        }
    }
    let hidden = if hidden.is_empty() {
        String::new()
    } else {
        format!(
            "\nNot visible (servers the harness did not start): {}",
            hidden.join(", ")
        )
    };
    let mut out = String::new();
    if markdown {
        let _ = writeln!(out, "## Resources\n\n{title}, sampled at 20 Hz: a managed server's whole process group, or an in-process engine's own threads and the memory it loaded plus the process's growth during the point. A server given by URL is not visible.\n\n{table}\n{hidden}\n");
    } else {
        let _ = writeln!(out, "{title}\n{table}{hidden}\n");
    }
    out
}
