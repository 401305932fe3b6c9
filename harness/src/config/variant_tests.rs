//! GPU variants: the onnxruntime backend's `--ort-provider` (flag, file, label table,
//! recorded), and the compose stack's TensorRT Tritons reached by label.

use super::tests::{err, ok};

#[test]
fn the_execution_provider_is_a_flag_a_file_key_and_recorded() {
    use adapter_onnxruntime::Provider;
    let c = ok(&["--backends", "onnxruntime,candle"]);
    assert_eq!(c.backend_options.common.onnxruntime.provider, Provider::Cpu);
    assert_eq!(c.record.backend_options["onnxruntime"]["provider"], "cpu");
    assert!(!c.record.backend_options.contains_key("candle"));
    let c = ok(&["--backends", "onnxruntime", "--ort-provider", "tensorrt"]);
    assert_eq!(
        c.record.backend_options["onnxruntime"]["provider"],
        "tensorrt"
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "backends = [\"onnxruntime\", \"onnxruntime@trt\"]\nort_provider = \"cuda\"\n\
         [\"onnxruntime@trt\"]\nort_provider = \"tensorrt\"\n",
    )
    .unwrap();
    let c = ok(&["--config", path.to_str().unwrap()]);
    let o = &c.backend_options;
    assert_eq!(
        (
            o.get("onnxruntime").onnxruntime.provider,
            o.get("onnxruntime@trt").onnxruntime.provider
        ),
        (Provider::Cuda, Provider::Tensorrt)
    );
    assert_eq!(
        c.record.backend_options["onnxruntime@trt"]["provider"],
        "tensorrt"
    );

    let e = err(&["--ort-provider", "rocm"]);
    assert!(e.contains("[possible values: cpu, cuda, tensorrt]"), "{e}");
}

#[cfg(feature = "triton")]
#[test]
fn tensorrt_labels_reach_the_tensorrt_tritons_of_the_compose_stack() {
    use super::compose_triton;
    let backends = "triton-http,triton-http@tensorrt-fp16,triton-grpc@tensorrt-fp32,triton-http@x";
    let c = ok(&["--stack", "compose", "--backends", backends]);
    let o = &c.backend_options;
    let url = |name: &str| o.get(name).triton.url.clone().unwrap_or_default();
    assert_eq!(url("triton-http"), "http://127.0.0.1:8000");
    assert_eq!(url("triton-http@x"), "http://127.0.0.1:8000");
    assert_eq!(url("triton-http@tensorrt-fp16"), "http://127.0.0.1:8020");
    let fp32 = o.get("triton-grpc@tensorrt-fp32");
    assert_eq!(
        fp32.triton.grpc_url.as_deref(),
        Some("http://127.0.0.1:8011")
    );
    assert_eq!(
        fp32.triton.metrics_url.as_deref(),
        Some("http://127.0.0.1:8012/metrics")
    );
    assert_eq!(
        c.record.backend_options["triton-http@tensorrt-fp16"]["url"],
        "http://127.0.0.1:8020"
    );
    assert_eq!(
        compose_triton("triton-grpc@tensorrt-fp16").map(|t| t.service),
        Some("triton-tensorrt-fp16")
    );
    assert!(compose_triton("flask@tensorrt-fp16").is_none());

    // A URL flag still wins; a local stack starts its own Triton for every label.
    let c = ok(&[
        "--stack",
        "compose",
        "--backends",
        backends,
        "--triton-url",
        "http://127.0.0.1:9000",
    ]);
    let got = c
        .backend_options
        .get("triton-http@tensorrt-fp16")
        .triton
        .url
        .clone();
    assert_eq!(got.as_deref(), Some("http://127.0.0.1:9000"));
    let c = ok(&["--backends", backends]);
    assert!(c
        .backend_options
        .get("triton-http@tensorrt-fp16")
        .triton
        .url
        .is_none());
}
