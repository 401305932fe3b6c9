//! Every backend the harness knows, and how to open it.
//!
//! Adding a backend is one entry here plus one cargo feature (see the README's recipe).
//! A backend whose feature is off still has its entry: opening it says it is not
//! compiled in and gives the command that builds it in.

use std::sync::Arc;

use contract::{Backend, BackendError, OpenOptions};
use serde::{Deserialize, Serialize};

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

/// What each server backend reads beyond [`OpenOptions`]: one typed options struct per
/// adapter crate, present when its cargo feature is on. As flags (`clap::Args`) it is
/// every adapter's flags, flattened; in a file, one table per adapter (`[triton]`, ...).
/// Two labels of one backend (`triton-http@a`, `triton-http@b`) may be opened with
/// different `BackendOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct BackendOptions {
    /// `flask`.
    #[cfg(feature = "flask")]
    #[command(flatten)]
    pub flask: adapter_flask::Options,
    /// `triton-http` and `triton-grpc`.
    #[cfg(feature = "triton")]
    #[command(flatten)]
    pub triton: adapter_triton::Options,
    /// `kserve-v2-http` and `kserve-v2-grpc`.
    #[cfg(feature = "kserve")]
    #[command(flatten)]
    pub kserve: adapter_kserve::Options,
    /// `torchserve-rest`.
    #[cfg(feature = "torchserve")]
    #[command(flatten)]
    pub torchserve: adapter_torchserve::Options,
    /// `tfserving-rest` and `tfserving-grpc`.
    #[cfg(feature = "tfserving")]
    #[command(flatten)]
    pub tfserving: adapter_tfserving::Options,
}

impl BackendOptions {
    /// The part of these options that backend `name` (`NAME` or `NAME@LABEL`) reads, as
    /// it is recorded in `results.json`; `None` for a backend that reads none (the
    /// in-process engines).
    pub fn part(&self, name: &str) -> Option<serde_json::Value> {
        let part = match backend_kind(name) {
            #[cfg(feature = "flask")]
            FLASK => serde_json::to_value(&self.flask),
            #[cfg(feature = "triton")]
            TRITON_HTTP | TRITON_GRPC => serde_json::to_value(&self.triton),
            #[cfg(feature = "kserve")]
            KSERVE_HTTP | KSERVE_GRPC => serde_json::to_value(&self.kserve),
            #[cfg(feature = "torchserve")]
            TORCHSERVE_REST => serde_json::to_value(&self.torchserve),
            #[cfg(feature = "tfserving")]
            TFSERVING_REST | TFSERVING_GRPC => serde_json::to_value(&self.tfserving),
            _ => return None,
        };
        part.ok()
    }
}

/// The options every backend of a run is opened with: one set for all, and a set of its
/// own for each backend name given one (a `["triton-http@json"]` table in the config
/// file), so that two labels of one backend can be compared with different options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelledOptions {
    /// What every backend without a set of its own reads.
    pub common: BackendOptions,
    /// Sets of their own, by backend name (`NAME` or `NAME@LABEL`).
    pub own: std::collections::BTreeMap<String, BackendOptions>,
}

impl LabelledOptions {
    /// The options backend `name` is opened with.
    pub fn get(&self, name: &str) -> &BackendOptions {
        self.own.get(name).unwrap_or(&self.common)
    }
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
    if !common.model_files.is_empty() && !RUNS_ONNX_FILES.contains(&entry.name) {
        return Err(BackendError::Unavailable {
            backend: name.into(),
            reason: "it cannot run a user's ONNX model (--model-file)".into(),
            fix: format!("compare the model on {}", RUNS_ONNX_FILES.join(", ")),
        });
    }
    (entry.open)(common, options)
}

