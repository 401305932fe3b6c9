//! The agreement check before timing: the same fixed inputs through every backend,
//! compared with the reference's outputs, each backend with the tolerance of the
//! precision it runs at ([`crate::precision::tolerance`]).

use std::sync::Arc;
use std::time::Instant;

use contract::{Backend, BackendError};

use super::{Check, Model, Opened, Plan};
use crate::agreement::{self, Agreement};
use crate::precision;
use crate::progress::Progress;
use crate::results::AGREEMENT_BATCH;
use crate::HarnessError;

/// A backend whose agreement request failed: its name, where, and the error.
pub(super) type Broken = (String, String, BackendError);

/// The latency of each backend's first request after ready (its first agreement
/// request), ms.
pub(super) type Firsts = Vec<(String, f64)>;

pub(super) async fn check_agreement(
    plan: &Plan,
    cfg: &Check,
    reference: &Arc<dyn Backend>,
    opened: &[Opened],
    progress: &Progress,
) -> Result<(Vec<Agreement>, Vec<Broken>, Firsts), HarnessError> {
    let mut rows = Vec::new();
    let mut broken: Vec<Broken> = Vec::new();
    let mut firsts: Firsts = Vec::new();
    let mut first = |name: &str, t0: Instant| {
        if !firsts.iter().any(|(n, _)| n == name) {
            firsts.push((name.to_string(), t0.elapsed().as_secs_f64() * 1000.0));
        }
    };
    for model in &plan.models {
        // A seed of its own, so agreement inputs are not the timed inputs.
        let input = model.inputs(AGREEMENT_BATCH, plan.seed.wrapping_add(1));
        let t0 = Instant::now();
        let want = outputs(reference, &cfg.reference, model, input.clone()).await?;
        first(&cfg.reference, t0);
        for o in opened.iter().filter(|o| o.name != cfg.reference) {
            if broken.iter().any(|(name, _, _)| *name == o.name) {
                continue;
            }
            progress.note(&format!("agreement: {} on {model}", o.name));
            let t0 = Instant::now();
            let got = outputs(&o.backend, &o.name, model, input.clone()).await;
            if got.is_ok() {
                first(&o.name, t0);
            }
            let got = match got {
                Ok(got) => got,
                Err(HarnessError::Backend { backend, source }) => {
                    broken.push((backend, format!("agreement on {model}"), source));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let (atol, rtol) = precision::tolerance(o.precision, cfg.atol, cfg.rtol);
            let (max_abs_diff, max_rel_diff, top1_agreement, passed) =
                agreement::compare_outputs(&got, &want, atol, rtol).map_err(|e| {
                    HarnessError::Disagreement(format!("{} on {model}: {e}", o.name))
                })?;
            let row = Agreement {
                model: model.name().into(),
                backend: o.name.clone(),
                reference: cfg.reference.clone(),
                max_abs_diff,
                max_rel_diff,
                top1_agreement,
                passed,
                precision: o.precision.to_string(),
                tolerance: precision::tolerance_text((atol, rtol)),
            };
            if !passed {
                let msg = format!(
                    "{} disagrees with {} on {model}: max abs diff {:.3e} exceeds the tolerance (atol {} + rtol {} x largest output)",
                    o.name, cfg.reference, max_abs_diff, atol, rtol
                );
                if cfg.strict {
                    return Err(HarnessError::Disagreement(msg));
                }
                progress.note(&format!("{msg}; excluded from {model} timings"));
            }
            rows.push(row);
        }
    }
    Ok((rows, broken, firsts))
}

/// Every output of `model` on `input`, in the order the model declares them.
async fn outputs(
    backend: &Arc<dyn Backend>,
    name: &str,
    model: &Model,
    input: Vec<contract::Tensor>,
) -> Result<Vec<contract::Tensor>, HarnessError> {
    let fail = |source| HarnessError::Backend {
        backend: name.to_string(),
        source,
    };
    let request = backend.prepare(model.name(), input).map_err(fail)?;
    let outputs = backend.infer(&request).await.map_err(fail)?;
    if outputs.is_empty() {
        return Err(fail(BackendError::Protocol(format!(
            "{model} returned no output tensor"
        ))));
    }
    Ok(outputs)
}
