//! ONNX Runtime rejects bad requests through the shared `fixtures::check_input`, with
//! the very message every in-process engine gives, before the engine sees them.

use contract::{Device, OpenOptions, Tensor};
use fixtures::{ModelId, INPUT_NAME};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_the_shared_message() {
    let dir = fixtures::default_dir();
    let models = [ModelId::TextCnn, ModelId::Resnet18];
    fixtures::ensure(&dir, &models, fixtures::DEFAULT_SEED).expect("fixtures generate");
    let backend = adapter_onnxruntime::open(&OpenOptions {
        models: models.iter().map(|m| m.name().to_string()).collect(),
        fixtures_dir: dir,
        workers: 1,
        intra_threads: 1,
        device: Device::Cpu,
        model_files: Default::default(),
        torchscript_files: Default::default(),
        precision: Default::default(),
    })
    .expect("onnxruntime in .venv: run scripts/setup");
    let ids = |shape: Vec<usize>, v: i64| {
        let n = shape.iter().product();
        Tensor::from_i64(INPUT_NAME, shape, &vec![v; n])
    };
    let mut renamed = ids(vec![1, 600], 1);
    renamed.name = "tokens".into();
    let cases: Vec<(ModelId, Vec<Tensor>)> = vec![
        (ModelId::TextCnn, vec![ids(vec![1, 599], 1)]),
        (ModelId::TextCnn, vec![ids(vec![0, 600], 1)]),
        (ModelId::TextCnn, vec![renamed]),
        (
            ModelId::TextCnn,
            vec![Tensor::from_f32(INPUT_NAME, vec![1, 600], &[0.0; 600])],
        ),
        // Outside the vocabulary: ONNX Runtime's own check would say something else.
        (ModelId::TextCnn, vec![ids(vec![1, 600], 5000)]),
        (ModelId::TextCnn, vec![ids(vec![1, 600], -1)]),
        (ModelId::TextCnn, vec![]),
        (ModelId::Resnet18, vec![ids(vec![1, 3, 224, 224], 0)]),
    ];
    for (model, inputs) in cases {
        let want = fixtures::check_input(model, &inputs)
            .unwrap_err()
            .to_string();
        let request = contract::Prepared::new(model.name(), inputs);
        let e = backend.infer(&request).await.unwrap_err();
        assert_eq!(e.kind(), "bad_input", "{model}: {e}");
        assert_eq!(e.to_string(), want, "{model}");
    }
    // A good request still runs.
    let good = fixtures::inputs::batch(ModelId::TextCnn, 2, 1);
    let request = contract::Prepared::new("text-cnn", vec![good]);
    assert_eq!(backend.infer(&request).await.unwrap()[0].shape, [2, 10]);
}
