//! Do the ratios' 95 % intervals hold their 95 %? A/A false positives and power.
//!
//! **A/A.** One backend against itself, opened twice under two labels (`candle@a` vs
//! `candle@b`, `onnxruntime@a` vs `onnxruntime@b`, and `flask@a` vs `flask@b`: two
//! Gunicorn servers the harness starts), through the real `harness compare` binary on
//! short points (text-CNN batches 1, 2, 4 and 8, `--time-budget` a few seconds a
//! point). Every ratio is an A/A comparison; a correct 95 % interval excludes 1.0 in
//! about 5 % of them (target: at most 5 %). Printed per pair: comparisons, how many
//! excluded 1.0, the median achieved half-width and how many reached `--target-precision`.
//!
//! **Power.** TEST DOUBLES, not benchmark targets (`doubles::FifoServer`: one worker
//! holding each request for a fixed service time): one slowed by 10 % (2.2 ms) against
//! its unslowed twin (2 ms), measured by the harness's own rounds
//! ([`harness::compare::measure::measure_quietly`]); the share of intervals that
//! exclude 1.0 (above it) is the power to tell a 10 % slowdown. The same doubles A/A
//! (2 ms against 2 ms) give a further false-positive count at no cost in engines.
//!
//! `cargo bench -p harness --bench aa_intervals`. `SERVEBENCH_AA_RUNS` (default 4) sets
//! the runs per backend pair (4 points each). Run it on an idle machine: it measures
//! latency.

mod doubles;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doubles::FifoServer;
use harness::cli::{parse, Command as Cli};
use harness::compare::{measure, ratios, Opened};
use harness::config::RunConfig;
use harness::load::Load;
use harness::stats::{median, paired};

/// The harness binary's allocator, so that the client is timed as it runs there.
#[global_allocator]
static ALLOCATOR: harness::alloc::LineAligned = harness::alloc::LineAligned;

/// Backend pairs of the A/A runs.
const PAIRS: [&str; 3] = ["candle", "onnxruntime", "flask"];

/// Runs per pair unless `SERVEBENCH_AA_RUNS` says otherwise.
const RUNS: usize = 4;

/// Comparisons of the doubles (power, and their own A/A), one point each.
const DOUBLE_POINTS: usize = 40;

/// One ratio as the bench reads it.
struct Cell {
    ratio: f64,
    low: f64,
    high: f64,
    half_width: f64,
    reached: bool,
    rounds: usize,
    /// Of `rounds`, those set aside as disturbed (`harness::stats::disturbed`).
    set_aside: usize,
}

impl Cell {
    fn excludes_one(&self) -> bool {
        self.low > 1.0 || self.high < 1.0
    }

    /// `ln(ratio)`, the variance of that estimate from its rounds alone (the interval's log
    /// half-width less the between-opens term in quadrature, over its t quantile) and the
    /// t's degrees of freedom (Stein's `n0 - 1` once the first stage ran).
    fn log_variance_df(&self, first_stage: usize) -> (f64, f64, usize) {
        let h = (self.high / self.low).ln() / 2.0;
        let rounds_only = (h * h - paired::between_opens_half_width().powi(2)).max(0.0);
        // A round set aside (perhaps one of the first stage's) takes one away.
        let df = if self.rounds >= first_stage {
            first_stage - 1
        } else {
            self.rounds.saturating_sub(1)
        }
        .saturating_sub(self.set_aside)
        .max(1);
        (self.ratio.ln(), rounds_only / paired::t975(df).powi(2), df)
    }
}

