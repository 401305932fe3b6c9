//! Progress on stderr during long runs; silent with `--quiet`.
//!
//! On a terminal, a bar over the measured points with notes printed above it; when
//! stderr is not a terminal (CI logs, `2> file`), plain lines instead: each note, and
//! each step as `[n/total] what`, so a log shows what the run is waiting for.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over the measured points, plus notes printed above it.
pub struct Progress {
    bar: Option<ProgressBar>,
    plain: Option<Plain>,
}

/// Plain-line progress: the step count.
struct Plain {
    total: AtomicU64,
    done: AtomicU64,
}

impl Progress {
    /// A progress display, or nothing at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        if quiet {
            return Progress {
                bar: None,
                plain: None,
            };
        }
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                plain: Some(Plain {
                    total: AtomicU64::new(0),
                    done: AtomicU64::new(0),
                }),
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

    /// Moves to the next point.
    pub fn step(&self, what: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(what.to_string());
            if bar.position() < bar.length().unwrap_or(0) {
                bar.inc(1);
            }
        }
        if let Some(p) = &self.plain {
            let total = p.total.load(Ordering::Relaxed);
            let n = (p.done.fetch_add(1, Ordering::Relaxed) + 1).min(total);
            eprintln!("[{n}/{total}] {what}");
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
