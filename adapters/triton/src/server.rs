//! A `tritonserver` started, watched and stopped by the harness.
//!
//! The server is the real Triton 2.51 bundled in the `nvidia-pytriton` wheel, installed
//! by `scripts/setup` into its own Python environment (`.venv-triton`, see
//! `requirements-triton.txt` for why it is separate). Starting it takes:
//! - a **backend directory** `<venv>/backends/python/` holding the wheel's Python backend
//!   (`libtriton_python.so`, `triton_python_backend_utils.py`) and the stub for this
//!   Python version with its execute bit set (the wheel drops it): [`backend_dir`];
//! - a **model repository** written for this run into the server's private state
//!   directory: the fixtures' Python-backend variant with `instance_group` count = the
//!   matched worker count, the matched intra-op threads and the batching mode;
//! - three **free loopback ports** (HTTP, gRPC, metrics), all bound to 127.0.0.1.
//!
//! Process group, readiness deadline, cancel flag and stop-on-drop come from the shared
//! [`support::process`] machinery.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use contract::BackendError;
use fixtures::triton::{RepositoryOptions, Variant};
use fixtures::ModelId;
use support::process::{self, ManagedProcess, Probe, StartError};

/// How long Triton may take to load every model instance.
pub const READY_TIMEOUT: Duration = Duration::from_secs(180);
/// Error lines of Triton's log quoted when it fails to start.
const LOG_LINES: usize = 3;

/// The Triton server's Python environment: `SERVEBENCH_TRITON_VENV`, else
/// `<repository>/.venv-triton`.
pub fn venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("SERVEBENCH_TRITON_VENV") {
        return PathBuf::from(dir);
    }
    support::pyenv::repository_root().join(".venv-triton")
}

/// What the managed server needs from the installed wheel.
#[derive(Debug, Clone)]
pub struct Install {
    /// `<site-packages>` of the Triton environment (onnxruntime, numpy 1.x).
    pub site_packages: PathBuf,
    /// The `tritonserver` binary.
    pub tritonserver: PathBuf,
    /// The wheel's bundled shared libraries (`LD_LIBRARY_PATH`).
    pub libs: PathBuf,
    /// `3.11`: the Python version of the environment, which picks the stub.
    pub python_version: String,
}

