//! Every backend the harness knows, and how to open it.
//!
//! Adding a backend is one entry here plus one cargo feature (see the README's recipe).
//! A backend whose feature is off still has its entry: opening it says it is not
//! compiled in and gives the command that builds it in.

use std::sync::Arc;

use contract::{Backend, BackendError, OpenOptions};

mod options;

pub use options::{BackendOptions, LabelledOptions};

/// An opened backend, or why it could not be opened.
pub type Opened = Result<Arc<dyn Backend>, BackendError>;

/// How to open one backend.
pub struct Entry {
    /// Name in flags and results.
    pub name: &'static str,
    /// Opens the backend with every requested model loaded, reading its own part of the
    /// backend options.
    pub open: fn(&OpenOptions, &BackendOptions) -> Opened,
}

/// The backend kind of a name: `triton-http` for `triton-http@json`.
pub fn backend_kind(name: &str) -> &str {
    name.split_once('@').map_or(name, |(kind, _)| kind)
}

/// Opens the backend `name` (`NAME` or `NAME@LABEL`) with the options every backend
/// reads (`common`) and its own (`options`).
pub fn open(name: &str, common: &OpenOptions, options: &BackendOptions) -> Opened {
    let entry = find(backend_kind(name)).ok_or_else(|| BackendError::Unavailable {
        backend: name.into(),
        reason: "no backend has this name".into(),
        fix: format!("use one of: {}", names().join(", ")),
    })?;
    let torchscript =
        RUNS_TORCHSCRIPT.contains(&entry.name) && !common.torchscript_files.is_empty();
    if !common.model_files.is_empty() && [TFSERVING_REST, TFSERVING_GRPC].contains(&entry.name) {
        return Err(BackendError::Unavailable {
            backend: name.into(),
            reason: "the TF Serving clients send the fixtures' one input `input` and read \
                     `logits`, not a user's signature (--savedmodel only writes \
                     tfserving.models.config into the run's directory)"
                .into(),
            fix: "start TF Serving with that models.config and query it with your own \
                  client; compare the model's ONNX file on the ONNX backends"
                .into(),
        });
    }
    if !common.model_files.is_empty() && !RUNS_ONNX_FILES.contains(&entry.name) && !torchscript {
        return Err(BackendError::Unavailable {
            backend: name.into(),
            reason: "it cannot run a user's ONNX model (--model-file)".into(),
            fix: if RUNS_TORCHSCRIPT.contains(&entry.name) {
                "give the model's TorchScript too (--torchscript NAME.pt)".into()
            } else {
                format!("compare the model on {}", RUNS_ONNX_FILES.join(", "))
            },
        });
    }
    if let Some(e) = crate::precision::unsupported(name, entry.name, common.precision) {
        return Err(e);
    }
    if !common.model_files.is_empty() && common.precision != contract::Precision::Fp32 {
        return Err(BackendError::Unavailable {
            backend: name.into(),
            reason: format!(
                "{} not measured: reduced precisions are made for the fixture models only",
                common.precision
            ),
            fix: "convert your model yourself and give it as another --model-file".into(),
        });
    }
    (entry.open)(common, options)
}

/// The backends that run a user's model from its TorchScript (`--torchscript`).
const RUNS_TORCHSCRIPT: [&str; 3] = [LIBTORCH, TORCHSERVE_REST, TORCHSERVE_GRPC];

/// The backends that run a user's ONNX model (`--model-file`); candle only where
/// candle-onnx has every operator of the graph.
pub const RUNS_ONNX_FILES: [&str; 8] = [
    adapter_candle::NAME,
    adapter_onnxruntime::NAME,
    OPENVINO,
    FLASK,
    TRITON_HTTP,
    TRITON_GRPC,
    KSERVE_HTTP,
    KSERVE_GRPC,
];

/// Name of the Flask/Gunicorn backend, known with its feature on or off.
pub const FLASK: &str = "flask";

/// The known backends, in the order they are compared by default.
pub fn entries() -> Vec<Entry> {
    vec![
        Entry {
            name: adapter_candle::NAME,
            open: |common, _| adapter_candle::open(common),
        },
        Entry {
            name: adapter_onnxruntime::NAME,
            open: |common, o| adapter_onnxruntime::open_with(common, &o.onnxruntime),
        },
        Entry {
            name: OPENVINO,
            open: open_openvino,
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
            name: KSERVE_HTTP,
            open: open_kserve_http,
        },
        Entry {
            name: KSERVE_GRPC,
            open: open_kserve_grpc,
        },
        Entry {
            name: TORCHSERVE_REST,
            open: open_torchserve_rest,
        },
        Entry {
            name: TORCHSERVE_GRPC,
            open: open_torchserve_grpc,
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
fn open_tfserving_rest(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_tfserving::open_rest(common, &o.tfserving)
}

#[cfg(feature = "tfserving")]
fn open_tfserving_grpc(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_tfserving::open_grpc(common, &o.tfserving)
}

#[cfg(not(feature = "tfserving"))]
fn open_tfserving_rest(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(TFSERVING_REST, "tfserving"))
}

#[cfg(not(feature = "tfserving"))]
fn open_tfserving_grpc(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(TFSERVING_GRPC, "tfserving"))
}

/// Name of Triton over HTTP, known with its feature on or off.
pub const TRITON_HTTP: &str = "triton-http";
/// Name of Triton over gRPC, known with its feature on or off.
pub const TRITON_GRPC: &str = "triton-grpc";

#[cfg(feature = "triton")]
fn open_triton_http(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_triton::open_http(common, &o.triton)
}

#[cfg(feature = "triton")]
fn open_triton_grpc(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_triton::open_grpc(common, &o.triton)
}

#[cfg(not(feature = "triton"))]
fn open_triton_http(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(TRITON_HTTP, "triton"))
}

