//! `--ort-provider`: the CPU provider named is the default one (same outputs), and a GPU
//! provider the loaded library (here the CPU wheel) lacks is refused when opening,
//! before any model loads.

use contract::{Device, OpenOptions, Prepared};
use fixtures::ModelId;

use adapter_onnxruntime::{open, open_with, Options, Provider};

fn options() -> OpenOptions {
    let dir = fixtures::default_dir();
    fixtures::ensure(&dir, &[ModelId::TextCnn], fixtures::DEFAULT_SEED).expect("fixtures");
    OpenOptions {
        models: vec![ModelId::TextCnn.name().into()],
        fixtures_dir: dir,
        workers: 1,
        intra_threads: 1,
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cpu_provider_is_the_default_and_gpu_ones_need_a_gpu_build() {
    let opts = options();
    let cpu = Options {
        provider: Provider::Cpu,
    };
    assert_eq!(cpu, Options::default());
    let named = open_with(&opts, &cpu).expect("onnxruntime in .venv: run scripts/setup");
    let default = open(&opts).unwrap();
    assert_eq!(
        named.describe().details["execution_provider"],
        "CPUExecutionProvider"
    );
    let input = fixtures::inputs::batch_from(ModelId::TextCnn, 0, 2, fixtures::DEFAULT_SEED);
    let request = Prepared::new(ModelId::TextCnn.name(), vec![input]);
    let a = named.infer(&request).await.unwrap();
    let b = default.infer(&request).await.unwrap();
    assert_eq!(a[0].data, b[0].data, "the same provider, the same logits");

    for provider in [Provider::Cuda, Provider::Tensorrt] {
        assert!(!provider.is_available(), "the CPU wheel has no {provider}");
        for device in [Device::Cpu, Device::Cuda(0)] {
            let e = open_with(
                &OpenOptions {
                    device,
                    ..opts.clone()
                },
                &Options { provider },
            )
            .err()
            .expect("refused");
            let msg = e.to_string();
            assert_eq!(e.kind(), "unavailable", "{msg}");
            assert!(
                msg.contains(&format!("--ort-provider {provider} is not available"))
                    && msg.contains("which offers: cpu;"),
                "{msg}"
            );
        }
    }
}
