//! Managed server processes: the machinery every server backend shares.
//!
//! A backend that starts its own server (Gunicorn for Flask, `tritonserver` for Triton)
//! needs the same five things, and they are written once, here:
//! - **its own process group** ([`ManagedProcess::spawn`]): the server and everything it
//!   forks are one group, so stopping it is one signal to the group, and a terminal's
//!   Ctrl-C reaches the harness only (the harness alone decides when servers stop);
//! - **a free loopback port** ([`free_port`]), chosen just before the start;
//! - **readiness with a deadline and a cancel flag** ([`ManagedProcess::wait_ready`]):
//!   a start runs on a blocking thread that the async runtime's shutdown cannot
//!   interrupt, so Ctrl-C sets a flag ([`cancel_starts`]) that every waiting start
//!   checks between probes;
//! - **stop on drop** ([`ManagedProcess::stop`]): `SIGTERM` to the group, a grace period,
//!   then `SIGKILL` to whatever is left. The server goes away with its backend however the
//!   run ends: normally, by an error, by a panic that unwinds, or on Ctrl-C;
//! - **the log** in a private temporary directory, quoted when the start fails;
//! - **a watchdog** in the server's process group (a small `sh` loop, [`WATCHDOG`]):
//!   when the harness is gone without stopping the server (`SIGKILL`, a crash), it
//!   notices that its parent changed, sends `SIGTERM` to the group, removes the
//!   temporary directory and kills what is left. Nothing in the harness can run after
//!   `SIGKILL`, so the server's side has to notice by itself; a parent-death signal
//!   (`PR_SET_PDEATHSIG`) would reach only the server's first process, not the workers
//!   it forks, and fires when the forking *thread* ends.
//!
//! What "ready" means is the caller's business: it passes a probe closure.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use contract::BackendError;

static CANCELLED: AtomicBool = AtomicBool::new(false);

/// Makes every start still waiting for readiness give up and stop what it started.
///
/// The harness calls this on Ctrl-C.
pub fn cancel_starts() {
    CANCELLED.store(true, Ordering::SeqCst);
}

/// True once [`cancel_starts`] was called.
pub fn starts_cancelled() -> bool {
    CANCELLED.load(Ordering::SeqCst)
}

/// How long a server may take to stop after `SIGTERM` before its group is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(8);

/// What the readiness probe says about the server right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Ready to serve.
    Ready,
    /// Not yet; ask again.
    Waiting,
    /// It will never be ready; the reason (the port was taken, a model failed).
    Failed(String),
}

/// Why a start did not become ready. The caller turns it into its own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// [`cancel_starts`] was called.
    Cancelled,
    /// The server process exited; its exit status.
    Exited(String),
    /// The deadline passed.
    TimedOut(Duration),
    /// The probe gave up with this reason.
    Failed(String),
}

impl NotReady {
    /// This failure as a failed start of `program` (`tritonserver`, `mlserver`), its log's
    /// `tail` quoted; `failed` makes the caller's error from a reason. A probe's failure
    /// is a port taken (the only reason a probe gives up), worth another try.
    pub fn into_start_error(
        self,
        program: &str,
        tail: &str,
        failed: impl Fn(String) -> BackendError,
    ) -> StartError {
        let tail = quote_log(tail);
        match self {
            NotReady::Failed(reason) => StartError::PortTaken(failed(reason)),
            NotReady::Cancelled => StartError::Other(failed("the start was cancelled".into())),
            NotReady::Exited(status) => StartError::Other(failed(format!(
                "{program} exited ({status}) before it was ready{tail}"
            ))),
            NotReady::TimedOut(t) => StartError::Other(failed(format!(
                "{program} was not ready within {} s{tail}",
                t.as_secs()
            ))),
        }
    }
}

/// Why one attempt to start a server failed.
#[derive(Debug)]
pub enum StartError {
    /// A port chosen for it was taken before it bound it: try again with other ports.
    PortTaken(BackendError),
    /// Anything else.
    Other(BackendError),
}

/// Runs `start` (one attempt on freshly chosen ports) until it succeeds, fails for
/// another reason than a taken port, or has been tried three times.
pub fn retry_taken_ports<T>(
    mut start: impl FnMut() -> Result<T, StartError>,
) -> Result<T, BackendError> {
    let mut attempts = 3;
    loop {
        attempts -= 1;
        match start() {
            Ok(s) => return Ok(s),
            Err(StartError::PortTaken(_)) if attempts > 0 => continue,
            Err(StartError::PortTaken(e) | StartError::Other(e)) => return Err(e),
        }
    }
}

/// A server process in its own process group, stopped with its whole group on drop.
#[derive(Debug)]
pub struct ManagedProcess {
    child: Child,
    log_path: PathBuf,
    // Holds the log and whatever the caller keeps there; removed after the stop.
    state: tempfile::TempDir,
    // Ends the group if the harness disappears; killed first on a normal stop.
    watchdog: Option<Child>,
    stopped: bool,
}