impl Install {
    /// Finds the wheel in [`venv`], or says how to install it.
    pub fn find() -> Result<Install, BackendError> {
        let venv = venv();
        let missing = |what: &str| {
            BackendError::Unavailable {
            backend: "triton".into(),
            reason: format!("{what} is not installed in {}", venv.display()),
            fix: format!(
                "{} (it installs nvidia-pytriton==0.7.0 from requirements-triton.txt into .venv-triton)",
                support::pyenv::SETUP_HINT
            ),
        }
        };
        let lib = venv.join("lib");
        let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(&lib)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let version = name.strip_prefix("python")?.to_string();
                let site = e.path().join("site-packages");
                site.is_dir().then_some((version, site))
            })
            .collect();
        found.sort();
        let (python_version, site_packages) =
            found.pop().ok_or_else(|| missing("a Python environment"))?;
        let tritonserver = site_packages.join("pytriton/tritonserver/bin/tritonserver");
        if !tritonserver.is_file() {
            return Err(missing("nvidia-pytriton (tritonserver)"));
        }
        Ok(Install {
            libs: site_packages.join("nvidia_pytriton.libs"),
            tritonserver,
            site_packages,
            python_version,
        })
    }

    /// `<venv>/backends`, made complete if it is not: the Python backend's files and
    /// the stub with its execute bit set. `scripts/setup` prepares the same directory.
    pub fn backend_dir(&self) -> Result<PathBuf, BackendError> {
        let dir = venv().join("backends");
        let python = dir.join("python");
        let wheel = self.site_packages.join("pytriton/tritonserver");
        let files = [
            (
                wheel.join("backends/python/libtriton_python.so"),
                "libtriton_python.so",
            ),
            (
                wheel.join("backends/python/triton_python_backend_utils.py"),
                "triton_python_backend_utils.py",
            ),
            (
                wheel
                    .join("python_backend_stubs")
                    .join(&self.python_version)
                    .join("triton_python_backend_stub"),
                "triton_python_backend_stub",
            ),
        ];
        let io = |what: &str, p: &Path, e: std::io::Error| BackendError::Unavailable {
            backend: "triton".into(),
            reason: format!("cannot {what} {}: {e}", p.display()),
            fix: support::pyenv::SETUP_HINT.into(),
        };
        std::fs::create_dir_all(&python).map_err(|e| io("create", &python, e))?;
        for (src, name) in files {
            let dst = python.join(name);
            if !dst.is_file() {
                std::fs::copy(&src, &dst).map_err(|e| io("copy", &src, e))?;
            }
            if name == "triton_python_backend_stub" {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| io("make executable", &dst, e))?;
            }
        }
        Ok(dir)
    }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The installed wheel.
    pub install: Install,
    /// Directory of the generated fixtures (the ONNX exports).
    pub fixtures_dir: PathBuf,
    /// Models to load.
    pub models: Vec<ModelId>,
    /// The user's models to load (`--model-file`).
    pub user_models: Vec<fixtures::user::UserModel>,
    /// Instances per model (the matched worker count).
    pub instances: usize,
    /// onnxruntime intra-op threads per instance.
    pub intra_threads: usize,
    /// Triton's dynamic batcher on or off.
    pub dynamic_batching: bool,
    /// Precision of the fixtures' ONNX files served (their conversions beside
    /// `model.onnx` at fp16 and int8), under the models' own names.
    pub precision: contract::Precision,
    /// Also serve the fixtures' fp16/int8 conversions that exist as `<model>_fp16` /
    /// `<model>_int8`, as one server for every precision (the compose stack's layout).
    pub conversions: bool,
    /// Deadline for readiness.
    pub ready_timeout: Duration,
}

/// A running `tritonserver`, stopped with its Python stubs when dropped.
#[derive(Debug)]
pub struct ManagedTriton {
    process: ManagedProcess,
    http_port: u16,
    grpc_port: u16,
    metrics_port: u16,
}

impl adapter_kserve::Managed for ManagedTriton {
    fn pid(&self) -> u32 {
        self.process.pid()
    }
}

impl ManagedTriton {
    /// Writes the run's model repository, starts Triton on three free loopback ports
    /// and waits until `/v2/health/ready` answers 200 (every model loaded). A port
    /// taken between choosing and binding it is retried with other ports.
    pub fn start(cfg: &ServerConfig) -> Result<ManagedTriton, BackendError> {
        let backends = cfg.install.backend_dir()?;
        process::retry_taken_ports(|| Self::start_once(cfg, &backends))
    }