/// The least spread of one open (in steps of 0.01 %) at which at most 5 % of these A/A
/// intervals, rebuilt from their rounds' part and that spread, exclude 1.0: the value of
/// [`paired::BETWEEN_OPENS`] these cells call for. A moment estimate (`mean(y^2)` less
/// the rounds' variance, weighted or not) was tried first and is no use here: most cells
/// have 5 rounds, so `y^2 / v` follows a t of 4 degrees of freedom squared, whose
/// variance is infinite, and a single cell moved the estimate by a factor of two.
fn least_spread_for_five_percent(cells: &[Cell], first_stage: usize) -> f64 {
    let allowed = cells.len() / 20;
    let parts: Vec<(f64, f64)> = cells
        .iter()
        .map(|c| {
            let (y, v, df) = c.log_variance_df(first_stage);
            (y.abs(), paired::t975(df) * v.sqrt())
        })
        .collect();
    let z_sqrt2 = 1.959_964 * std::f64::consts::SQRT_2;
    (0..=1000)
        .map(|k| k as f64 * 1e-4)
        .find(|&f| {
            let h = z_sqrt2 * f;
            parts.iter().filter(|(y, r)| *y > r.hypot(h)).count() <= allowed
        })
        .unwrap_or(f64::NAN)
}

fn main() {
    harness::alloc::keep_freed_memory();
    let runs = std::env::var("SERVEBENCH_AA_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(RUNS);
    println!("A/A through `harness compare` (text-CNN batches 1, 2, 4, 8; {runs} runs a pair)");
    println!(
        "{:<12} {:>6} {:>9} {:>11} {:>10} {:>8}",
        "pair", "cells", "exclude 1", "median ±", "at target", "wall s"
    );
    let (mut all, mut excluded) = (0, 0);
    let mut every = Vec::new();
    for name in PAIRS {
        let t0 = Instant::now();
        let mut cells = Vec::new();
        for run in 0..runs {
            match compare_pair(name) {
                Ok(c) => cells.extend(c),
                Err(e) => {
                    println!("{name}: run {run} failed: {e}");
                    break;
                }
            }
        }
        let ex = cells.iter().filter(|c| c.excludes_one()).count();
        all += cells.len();
        excluded += ex;
        println!(
            "{:<12} {:>6} {:>9} {:>10.1}% {:>10} {:>8.0}",
            format!("{name}@a/b"),
            cells.len(),
            ex,
            100.0 * median(&cells.iter().map(|c| c.half_width).collect::<Vec<_>>()),
            cells.iter().filter(|c| c.reached).count(),
            t0.elapsed().as_secs_f64()
        );
        for c in &cells {
            println!(
                "    {:.3} [{:.3}, {:.3}] {} rounds{}{}",
                c.ratio,
                c.low,
                c.high,
                c.rounds,
                match c.set_aside {
                    0 => String::new(),
                    n => format!(" ({n} set aside)"),
                },
                if c.excludes_one() {
                    "  excludes 1.0"
                } else {
                    ""
                }
            );
        }
        every.extend(cells);
    }
    let first_stage = harness::config::DEFAULT_ROUNDS.max(2);
    // The same cells with the rounds' part of each interval alone.
    let rounds_only = every
        .iter()
        .filter(|c| {
            let (y, v, df) = c.log_variance_df(first_stage);
            y.abs() > paired::t975(df) * v.sqrt()
        })
        .count();
    println!(
        "A/A false positives: {excluded} of {all} intervals exclude 1.0 ({:.1} %; target <= 5 %); without the spread between opens {rounds_only} ({:.1} %)",
        100.0 * excluded as f64 / all.max(1) as f64,
        100.0 * rounds_only as f64 / all.max(1) as f64
    );
    let aside: Vec<&Cell> = every.iter().filter(|c| c.set_aside > 0).collect();
    println!(
        "rounds set aside as disturbed: {} in {} of {all} cells, of which {} exclude 1.0",
        aside.iter().map(|c| c.set_aside).sum::<usize>(),
        aside.len(),
        aside.iter().filter(|c| c.excludes_one()).count()
    );
    println!(
        "least spread of one open at which at most 5 % of these intervals exclude 1.0: {:.2} %; the intervals assume {:.2} % (paired::BETWEEN_OPENS)",
        100.0 * least_spread_for_five_percent(&every, first_stage),
        100.0 * paired::BETWEEN_OPENS
    );
    println!();

    println!("TEST DOUBLES (one FIFO worker, fixed service time), {DOUBLE_POINTS} points each:");
    for (label, slow) in [("A/A 2.0 vs 2.0 ms", 2.0), ("power 2.2 vs 2.0 ms", 2.2)] {
        let cells = doubles_compare(slow);
        let ex = cells.iter().filter(|c| c.excludes_one()).count();
        let above = cells.iter().filter(|c| c.low > 1.0).count();
        println!(
            "{label}: {ex} of {} intervals exclude 1.0 ({above} above it); median ratio {:.3}, median ± {:.1}%, {} at target",
            cells.len(),
            median(&cells.iter().map(|c| c.ratio).collect::<Vec<_>>()),
            100.0 * median(&cells.iter().map(|c| c.half_width).collect::<Vec<_>>()),
            cells.iter().filter(|c| c.reached).count()
        );
    }
}

/// One `harness compare` of `name@a` against `name@b`: its ratio cells.
fn compare_pair(name: &str) -> Result<Vec<Cell>, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let json = dir.path().join("aa.json");
    let backends = format!("{name}@a,{name}@b");
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "compare",
            "--quiet",
            "--backends",
            &backends,
            "--reference",
            &format!("{name}@a"),
            "--models",
            "text-cnn",
            "--small-batches",
            "1,2,4,8",
            "--large-batches",
            "1",
            "--time-budget",
            "12s",
            "--duration",
            "0.1",
            "--results-dir",
            dir.path().to_str().expect("a UTF-8 temporary path"),
            "--json",
            json.to_str().expect("a UTF-8 temporary path"),
        ])
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    cells(&json)
}

