//! `harness diff OLD.json NEW.json`: did a change make anything slower?
//!
//! For every cell (model, batch size, load, backend) both runs measured, the ratio of
//! NEW's p50 latency to OLD's, with a bootstrap 95 % interval from the window samples
//! each results file keeps ([`crate::results::decode_windows`]; the same three-stage
//! resampling as the ratio tables, [`crate::stats::bootstrap`]), widened by the spread
//! between two opens of a backend ([`crate::stats::paired`]). A cell **regressed**
//! when NEW is slower than OLD by more than the threshold and its interval excludes 1.0:
//! both a difference that matters and one the noise cannot explain.

use std::fmt::Write;
use std::path::Path;

use tabled::builder::Builder;
use tabled::settings::Style;

use crate::report::ms;
use crate::results::{decode_windows, PointResult, Results};
use crate::stats::bootstrap::{ratio_interval, Interval, Statistic};
use crate::stats::paired;
use crate::HarnessError;

/// Default threshold, percent.
pub const DEFAULT_THRESHOLD: f64 = 10.0;

/// One cell both runs share.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Model, batch size, load, backend and worker count (a worker grid has a cell
    /// per count).
    pub key: Key,
    /// OLD's and NEW's p50, ms.
    pub p50: (f64, f64),
    /// NEW p50 / OLD p50.
    pub ratio: f64,
    /// Its bootstrap 95 % interval (`None`: a side kept no window samples).
    pub interval: Option<Interval>,
    /// Slower beyond the threshold, with an interval that excludes 1.0.
    pub regressed: bool,
}

/// Every shared cell of two runs, and how many cells only one of them has.
#[derive(Debug, Clone)]
pub struct Diff {
    /// The shared cells, in OLD's order.
    pub cells: Vec<Cell>,
    /// Cells only OLD measured.
    pub only_old: usize,
    /// Cells only NEW measured.
    pub only_new: usize,
    /// Threshold, percent.
    pub threshold: f64,
}

/// What names a cell: model, batch size, load, backend and worker count.
pub type Key = (String, usize, String, String, usize);

fn key(r: &PointResult) -> Key {
    (
        r.model.clone(),
        r.batch_size,
        r.load.clone(),
        r.backend.clone(),
        r.workers,
    )
}

/// Compares the rows of two runs; `threshold` in percent.
pub fn diff(old: &[PointResult], new: &[PointResult], threshold: f64, seed: u64) -> Diff {
    let mut cells = Vec::new();
    for o in old {
        let Some(n) = new.iter().find(|n| key(n) == key(o)) else {
            continue;
        };
        let (Some(lo), Some(ln)) = (&o.latency_ms, &n.latency_ms) else {
            continue;
        };
        if lo.p50 <= 0.0 {
            continue;
        }
        let ratio = ln.p50 / lo.p50;
        let interval = match (
            decode_windows(&n.window_histograms),
            decode_windows(&o.window_histograms),
        ) {
            (Ok(a), Ok(b)) => ratio_interval(&a, &b, Statistic::P50, seed).map(|i| {
                // Two runs are two opens of each backend.
                let (low, high) = paired::widen_for_opens(ratio, i.low, i.high);
                Interval { low, high }
            }),
            _ => None,
        };
        let regressed = ratio > 1.0 + threshold / 100.0 && interval.is_some_and(|i| i.low > 1.0);
        cells.push(Cell {
            key: key(o),
            p50: (lo.p50, ln.p50),
            ratio,
            interval,
            regressed,
        });
    }
    let shared = cells.len();
    Diff {
        only_old: old.len() - shared.min(old.len()),
        only_new: new.len() - shared.min(new.len()),
        cells,
        threshold,
    }
}

/// Reads a results file.
pub fn read(path: &Path) -> Result<Results, HarnessError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| HarnessError::Config(format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        HarnessError::Config(format!(
            "{} is not a servebench results file: {e}",
            path.display()
        ))
    })
}

impl Diff {
    /// Cells that regressed.
    pub fn regressions(&self) -> usize {
        self.cells.iter().filter(|c| c.regressed).count()
    }

