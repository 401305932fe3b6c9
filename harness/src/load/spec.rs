//! What load a point is measured under: closed loop at a concurrency, or open loop at a
//! request rate with constant or Poisson arrivals.

use serde::{Deserialize, Serialize};

/// How sends are spaced in an open loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced, `1 / rate` apart.
    Constant,
    /// Exponentially distributed gaps of mean `1 / rate` (a Poisson process).
    Poisson,
}

impl std::str::FromStr for Arrival {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "constant" => Ok(Arrival::Constant),
            "poisson" => Ok(Arrival::Poisson),
            other => Err(format!(
                "--arrival {other:?} is not valid; use constant or poisson"
            )),
        }
    }
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
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