/// The watchdog's script: `$1` the harness's pid, `$2` the group, `$3` the state
/// directory. It ignores the group's `SIGTERM` (a normal stop kills it by pid first),
/// polls its own parent every half second and, once the harness is gone, stops the
/// group as [`ManagedProcess::stop`] would, removes the state directory, and kills the
/// rest of the group with itself.
pub const WATCHDOG: &str = r#"trap '' TERM INT HUP
while :; do
  read -r _ _ _ ppid _ < /proc/$$/stat || break
  [ "$ppid" = "$1" ] || break
  sleep 0.5
done
kill -TERM "-$2" 2>/dev/null
i=0
while [ $i -lt 25 ] && kill -0 "$2" 2>/dev/null; do sleep 0.2; i=$((i+1)); done
rm -rf -- "$3"
kill -KILL "-$2"
"#;

impl ManagedProcess {
    /// Creates a private state directory (`<prefix>XXXX` under the system's temporary
    /// directory), lets `build` finish the command with it (arguments, environment),
    /// and spawns the command in its own process group with stdout and stderr going to
    /// `<state>/server.log`.
    pub fn spawn(
        prefix: &str,
        mut command: Command,
        build: impl FnOnce(&mut Command, &Path),
    ) -> Result<ManagedProcess, String> {
        let state = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
        let log_path = state.path().join("server.log");
        let log = File::create(&log_path)
            .map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot open the log twice: {e}"))?;
        build(&mut command, state.path());
        let program = command.get_program().to_string_lossy().into_owned();
        let child = command
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let group = child.id();
        let watchdog = Command::new("sh")
            .args(["-c", WATCHDOG, "servebench-watchdog"])
            .arg(std::process::id().to_string())
            .arg(group.to_string())
            .arg(state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(group as i32)
            .spawn();
        let mut process = ManagedProcess {
            child,
            log_path,
            state,
            watchdog: None,
            stopped: false,
        };
        match watchdog {
            Ok(w) => process.watchdog = Some(w),
            // Dropping `process` stops the server just started.
            Err(e) => return Err(format!("cannot start the watchdog of {program}: {e}")),
        }
        Ok(process)
    }

    /// Polls `probe` every 50 ms until it says ready, the process exits, the deadline
    /// passes or the start is cancelled. On failure the process keeps running until
    /// it is dropped (which stops it).
    pub fn wait_ready(
        &mut self,
        timeout: Duration,
        mut probe: impl FnMut(&ManagedProcess) -> Probe,
    ) -> Result<(), NotReady> {
        let deadline = Instant::now() + timeout;
        loop {
            if starts_cancelled() {
                return Err(NotReady::Cancelled);
            }
            match probe(self) {
                Probe::Ready => return Ok(()),
                Probe::Failed(reason) => return Err(NotReady::Failed(reason)),
                Probe::Waiting => {}
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(NotReady::Exited(status.to_string()));
            }
            if Instant::now() > deadline {
                return Err(NotReady::TimedOut(timeout));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The private state directory (holds the log).
    pub fn state_dir(&self) -> &Path {
        self.state.path()
    }

    /// The server's output so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Pid of the process started (also the id of its process group).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Pids of the server's processes: every live process of its group but the
    /// watchdog and what the watchdog runs, the first process started first.
    pub fn group_pids(&self) -> Vec<u32> {
        let group = self.pid();
        let watchdog = self.watchdog.as_ref().map(Child::id);
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let pid: u32 = e.file_name().to_str()?.parse().ok()?;
                let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
                // Fields after the parenthesised command: state, ppid, pgrp, ...
                let mut after = stat.rsplit_once(')')?.1.split_whitespace();
                let state = after.next()?;
                let ppid: u32 = after.next()?.parse().ok()?;
                let pgrp: u32 = after.next()?.parse().ok()?;
                let ours = pgrp == group && state != "Z";
                let watching = Some(pid) == watchdog || Some(ppid) == watchdog;
                (ours && !watching).then_some(pid)
            })
            .collect();
        pids.sort_unstable_by_key(|&p| (p != group, p));
        pids
    }

    /// Stops the whole group: `SIGTERM`, then `SIGKILL` to whatever is left after
    /// [`STOP_GRACE`]. Idempotent.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
        let group = self.child.id() as libc::pid_t;
        signal_group(group, libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            let leader_gone = matches!(self.child.try_wait(), Ok(Some(_)));
            if leader_gone && !group_alive(group) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        signal_group(group, libc::SIGKILL);
        let _ = self.child.wait();
    }
}

impl Drop for ManagedProcess {
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

/// A port the kernel says is free right now on 127.0.0.1.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// `n` distinct free ports on 127.0.0.1 (all held open while choosing, so no two are
/// the same).
pub fn free_ports(n: usize) -> Result<Vec<u16>, String> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot find a free port on 127.0.0.1: {e}"))
}

/// One plain `GET path` to 127.0.0.1:`port` over HTTP/1.0; true on a 200.
pub fn http_get_ok(port: u16, path: &str) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok()
        && (head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"))
}

/// One plain `GET path` to 127.0.0.1:`port`: the body of a 200 answer, else `None`
/// (for readiness probes that read what the server says, such as TorchServe's worker
/// states). The body ends at its `content-length` or when the server closes: some
/// servers (TorchServe's Netty) keep even an HTTP/1.0 connection open.
pub fn http_get_body(port: u16, path: &str) -> Option<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(request.as_bytes()).ok()?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 16384];
    loop {
        let n = s.read(&mut chunk).ok()?;
        answer.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&answer);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            });
            if n == 0 || length.is_some_and(|len| body.len() >= len) {
                let ok = head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200");
                return ok.then(|| body.to_string());
            }
        } else if n == 0 {
            return None;
        }
    }
}

