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
    /// `harness diff` found cells slower beyond its threshold.
    #[error("{0}")]
    Regression(String),
    /// The user pressed Ctrl-C.
    #[error("interrupted; no results were written")]
    Interrupted,
}
