//! Progress on stderr during long runs; silent with `--quiet`.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar over the measured points, plus notes printed above it.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A progress display, or nothing at all when `quiet`.
    pub fn new(quiet: bool) -> Self {
        let bar = (!quiet).then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
                    .expect("constant template"),
            );
            bar
        });
        Progress { bar }
    }

    /// Sets the number of points to measure.
    pub fn start(&self, points: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(points);
            bar.set_position(0);
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
    }

    /// Prints a line above the bar.
    pub fn note(&self, line: &str) {
        if let Some(bar) = &self.bar {
            bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
