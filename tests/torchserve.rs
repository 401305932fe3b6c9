//! End to end: `torchserve-rest` and `torchserve-grpc` against a real TorchServe 0.12.0
//! (Java 17, the fixtures' TorchScript in servebench's handler), on loopback.
//!
//! One short `compare` of candle with `torchserve-rest` (which starts its own
//! TorchServe): agreement passes, rows are recorded, every server process (launcher,
//! Java, Python workers) is gone afterwards. Then one TorchServe started by hand serves
//! both APIs: the error kinds every server backend shares (unknown model, wrong shape),
//! with TorchServe's message, over REST and gRPC; and a short `compare` of candle with
//! `torchserve-grpc` given that server's gRPC URL (agreement, rows, nothing started).
//! Last, SIGINT during a run with both managed Java/Python servers (TorchServe and
//! MLServer) ends the run with 130 and leaves no process of either.
//! TorchServe is one of the backends the set-up always provides: without it these tests
//! fail with the command that installs it, they never skip.

mod common;
mod error_kinds;
mod procs;

use std::path::Path;
use std::time::Duration;

use adapter_torchserve::server::{Install, ManagedTorchServe, ServerConfig, READY_TIMEOUT};
use common::{
    has_ratio_row, quick_compare, quick_compare_with, result_files, schema_errors, serial, text,
};
use contract::{Backend, Protocol, Tensor};
use error_kinds::assert_kind;
use fixtures::ModelId;

fn install() -> Install {
    Install::find().unwrap_or_else(|e| panic!("these tests need TorchServe: {e}"))
}

/// The one results file under `dir`: `backend` agreed with candle, measured rows without
/// errors, and ran on `engine`.
fn assert_measured(dir: &Path, backend: &str, engine: &str) {
    let files = result_files(dir);
    assert_eq!(files.len(), 1, "{files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    let agreement: Vec<_> = doc["agreement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["backend"] == backend)
        .collect();
    assert_eq!(agreement.len(), 1, "{:#}", doc["agreement"]);
    assert_eq!(agreement[0]["passed"], true, "{}", agreement[0]);
    assert_eq!(agreement[0]["top1_agreement"], 1.0, "{}", agreement[0]);
    let rows: Vec<_> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backend"] == backend)
        .collect();
    assert!(!rows.is_empty(), "{backend} measured nothing");
    for r in rows {
        assert_eq!(r["errors"], 0, "{r}");
    }
    assert_eq!(doc["system"]["engines"][backend].as_str(), Some(engine));
}

