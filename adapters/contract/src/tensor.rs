//! Named host tensors: the only data type that crosses the contract.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::BackendError;

/// Element type of a tensor. Only what the fixture models need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit signed integer (token ids).
    I64,
    /// 16-bit IEEE float (half precision).
    F16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::I64 => 8,
            DType::F16 => 2,
        }
    }

    /// The name KServe v2 / Triton uses (`FP32`, `INT64`).
    pub fn kserve_name(self) -> &'static str {
        match self {
            DType::F32 => "FP32",
            DType::I64 => "INT64",
            DType::F16 => "FP16",
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
            DType::F16 => "f16",
        })
    }
}

/// The most bytes one tensor may hold: 1 GiB, far above any fixture batch (ResNet-50's
/// largest input batch, 4096 images, is 2.4 GB only as a request and is never decoded
/// from an answer; its answer is 16 MB of logits). A decoder refuses an answer declaring
/// more, so a hostile or broken server cannot make the harness allocate what it declares.
pub const MAX_TENSOR_BYTES: usize = 1 << 30;

/// The byte size of `shape` in `dtype`, or `None` when it overflows or exceeds
/// [`MAX_TENSOR_BYTES`].
pub fn byte_size(shape: &[usize], dtype: DType) -> Option<usize> {
    shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_TENSOR_BYTES)
}

/// A named tensor in host memory, row-major, little-endian.
///
/// The bytes are reference counted ([`Bytes`]), so cloning a tensor to hand it to a
/// worker thread copies no data.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Input or output name, as the model declares it.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape, batch dimension first.
    pub shape: Vec<usize>,
    /// `shape.iter().product() * dtype.size()` bytes.
    pub data: Bytes,
}

impl Tensor {
    /// Builds a tensor, checking that the byte length fits shape and dtype.
    pub fn new(
        name: impl Into<String>,
        dtype: DType,
        shape: Vec<usize>,
        data: Bytes,
    ) -> Result<Self, BackendError> {
        let name = name.into();
        let Some(want) = byte_size(&shape, dtype) else {
            return Err(BackendError::BadInput(format!(
                "tensor {name} of shape {shape:?} and {dtype} would exceed {MAX_TENSOR_BYTES} bytes"
            )));
        };
        if data.len() != want {
            return Err(BackendError::BadInput(format!(
                "tensor {name} has {} bytes but shape {shape:?} of {dtype} needs {want}",
                data.len()
            )));
        }
        Ok(Tensor {
            name,
            dtype,
            shape,
            data,
        })
    }

    /// A float tensor from values.
    pub fn from_f32(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Self {
        let mut bytes = Vec::with_capacity(values.len() * 4);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Tensor::new(name, DType::F32, shape, bytes.into()).expect("length follows from values")
    }

    /// An int64 tensor from values.
    pub fn from_i64(name: impl Into<String>, shape: Vec<usize>, values: &[i64]) -> Self {
        let mut bytes = Vec::with_capacity(values.len() * 8);
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Tensor::new(name, DType::I64, shape, bytes.into()).expect("length follows from values")
    }

    /// A half-precision tensor from `f32` values (rounded to the nearest `f16`).
    pub fn from_f16(name: impl Into<String>, shape: Vec<usize>, values: &[f32]) -> Self {
        let mut bytes = Vec::with_capacity(values.len() * 2);
        for v in values {
            bytes.extend_from_slice(&half::f16::from_f32(*v).to_le_bytes());
        }
        Tensor::new(name, DType::F16, shape, bytes.into()).expect("length follows from values")
    }

    /// The values as `f64` whatever the dtype: what the agreement check compares.
    pub fn to_f64_lossy(&self) -> Vec<f64> {
        match self.dtype {
            DType::F32 => self
                .data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")) as f64)
                .collect(),
            DType::I64 => self
                .data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8")) as f64)
                .collect(),
            DType::F16 => self
                .data
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes(c.try_into().expect("chunk of 2")).to_f64())
                .collect(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Size of the batch (first) dimension, 0 for a scalar.
    pub fn batch(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    /// The values as `f32`, or an error if the dtype differs.
    pub fn to_f32(&self) -> Result<Vec<f32>, BackendError> {
        self.expect(DType::F32)?;
        Ok(self
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4")))
            .collect())
    }

    /// The values as `i64`, or an error if the dtype differs.
    pub fn to_i64(&self) -> Result<Vec<i64>, BackendError> {
        self.expect(DType::I64)?;
        Ok(self
            .data
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8")))
            .collect())
    }

    fn expect(&self, dtype: DType) -> Result<(), BackendError> {
        if self.dtype == dtype {
            Ok(())
        } else {
            Err(BackendError::BadInput(format!(
                "tensor {} is {} where {} was expected",
                self.name, self.dtype, dtype
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_values() {
        let t = Tensor::from_f32("x", vec![2, 2], &[1.0, -2.5, 3.0, 0.0]);
        assert_eq!(t.to_f32().unwrap(), vec![1.0, -2.5, 3.0, 0.0]);
        assert_eq!(t.batch(), 2);
        let t = Tensor::from_i64("ids", vec![3], &[7, -1, 4999]);
        assert_eq!(t.to_i64().unwrap(), vec![7, -1, 4999]);
        let t = Tensor::from_f16("h", vec![3], &[1.0, -0.5, 65504.0]);
        assert_eq!(t.data.len(), 6);
        assert_eq!(t.to_f64_lossy(), vec![1.0, -0.5, 65504.0]);
    }

    #[test]
    fn rejects_wrong_length_and_dtype() {
        let err = Tensor::new("x", DType::F32, vec![2, 3], vec![0u8; 20].into()).unwrap_err();
        assert!(err.to_string().contains("needs 24"), "{err}");
        let t = Tensor::from_i64("ids", vec![1], &[1]);
        assert_eq!(t.to_f32().unwrap_err().kind(), "bad_input");
        // A declared shape whose size overflows, or passes the cap, is refused.
        for shape in [vec![usize::MAX, 2], vec![1 << 31]] {
            let err = Tensor::new("x", DType::F32, shape, Bytes::new()).unwrap_err();
            assert!(err.to_string().contains("would exceed"), "{err}");
        }
    }
}