/// Appends one line of `pids` (space-separated) to `path`: the test hook by which a
/// managed server's processes are named to the tests (several servers of one run append
/// to the same file). Best effort: a file that cannot be written is left alone.
pub fn append_pids(path: &Path, pids: &[u32]) {
    let line: Vec<String> = pids.iter().map(u32::to_string).collect();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{}", line.join(" "));
    }
}

/// The first `most` lines of `log` that `is_error` picks, and its last line, joined with
/// ` | `: what a failed start quotes of a server's log.
pub fn log_summary(log: &str, most: usize, is_error: impl Fn(&str) -> bool) -> String {
    let lines: Vec<&str> = log
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let mut picked: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| is_error(l))
        .take(most)
        .collect();
    if let Some(last) = lines.last() {
        if !picked.contains(last) {
            picked.push(last);
        }
    }
    picked.join(" | ")
}

/// `"; its last log lines: <tail>"`, or `"; its log is empty"`, for error messages.
pub fn quote_log(tail: &str) -> String {
    if tail.is_empty() {
        "; its log is empty".into()
    } else {
        format!("; its last log lines: {tail}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_group_is_stopped_on_drop() {
        let mut p = ManagedProcess::spawn("servebench-test-", Command::new("sh"), |c, _| {
            c.args(["-c", "sleep 60 & echo started; wait"]);
        })
        .unwrap();
        let pid = p.pid();
        p.wait_ready(Duration::from_secs(10), |p| {
            if p.log().contains("started") {
                Probe::Ready
            } else {
                Probe::Waiting
            }
        })
        .unwrap();
        drop(p);
        assert!(!group_alive(pid as libc::pid_t), "group {pid} survived");
    }

    #[test]
    fn an_early_exit_and_a_failed_probe_are_reported() {
        let mut p = ManagedProcess::spawn("servebench-test-", Command::new("sh"), |c, _| {
            c.args(["-c", "exit 3"]);
        })
        .unwrap();
        let e = p
            .wait_ready(Duration::from_secs(10), |_| Probe::Waiting)
            .unwrap_err();
        assert!(
            matches!(e, NotReady::Exited(ref s) if s.contains('3')),
            "{e:?}"
        );
        let mut p = ManagedProcess::spawn("servebench-test-", Command::new("sleep"), |c, _| {
            c.arg("60");
        })
        .unwrap();
        let e = p
            .wait_ready(Duration::from_secs(10), |_| Probe::Failed("port".into()))
            .unwrap_err();
        assert_eq!(e, NotReady::Failed("port".into()));
    }

    /// The watchdog outlives its parent (standing in for a harness killed by `SIGKILL`)
    /// by less than a second, stops the group and removes the state directory.
    #[test]
    fn the_watchdog_ends_the_group_when_its_parent_is_gone() {
        let mut server = Command::new("sleep")
            .arg("60")
            .process_group(0)
            .spawn()
            .unwrap();
        let group = server.id();
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::write(dir.join("server.log"), "x").unwrap();
        // A short-lived parent in the server's group starts the watchdog and exits.
        let mut parent = Command::new("sh")
            .args([
                "-c",
                "sh -c \"$0\" wd $$ \"$1\" \"$2\" & sleep 0.3",
                WATCHDOG,
            ])
            .arg(group.to_string())
            .arg(&dir)
            .process_group(group as i32)
            .spawn()
            .unwrap();
        parent.wait().unwrap();
        let status = server.wait().unwrap();
        assert!(!status.success(), "{status}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while (dir.exists() || group_alive(group as libc::pid_t)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!dir.exists(), "{} was left", dir.display());
        assert!(!group_alive(group as libc::pid_t), "group {group} survived");
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(3).unwrap();
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    }
}
