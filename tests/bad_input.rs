//! Bad input from a user gets one clear sentence, a non-zero exit, no panic and no
//! results file that looks complete.

mod common;

use std::path::Path;

use common::{harness, result_files, text};
use fixtures::{ModelFiles, ModelId};

/// Runs `compare` with `args` (plus a private results dir) and checks that it failed
/// cleanly with exit status 1 (a bad setting found after parsing, or a failed run);
/// returns stderr.
fn fails(args: &[&str]) -> String {
    fails_with(args, 1)
}

/// As [`fails`], for a value the parser itself rejects: exit status 2.
fn rejected(args: &[&str]) -> String {
    fails_with(args, 2)
}

fn fails_with(args: &[&str], code: i32) -> String {
    fails_in(args, code, &[])
}

/// As [`fails_with`], with `env` set for the harness.
fn fails_in(args: &[&str], code: i32, env: &[(&str, &Path)]) -> String {
    let results = tempfile::tempdir().unwrap();
    let mut all = vec![
        "compare",
        "--quiet",
        "--results-dir",
        results.path().to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(&all)
        .envs(env.iter().copied())
        .output()
        .expect("the harness binary runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "{args:?}:\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
    let error_lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(error_lines.len(), 1, "{args:?} stderr:\n{stderr}");
    assert!(
        result_files(results.path()).is_empty(),
        "{args:?} left a results file"
    );
    stderr
}

#[test]
fn unknown_backend() {
    let e = rejected(&["--backends", "tensorrt"]);
    assert!(
        e.contains("unknown backend \"tensorrt\"") && e.contains("candle"),
        "{e}"
    );
}

#[test]
fn batch_size_zero_and_empty_batch_lists() {
    let e = rejected(&["--small-batches", "1,0"]);
    assert!(
        e.contains("invalid value '0' for '--small-batches") && e.contains("from 1 to 4096"),
        "{e}"
    );
    let e = rejected(&["--large-batches", ""]);
    assert!(e.contains("--large-batches"), "{e}");
}

#[test]
fn unknown_model() {
    let e = rejected(&["--models", "bert"]);
    assert!(e.contains("invalid value 'bert' for '--models"), "{e}");
    assert!(e.contains("text-cnn, resnet18, resnet50"), "{e}");
}

#[test]
fn unreadable_and_invalid_config_files() {
    let e = fails(&["--config", "/nonexistent/servebench.toml"]);
    assert!(
        e.contains("cannot read config file /nonexistent/servebench.toml"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "workers = \"two\"\n").unwrap();
    let e = fails(&["--config", bad.to_str().unwrap()]);
    assert!(e.contains("bad.toml is not valid"), "{e}");
}

#[test]
fn unknown_flag_is_rejected_by_the_parser() {
    let out = harness(&["compare", "--wrokers", "2"]);
    assert_eq!(out.status.code(), Some(2));
    let (_, stderr) = text(&out);
    assert!(stderr.contains("--wrokers"), "{stderr}");
}

/// [`fails`] on text-cnn with the fixtures in `dir`, on `backends`.
fn text_cnn_on(dir: &Path, backends: &str) -> String {
    fails(&[
        "--fixtures-dir",
        dir.to_str().unwrap(),
        "--models",
        "text-cnn",
        "--backends",
        backends,
    ])
}

/// A private copy of the text-CNN fixtures, to damage.
fn private_fixtures() -> (tempfile::TempDir, ModelFiles) {
    let dir = tempfile::tempdir().unwrap();
    fixtures::ensure(dir.path(), &[ModelId::TextCnn], fixtures::DEFAULT_SEED).unwrap();
    let files = ModelFiles::new(dir.path(), ModelId::TextCnn);
    (dir, files)
}

fn truncate(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    std::fs::write(path, &bytes[..bytes.len() / 3]).unwrap();
}

/// Overwrites the start of the file, keeping its size: only the engine can tell.
fn garble(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    for (i, b) in bytes.iter_mut().take(64).enumerate() {
        *b = 0xA5 ^ i as u8;
    }
    std::fs::write(path, &bytes).unwrap();
}

fn damaged(model_file: fn(&ModelFiles) -> &Path, damage: fn(&Path), backend: &str) -> String {
    let (dir, files) = private_fixtures();
    damage(model_file(&files));
    fails(&[
        "--fixtures-dir",
        dir.path().to_str().unwrap(),
        "--models",
        "text-cnn",
        "--backends",
        backend,
        "--reference",
        backend,
    ])
}

#[test]
fn missing_safetensors() {
    let (dir, files) = private_fixtures();
    std::fs::remove_file(&files.safetensors).unwrap();
    let e = text_cnn_on(dir.path(), "candle");
    assert!(e.contains("model.safetensors"), "{e}");
}

/// A `--fixtures-dir` the user names must be complete: it is never filled, and what is
/// missing is named with the command that makes it.
#[test]
fn an_incomplete_fixtures_dir_is_named_not_filled() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("nowhere");
    let e = fails(&[
        "--fixtures-dir",
        absent.to_str().unwrap(),
        "--backends",
        "candle",
    ]);
    assert!(
        e.contains(&format!(
            "--fixtures-dir {} does not exist;",
            absent.display()
        )) && e.contains("cargo run --release -p fixtures -- generate --seed")
            && e.contains("scripts/setup"),
        "{e}"
    );
    assert!(!absent.exists());
    let e = text_cnn_on(dir.path(), "candle");
    assert!(
        e.contains("is incomplete (missing manifest.json, text-cnn/model.safetensors, text-cnn/model.onnx); make it with `cargo run --release -p fixtures -- generate"),
        "{e}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "filled");
}

/// A missing or unusable temporary directory is named as such, before anything starts
/// (it was reported as a backend "unavailable: run scripts/setup").
#[test]
fn a_missing_or_unusable_tmpdir_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("gone");
    let e = fails_in(&["--backends", "candle"], 1, &[("TMPDIR", &absent)]);
    assert!(
        e.contains(&format!(
            "TMPDIR {} does not exist; set TMPDIR to a writable directory",
            absent.display()
        )),
        "{e}"
    );
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let e = fails_in(&["--backends", "candle"], 1, &[("TMPDIR", &file)]);
    assert!(e.contains("is not a directory; set TMPDIR"), "{e}");
}

#[test]
fn truncated_model_files() {
    let e = damaged(|f| &f.safetensors, truncate, "candle");
    assert!(
        e.contains("model.safetensors") && e.contains("bytes"),
        "{e}"
    );
    let e = damaged(|f| &f.onnx, truncate, "onnxruntime");
    assert!(e.contains("model.onnx") && e.contains("bytes"), "{e}");
}

/// A file garbled in place (same size) is caught by its SHA-256 at start and named,
/// before any engine loads it.
#[test]
fn garbled_model_files_are_named_by_their_checksum() {
    for (file, name, backend) in [
        (
            (|f| &f.safetensors) as fn(&ModelFiles) -> &Path,
            "model.safetensors",
            "candle",
        ),
        (|f| &f.onnx, "model.onnx", "onnxruntime"),
    ] {
        let e = damaged(file, garble, backend);
        assert!(
            e.contains(&format!("text-cnn/{name} has sha256 "))
                && e.contains("but the manifest records")
                && e.contains("fixtures generate --force"),
            "{e}"
        );
    }
}

/// Corrupted reference weights (candle's) are named as such: onnxruntime is not made
/// to look wrong by disagreeing with them.
#[test]
fn corrupted_reference_weights_name_the_right_file() {
    let (dir, files) = private_fixtures();
    garble(&files.safetensors);
    let e = text_cnn_on(dir.path(), "candle,onnxruntime");
    assert!(
        e.contains("text-cnn/model.safetensors has sha256 ") && !e.contains("disagrees"),
        "{e}"
    );
}

/// A harness built without libtorch (no `libtorch` feature, no .cargo/config.toml from
/// scripts/setup) names libtorch as not compiled in, says how to build it in, and exits
/// non-zero.
#[cfg(not(servebench_libtorch))]
#[test]
fn libtorch_without_its_feature_is_not_compiled_in() {
    let e = fails(&["--backends", "libtorch", "--models", "text-cnn"]);
    assert!(
        e.contains("libtorch is unavailable: not compiled in")
            && e.contains("run scripts/setup")
            && e.contains(".cargo/config.toml"),
        "{e}"
    );
    let out = harness(&["backends"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("libtorch"))
        .unwrap_or_default();
    assert!(line.contains("not compiled in"), "{stdout}");
}

/// The CPU wheel of ONNX Runtime has no GPU execution provider: choosing one is one
/// sentence naming it and what the library offers, never a silent run on the CPU.
#[test]
fn an_execution_provider_the_library_lacks_is_refused() {
    for provider in ["cuda", "tensorrt"] {
        let e = fails(&[
            "--backends",
            "onnxruntime",
            "--models",
            "text-cnn",
            "--ort-provider",
            provider,
        ]);
        assert!(
            e.contains(&format!(
                "--ort-provider {provider} is not available in the ONNX Runtime library"
            )) && e.contains("which offers: cpu;")
                && e.contains("use --ort-provider cpu")
                && e.contains("ORT_DYLIB_PATH"),
            "{e}"
        );
    }
    let e = fails(&[
        "--backends",
        "onnxruntime",
        "--models",
        "text-cnn",
        "--device",
        "cuda:0",
    ]);
    assert!(
        e.contains("--device cuda:0 needs a GPU execution provider, and --ort-provider is cpu"),
        "{e}"
    );
    let e = rejected(&["--ort-provider", "rocm"]);
    assert!(e.contains("[possible values: cpu, cuda, tensorrt]"), "{e}");
}

#[test]
fn bad_tfserving_format_url_and_stack() {
    let e = rejected(&["--tfserving-format", "csv"]);
    assert!(
        e.contains("invalid value 'csv' for '--tfserving-format")
            && e.contains("[possible values: row, columnar]"),
        "{e}"
    );
    let e = rejected(&["--tfserving-url", "localhost:8501"]);
    assert!(
        e.contains("invalid value 'localhost:8501' for '--tfserving-url")
            && e.contains("give an http:// URL with a host and a port"),
        "{e}"
    );
    let e = rejected(&["--tfserving-grpc-url", "grpc://127.0.0.1:8500"]);
    assert!(
        e.contains("--tfserving-grpc-url") && e.contains("not http://"),
        "{e}"
    );
    // No TLS in the clients: an https:// URL is refused, not tried.
    let e = rejected(&["--triton-url", "https://127.0.0.1:8443"]);
    assert!(
        e.contains("--triton-url")
            && e.contains("https:// is not supported: the clients are built without TLS"),
        "{e}"
    );
    let e = rejected(&["--stack", "swarm"]);
    assert!(
        e.contains("invalid value 'swarm' for '--stack")
            && e.contains("[possible values: local, compose]"),
        "{e}"
    );
}

#[test]
fn bad_load_settings() {
    let e = rejected(&["--request-rate", "0"]);
    assert!(
        e.contains("invalid value '0' for '--request-rate") && e.contains("from 0.01 to 100000"),
        "{e}"
    );
    let e = rejected(&["--request-rate", "10", "--arrival", "foo"]);
    assert!(
        e.contains("invalid value 'foo' for '--arrival")
            && e.contains("[possible values: constant, poisson]"),
        "{e}"
    );
    let e = rejected(&["--concurrency", "1,2", "--request-rate", "5"]);
    assert!(
        e.contains("'--concurrency") && e.contains("cannot be used with '--request-rate"),
        "{e}"
    );
    let e = rejected(&["--concurrency", "0"]);
    assert!(
        e.contains("invalid value '0' for '--concurrency") && e.contains("at least 1"),
        "{e}"
    );
}

#[test]
fn bad_measurement_settings() {
    let e = rejected(&["--percentile", "120"]);
    assert!(
        e.contains("invalid value '120' for '--percentile") && e.contains("below 100"),
        "{e}"
    );
    let e = rejected(&["--trials", "0"]);
    assert!(
        e.contains("invalid value '0' for '--trials") && e.contains("at least 1"),
        "{e}"
    );
    let e = rejected(&["--max-windows", "2"]);
    assert!(
        e.contains("invalid value '2' for '--max-windows") && e.contains("at least 3"),
        "{e}"
    );
    let e = rejected(&["--format", "xml"]);
    assert!(
        e.contains("invalid value 'xml' for '--format")
            && e.contains("[possible values: table, csv]"),
        "{e}"
    );
}

#[test]
fn a_named_tfserving_backend_without_a_server_is_one_clear_error() {
    let port = support::process::free_port().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let e = fails(&[
        "--backends",
        "candle,tfserving-rest",
        "--models",
        "text-cnn",
        "--tfserving-url",
        &url,
    ]);
    assert!(
        e.contains(&format!("TF Serving is not reachable at {url}"))
            && e.contains("docker compose up -d tfserving"),
        "{e}"
    );
}

#[test]
fn bad_backend_labels() {
    let e = rejected(&["--backends", "candle@"]);
    assert!(
        e.contains("\"candle@\" is not valid") && e.contains("NAME@LABEL"),
        "{e}"
    );
    let e = fails(&["--backends", "candle@a,candle@a"]);
    assert!(e.contains("\"candle@a\" is given twice"), "{e}");
    let e = rejected(&["--backends", "tensorrt@a"]);
    assert!(e.contains("unknown backend \"tensorrt\""), "{e}");
}

/// Output paths are checked before anything is measured: `--json` onto a directory, a
/// symbolic link or a FIFO, and `--results-dir` naming a file, are one sentence each,
/// and nothing is replaced.
#[test]
fn output_paths_that_cannot_be_written_are_refused_before_measuring() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let real = d.join("real.json");
    std::fs::write(&real, "keep").unwrap();
    let link = d.join("link.json");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let fifo = d.join("fifo.json");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let cases = [
        (d.to_path_buf(), "is a directory"),
        (link, "is a symbolic link"),
        (fifo, "is not a regular file (a FIFO, socket or device)"),
        (real.join("x.json"), "is in a directory that is a file"),
    ];
    for (path, what) in cases {
        let p = path.to_str().unwrap();
        let e = fails(&["--backends", "candle", "--json", p]);
        assert!(
            e.contains(&format!(
                "--json {p} {what}; give the path of a regular file"
            )),
            "{e}"
        );
    }
    let e = fails(&[
        "--backends",
        "candle",
        "--results-dir",
        real.to_str().unwrap(),
    ]);
    assert!(
        e.contains(&format!(
            "--results-dir {} is not a directory; give a directory",
            real.display()
        )),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "keep");
}

/// Numbers beyond what the harness can do are refused by the parser (exit status 2)
/// before anything starts, with the accepted range; none panics or hangs.
#[test]
fn extreme_numbers_are_refused_with_the_accepted_range() {
    let seconds = "give a number of seconds from 0.001 to 86400";
    let rate = "give requests per second from 0.01 to 100000";
    let cases: &[(&[&str], &str)] = &[
        (&["--duration", "1e300"], seconds),
        (&["--duration", "0.0000001"], seconds),
        (
            &["--duration", "1e400"],
            "give a positive number of seconds",
        ),
        (&["--time-budget", "1e20"], seconds),
        (
            &["--request-timeout", "0"],
            "give a positive number of seconds",
        ),
        (&["--request-timeout", "100000"], seconds),
        (&["--request-timeout", "5000000h"], seconds),
        (&["--request-rate", "1e12"], rate),
        (&["--request-rate", "0.000001"], rate),
        (
            &["--concurrency", "1000000"],
            "give a whole number of at most 65536",
        ),
        (
            &["--max-in-flight", "10000000"],
            "give a whole number of at most 65536",
        ),
        (
            &["--workers", "100000"],
            "give a whole number of at most 256",
        ),
        (
            &["--intra-threads", "5000"],
            "give a whole number of at most 1024",
        ),
        (&["--trials", "1000"], "give a whole number of at most 100"),
        (
            &["--max-windows", "5000"],
            "give a whole number of at most 1000",
        ),
        (
            &["--requests", "100000000000"],
            "give a whole number of at most 10000000",
        ),
        (
            &["--min-requests", "100000000000"],
            "give a whole number of at most 10000000",
        ),
        (
            &["--warmup", "1000000000"],
            "give a whole number of at most 100000",
        ),
        (
            &["--workers", "0"],
            "give a whole number of at least 1 (at most 256)",
        ),
        (
            &["--workers", "1,x"],
            "give whole numbers of workers from 1 to 256, such as 2 or 1,2,4",
        ),
    ];
    for (args, sentence) in cases {
        let e = rejected(args);
        assert!(e.contains(sentence) && e.contains(args[0]), "{args:?}: {e}");
    }
}

/// Every bad `--model-file` input is one sentence and exit status 1, before any
/// backend opens: a corrupt file, a missing dynamic dimension, data of the wrong shape
/// or element type, data for an input the model lacks, a `--torchscript` file or a
/// `--savedmodel` directory that is missing, of the wrong format or named like no
/// `--model-file`.
#[test]
fn bad_model_files_and_input_data() {
    use fixtures::onnx::toy::Toy;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let corrupt = d.join("corrupt.onnx");
    std::fs::write(&corrupt, b"\x08\x07 this is not protobuf \xff\xff\xff").unwrap();
    let softplus = Toy::Softplus.write(d).unwrap();
    let dynamic = Toy::Dynamic.write(d).unwrap();
    let multi = Toy::MultiInput.write(d).unwrap();
    let (wide, ints) = (d.join("wide.npy"), d.join("ints.npy"));
    let npy = |t: contract::Tensor| fixtures::inputs::npy_bytes(&t);
    std::fs::write(
        &wide,
        npy(contract::Tensor::from_f32("x", vec![2, 5], &[0.0; 10])),
    )
    .unwrap();
    std::fs::write(
        &ints,
        npy(contract::Tensor::from_i64("x", vec![2, 4], &[0; 8])),
    )
    .unwrap();
    let zip = d.join("other.pt");
    std::fs::write(&zip, b"PK\x03\x04 a zip archive's first bytes").unwrap();
    let unversioned = d.join("flat").join("multi_input");
    std::fs::create_dir_all(&unversioned).unwrap();
    std::fs::write(unversioned.join("saved_model.pb"), b"").unwrap();
    std::fs::create_dir_all(d.join("other/1")).unwrap();
    std::fs::write(d.join("other/1/saved_model.pb"), b"").unwrap();
    let json = d.join("extra.json");
    std::fs::write(&json, r#"{"data": [{"a": [1, 2, 3, 4], "z": [1]}]}"#).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![s(&corrupt)],
            "corrupt.onnx is not a usable ONNX model: it does not decode",
        ),
        (
            vec![s(&dynamic)],
            "input tokens has a dynamic dimension 1 (seq); give its size with --shape tokens:N",
        ),
        (
            vec![s(&softplus), "--input-data".into(), s(&wide)],
            "input x takes samples of shape [4] but",
        ),
        (
            vec![s(&softplus), "--input-data".into(), s(&ints)],
            "holds <i8 values but input x is f32 (<f4)",
        ),
        (
            vec![s(&multi), "--input-data".into(), s(&json)],
            "holds \"z\", which is not an input of the model",
        ),
        (
            vec![s(&multi), "--input-data".into(), s(&wide)],
            "is one array but the model has 2 inputs",
        ),
        (
            vec![s(&softplus), "--shape".into(), "y:3".into()],
            "--shape names \"y\"",
        ),
        // --torchscript: missing, not TorchScript, named like no --model-file.
        (
            vec![
                s(&multi),
                "--torchscript".into(),
                s(&d.join("multi_input.pt")),
            ],
            "multi_input.pt: no such file",
        ),
        (
            vec![s(&multi), "--torchscript".into(), s(&corrupt)],
            "corrupt.onnx: not TorchScript (torch.jit.save writes a zip archive",
        ),
        (
            vec![s(&multi), "--torchscript".into(), s(&zip)],
            "other.pt: it names model \"other\", which no --model-file gives",
        ),
        // --savedmodel: missing, a file, no numbered version, named like no --model-file.
        (
            vec![s(&multi), "--savedmodel".into(), s(&d.join("multi_input"))],
            "multi_input: no such directory",
        ),
        (
            vec![s(&multi), "--savedmodel".into(), s(&zip)],
            "other.pt: not a directory",
        ),
        (
            vec![s(&multi), "--savedmodel".into(), s(&unversioned)],
            "TF Serving loads numbered versions, so move its files into a directory 1/",
        ),
        (
            vec![s(&multi), "--savedmodel".into(), s(&d.join("other"))],
            "other: it names model \"other\", which no --model-file gives",
        ),
    ];
    for (args, want) in cases {
        let mut all = vec!["--backends", "onnxruntime", "--model-file"];
        all.extend(args.iter().map(String::as_str));
        let e = fails(&all);
        assert!(e.contains(want), "{args:?}: {e}");
    }
    let e = rejected(&["--input-data", "zero"]);
    assert!(e.contains("--model-file"), "{e}");
    let e = rejected(&["--torchscript", "m.pt"]);
    assert!(e.contains("--model-file"), "{e}");
}
