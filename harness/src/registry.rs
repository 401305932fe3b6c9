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
            name: LIBTORCH,
            open: open_libtorch,
        },
        Entry {
            name: FLASK,
            open: open_flask,
        },
        Entry {
            name: TRITON_HTTP,
            open: open_triton_http,
        },
        Entry {
            name: TRITON_GRPC,
            open: open_triton_grpc,
        },
        Entry {
            name: TFSERVING_REST,
            open: open_tfserving_rest,
        },
        Entry {
            name: TFSERVING_GRPC,
            open: open_tfserving_grpc,
        },
    ]
}

/// Name of TF Serving over REST, known with its feature on or off.
pub const TFSERVING_REST: &str = "tfserving-rest";
/// Name of TF Serving over gRPC, known with its feature on or off.
pub const TFSERVING_GRPC: &str = "tfserving-grpc";

#[cfg(feature = "tfserving")]
fn open_tfserving_rest(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    adapter_tfserving::open_rest(opts)
}

#[cfg(feature = "tfserving")]
fn open_tfserving_grpc(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    adapter_tfserving::open_grpc(opts)
}

#[cfg(not(feature = "tfserving"))]
fn open_tfserving_rest(_: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    Err(not_compiled_in(TFSERVING_REST, "tfserving"))
}

#[cfg(not(feature = "tfserving"))]
fn open_tfserving_grpc(_: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    Err(not_compiled_in(TFSERVING_GRPC, "tfserving"))
}

/// Name of Triton over HTTP, known with its feature on or off.
pub const TRITON_HTTP: &str = "triton-http";
/// Name of Triton over gRPC, known with its feature on or off.
pub const TRITON_GRPC: &str = "triton-grpc";

#[cfg(feature = "triton")]
fn open_triton_http(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    adapter_triton::open_http(opts)
}

#[cfg(feature = "triton")]
fn open_triton_grpc(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    adapter_triton::open_grpc(opts)
}

#[cfg(not(feature = "triton"))]
fn open_triton_http(_: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    Err(not_compiled_in(TRITON_HTTP, "triton"))
}

#[cfg(not(feature = "triton"))]
fn open_triton_grpc(_: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    Err(not_compiled_in(TRITON_GRPC, "triton"))
}

/// Passes the run's backend-specific settings to the adapters that read them (Triton's
/// HTTP body encoding and dynamic batching, TF Serving's REST format), before any
/// backend is opened.
pub fn configure(cfg: &crate::config::RunConfig) {
    #[cfg(feature = "triton")]
    adapter_triton::configure(adapter_triton::Settings {
        http_body: if cfg.triton_http_body == "json" {
            adapter_triton::HttpBody::Json
        } else {
            adapter_triton::HttpBody::Binary
        },
        dynamic_batching: cfg.dynamic_batching,
    });
    #[cfg(feature = "tfserving")]
    adapter_tfserving::configure(adapter_tfserving::Settings {
        rest_format: if cfg.tfserving_format == "columnar" {
            adapter_tfserving::RestFormat::Columnar
        } else {
            adapter_tfserving::RestFormat::Row
        },
    });
    #[cfg(not(any(feature = "triton", feature = "tfserving")))]
    let _ = cfg;
}

#[cfg(feature = "flask")]
fn open_flask(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    adapter_flask::open(opts)
}

#[cfg(not(feature = "flask"))]
fn open_flask(_: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    Err(not_compiled_in("flask", "flask"))
}

/// Makes managed servers that are still starting give up and stop (on Ctrl-C): every
/// managed server (Flask, Triton) waits on the shared flag of [`contract::process`].
pub fn cancel_starts() {
    contract::process::cancel_starts();
}

/// Name of the libtorch backend, known with or without its feature.
pub const LIBTORCH: &str = "libtorch";

#[cfg(feature = "libtorch")]
fn open_libtorch(opts: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    adapter_libtorch::open(opts)
}

#[cfg(not(feature = "libtorch"))]
fn open_libtorch(_: &OpenOptions) -> Result<Arc<dyn Backend>, BackendError> {
    Err(not_compiled_in_with_env(
        LIBTORCH,
        "libtorch",
        LIBTORCH_BUILD_ENV,
    ))
}

/// What building with the `libtorch` feature needs in the environment: tch's build finds
/// libtorch in the torch wheel of `.venv` (which `scripts/setup` installs).
pub const LIBTORCH_BUILD_ENV: &str = "LIBTORCH_USE_PYTORCH=1 PATH=\"$PWD/.venv/bin:$PATH\" ";

/// Names of the known backends.
pub fn names() -> Vec<&'static str> {
    entries().iter().map(|e| e.name).collect()
}

/// The entry named `name`.
pub fn find(name: &str) -> Option<Entry> {
    entries().into_iter().find(|e| e.name == name)
}

/// What `open` says for a backend whose cargo feature is off.
pub fn not_compiled_in(backend: &str, feature: &str) -> BackendError {
    not_compiled_in_with_env(backend, feature, "")
}

/// [`not_compiled_in`] for a feature whose build needs environment variables `env`
/// (written as a shell prefix, such as `A=1 `).
pub fn not_compiled_in_with_env(backend: &str, feature: &str, env: &str) -> BackendError {
    BackendError::Unavailable {
        backend: backend.into(),
        reason: "not compiled in".into(),
        fix: format!(
            "build with `{env}cargo run --release -p harness --features {feature} -- compare`"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_without_its_feature_says_how_to_build_it_in() {
        let e = not_compiled_in("tensorrt", "tensorrt");
        assert_eq!(e.kind(), "unavailable");
        assert_eq!(
            e.to_string(),
            "tensorrt is unavailable: not compiled in; to enable it: build with \
             `cargo run --release -p harness --features tensorrt -- compare`"
        );
        let e = not_compiled_in_with_env(LIBTORCH, "libtorch", LIBTORCH_BUILD_ENV);
        assert_eq!(
            e.to_string(),
            "libtorch is unavailable: not compiled in; to enable it: build with \
             `LIBTORCH_USE_PYTORCH=1 PATH=\"$PWD/.venv/bin:$PATH\" \
             cargo run --release -p harness --features libtorch -- compare`"
        );
    }

    #[test]
    fn libtorch_is_registered_with_or_without_its_feature() {
        assert!(names().contains(&LIBTORCH));
        let opts = OpenOptions {
            models: vec![],
            fixtures_dir: fixtures::default_dir(),
            workers: 1,
            intra_threads: 1,
            device: contract::Device::Cpu,
            server_urls: Default::default(),
        };
        let opened = (find(LIBTORCH).unwrap().open)(&opts);
        if cfg!(feature = "libtorch") {
            let b = opened.unwrap();
            assert!(
                b.describe().engine.starts_with("libtorch 2.13.0"),
                "{:?}",
                b.describe()
            );
        } else {
            let e = opened.err().unwrap().to_string();
            assert!(
                e.contains("not compiled in") && e.contains("--features libtorch"),
                "{e}"
            );
        }
    }
}