    fn start_once(cfg: &ServerConfig, backends: &Path) -> Result<ManagedTriton, StartError> {
        let other = |reason: String| StartError::Other(failed(reason));
        let ports = process::free_ports(3).map_err(other)?;
        let (http_port, grpc_port, metrics_port) = (ports[0], ports[1], ports[2]);
        let mut repo_error = None;
        let mut process = ManagedProcess::spawn(
            "servebench-triton-",
            Command::new(&cfg.install.tritonserver),
            |c, state| {
                let repo = state.join("models");
                let opts = RepositoryOptions {
                    variant: Variant::Python,
                    instances: cfg.instances,
                    intra_threads: cfg.intra_threads,
                    dynamic_batching: cfg.dynamic_batching,
                    precision: cfg.precision,
                };
                if let Err(e) = std::fs::create_dir_all(&repo)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        fixtures::triton::write_repository(
                            &repo,
                            &cfg.fixtures_dir,
                            &cfg.models,
                            &opts,
                        )
                        .and_then(|()| {
                            cfg.user_models.iter().try_for_each(|m| {
                                fixtures::triton::write_user_model(&repo, m, &opts)
                            })
                        })
                        .and_then(|()| match cfg.conversions {
                            true => fixtures::triton::write_conversions(
                                &repo,
                                &cfg.fixtures_dir,
                                &cfg.models,
                                &opts,
                            )
                            .map(drop),
                            false => Ok(()),
                        })
                        .map_err(|e| e.to_string())
                    })
                {
                    repo_error = Some(e);
                }
                c.arg("--model-repository")
                    .arg(&repo)
                    .arg("--backend-directory")
                    .arg(backends)
                    .args(["--http-address", "127.0.0.1"])
                    .args(["--http-port", &http_port.to_string()])
                    .args(["--grpc-address", "127.0.0.1"])
                    .args(["--grpc-port", &grpc_port.to_string()])
                    .args(["--metrics-address", "127.0.0.1"])
                    .args(["--metrics-port", &metrics_port.to_string()])
                    .args(["--exit-timeout-secs", "5"])
                    .env("LD_LIBRARY_PATH", &cfg.install.libs)
                    // The stub's embedded Python ignores PYTHONPATH; model.py puts this
                    // on sys.path itself.
                    .env("SERVEBENCH_SITE_PACKAGES", &cfg.install.site_packages)
                    .env("OMP_NUM_THREADS", "1")
                    .env("OPENBLAS_NUM_THREADS", "1")
                    .env("PYTHONUNBUFFERED", "1");
            },
        )
        .map_err(other)?;
        if let Some(e) = repo_error {
            return Err(other(format!("cannot write the model repository: {e}")));
        }
        let waited = process.wait_ready(cfg.ready_timeout, |p| {
            let log = p.log();
            if log.contains("Address already in use") {
                return Probe::Failed(format!(
                    "a port Triton was given is taken{}",
                    process::quote_log(&summary(&log))
                ));
            }
            if process::http_get_ok(http_port, "/v2/health/ready") {
                Probe::Ready
            } else {
                Probe::Waiting
            }
        });
        match waited {
            Ok(()) => Ok(ManagedTriton {
                process,
                http_port,
                grpc_port,
                metrics_port,
            }),
            Err(e) => Err(e.into_start_error("tritonserver", &summary(&process.log()), failed)),
        }
    }

    /// `http://127.0.0.1:<port>` of the HTTP endpoint.
    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }

    /// `http://127.0.0.1:<port>/metrics`: the Prometheus metrics endpoint.
    pub fn metrics_url(&self) -> String {
        format!("http://127.0.0.1:{}/metrics", self.metrics_port)
    }

    /// `http://127.0.0.1:<port>` of the gRPC endpoint.
    pub fn grpc_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.grpc_port)
    }

    /// Pid of `tritonserver` (also the id of its process group).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Pids of every process in the server's group (the server and its Python stubs),
    /// tritonserver first.
    pub fn group_pids(&self) -> Vec<u32> {
        self.process.group_pids()
    }
}

fn failed(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: "triton".into(),
        reason,
        fix: format!(
            "{} (it installs nvidia-pytriton into .venv-triton and generates the fixtures), or use a running server with --triton-url / --triton-grpc-url",
            support::pyenv::SETUP_HINT
        ),
    }
}

/// Triton's error lines (`E1123 ... "failed to load ..."`) and the last line, joined.
fn summary(log: &str) -> String {
    process::log_summary(log, LOG_LINES, |l| {
        let triton_error =
            l.starts_with('E') && l.chars().nth(1).is_some_and(|c| c.is_ascii_digit());
        // Said at every start on a machine without a GPU; harmless.
        (triton_error || l.starts_with("error:")) && !l.contains("CudaDriverHelper")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_quotes_triton_errors() {
        let log = "I1123 server.cc] starting\n\
                   E1123 server.cc:241] \"CudaDriverHelper has not been initialized.\"\n\
                   E1123 model_lifecycle.cc:642] \"failed to load 'm'\"\n\
                   W1123 metrics.cc] DCGM\n\
                   error: creating server: Internal - failed to load all models\n";
        assert_eq!(
            summary(log),
            "E1123 model_lifecycle.cc:642] \"failed to load 'm'\" | \
             error: creating server: Internal - failed to load all models"
        );
    }
}
