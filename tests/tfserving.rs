//! End to end: the TF Serving adapter against the test peer, and the SavedModels
//! against the reference backend.
//!
//! TF Serving itself cannot run here (no binary, no Docker engine). These tests start
//! `fixtures/tfserving/test_peer.py` (TensorFlow in `.venv-tf`, TF Serving's REST API
//! and its gRPC API through the official generated stubs) on 127.0.0.1 with ports
//! picked at run time, and stop it at the end (its own process group, `support::process`).
//! They check:
//! - the SavedModels that `export_savedmodel.py` writes give candle's outputs on the
//!   fixture inputs, within the harness's agreement tolerance (atol 1e-3, rtol 1e-3);
//! - `tfserving-rest` (row and columnar bodies) and `tfserving-grpc` give the same
//!   outputs, say they talk to the test peer (never "TF Serving"), and count failures
//!   with the error kinds every server backend shares, with the server's message:
//!   unknown model (404 / NOT_FOUND), wrong shape and wrong dtype (400 /
//!   INVALID_ARGUMENT), server error (500 / INTERNAL, the peer's test hook) and the
//!   client's deadline (a silent test double);
//! - `compare` measures both backends against the peer, labelled as the peer;
//! - without a server, `compare` lists both as not measured with how to start TF
//!   Serving, and still measures the rest.
//!
//! The tests take turns: each starts its own peer and the machine has few cores.

mod common;
mod error_kinds;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{result_files, schema_errors, text};
use contract::{Backend, Device, OpenOptions, Protocol, Tensor};
use error_kinds::{assert_kind, Double};
use fixtures::ModelId;
use support::process::{free_ports, http_get_ok, ManagedProcess, Probe};

/// The model name for which the test peer answers 500 / INTERNAL (its test hook).
const INTERNAL_ERROR_MODEL: &str = "servebench-internal-error";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `.venv-tf/bin/python3`, which `scripts/setup` installs.
fn tf_python() -> PathBuf {
    let p = repo().join(".venv-tf/bin/python3");
    assert!(
        p.exists(),
        "{} is missing: run scripts/setup (it installs requirements-tf.txt into .venv-tf)",
        p.display()
    );
    p
}

/// The fixtures of `models` and their SavedModels (exported when missing).
fn savedmodels(models: &[ModelId]) -> PathBuf {
    let dir = common::fixtures_dir();
    fixtures::ensure(&dir, models, fixtures::DEFAULT_SEED).expect("fixtures generate");
    let out = dir.join("tfserving");
    let missing: Vec<&str> = models
        .iter()
        .map(|m| m.name())
        .filter(|m| !out.join(m).join("1/saved_model.pb").exists())
        .collect();
    if !missing.is_empty() {
        let status = Command::new(tf_python())
            .arg(repo().join("fixtures/tfserving/export_savedmodel.py"))
            .arg("--fixtures-dir")
            .arg(&dir)
            .arg("--models")
            .arg(missing.join(","))
            .status()
            .expect("the exporter runs");
        assert!(status.success(), "export_savedmodel.py failed: {status}");
    }
    out
}

/// The test peer on two free loopback ports, stopped (with its group) when dropped.
struct Peer {
    _process: ManagedProcess,
    rest: String,
    grpc: String,
}

fn start_peer(models: &[ModelId]) -> Peer {
    let dir = savedmodels(models);
    let ports = free_ports(2).unwrap();
    let names: Vec<&str> = models.iter().map(|m| m.name()).collect();
    let mut process =
        ManagedProcess::spawn("servebench-tfpeer-", Command::new(tf_python()), |c, _| {
            c.arg(repo().join("fixtures/tfserving/test_peer.py"))
                .arg("--models-dir")
                .arg(&dir)
                .args(["--models", &names.join(",")])
                .args(["--rest-port", &ports[0].to_string()])
                .args(["--grpc-port", &ports[1].to_string()]);
        })
        .unwrap();
    let probe = format!("/v1/models/{}", names[0]);
    if let Err(e) = process.wait_ready(Duration::from_secs(240), |p| {
        if http_get_ok(ports[0], &probe) && p.log().contains("test_peer ready") {
            Probe::Ready
        } else {
            Probe::Waiting
        }
    }) {
        panic!(
            "the test peer did not start: {e:?}; its log:\n{}",
            process.log()
        );
    }
    Peer {
        _process: process,
        rest: format!("http://127.0.0.1:{}", ports[0]),
        grpc: format!("http://127.0.0.1:{}", ports[1]),
    }
}

