//! An MLServer started, watched and stopped by the harness.
//!
//! MLServer 1.7.1 comes from PyPI into its own Python environment (`.venv-mlserver`,
//! `requirements-mlserver.txt`, installed by `scripts/setup`): its pins (pydantic,
//! fastapi, grpcio, protobuf) must not disturb `.venv`. MLServer has no ONNX runtime, so
//! the models run in servebench's custom runtime `fixtures/mlserver/servebench_runtime.py`
//! (onnxruntime on the same `model.onnx`). Starting it takes a directory written for
//! this run into the server's private state directory:
//! - `settings.json`: host 127.0.0.1, three free loopback ports (HTTP, gRPC, metrics),
//!   `parallel_workers` = the matched worker count;
//! - one `<model>/model-settings.json` per model: the runtime class, the model file as
//!   `parameters.uri`, the intra-op threads as `parameters.extra.intra_threads`; for a
//!   user's model (`--model-file`) its own file, and the inputs and outputs its graph
//!   declares as the model's metadata. Nothing of it is committed: it is written for
//!   each run from the fixtures and from what the user gave.
//!
//! It is ready when `/v2/health/ready` and every `/v2/models/<m>/ready` answer 200.
//! Its metrics port serves Prometheus text at `/metrics` (per model:
//! `model_infer_request_success_total`, `model_infer_request_failure_total` and the
//! summary `model_infer_request_duration` in seconds), which the harness scrapes around
//! each window. With parallel workers MLServer shares the counters through a
//! `.metrics` directory in its working directory, the server's state directory.
//! Process group, readiness deadline, cancel flag, watchdog and stop-on-drop come from
//! the shared [`support::process`] machinery.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use contract::BackendError;
use fixtures::user::{IoSpec, UserModel};
use fixtures::ModelId;
use serde_json::json;
use support::process::{self, ManagedProcess, Probe, StartError};

/// How long MLServer may take to load every model in every worker.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// MLServer's Python environment: `SERVEBENCH_MLSERVER_VENV`, else
/// `<repository>/.venv-mlserver`.
pub fn venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("SERVEBENCH_MLSERVER_VENV") {
        return PathBuf::from(dir);
    }
    support::pyenv::repository_root().join(".venv-mlserver")
}

/// The directory of servebench's MLServer runtime (`servebench_runtime.py`).
pub fn runtime_dir() -> PathBuf {
    support::pyenv::repository_root().join("fixtures/mlserver")
}

/// What the managed server needs from its environment.
#[derive(Debug, Clone)]
pub struct Install {
    /// The `mlserver` command.
    pub mlserver: PathBuf,
    /// MLServer's version (from its package metadata), such as `1.7.1`.
    pub version: String,
}