#[cfg(not(feature = "triton"))]
fn open_triton_grpc(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(TRITON_GRPC, "triton"))
}

/// Name of a KServe v2 server (a managed MLServer by default) over HTTP, known with its
/// feature on or off.
pub const KSERVE_HTTP: &str = "kserve-v2-http";
/// Name of a KServe v2 server over gRPC, known with its feature on or off.
pub const KSERVE_GRPC: &str = "kserve-v2-grpc";

#[cfg(feature = "kserve")]
fn open_kserve_http(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_kserve::open_http(common, &o.kserve)
}

#[cfg(feature = "kserve")]
fn open_kserve_grpc(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_kserve::open_grpc(common, &o.kserve)
}

#[cfg(not(feature = "kserve"))]
fn open_kserve_http(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(KSERVE_HTTP, "kserve"))
}

#[cfg(not(feature = "kserve"))]
fn open_kserve_grpc(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(KSERVE_GRPC, "kserve"))
}

/// Name of TorchServe over REST, known with its feature on or off.
pub const TORCHSERVE_REST: &str = "torchserve-rest";
/// Name of TorchServe over gRPC, known with its feature on or off.
pub const TORCHSERVE_GRPC: &str = "torchserve-grpc";

#[cfg(feature = "torchserve")]
fn open_torchserve_rest(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_torchserve::open_rest(common, &o.torchserve)
}

#[cfg(feature = "torchserve")]
fn open_torchserve_grpc(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_torchserve::open_grpc(common, &o.torchserve)
}

#[cfg(not(feature = "torchserve"))]
fn open_torchserve_rest(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(TORCHSERVE_REST, "torchserve"))
}

#[cfg(not(feature = "torchserve"))]
fn open_torchserve_grpc(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(TORCHSERVE_GRPC, "torchserve"))
}

#[cfg(feature = "flask")]
fn open_flask(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_flask::open(common, &o.flask)
}

#[cfg(not(feature = "flask"))]
fn open_flask(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in("flask", "flask"))
}

/// Makes managed servers that are still starting give up and stop (on Ctrl-C): every
/// managed server (Flask, Triton) waits on the shared flag of [`support::process`].
pub fn cancel_starts() {
    support::process::cancel_starts();
}

/// Name of the OpenVINO backend, known with or without its feature.
pub const OPENVINO: &str = "openvino";

#[cfg(feature = "openvino")]
fn open_openvino(common: &OpenOptions, _: &BackendOptions) -> Opened {
    adapter_openvino::open(common)
}

#[cfg(not(feature = "openvino"))]
fn open_openvino(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(OPENVINO, "openvino"))
}

/// Name of the libtorch backend, known with or without its feature.
pub const LIBTORCH: &str = "libtorch";

#[cfg(servebench_libtorch)]
fn open_libtorch(common: &OpenOptions, _: &BackendOptions) -> Opened {
    adapter_libtorch::open(common)
}

#[cfg(not(servebench_libtorch))]
fn open_libtorch(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(libtorch_not_compiled_in())
}

/// What `open` says for libtorch in a harness built without it: scripts/setup installs
/// torch and writes `.cargo/config.toml` (scripts/libtorch-config), after which every
/// cargo build of the harness links libtorch.
pub fn libtorch_not_compiled_in() -> BackendError {
    BackendError::Unavailable {
        backend: LIBTORCH.into(),
        reason: "not compiled in".into(),
        fix: "run scripts/setup (it installs torch into .venv and writes .cargo/config.toml, \
              which builds libtorch into every cargo build), then rebuild with \
              `cargo run --release -p harness -- compare`"
            .into(),
    }
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
pub fn not_compiled_in(backend: &str, feature: &str) -> BackendError {
    BackendError::Unavailable {
        backend: backend.into(),
        reason: "not compiled in".into(),
        fix: format!("build with `cargo run --release -p harness --features {feature} -- compare`"),
    }
}

#[cfg(test)]
mod tests;
