//! End to end: partial results are results.
//!
//! A backend that fails during a run (a server that accepts and never answers, a
//! managed server killed mid-run) is recorded under `failed` with its error kinds, the
//! other backends are measured and written, and the exit status is the partial one
//! (3). A stop signal during measuring writes what was measured, flagged `interrupted`.

mod common;
mod procs;

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::{result_files, schema_errors, text};

/// The one results.json under `dir`, checked against the schema.
fn results_doc(dir: &Path) -> serde_json::Value {
    let files = result_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    doc
}

fn rows_of<'a>(doc: &'a serde_json::Value, backend: &str) -> Vec<&'a serde_json::Value> {
    doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backend"] == backend)
        .collect()
}

/// The harness with stderr read line by line on a thread (stderr is not a terminal,
/// so progress comes as plain lines).
fn spawn(args: &[&str], env: &[(&str, &Path)]) -> (Child, Receiver<String>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let (tx, rx) = channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Waits for a stderr line containing `what`; every line seen so far otherwise.
fn wait_for_line(rx: &Receiver<String>, what: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            let found = line.contains(what);
            seen.push(line);
            if found {
                return;
            }
        }
    }
    panic!("no line with {what:?}; stderr so far:\n{}", seen.join("\n"));
}

/// A server that accepts every connection and never answers; its URL.
fn hung_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    url
}

/// Sends SIGTERM to `child` `delay` after the stderr line containing `line`; checks
/// the exit status 143 and returns stderr.
fn sigterm_after(child: &mut Child, rx: &Receiver<String>, line: &str, delay: Duration) -> String {
    let mut seen = Vec::new();
    wait_for_line(rx, line, &mut seen);
    std::thread::sleep(delay);
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    seen.extend(rx.iter());
    let stderr = seen.join("\n");
    assert_eq!(status.code(), Some(143), "{stderr}");
    stderr
}

