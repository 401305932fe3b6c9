//! Reading a model's canonical safetensors file, with errors that name the model, the
//! file and the problem.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use contract::BackendError;

/// The tensors of one model's safetensors file, fetched by name and checked for shape.
pub struct Weights {
    model: String,
    path: PathBuf,
    vb: VarBuilder<'static>,
    /// Element type tensors come out as: f32, or f16/bf16 (`--precision`).
    dtype: DType,
}

impl Weights {
    /// Reads `path` (the whole file, so that nothing is left mapped) for `model`.
    /// Tensors come out as f32 on `device`.
    pub fn open(model: &str, path: &Path, device: &Device) -> Result<Self, BackendError> {
        let fail = |reason: String| BackendError::ModelLoad {
            model: model.into(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "; run `cargo run --release -p fixtures -- generate` to create it"
            } else {
                ""
            };
            fail(format!("candle cannot read {}: {e}{hint}", path.display()))
        })?;
        let len = bytes.len();
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device).map_err(|e| {
            fail(format!(
                "candle cannot parse {} ({len} bytes) as safetensors: {}",
                path.display(),
                one_line(&e)
            ))
        })?;
        Ok(Weights {
            model: model.into(),
            path: path.into(),
            vb,
            dtype: DType::F32,
        })
    }

    /// Tensors come out as `dtype` (rounded once from the file's f32).
    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// The tensor `name`, which must have exactly `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor, BackendError> {
        if !self.vb.contains_tensor(name) {
            return Err(self.fail(format!("{} has no tensor {name}", self.path.display())));
        }
        let t = self.vb.get_unchecked_dtype(name, DType::F32).map_err(|e| {
            self.fail(format!(
                "candle cannot read tensor {name} of {}: {}",
                self.path.display(),
                one_line(&e)
            ))
        })?;
        if t.dims() != shape {
            return Err(self.fail(format!(
                "tensor {name} of {} has shape {:?} where {shape:?} is expected",
                self.path.display(),
                t.dims()
            )));
        }
        if self.dtype == DType::F32 {
            return Ok(t);
        }
        t.to_dtype(self.dtype).map_err(|e| {
            self.fail(format!(
                "candle cannot convert tensor {name}: {}",
                one_line(&e)
            ))
        })
    }

    /// The device tensors are loaded on.
    pub fn device(&self) -> &Device {
        self.vb.device()
    }

    /// A load error for this model.
    pub fn fail(&self, reason: String) -> BackendError {
        BackendError::ModelLoad {
            model: self.model.clone(),
            reason,
        }
    }
}

/// A candle error as one line (its `Display` may carry a backtrace on later lines).
pub(crate) fn one_line(e: &candle_core::Error) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn write(dir: &Path, tensors: &[(&str, Tensor)]) -> PathBuf {
        let path = dir.join("model.safetensors");
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, &path).unwrap();
        path
    }

    fn message(e: BackendError) -> String {
        assert_eq!(e.kind(), "model_load");
        let text = e.to_string();
        assert!(text.contains("tiny"), "{text}");
        assert!(!text.contains('\n'), "{text}");
        text
    }

    #[test]
    fn reads_tensors_and_checks_names_and_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((2, 3))
            .unwrap();
        let path = write(dir.path(), &[("a.weight", t)]);
        let w = Weights::open("tiny", &path, &Device::Cpu).unwrap();
        let a = w.get("a.weight", &[2, 3]).unwrap();
        assert_eq!(a.to_vec2::<f32>().unwrap()[1], vec![3.0, 4.0, 5.0]);

        let e = message(w.get("b.weight", &[2, 3]).unwrap_err());
        assert!(e.contains("has no tensor b.weight"), "{e}");
        let e = message(w.get("a.weight", &[3, 2]).unwrap_err());
        assert!(e.contains("shape [2, 3] where [3, 2] is expected"), "{e}");
    }

    #[test]
    fn missing_truncated_and_garbage_files_are_load_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.safetensors");
        let e = message(Weights::open("tiny", &missing, &Device::Cpu).err().unwrap());
        assert!(
            e.contains("nope.safetensors") && e.contains("fixtures"),
            "{e}"
        );

        let t = Tensor::zeros((64, 64), DType::F32, &Device::Cpu).unwrap();
        let path = write(dir.path(), &[("a", t)]);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let e = message(Weights::open("tiny", &path, &Device::Cpu).err().unwrap());
        assert!(
            e.contains("model.safetensors") && e.contains("bytes"),
            "{e}"
        );

        std::fs::write(&path, b"definitely not safetensors").unwrap();
        let e = message(Weights::open("tiny", &path, &Device::Cpu).err().unwrap());
        assert!(e.contains("cannot parse"), "{e}");
    }
}
