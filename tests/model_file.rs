//! `compare --model-file`: a user's ONNX model, end to end. The models are the toy
//! graphs of `fixtures::onnx::toy` (a few hundred bytes each), written by the test into
//! a temporary directory: several inputs and outputs, int64 and float16 tensors, a
//! dynamic second dimension, and an operator candle-onnx lacks; and one of them as
//! TorchScript (`--torchscript`), written by torch in the project's Python, for libtorch
//! and TorchServe.

mod common;

use std::path::{Path, PathBuf};

use common::{harness, result_files, serial, text, unwrapped};
use fixtures::onnx::toy::Toy;

/// The four toy models every ONNX backend runs (Softplus aside).
const TOYS: [Toy; 4] = [Toy::MultiInput, Toy::Int64, Toy::Float16, Toy::Dynamic];

/// Writes `multi_input.pt` into `dir`: [`Toy::MultiInput`] in PyTorch, `(a + b, a * b)`,
/// traced (a script has no source file) by torch in the project's Python.
fn with_torchscript(dir: &Path) -> PathBuf {
    let pt = dir.join("multi_input.pt");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::env::var_os("SERVEBENCH_VENV").map_or(root.join(".venv"), Into::into);
    let script = "import sys, torch\n\
                  class M(torch.nn.Module):\n    \
                  def forward(self, a, b):\n        return a + b, a * b\n\
                  x = torch.ones(2, 4)\n\
                  torch.jit.trace(M(), (x, x)).save(sys.argv[1])\n";
    let out = std::process::Command::new(venv.join("bin/python3"))
        .args(["-c", script, pt.to_str().unwrap()])
        .output()
        .expect("the project's Python runs");
    assert!(out.status.success(), "{:?}", text(&out));
    pt
}

