//! The default terminal layout: one row per backend, so a table's width does not grow
//! with the number of backends and the page fits [`WIDTH`] columns.
//!
//! Within each model × batch class, rows are grouped by batch size and load (named on
//! the group's first row); each backend's row holds its p50, p99 and throughput, its
//! p50 ratio to the baseline with the 95 % interval, and its flags. `--wide` prints the
//! side-by-side tables of [`crate::report::table`] instead, as `report.md` has them.

use std::fmt::Write;

use tabled::builder::Builder;

use crate::report::table::{flag_letters, ms, ratio_cell, render};
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
                    Some((p, Some(l))) => {
                        row.extend([ms(l.p50), ms(l.p99), format!("{:.1}", p.throughput_rps)])
                    }
                    Some((_, None)) => row.extend(["failed".into(), "-".into(), "-".into()]),
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
    use crate::agreement::Agreement;
    use crate::cli::{parse, Command};
    use crate::config::RunConfig;
    use crate::report::{page, run_page, Layout};
    use crate::results::{
        BackendInfo, Breakdown, MeasurementInfo, PointResult, Ratio, Unavailable,
    };
    use crate::stats::Latency;

    const SIX: [&str; 6] = [
        "candle",
        "onnxruntime",
        "flask",
        "triton-http",
        "triton-grpc",
        "tfserving-grpc",
    ];

    /// A `compare` of six backends at two loads with the widest figures each column
    /// can hold: four-digit latencies, five-digit throughputs, every flag, ratio
    /// intervals three digits wide, server-side breakdowns, a long unavailable reason.
    fn six_backends() -> Results {
        let argv = [
            "harness",
            "compare",
            "--backends",
            "candle,onnxruntime,flask,triton-http,triton-grpc,tfserving-grpc",
            "--request-rate",
            "1000.5,20",
            "--arrival",
            "poisson",
        ];
        let Command::Compare(args) = parse(argv).expect("parses").command else {
            panic!("compare");
        };
        let cfg = RunConfig::compare(*args).expect("valid settings");
        let record = cfg.plan().record;
        let mut h = crate::load::histogram();
        for us in [1_234_000u64, 2_345_000, 9_876_000] {
            h.record(us).unwrap();
        }
        let latency = Latency::from_histogram(&h, &[9_876_000, 2_345_000]).unwrap();
        let flags: Vec<String> = crate::report::FLAGS
            .iter()
            .map(|(n, _, _)| n.to_string())
            .collect();
        let mut results = Vec::new();
        let mut ratios = Vec::new();
        for model in &record.models {
            for class in [BatchClass::Small, BatchClass::Large] {
                for &batch in record.batches(model, class) {
                    for load in record.loads.iter().map(|l| l.label()) {
                        for b in SIX {
                            results.push(PointResult {
                                model: model.clone(),
                                backend: b.to_string(),
                                batch_size: batch,
                                load: load.clone(),
                                concurrency: None,
                                request_rate: None,
                                arrival: None,
                                workers: 2,
                                requests: 123_456,
                                errors: 0,
                                error_kinds: vec![],
                                duration_s: 12.3,
                                throughput_rps: 12_345.6,
                                samples_per_s: 12_345.6,
                                latency_ms: Some(latency.clone()),
                                server: b.starts_with("triton").then_some(Breakdown {
                                    queue_ms: 1234.5,
                                    compute_input_ms: 1234.5,
                                    compute_infer_ms: 1234.5,
                                    compute_output_ms: 1234.5,
                                }),
                                measurement: MeasurementInfo {
                                    total_requests: 1_234_567,
                                    total_wall_s: 123.45,
                                    ..Default::default()
                                },
                                flags: flags.clone(),
                                samples: vec![],
                            });
                            if b != SIX[0] {
                                ratios.push(Ratio {
                                    model: model.clone(),
                                    batch_size: batch,
                                    load: load.clone(),
                                    backend: b.to_string(),
                                    baseline: SIX[0].to_string(),
                                    p50_ratio: 123.45,
                                    ci_low: 100.01,
                                    ci_high: 999.99,
                                    clear_difference: false,
                                    mean_ratio: 123.45,
                                    mean_ci_low: 100.01,
                                    mean_ci_high: 999.99,
                                });
                            }
                        }
                    }
                }
            }
        }
        Results {
            schema_version: crate::results::SCHEMA_VERSION,
            servebench_version: "0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            finished_at: "2026-01-01T00:00:00Z".into(),
            system: crate::results::System::probe(Default::default()),
            backends: SIX
                .iter()
                .map(|b| BackendInfo {
                    name: b.to_string(),
                    engine: "engine 1.0".into(),
                    protocol: "http".into(),
                    device: "cpu".into(),
                    workers: 2,
                    intra_threads: Some(1),
                    details: Default::default(),
                    test_peer: *b == "tfserving-grpc",
                    cold_start_ms: 1234.0,
                })
                .collect(),
            baseline: SIX[0].to_string(),
            unavailable: vec![Unavailable {
                backend: "libtorch".into(),
                reason: "not compiled in; build with --features libtorch (needs torch in .venv: scripts/setup), then run harness compare again with it".repeat(2),
            }],
            agreement: SIX
                .iter()
                .map(|b| Agreement {
                    model: "resnet18".into(),
                    backend: b.to_string(),
                    reference: "tfserving-grpc".into(),
                    max_abs_diff: 1.23e-4,
                    max_rel_diff: 1.23e-4,
                    top1_agreement: 1.0,
                    passed: false,
                })
                .collect(),
            results,
            ratios,
            config: record,
        }
    }

    #[test]
    fn the_default_page_fits_120_columns_with_six_backends() {
        let results = six_backends();
        for (what, text) in [
            ("compare", page(&results, Layout::Narrow)),
            ("run", run_page(&results, false)),
        ] {
            let widest = text.lines().max_by_key(|l| l.chars().count()).unwrap();
            assert!(
                widest.chars().count() <= WIDTH,
                "{what}: {} columns: {widest}\n{text}",
                widest.chars().count()
            );
        }
        // The wide layout is what it was: side by side, far wider.
        let wide = page(&results, Layout::Wide);
        assert!(wide.lines().any(|l| l.chars().count() > 200));
    }

    #[test]
    fn every_backend_has_its_row_and_ratio() {
        let text = page(&six_backends(), Layout::Narrow);
        for b in SIX {
            assert!(text.contains(&format!("│ {b} ")), "{b}: {text}");
        }
        assert!(text.contains("baseline"));
        assert!(text.contains("123.45 [100.01, 999.99] ~"), "{text}");
    }

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
