//! `report.html`: the run as one self-contained page (no network, no other file), with
//! plots drawn by `plotters` as inline SVG and the tables as HTML:
//! - p50 latency against throughput per model and batch size, one curve per backend over
//!   the load levels measured (the concurrency or rate sweep);
//! - each backend's p50 ratio to the baseline with its bootstrap 95 % interval, per model;
//! - the latency distribution (p50 to the slowest request) per backend, per model and
//!   batch size.

use std::fmt::Write;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::report::ms;
use crate::report::page::counts;
use crate::results::{PointResult, Results, Scope, AGREEMENT_BATCH};

const WIDTH: u32 = 720;
const HEIGHT: u32 = 380;

/// The whole page.
pub fn html(results: &Results) -> String {
    let mut body = String::new();
    let s = &results.system;
    let _ = write!(
        body,
        "<h1>servebench compare, {}</h1>\n<p>Machine: {} ({} cores, {} GiB), {}. Workers {}, {} trials. Baseline: {}.</p>\n",
        esc(&results.started_at),
        esc(&s.cpu),
        s.cores,
        s.memory_gib,
        esc(&s.os),
        esc(&counts(&results.config.grid())),
        results.config.trials,
        esc(&results.baseline)
    );
    match &results.config.grid()[..] {
        [_] => models(&mut body, results),
        grid => {
            for &n in grid {
                let _ = writeln!(body, "<h2 class=\"workers\">{n} workers</h2>");
                models(&mut body, &results.at_workers(n));
            }
        }
    }
    body.push_str(&grid(results));
    body.push_str(&cold_start(results));
    if !results.unavailable.is_empty() {
        let _ = writeln!(body, "<h2>Not measured</h2>\n<ul>");
        for u in &results.unavailable {
            let _ = writeln!(body, "<li>{}: {}</li>", esc(&u.backend), esc(&u.reason));
        }
        let _ = writeln!(body, "</ul>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>servebench {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        esc(&results.started_at)
    )
}

/// The worker grid (`--workers 1,2,4`): every count's cost and latency side by side, or
/// nothing for one count.
fn grid(results: &Results) -> String {
    let Some((head, rows)) = super::grid::grid_cells(results) else {
        return String::new();
    };
    let mut t = String::from("<h2>Worker grid</h2>\n<table class=\"grid\">\n<tr>");
    for h in head {
        let _ = write!(t, "<th>{}</th>", esc(h));
    }
    t.push_str("</tr>\n");
    for row in rows {
        t.push_str("<tr>");
        for (k, cell) in row.iter().enumerate() {
            let class = if k < 5 { " class=\"l\"" } else { "" };
            let _ = write!(t, "<td{class}>{}</td>", esc(cell));
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</table>\n");
    t
}

/// Per model: its plots and its table (one worker count's).
fn models(body: &mut String, results: &Results) {
    let names = backend_names(results);
    for model in &results.config.models {
        let rows: Vec<&PointResult> = results
            .results
            .iter()
            .filter(|r| &r.model == model)
            .collect();
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(body, "<h2>{}</h2>", esc(model));
        let mut batches: Vec<usize> = rows.iter().map(|r| r.batch_size).collect();
        batches.sort_unstable();
        batches.dedup();
        let _ = writeln!(body, "<div class=\"plots\">");
        for &b in &batches {
            let at: Vec<&PointResult> =
                rows.iter().copied().filter(|r| r.batch_size == b).collect();
            figure(
                body,
                "latency-throughput",
                latency_throughput(model, b, &at, &names),
            );
            figure(body, "distribution", distribution(model, b, &at, &names));
        }
        figure(body, "ratios", ratio_bars(results, model));
        let _ = writeln!(body, "</div>");
        body.push_str(&table(results, &rows));
    }
}

/// The cold start of every backend (per worker count): open until ready, the first
/// request after ready, resident memory once loaded.
fn cold_start(results: &Results) -> String {
    if results.backends.is_empty() {
        return String::new();
    }
    let mut t = format!(
        "<h2>Cold start</h2>\n<table class=\"cold-start\">\n<tr><th>backend</th><th>workers</th><th>ready in ms</th><th>first request ms (batch {AGREEMENT_BATCH})</th><th>loaded MiB</th></tr>\n"
    );
    for b in &results.backends {
        let _ = writeln!(
            t,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&b.name),
            b.workers,
            ms(b.cold_start_ms),
            b.first_request_ms.map_or("-".into(), ms),
            b.loaded_memory_mb
                .map_or("not visible".into(), |m| format!("{m:.0}"))
        );
    }
    t.push_str("</table>\n");
    t
}

const STYLE: &str = "body{font-family:sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}\
th{background:#f2f2f2}td.l{text-align:left}.plots{display:flex;flex-wrap:wrap;gap:8px}\
figure{margin:0}figcaption{font-size:90%;color:#555}";

/// One plot in a `<figure>` of class `kind`, or a note that it could not be drawn.
fn figure(out: &mut String, kind: &str, svg: Option<String>) {
    match svg {
        Some(svg) => {
            let _ = writeln!(out, "<figure class=\"plot {kind}\">{svg}</figure>");
        }
        None => {
            let _ = writeln!(out, "<p>({kind}: nothing to plot)</p>");
        }
    }
}

/// Backends in the run's order.
fn backend_names(results: &Results) -> Vec<String> {
    results.backends.iter().map(|b| b.name.clone()).collect()
}

fn colour(i: usize) -> RGBColor {
    let c = Palette99::pick(i).to_rgba();
    RGBColor(c.0, c.1, c.2)
}

/// p50 against throughput, one curve per backend over its load levels.
fn latency_throughput(
    model: &str,
    batch: usize,
    rows: &[&PointResult],
    names: &[String],
) -> Option<String> {
    let curves: Vec<Curve> = names
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut v: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| &r.backend == b)
                .filter_map(|r| Some((r.throughput_rps, r.latency_ms.as_ref()?.p50)))
                .collect();
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
            (i, b.clone(), v)
        })
        .filter(|c| !c.2.is_empty())
        .collect();
    if curves.is_empty() {
        return None;
    }
    let all = curves.iter().flat_map(|c| c.2.iter());
    let (xmax, ymax) = all.fold((0f64, 0f64), |(x, y), p| (x.max(p.0), y.max(p.1)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let title = format!("{model}, batch {batch}: p50 latency vs throughput");
        let mut chart = frame(&root, &title)
            .build_cartesian_2d(0f64..xmax * 1.15 + 1e-9, 0f64..ymax * 1.15 + 1e-9)
            .ok()?;
        chart
            .configure_mesh()
            .x_desc("requests/s")
            .y_desc("p50 ms")
            .draw()
            .ok()?;
        draw_curves(&mut chart, curves, SeriesLabelPosition::UpperRight)?;
        root.present().ok()?;
    }
    Some(svg)
}

