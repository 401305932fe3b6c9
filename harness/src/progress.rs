//! Progress on stderr during long runs; silent with `--quiet`.
//!
//! On a terminal, a bar over the measured points with notes printed above it, its
//! message naming the point, the backend being measured and the time left in the run's
//! `--time-budget`; when stderr is not a terminal (CI logs, `2> file`), plain lines
//! instead: each note, and `[n/total] <point> on <backend>, <time> left` the first time
//! a backend is measured at a point, so a log shows what the run is waiting for.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over the measured points, plus notes printed above it.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Plain>,
    /// The point being measured, and the backends already named at it.
    point: Mutex<(String, Vec<String>)>,
}

/// Plain-line progress: the step count.
struct Plain {
    total: AtomicU64,
    done: AtomicU64,
}

impl Progress {
    /// A progress display, or nothing at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let point = Mutex::new((String::new(), Vec::new()));
        if quiet {
            return Progress {
                bar: None,
                plain: None,
                point,
            };
        }
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                plain: Some(Plain {
                    total: AtomicU64::new(0),
                    done: AtomicU64::new(0),
                }),
                point,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
                .expect("constant template"),
        );
        Progress {
            bar: Some(bar),
            plain: None,
            point,
        }
    }

    /// Sets the number of points to measure.
    pub fn start(&self, points: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(points);
            bar.set_position(0);
        }
        if let Some(p) = &self.plain {
            p.total.store(points, Ordering::Relaxed);
            p.done.store(0, Ordering::Relaxed);
        }
    }

    /// Moves to the next point (`what` names it); [`Progress::at`] names its backends.
    pub fn step(&self, what: &str) {
        *self.point.lock().expect("progress lock") = (what.to_string(), Vec::new());
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
            if bar.position() < bar.length().unwrap_or(0) {
                bar.inc(1);
            }
        }
        if let Some(p) = &self.plain {
            let total = p.total.load(Ordering::Relaxed);
            let n = (p.done.load(Ordering::Relaxed) + 1).min(total);
            p.done.store(n, Ordering::Relaxed);
        }
    }

    /// `backend` is being measured at the current point, with `left` of the run's time
    /// budget: the bar's message says so; a plain line is printed the first time the
    /// backend comes up at this point.
    pub fn at(&self, backend: &str, left: Duration) {
        let mut point = self.point.lock().expect("progress lock");
        let what = line(&point.0, backend, left);
        if let Some(bar) = &self.bar {
            bar.set_message(what.clone());
        }
        if let Some(p) = &self.plain {
            if !point.1.iter().any(|b| b == backend) {
                point.1.push(backend.to_string());
                let total = p.total.load(Ordering::Relaxed);
                let n = p.done.load(Ordering::Relaxed);
                eprintln!("[{n}/{total}] {what}");
            }
        }
    }

    /// Prints a line above the bar.
    pub fn note(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.println(line);
        }
        if self.plain.is_some() {
            eprintln!("{line}");
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `<point> on <backend>, <time> left`: the time left in whole seconds.
pub fn line(point: &str, backend: &str, left: Duration) -> String {
    let left = Duration::from_secs(left.as_secs_f64().round() as u64);
    format!(
        "{point} on {backend}, {} left",
        humantime::format_duration(left)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_point_backend_and_time_left() {
        let l = line(
            "text-cnn batch 4 c=1",
            "flask",
            Duration::from_millis(83_400),
        );
        assert_eq!(l, "text-cnn batch 4 c=1 on flask, 1m 23s left");
        assert_eq!(line("p", "b", Duration::ZERO), "p on b, 0s left");
    }
}
