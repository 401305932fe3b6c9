//! A TorchServe started, watched and stopped by the harness.
//!
//! TorchServe 0.12.0 (`torchserve`, `torch-model-archiver`, `pyyaml` from
//! `requirements-torch.txt`) lives in the project's `.venv` beside the torch wheel the
//! libtorch backend already needs (so its 4.7 GB are not installed twice), with Java 17
//! from Debian's `openjdk-17-jre-headless`. Starting it takes, in the server's private
//! state directory:
//! - a **model store** with one unarchived model directory per model (TorchServe's
//!   `no-archive` layout, so nothing is zipped at start): `MAR-INF/MANIFEST.json`,
//!   the fixtures' TorchScript `model.pt` (written by
//!   `fixtures/torchserve/export_torchscript.py`) and servebench's `handler.py`; a
//!   user's model (`--torchscript`) gets the user's file as `model.pt` and a
//!   `servebench.json` naming its inputs and outputs ([`model_description`]);
//! - a **`config.properties`** binding the inference, management, metrics and both gRPC
//!   addresses to 127.0.0.1 on free ports, token authorisation off,
//!   `default_workers_per_model` = the matched worker count, and message sizes up to
//!   the bound our clients read answers to;
//! - `TMPDIR` and the working directory in the state directory, so its pid file and
//!   `logs/` stay out of the working tree and apart from any other TorchServe.
//!
//! It is ready when `GET /ping` says Healthy **and** the management API lists every
//! model with as many READY workers as asked (ping answers before the workers are up).
//! Stopping signals the whole process group (launcher, Java and the Python workers):
//! killing only the launcher would leave Java running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use contract::BackendError;
use fixtures::user::UserModel;
use fixtures::ModelId;
use serde_json::{json, Value};
use support::process::{self, ManagedProcess, Probe, StartError};