#[test]
fn a_hung_server_fails_its_backend_and_the_others_are_written() {
    let url = hung_server();
    let dir = tempfile::tempdir().unwrap();
    let out = common::harness(&[
        "compare",
        "--quiet",
        "--trials",
        "1",
        "--backends",
        "candle,tfserving-rest",
        "--tfserving-url",
        &url,
        "--models",
        "text-cnn",
        "--small-batches",
        "1",
        "--large-batches",
        "1",
        "--duration",
        "0.1",
        "--request-timeout",
        "1",
        "--results-dir",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    let doc = results_doc(dir.path());
    let failed = doc["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["backend"], "tfserving-rest");
    assert_eq!(failed[0]["error_kinds"][0]["kind"], "timeout", "{failed:?}");
    assert!(!rows_of(&doc, "candle").is_empty(), "{doc:#}");
    assert!(rows_of(&doc, "tfserving-rest").is_empty(), "{doc:#}");
    // Prose lines are wrapped at 120 columns.
    let (stdout, stderr) = (common::unwrapped(&stdout), common::unwrapped(&stderr));
    assert!(
        stderr.contains("tfserving-rest failed at open") && stderr.contains("timeout 1"),
        "{stderr}"
    );
    assert!(stdout.contains("tfserving-rest failed at open"), "{stdout}");
}

#[test]
fn a_managed_server_killed_mid_run_fails_its_backend_and_the_others_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let results = dir.path().join("results");
    let (mut child, rx) = spawn(
        &[
            "compare",
            "--trials",
            "1",
            "--backends",
            "candle,flask",
            "--models",
            "text-cnn",
            "--workers",
            "1",
            "--small-batches",
            "1,2,4",
            "--large-batches",
            "1",
            "--duration",
            "0.1",
            "--request-timeout",
            "2",
            "--results-dir",
            results.to_str().unwrap(),
        ],
        &[(adapter_flask::PID_FILE_ENV, &pid_file)],
    );
    let mut seen = Vec::new();
    // Once measuring has started (the first point's progress line): kill the whole
    // server (master, workers and watchdog) as a crash would.
    wait_for_line(&rx, "[1/3]", &mut seen);
    let text = std::fs::read_to_string(&pid_file).unwrap();
    let group: u32 = text.split_whitespace().next().unwrap().parse().unwrap();
    // SAFETY: signalling the process group of the server our child started.
    unsafe {
        libc::kill(-(group as libc::pid_t), libc::SIGKILL);
    }
    let status = child.wait().unwrap();
    seen.extend(rx.iter());
    let stderr = seen.join("\n");
    assert_eq!(status.code(), Some(3), "{stderr}");
    let doc = results_doc(&results);
    let failed = doc["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["backend"], "flask");
    assert!(
        failed[0]["at"]
            .as_str()
            .unwrap()
            .starts_with("text-cnn batch"),
        "{failed:?}"
    );
    assert!(
        failed[0]["error_kinds"][0]["count"].as_u64().unwrap() > 0,
        "{failed:?}"
    );
    // Every point on candle; flask at most up to the point it died on.
    assert_eq!(rows_of(&doc, "candle").len(), 3, "{doc:#}");
    assert!(rows_of(&doc, "flask").len() < 3, "{doc:#}");
    let left = procs::wait_gone(&[group], None, Duration::from_secs(10));
    assert!(left.is_empty(), "{left}");
}

#[test]
fn sigterm_while_measuring_writes_what_was_measured() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = spawn(
        &[
            "compare",
            "--trials",
            "1",
            "--backends",
            "candle",
            "--models",
            "text-cnn",
            "--small-batches",
            "1,2,4,8",
            "--large-batches",
            "1",
            "--duration",
            "0.2",
            "--results-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    let stderr = sigterm_after(&mut child, &rx, "[3/4]", Duration::ZERO);
    let doc = results_doc(dir.path());
    assert_eq!(doc["interrupted"], "SIGTERM", "{stderr}");
    let rows = rows_of(&doc, "candle").len();
    assert!((2..4).contains(&rows), "{rows} rows\n{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
}

/// A stop signal before measuring starts (here while a hung server's readiness check
/// waits) writes an `interrupted` results.json with no rows and exits 128 + n: the run
/// is on record, with its settings and machine, and says nothing was measured.
#[test]
fn sigterm_before_measuring_writes_an_empty_interrupted_result() {
    let url = hung_server();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, rx) = spawn(
        &[
            "compare",
            "--backends",
            "candle,tfserving-rest",
            "--tfserving-url",
            &url,
            "--models",
            "text-cnn",
            "--request-timeout",
            "60",
            "--results-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    // The first progress line: the fixtures are checked, then the backends open (the
    // hung server's readiness check holds the run there for 10 s).
    let stderr = sigterm_after(&mut child, &rx, "fixtures:", Duration::from_millis(500));
    let doc = results_doc(dir.path());
    assert_eq!(doc["interrupted"], "SIGTERM", "{doc:#}");
    assert_eq!(doc["results"].as_array().unwrap().len(), 0, "{doc:#}");
    assert!(
        stderr.contains("interrupted by SIGTERM before measuring: nothing measured"),
        "{stderr}"
    );
}

/// Two runs writing one `--json` path at once: each writes through its own temporary
/// file in the target's directory and renames it over the path, so the path ends as
/// one run's complete, schema-valid results (never a mix of both), neither run fails,
/// and no temporary file is left beside it.
#[test]
fn two_runs_writing_one_path_leave_one_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("same.json");
    let spawn_run = |sub: &str| {
        let results = dir.path().join(sub);
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .args([
                "run",
                "--backend",
                "candle",
                "--model",
                "text-cnn",
                "--batch",
                "1",
            ])
            .args(["--requests", "200", "--quiet", "--json"])
            .arg(&json)
            .arg("--results-dir")
            .arg(&results)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn_run("a"), spawn_run("b"));
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    assert_eq!(rows_of(&doc, "candle").len(), 1, "{doc}");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["a", "b", "same.json"]);
}
