//! A Gunicorn server started, watched and stopped by the harness, on the shared
//! managed-server machinery ([`support::process`]).
//!
//! Gunicorn runs in its own process group (its master is the group leader, every worker
//! it forks joins the group), so stopping it is one signal to the group: `SIGTERM`,
//! a grace period, then `SIGKILL` for anything left. [`ManagedServer`] does that in
//! `Drop`, so the server goes away with the backend however the run ends: normally,
//! with an error, by a panic that unwinds, or on Ctrl-C (the harness drops its runtime
//! and every backend with it). Being in its own group also keeps a terminal's Ctrl-C
//! away from Gunicorn: the harness alone decides when it stops.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use contract::BackendError;
use support::process::{self, ManagedProcess, NotReady, Probe};

use crate::NAME;

/// How long Gunicorn may take to load every model in every worker.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Log lines quoted when the server fails to start.
const LOG_LINES: usize = 4;

/// Makes every start still waiting for readiness give up and stop what it started
/// (shared by every managed server: [`support::process::cancel_starts`]).
pub fn cancel_starts() {
    process::cancel_starts();
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `<venv>/bin/gunicorn`.
    pub gunicorn: PathBuf,
    /// `fixtures/flask_app`, holding `app.py` and `gunicorn.conf.py`.
    pub app_dir: PathBuf,
    /// Directory of the generated fixtures.
    pub fixtures_dir: PathBuf,
    /// Models every worker loads.
    pub models: Vec<String>,
    /// The user's models among them (`--model-file`), by name: loaded from these files.
    pub model_files: std::collections::BTreeMap<String, PathBuf>,
    /// Precision of the fixtures' ONNX files every worker loads: `model.onnx`, or its
    /// fp16/int8 conversion beside it (under the model's own name).
    pub precision: contract::Precision,
    /// Gunicorn workers (`-w`).
    pub workers: usize,
    /// onnxruntime intra-op threads per worker.
    pub intra_threads: usize,
    /// Deadline for readiness.
    pub ready_timeout: Duration,
}

/// A running Gunicorn, stopped with all its workers when dropped.
#[derive(Debug)]
pub struct ManagedServer {
    process: ManagedProcess,
    port: u16,
    worker_pids: Vec<u32>,
}

enum StartError {
    PortTaken(BackendError),
    Other(BackendError),
}

impl ManagedServer {
    /// Starts Gunicorn on a free loopback port and waits until every worker has loaded
    /// every model and `/health` answers. A port taken between choosing and binding it
    /// is retried with another port.
    pub fn start(cfg: &ServerConfig) -> Result<ManagedServer, BackendError> {
        let mut attempts = 3;
        loop {
            attempts -= 1;
            match Self::start_on(cfg, process::free_port().map_err(failed)?) {
                Ok(s) => return Ok(s),
                Err(StartError::PortTaken(_)) if attempts > 0 => continue,
                Err(StartError::PortTaken(e) | StartError::Other(e)) => return Err(e),
            }
        }
    }

