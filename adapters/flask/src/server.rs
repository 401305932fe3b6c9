//! A Gunicorn server started, watched and stopped by the harness.
//!
//! Gunicorn runs in its own process group (its master is the group leader, every worker
//! it forks joins the group), so stopping it is one signal to the group: `SIGTERM`,
//! a grace period, then `SIGKILL` for anything left. [`ManagedServer`] does that in
//! `Drop`, so the server goes away with the backend however the run ends: normally,
//! with an error, by a panic that unwinds, or on Ctrl-C (the harness drops its runtime
//! and every backend with it). Being in its own group also keeps a terminal's Ctrl-C
//! away from Gunicorn: the harness alone decides when it stops.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use contract::BackendError;

use crate::NAME;

/// How long Gunicorn may take to load every model in every worker.
pub const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long Gunicorn may take to stop after `SIGTERM` before the group is killed.
const STOP_GRACE: Duration = Duration::from_secs(8);
/// Log lines quoted when the server fails to start.
const LOG_LINES: usize = 4;

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Makes every start still waiting for readiness give up and stop what it started.
///
/// The harness calls this on Ctrl-C: a start runs on a blocking thread that the async
/// runtime's shutdown does not interrupt, and may otherwise wait for its whole deadline.
pub fn cancel_starts() {
    CANCELLED.store(true, Ordering::SeqCst);
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
    child: Child,
    port: u16,
    worker_pids: Vec<u32>,
    // Holds the log and the workers' ready files; removed after the server stops.
    state: tempfile::TempDir,
    stopped: bool,
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
            match Self::start_on(cfg, free_port()?) {
                Ok(s) => return Ok(s),
                Err(StartError::PortTaken(_)) if attempts > 0 => continue,
                Err(StartError::PortTaken(e) | StartError::Other(e)) => return Err(e),
            }
        }
    }

    fn start_on(cfg: &ServerConfig, port: u16) -> Result<ManagedServer, StartError> {
        let other = |reason: String| StartError::Other(failed(reason));
        let state = tempfile::Builder::new()
            .prefix("servebench-flask-")
            .tempdir()
            .map_err(|e| other(format!("cannot create a temporary directory: {e}")))?;
        let log_path = state.path().join("gunicorn.log");
        let log = File::create(&log_path)
            .map_err(|e| other(format!("cannot create {}: {e}", log_path.display())))?;
        let log2 = log
            .try_clone()
            .map_err(|e| other(format!("cannot open the log twice: {e}")))?;
        let child = Command::new(&cfg.gunicorn)
            .arg("--config")
            .arg(cfg.app_dir.join("gunicorn.conf.py"))
            .arg("--chdir")
            .arg(&cfg.app_dir)
            .args(["--workers", &cfg.workers.to_string()])
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .arg("app:app")
            .env("SERVEBENCH_FIXTURES_DIR", &cfg.fixtures_dir)
            .env("SERVEBENCH_MODELS", cfg.models.join(","))
            .env("SERVEBENCH_INTRA_THREADS", cfg.intra_threads.to_string())
            .env("SERVEBENCH_FLASK_STATE_DIR", state.path())
            // One onnxruntime session per worker, limited to its intra-op threads; keep
            // numpy's own thread pools from adding more.
            .env("OMP_NUM_THREADS", "1")
            .env("OPENBLAS_NUM_THREADS", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| other(format!("cannot start {}: {e}", cfg.gunicorn.display())))?;
        let mut server = ManagedServer {
            child,
            port,
            worker_pids: Vec::new(),
            state,
            stopped: false,
        };
        // On any failure below, dropping `server` stops whatever did start.
        server.wait_ready(cfg)?;
        Ok(server)
    }

    fn wait_ready(&mut self, cfg: &ServerConfig) -> Result<(), StartError> {
        let deadline = Instant::now() + cfg.ready_timeout;
        loop {
            if CANCELLED.load(Ordering::SeqCst) {
                return Err(StartError::Other(failed("the start was cancelled".into())));
            }
            let log = self.log();
            if log.contains("Connection in use") || log.contains("Address already in use") {
                return Err(StartError::PortTaken(failed(format!(
                    "gunicorn could not bind 127.0.0.1:{}{}",
                    self.port,
                    quote(&summary(&log))
                ))));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(StartError::Other(failed(format!(
                    "gunicorn exited ({status}) before it was ready{}",
                    quote(&self.log_tail())
                ))));
            }
            let ready = self.ready_workers();
            if ready.len() >= cfg.workers && probe_health(self.port) {
                self.worker_pids = ready;
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(StartError::Other(failed(format!(
                    "gunicorn was not ready within {} s ({} of {} workers loaded){}",
                    cfg.ready_timeout.as_secs(),
                    ready.len(),
                    cfg.workers,
                    quote(&self.log_tail())
                ))));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Pids of the workers that have loaded every model (from their ready files).
    fn ready_workers(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = std::fs::read_dir(self.state.path())
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

    /// The server's log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("gunicorn.log")).unwrap_or_default()
    }

    /// The last lines of the server's log, led by the first exception message.
    fn log_tail(&self) -> String {
        summary(&self.log())
    }

    /// Port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Pid of the Gunicorn master (also the id of its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Pids of the workers that were ready when the server became ready.
    pub fn worker_pids(&self) -> &[u32] {
        &self.worker_pids
    }

    /// Stops the master and every worker: `SIGTERM` to the group, then `SIGKILL` to
    /// whatever is left after the grace period. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let group = self.child.id() as libc::pid_t;
        signal_group(group, libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            let master_gone = matches!(self.child.try_wait(), Ok(Some(_)));
            if master_gone && !group_alive(group) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(group, libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for ManagedServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is shared.
    unsafe {
        libc::kill(-group, signal);
    }
}

/// True while some process of the group exists (zombies count until reaped).
fn group_alive(group: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence and permission.
    unsafe { libc::kill(-group, 0) == 0 }
}

fn failed(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: NAME.into(),
        reason,
        fix: format!(
            "{} (it installs flask, gunicorn and onnxruntime into .venv), or use a running server with --flask-url",
            contract::pyenv::SETUP_HINT
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

fn quote(log: &str) -> String {
    if log.is_empty() {
        "; its log is empty".into()
    } else {
        format!("; its last log lines: {log}")
    }
}

/// A port the kernel says is free right now on 127.0.0.1.
fn free_port() -> Result<u16, BackendError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| failed(format!("cannot find a free port on 127.0.0.1: {e}")))
}

/// One plain `GET /health`; true on a 200.
fn probe_health(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok()
        && (head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
}

/// `fixtures/flask_app` in this repository.
pub fn app_dir() -> PathBuf {
    contract::pyenv::repository_root()
        .join("fixtures")
        .join("flask_app")
}

/// `<venv>/bin/gunicorn`, if installed.
pub fn gunicorn() -> Option<PathBuf> {
    let p = contract::pyenv::venv().join("bin").join("gunicorn");
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
