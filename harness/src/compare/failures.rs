//! A backend that fails at a point: why, with its errors by kind, recorded so the run
//! goes on with the others (or, with `--fail-fast`, ends).

use super::measure::Part;
use super::plan::Plan;
use crate::load::Measurement;
use crate::progress::Progress;
use crate::results::{ErrorCount, Failed};
use crate::HarnessError;

/// Why a backend failed at a point: one sentence, and its errors by kind.
pub(super) struct Failure {
    pub(super) reason: String,
    pub(super) error_kinds: Vec<ErrorCount>,
}

pub(super) fn error_kinds(m: &Measurement) -> Vec<ErrorCount> {
    m.errors
        .iter()
        .map(|(kind, &count)| ErrorCount {
            kind: kind.clone(),
            count,
            example: m.error_messages.get(kind).cloned().unwrap_or_default(),
        })
        .collect()
}

/// A failure when not one request of the backend's windows was answered.
pub(super) fn all_failed(part: &Part) -> Option<Failure> {
    let mut merged = Measurement::empty();
    for (k, w) in part.windows.iter().flatten().enumerate() {
        merged.merge(w, k as u64);
    }
    if merged.ok() > 0 || merged.failed() == 0 {
        return None;
    }
    let (kind, msg) = merged.error_messages.iter().next()?;
    Some(Failure {
        reason: format!("every request failed ({kind}): {msg}"),
        error_kinds: error_kinds(&merged),
    })
}

pub(super) fn record_failure(
    plan: &Plan,
    progress: &Progress,
    failed: &mut Vec<Failed>,
    backend: &str,
    at: &str,
    f: Failure,
) -> Result<(), HarnessError> {
    if plan.fail_fast {
        return Err(HarnessError::NothingToMeasure(format!(
            "{backend} failed on {at}: {}",
            f.reason
        )));
    }
    progress.note(&format!(
        "{backend} failed on {at}: {}; measuring the others",
        f.reason
    ));
    failed.push(Failed {
        backend: backend.to_string(),
        at: at.to_string(),
        reason: f.reason,
        error_kinds: f.error_kinds,
    });
    Ok(())
}
