//! End to end: the Flask app behind a real Gunicorn (2 workers) on loopback.
//!
//! Checks that `compare` measures `flask` next to the in-process engines with the
//! agreement check passing, that the server and every worker are gone (by pid) after a
//! normal run and a run that fails half-way (signals: `tests/signals.rs`), that bad
//! requests get 4xx JSON errors, that failures are counted with the error kinds every
//! server backend shares, and that an unreachable `--flask-url` is one clear error.
//! The tests take turns: each starts its own Gunicorn and the machine has few cores.

mod common;
mod error_kinds;
mod procs;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use adapter_flask::server::{self, ManagedServer, ServerConfig};
use common::{has_ratio_row, result_files, schema_errors, text};
use contract::{Backend, Protocol, Tensor};
use error_kinds::{assert_kind, Double};
use fixtures::ModelId;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The harness with the pid file hook pointed at `pid_file`.
fn harness_cmd(args: &[&str], pid_file: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args).env(adapter_flask::PID_FILE_ENV, pid_file);
    cmd
}

/// Master and worker pids the adapter wrote (master first).
fn read_pids(pid_file: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(pid_file).unwrap_or_default();
    text.lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn assert_all_gone(pids: &[u32]) {
    assert_eq!(
        pids.len(),
        3,
        "expected a master and 2 workers, got {pids:?}"
    );
    let left = procs::leftovers(pids, None);
    assert!(left.is_empty(), "processes left behind: {left}");
}

#[test]
fn compare_measures_flask_with_agreement_and_stops_every_process() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let out = harness_cmd(
        &[
            "compare",
            "--quick",
            "--time-budget",
            "10s",
            // One request a window at least, as before: the slowest points (candle
            // at large batches, seconds a request in a debug build) keep the suite short.
            "--min-requests",
            "1",
            "--quiet",
            "--trials",
            "1",
            "--backends",
            "candle,onnxruntime,flask",
            "--models",
            "text-cnn,resnet18",
            "--workers",
            "2",
            "--results-dir",
            dir.path().to_str().unwrap(),
        ],
        &pid_file,
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(has_ratio_row(&stdout, "flask"), "{stdout}");

    let files = result_files(dir.path());
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    let flask_agreement: Vec<_> = doc["agreement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["backend"] == "flask")
        .collect();
    assert_eq!(flask_agreement.len(), 2, "{:#}", doc["agreement"]);
    for a in flask_agreement {
        assert_eq!(a["passed"], true, "{a}");
        assert_eq!(a["top1_agreement"], 1.0, "{a}");
    }
    for r in doc["results"].as_array().unwrap() {
        if r["backend"] == "flask" {
            assert_eq!(r["errors"], 0, "{r}");
        }
        // What served the point was sampled: Gunicorn's whole process group, or the
        // in-process engines' own threads.
        let u = &r["resources"];
        let scope = if r["backend"] == "flask" {
            "process-group"
        } else {
            "engine-threads"
        };
        assert_eq!(u["scope"], scope, "{r}");
        assert!(u["cpu_cores"].as_f64().unwrap() > 0.0, "{r}");
        assert!(u["peak_memory_mb"].as_f64().unwrap() > 1.0, "{r}");
        // Throughput per core used.
        let per_core = r["efficiency"]["samples_per_s_per_core"].as_f64().unwrap();
        assert!(per_core > 0.0, "{r}");
        assert!(
            r["efficiency"]["samples_per_s_per_gpu_watt"].is_null(),
            "{r}"
        );
    }
    let page = common::unwrapped(&stdout);
    assert!(page.contains("Resources while measured"), "{stdout}");
    assert!(page.contains("Cold start: open until ready"), "{stdout}");
    let flask = doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == "flask")
        .unwrap();
    assert_eq!(flask["workers"], 2, "{flask}");
    assert_eq!(flask["intra_threads"], 1, "{flask}");
    assert_eq!(flask["protocol"], "http", "{flask}");
    assert!(flask["cold_start_ms"].as_f64().unwrap() > 0.0, "{flask}");
    assert!(flask["first_request_ms"].as_f64().unwrap() > 0.0, "{flask}");
    // Gunicorn's master and two workers, each with onnxruntime and both models.
    assert!(
        flask["loaded_memory_mb"].as_f64().unwrap() > 50.0,
        "{flask}"
    );

    assert_all_gone(&read_pids(&pid_file));
}

#[test]
fn a_run_failing_half_way_stops_every_process() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    // The server starts and answers, then the agreement check fails under --strict.
    let out = harness_cmd(
        &[
            "compare",
            "--quick",
            "--quiet",
            "--trials",
            "1",
            "--strict",
            "--atol",
            "0",
            "--rtol",
            "0",
            "--backends",
            "flask",
            "--models",
            "text-cnn",
            "--workers",
            "2",
            "--results-dir",
            dir.path().to_str().unwrap(),
        ],
        &pid_file,
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_all_gone(&read_pids(&pid_file));
}

/// One HTTP/1.0 request; returns the status and the body parsed as JSON.
fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(!body.contains("Traceback"), "{body}");
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    (status, json)
}