    fn start_on(cfg: &ServerConfig, port: u16) -> Result<ManagedServer, StartError> {
        let mut process = ManagedProcess::spawn(
            "servebench-flask-",
            Command::new(&cfg.gunicorn),
            |c, state| {
                c.arg("--config")
                    .arg(cfg.app_dir.join("gunicorn.conf.py"))
                    .arg("--chdir")
                    .arg(&cfg.app_dir)
                    .args(["--workers", &cfg.workers.to_string()])
                    .args(["--bind", &format!("127.0.0.1:{port}")])
                    .arg("app:app")
                    .env("SERVEBENCH_FIXTURES_DIR", &cfg.fixtures_dir)
                    .env("SERVEBENCH_MODELS", cfg.models.join(","))
                    .env(
                        "SERVEBENCH_MODEL_FILES",
                        serde_json::to_string(&cfg.model_files).unwrap_or_default(),
                    )
                    .env(
                        "SERVEBENCH_ONNX_FILE",
                        cfg.precision.onnx_file().unwrap_or("model.onnx"),
                    )
                    .env("SERVEBENCH_INTRA_THREADS", cfg.intra_threads.to_string())
                    .env("SERVEBENCH_FLASK_STATE_DIR", state)
                    // One onnxruntime session per worker, limited to its intra-op
                    // threads; keep numpy's own thread pools from adding more.
                    .env("OMP_NUM_THREADS", "1")
                    .env("OPENBLAS_NUM_THREADS", "1")
                    .env("PYTHONUNBUFFERED", "1");
            },
        )
        .map_err(|e| StartError::Other(failed(e)))?;
        // On any failure below, dropping `process` stops whatever did start.
        let mut ready = Vec::new();
        let waited = process.wait_ready(cfg.ready_timeout, |p| {
            let log = p.log();
            if log.contains("Connection in use") || log.contains("Address already in use") {
                return Probe::Failed(format!(
                    "gunicorn could not bind 127.0.0.1:{port}{}",
                    process::quote_log(&summary(&log))
                ));
            }
            ready = ready_workers(p.state_dir());
            if ready.len() >= cfg.workers && process::http_get_ok(port, "/health") {
                Probe::Ready
            } else {
                Probe::Waiting
            }
        });
        let tail = || process::quote_log(&summary(&process.log()));
        match waited {
            Ok(()) => {}
            Err(NotReady::Failed(reason)) => return Err(StartError::PortTaken(failed(reason))),
            Err(NotReady::Cancelled) => {
                return Err(StartError::Other(failed("the start was cancelled".into())))
            }
            Err(NotReady::Exited(status)) => {
                return Err(StartError::Other(failed(format!(
                    "gunicorn exited ({status}) before it was ready{}",
                    tail()
                ))))
            }
            Err(NotReady::TimedOut(t)) => {
                return Err(StartError::Other(failed(format!(
                    "gunicorn was not ready within {} s ({} of {} workers loaded){}",
                    t.as_secs(),
                    ready.len(),
                    cfg.workers,
                    tail()
                ))))
            }
        }
        Ok(ManagedServer {
            process,
            port,
            worker_pids: ready,
        })
    }

    /// Port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Pid of the Gunicorn master (also the id of its process group).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The server's private temporary directory (its log; removed when it stops).
    pub fn state_dir(&self) -> &std::path::Path {
        self.process.state_dir()
    }

    /// Pids of the workers that were ready when the server became ready.
    pub fn worker_pids(&self) -> &[u32] {
        &self.worker_pids
    }

    /// Stops the master and every worker: `SIGTERM` to the group, then `SIGKILL` to
    /// whatever is left after the grace period. Idempotent.
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// Pids of the workers that have loaded every model (from their ready files).
fn ready_workers(state: &Path) -> Vec<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(state)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_prefix("worker-")?
                .strip_suffix(".ready")?
                .parse()
                .ok()
        })
        .collect();
    pids.sort_unstable();
    pids
}

fn failed(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: NAME.into(),
        reason,
        fix: format!(
            "{} (it installs flask, gunicorn and onnxruntime into .venv), or use a running server with --flask-url",
            support::pyenv::SETUP_HINT
        ),
    }
}

/// One line from a Gunicorn log: the first exception message (the cause: a worker that
/// could not load a model, an import error), then the last lines. Traceback frames are
/// left out.
fn summary(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with(char::is_whitespace))
        .filter(|l| !l.starts_with("Traceback"))
        .collect();
    // Gunicorn's own lines start with `[timestamp]`; Python's exception lines do not.
    let mut picked: Vec<&str> = lines
        .iter()
        .copied()
        .find(|l| !l.starts_with('['))
        .into_iter()
        .collect();
    for l in &lines[lines.len().saturating_sub(LOG_LINES)..] {
        if !picked.contains(l) {
            picked.push(l);
        }
    }
    picked.join(" | ")
}

/// `fixtures/flask_app` in this repository.
pub fn app_dir() -> PathBuf {
    support::pyenv::repository_root()
        .join("fixtures")
        .join("flask_app")
}

/// `<venv>/bin/gunicorn`, if installed.
pub fn gunicorn() -> Option<PathBuf> {
    let p = support::pyenv::venv().join("bin").join("gunicorn");
    is_file(&p).then_some(p)
}

fn is_file(p: &Path) -> bool {
    p.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_leads_with_the_cause() {
        let log = "[t] [1] [INFO] Booting worker\n\
                   [t] [2] [ERROR] Exception in worker process\n\
                   Traceback (most recent call last):\n  File \"app.py\", line 1\n\
                   NoSuchFile: model.onnx failed\n\
                   [t] [1] [ERROR] Worker exited\n\
                   [t] [1] [ERROR] Reason: Worker failed to boot.\n";
        assert_eq!(
            summary(log),
            "NoSuchFile: model.onnx failed | [t] [2] [ERROR] Exception in worker process | \
             [t] [1] [ERROR] Worker exited | [t] [1] [ERROR] Reason: Worker failed to boot."
        );
        assert_eq!(summary(""), "");
    }
}
