//! End to end: the real Triton server bundled in `nvidia-pytriton`, on loopback.
//!
//! Checks that `compare` measures `triton-http` (binary and JSON bodies) and
//! `triton-grpc` next to ONNX Runtime with the agreement check passing and a server-side
//! breakdown; that every server process (tritonserver and its Python stubs) is gone, by
//! pid, after a normal run, a run failing half-way and SIGINT to the harness; that
//! failures are counted with the error kinds every server backend shares (unknown model,
//! wrong shape, server error from the real server; a client deadline against a silent
//! test double), with Triton's message, over both protocols; and that an unreachable URL
//! is one clear error with a non-zero exit.
//! The tests take turns: each starts its own servers and the machine has few cores.

mod common;
mod error_kinds;
mod procs;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use adapter_triton::server::{Install, ManagedTriton, ServerConfig, READY_TIMEOUT};
use common::{has_ratio_row, result_files, schema_errors, text};
use contract::{Protocol, Tensor};
use error_kinds::{assert_kind, Double};
use fixtures::ModelId;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The harness with the pid file hook pointed at `pid_file`.
fn harness_cmd(args: &[&str], pid_file: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.args(args).env(adapter_triton::PID_FILE_ENV, pid_file);
    cmd
}

/// Every server had a tritonserver and at least one Python stub, and none is alive.
fn assert_all_gone(servers: &[Vec<u32>], expected_servers: usize) {
    assert_eq!(servers.len(), expected_servers, "{servers:?}");
    for pids in servers {
        assert!(
            pids.len() >= 2,
            "expected tritonserver and its Python stubs, got {pids:?}"
        );
        let left = procs::leftovers(pids, None);
        assert!(left.is_empty(), "processes left behind: {left}");
    }
}

fn compare_args<'a>(dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "compare",
        "--quiet",
        "--trials",
        "1",
        "--time-budget",
        "12s",
        // One request a window at least, as before: the slowest points (candle
        // at large batches, seconds a request in a debug build) keep the suite short.
        "--min-requests",
        "1",
        "--small-batches",
        "1,4",
        "--large-batches",
        "32",
        "--large-batches-resnet",
        "8",
        "--duration",
        "0.3",
        "--results-dir",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

fn results_doc(dir: &Path) -> serde_json::Value {
    let files = result_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap()
}

/// Agreement passed and every point measured without errors, with a server breakdown.
fn assert_measured(doc: &serde_json::Value, backend: &str, models: usize) {
    let agreement: Vec<_> = doc["agreement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["backend"] == backend)
        .collect();
    assert_eq!(agreement.len(), models, "{:#}", doc["agreement"]);
    for a in agreement {
        assert_eq!(a["passed"], true, "{a}");
        assert_eq!(a["top1_agreement"], 1.0, "{a}");
    }
    let points: Vec<_> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backend"] == backend)
        .collect();
    assert!(!points.is_empty(), "{backend} measured nothing");
    for r in points {
        assert_eq!(r["errors"], 0, "{r}");
        let s = &r["server"];
        assert!(s.is_object(), "no server breakdown: {r}");
        assert!(s["compute_infer_ms"].as_f64().unwrap() > 0.0, "{r}");
        // The managed server's metrics port, scraped around each window: the measured
        // requests counted (Triton may count a window's last answer only after the
        // scrape), each request `batch` inferences.
        let m = &r["server_metrics"];
        let requests = r["requests"].as_f64().unwrap();
        let counted = m["nv_inference_request_success"].as_f64().unwrap();
        assert!(counted > 0.0 && counted <= requests, "{r}");
        // Each request is `batch` inferences. Triton bumps its two counters one after
        // the other, so a scrape at either end of the window may see a request in one
        // and not yet in the other (seen once: 812 inferences against 202 x 4).
        let batch = r["batch_size"].as_f64().unwrap();
        let inferences = m["nv_inference_count"].as_f64().unwrap();
        assert_eq!(inferences % batch, 0.0, "{r}");
        assert!((inferences / batch - counted).abs() <= 2.0, "{r}");
        assert!(
            m["nv_inference_compute_infer_duration_us"]
                .as_f64()
                .unwrap()
                > 0.0,
            "{r}"
        );
    }
}

fn backend_info<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {:#}", doc["backends"]))
}

#[test]
fn compare_measures_both_protocols_with_binary_bodies_and_stops_every_process() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let out = harness_cmd(
        &compare_args(
            dir.path(),
            &[
                "--backends",
                "onnxruntime,triton-http,triton-grpc",
                "--models",
                "text-cnn,resnet18",
                "--workers",
                "2",
            ],
        ),
        &pid_file,
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(has_ratio_row(&stdout, "triton-http"), "{stdout}");
    assert!(has_ratio_row(&stdout, "triton-grpc"), "{stdout}");
    assert!(stdout.contains("Server-side breakdown"), "{stdout}");
    assert!(stdout.contains("remainder: network + protocol"), "{stdout}");
    assert!(
        stdout.contains("Server metrics (the server's Prometheus"),
        "{stdout}"
    );

    let doc = results_doc(dir.path());
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    assert_measured(&doc, "triton-http", 2);
    assert_measured(&doc, "triton-grpc", 2);
    let http = backend_info(&doc, "triton-http");
    assert_eq!(http["protocol"], "http", "{http}");
    assert_eq!(http["workers"], 2, "{http}");
    assert_eq!(http["details"]["http_body"], "binary", "{http}");
    assert_eq!(http["details"]["instance_group"], "2", "{http}");
    assert!(
        http["details"]["variant"]
            .as_str()
            .unwrap()
            .starts_with("python backend"),
        "{http}"
    );
    assert_eq!(backend_info(&doc, "triton-grpc")["protocol"], "grpc");

    assert_all_gone(&procs::read_pid_file(&pid_file), 2);
}

#[test]
fn json_bodies_with_dynamic_batching_measure_and_agree() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let out = harness_cmd(
        &compare_args(
            dir.path(),
            &[
                "--backends",
                "onnxruntime,triton-http",
                "--models",
                "text-cnn",
                "--triton-http-body",
                "json",
                "--dynamic-batching",
                "--concurrency",
                "2",
            ],
        ),
        &pid_file,
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let doc = results_doc(dir.path());
    assert_measured(&doc, "triton-http", 1);
    let http = backend_info(&doc, "triton-http");
    assert_eq!(http["details"]["http_body"], "json", "{http}");
    assert_eq!(http["details"]["dynamic_batching"], "on", "{http}");
    assert_all_gone(&procs::read_pid_file(&pid_file), 1);
}

#[test]
fn a_run_failing_half_way_stops_every_process() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    // The server starts and answers, then the agreement check fails under --strict.
    let out = harness_cmd(
        &compare_args(
            dir.path(),
            &[
                "--strict",
                "--atol",
                "0",
                "--rtol",
                "0",
                "--backends",
                "triton-grpc",
                "--models",
                "text-cnn",
            ],
        ),
        &pid_file,
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stderr.contains("triton-grpc"), "{stderr}");
    assert_all_gone(&procs::read_pid_file(&pid_file), 1);
}