impl Install {
    /// Finds MLServer in [`venv`], or says how to install it.
    pub fn find() -> Result<Install, BackendError> {
        let venv = venv();
        let mlserver = venv.join("bin/mlserver");
        if !mlserver.is_file() {
            return Err(BackendError::Unavailable {
                backend: "mlserver".into(),
                reason: format!("MLServer is not installed in {}", venv.display()),
                fix: format!(
                    "{} (it installs mlserver==1.7.1 from requirements-mlserver.txt into \
                     .venv-mlserver), or use a running v2 server with --kserve-url / \
                     --kserve-grpc-url",
                    support::pyenv::SETUP_HINT
                ),
            });
        }
        let version =
            support::pyenv::dist_version(&venv, "mlserver-").unwrap_or_else(|| "?".into());
        Ok(Install { mlserver, version })
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The installed MLServer.
    pub install: Install,
    /// Directory of the generated fixtures (the ONNX exports).
    pub fixtures_dir: PathBuf,
    /// Models to load.
    pub models: Vec<ModelId>,
    /// The user's models to load (`--model-file`), each from its own ONNX file.
    pub user_models: Vec<UserModel>,
    /// `parallel_workers` (the matched worker count).
    pub workers: usize,
    /// onnxruntime intra-op threads per worker.
    pub intra_threads: usize,
    /// Deadline for readiness.
    pub ready_timeout: Duration,
}

/// A running MLServer, stopped with its workers when dropped.
#[derive(Debug)]
pub struct ManagedMlServer {
    process: ManagedProcess,
    http_port: u16,
    grpc_port: u16,
    metrics_port: u16,
}

impl crate::Managed for ManagedMlServer {
    fn pid(&self) -> u32 {
        self.process.pid()
    }
}

/// `settings.json` of a run.
pub fn settings(ports: [u16; 3], workers: usize) -> serde_json::Value {
    json!({
        "debug": false,
        "host": "127.0.0.1",
        "http_port": ports[0],
        "grpc_port": ports[1],
        "metrics_port": ports[2],
        "parallel_workers": workers,
        "load_models_at_startup": true,
        // MLServer's gRPC default is 4 MiB a message, less than a ResNet batch of 8
        // (4.8 MB): the same bound our clients read answers up to.
        "grpc_max_message_length": support::grpc::MAX_ANSWER_BYTES,
    })
}

/// `model-settings.json` of `model` at `uri` with `intra_threads`.
pub fn model_settings(model: ModelId, uri: &Path, intra_threads: usize) -> serde_json::Value {
    json!({
        "name": model.name(),
        "implementation": "servebench_runtime.OnnxRuntime",
        "parameters": {
            "uri": uri,
            "extra": {"intra_threads": intra_threads},
        },
    })
}

/// `model-settings.json` of a user's model `m` (`--model-file`) with `intra_threads`:
/// the same runtime on the user's file, and the inputs and outputs its graph declares
/// as MLServer's model metadata (`-1` for a dynamic dimension), which
/// `/v2/models/<m>` answers with.
pub fn user_model_settings(m: &UserModel, intra_threads: usize) -> serde_json::Value {
    let tensors = |list: &[IoSpec]| {
        list.iter()
            .map(|t| {
                json!({"name": t.name, "datatype": t.dtype.kserve_name(), "shape": t.declared_dims()})
            })
            .collect::<Vec<_>>()
    };
    json!({
        "name": m.name,
        "implementation": "servebench_runtime.OnnxRuntime",
        "inputs": tensors(&m.inputs),
        "outputs": tensors(&m.outputs),
        "parameters": {
            "uri": m.path,
            "extra": {"intra_threads": intra_threads},
        },
    })
}

/// Writes `settings.json` and one `model-settings.json` per model under `dir`.
fn write_repository(dir: &Path, cfg: &ServerConfig, ports: [u16; 3]) -> std::io::Result<()> {
    let write = |path: PathBuf, doc: serde_json::Value| {
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&doc).expect("JSON values serialise"),
        )
    };
    std::fs::create_dir_all(dir)?;
    write(dir.join("settings.json"), settings(ports, cfg.workers))?;
    for &m in &cfg.models {
        let model_dir = dir.join(m.name());
        std::fs::create_dir_all(&model_dir)?;
        let onnx = cfg.fixtures_dir.join(m.name()).join("model.onnx");
        if !onnx.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} is missing", onnx.display()),
            ));
        }
        write(
            model_dir.join("model-settings.json"),
            model_settings(m, &onnx, cfg.intra_threads),
        )?;
    }
    for m in &cfg.user_models {
        let model_dir = dir.join(&m.name);
        std::fs::create_dir_all(&model_dir)?;
        write(
            model_dir.join("model-settings.json"),
            user_model_settings(m, cfg.intra_threads),
        )?;
    }
    Ok(())
}

impl ManagedMlServer {
    /// Writes the run's settings, starts `mlserver start` on three free loopback ports
    /// and waits until the server and every model say ready. A port taken between
    /// choosing and binding it is retried with other ports.
    pub fn start(cfg: &ServerConfig) -> Result<ManagedMlServer, BackendError> {
        process::retry_taken_ports(|| Self::start_once(cfg))
    }