#[test]
fn compare_measures_torchserve_beside_candle_and_stops_every_process() {
    let _turn = serial();
    install();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let out = quick_compare(
        "candle,torchserve-rest",
        dir.path(),
        adapter_torchserve::PID_FILE_ENV,
        &pid_file,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(has_ratio_row(&stdout, "torchserve-rest"), "{stdout}");
    assert_measured(dir.path(), "torchserve-rest", "torchserve 0.12.0");

    let servers = procs::read_pid_file(&pid_file);
    assert_eq!(servers.len(), 1, "{servers:?}");
    // The launcher, Java and one Python worker at least.
    assert!(servers[0].len() >= 3, "{servers:?}");
    let left = procs::wait_gone(&servers[0], None, Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left}");
}

#[test]
fn one_server_serves_both_apis_and_counts_failures_by_kind() {
    let _turn = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = ManagedTorchServe::start(&ServerConfig {
        install: install(),
        fixtures_dir: common::fixtures_dir(),
        models: vec![ModelId::TextCnn],
        user_models: vec![],
        workers: 1,
        intra_threads: 1,
        ready_timeout: READY_TIMEOUT,
    })
    .unwrap();
    let pids = server.group_pids();
    rt.block_on(async {
        let models = ["text-cnn"];
        let rest = adapter_torchserve::RestBackend::new(
            &server.url(),
            1,
            error_kinds::description("torchserve-rest", Protocol::Http, &models),
            None,
        )
        .unwrap();
        let grpc = adapter_torchserve::grpc::GrpcBackend::new(
            &server.grpc_url(),
            error_kinds::description("torchserve-grpc", Protocol::Grpc, &models),
            None,
        )
        .unwrap();
        let good = fixtures::inputs::batch(ModelId::TextCnn, 2, 1);
        let wrong = Tensor::from_i64(fixtures::INPUT_NAME, vec![2, 3], &[1; 6]);
        for (name, backend) in [
            ("torchserve-rest", &rest as &dyn Backend),
            ("torchserve-grpc", &grpc),
        ] {
            backend.health().await.unwrap();
            let run = |model: &str, input: Tensor| {
                let request = backend.prepare(model, vec![input]).unwrap();
                async move { backend.infer(&request).await }
            };
            let e = run("resnet18", good.clone()).await;
            let msg = e.as_ref().err().map(ToString::to_string);
            assert!(
                msg.as_deref()
                    .is_some_and(|m| m.contains("Model not found")),
                "{name}: {msg:?}"
            );
            assert_kind(name, "unknown model", "real TorchServe", e);
            let e = run("text-cnn", wrong.clone()).await;
            let msg = e.as_ref().err().map(ToString::to_string);
            assert!(
                msg.as_deref()
                    .is_some_and(|m| m.contains("unexpected shape")),
                "{name}: {msg:?}"
            );
            assert_kind(name, "wrong shape", "real TorchServe", e);
            // A good request still works.
            let out = run("text-cnn", good.clone()).await.unwrap();
            assert_eq!(out[0].shape, vec![2, 10], "{name}");
        }
    });

    // The harness measures the same server over gRPC, given its URL: it starts nothing.
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let url = server.grpc_url();
    let out = quick_compare_with(
        "candle,torchserve-grpc",
        dir.path(),
        adapter_torchserve::PID_FILE_ENV,
        &pid_file,
        &["--torchserve-grpc-url", &url],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(has_ratio_row(&stdout, "torchserve-grpc"), "{stdout}");
    assert_measured(
        dir.path(),
        "torchserve-grpc",
        "torchserve (existing server)",
    );
    assert!(procs::read_pid_file(&pid_file).is_empty());

    drop(server);
    let left = procs::wait_gone(&pids, None, Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left}");
}

/// SIGINT while both managed Java/Python servers, TorchServe and MLServer, are up:
/// the harness exits 130 with the sentence, and neither server leaves a process
/// behind (TorchServe's launcher, Java and its Python workers; MLServer's workers).
#[test]
fn sigint_stops_torchserve_and_mlserver_with_every_process() {
    let _turn = serial();
    install();
    let dir = tempfile::tempdir().unwrap();
    let (ts_pids, ml_pids) = (dir.path().join("ts"), dir.path().join("ml"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "compare",
            "--quiet",
            "--trials",
            "1",
            "--backends",
            "torchserve-rest,kserve-v2-http",
            "--models",
            "text-cnn",
            "--small-batches",
            "1",
            "--large-batches",
            "1",
            // Long enough that the signal always lands before the run ends.
            "--duration",
            "30",
            "--results-dir",
        ])
        .arg(dir.path().join("results"))
        .env(adapter_torchserve::PID_FILE_ENV, &ts_pids)
        .env(adapter_kserve::PID_FILE_ENV, &ml_pids)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + READY_TIMEOUT * 2;
    let servers = loop {
        let (ts, ml) = (
            procs::read_pid_file(&ts_pids),
            procs::read_pid_file(&ml_pids),
        );
        if !ts.is_empty() && !ml.is_empty() {
            break [ts, ml].concat();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the servers never became ready"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the harness ended early"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // SAFETY: sending a signal to our own child process.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    for pids in &servers {
        let left = procs::wait_gone(pids, None, Duration::from_secs(10));
        assert!(left.is_empty(), "left behind after SIGINT: {left}");
    }
}
