//! The one error type of the contract crate.

/// Everything that can go wrong when opening a backend or running a request.
///
/// Every variant's message is one sentence a user can act on. [`BackendError::kind`]
/// gives a short stable label used to count failed requests by kind.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot run on this machine or in this build.
    #[error("{backend} is unavailable: {reason}; to enable it: {fix}")]
    Unavailable {
        /// Backend name, such as `onnxruntime`.
        backend: String,
        /// Why it cannot run.
        reason: String,
        /// The command or setting that makes it run.
        fix: String,
    },
    /// A model file is missing, unreadable or does not hold what the model needs.
    #[error("cannot load model {model}: {reason}")]
    ModelLoad {
        /// Model name.
        model: String,
        /// What is wrong with the file.
        reason: String,
    },
    /// The request names a model the backend was not opened with.
    #[error("model {0} is not loaded by this backend")]
    UnknownModel(String),
    /// The request's tensors do not fit the model (name, dtype or shape).
    #[error("bad input: {0}")]
    BadInput(String),
    /// The engine itself failed while running the request.
    #[error("engine error: {0}")]
    Engine(String),
    /// The request never got an answer: connection refused, reset, or similar.
    #[error("transport error: {0}")]
    Transport(String),
    /// The request did not finish in time.
    #[error("request timed out after {0} ms")]
    Timeout(u64),
    /// The server answered with an error status.
    #[error("server answered {status}: {message}")]
    Server {
        /// HTTP status code or gRPC status name.
        status: String,
        /// The server's own message.
        message: String,
    },
    /// The server answered something this adapter cannot understand.
    #[error("malformed answer from server: {0}")]
    Protocol(String),
    /// The executor threads of an in-process backend are gone.
    #[error("the backend's worker threads have stopped")]
    WorkersGone,
}

impl BackendError {
    /// A short, stable label for counting failures by kind in results.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::Unavailable { .. } => "unavailable",
            BackendError::ModelLoad { .. } => "model_load",
            BackendError::UnknownModel(_) => "unknown_model",
            BackendError::BadInput(_) => "bad_input",
            BackendError::Engine(_) => "engine",
            BackendError::Transport(_) => "transport",
            BackendError::Timeout(_) => "timeout",
            BackendError::Server { .. } => "server",
            BackendError::Protocol(_) => "protocol",
            BackendError::WorkersGone => "workers_gone",
        }
    }
}