/// How long TorchServe may take to start Java and every model's workers.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// The environment TorchServe is installed in: `SERVEBENCH_TORCHSERVE_VENV`, else the
/// project's `.venv`.
pub fn venv() -> PathBuf {
    std::env::var_os("SERVEBENCH_TORCHSERVE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(support::pyenv::venv)
}

/// The fixtures' TorchScript of `model`: `<fixtures>/torchserve/<model>/model.pt`.
pub fn torchscript(fixtures_dir: &Path, model: ModelId) -> PathBuf {
    fixtures_dir
        .join("torchserve")
        .join(model.name())
        .join("model.pt")
}

/// servebench's handler, `fixtures/torchserve/handler.py`.
pub fn handler() -> PathBuf {
    support::pyenv::repository_root().join("fixtures/torchserve/handler.py")
}

/// What the managed server needs from its environment.
#[derive(Debug, Clone)]
pub struct Install {
    /// The environment's `bin` directory (`torchserve`, and the `python` of its workers).
    pub bin: PathBuf,
    /// TorchServe's version, such as `0.12.0`.
    pub version: String,
}

impl Install {
    /// Finds TorchServe and Java, or says how to install them.
    pub fn find() -> Result<Install, BackendError> {
        let venv = venv();
        let bin = venv.join("bin");
        if !bin.join("torchserve").is_file() {
            return Err(unavailable(format!(
                "TorchServe is not installed in {}",
                venv.display()
            )));
        }
        let java = Command::new("java")
            .arg("-version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !java {
            return Err(unavailable(
                "TorchServe needs Java 17 (`java` is not on PATH)".into(),
            ));
        }
        let version =
            support::pyenv::dist_version(&venv, "torchserve-").unwrap_or_else(|| "?".into());
        Ok(Install { bin, version })
    }
}

fn unavailable(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: "torchserve".into(),
        reason,
        fix: format!(
            "{} (it installs torchserve==0.12.0 from requirements-torch.txt into .venv, \
             openjdk-17-jre-headless from Debian, and exports the TorchScript), or use a \
             running TorchServe with --torchserve-url",
            support::pyenv::SETUP_HINT
        ),
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The installed TorchServe.
    pub install: Install,
    /// Directory of the generated fixtures (`torchserve/<model>/model.pt`).
    pub fixtures_dir: PathBuf,
    /// Models to load.
    pub models: Vec<ModelId>,
    /// The user's models to load, each with its TorchScript file (`--torchscript`).
    pub user_models: Vec<(UserModel, PathBuf)>,
    /// Workers per model (the matched worker count).
    pub workers: usize,
    /// torch intra-op threads per worker.
    pub intra_threads: usize,
    /// Deadline for readiness.
    pub ready_timeout: Duration,
}

/// A running TorchServe, stopped with Java and its workers when dropped.
#[derive(Debug)]
pub struct ManagedTorchServe {
    process: ManagedProcess,
    inference_port: u16,
    grpc_port: u16,
}

/// `config.properties` for ports `[inference, management, metrics, grpc inference, grpc
/// management]`, `workers` per model and the model `store`. Requests and answers (REST
/// and gRPC) may be as large as our clients read answers: TorchServe's default, 6.5 MB,
/// refuses a ResNet batch of 32 (19 MB).
pub fn config_properties(ports: [u16; 5], workers: usize, store: &Path) -> String {
    format!(
        "inference_address=http://127.0.0.1:{}\n\
         management_address=http://127.0.0.1:{}\n\
         metrics_address=http://127.0.0.1:{}\n\
         grpc_inference_address=127.0.0.1\n\
         grpc_management_address=127.0.0.1\n\
         grpc_inference_port={}\n\
         grpc_management_port={}\n\
         disable_token_authorization=true\n\
         enable_envvars_config=false\n\
         install_py_dep_per_model=false\n\
         default_workers_per_model={workers}\n\
         max_request_size={max}\n\
         max_response_size={max}\n\
         model_store={}\n",
        ports[0],
        ports[1],
        ports[2],
        ports[3],
        ports[4],
        store.display(),
        max = support::grpc::MAX_ANSWER_BYTES,
    )
}

/// `MAR-INF/MANIFEST.json` of an unarchived model directory.
pub fn manifest(model: &str, version: &str) -> Value {
    json!({
        "runtime": "python",
        "model": {
            "modelName": model,
            "serializedFile": "model.pt",
            "handler": "handler.py",
            "modelVersion": "1.0",
        },
        "archiverVersion": version,
    })
}

/// `servebench.json` of a user's model: the inputs (the request frame's tensors, in
/// this order) and outputs (the answer's) its ONNX file declares, each with its
/// datatype and dimensions (`-1`: dynamic), which the handler checks requests against
/// and names its answers by.
pub fn model_description(m: &UserModel) -> Value {
    let tensors = |list: &[fixtures::user::IoSpec]| {
        list.iter()
            .map(|t| {
                json!({"name": t.name, "datatype": t.dtype.kserve_name(), "dims": t.declared_dims()})
            })
            .collect::<Vec<_>>()
    };
    json!({"inputs": tensors(&m.inputs), "outputs": tensors(&m.outputs)})
}

/// Writes one unarchived model directory per model (the fixtures' and the user's)
/// under `store`.
fn write_store(store: &Path, cfg: &ServerConfig) -> std::io::Result<()> {
    let json = |doc: &Value| serde_json::to_vec_pretty(doc).expect("JSON values serialise");
    let write_dir = |name: &str, script: &Path| -> std::io::Result<PathBuf> {
        let dir = store.join(name);
        std::fs::create_dir_all(dir.join("MAR-INF"))?;
        std::os::unix::fs::symlink(std::path::absolute(script)?, dir.join("model.pt"))?;
        std::fs::copy(handler(), dir.join("handler.py"))?;
        let doc = manifest(name, &cfg.install.version);
        std::fs::write(dir.join("MAR-INF/MANIFEST.json"), json(&doc))?;
        Ok(dir)
    };
    for &m in &cfg.models {
        let script = torchscript(&cfg.fixtures_dir, m);
        if !script.is_file() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "{} is missing (fixtures/torchserve/export_torchscript.py writes it)",
                    script.display()
                ),
            ));
        }
        write_dir(m.name(), &script)?;
    }
    for (m, script) in &cfg.user_models {
        let dir = write_dir(&m.name, script)?;
        std::fs::write(dir.join("servebench.json"), json(&model_description(m)))?;
    }
    Ok(())
}

