//! The three fixture models through the whole adapter: shapes, a hand-computed
//! text-CNN forward, non-degenerate outputs, batch independence and every load and
//! request error.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use common::{fixtures_dir, infer, open, open_error, options, top1};
use contract::{DType, Device, Protocol, Tensor};
use fixtures::{inputs, ModelFiles, ModelId, INPUT_NAME, OUTPUT_NAME, TEXT_CNN};

#[tokio::test]
async fn every_model_gives_logits_of_the_right_shape() {
    let backend = open(&["text-cnn", "resnet18", "resnet50"], 1, 2);
    let d = backend.describe();
    assert_eq!(d.name, "candle");
    assert!(d.engine.starts_with("candle 0."), "{}", d.engine);
    assert_eq!(d.protocol, Protocol::InProcess);
    assert_eq!(
        (d.device.as_str(), d.workers, d.intra_threads),
        ("cpu", 1, Some(2))
    );
    assert_eq!(d.details["elementwise_helper_threads"], "0");
    backend.health().await.unwrap();

    for (model, batch) in [
        (ModelId::TextCnn, 3),
        (ModelId::Resnet18, 2),
        (ModelId::Resnet50, 1),
    ] {
        let out = infer(&*backend, model, inputs::batch(model, batch, 11)).await;
        assert_eq!(out.name, OUTPUT_NAME);
        assert_eq!(out.dtype, DType::F32);
        assert_eq!(out.shape, vec![batch, model.classes()], "{model}");
        assert!(
            out.to_f32().unwrap().iter().all(|v| v.is_finite()),
            "{model}"
        );
    }
}

