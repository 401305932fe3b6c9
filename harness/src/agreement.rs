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