#[test]
fn sigint_to_the_harness_stops_every_process() {
    stopped_by(libc::SIGINT);
}

/// After SIGKILL of the harness, the watchdog in the server's group stops tritonserver
/// and its Python stubs by itself (see tests/signals.rs for every signal with Flask).
#[test]
fn sigkill_of_the_harness_leaves_nothing_behind() {
    stopped_by(libc::SIGKILL);
}

fn stopped_by(signal: libc::c_int) {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let mut child = harness_cmd(
        &[
            "compare",
            "--quiet",
            "--trials",
            "1",
            "--backends",
            "triton-http",
            "--models",
            "text-cnn",
            "--small-batches",
            "1",
            "--large-batches",
            "1",
            "--duration",
            "60",
            "--results-dir",
            dir.path().to_str().unwrap(),
        ],
        &pid_file,
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    let servers = loop {
        let servers = procs::read_pid_file(&pid_file);
        if !servers.is_empty() {
            break servers;
        }
        assert!(Instant::now() < deadline, "the server never became ready");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the harness ended early"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    std::thread::sleep(Duration::from_millis(1500)); // into the measurement
    assert!(servers[0].iter().all(|&p| procs::alive(p)), "{servers:?}");
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    if signal == libc::SIGKILL {
        let left = procs::wait_gone(&servers[0], None, Duration::from_secs(30));
        assert!(left.is_empty(), "left behind after SIGKILL: {left}");
    } else {
        assert_eq!(status.code(), Some(128 + signal), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
    }
    assert_all_gone(&servers, 1);
}

#[test]
fn failures_are_counted_by_kind_with_tritons_message() {
    let _turn = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fixtures_dir = common::fixtures_dir();
        fixtures::ensure(&fixtures_dir, &[ModelId::TextCnn], fixtures::DEFAULT_SEED).unwrap();
        let cfg = ServerConfig {
            install: Install::find().expect("nvidia-pytriton in .venv-triton: run scripts/setup"),
            fixtures_dir: fixtures_dir.clone(),
            models: vec![ModelId::TextCnn],
            user_models: vec![],
            instances: 1,
            intra_threads: 1,
            dynamic_batching: false,
            precision: Default::default(),
            conversions: false,
            ready_timeout: READY_TIMEOUT,
        };
        let server = tokio::task::spawn_blocking(move || ManagedTriton::start(&cfg))
            .await
            .unwrap()
            .unwrap();
        let options = adapter_triton::Options {
            url: Some(server.http_url()),
            grpc_url: Some(server.grpc_url()),
            ..Default::default()
        };
        let opts = error_kinds::text_cnn(fixtures_dir);
        let http = adapter_triton::open_http(&opts, &options).unwrap();
        let grpc = adapter_triton::open_grpc(&opts, &options).unwrap();
        // 599 tokens where the model takes 600.
        let short = Tensor::from_i64("input", vec![1, 599], &[1; 599]);
        // Token ids past the vocabulary: Triton takes the request, the model fails.
        let out_of_range = Tensor::from_i64("input", vec![1, 600], &[99_999_999; 600]);
        for backend in [&http, &grpc] {
            backend.health().await.unwrap();
            let name = backend.describe().name;
            assert_eq!(backend.describe().details["server"], "existing");
            assert_eq!(backend.describe().models, ["text-cnn"]);
            let run = |model: &'static str, t: Tensor| {
                let b = backend.clone();
                async move { b.infer(&b.prepare(model, vec![t])?).await }
            };
            let good = fixtures::inputs::batch(ModelId::TextCnn, 2, 1);
            let e = run("no-such-model", good.clone()).await;
            assert_kind(&name, "unknown model", "real Triton", e);
            let e = run("text-cnn", short.clone()).await;
            let msg = e
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(
                msg.contains("unexpected shape for input 'input'") && msg.contains("599"),
                "{name}: {msg}"
            );
            assert_kind(&name, "wrong shape", "real Triton", e);
            let e = run("text-cnn", out_of_range.clone()).await;
            let msg = e
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default();
            assert!(msg.contains("onnxruntime failed"), "{name}: {msg}");
            assert_kind(&name, "server error", "real Triton, the model fails", e);
            // A good request still works, and the statistics count it. Triton may count
            // the requests before it a moment late (CI once read 0, then 2): read the
            // counters once they have stopped moving.
            let settled = || async {
                let mut last = backend.server_stats("text-cnn").await.unwrap().unwrap();
                for _ in 0..40 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let now = backend.server_stats("text-cnn").await.unwrap().unwrap();
                    if now.requests == last.requests {
                        return now;
                    }
                    last = now;
                }
                last
            };
            let before = settled().await;
            let out = run("text-cnn", good).await.unwrap();
            assert_eq!(out[0].shape, vec![2, 10], "{name}");
            let after = settled().await;
            assert_eq!(after.requests, before.requests + 1, "{name}");
            assert!(after.compute_infer_ns > before.compute_infer_ns, "{name}");
        }

        // The client's own deadline, against a test double that never answers.
        let silent = Double::silent();
        let deadlines = error_kinds::short_deadlines();
        let models = ["text-cnn"];
        let http = adapter_triton::http::HttpBackend::with_deadlines(
            adapter_triton::FLAVOR,
            &silent.url,
            adapter_triton::HttpBody::Binary,
            1,
            error_kinds::description("triton-http", Protocol::Http, &models),
            None,
            deadlines,
        )
        .unwrap();
        let grpc = adapter_triton::grpc::GrpcBackend::with_deadlines(
            adapter_triton::FLAVOR,
            &silent.url,
            error_kinds::description("triton-grpc", Protocol::Grpc, &models),
            None,
            deadlines,
        )
        .unwrap();
        let good = fixtures::inputs::batch(ModelId::TextCnn, 1, 1);
        for (name, backend) in [
            ("triton-http", &http as &dyn contract::Backend),
            ("triton-grpc", &grpc),
        ] {
            let request = backend.prepare("text-cnn", vec![good.clone()]).unwrap();
            let e = backend.infer(&request).await;
            assert_kind(name, "timeout", "silent test double, 300 ms deadline", e);
        }

        let pids = server.group_pids();
        drop((http, grpc, server));
        assert_all_gone(&[pids], 1);
    });
}

#[test]
fn unreachable_urls_are_one_clear_error() {
    let _turn = serial();
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    for (backend, flag) in [
        ("triton-http", "--triton-url"),
        ("triton-grpc", "--triton-grpc-url"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pids");
        let out = harness_cmd(
            &compare_args(
                dir.path(),
                &["--backends", backend, "--models", "text-cnn", flag, &url],
            ),
            &pid_file,
        )
        .output()
        .unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{backend}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{backend}: {stderr}");
        assert!(
            lines[0].starts_with(&format!("error: {backend}: ")),
            "{stderr}"
        );
        assert!(lines[0].contains(&url), "{stderr}");
        assert!(lines[0].to_lowercase().contains("refused"), "{stderr}");
        assert!(!pid_file.exists(), "a server was started");
    }
}
