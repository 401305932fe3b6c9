//! The numeric precision a backend runs a model at (`--precision`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Numeric precision of a model's weights and arithmetic. Every precision is made from
/// the same fp32 weights: fp16 and int8 as ONNX conversions written beside `model.onnx`
/// (`model.fp16.onnx`, `model.int8.onnx`), bf16 by an engine's own precision setting.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// 32-bit float: the fixtures as generated.
    #[default]
    Fp32,
    /// IEEE half precision.
    Fp16,
    /// bfloat16.
    Bf16,
    /// 8-bit integer weights (quantised), float32 inputs and outputs.
    Int8,
}

impl Precision {
    /// Every precision, in the order tables list them.
    pub const ALL: [Precision; 4] = [
        Precision::Fp32,
        Precision::Fp16,
        Precision::Bf16,
        Precision::Int8,
    ];

    /// Name in flags and results.
    pub fn name(self) -> &'static str {
        match self {
            Precision::Fp32 => "fp32",
            Precision::Fp16 => "fp16",
            Precision::Bf16 => "bf16",
            Precision::Int8 => "int8",
        }
    }

    /// The ONNX file of a model at this precision, in the model's fixtures directory
    /// (`None` for bf16: no ONNX file is written for it; an engine converts at load).
    pub fn onnx_file(self) -> Option<&'static str> {
        match self {
            Precision::Fp32 => Some("model.onnx"),
            Precision::Fp16 => Some("model.fp16.onnx"),
            Precision::Bf16 => None,
            Precision::Int8 => Some("model.int8.onnx"),
        }
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                format!("unknown precision {s:?}; give fp32, fp16, bf16 or int8 (comma separated)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_read_back_their_names() {
        for p in Precision::ALL {
            assert_eq!(p.name().parse::<Precision>(), Ok(p));
        }
        assert_eq!("INT8".parse::<Precision>(), Ok(Precision::Int8));
        let e = "int4".parse::<Precision>().unwrap_err();
        assert!(
            e.contains("\"int4\"") && e.contains("fp32, fp16, bf16 or int8"),
            "{e}"
        );
    }
}
