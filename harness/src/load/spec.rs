//! What load a point is measured under (closed loop at a concurrency, or open loop at a
//! request rate with constant or Poisson arrivals), and when a measurement window ends.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How sends are spaced in an open loop.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced, `1 / rate` apart.
    Constant,
    /// Exponentially distributed gaps of mean `1 / rate` (a Poisson process).
    Poisson,
}

impl std::fmt::Display for Arrival {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Arrival::Constant => "constant",
            Arrival::Poisson => "poisson",
        })
    }
}

/// One load level of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Load {
    /// `concurrency` requests always in flight.
    Closed {
        /// Requests in flight.
        concurrency: usize,
    },
    /// Sends scheduled at `request_rate` per second, whatever the answers do.
    Open {
        /// Scheduled sends per second.
        request_rate: f64,
        /// Spacing of the sends.
        arrival: Arrival,
    },
}

impl Load {
    /// Short label for tables: `c=2`, `50/s poisson`.
    pub fn label(&self) -> String {
        match self {
            Load::Closed { concurrency } => format!("c={concurrency}"),
            Load::Open {
                request_rate,
                arrival,
            } => format!("{request_rate}/s {arrival}"),
        }
    }

    /// The concurrency of a closed loop.
    pub fn concurrency(&self) -> Option<usize> {
        match self {
            Load::Closed { concurrency } => Some(*concurrency),
            Load::Open { .. } => None,
        }
    }

    /// The request rate of an open loop.
    pub fn request_rate(&self) -> Option<f64> {
        match self {
            Load::Closed { .. } => None,
            Load::Open { request_rate, .. } => Some(*request_rate),
        }
    }
}

/// When a measurement window ends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    /// After this many seconds, but not before `min_requests` requests finished.
    Duration {
        /// Length in seconds.
        seconds: f64,
        /// Floor on the number of requests.
        min_requests: u64,
    },
    /// After exactly this many requests.
    Requests(u64),
}
