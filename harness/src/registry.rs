//! Every backend the harness knows, and how to open it.
//!
//! Adding a backend is one entry here plus one cargo feature (see the README's recipe).
//! A backend whose feature is off still has its entry: opening it says it is not
//! compiled in and gives the command that builds it in.

use std::sync::Arc;

use contract::{Backend, BackendError, OpenOptions};

/// How to open one backend.
pub struct Entry {
    /// Name in flags and results.
    pub name: &'static str,
    /// Opens the backend with every requested model loaded.
    pub open: fn(&OpenOptions) -> Result<Arc<dyn Backend>, BackendError>,
}

/// Name of the Flask/Gunicorn backend, known with its feature on or off.
pub const FLASK: &str = "flask";

/// The known backends, in the order they are compared by default.
pub fn entries() -> Vec<Entry> {
    vec![
        Entry {
            name: adapter_candle::NAME,
            open: adapter_candle::open,
        },
        Entry {
            name: adapter_onnxruntime::NAME,
            open: adapter_onnxruntime::open,
        },
        Entry {
            name: FLASK,
            open: open_flask,
        },
    ]
}

#[cfg(feature = "flask")]
fn open_flask(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    adapter_flask::open(opts)
}

#[cfg(not(feature = "flask"))]
fn open_flask(_: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    Err(not_compiled_in("flask", "flask"))
}

/// Makes managed servers that are still starting give up and stop (on Ctrl-C).
pub fn cancel_starts() {
    #[cfg(feature = "flask")]
    adapter_flask::server::cancel_starts();
}

/// Names of the known backends.
pub fn names() -> Vec<&'static str> {
    entries().iter().map(|e| e.name).collect()
}

/// The entry named `name`.
pub fn find(name: &str) -> Option<Entry> {
    entries().into_iter().find(|e| e.name == name)
}

/// What `open` says for a backend whose cargo feature is off.
#[allow(dead_code)]
pub(crate) fn not_compiled_in(backend: &str, feature: &str) -> BackendError {
    BackendError::Unavailable {
        backend: backend.into(),
        reason: "not compiled in".into(),
        fix: format!("build with `cargo run --release -p harness --features {feature} -- compare`"),
    }
}