fn cells(json: &Path) -> Result<Vec<Cell>, String> {
    let text = std::fs::read_to_string(json).map_err(|e| e.to_string())?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let ratios = doc["ratios"].as_array().ok_or("no ratios")?;
    Ok(ratios
        .iter()
        .map(|r| {
            let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
            Cell {
                ratio: f("p50_ratio"),
                low: f("ci_low"),
                high: f("ci_high"),
                half_width: f("half_width"),
                reached: r["target_met"].as_bool().unwrap_or(false),
                rounds: r["rounds"].as_u64().unwrap_or(0) as usize,
                set_aside: r["set_aside_rounds"].as_u64().unwrap_or(0) as usize,
            }
        })
        .collect())
}

/// [`DOUBLE_POINTS`] comparisons of a double of `slow_ms` against one of 2 ms (the
/// baseline), each a fresh pair (as each A/A run above opens its backends anew),
/// measured in rounds under the default precision, with a second each.
fn doubles_compare(slow_ms: f64) -> Vec<Cell> {
    let argv = [
        "harness",
        "compare",
        "--backends",
        "candle@base,candle@other",
        "--models",
        "text-cnn",
        "--small-batches",
        "1",
        "--large-batches",
        "1",
        "--duration",
        "0.05",
        "--time-budget",
        "1s",
    ];
    let Ok(Cli::Compare(args)) = parse(argv).map(|c| c.command) else {
        panic!("the bench's own flags parse");
    };
    let cfg = RunConfig::compare(*args).expect("the bench's own settings are valid");
    let mut plan = cfg.plan();
    plan.points[0].load = Load::Closed { concurrency: 1 };
    let ms = |x: f64| Duration::from_secs_f64(x / 1000.0);
    let rt = doubles::runtime(None);
    let mut cells = Vec::new();
    for k in 0..DOUBLE_POINTS {
        plan.seed = k as u64;
        let backends = [
            Opened::new("double@base", Arc::new(FifoServer::new(ms(2.0))), 0.0),
            Opened::new("double@other", Arc::new(FifoServer::new(ms(slow_ms))), 0.0),
        ];
        let rows = rt
            .block_on(measure::measure_quietly(&plan, &backends, "double@base"))
            .expect("test doubles answer");
        cells.extend(
            ratios(
                &rows,
                "double@base",
                plan.seed,
                plan.measure.first_stage(),
                plan.measure.target_precision,
            )
            .iter()
            .map(|r| Cell {
                ratio: r.p50_ratio,
                low: r.ci_low,
                high: r.ci_high,
                half_width: r.half_width,
                reached: r.target_met,
                rounds: r.rounds,
                set_aside: r.set_aside_rounds,
            }),
        );
    }
    cells
}