#[test]
fn bad_requests_get_4xx_json_errors() {
    let _turn = serial();
    let fixtures_dir = common::fixtures_dir();
    fixtures::ensure(&fixtures_dir, &[ModelId::TextCnn], fixtures::DEFAULT_SEED).unwrap();
    let mut srv = ManagedServer::start(&ServerConfig {
        gunicorn: server::gunicorn().expect("gunicorn in .venv: run scripts/setup"),
        app_dir: server::app_dir(),
        fixtures_dir,
        models: vec!["text-cnn".into()],
        model_files: Default::default(),
        precision: Default::default(),
        workers: 2,
        intra_threads: 1,
        ready_timeout: server::READY_TIMEOUT,
    })
    .unwrap();
    let port = srv.port();
    let row = |v: &str| format!("[{}]", vec![v; 600].join(","));
    let ok = format!(r#"{{"instances": [{}]}}"#, row("3"));

    let (status, good) = request(port, "POST", "/v1/models/text-cnn:predict", &ok);
    assert_eq!(status, 200, "{good}");
    assert_eq!(good["predictions"].as_array().unwrap().len(), 1);
    let (status, meta) = request(port, "GET", "/v1/models/text-cnn/metadata", "");
    assert_eq!(status, 200);
    assert_eq!(meta["metadata"]["inputs"][0]["shape"][1], 600, "{meta}");

    let cases = [
        (
            "malformed JSON",
            "POST",
            "/v1/models/text-cnn:predict",
            "{\"instances\": [".to_string(),
            400,
        ),
        (
            "no instances",
            "POST",
            "/v1/models/text-cnn:predict",
            r#"{"inputs": []}"#.to_string(),
            400,
        ),
        (
            "wrong shape",
            "POST",
            "/v1/models/text-cnn:predict",
            r#"{"instances": [[1, 2, 3]]}"#.to_string(),
            400,
        ),
        (
            "ragged",
            "POST",
            "/v1/models/text-cnn:predict",
            format!(r#"{{"instances": [{}, [1]]}}"#, row("1")),
            400,
        ),
        (
            "wrong dtype",
            "POST",
            "/v1/models/text-cnn:predict",
            format!(r#"{{"instances": [{}]}}"#, row("0.5")),
            400,
        ),
        (
            "strings",
            "POST",
            "/v1/models/text-cnn:predict",
            format!(r#"{{"instances": [{}]}}"#, row("\"a\"")),
            400,
        ),
        (
            "id out of range",
            "POST",
            "/v1/models/text-cnn:predict",
            format!(r#"{{"instances": [{}]}}"#, row("99999999")),
            400,
        ),
        (
            "unknown model",
            "POST",
            "/v1/models/resnet9:predict",
            ok.clone(),
            404,
        ),
        ("unknown path", "GET", "/v2/nothing", String::new(), 404),
        (
            "GET on predict",
            "GET",
            "/v1/models/text-cnn:predict",
            String::new(),
            404,
        ),
        ("wrong method", "DELETE", "/health", String::new(), 405),
    ];
    for (what, method, path, body, want) in cases {
        let (status, json) = request(port, method, path, &body);
        assert_eq!(status, want, "{what}: {json}");
        let msg = json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {json}"));
        assert!(!msg.is_empty(), "{what}");
    }

    let mut pids = vec![srv.pid()];
    pids.extend_from_slice(srv.worker_pids());
    srv.stop();
    assert_all_gone(&pids);
}

#[test]
fn failures_are_counted_by_kind_with_the_apps_message() {
    let _turn = serial();
    let fixtures_dir = common::fixtures_dir();
    fixtures::ensure(&fixtures_dir, &[ModelId::TextCnn], fixtures::DEFAULT_SEED).unwrap();
    let srv = ManagedServer::start(&ServerConfig {
        gunicorn: server::gunicorn().expect("gunicorn in .venv: run scripts/setup"),
        app_dir: server::app_dir(),
        fixtures_dir: fixtures_dir.clone(),
        models: vec!["text-cnn".into()],
        model_files: Default::default(),
        precision: Default::default(),
        workers: 1,
        intra_threads: 1,
        ready_timeout: server::READY_TIMEOUT,
    })
    .unwrap();
    // The app answers 500 with its one-line message when it fails unexpectedly: here,
    // JSON nested deeper than Python's recursion limit.
    let deep = format!(r#"{{"instances": {}"#, "[".repeat(100_000));
    let (status, internal) = request(srv.port(), "POST", "/v1/models/text-cnn:predict", &deep);
    assert_eq!(status, 500, "{internal}");
    assert!(
        internal["error"]
            .as_str()
            .unwrap()
            .starts_with("internal error: "),
        "{internal}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    let opts = error_kinds::text_cnn(fixtures_dir);
    let open = |url: &str| {
        let options = adapter_flask::Options {
            url: Some(url.to_string()),
        };
        adapter_flask::open(&opts, &options).unwrap()
    };
    let run = |b: &dyn Backend, model: &str, t: Tensor| {
        rt.block_on(async { b.infer(&b.prepare(model, vec![t])?).await })
    };
    let real = open(&format!("http://127.0.0.1:{}", srv.port()));
    rt.block_on(real.health()).unwrap();
    assert_eq!(real.describe().models, ["text-cnn"]);
    let good = fixtures::inputs::batch(ModelId::TextCnn, 1, 1);
    let e = run(&*real, "no-such-model", good.clone());
    let msg = e
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(msg.contains("is not served here"), "{msg}");
    assert_kind("flask", "unknown model", "real app", e);
    let short = Tensor::from_i64("input", vec![1, 599], &[1; 599]);
    let e = run(&*real, "text-cnn", short);
    let msg = e
        .as_ref()
        .err()
        .map(ToString::to_string)
        .unwrap_or_default();
    assert!(msg.contains("599"), "{msg}");
    assert_kind("flask", "wrong shape", "real app", e);
    assert!(run(&*real, "text-cnn", good.clone()).is_ok());

    // The real app's 500 (above) cannot be caused by a well-formed request: a test double
    // replays it.
    let failing = Double::answering(500, internal.to_string());
    let e = run(&*open(&failing.url), "text-cnn", good.clone());
    assert_kind(
        "flask",
        "server error",
        "test double replaying the app's 500",
        e,
    );

    // The client's own deadline, against a test double that never answers.
    let silent = Double::silent();
    let slow = adapter_flask::FlaskBackend::with_deadlines(
        &silent.url,
        1,
        error_kinds::description("flask", Protocol::Http, &["text-cnn"]),
        None,
        error_kinds::short_deadlines(),
    )
    .unwrap();
    let e = run(&slow, "text-cnn", good);
    assert_kind("flask", "timeout", "silent test double, 300 ms deadline", e);
}

#[test]
fn unreachable_flask_url_is_one_clear_error() {
    let _turn = serial();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let pid_file = dir.path().join("pids");
    let out = harness_cmd(
        &[
            "compare",
            "--quick",
            "--time-budget",
            "6s",
            // One request a window at least, as before: the slowest points (candle
            // at large batches, seconds a request in a debug build) keep the suite short.
            "--min-requests",
            "1",
            "--quiet",
            "--trials",
            "1",
            "--backends",
            "flask",
            "--models",
            "text-cnn",
            "--flask-url",
            &url,
            "--results-dir",
            dir.path().to_str().unwrap(),
        ],
        &pid_file,
    )
    .output()
    .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: flask: "), "{stderr}");
    assert!(lines[0].contains(&url), "{stderr}");
    assert!(lines[0].to_lowercase().contains("refused"), "{stderr}");
    assert!(!pid_file.exists(), "a server was started");
}

#[test]
fn an_app_that_cannot_start_is_one_sentence_with_its_log() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap(); // holds no model.onnx
    let err = ManagedServer::start(&ServerConfig {
        gunicorn: server::gunicorn().expect("gunicorn in .venv: run scripts/setup"),
        app_dir: server::app_dir(),
        fixtures_dir: dir.path().to_path_buf(),
        models: vec!["text-cnn".into()],
        model_files: Default::default(),
        precision: Default::default(),
        workers: 2,
        intra_threads: 1,
        ready_timeout: server::READY_TIMEOUT,
    })
    .unwrap_err()
    .to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(
        err.starts_with("flask is unavailable: gunicorn exited"),
        "{err}"
    );
    assert!(err.contains("last log lines: "), "{err}");
    assert!(err.contains("NO_SUCHFILE"), "{err}");
    assert!(err.contains("scripts/setup"), "{err}");
}