    fn start_once(cfg: &ServerConfig) -> Result<ManagedMlServer, StartError> {
        let other = |reason: String| StartError::Other(failed(reason));
        let ports = process::free_ports(3).map_err(other)?;
        let ports = [ports[0], ports[1], ports[2]];
        let mut repo_error = None;
        let mut process = ManagedProcess::spawn(
            "servebench-mlserver-",
            Command::new(&cfg.install.mlserver),
            |c, state| {
                let repo = state.join("models");
                if let Err(e) = write_repository(&repo, cfg, ports) {
                    repo_error = Some(e.to_string());
                }
                c.arg("start")
                    .arg(&repo)
                    .current_dir(state)
                    .env("PYTHONPATH", runtime_dir())
                    .env("OMP_NUM_THREADS", "1")
                    .env("OPENBLAS_NUM_THREADS", "1")
                    .env("PYTHONUNBUFFERED", "1");
            },
        )
        .map_err(other)?;
        if let Some(e) = repo_error {
            return Err(other(format!("cannot write MLServer's settings: {e}")));
        }
        let paths: Vec<String> = std::iter::once("/v2/health/ready".to_string())
            .chain(cfg.models.iter().map(|m| format!("/v2/models/{m}/ready")))
            .chain(
                cfg.user_models
                    .iter()
                    .map(|m| format!("/v2/models/{}/ready", m.name)),
            )
            .collect();
        let waited = process.wait_ready(cfg.ready_timeout, |p| {
            let log = p.log();
            if log.contains("address already in use") || log.contains("Address already in use") {
                return Probe::Failed(format!(
                    "a port MLServer was given is taken{}",
                    process::quote_log(&summary(&log))
                ));
            }
            if paths
                .iter()
                .all(|path| process::http_get_ok(ports[0], path))
            {
                Probe::Ready
            } else {
                Probe::Waiting
            }
        });
        match waited {
            Ok(()) => Ok(ManagedMlServer {
                process,
                http_port: ports[0],
                grpc_port: ports[1],
                metrics_port: ports[2],
            }),
            Err(e) => Err(e.into_start_error("mlserver", &summary(&process.log()), failed)),
        }
    }

    /// `http://127.0.0.1:<port>` of the HTTP endpoint.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `http://127.0.0.1:<port>` of the gRPC endpoint.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// `http://127.0.0.1:<port>/metrics`: MLServer's Prometheus endpoint (its counters
    /// of successful and failed requests and of time in its data plane, per model).
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// Pids of every process in the server's group (MLServer and its workers), the
    /// server first.
    pub fn group_pids(&self) -> Vec<u32> {
        self.process.group_pids()
    }
}

fn failed(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: "mlserver".into(),
        reason,
        fix: format!(
            "{} (it installs mlserver into .venv-mlserver and generates the fixtures), or use a \
             running v2 server with --kserve-url / --kserve-grpc-url",
            support::pyenv::SETUP_HINT
        ),
    }
}

/// MLServer's error lines (Python's `...Error: ...` and `ERROR` log lines) and the last
/// line, joined.
fn summary(log: &str) -> String {
    process::log_summary(log, 3, |l| l.contains("ERROR") || l.contains("Error:"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::user::Dim;

    #[test]
    fn settings_bind_loopback_and_match_the_workers() {
        let s = settings([1, 2, 3], 4);
        assert_eq!(s["host"], "127.0.0.1");
        assert_eq!(
            (&s["http_port"], &s["grpc_port"], &s["metrics_port"]),
            (&json!(1), &json!(2), &json!(3))
        );
        assert_eq!(s["parallel_workers"], 4);
        let m = model_settings(ModelId::TextCnn, Path::new("/f/text-cnn/model.onnx"), 2);
        assert_eq!(m["name"], "text-cnn");
        assert_eq!(m["implementation"], "servebench_runtime.OnnxRuntime");
        assert_eq!(m["parameters"]["uri"], "/f/text-cnn/model.onnx");
        assert_eq!(m["parameters"]["extra"]["intra_threads"], 2);
    }

    #[test]
    fn a_user_model_gets_its_file_and_declared_tensors() {
        let m = UserModel {
            name: "toy".into(),
            path: "/m/toy.onnx".into(),
            inputs: vec![IoSpec {
                name: "tokens".into(),
                dtype: contract::DType::F16,
                dims: vec![Dim::Dynamic("batch".into()), Dim::Dynamic("seq".into())],
            }],
            outputs: vec![IoSpec {
                name: "next".into(),
                dtype: contract::DType::I64,
                dims: vec![Dim::Dynamic("batch".into()), Dim::Fixed(6)],
            }],
            operators: vec![],
        };
        let s = user_model_settings(&m, 3);
        assert_eq!(s["name"], "toy");
        assert_eq!(s["parameters"]["uri"], "/m/toy.onnx");
        assert_eq!(s["parameters"]["extra"]["intra_threads"], 3);
        assert_eq!(
            s["inputs"],
            json!([{"name": "tokens", "datatype": "FP16", "shape": [-1, -1]}])
        );
        assert_eq!(
            s["outputs"],
            json!([{"name": "next", "datatype": "INT64", "shape": [-1, 6]}])
        );
    }

    #[test]
    fn summary_quotes_errors_and_the_last_line() {
        let log = "INFO start\nValueError: bad model\nINFO more\nshutting down\n";
        assert_eq!(summary(log), "ValueError: bad model | shutting down");
    }
}