    /// The table and a closing line, for the terminal or Markdown.
    pub fn render(&self, markdown: bool) -> String {
        // A workers column only where the cells differ in it (a worker grid).
        let grid = self.cells.iter().any(|c| c.key.4 != self.cells[0].key.4);
        let mut b = Builder::default();
        let mut head = vec!["model", "batch", "load", "backend"];
        if grid {
            head.push("workers");
        }
        head.extend(["old p50", "new p50", "new/old [95%]", "verdict"]);
        b.push_record(head);
        for c in &self.cells {
            let (m, batch, load, backend, workers) = &c.key;
            let ci = c.interval.map_or("(no samples)".into(), |i| {
                format!("[{:.2}, {:.2}]", i.low, i.high)
            });
            let verdict = match c.interval {
                _ if c.regressed => "SLOWER",
                Some(i) if i.high < 1.0 => "faster",
                Some(i) if i.low > 1.0 => "slower, within threshold",
                Some(_) => "~ same",
                None => "?",
            };
            let mut row = vec![m.clone(), batch.to_string(), load.clone(), backend.clone()];
            if grid {
                row.push(workers.to_string());
            }
            row.extend([
                ms(c.p50.0),
                ms(c.p50.1),
                format!("{:.2} {ci}", c.ratio),
                verdict.to_string(),
            ]);
            b.push_record(row);
        }
        let mut table = b.build();
        if markdown {
            table.with(Style::markdown());
        } else {
            table.with(Style::rounded());
        }
        let mut out = String::new();
        let title = "p50 latency, ms: NEW against OLD, with its bootstrap 95 % interval";
        if markdown {
            let _ = writeln!(out, "## harness diff\n\n{title}.\n");
        } else {
            let _ = writeln!(out, "{title}");
        }
        let _ = writeln!(out, "{table}\n");
        if self.only_old + self.only_new > 0 {
            let _ = writeln!(
                out,
                "{} cells only in OLD, {} only in NEW (not compared).",
                self.only_old, self.only_new
            );
        }
        let n = self.regressions();
        let _ = writeln!(
            out,
            "{}",
            if n == 0 {
                format!(
                    "No regression: no cell of {} is slower by more than {}% with an interval excluding 1.0.",
                    self.cells.len(),
                    self.threshold
                )
            } else {
                format!(
                    "{n} of {} cells slower by more than {}% with an interval excluding 1.0.",
                    self.cells.len(),
                    self.threshold
                )
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::testing::Sleeper;
    use crate::results::{encode_windows, MeasurementInfo};
    use crate::stats::Latency;
    use std::time::Duration;

    /// One point per test double, latencies drawn from its latency model: its delay
    /// times a seeded log-normal spread (3 trials of 2 windows of 25 requests). Not timed
    /// on the wall clock: on a busy 2-core machine a 4 ms thread sleep measured 12 ms,
    /// scheduling delay that would swamp the 30 % this test injects. (The end-to-end
    /// compare test diffs a really measured run with itself.)
    fn measured(delays: &[Duration]) -> Vec<PointResult> {
        use rand::{Rng, SeedableRng};
        delays
            .iter()
            .enumerate()
            .map(|(k, &d)| {
                let s = Sleeper::new(d);
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(k as u64);
                let samples: Vec<Vec<Vec<u64>>> = (0..3)
                    .map(|_| {
                        (0..2)
                            .map(|_| {
                                (0..25)
                                    .map(|_| {
                                        let z: f64 =
                                            (0..4).map(|_| rng.random::<f64>() - 0.5).sum();
                                        (s.delay.as_micros() as f64 * (0.3 * z).exp()) as u64
                                    })
                                    .collect()
                            })
                            .collect()
                    })
                    .collect();
                row(&samples)
            })
            .collect()
    }

    fn row(samples: &[Vec<Vec<u64>>]) -> PointResult {
        let mut h = crate::load::histogram();
        samples
            .iter()
            .flatten()
            .flatten()
            .for_each(|&x| h.record(x).unwrap());
        let row = PointResult {
            model: "text-cnn".into(),
            backend: "sleeper".into(),
            precision: "fp32".into(),
            batch_size: 1,
            load: "c=1".into(),
            concurrency: Some(1),
            request_rate: None,
            arrival: None,
            workers: 1,
            requests: h.len(),
            errors: 0,
            error_kinds: vec![],
            untimed_errors: 0,
            untimed_error_kinds: vec![],
            duration_s: 1.0,
            throughput_rps: 1.0,
            samples_per_s: 1.0,
            latency_ms: Latency::from_histogram(&h, &[]),
            server: None,
            measurement: MeasurementInfo::default(),
            resources: Default::default(),
            efficiency: Default::default(),
            server_metrics: Default::default(),
            flags: vec![],
            window_histograms: encode_windows(samples),
            samples: vec![],
        };
        // Through JSON, as `harness diff` reads it.
        serde_json::from_str(&serde_json::to_string(&row).unwrap()).unwrap()
    }

    #[test]
    fn a_30_percent_slowdown_is_caught_and_a_twin_is_not() {
        let ms4 = Duration::from_millis(4);
        let [base, twin, slow] =
            <[PointResult; 3]>::try_from(measured(&[ms4, ms4, ms4 * 13 / 10])).unwrap();

        let one = std::slice::from_ref(&base);
        let same = diff(one, one, DEFAULT_THRESHOLD, 1);
        assert_eq!(same.regressions(), 0, "{}", same.render(false));
        assert!(same.cells[0].interval.unwrap().contains(1.0));

        let aa = diff(one, &[twin], DEFAULT_THRESHOLD, 1);
        assert_eq!(aa.regressions(), 0, "{}", aa.render(false));

        let d = diff(&[base], &[slow], DEFAULT_THRESHOLD, 1);
        let text = d.render(true);
        assert_eq!(d.regressions(), 1, "{text}");
        assert!(text.contains("SLOWER"), "{text}");
        assert!(text.contains("1 of 1 cells slower"), "{text}");
    }

    #[test]
    fn cells_only_one_run_has_are_counted_not_compared() {
        let mut a = measured(&[Duration::from_millis(1)]).remove(0);
        let b = a.clone();
        a.backend = "other".into();
        let d = diff(&[a], &[b], DEFAULT_THRESHOLD, 1);
        assert!(d.cells.is_empty());
        assert_eq!((d.only_old, d.only_new), (1, 1));
        assert!(d
            .render(false)
            .contains("1 cells only in OLD, 1 only in NEW"));
    }
}
