//! End to end: the KServe v2 backends against a real MLServer 1.7.1 (from
//! `.venv-mlserver`, servebench's onnxruntime runtime), on loopback.
//!
//! One short `compare` of candle with `kserve-v2-http` and `kserve-v2-grpc` (each starts
//! its own MLServer): agreement passes, rows are recorded with the growth of MLServer's
//! Prometheus counters, every server process is gone afterwards. Then one MLServer started by hand serves both clients for the error
//! kinds every server backend shares (unknown model, wrong shape), with MLServer's
//! message. MLServer is one of the backends the set-up always provides: without it
//! these tests fail with the command that installs it, they never skip.

mod common;
mod error_kinds;
mod procs;

use std::time::Duration;

use adapter_kserve::mlserver::{Install, ManagedMlServer, ServerConfig, READY_TIMEOUT};
use common::{has_ratio_row, quick_compare, result_files, schema_errors, serial, text};
use contract::{Backend, Protocol, Tensor};
use error_kinds::assert_kind;
use fixtures::ModelId;

fn install() -> Install {
    Install::find().unwrap_or_else(|e| panic!("these tests need MLServer: {e}"))
}

#[test]
fn compare_measures_both_protocols_beside_candle_and_stops_every_process() {
    let _turn = serial();
    install();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pids");
    let out = quick_compare(
        "candle,kserve-v2-http,kserve-v2-grpc",
        dir.path(),
        adapter_kserve::PID_FILE_ENV,
        &pid_file,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for backend in [adapter_kserve::HTTP_NAME, adapter_kserve::GRPC_NAME] {
        assert!(has_ratio_row(&stdout, backend), "{stdout}");
    }
    assert!(
        stdout.contains("Server metrics (the server's Prometheus"),
        "{stdout}"
    );

    let files = result_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    let errors = schema_errors(&doc);
    assert!(errors.is_empty(), "schema violations: {errors:#?}");
    for backend in [adapter_kserve::HTTP_NAME, adapter_kserve::GRPC_NAME] {
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
            // The managed server's metrics port, scraped around each window: the
            // measured requests counted, and time in MLServer's data plane.
            let m = &r["server_metrics"];
            let requests = r["requests"].as_f64().unwrap();
            let counted = m["model_infer_request_success_total"].as_f64().unwrap();
            assert!(counted > 0.0 && counted <= requests, "{r}");
            let seconds = m["model_infer_request_duration_sum"].as_f64().unwrap();
            assert!(seconds > 0.0, "{r}");
        }
        let engine = doc["system"]["engines"][backend].as_str().unwrap();
        assert_eq!(engine, "mlserver 1.7.1", "{backend}");
    }

    let servers = procs::read_pid_file(&pid_file);
    assert_eq!(servers.len(), 2, "{servers:?}");
    for pids in &servers {
        // MLServer and its parallel worker at least.
        assert!(pids.len() >= 2, "{pids:?}");
        let left = procs::wait_gone(pids, None, Duration::from_secs(10));
        assert!(left.is_empty(), "processes left behind: {left}");
    }
}

#[test]
fn failures_are_counted_by_kind_with_mlservers_message() {
    let _turn = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fixtures_dir = common::fixtures_dir();
        fixtures::ensure(&fixtures_dir, &[ModelId::TextCnn], fixtures::DEFAULT_SEED).unwrap();
        let server = ManagedMlServer::start(&ServerConfig {
            install: install(),
            fixtures_dir,
            models: vec![ModelId::TextCnn],
            user_models: vec![],
            workers: 1,
            intra_threads: 1,
            ready_timeout: READY_TIMEOUT,
        })
        .unwrap();
        let models = ["text-cnn"];
        let http = adapter_kserve::http::HttpBackend::new(
            adapter_kserve::MLSERVER,
            &server.http_url(),
            adapter_kserve::HttpBody::Json,
            1,
            error_kinds::description("kserve-v2-http", Protocol::Http, &models),
            None,
        )
        .unwrap();
        let grpc = adapter_kserve::grpc::GrpcBackend::new(
            adapter_kserve::MLSERVER,
            &server.grpc_url(),
            error_kinds::description("kserve-v2-grpc", Protocol::Grpc, &models),
            None,
        )
        .unwrap();
        let good = fixtures::inputs::batch(ModelId::TextCnn, 2, 1);
        let wrong = Tensor::from_i64(fixtures::INPUT_NAME, vec![2, 3], &[1; 6]);
        for (name, backend) in [
            ("kserve-v2-http", &http as &dyn Backend),
            ("kserve-v2-grpc", &grpc),
        ] {
            backend.health().await.unwrap();
            let run = |model: &str, input: Tensor| {
                let request = backend.prepare(model, vec![input]).unwrap();
                async move { backend.infer(&request).await }
            };
            let e = run("resnet18", good.clone()).await;
            assert_kind(name, "unknown model", "real MLServer", e);
            let e = run("text-cnn", wrong.clone()).await;
            let msg = e.as_ref().err().map(ToString::to_string);
            assert!(
                msg.as_deref()
                    .is_some_and(|m| m.contains("unexpected shape") && m.contains("MLServer")),
                "{name}: {msg:?}"
            );
            assert_kind(name, "wrong shape", "real MLServer", e);
            // A good request still works.
            let out = run("text-cnn", good.clone()).await.unwrap();
            assert_eq!(out[0].shape, vec![2, 10], "{name}");
            assert_eq!(backend.server_stats("text-cnn").await.unwrap(), None);
        }
        let pids = server.group_pids();
        drop((http, grpc, server));
        let left = procs::wait_gone(&pids, None, Duration::from_secs(10));
        assert!(left.is_empty(), "processes left behind: {left}");
    });
}