/// The names of every model the server loads: the fixtures', then the user's.
fn model_names(cfg: &ServerConfig) -> Vec<String> {
    cfg.models
        .iter()
        .map(|m| m.name().to_string())
        .chain(cfg.user_models.iter().map(|(m, _)| m.name.clone()))
        .collect()
}

/// True when the management API's description of a model lists at least `workers`
/// workers, all READY.
pub fn workers_ready(description: &str, workers: usize) -> bool {
    let Ok(Value::Array(models)) = serde_json::from_str::<Value>(description) else {
        return false;
    };
    models.iter().any(|m| {
        let Some(list) = m["workers"].as_array() else {
            return false;
        };
        list.len() >= workers && list.iter().all(|w| w["status"] == "READY")
    })
}

impl ManagedTorchServe {
    /// Writes the run's model store and configuration, starts TorchServe on free
    /// loopback ports and waits until every model has its READY workers.
    pub fn start(cfg: &ServerConfig) -> Result<ManagedTorchServe, BackendError> {
        process::retry_taken_ports(|| Self::start_once(cfg))
    }

    fn start_once(cfg: &ServerConfig) -> Result<ManagedTorchServe, StartError> {
        let other = |reason: String| StartError::Other(failed(reason));
        let ports = process::free_ports(5).map_err(other)?;
        let ports = [ports[0], ports[1], ports[2], ports[3], ports[4]];
        let mut setup_error = None;
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut process = ManagedProcess::spawn(
            "servebench-torchserve-",
            Command::new(cfg.install.bin.join("torchserve")),
            |c, state| {
                let store = state.join("store");
                let config = state.join("config.properties");
                let written = std::fs::create_dir_all(&store)
                    .and_then(|()| write_store(&store, cfg))
                    .and_then(|()| {
                        std::fs::write(&config, config_properties(ports, cfg.workers, &store))
                    });
                if let Err(e) = written {
                    setup_error = Some(e.to_string());
                }
                let models: Vec<String> = model_names(cfg)
                    .iter()
                    .map(|m| format!("{m}={m}"))
                    .collect();
                // `harness backends` opens with no models: start TorchServe bare.
                if !models.is_empty() {
                    c.arg("--models").args(models);
                }
                let mut search = vec![cfg.install.bin.clone()];
                search.extend(std::env::split_paths(&path));
                c.args(["--start", "--foreground", "--ncs", "--model-store"])
                    .arg(&store)
                    .arg("--ts-config")
                    .arg(&config)
                    .current_dir(state)
                    .env("TMPDIR", state)
                    .env("LOG_LOCATION", state.join("logs"))
                    .env("METRICS_LOCATION", state.join("logs"))
                    .env("PATH", std::env::join_paths(search).unwrap_or_default())
                    .env("SERVEBENCH_INTRA_THREADS", cfg.intra_threads.to_string())
                    .env("OMP_NUM_THREADS", cfg.intra_threads.to_string())
                    // torch's OpenMP threads sleep at a barrier instead of spinning: with
                    // 2 intra-op threads on 2 cores, spinning ones took the CPU TorchServe's
                    // Java frontend needed to pass requests and answers (text-CNN batch 1:
                    // p99 255 ms, 38 req/s; passive: p99 36 ms, 110 req/s).
                    .env("OMP_WAIT_POLICY", "PASSIVE")
                    .env("PYTHONUNBUFFERED", "1");
            },
        )
        .map_err(other)?;
        if let Some(e) = setup_error {
            return Err(other(format!("cannot write TorchServe's model store: {e}")));
        }
        let waited = process.wait_ready(cfg.ready_timeout, |p| {
            let log = p.log();
            if log.contains("Address already in use") {
                return Probe::Failed(format!(
                    "a port TorchServe was given is taken{}",
                    process::quote_log(&summary(&log))
                ));
            }
            let healthy =
                process::http_get_body(ports[0], "/ping").is_some_and(|b| b.contains("Healthy"));
            let all_ready = healthy
                && model_names(cfg).iter().all(|m| {
                    process::http_get_body(ports[1], &format!("/models/{m}"))
                        .is_some_and(|b| workers_ready(&b, cfg.workers))
                });
            if all_ready {
                Probe::Ready
            } else {
                Probe::Waiting
            }
        });
        match waited {
            Ok(()) => Ok(ManagedTorchServe {
                process,
                inference_port: ports[0],
                grpc_port: ports[3],
            }),
            Err(e) => Err(e.into_start_error("torchserve", &summary(&process.log()), failed)),
        }
    }

