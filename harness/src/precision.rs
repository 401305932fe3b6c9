//! The precision dimension (`--precision fp32,fp16,bf16,int8`): which backend runs
//! which precision, what a backend at a precision is called, and how close to the fp32
//! reference its outputs must be.
//!
//! Every precision comes from the same fp32 weights: fp16 and int8 are ONNX conversions
//! of `model.onnx` (`fixtures/precision/convert.py`, run by scripts/setup), bf16 is an
//! engine's own setting. A backend runs only what it supports natively; at any other
//! precision it is listed as not measured, with the reason, and never stands in.

use contract::{BackendError, Precision};

/// The precisions backend type `kind` runs here, fp32 first.
pub fn supported(kind: &str) -> &'static [Precision] {
    match kind {
        // The CPU provider on model.fp16.onnx / model.int8.onnx.
        "onnxruntime" => &[Precision::Fp32, Precision::Fp16, Precision::Int8],
        // INFERENCE_PRECISION_HINT=bf16, or model.int8.onnx.
        "openvino" => &[Precision::Fp32, Precision::Bf16, Precision::Int8],
        // The safetensors weights rounded to f16/bf16 at load, activations likewise.
        "candle" => &[Precision::Fp32, Precision::Fp16, Precision::Bf16],
        // The f32 weights rounded to bfloat16 at load (VarStore::bfloat16).
        "libtorch" => &[Precision::Fp32, Precision::Bf16],
        // Managed servers loading model.fp16.onnx / model.int8.onnx with onnxruntime
        // (the Flask app; Triton's Python backend).
        "flask" | "triton-http" | "triton-grpc" => {
            &[Precision::Fp32, Precision::Fp16, Precision::Int8]
        }
        _ => &[Precision::Fp32],
    }
}

/// Why `name` (of type `kind`) is not measured at `precision`, when it is not.
pub fn unsupported(name: &str, kind: &str, precision: Precision) -> Option<BackendError> {
    let ok = supported(kind);
    (!ok.contains(&precision)).then(|| BackendError::Unavailable {
        backend: name.into(),
        reason: format!(
            "{precision} not measured: {kind} runs {} here",
            ok.iter().map(|p| p.name()).collect::<Vec<_>>().join("/")
        ),
        fix: "compare fp16 and int8 on onnxruntime, flask and triton, bf16 and int8 on \
              openvino, fp16 and bf16 on candle, bf16 on libtorch"
            .into(),
    })
}

/// The name of backend `name` opened at `precision` in a run: the name itself at
/// fp32, `NAME@PRECISION` (such as `onnxruntime@int8`) otherwise.
pub fn instance(name: &str, precision: Precision) -> String {
    match precision {
        Precision::Fp32 => name.to_string(),
        p => format!("{name}@{p}"),
    }
}

/// The fp32 backend a backend at a reduced precision is compared with: `onnxruntime`
/// for `onnxruntime@int8` (`None` at fp32).
pub fn fp32_of(name: &str, precision: Precision) -> Option<&str> {
    (precision != Precision::Fp32)
        .then(|| name.strip_suffix(&format!("@{precision}")))
        .flatten()
}

/// `onnxruntime(int8)`: a backend and the precision it ran at, as tables label it.
pub fn label(name: &str, precision: &str) -> String {
    let base = precision
        .parse()
        .ok()
        .and_then(|p| fp32_of(name, p))
        .unwrap_or(name);
    format!("{base}({precision})")
}

/// `(atol, rtol)` of the agreement check at `precision` against the fp32 reference:
/// the run's `--atol`/`--rtol` at fp32; for the reduced precisions, at least what their
/// arithmetic keeps (fp16 about three decimal digits, bf16 about two, int8 weights and
/// activations about 1 % of their range each, compounded over the layers). bf16 gets
/// int8's bound: compounded over ResNet-50's layers its error reached 0.96 of logits up
/// to 12.4 on libtorch and 0.75 on OpenVINO (top-1 unchanged), past 0.05 + 0.05 x 12.4.
pub fn tolerance(precision: Precision, atol: f64, rtol: f64) -> (f64, f64) {
    let least = match precision {
        Precision::Fp32 => 0.0,
        Precision::Fp16 => 1e-2,
        Precision::Bf16 => 1e-1,
        Precision::Int8 => 1e-1,
    };
    (atol.max(least), rtol.max(least))
}

/// The tolerance as printed: `atol 0.01 + rtol 0.01 x largest output`.
pub fn tolerance_text((atol, rtol): (f64, f64)) -> String {
    format!("atol {atol} + rtol {rtol}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_and_tolerances() {
        assert_eq!(instance("onnxruntime", Precision::Fp32), "onnxruntime");
        assert_eq!(instance("onnxruntime", Precision::Int8), "onnxruntime@int8");
        assert_eq!(tolerance(Precision::Fp32, 1e-3, 1e-3), (1e-3, 1e-3));
        assert_eq!(tolerance(Precision::Int8, 1e-3, 1e-3), (0.1, 0.1));
        assert_eq!(
            fp32_of("onnxruntime@int8", Precision::Int8),
            Some("onnxruntime")
        );
        assert_eq!(
            fp32_of("openvino@a@bf16", Precision::Bf16),
            Some("openvino@a")
        );
        assert_eq!(fp32_of("onnxruntime", Precision::Fp32), None);
        assert_eq!(label("onnxruntime@int8", "int8"), "onnxruntime(int8)");
        assert_eq!(label("candle", "fp32"), "candle(fp32)");
        assert!(unsupported("onnxruntime", "onnxruntime", Precision::Int8).is_none());
        assert!(unsupported("flask", "flask", Precision::Int8).is_none());
        let e = unsupported("flask", "flask", Precision::Bf16)
            .unwrap()
            .to_string();
        assert!(
            e.contains("bf16 not measured: flask runs fp32/fp16/int8 here"),
            "{e}"
        );
    }
}
