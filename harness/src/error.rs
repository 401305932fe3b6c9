//! The harness's one error type.

use contract::BackendError;

/// Why a harness command failed. Each message is one sentence a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A flag or config file value is not acceptable.
    #[error("{0}")]
    Config(String),
    /// The fixtures could not be generated or read.
    #[error("{0}")]
    Fixtures(String),
    /// A backend could not be opened or answered badly.
    #[error("{backend}: {source}")]
    Backend {
        /// Backend name.
        backend: String,
        /// What went wrong.
        source: BackendError,
    },
    /// A backend disagreed with the reference under `--strict`.
    #[error("{0}")]
    Disagreement(String),
    /// Nothing could be measured.
    #[error("{0}")]
    NothingToMeasure(String),
    /// Results could not be written.
    #[error("cannot write {path}: {reason}")]
    Output {
        /// File or directory.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The run was stopped by a signal (Ctrl-C, `timeout`, a closed terminal).
    #[error("interrupted by {0}; no results were written")]
    Interrupted(Signal),
    /// `harness diff` found cells slower beyond its threshold.
    #[error("{0}")]
    Regression(String),
}

/// A signal that stops a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    Int,
    /// SIGTERM: `timeout`, CI cancellation, `docker stop`.
    Term,
    /// SIGHUP: the terminal closed.
    Hup,
}

impl Signal {
    /// Its number (the exit status is 128 + this).
    pub fn number(self) -> u8 {
        match self {
            Signal::Int => 2,
            Signal::Term => 15,
            Signal::Hup => 1,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
            Signal::Hup => "SIGHUP",
        })
    }
}

/// Where a run learns that it was asked to stop: the first stop signal, once it came.
pub type Stop = tokio::sync::watch::Receiver<Option<Signal>>;

/// Resolves with the signal once one came on `stop`; never if none ever comes.
pub async fn stopped(stop: &mut Stop) -> Signal {
    loop {
        if let Some(s) = *stop.borrow_and_update() {
            return s;
        }
        if stop.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}
