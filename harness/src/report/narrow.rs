//! The default terminal layout: one row per backend, so a table's width does not grow
//! with the number of backends and the page fits [`WIDTH`] columns.
//!
//! Within each model × batch class, rows are grouped by batch size and load (named on
//! the group's first row); each backend's row holds its p50, p99 and throughput, its
//! p50 ratio to the baseline with the 95 % interval, and its flags. `--wide` prints the
//! side-by-side tables of [`crate::report::table`] instead, as `report.md` has them.

use std::fmt::Write;

use tabled::builder::Builder;

use crate::report::table::{error_note, flag_letters, ms, ratio_cell, render};
use crate::results::{BatchClass, Results};

/// Columns the default terminal page fits.
pub const WIDTH: usize = 120;

/// Every model × batch class table, one row per backend, each under a title line.
pub fn ratio_rows(results: &Results) -> String {
    let mut out = String::new();
    for model in &results.config.models {
        for class in [BatchClass::Small, BatchClass::Large] {
            if results.rows_in(model, class).next().is_none() {
                continue;
            }
            let _ = writeln!(
                out,
                "{model}, {class} batches: latency in ms, and p50 ratio to {} [95% interval]",
                results.baseline
            );
            let _ = writeln!(out, "{}\n", one_table(results, model, class));
        }
    }
    out
}

fn one_table(results: &Results, model: &str, class: BatchClass) -> String {
    let mut builder = Builder::default();
    builder.push_record([
        "batch",
        "load",
        "backend",
        "p50",
        "p99",
        "req/s",
        "p50 ratio",
        "flags",
    ]);
    let loads: Vec<String> = results.config.loads.iter().map(|l| l.label()).collect();
    for &batch in results.config.batches(model, class) {
        for load in &loads {
            for (i, b) in results.backends.iter().enumerate() {
                let name = b.name.as_str();
                let mut row = if i == 0 {
                    vec![batch.to_string(), load.clone()]
                } else {
                    vec![String::new(), String::new()]
                };
                row.push(name.to_string());
                let point = results.row(model, batch, load, name);
                match point.map(|p| (p, p.latency_ms.as_ref())) {
                    Some((p, Some(l))) => row.extend([
                        format!("{}{}", ms(l.p50), error_note(p)),
                        ms(l.p99),
                        format!("{:.1}", p.throughput_rps),
                    ]),
                    Some((p, None)) => {
                        row.extend([format!("failed{}", error_note(p)), "-".into(), "-".into()])
                    }
                    None => row.extend(["-".into(), "-".into(), "-".into()]),
                }
                row.push(if name == results.baseline {
                    "baseline".to_string()
                } else {
                    results
                        .ratio(model, batch, load, name)
                        .map_or("-".into(), ratio_cell)
                });
                row.push(
                    point.map_or(String::new(), |p| flag_letters(&p.flags).trim().to_string()),
                );
                builder.push_record(row);
            }
        }
    }
    render(builder, false)
}

/// The tails of every model, narrowed to fit: p50, p90, p99, max and the requests behind
/// them (`--wide` and `report.md`: every percentile and the slowest requests).
pub fn tails_rows(results: &Results) -> String {
    let mut out = String::new();
    for model in &results.config.models {
        let mut builder = Builder::default();
        builder.push_record([
            "batch", "load", "backend", "req/s", "mean", "p50", "p90", "p99", "max", "requests",
            "flags",
        ]);
        let mut any = false;
        for r in results.results.iter().filter(|r| &r.model == model) {
            any = true;
            let mut row = vec![
                r.batch_size.to_string(),
                r.load.clone(),
                r.backend.clone(),
                format!("{:.1}", r.throughput_rps),
            ];
            match &r.latency_ms {
                Some(l) => row.extend([ms(l.mean), ms(l.p50), ms(l.p90), ms(l.p99), ms(l.max)]),
                None => row.extend(std::iter::repeat_n("failed".to_string(), 5)),
            }
            row.push(r.requests.to_string());
            row.push(flag_letters(&r.flags).trim().to_string());
            builder.push_record(row);
        }
        if any {
            let _ = writeln!(
                out,
                "{model}: latency tails in ms over {} trial(s), requests in the reported windows (--wide: all tails)",
                results.config.trials
            );
            let _ = writeln!(out, "{}\n", render(builder, false));
        }
    }
    out
}

/// `text` with every line longer than [`WIDTH`] broken at spaces, continuation lines
/// indented by two spaces.
pub fn wrap(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let mut current = String::new();
        for (k, word) in body.split(' ').enumerate() {
            let width = current.chars().count();
            if k > 0 && !current.trim().is_empty() && width + 1 + word.chars().count() > WIDTH {
                out.push_str(current.trim_end());
                out.push('\n');
                current = format!("  {word}");
                continue;
            }
            if k > 0 {
                current.push(' ');
            }
            current.push_str(word);
        }
        out.push_str(&current);
        out.push_str(end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_at_spaces() {
        let long = format!("- x: {}\nshort\n", "word ".repeat(40));
        let wrapped = wrap(&long);
        assert!(
            wrapped.lines().all(|l| l.chars().count() <= WIDTH),
            "{wrapped}"
        );
        assert!(wrapped.lines().nth(1).unwrap().starts_with("  word"));
        assert!(wrapped.ends_with("short\n"));
        assert_eq!(wrap("a b\n"), "a b\n");
    }
}
