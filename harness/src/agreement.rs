//! The agreement check: same inputs, same outputs, before any timing.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How one backend's outputs compare with the reference's on the same inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Agreement {
    /// Model name.
    pub model: String,
    /// Backend checked.
    pub backend: String,
    /// Reference backend.
    pub reference: String,
    /// Largest absolute difference over all outputs.
    pub max_abs_diff: f64,
    /// `max_abs_diff` divided by the largest absolute reference output.
    pub max_rel_diff: f64,
    /// Fraction of samples whose arg-max class is the same.
    pub top1_agreement: f64,
    /// Within tolerance: `max_abs_diff <= atol + rtol * max|reference|`.
    pub passed: bool,
    /// Precision the backend ran at (the reference runs fp32).
    #[serde(default = "fp32")]
    pub precision: String,
    /// The tolerance that decided `passed`, such as `atol 0.1 + rtol 0.1`: the run's
    /// `--atol`/`--rtol` at fp32, wider at reduced precisions.
    #[serde(default)]
    pub tolerance: String,
}

fn fp32() -> String {
    "fp32".into()
}

/// Compares `got` with `want`, both `[batch, classes]` row-major.
pub fn compare(
    got: &[f32],
    want: &[f32],
    classes: usize,
    atol: f64,
    rtol: f64,
) -> Result<(f64, f64, f64, bool), String> {
    if got.len() != want.len() || classes == 0 || want.len() % classes != 0 {
        return Err(format!(
            "returned {} values where the reference returned {} ({} classes per sample)",
            got.len(),
            want.len(),
            classes
        ));
    }
    if let Some(bad) = got.iter().find(|v| !v.is_finite()) {
        return Err(format!("returned a non-finite value ({bad})"));
    }
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs() as f64));
    let max_abs = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (a, b)| m.max((*a as f64 - *b as f64).abs()));
    let rows = want.len() / classes;
    let same_top1 = got
        .chunks(classes)
        .zip(want.chunks(classes))
        .filter(|(a, b)| argmax(a) == argmax(b))
        .count();
    let rel = if scale > 0.0 {
        max_abs / scale
    } else {
        max_abs
    };
    let passed = max_abs <= atol + rtol * scale;
    Ok((max_abs, rel, same_top1 as f64 / rows as f64, passed))
}

/// Tolerances of one output's element type: `(atol, rtol)` from the run's for float32,
/// at least 1e-2 each for float16 (half precision keeps about three digits), exact for
/// int64.
pub fn tolerance(dtype: contract::DType, atol: f64, rtol: f64) -> (f64, f64) {
    match dtype {
        contract::DType::F32 => (atol, rtol),
        contract::DType::F16 => (atol.max(1e-2), rtol.max(1e-2)),
        contract::DType::I64 => (0.0, 0.0),
    }
}

/// Compares every output of a model with the reference's, each with the tolerance of
/// its element type ([`tolerance`]); the top-1 agreement is over the last dimension
/// of the float outputs (1.0 when there are none). Returns the largest absolute and
/// relative differences, the lowest top-1 agreement, and whether every output passed.
pub fn compare_outputs(
    got: &[contract::Tensor],
    want: &[contract::Tensor],
    atol: f64,
    rtol: f64,
) -> Result<(f64, f64, f64, bool), String> {
    if got.len() != want.len() {
        return Err(format!(
            "returned {} outputs where the reference returned {}",
            got.len(),
            want.len()
        ));
    }
    let (mut abs, mut rel, mut top1, mut passed) = (0.0f64, 0.0f64, 1.0f64, true);
    for (g, w) in got.iter().zip(want) {
        if g.shape != w.shape {
            return Err(format!(
                "returned output {} of shape {:?} where the reference's {} is {:?}",
                g.name, g.shape, w.name, w.shape
            ));
        }
        let classes = w.shape.last().copied().unwrap_or(1).max(1);
        let (a, r) = tolerance(w.dtype, atol, rtol);
        let gv: Vec<f32> = g.to_f64_lossy().iter().map(|&v| v as f32).collect();
        let wv: Vec<f32> = w.to_f64_lossy().iter().map(|&v| v as f32).collect();
        if wv.is_empty() {
            continue;
        }
        let (m, rr, t, p) =
            compare(&gv, &wv, classes, a, r).map_err(|e| format!("output {}: {e}", w.name))?;
        abs = abs.max(m);
        rel = rel.max(rr);
        if w.dtype != contract::DType::I64 {
            top1 = top1.min(t);
        }
        passed &= p;
    }
    Ok((abs, rel, top1, passed))
}

/// Index of the largest value (first on ties).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_output_is_compared_with_its_dtype_tolerance() {
        use contract::Tensor;
        let f = |v: &[f32]| Tensor::from_f32("y", vec![1, v.len()], v);
        let h = |v: &[f32]| Tensor::from_f16("h", vec![1, v.len()], v);
        let i = |v: &[i64]| Tensor::from_i64("n", vec![1, v.len()], v);
        let want = [f(&[1.0, 2.0]), h(&[1.0, 2.0]), i(&[3, 4])];
        let close = [f(&[1.0, 2.0]), h(&[1.0, 2.005]), i(&[3, 4])];
        let (_, _, top1, ok) = compare_outputs(&close, &want, 1e-3, 1e-3).unwrap();
        assert!(ok && top1 == 1.0);
        let off_by_one = [f(&[1.0, 2.0]), h(&[1.0, 2.0]), i(&[3, 5])];
        assert!(!compare_outputs(&off_by_one, &want, 1e-3, 1e-3).unwrap().3);
        let e = compare_outputs(&want[..1], &want, 1e-3, 1e-3).unwrap_err();
        assert!(e.contains("returned 1 outputs"), "{e}");
    }

    #[test]
    fn identical_outputs_agree() {
        let v = [0.1, 0.9, -0.2, 0.5, 0.4, 0.3];
        assert_eq!(compare(&v, &v, 3, 0.0, 0.0), Ok((0.0, 0.0, 1.0, true)));
    }

    #[test]
    fn differences_are_measured_and_judged() {
        let want = [1.0, 2.0, 3.0, 4.0];
        let got = [1.0, 2.0, 3.0, 3.9];
        let (abs, rel, top1, ok) = compare(&got, &want, 2, 1e-3, 1e-3).unwrap();
        assert!((abs - 0.1).abs() < 1e-6 && (rel - 0.025).abs() < 1e-6);
        assert_eq!(top1, 1.0);
        assert!(!ok);
        let got = [1.0, 2.0, 4.5, 4.0]; // second sample flips its class
        let (_, _, top1, _) = compare(&got, &want, 2, 10.0, 0.0).unwrap();
        assert_eq!(top1, 0.5);
        assert!(compare(&got[..2], &want, 2, 1.0, 1.0).is_err());
        assert!(compare(&[f32::NAN, 0.0, 0.0, 0.0], &want, 2, 1.0, 1.0)
            .unwrap_err()
            .contains("non-finite"));
    }

    #[test]
    fn argmax_picks_first_maximum() {
        assert_eq!(argmax(&[0.0, 3.0, 3.0, -1.0]), 1);
    }
}