/// A chart with the page's caption font, margin and label areas.
fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55);
    b
}

/// Each curve as a line with dots, named in a legend at `at`.
fn draw_curves<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    curves: Vec<Curve>,
    at: SeriesLabelPosition,
) -> Option<()> {
    for (i, label, p) in curves {
        let c = colour(i);
        chart
            .draw_series(LineSeries::new(p.clone(), c.stroke_width(2)))
            .ok()?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], c));
        chart
            .draw_series(p.iter().map(|&xy| Circle::new(xy, 3, c.filled())))
            .ok()?;
    }
    chart
        .configure_series_labels()
        .position(at)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .ok()
}

/// Percentiles drawn in the distribution plot, and their axis labels.
const SPREAD: [&str; 7] = ["p50", "p80", "p90", "p95", "p99", "max", ""];

/// A backend's colour index, its label and its points.
type Curve = (usize, String, Vec<(f64, f64)>);

/// Latency from p50 to the slowest request, per backend (and load level), log scale.
fn distribution(
    model: &str,
    batch: usize,
    rows: &[&PointResult],
    names: &[String],
) -> Option<String> {
    let curves: Vec<Curve> = names
        .iter()
        .enumerate()
        .flat_map(|(i, b)| {
            let several = rows.iter().filter(|r| &r.backend == b).count() > 1;
            rows.iter()
                .filter(move |r| &r.backend == b)
                .filter_map(move |r| {
                    let l = r.latency_ms.as_ref()?;
                    let label = if several {
                        format!("{b} {}", r.load)
                    } else {
                        b.clone()
                    };
                    let ys = [l.p50, l.p80, l.p90, l.p95, l.p99, l.max];
                    Some((
                        i,
                        label,
                        ys.iter()
                            .enumerate()
                            .map(|(k, &y)| (k as f64, y.max(1e-3)))
                            .collect(),
                    ))
                })
        })
        .collect();
    if curves.is_empty() {
        return None;
    }
    let ys = curves.iter().flat_map(|c| c.2.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::MAX, 0f64), |(a, b), y| (a.min(y), b.max(y)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let title = format!("{model}, batch {batch}: latency distribution");
        let mut chart = frame(&root, &title)
            .build_cartesian_2d(-0.2f64..5.2, ((lo * 0.8)..(hi * 1.25)).log_scale())
            .ok()?;
        chart
            .configure_mesh()
            .x_labels(6)
            .x_label_formatter(&|x| {
                let k = x.round();
                if (x - k).abs() < 1e-6 && (0.0..6.0).contains(&k) {
                    SPREAD[k as usize].to_string()
                } else {
                    String::new()
                }
            })
            .y_desc("ms (log)")
            // A log axis draws many light lines; keep the bold ones only.
            .light_line_style(WHITE)
            .draw()
            .ok()?;
        draw_curves(&mut chart, curves, SeriesLabelPosition::UpperLeft)?;
        root.present().ok()?;
    }
    Some(svg)
}

