//! The whole page of a run, assembled once: the terminal prints it plain, `report.md`
//! is the same page in Markdown with a header about the machine and the backends.

use std::fmt::Write;

use crate::report::narrow::{ratio_rows, tails_rows, wrap};
use crate::report::{
    agreement_table, breakdown_table, cold_start_table, grid_table, legend, precision_table,
    ratio_tables, resources_table, server_metrics_table, tails_tables, verdict_summary,
};
use crate::results::Results;

/// How the page is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// The terminal's default: one row per backend, every line within 120 columns.
    Narrow,
    /// The terminal with `--wide`: backends side by side, every tail percentile.
    Wide,
    /// `report.md`: the wide tables in Markdown, with a header about the machine.
    Markdown,
}

/// The page of a `compare` run: test-peer notes, backends not measured, the agreement
/// check, the ratio tables, the tails and the server-side breakdown. In Markdown, a
/// title, the machine and the backends come first and each part has a heading. A worker
/// grid has the tables of each count under its own heading, then the cold start of every
/// count and the grid ([`grid_table`]) in place of the resources table.
pub fn page(results: &Results, layout: Layout) -> String {
    let markdown = layout == Layout::Markdown;
    let mut out = intro(results, layout);
    let grid = results.config.grid();
    if grid.len() < 2 {
        out.push_str(&latency(results, layout));
        out.push_str(&cold_start_table(results, markdown));
        out.push_str(&resources_table(results, markdown));
        return out;
    }
    for &n in &grid {
        let part = results.at_workers(n);
        if markdown {
            let _ = writeln!(out, "## {n} workers\n");
        } else {
            let _ = writeln!(out, "With {n} workers (worker grid {}):\n", counts(&grid));
        }
        out.push_str(&latency(&part, layout));
    }
    out.push_str(&cold_start_table(results, markdown));
    out.push_str(&grid_table(results, markdown, layout == Layout::Narrow));
    out
}

/// A worker grid's counts: `1, 2, 4`.
pub(super) fn counts(grid: &[usize]) -> String {
    let all: Vec<String> = grid.iter().map(|n| n.to_string()).collect();
    all.join(", ")
}

/// What comes before the latency tables: the Markdown header, test-peer notes, the
/// backends not measured and the agreement check.
fn intro(results: &Results, layout: Layout) -> String {
    let markdown = layout == Layout::Markdown;
    let mut out = String::new();
    if markdown {
        header(&mut out, results);
    }
    let mut peers: Vec<&str> = Vec::new();
    for b in results.backends.iter().filter(|b| b.test_peer) {
        if peers.contains(&b.name.as_str()) {
            continue; // A worker grid opens it once per count.
        }
        peers.push(&b.name);
        let name = if markdown {
            format!("**{}**", b.name)
        } else {
            b.name.clone()
        };
        let _ = writeln!(out, "{}{name} answered from servebench's test peer, not TF Serving: its timings say nothing about TF Serving.{}",
            if markdown { "\n" } else { "" },
            if markdown { "" } else { "\n" });
    }
    if !results.unavailable.is_empty() {
        let sep = if markdown { "\n" } else { "" };
        let _ = writeln!(
            out,
            "{sep}Not measured:\n{sep}{}",
            unavailable_lines(results)
        );
    }
    if layout == Layout::Narrow {
        out = wrap(&out);
    }
    // The reference each row was checked against: the configured one, or another
    // backend where that one did not run (the table's `reference` column says which).
    let used: std::collections::BTreeSet<&str> = results
        .agreement
        .iter()
        .map(|a| a.reference.as_str())
        .collect();
    let reference = match used.len() {
        0 => results.config.reference.clone(),
        1 => used.first().map_or_else(String::new, |r| r.to_string()),
        _ => "each row's reference".to_string(),
    };
    if markdown {
        let _ = writeln!(out, "\n## Agreement with {reference}\n");
        let _ = writeln!(out, "{}\n", agreement_table(results, true));
        let _ = writeln!(out, "## Latency\n");
    } else if !results.agreement.is_empty() {
        let table = agreement_table(results, false);
        let table = if layout == Layout::Narrow {
            wrap(&table)
        } else {
            table
        };
        let _ = writeln!(
            out,
            "Agreement with {reference} (same inputs, before timing):\n{table}\n"
        );
    }
    out
}

/// The ratio tables, the tails, the server-side breakdown and the server metrics.
fn latency(results: &Results, layout: Layout) -> String {
    let markdown = layout == Layout::Markdown;
    let mut out = String::new();
    // How decisive the ratios are, and what would finish those that are not.
    let verdicts = verdict_summary(results).map_or(String::new(), |v| {
        if markdown {
            format!("{v}\n\n")
        } else {
            format!("{}\n\n", wrap(&v))
        }
    });
    if layout == Layout::Narrow {
        out.push_str(&ratio_rows(results));
        let _ = writeln!(out, "{}\n", legend(false));
        out.push_str(&verdicts);
        out.push_str(&tails_rows(results));
    } else {
        out.push_str(&ratio_tables(results, markdown));
        out.push_str(&verdicts);
        if markdown {
            let _ = writeln!(out, "## Tails\n");
        }
        out.push_str(&tails_tables(results, markdown));
    }
    out.push_str(&precision_table(
        results,
        markdown,
        layout == Layout::Narrow,
    ));
    out.push_str(&breakdown_table(
        results,
        markdown,
        layout == Layout::Narrow,
    ));
    out.push_str(&server_metrics_table(results, markdown));
    out
}

/// The page of `harness run` on the terminal: the tails table and its legend (narrowed
/// to 120 columns unless `wide`), and a worker grid's table.
pub fn run_page(results: &Results, wide: bool) -> String {
    let tails = if wide {
        tails_tables(results, false)
    } else {
        tails_rows(results)
    };
    format!(
        "{tails}{}\n\n{}",
        legend(false),
        grid_table(results, false, !wide)
    )
}

/// Title, machine and backends of the Markdown report.
fn header(out: &mut String, results: &Results) {
    let c = &results.config;
    let _ = writeln!(out, "# servebench compare, {}\n", results.started_at);
    let s = &results.system;
    let loads: Vec<String> = c.loads.iter().map(|l| l.label()).collect();
    let _ = writeln!(
        out,
        "Machine: {} ({} cores, {} GiB), {}. Workers {}, intra-op threads {}, loads {}, {} trials.\n",
        s.cpu,
        s.cores,
        s.memory_gib,
        s.os,
        counts(&c.grid()),
        c.intra_threads,
        loads.join(", "),
        c.trials
    );
    if c.stack == "compose" {
        let _ = writeln!(
            out,
            "Stack: compose (the services of docker-compose.yml).\n"
        );
    }
    let _ = writeln!(out, "## Backends\n");
    for b in &results.backends {
        let _ = writeln!(
            out,
            "- **{}**: {} ({}, {}), {} workers, {} intra-op threads, ready in {:.0} ms{}",
            b.name,
            b.engine,
            b.protocol,
            b.device,
            b.workers,
            b.intra_threads.map_or("?".to_string(), |t| t.to_string()),
            b.cold_start_ms,
            b.loaded_memory_mb
                .map_or(String::new(), |m| format!(", {m:.0} MiB once loaded"))
        );
    }
}

/// One line per backend that could not run.
pub fn unavailable_lines(results: &Results) -> String {
    results
        .unavailable
        .iter()
        .map(|u| format!("- {}: {}\n", u.backend, u.reason))
        .collect()
}