/// The agreement rows of `model` in `doc`, by backend: (reference, passed, max abs diff).
fn agreement(doc: &serde_json::Value, model: &str) -> Vec<(String, String, bool, f64)> {
    let mut rows: Vec<_> = doc["agreement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["model"] == model)
        .map(|a| {
            (
                a["backend"].as_str().unwrap().to_string(),
                a["reference"].as_str().unwrap().to_string(),
                a["passed"].as_bool().unwrap(),
                a["max_abs_diff"].as_f64().unwrap(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// Runs a short compare of `models` (written into `dir`) with `extra` flags; returns
/// the results document and stdout.
fn compare(dir: &Path, models: &[Toy], extra: &[&str]) -> (serde_json::Value, String) {
    let results = dir.join("results");
    let paths: Vec<String> = models
        .iter()
        .map(|t| t.write(dir).unwrap().display().to_string())
        .collect();
    let mut args = vec![
        "compare",
        "--quiet",
        "--small-batches",
        "1",
        "--large-batches",
        "3",
        "--duration",
        "20ms",
        "--min-requests",
        "1",
        "--trials",
        "2",
        "--time-budget",
        "4s",
        "--results-dir",
        results.to_str().unwrap(),
    ];
    for p in &paths {
        args.extend(["--model-file", p]);
    }
    args.extend_from_slice(extra);
    let out = harness(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let file = result_files(&results).pop().expect("a results file");
    let doc = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    (doc, unwrapped(&stdout))
}

fn measured(doc: &serde_json::Value, model: &str) -> Vec<String> {
    let mut b: Vec<String> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["model"] == model)
        .map(|r| r["backend"].as_str().unwrap().to_string())
        .collect();
    b.sort();
    b.dedup();
    b
}

/// One run, one Flask and one Triton server: four models of different kinds on
/// onnxruntime, flask, triton (HTTP) and candle (through candle-onnx), each checked
/// for agreement, output by output, against candle.
#[test]
fn user_models_run_on_every_onnx_backend() {
    let dir = tempfile::tempdir().unwrap();
    let (doc, stdout) = compare(
        dir.path(),
        &[Toy::MultiInput, Toy::Int64, Toy::Float16, Toy::Dynamic],
        &[
            "--backends",
            "candle,onnxruntime,flask,triton-http",
            "--shape",
            "tokens:5",
        ],
    );
    let all = ["candle", "flask", "onnxruntime", "triton-http"];
    for model in ["multi_input", "int64_ids", "float16", "dynamic_seq"] {
        assert_eq!(measured(&doc, model), all, "{model}:\n{stdout}");
        let rows: Vec<_> = doc["agreement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["model"] == model)
            .collect();
        assert_eq!(rows.len(), 3, "{model}: {rows:?}");
        for a in rows {
            assert_eq!(a["reference"], "candle");
            assert_eq!(a["passed"], true, "{a}");
        }
    }
    assert_eq!(doc["config"]["shapes"]["tokens"], serde_json::json!([5]));
    assert_eq!(doc["config"]["input_data"], "random");
    assert!(stdout.contains("multi_input"), "{stdout}");
}

/// candle-onnx has no Softplus: candle is listed as not measured, naming the
/// operator, and the run goes on with onnxruntime as the agreement reference.
#[test]
fn an_operator_candle_lacks_is_named_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let (doc, _) = compare(
        dir.path(),
        &[Toy::Softplus],
        &["--backends", "candle,onnxruntime,onnxruntime@b"],
    );
    assert_eq!(measured(&doc, "softplus"), ["onnxruntime", "onnxruntime@b"]);
    let reason = doc["unavailable"][0]["reason"].as_str().unwrap();
    assert!(
        doc["unavailable"][0]["backend"] == "candle"
            && reason.contains("operator Softplus of model softplus is not supported"),
        "{doc}"
    );
    assert_eq!(doc["agreement"][0]["reference"], "onnxruntime");
}

/// `--torchscript` beside `--model-file`: libtorch, and the managed TorchServe over
/// REST and gRPC (a model directory written from the user's file, with its
/// `servebench.json`), run the TorchScript of the model whose ONNX file onnxruntime
/// runs, its two inputs and two outputs in one frame, and agree with it output by
/// output.
#[test]
fn torchscript_runs_on_libtorch_and_torchserve_beside_the_onnx_file() {
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let pt = with_torchscript(dir.path());
    let (doc, stdout) = compare(
        dir.path(),
        &[Toy::MultiInput],
        &[
            "--torchscript",
            pt.to_str().unwrap(),
            "--backends",
            "onnxruntime,libtorch,torchserve-rest,torchserve-grpc",
        ],
    );
    let served = [
        "libtorch",
        "onnxruntime",
        "torchserve-grpc",
        "torchserve-rest",
    ];
    assert_eq!(measured(&doc, "multi_input"), served, "{stdout}");
    let rows = agreement(&doc, "multi_input");
    assert_eq!(rows.len(), 3, "{rows:?}");
    for (backend, reference, passed, diff) in &rows {
        assert!(reference == "onnxruntime" && *passed, "{backend}: {rows:?}");
        // a + b and a * b: the same f32 arithmetic on every engine.
        assert!(*diff < 1e-6, "{backend}: {rows:?}");
    }
    assert_eq!(
        doc["config"]["torchscript_files"]["multi_input"],
        pt.to_str().unwrap()
    );
    assert_eq!(doc["unavailable"], serde_json::json!([]), "{stdout}");
}

/// OpenVINO and MLServer run the user's models and agree with onnxruntime on each,
/// output by output: several inputs, int64, float16 and a dynamic second dimension.
/// kserve-v2-http's MLServer is the harness's own (started by the run, its model
/// settings written from the ONNX files); kserve-v2-grpc's is started here the same way
/// and given by URL.
#[test]
fn user_models_run_on_openvino_and_mlserver() {
    use adapter_kserve::mlserver::{Install, ManagedMlServer, ServerConfig, READY_TIMEOUT};
    let _turn = serial();
    let dir = tempfile::tempdir().unwrap();
    let user_models = TOYS
        .iter()
        .map(|t| fixtures::user::UserModel::read(&t.write(dir.path()).unwrap()).unwrap())
        .collect();
    let server = ManagedMlServer::start(&ServerConfig {
        install: Install::find().expect("MLServer in .venv-mlserver: run scripts/setup"),
        fixtures_dir: dir.path().to_path_buf(),
        models: vec![],
        user_models,
        workers: 1,
        intra_threads: 1,
        ready_timeout: READY_TIMEOUT,
    })
    .unwrap();
    let grpc = server.grpc_url();
    let (doc, stdout) = compare(
        dir.path(),
        &TOYS,
        &[
            "--backends",
            "onnxruntime,openvino,kserve-v2-http,kserve-v2-grpc",
            "--kserve-grpc-url",
            &grpc,
            "--shape",
            "tokens:5",
        ],
    );
    let all = [
        "kserve-v2-grpc",
        "kserve-v2-http",
        "onnxruntime",
        "openvino",
    ];
    for toy in TOYS {
        let model = toy.name();
        assert_eq!(measured(&doc, model), all, "{model}:\n{stdout}");
        let rows = agreement(&doc, model);
        assert_eq!(rows.len(), 3, "{model}: {rows:?}");
        for (backend, reference, passed, diff) in &rows {
            assert!(
                reference == "onnxruntime" && *passed,
                "{model} on {backend}: {rows:?}"
            );
            // MLServer runs the same onnxruntime on the same file.
            if backend.starts_with("kserve") {
                assert_eq!(*diff, 0.0, "{model} on {backend}: {rows:?}");
            }
        }
    }
    assert_eq!(doc["unavailable"], serde_json::json!([]), "{stdout}");
    drop(server);
}

/// `--savedmodel DIR` beside `--model-file`: the run writes TF Serving's models.config
/// for it, which TF Serving's own configuration message (tensorflow-serving-api in
/// .venv-tf) parses; TF Serving cannot run here, and its clients say why they do not
/// measure a user's model.
#[test]
fn savedmodel_gets_a_models_config_tf_serving_parses() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("saved").join("multi_input");
    std::fs::create_dir_all(saved.join("1")).unwrap();
    std::fs::write(saved.join("1/saved_model.pb"), b"").unwrap();
    let (doc, stdout) = compare(
        dir.path(),
        &[Toy::MultiInput],
        &[
            "--savedmodel",
            saved.to_str().unwrap(),
            "--backends",
            "onnxruntime,tfserving-rest",
        ],
    );
    assert_eq!(measured(&doc, "multi_input"), ["onnxruntime"], "{stdout}");
    let u = &doc["unavailable"][0];
    assert!(
        u["backend"] == "tfserving-rest"
            && u["reason"]
                .as_str()
                .unwrap()
                .contains("tfserving.models.config"),
        "{u}"
    );
    let run = result_files(&dir.path().join("results")).pop().unwrap();
    let config = run.with_file_name("tfserving.models.config");
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-tf/bin/python3");
    let parse = "import sys\n\
                 from google.protobuf import text_format\n\
                 from tensorflow_serving.config import model_server_config_pb2 as m\n\
                 c = text_format.Parse(open(sys.argv[1]).read(), m.ModelServerConfig())\n\
                 for x in c.model_config_list.config:\n    \
                 print(x.name, x.base_path, x.model_platform)\n";
    let out = std::process::Command::new(python)
        .args(["-c", parse, config.to_str().unwrap()])
        .output()
        .expect(".venv-tf's Python runs (scripts/setup installs it)");
    let (got, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        got.trim(),
        format!("multi_input {} tensorflow", saved.display())
    );
}