/// Each backend's p50 ratio to the baseline with its 95 % interval, one bar per point.
fn ratio_bars(results: &Results, model: &str) -> Option<String> {
    let ratios: Vec<_> = results.ratios.iter().filter(|r| r.model == model).collect();
    if ratios.is_empty() {
        return None;
    }
    let names = backend_names(results);
    let n = ratios.len();
    let hi = ratios
        .iter()
        .map(|r| r.ci_high.max(r.p50_ratio))
        .fold(1.0, f64::max)
        * 1.1;
    let labels: Vec<String> = ratios
        .iter()
        .map(|r| format!("{} b={} {}", r.backend, r.batch_size, r.load))
        .collect();
    let mut svg = String::new();
    {
        let height = 80 + 26 * n as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let title = format!(
            "{model}: p50 ratio to {} with 95 % intervals",
            results.baseline
        );
        let mut chart = frame(&root, &title)
            .y_label_area_size(200)
            .build_cartesian_2d(0f64..hi, -0.5f64..(n as f64 - 0.5))
            .ok()?;
        chart
            .configure_mesh()
            .y_labels(n)
            .y_label_formatter(&|y| {
                let k = y.round();
                if (y - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
                    labels[k as usize].clone()
                } else {
                    String::new()
                }
            })
            .x_desc("p50 ratio (1.0 = baseline)")
            .draw()
            .ok()?;
        for (k, r) in ratios.iter().enumerate() {
            let i = names.iter().position(|b| *b == r.backend).unwrap_or(k);
            let c = colour(i);
            let y = k as f64;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y - 0.3), (r.p50_ratio, y + 0.3)],
                    c.mix(0.6).filled(),
                )))
                .ok()?;
            chart
                .draw_series(std::iter::once(ErrorBar::new_horizontal(
                    y,
                    r.ci_low,
                    r.p50_ratio,
                    r.ci_high,
                    BLACK.stroke_width(2),
                    8,
                )))
                .ok()?;
        }
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(1.0, -0.5), (1.0, n as f64 - 0.5)],
                RED.stroke_width(1),
            )))
            .ok()?;
        root.present().ok()?;
    }
    Some(svg)
}

/// The model's rows as a table: latency, throughput, ratio and resources.
fn table(results: &Results, rows: &[&PointResult]) -> String {
    let mut t = String::from(
        "<table class=\"results\">\n<tr><th>batch</th><th>load</th><th>backend</th><th>p50 ms</th><th>p99 ms</th><th>req/s</th><th>p50 ratio [95%]</th><th>CPU cores</th><th>peak MiB</th><th>flags</th></tr>\n",
    );
    for r in rows {
        let l = r.latency_ms.as_ref();
        let ratio = results
            .ratio(&r.model, r.batch_size, &r.load, &r.backend)
            .map_or(
                if r.backend == results.baseline {
                    "baseline".to_string()
                } else {
                    "-".to_string()
                },
                |q| format!("{:.2} [{:.2}, {:.2}]", q.p50_ratio, q.ci_low, q.ci_high),
            );
        let u = &r.resources;
        let (cpu, mem) = if u.scope == Scope::NotVisible {
            ("not visible".to_string(), "-".to_string())
        } else {
            (
                u.cpu_cores.map_or("-".into(), |c| format!("{c:.2}")),
                u.peak_memory_mb.map_or("-".into(), |m| format!("{m:.0}")),
            )
        };
        let _ = writeln!(
            t,
            "<tr><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            r.batch_size,
            esc(&r.load),
            esc(&r.backend),
            l.map_or("-".into(), |l| ms(l.p50)),
            l.map_or("-".into(), |l| ms(l.p99)),
            r.throughput_rps,
            ratio,
            cpu,
            mem,
            esc(&r.flags.join(", "))
        );
    }
    t.push_str("</table>\n");
    t
}

/// Text made safe for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
