//! The precision dimension of the measured rows: each backend at a reduced precision
//! against the same backend at fp32.

use super::{Opened, Plan};
use crate::results::{PointResult, Ratio};

/// Each backend at a reduced precision against itself at fp32, point by point, with
/// the intervals of [`super::ratios`] (paired rounds): `p50_ratio` and `mean_ratio`
/// are latency ratios, so the throughput ratio at one request in flight is
/// `1 / mean_ratio`.
pub(super) fn ratios(rows: &[PointResult], opened: &[Opened], plan: &Plan) -> Vec<Ratio> {
    let mut out = Vec::new();
    for o in opened {
        let Some(base) = crate::precision::fp32_of(&o.name, o.precision) else {
            continue;
        };
        let pair: Vec<PointResult> = rows
            .iter()
            .filter(|r| r.backend == o.name || r.backend == base)
            .cloned()
            .collect();
        out.extend(super::ratios(
            &pair,
            base,
            plan.seed,
            plan.measure.first_stage(),
            plan.measure.target_precision,
        ));
    }
    out
}
