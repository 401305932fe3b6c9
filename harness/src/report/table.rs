//! Side-by-side tables: rows are batch sizes, columns are backends.
//!
//! The same tables go to the terminal and, in Markdown, to `report.md`. For each
//! backend a table shows p50 and mean latency in milliseconds; every backend but the
//! baseline also gets its p50 ratio to the baseline with its bootstrap 95 % interval,
//! `1.25 [1.18, 1.31]` (25 % slower, surely between 18 and 31 %); `~` marks a ratio
//! whose interval contains 1.0: no clear difference. Flags after a p50 ([`FLAGS`])
//! say how far to trust it.

use std::fmt::Write;

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::results::{BatchClass, Miss, PointResult, Ratio, Results};

/// Renders every model × batch class table, each under a title line.
pub fn ratio_tables(results: &Results, markdown: bool) -> String {
    let mut out = String::new();
    for model in &results.config.models {
        for class in [BatchClass::Small, BatchClass::Large] {
            if results.rows_in(model, class).next().is_none() {
                continue;
            }
            let title = format!(
                "{model}, {class} batches: latency in ms (p50, mean) and p50 ratio to {} [95% interval]",
                results.baseline
            );
            if markdown {
                let _ = writeln!(out, "### {title}\n");
            } else {
                let _ = writeln!(out, "{title}");
            }
            let table = one_table(results, model, class, markdown);
            let _ = writeln!(out, "{table}\n");
        }
    }
    if !out.is_empty() {
        let _ = writeln!(out, "{}\n", legend(markdown));
    }
    out
}

/// Flags shown after a p50, and what they mean.
pub const FLAGS: [(&str, &str, &str); 6] = [
    (
        "unstable",
        "U",
        "unstable: the last 3 windows of a trial never agreed within the tolerance",
    ),
    (
        "client-bound",
        "C",
        "client-bound: the harness's own threads were saturated (their CPU)",
    ),
    (
        "late-sends",
        "L",
        "more than 1% of open-loop sends started more than 1 ms late",
    ),
    (
        "dropped-sends",
        "D",
        "open-loop sends dropped: the in-flight cap was reached (--max-in-flight, lower for large requests)",
    ),
    (
        "few-samples",
        "S",
        "p99 from fewer than 459 samples (MLPerf early-stopping minimum)",
    ),
    (
        "stall",
        "H",
        "stall: a request (warm-up included) waited over 10x the p50 and 1 s for its answer or error; \
         JSON: `longest_wait_ms`",
    ),
];

/// The failed requests of a row, wherever they happened (windows, warm-up, lead-in),
/// as a note beside its cell: ` !3`, ` !12k`, or an empty string.
pub fn error_note(p: &PointResult) -> String {
    match p.errors.saturating_add(p.untimed_errors) {
        0 => String::new(),
        n if n < 10_000 => format!(" !{n}"),
        n if n < 10_000_000 => format!(" !{}k", n / 1000),
        n => format!(" !{}M", n / 1_000_000),
    }
}

/// The flag letters of a result, such as ` U,C`, or an empty string.
pub fn flag_letters(flags: &[String]) -> String {
    let letters: Vec<&str> = FLAGS
        .iter()
        .filter(|(name, _, _)| flags.iter().any(|f| f == name))
        .map(|(_, letter, _)| *letter)
        .collect();
    if letters.is_empty() {
        String::new()
    } else {
        format!(" {}", letters.join(","))
    }
}

/// The legend under the tables.
pub fn legend(markdown: bool) -> String {
    let sep = if markdown { "  \n" } else { "\n" };
    let mut lines = vec![
        "`~` after a ratio: its 95% interval contains 1.0, no clear difference.".to_string(),
        "T/U after a ratio: interval wider than --target-precision: out of time (T) or windows unstable \
         (U); JSON: `half_width`."
            .to_string(),
        "!N after a latency: N failed requests at that point (windows, warm-up, lead-in); JSON: \
         `errors`, `untimed_errors`."
            .to_string(),
    ];
    lines.extend(FLAGS.iter().map(|(_, l, what)| format!("{l}: {what}")));
    lines.join(sep)
}

/// A ratio with its interval: `1.25 [1.18, 1.31]`, `~` when it contains 1.0, then `T`
/// or `U` when it missed the precision target (out of time, unstable windows).
pub fn ratio_cell(r: &Ratio) -> String {
    format!(
        "{:.2} [{:.2}, {:.2}]{}{}",
        r.p50_ratio,
        r.ci_low,
        r.ci_high,
        if r.clear_difference { "" } else { " ~" },
        match r.missed {
            None => "",
            Some(Miss::Time) => " T",
            Some(Miss::Unstable) => " U",
        }
    )
}