    /// `http://127.0.0.1:<port>` of the REST inference API.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.inference_port)
    }

    /// `http://127.0.0.1:<port>` of the gRPC inference API.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Id of the server's process group.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Pids of every process in the server's group (launcher, Java, Python workers).
    pub fn group_pids(&self) -> Vec<u32> {
        self.process.group_pids()
    }
}

fn failed(reason: String) -> BackendError {
    unavailable(reason)
}

/// TorchServe's error lines and the last line, joined.
fn summary(log: &str) -> String {
    process::log_summary(log, 3, |l| {
        l.contains("[ERROR]") || l.contains("Error:") || l.contains("Exception:")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fixtures::user::Dim;

    #[test]
    fn configuration_binds_loopback_and_matches_the_workers() {
        let c = config_properties([1, 2, 3, 4, 5], 2, Path::new("/s"));
        for line in [
            "inference_address=http://127.0.0.1:1",
            "management_address=http://127.0.0.1:2",
            "metrics_address=http://127.0.0.1:3",
            "grpc_inference_address=127.0.0.1",
            "grpc_inference_port=4",
            "grpc_management_port=5",
            "disable_token_authorization=true",
            "default_workers_per_model=2",
            "max_request_size=1074790400",
            "max_response_size=1074790400",
            "model_store=/s",
        ] {
            assert!(c.lines().any(|l| l == line), "{line} not in\n{c}");
        }
        let m = manifest("resnet18", "0.12.0");
        assert_eq!(m["model"]["modelName"], "resnet18");
        assert_eq!(m["model"]["handler"], "handler.py");
    }

    #[test]
    fn a_user_model_is_described_for_the_handler() {
        use fixtures::user::IoSpec;
        let io = |name: &str, dtype, dims| IoSpec {
            name: name.into(),
            dtype,
            dims,
        };
        let m = UserModel {
            name: "toy".into(),
            path: "/m/toy.onnx".into(),
            inputs: vec![
                io(
                    "a",
                    contract::DType::F32,
                    vec![Dim::Dynamic("batch".into()), Dim::Fixed(4)],
                ),
                io(
                    "ids",
                    contract::DType::I64,
                    vec![Dim::Dynamic("batch".into()), Dim::Dynamic("seq".into())],
                ),
            ],
            outputs: vec![io(
                "y",
                contract::DType::F16,
                vec![Dim::Dynamic("batch".into())],
            )],
            operators: vec![],
        };
        assert_eq!(
            model_description(&m),
            json!({
                "inputs": [
                    {"name": "a", "datatype": "FP32", "dims": [-1, 4]},
                    {"name": "ids", "datatype": "INT64", "dims": [-1, -1]},
                ],
                "outputs": [{"name": "y", "datatype": "FP16", "dims": [-1]}],
            })
        );
    }

    #[test]
    fn workers_are_ready_when_every_one_says_ready() {
        let two = r#"[{"modelName": "m", "workers": [{"status": "READY"}, {"status": "READY"}]}]"#;
        assert!(workers_ready(two, 2));
        assert!(!workers_ready(two, 3));
        let starting = r#"[{"workers": [{"status": "READY"}, {"status": "UNLOADING"}]}]"#;
        assert!(!workers_ready(starting, 1));
        assert!(!workers_ready("not json", 1));
    }
}