/// The text-CNN by its definition, in plain loops (f64 accumulation), on the weights
/// as the generator made them.
fn text_cnn_by_hand(w: &fixtures::Weights, ids: &[i64]) -> Vec<f64> {
    let s = TEXT_CNN;
    let get = |n: &str| &w.get(n).unwrap().values;
    let emb = get("embedding.weight");
    let mut features = Vec::new();
    for (i, &k) in s.kernels.iter().enumerate() {
        let (cw, cb) = (
            get(&format!("convs.{i}.weight")),
            get(&format!("convs.{i}.bias")),
        );
        for f in 0..s.filters {
            let kernel = &cw[f * s.embed * k..][..s.embed * k];
            let best = (0..=s.seq_len - k)
                .map(|t| {
                    let mut acc = f64::from(cb[f]);
                    for (c, taps) in kernel.chunks(k).enumerate() {
                        for (j, &wv) in taps.iter().enumerate() {
                            let x = emb[ids[t + j] as usize * s.embed + c];
                            acc += f64::from(wv) * f64::from(x);
                        }
                    }
                    acc.max(0.0)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            features.push(best);
        }
    }
    let (fw, fb) = (get("fc.weight"), get("fc.bias"));
    (0..s.classes)
        .map(|o| {
            let row = &fw[o * features.len()..][..features.len()];
            f64::from(fb[o])
                + row
                    .iter()
                    .zip(&features)
                    .map(|(a, x)| f64::from(*a) * x)
                    .sum::<f64>()
        })
        .collect()
}

#[tokio::test]
async fn text_cnn_matches_a_hand_computed_forward_on_the_fixture_weights() {
    let backend = open(&["text-cnn"], 1, 1);
    let weights = fixtures::Weights::generate(ModelId::TextCnn, fixtures::DEFAULT_SEED);
    let batch = inputs::batch(ModelId::TextCnn, 2, 3);
    let ids = batch.to_i64().unwrap();
    let logits = infer(&*backend, ModelId::TextCnn, batch)
        .await
        .to_f32()
        .unwrap();
    for (b, got) in logits.chunks(TEXT_CNN.classes).enumerate() {
        let want = text_cnn_by_hand(&weights, &ids[b * TEXT_CNN.seq_len..][..TEXT_CNN.seq_len]);
        let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
        for (g, e) in got.iter().zip(&want) {
            let err = (f64::from(*g) - e).abs();
            assert!(err <= 1e-4 * scale, "sample {b}: {got:?} vs {want:?}");
        }
    }
}

#[tokio::test]
async fn top1_varies_across_sixteen_inputs() {
    let backend = open(&["text-cnn", "resnet18", "resnet50"], 1, 2);
    for model in ModelId::ALL {
        let out = infer(&*backend, model, inputs::batch(model, 16, 5)).await;
        let classes: BTreeSet<usize> = top1(&out).into_iter().collect();
        assert!(classes.len() >= 3, "{model}: top-1 classes {classes:?}");
    }
}

#[tokio::test]
async fn a_sample_does_not_depend_on_its_batch() {
    let backend = open(&["text-cnn", "resnet18"], 1, 2);
    for model in [ModelId::TextCnn, ModelId::Resnet18] {
        let all = infer(&*backend, model, inputs::batch(model, 3, 9)).await;
        let one = infer(&*backend, model, inputs::batch_from(model, 2, 1, 9)).await;
        let (all, one) = (all.to_f32().unwrap(), one.to_f32().unwrap());
        let third = &all[2 * model.classes()..];
        for (a, b) in third.iter().zip(&one) {
            assert!(
                (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                "{model}: {a} vs {b}"
            );
        }
    }
}

#[tokio::test]
async fn bad_requests_are_bad_input_or_unknown_model() {
    let backend = open(&["text-cnn"], 1, 1);
    let run = |model: &str, input: Tensor| {
        let request = backend.prepare(model, vec![input]).unwrap();
        let backend = backend.clone();
        async move { backend.infer(&request).await.unwrap_err() }
    };
    let good = inputs::batch(ModelId::TextCnn, 1, 1);

    let e = run("resnet18", good.clone()).await;
    assert_eq!(e.kind(), "unknown_model", "{e}");

    let mut renamed = good.clone();
    renamed.name = "ids".into();
    let e = run("text-cnn", renamed).await;
    assert!(
        e.kind() == "bad_input" && e.to_string().contains("got ids"),
        "{e}"
    );

    let short = Tensor::from_i64(INPUT_NAME, vec![1, 300], &[1; 300]);
    let e = run("text-cnn", short).await;
    assert!(
        e.kind() == "bad_input" && e.to_string().contains("[1, 300]"),
        "{e}"
    );

    let floats = Tensor::from_f32(INPUT_NAME, vec![1, 600], &[0.5; 600]);
    let e = run("text-cnn", floats).await;
    assert!(
        e.kind() == "bad_input" && e.to_string().contains("f32"),
        "{e}"
    );

    let outside = Tensor::from_i64(INPUT_NAME, vec![1, 600], &[TEXT_CNN.vocab as i64; 600]);
    let e = run("text-cnn", outside).await;
    assert!(
        e.kind() == "bad_input" && e.to_string().contains("vocabulary"),
        "{e}"
    );

    // The executor is still fine.
    assert_eq!(
        infer(&*backend, ModelId::TextCnn, good).await.shape,
        vec![1, 10]
    );
}

#[test]
fn unknown_models_and_unavailable_devices_fail_to_open() {
    let dir = fixtures_dir();
    let e = open_error(&options(dir, &["text-cnn", "bert"], 1, 1));
    assert!(
        e.kind() == "unknown_model" && e.to_string().contains("bert"),
        "{e}"
    );

    // No models: opening only checks that the engine can start.
    assert!(adapter_candle::open(&options(dir, &[], 2, 1)).is_ok());

    let mut cuda = options(dir, &["text-cnn"], 1, 1);
    cuda.device = Device::Cuda(0);
    if cfg!(feature = "cuda") {
        return;
    }
    let e = open_error(&cuda);
    assert_eq!(e.kind(), "unavailable");
    assert!(
        e.to_string().contains("--features adapter-candle/cuda"),
        "{e}"
    );
}

/// A private fixtures directory holding a text-CNN safetensors file with the given
/// tensors (default: the real ones).
fn private_text_cnn(
    edit: impl FnOnce(&mut HashMap<String, candle_core::Tensor>),
) -> tempfile::TempDir {
    let dev = candle_core::Device::Cpu;
    let real = ModelFiles::new(fixtures_dir(), ModelId::TextCnn).safetensors;
    let mut tensors = candle_core::safetensors::load(&real, &dev).unwrap();
    edit(&mut tensors);
    let dir = tempfile::tempdir().unwrap();
    let files = ModelFiles::new(dir.path(), ModelId::TextCnn);
    std::fs::create_dir_all(&files.dir).unwrap();
    candle_core::safetensors::save(&tensors, &files.safetensors).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    let e = open_error(&options(dir, &["text-cnn"], 2, 1));
    assert_eq!(e.kind(), "model_load", "{e}");
    let text = e.to_string();
    assert!(
        text.contains("text-cnn") && text.contains("model.safetensors"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    text
}

#[test]
fn broken_model_files_are_load_errors_naming_model_file_and_problem() {
    let empty = tempfile::tempdir().unwrap();
    let e = load_error(empty.path());
    assert!(
        e.contains("No such file") && e.contains("fixtures -- generate"),
        "{e}"
    );

    let dir = private_text_cnn(|t| {
        t.remove("fc.bias");
    });
    assert!(load_error(dir.path()).contains("has no tensor fc.bias"));

    let dir = private_text_cnn(|t| {
        let w = candle_core::Tensor::zeros(
            (10, 383),
            candle_core::DType::F32,
            &candle_core::Device::Cpu,
        );
        t.insert("fc.weight".into(), w.unwrap());
    });
    let e = load_error(dir.path());
    assert!(
        e.contains("fc.weight") && e.contains("[10, 383] where [10, 384]"),
        "{e}"
    );

    let dir = private_text_cnn(|_| {});
    let path = ModelFiles::new(dir.path(), ModelId::TextCnn).safetensors;
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 3]).unwrap();
    let e = load_error(dir.path());
    assert!(e.contains("cannot parse") && e.contains("bytes"), "{e}");

    let mut garbled = bytes.clone();
    garbled[..64].iter_mut().for_each(|b| *b ^= 0xA5);
    std::fs::write(&path, &garbled).unwrap();
    assert!(load_error(dir.path()).contains("candle cannot parse"));
}
