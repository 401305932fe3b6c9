//! Load generation: the closed-loop and open-loop executors, and the series of windows
//! a measurement is made of.
//!
//! - [`closed`]: `concurrency` tasks each keep one request in flight, spread over the
//!   [`threads`] (one single-threaded runtime per core, as `wrk` runs one event loop per
//!   thread).
//! - [`open`]: sends are scheduled at a rate ([`schedule`]: constant or Poisson gaps) and
//!   go out whatever the answers do, from a dedicated [`sender`] thread that waits with
//!   [`clock`] (sleep, then spin) so they leave within microseconds of their schedule.
//!   One arrival process per series; windows are consecutive slices of it. Latency
//!   counts from the *scheduled* send time, so a backend (or a client) that falls behind
//!   cannot hide its queueing (coordinated omission, as wrk2 and MLPerf's Server scenario
//!   correct it). Sends that start more than [`LATE_AFTER`] behind schedule are counted
//!   as late; sends due while [`open::OpenSpec::max_in_flight`] requests are outstanding
//!   are dropped and counted.
//! - [`series`]: a measurement is a series of windows, run until the last ones agree
//!   ([`crate::stats::stability`]), a window limit, or a time budget.
//! - [`cpu`]: the harness's own CPU use during a window, to tell a client-bound result.
//!
//! Every task records into its own [`Recorder`] (an HDR histogram in µs with three
//! significant digits, a bounded reservoir of raw samples for the bootstrap, and the
//! slowest requests), so the hot path takes no lock; recorders are merged when the
//! window ends. One request is one [`contract::Backend::infer`] call.

pub mod clock;
pub mod closed;
pub mod cpu;
pub mod deadline;
pub mod open;
mod record;
pub mod schedule;
pub mod sender;
pub mod series;
pub mod spec;
#[cfg(test)]
pub(crate) mod testing;
pub mod threads;

pub use closed::closed_loop;
pub use open::{open_loop, OpenLoop, OpenSpec, DEFAULT_MAX_IN_FLIGHT};
pub use record::{
    histogram, lag_histogram, Measurement, Recorder, MAX_LATENCY_US, SAMPLE_CAP, SLOWEST_KEPT,
};
pub use spec::{Arrival, Load, Window};

use std::time::Duration;

/// A send that starts later than this after its scheduled time is late.
pub const LATE_AFTER: Duration = Duration::from_millis(1);
