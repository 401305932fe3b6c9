//! Copying a model's canonical safetensors file into the variables of a `tch::nn`
//! `VarStore`, with errors that name the model, the file and the problem.
//!
//! tch's own `VarStore::load` would do the copy, but `Tensor::copy_` broadcasts: a
//! tensor of the wrong shape could be accepted silently. Here every variable must be
//! present in the file with exactly its shape, as f32.

use std::collections::HashMap;
use std::path::Path;

use contract::BackendError;
use tch::{nn::VarStore, Kind, Tensor};

/// Fills every variable of `vs` from the safetensors file `path` of `model`.
pub fn load(model: &str, path: &Path, vs: &VarStore) -> Result<(), BackendError> {
    let fail = |reason: String| BackendError::ModelLoad {
        model: model.into(),
        reason,
    };
    let file = path.display();
    if !path.is_file() {
        return Err(fail(format!(
            "libtorch cannot read {file}: no such file; run `cargo run --release -p fixtures -- generate` to create it"
        )));
    }
    let tensors: HashMap<String, Tensor> = Tensor::read_safetensors(path)
        .map_err(|e| {
            fail(format!(
                "libtorch cannot read {file} as safetensors: {}",
                one_line(&e)
            ))
        })?
        .into_iter()
        .collect();
    let mut names: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, mut var) in names {
        let src = tensors
            .get(&name)
            .ok_or_else(|| fail(format!("{file} has no tensor {name}")))?;
        if src.size() != var.size() {
            return Err(fail(format!(
                "tensor {name} of {file} has shape {:?} where {:?} is expected",
                src.size(),
                var.size()
            )));
        }
        if src.kind() != Kind::Float {
            return Err(fail(format!(
                "tensor {name} of {file} is {:?} where f32 is expected",
                src.kind()
            )));
        }
        tch::no_grad(|| var.f_copy_(src)).map_err(|e| {
            fail(format!(
                "cannot copy tensor {name} of {file}: {}",
                one_line(&e)
            ))
        })?;
    }
    Ok(())
}

/// A tch error as one line (libtorch messages can carry a C++ backtrace).
pub(crate) fn one_line(e: &tch::TchError) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn store() -> VarStore {
        let vs = VarStore::new(Device::Cpu);
        let _ = nn::linear(vs.root() / "fc", 3, 2, Default::default());
        vs
    }

    fn message(e: BackendError) -> String {
        assert_eq!(e.kind(), "model_load");
        let text = e.to_string();
        assert!(text.contains("tiny") && !text.contains('\n'), "{text}");
        text
    }

    fn write(dir: &Path, tensors: &[(&str, Tensor)]) -> std::path::PathBuf {
        let path = dir.join("model.safetensors");
        Tensor::write_safetensors(tensors, &path).unwrap();
        path
    }

    #[test]
    fn copies_every_variable_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let w = Tensor::arange(6, (Kind::Float, Device::Cpu)).reshape([2, 3]);
        let b = Tensor::from_slice(&[7f32, 8.0]);
        let path = write(
            dir.path(),
            &[
                ("fc.weight", w),
                ("fc.bias", b),
                ("extra", Tensor::from_slice(&[1f32])),
            ],
        );
        let vs = store();
        load("tiny", &path, &vs).unwrap();
        let vars = vs.variables();
        assert_eq!(
            Vec::<f32>::try_from(&vars["fc.bias"]).unwrap(),
            vec![7.0, 8.0]
        );
        assert_eq!(
            Vec::<f32>::try_from(&vars["fc.weight"].flatten(0, -1)).unwrap(),
            vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
    }

    #[test]
    fn missing_misshapen_and_mistyped_tensors_are_load_errors() {
        let dir = tempfile::tempdir().unwrap();
        let w = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
        let path = write(dir.path(), &[("fc.weight", w.shallow_clone())]);
        let e = message(load("tiny", &path, &store()).unwrap_err());
        assert!(e.contains("has no tensor fc.bias"), "{e}");

        // [1] would broadcast into [2] with copy_; it must be rejected.
        let path = write(
            dir.path(),
            &[
                ("fc.weight", w.shallow_clone()),
                ("fc.bias", Tensor::zeros([1], (Kind::Float, Device::Cpu))),
            ],
        );
        let e = message(load("tiny", &path, &store()).unwrap_err());
        assert!(
            e.contains("fc.bias") && e.contains("shape [1] where [2] is expected"),
            "{e}"
        );

        let path = write(
            dir.path(),
            &[
                ("fc.weight", w),
                ("fc.bias", Tensor::zeros([2], (Kind::Double, Device::Cpu))),
            ],
        );
        let e = message(load("tiny", &path, &store()).unwrap_err());
        assert!(e.contains("where f32 is expected"), "{e}");
    }

    #[test]
    fn missing_truncated_and_garbage_files_are_load_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = message(load("tiny", &dir.path().join("nope.safetensors"), &store()).unwrap_err());
        assert!(
            e.contains("nope.safetensors") && e.contains("fixtures"),
            "{e}"
        );

        let big = Tensor::zeros([64, 64], (Kind::Float, Device::Cpu));
        let path = write(dir.path(), &[("fc.weight", big)]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = message(load("tiny", &path, &store()).unwrap_err());
        assert!(
            e.contains("model.safetensors") && e.contains("cannot read"),
            "{e}"
        );

        std::fs::write(&path, b"definitely not safetensors").unwrap();
        let e = message(load("tiny", &path, &store()).unwrap_err());
        assert!(e.contains("as safetensors"), "{e}");
    }
}
