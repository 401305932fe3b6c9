//! End to end: `torchserve-rest` against a real TorchServe 0.12.0 (Java 17, the
//! fixtures' TorchScript in servebench's handler), on loopback.
//!
//! One short `compare` of candle with `torchserve-rest` (which starts its own
//! TorchServe): agreement passes, rows are recorded, every server process (launcher,
//! Java, Python workers) is gone afterwards. Then one TorchServe started by hand serves
//! the error kinds every server backend shares (unknown model, wrong shape), with
//! TorchServe's message. TorchServe is one of the backends the set-up always provides:
//! without it these tests fail with the command that installs it, they never skip.

mod common;
mod error_kinds;
mod procs;

use std::time::Duration;

use adapter_torchserve::server::{Install, ManagedTorchServe, ServerConfig, READY_TIMEOUT};
use common::{has_ratio_row, quick_compare, result_files, schema_errors, serial, text};
use contract::{Backend, Protocol, Tensor};
use error_kinds::assert_kind;
use fixtures::ModelId;

fn install() -> Install {
    Install::find().unwrap_or_else(|e| panic!("these tests need TorchServe: {e}"))
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

    let files = result_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    let agreement: Vec<_> = doc["agreement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["backend"] == "torchserve-rest")
        .collect();
    assert_eq!(agreement.len(), 1, "{:#}", doc["agreement"]);
    assert_eq!(agreement[0]["passed"], true, "{}", agreement[0]);
    assert_eq!(agreement[0]["top1_agreement"], 1.0, "{}", agreement[0]);
    let rows: Vec<_> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["backend"] == "torchserve-rest")
        .collect();
    assert!(!rows.is_empty(), "torchserve-rest measured nothing");
    for r in rows {
        assert_eq!(r["errors"], 0, "{r}");
    }
    let engine = doc["system"]["engines"]["torchserve-rest"]
        .as_str()
        .unwrap();
    assert_eq!(engine, "torchserve 0.12.0");

    let servers = procs::read_pid_file(&pid_file);
    assert_eq!(servers.len(), 1, "{servers:?}");
    // The launcher, Java and one Python worker at least.
    assert!(servers[0].len() >= 3, "{servers:?}");
    let left = procs::wait_gone(&servers[0], None, Duration::from_secs(10));
    assert!(left.is_empty(), "processes left behind: {left}");
}

#[test]
fn failures_are_counted_by_kind_with_torchserves_message() {
    let _turn = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fixtures_dir = common::fixtures_dir();
        let server = ManagedTorchServe::start(&ServerConfig {
            install: install(),
            fixtures_dir,
            models: vec![ModelId::TextCnn],
            workers: 1,
            intra_threads: 1,
            ready_timeout: READY_TIMEOUT,
        })
        .unwrap();
        let pids = server.group_pids();
        let backend = adapter_torchserve::RestBackend::new(
            &server.url(),
            1,
            error_kinds::description("torchserve-rest", Protocol::Http, &["text-cnn"]),
            Some(server),
        )
        .unwrap();
        backend.health().await.unwrap();
        let run = |model: &str, input: Tensor| {
            let request = backend.prepare(model, vec![input]).unwrap();
            let backend = &backend;
            async move { backend.infer(&request).await }
        };
        let good = fixtures::inputs::batch(ModelId::TextCnn, 2, 1);
        let e = run("resnet18", good.clone()).await;
        let msg = e.as_ref().err().map(ToString::to_string);
        assert!(
            msg.as_deref()
                .is_some_and(|m| m.contains("Model not found")),
            "{msg:?}"
        );
        assert_kind("torchserve-rest", "unknown model", "real TorchServe", e);
        let wrong = Tensor::from_i64(fixtures::INPUT_NAME, vec![2, 3], &[1; 6]);
        let e = run("text-cnn", wrong).await;
        let msg = e.as_ref().err().map(ToString::to_string);
        assert!(
            msg.as_deref()
                .is_some_and(|m| m.contains("unexpected shape")),
            "{msg:?}"
        );
        assert_kind("torchserve-rest", "wrong shape", "real TorchServe", e);
        // A good request still works.
        let out = run("text-cnn", good).await.unwrap();
        assert_eq!(out[0].shape, vec![2, 10]);
        drop(backend);
        let left = procs::wait_gone(&pids, None, Duration::from_secs(10));
        assert!(left.is_empty(), "processes left behind: {left}");
    });
}