fn one_table(results: &Results, model: &str, class: BatchClass, markdown: bool) -> String {
    let backends: Vec<&str> = results.backends.iter().map(|b| b.name.as_str()).collect();
    let mut header = vec!["batch".to_string(), "load".to_string()];
    for b in &backends {
        header.push(format!("{b} p50"));
        header.push(format!("{b} mean"));
        if *b != results.baseline {
            header.push(format!("{b} ratio"));
        }
    }
    let mut builder = Builder::default();
    builder.push_record(header);
    let loads: Vec<String> = results.config.loads.iter().map(|l| l.label()).collect();
    let batches = results.config.batches(model, class);
    for (&batch, load) in batches
        .iter()
        .flat_map(|b| loads.iter().map(move |l| (b, l)))
    {
        let mut row = vec![batch.to_string(), load.clone()];
        for b in &backends {
            let point = results.row(model, batch, load, b);
            let (p50, mean) = match point.and_then(|p| p.latency_ms.as_ref().map(|l| (p, l))) {
                Some((p, l)) => (
                    format!("{}{}{}", ms(l.p50), flag_letters(&p.flags), error_note(p)),
                    ms(l.mean),
                ),
                None if point.is_some() => (
                    format!("failed{}", point.map_or(String::new(), error_note)),
                    "failed".into(),
                ),
                None => ("-".into(), "-".into()),
            };
            row.push(p50);
            row.push(mean);
            if *b != results.baseline {
                let ratio = results.ratio(model, batch, load, b);
                row.push(ratio.map_or("-".into(), ratio_cell));
            }
        }
        builder.push_record(row);
    }
    render(builder, markdown)
}

/// A finished table in Markdown or, for the terminal, with rounded borders.
pub fn render(builder: Builder, markdown: bool) -> String {
    let mut table = builder.build();
    if markdown {
        table.with(Style::markdown());
    } else {
        table.with(Style::rounded());
    }
    table.to_string()
}

/// Milliseconds with about three significant digits.
pub fn ms(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// `builder`'s table in the page's style under its title line; in Markdown under a
/// `## heading`, the title a sentence of its own.
pub fn titled(builder: Builder, markdown: bool, heading: &str, title: &str) -> String {
    let mut table = builder.build();
    if markdown {
        table.with(Style::markdown());
        format!("## {heading}\n\n{title}.\n\n{table}\n\n")
    } else {
        table.with(Style::rounded());
        format!("{title}\n{table}\n\n")
    }
}

/// The agreement rows as a table; with `--precision` beyond fp32, a precision column
/// and, under the table, the tolerance of each precision.
pub fn agreement_table(results: &Results, markdown: bool) -> String {
    let by_precision = results.config.precisions.iter().any(|p| p != "fp32");
    let mut builder = Builder::default();
    let mut head = vec!["model", "backend"];
    if by_precision {
        head.push("precision");
    }
    head.extend([
        "reference",
        "max abs diff",
        "max rel diff",
        "top-1 agreement",
        "verdict",
    ]);
    builder.push_record(head);
    for a in &results.agreement {
        let mut row = vec![a.model.clone(), a.backend.clone()];
        if by_precision {
            row.push(a.precision.clone());
        }
        row.extend([
            a.reference.clone(),
            format!("{:.2e}", a.max_abs_diff),
            format!("{:.2e}", a.max_rel_diff),
            format!("{:.0}%", a.top1_agreement * 100.0),
            if a.passed { "agrees" } else { "EXCLUDED" }.to_string(),
        ]);
        builder.push_record(row);
    }
    let mut out = render(builder, markdown);
    if by_precision {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for a in &results.agreement {
            if !seen.iter().any(|(p, _)| *p == a.precision) && !a.tolerance.is_empty() {
                seen.push((&a.precision, &a.tolerance));
            }
        }
        let list: Vec<String> = seen.iter().map(|(p, t)| format!("{p} {t}")).collect();
        let sep = if markdown { "\n\n" } else { "\n" };
        let _ = write!(
            out,
            "{sep}Tolerance by precision (max abs diff at most atol + rtol x the largest \
             reference output): {}.",
            list.join("; ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_notes_stay_short() {
        let row = |errors, untimed_errors| {
            let mut p: PointResult = serde_json::from_value(serde_json::json!({
                "model": "m", "backend": "b", "batch_size": 1, "load": "c=1",
                "concurrency": 1, "request_rate": null, "arrival": null, "workers": 1,
                "requests": 0, "errors": 0, "error_kinds": [], "duration_s": 0.0,
                "throughput_rps": 0.0, "samples_per_s": 0.0, "latency_ms": null,
                "server": null, "flags": [],
                "measurement": crate::results::MeasurementInfo::default()
            }))
            .unwrap();
            (p.errors, p.untimed_errors) = (errors, untimed_errors);
            error_note(&p)
        };
        assert_eq!(row(0, 0), "");
        assert_eq!(row(2, 1), " !3");
        assert_eq!(row(80_235, 0), " !80k");
        assert_eq!(row(u64::MAX, 1), " !18446744073709M");
        assert_eq!(row(u64::MAX, 1).len(), 17);
    }

    #[test]
    fn milliseconds_keep_three_digits() {
        assert_eq!(ms(1234.5), "1234");
        assert_eq!(ms(12.345), "12.3");
        assert_eq!(ms(1.2345), "1.23");
        assert_eq!(ms(0.12345), "0.123");
    }
}
