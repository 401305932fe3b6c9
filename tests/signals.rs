//! End to end: every way the harness can be stopped ends its managed servers.
//!
//! Each test starts `harness compare` with a managed Flask server (Gunicorn, one worker,
//! text-cnn only), waits until the server is up (the adapter writes its pids and its
//! temporary directory to `SERVEBENCH_FLASK_PID_FILE`), sends the harness one signal,
//! and checks by pid and by process group that nothing is left, and that the server's
//! temporary directory is gone. SIGINT, SIGTERM and SIGHUP are handled by the harness
//! (exit status 128 + the signal's number); after SIGKILL nothing in the harness runs,
//! so the server's watchdog ([`support::process::WATCHDOG`]) does it.

mod procs;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The harness measuring flask with a long window, started with stderr piped; and the
/// server's pids (master first) and temporary directory once it is ready.
fn start_run(dir: &std::path::Path) -> (Child, Vec<u32>, PathBuf) {
    let pid_file = dir.join("pids");
    let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "compare",
            "--quiet",
            "--trials",
            "1",
            "--backends",
            "flask",
            "--models",
            "text-cnn",
            "--workers",
            "1",
            "--small-batches",
            "1",
            "--large-batches",
            "1",
            // Long enough that the signal always lands before the run ends.
            "--duration",
            "30",
            "--results-dir",
        ])
        .arg(dir.join("results"))
        .env(adapter_flask::PID_FILE_ENV, &pid_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        let mut lines = text.lines();
        if let (Some(pids), Some(state)) = (lines.next(), lines.next()) {
            let pids: Vec<u32> = pids
                .split_whitespace()
                .map(|p| p.parse().unwrap())
                .collect();
            assert_eq!(pids.len(), 2, "a master and one worker: {text}");
            assert!(pids.iter().all(|&p| procs::alive(p)), "{pids:?}");
            return (child, pids, PathBuf::from(state));
        }
        assert!(Instant::now() < deadline, "the server never became ready");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the harness ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(child: &Child, signal: libc::c_int) {
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

/// Sends `signal` once the server is up and checks the exit status, the sentence and
/// that nothing is left.
fn handled(signal: libc::c_int, name: &str) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (mut child, pids, state) = start_run(dir.path());
    assert!(state.exists(), "{}", state.display());
    send(&child, signal);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(128 + signal), "{stderr}");
    assert!(
        stderr.contains(&format!("interrupted by {name}")),
        "{stderr}"
    );
    // The harness stopped the server before it exited: nothing to wait for.
    let left = procs::leftovers(&pids, Some(&state));
    assert!(left.is_empty(), "left behind after {name}: {left}");
}

#[test]
fn sigint_stops_every_server_process() {
    handled(libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_stops_every_server_process() {
    handled(libc::SIGTERM, "SIGTERM");
}

#[test]
fn sighup_stops_every_server_process() {
    handled(libc::SIGHUP, "SIGHUP");
}

/// After SIGKILL nothing in the harness runs: the watchdog in the server's group sees
/// its parent gone, stops the group and removes the temporary directory (it polls
/// twice a second and gives the server 5 s to stop before killing it).
#[test]
fn sigkill_leaves_nothing_behind() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (mut child, pids, state) = start_run(dir.path());
    send(&child, libc::SIGKILL);
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    let left = procs::wait_gone(&pids, Some(&state), Duration::from_secs(30));
    assert!(left.is_empty(), "left behind after SIGKILL: {left}");
}