fn opts(models: &[ModelId]) -> OpenOptions {
    OpenOptions {
        models: models.iter().map(|m| m.name().to_string()).collect(),
        fixtures_dir: common::fixtures_dir(),
        workers: 1,
        intra_threads: 2,
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn run(
    b: &Arc<dyn Backend>,
    model: &str,
    inputs: Vec<Tensor>,
) -> Result<Vec<Tensor>, contract::BackendError> {
    let p = b.prepare(model, inputs)?;
    b.infer(&p).await
}

/// `(max abs diff, passed, top-1 agreement)` of `got` against `want` with the
/// harness's own tolerance.
fn agree(got: &Tensor, want: &Tensor, classes: usize) -> (f64, bool, f64) {
    assert_eq!(got.shape, want.shape, "output shapes differ");
    let (abs, _, top1, passed) = harness::agreement::compare(
        &got.to_f32().unwrap(),
        &want.to_f32().unwrap(),
        classes,
        harness::config::DEFAULT_ATOL,
        harness::config::DEFAULT_RTOL,
    )
    .unwrap();
    (abs, passed, top1)
}

fn write_raw(path: &Path, t: &Tensor) {
    std::fs::write(path, &t.data).unwrap();
}

#[test]
fn savedmodels_agree_with_candle() {
    let _turn = serial();
    let models = ModelId::ALL;
    let dir = savedmodels(&models);
    let tmp = tempfile::tempdir().unwrap();
    let rt = runtime();
    let candle = adapter_candle::open(&opts(&models)).unwrap();
    let mut cases = Vec::new();
    let mut want = Vec::new();
    for m in models {
        let batch = if m == ModelId::TextCnn { 8 } else { 2 };
        let x = fixtures::inputs::batch(m, batch, fixtures::DEFAULT_SEED);
        let src = tmp.path().join(format!("{m}.in"));
        let dest = tmp.path().join(format!("{m}.out"));
        write_raw(&src, &x);
        let shape: Vec<String> = x.shape.iter().map(usize::to_string).collect();
        cases.push(format!(
            "{m}:{}:{}:{}:{}",
            src.display(),
            x.dtype,
            shape.join("x"),
            dest.display()
        ));
        let y = rt
            .block_on(run(&candle, m.name(), vec![x]))
            .unwrap()
            .remove(0);
        want.push((m, y, dest));
    }
    let out = Command::new(tf_python())
        .arg(repo().join("fixtures/tfserving/run_savedmodel.py"))
        .arg("--models-dir")
        .arg(&dir)
        .args(&cases)
        .output()
        .unwrap();
    let (so, se) = text(&out);
    assert!(
        out.status.success(),
        "run_savedmodel.py failed:\n{so}\n{se}"
    );
    for (m, y, dest) in want {
        let bytes = std::fs::read(&dest).unwrap();
        let got = Tensor::new(
            "logits",
            contract::DType::F32,
            y.shape.clone(),
            bytes.into(),
        )
        .expect("TensorFlow's logits have candle's shape");
        let (abs, passed, top1) = agree(&got, &y, m.classes());
        println!("savedmodel agreement {m}: max abs diff {abs:.3e}, top-1 {top1}");
        assert!(
            passed,
            "{m}: the SavedModel differs from candle by {abs} (tolerance atol 1e-3 + rtol 1e-3)"
        );
        assert_eq!(top1, 1.0, "{m}: top-1 classes differ");
    }
}

#[test]
fn rest_and_grpc_answer_like_tf_serving_and_count_its_errors() {
    let _turn = serial();
    let models = [ModelId::TextCnn, ModelId::Resnet18];
    let peer = start_peer(&models);
    let rt = runtime();
    // tonic's lazy channel spawns its connection task on the runtime it is opened in.
    let _in_runtime = rt.enter();
    let candle = adapter_candle::open(&opts(&models)).unwrap();
    let options = |format| adapter_tfserving::Options {
        url: Some(peer.rest.clone()),
        grpc_url: Some(peer.grpc.clone()),
        metrics_url: None,
        format,
    };
    for (label, format) in [
        ("rest row", Some(adapter_tfserving::RestFormat::Row)),
        (
            "rest columnar",
            Some(adapter_tfserving::RestFormat::Columnar),
        ),
        ("grpc", None),
    ] {
        let b = match format {
            Some(f) => adapter_tfserving::open_rest(&opts(&models), &options(f)).unwrap(),
            None => {
                adapter_tfserving::open_grpc(&opts(&models), &options(Default::default())).unwrap()
            }
        };
        rt.block_on(b.health())
            .unwrap_or_else(|e| panic!("{label}: health: {e}"));
        let d = b.describe();
        assert_eq!(d.engine, adapter_tfserving::PEER_ENGINE, "{label}: {d:?}");
        assert!(d.served_by_test_peer, "{label}: {d:?}");
        assert_eq!(d.models, ["text-cnn", "resnet18"], "{label}");
        if let Some(f) = format {
            assert_eq!(d.details["rest_format"], f.name());
        }

        for (m, batch) in [(ModelId::TextCnn, 3), (ModelId::Resnet18, 2)] {
            let x = fixtures::inputs::batch(m, batch, fixtures::DEFAULT_SEED);
            let want = rt
                .block_on(run(&candle, m.name(), vec![x.clone()]))
                .unwrap();
            let got = rt
                .block_on(run(&b, m.name(), vec![x]))
                .unwrap_or_else(|e| panic!("{label} {m}: {e}"));
            assert_eq!(got.len(), 1, "{label} {m}: {got:?}");
            assert_eq!(got[0].name, "logits");
            let (abs, passed, top1) = agree(&got[0], &want[0], m.classes());
            println!("{label} {m}: max abs diff {abs:.3e}");
            assert!(
                passed && top1 == 1.0,
                "{label} {m}: differs from candle by {abs}"
            );
        }

        // Failures, counted by kind with the server's own message.
        let name = d.name.as_str();
        let ids = fixtures::inputs::batch(ModelId::TextCnn, 1, 1);
        let e = rt.block_on(run(&b, "no-such-model", vec![ids.clone()]));
        let msg = e
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            msg.contains("Servable not found for request: Latest(no-such-model)"),
            "{label}: {msg}"
        );
        assert_kind(name, "unknown model", "test peer", e);
        let short = Tensor::from_i64("input", vec![2, 7], &[1; 14]);
        let e = rt.block_on(run(&b, "text-cnn", vec![short]));
        let msg = e
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(msg.contains("Incompatible shapes"), "{label}: {msg}");
        if format.is_some() {
            assert!(msg.contains("400"), "{label}: {msg}");
        } else {
            assert!(msg.contains("InvalidArgument"), "{label}: {msg}");
        }
        assert_kind(name, "wrong shape", "test peer", e);
        let floats = Tensor::from_f32("input", vec![1, 600], &[0.5; 600]);
        let e = rt.block_on(run(&b, "text-cnn", vec![floats]));
        assert_kind(name, "wrong shape", "test peer, wrong dtype", e);
        let e = rt.block_on(run(&b, INTERNAL_ERROR_MODEL, vec![ids]));
        let msg = e
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(msg.contains("internal error"), "{label}: {msg}");
        assert_kind(name, "server error", "test peer's 500 / INTERNAL hook", e);
    }
    drop(peer);

    // The client's own deadline, against a test double that never answers.
    let silent = Double::silent();
    let deadlines = error_kinds::short_deadlines();
    let models = ["text-cnn"];
    let rest: Arc<dyn Backend> = Arc::new(
        adapter_tfserving::rest::RestBackend::with_deadlines(
            &silent.url,
            adapter_tfserving::RestFormat::Row,
            1,
            error_kinds::description("tfserving-rest", Protocol::Http, &models),
            deadlines,
        )
        .unwrap(),
    );
    let grpc: Arc<dyn Backend> = Arc::new(
        adapter_tfserving::grpc::GrpcBackend::with_deadlines(
            &silent.url,
            error_kinds::description("tfserving-grpc", Protocol::Grpc, &models),
            deadlines,
        )
        .unwrap(),
    );
    let ids = fixtures::inputs::batch(ModelId::TextCnn, 1, 1);
    for b in [rest, grpc] {
        let e = rt.block_on(run(&b, "text-cnn", vec![ids.clone()]));
        let name = b.describe().name;
        assert_kind(&name, "timeout", "silent test double, 300 ms deadline", e);
    }
}

fn compare_args<'a>(dir: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "compare",
        "--quiet",
        "--models",
        "text-cnn",
        "--small-batches",
        "1,4",
        "--large-batches",
        "32",
        "--duration",
        "0.3",
        "--trials",
        "1",
        "--time-budget",
        "12s",
        // One request a window at least, as before: the slowest points (candle
        // at large batches, seconds a request in a debug build) keep the suite short.
        "--min-requests",
        "1",
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

#[test]
fn compare_measures_both_protocols_and_labels_the_peer() {
    let _turn = serial();
    let peer = start_peer(&[ModelId::TextCnn]);
    let out_dir = tempfile::tempdir().unwrap();
    // Two labels of one server backend with different options: the flags say columnar,
    // the config file's table of `tfserving-rest@row` says row for that label alone.
    let config = out_dir.path().join("servebench.toml");
    std::fs::write(
        &config,
        "[\"tfserving-rest@row\"]\ntfserving_format = \"row\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(compare_args(
            out_dir.path(),
            &[
                "--config",
                config.to_str().unwrap(),
                "--backends",
                "candle,tfserving-rest,tfserving-grpc,tfserving-rest@row",
                "--tfserving-url",
                &peer.rest,
                "--tfserving-grpc-url",
                &peer.grpc,
                "--tfserving-format",
                "columnar",
            ],
        ))
        .output()
        .unwrap();
    let (so, se) = text(&out);
    assert!(out.status.success(), "{so}\n{se}");
    let doc = results_doc(out_dir.path());
    assert!(schema_errors(&doc).is_empty(), "{:?}", schema_errors(&doc));
    let options = &doc["config"]["backend_options"];
    assert_eq!(options["tfserving-rest"]["format"], "columnar", "{options}");
    assert_eq!(options["tfserving-rest@row"]["format"], "row", "{options}");
    let backend = |name: &str| {
        doc["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == name)
            .unwrap_or_else(|| panic!("{name} not measured: {so}"))
            .clone()
    };
    for (name, format) in [
        ("tfserving-rest", "columnar"),
        ("tfserving-rest@row", "row"),
    ] {
        assert_eq!(backend(name)["details"]["rest_format"], format);
    }
    for name in ["tfserving-rest", "tfserving-grpc", "tfserving-rest@row"] {
        let b = backend(name);
        assert_eq!(b["engine"], adapter_tfserving::PEER_ENGINE, "{b}");
        let a = doc["agreement"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["backend"] == name)
            .unwrap();
        assert_eq!(a["passed"], true, "{a}");
        let points: Vec<_> = doc["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["backend"] == name)
            .collect();
        assert_eq!(points.len(), 3, "{:#}", doc["results"]);
        for p in points {
            assert_eq!(p["errors"], 0, "{p}");
        }
    }
    // Nowhere is the peer called TF Serving.
    let report =
        std::fs::read_to_string(result_files(out_dir.path())[0].with_file_name("report.md"))
            .unwrap();
    assert!(report.contains(adapter_tfserving::PEER_ENGINE), "{report}");
    assert!(!report.contains("tfserving (existing server)"), "{report}");
    assert!(
        report.contains("**tfserving-grpc** answered from servebench's test peer, not TF Serving")
            && so.contains("tfserving-rest answered from servebench's test peer, not TF Serving"),
        "{so}\n{report}"
    );
    drop(peer);
}

#[test]
fn without_a_server_tfserving_is_not_measured_and_the_rest_runs() {
    let _turn = serial();
    let ports = free_ports(2).unwrap();
    let rest = format!("http://127.0.0.1:{}", ports[0]);
    let grpc = format!("http://127.0.0.1:{}", ports[1]);
    let out_dir = tempfile::tempdir().unwrap();
    // Every backend (none named): the other server backends are made unavailable too
    // (environments that do not exist), so candle is what runs.
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(compare_args(
            out_dir.path(),
            &["--tfserving-url", &rest, "--tfserving-grpc-url", &grpc],
        ))
        .env("SERVEBENCH_VENV", out_dir.path().join("no-venv"))
        .env("SERVEBENCH_TRITON_VENV", out_dir.path().join("no-venv"))
        .output()
        .unwrap();
    let (so, se) = text(&out);
    assert!(out.status.success(), "{so}\n{se}");
    let page = common::unwrapped(&so);
    for (name, url) in [("tfserving-rest", &rest), ("tfserving-grpc", &grpc)] {
        let line = page
            .lines()
            .find(|l| l.starts_with(&format!("- {name}: ")))
            .unwrap_or_else(|| panic!("no 'not reachable' line for {name}:\n{so}"));
        assert!(
            line.contains(&format!("TF Serving is not reachable at {url}"))
                && line.contains("docker compose up -d tfserving")
                && line.contains("--tfserving-url"),
            "{line}"
        );
    }
    let doc = results_doc(out_dir.path());
    let measured: Vec<_> = doc["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["name"].as_str().unwrap().to_string())
        .collect();
    assert!(measured.contains(&"candle".to_string()), "{measured:?}");
    assert!(
        !measured.iter().any(|b| b.starts_with("tfserving")),
        "{measured:?}"
    );
    let unavailable = doc["unavailable"].to_string();
    assert!(
        unavailable.contains("tfserving-rest") && unavailable.contains("tfserving-grpc"),
        "{unavailable}"
    );
}