/// The backends that run a user's ONNX model (`--model-file`); candle only where
/// candle-onnx has every operator of the graph. (OpenVINO's adapter runs the fixtures
/// only, so far.)
pub const RUNS_ONNX_FILES: [&str; 5] = [
    adapter_candle::NAME,
    adapter_onnxruntime::NAME,
    FLASK,
    TRITON_HTTP,
    TRITON_GRPC,
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
            open: |common, _| adapter_onnxruntime::open(common),
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

#[cfg(feature = "torchserve")]
fn open_torchserve_rest(common: &OpenOptions, o: &BackendOptions) -> Opened {
    adapter_torchserve::open(common, &o.torchserve)
}

#[cfg(not(feature = "torchserve"))]
fn open_torchserve_rest(_: &OpenOptions, _: &BackendOptions) -> Opened {
    Err(not_compiled_in(TORCHSERVE_REST, "torchserve"))
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
        let e = libtorch_not_compiled_in().to_string();
        assert!(
            e.starts_with(
                "libtorch is unavailable: not compiled in; to enable it: run scripts/setup"
            ) && e.contains(".cargo/config.toml"),
            "{e}"
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
            model_files: Default::default(),
        };
        let opened = open(LIBTORCH, &opts, &BackendOptions::default());
        if cfg!(servebench_libtorch) {
            let b = opened.unwrap();
            assert!(
                b.describe().engine.starts_with("libtorch 2.13.0"),
                "{:?}",
                b.describe()
            );
        } else {
            let e = opened.err().unwrap().to_string();
            assert!(
                e.contains("not compiled in") && e.contains("run scripts/setup"),
                "{e}"
            );
        }
    }

    fn common() -> OpenOptions {
        OpenOptions {
            models: vec!["text-cnn".into()],
            fixtures_dir: fixtures::default_dir(),
            workers: 1,
            intra_threads: 1,
            device: contract::Device::Cpu,
            model_files: Default::default(),
        }
    }

    #[test]
    fn an_unknown_name_says_which_names_exist() {
        let e = open("tensorrt@a", &common(), &BackendOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("tensorrt@a") && e.contains("candle, onnxruntime"),
            "{e}"
        );
    }

    #[cfg(all(feature = "flask", feature = "triton", feature = "tfserving"))]
    #[test]
    fn backend_options_parse_from_flags_and_files() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            options: BackendOptions,
        }
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "x",
            "--triton-url",
            "http://127.0.0.1:9000/",
            "--triton-http-body",
            "json",
            "--dynamic-batching",
            "--tfserving-format",
            "columnar",
            "--flask-url",
            "http://127.0.0.1:8000",
        ])
        .unwrap();
        let o = cli.options;
        assert_eq!(o.triton.url.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(o.triton.http_body, adapter_triton::HttpBody::Json);
        assert!(o.triton.dynamic_batching);
        assert_eq!(o.tfserving.format, adapter_tfserving::RestFormat::Columnar);
        assert_eq!(o.flask.url.as_deref(), Some("http://127.0.0.1:8000"));
        let defaults = Cli::try_parse_from(["x"]).unwrap().options;
        assert_eq!(defaults, BackendOptions::default());
        assert_eq!(defaults.triton.http_body, adapter_triton::HttpBody::Binary);

        let e = Cli::try_parse_from(["x", "--triton-grpc-url", "127.0.0.1:8001"])
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("--triton-grpc-url") && e.contains("http://127.0.0.1:8000"),
            "{e}"
        );
        assert!(Cli::try_parse_from(["x", "--triton-http-body", "xml"]).is_err());

        let json = serde_json::to_string(&o).unwrap();
        assert_eq!(serde_json::from_str::<BackendOptions>(&json).unwrap(), o);
        let file: BackendOptions =
            toml::from_str("[triton]\nhttp_body = \"json\"\n[tfserving]\nformat = \"row\"\n")
                .unwrap();
        assert_eq!(file.triton.http_body, adapter_triton::HttpBody::Json);
        assert!(toml::from_str::<BackendOptions>("[triton]\nbody = \"json\"\n").is_err());
    }

    /// Two labels of one server backend, opened with different options, keep them
    /// (opening with a URL connects to nothing yet).
    #[cfg(feature = "triton")]
    #[test]
    fn two_labels_of_one_backend_carry_their_own_options() {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _in_runtime = rt.enter();
        let with = |url: &str, body| BackendOptions {
            triton: adapter_triton::Options {
                url: Some(url.into()),
                grpc_url: Some(url.into()),
                http_body: body,
                dynamic_batching: false,
                metrics_url: None,
            },
            ..BackendOptions::default()
        };
        let a = with("http://127.0.0.1:1", adapter_triton::HttpBody::Json);
        let b = with("http://127.0.0.1:2", adapter_triton::HttpBody::Binary);
        for kind in [TRITON_HTTP, TRITON_GRPC] {
            let da = open(&format!("{kind}@a"), &common(), &a)
                .unwrap()
                .describe();
            let db = open(&format!("{kind}@b"), &common(), &b)
                .unwrap()
                .describe();
            assert_eq!(da.details["url"], "http://127.0.0.1:1");
            assert_eq!(db.details["url"], "http://127.0.0.1:2");
            assert_eq!(da.models, ["text-cnn"]);
            if kind == TRITON_HTTP {
                assert_eq!(da.details["http_body"], "json");
                assert_eq!(db.details["http_body"], "binary");
            }
        }
    }
}
