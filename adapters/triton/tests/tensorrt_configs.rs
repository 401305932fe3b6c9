//! The TensorRT model configurations the fixtures tool writes for the compose stack's
//! `triton-tensorrt-*` services, read by Triton's own parser.
//!
//! The Triton of the `nvidia-pytriton` wheel has no onnxruntime backend and there is no
//! GPU here, so the models cannot load; but Triton parses every `config.pbtxt` against
//! its `ModelConfig` protobuf first, and a field it does not know ("failed to read text
//! proto") stops a model before it gets as far as looking for its backend. Started with
//! no endpoint at all (no ports), the server reads the repository, fails to load every
//! model, and exits within a second.

use std::path::Path;
use std::process::Command;

use adapter_triton::server::Install;
use fixtures::triton::{write_repository, RepositoryOptions, Variant};
use fixtures::ModelId;

/// Triton's log after reading `repo` (it exits: no model can load here).
fn triton_reads(repo: &Path) -> String {
    let install = Install::find().expect("nvidia-pytriton in .venv-triton: run scripts/setup");
    let out = Command::new(&install.tritonserver)
        .env("LD_LIBRARY_PATH", &install.libs)
        .arg("--model-repository")
        .arg(repo)
        .arg("--backend-directory")
        .arg(install.backend_dir().unwrap())
        .args([
            "--allow-http=false",
            "--allow-grpc=false",
            "--allow-metrics=false",
            "--exit-timeout-secs=5",
        ])
        .output()
        .expect("tritonserver runs");
    assert!(!out.status.success(), "no model can load here");
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

#[test]
fn triton_parses_the_tensorrt_configs() {
    let models = [ModelId::TextCnn, ModelId::Resnet18];
    let dir = fixtures::default_dir();
    fixtures::ensure(&dir, &models, fixtures::DEFAULT_SEED).expect("fixtures");
    let tmp = tempfile::tempdir().unwrap();
    for variant in [Variant::TensorRtFp32, Variant::TensorRtFp16] {
        let repo = tmp.path().join(variant.name());
        let opts = RepositoryOptions {
            variant,
            ..Default::default()
        };
        write_repository(&repo, &dir, &models, &opts).unwrap();
        let log = triton_reads(&repo);
        assert!(!log.contains("failed to read text proto"), "{log}");
        for m in models {
            // Parsed, and on to the onnxruntime backend, which only Triton's image has.
            let want = format!(
                "failed to load '{}' version 1: Invalid argument: unable to find backend library for backend 'onnxruntime'",
                m.name()
            );
            assert!(log.contains(&want), "{variant:?} {m}:\n{log}");
        }
    }

    // The check can fail: a misspelt field is a parse error naming the file.
    let repo = tmp.path().join(Variant::TensorRtFp16.name());
    let config = repo.join("text-cnn/config.pbtxt");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("precision_mode\" value", "precision_mode\" valeu"),
    )
    .unwrap();
    let log = triton_reads(&repo);
    assert!(
        log.contains(&format!(
            "failed to read text proto from {}",
            config.display()
        )),
        "{log}"
    );
}
