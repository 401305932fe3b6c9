//! `harness compare`: open every backend, check agreement, measure, report.
//!
//! The order of work is fixed and deliberate:
//! 1. make sure the fixtures exist (the same files for every backend);
//! 2. open every backend with the matched worker count and wait until it is ready
//!    (the time this takes is its cold start); a backend that cannot run here is
//!    listed with the reason, never replaced by another;
//! 3. run the same fixed inputs through every backend and compare with the
//!    reference; a backend outside tolerance is excluded from that model's timing;
//! 4. for each model, batch size and load level ([`plan`]): prepare the request once
//!    per backend (outside the clock), warm every backend up (never counted), then
//!    measure in rounds, each one window of every backend in a freshly shuffled seeded
//!    order, so a shared machine's drift hits every backend alike, until each ratio's
//!    interval is within `--target-precision` or the point's share of `--time-budget` is
//!    spent ([`measure`]). A point is measured once per backend: one row, whichever
//!    tables show it.
//! 5. ratios against the baseline, each with a 95 % interval from the paired rounds
//!    ([`ratios`], [`crate::stats::paired`]).
//!
//! Partial results are results: a backend that fails (its open or readiness check
//! fails, its agreement request fails, or it stops answering) is recorded in
//! [`Results::failed`] and left out from then on while the others are measured
//! (`--fail-fast` stops the run instead). A stop signal during measuring ends the run
//! with what was measured, flagged `interrupted`.

mod budget;
mod by_precision;
mod check;
mod failures;
mod fixtures_check;
mod grid;
mod limits;
pub mod measure;
pub mod plan;
pub mod ratios;
mod summary;
mod warmup;
mod window;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use contract::{Backend, BackendError, OpenOptions};

use crate::agreement::Agreement;
use crate::error::{stopped, Stop};
use crate::load::deadline::Deadline;
use crate::progress::Progress;
use crate::registry;
use crate::resources;
use crate::results::{BackendInfo, Failed, Results, System, Unavailable, SCHEMA_VERSION};
use crate::HarnessError;

#[cfg(test)]
pub(crate) use grid::fail_count;
pub use grid::grid;
pub use plan::{Check, Measure, Model, Plan, Point};
pub use ratios::ratios;

/// A backend opened for the run.
pub struct Opened {
    /// Its name in the run: the backend type, or `NAME@LABEL`.
    pub name: String,
    /// The open backend.
    pub backend: Arc<dyn Backend>,
    /// What it said about itself, and its cold start.
    pub info: BackendInfo,
    /// Its server's Prometheus metrics endpoint, if it has one.
    pub metrics_url: Option<String>,
    /// The precision it runs the models at.
    pub precision: contract::Precision,
}

/// Runs the whole plan and returns its results (not yet written anywhere). A signal on
/// `stop` ends the run with what was measured, flagged `interrupted`: before measuring
/// starts, that is nothing (the settings, the machine and the backends that failed so
/// far, no rows); servers already started are stopped first.
pub async fn compare(plan: Plan, mut stop: Stop) -> Result<Results, HarnessError> {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let progress = Progress::new(plan.quiet);
    let mut failed = Vec::new();
    let ready = tokio::select! {
        r = open_and_check(&plan, &progress, &mut failed) => r?,
        s = stopped(&mut stop) => {
            // The opening future, and with it every backend opened so far, is dropped.
            progress.note(&format!("interrupted by {s} before measuring: nothing measured"));
            progress.finish();
            return Ok(Results {
                schema_version: SCHEMA_VERSION,
                servebench_version: env!("CARGO_PKG_VERSION").into(),
                started_at,
                finished_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
                system: System::probe(Default::default()),
                baseline: plan.baseline.clone().unwrap_or_default(),
                config: plan.record,
                backends: vec![],
                unavailable: vec![],
                agreement: vec![],
                results: vec![],
                ratios: vec![],
                precision_ratios: vec![],
                failed,
                interrupted: Some(s.to_string()),
            });
        }
    };
    let Ready {
        opened,
        unavailable,
        agreement,
        excluded,
        baseline,
    } = ready;

    let mut results = Vec::new();
    let interrupted = tokio::select! {
        r = measure::measure_all(&plan, &opened, &baseline, &excluded, &progress, &mut results, &mut failed) => {
            r?;
            None
        }
        s = stopped(&mut stop) => {
            progress.note(&format!("interrupted by {s}: keeping what was measured"));
            Some(s.to_string())
        }
    };
    let precision_ratios = by_precision::ratios(&results, &opened, &plan);
    let ratios = ratios(
        &results,
        &baseline,
        plan.seed,
        plan.measure.first_stage(),
        plan.measure.target_precision,
    );
    let backends: Vec<BackendInfo> = opened.iter().map(|o| o.info.clone()).collect();
    progress.finish();
    drop(opened); // Stops servers and executor threads before the report is written.

    Ok(Results {
        schema_version: SCHEMA_VERSION,
        servebench_version: env!("CARGO_PKG_VERSION").into(),
        started_at,
        finished_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        system: System::probe(Results::engines(&backends)),
        config: plan.record,
        backends,
        baseline,
        unavailable,
        agreement,
        results,
        ratios,
        precision_ratios,
        failed,
        interrupted,
    })
}

/// What is ready for measuring: the backends opened and checked.
struct Ready {
    opened: Vec<Opened>,
    unavailable: Vec<Unavailable>,
    agreement: Vec<Agreement>,
    excluded: BTreeSet<(String, String)>,
    baseline: String,
}

/// Records `backend` as failed at `at` (or, with `--fail-fast`, gives the error back).
fn fail_backend(
    plan: &Plan,
    progress: &Progress,
    failed: &mut Vec<Failed>,
    backend: &str,
    at: &str,
    error: HarnessError,
) -> Result<(), HarnessError> {
    if plan.fail_fast {
        return Err(error);
    }
    let reason = error.to_string();
    progress.note(&format!(
        "{backend} failed ({at}): {reason}; measuring the others"
    ));
    let error_kinds = match &error {
        HarnessError::Backend { source, .. } => vec![crate::results::ErrorCount {
            kind: source.kind().to_string(),
            count: 1,
            example: source.to_string(),
        }],
        _ => vec![],
    };
    failed.push(Failed {
        backend: backend.to_string(),
        at: at.to_string(),
        reason,
        error_kinds,
    });
    Ok(())
}

/// Steps 1 to 3: fixtures, open, agreement.
async fn open_and_check(
    plan: &Plan,
    progress: &Progress,
    failed: &mut Vec<Failed>,
) -> Result<Ready, HarnessError> {
    progress.note(&format!(
        "fixtures: {} (seed {})",
        plan.open.fixtures_dir.display(),
        plan.seed
    ));
    let opens = crate::stats::paired::between_opens_half_width().sinh();
    if plan.measure.target_precision <= opens {
        progress.note(&format!(
            "note: no ratio can reach --target-precision ±{:.1} %: two opens of one backend differ by up to ±{:.1} % (95 %), which every interval includes; each point spends its whole share of the budget",
            100.0 * plan.measure.target_precision,
            100.0 * opens
        ));
    }
    fixtures_check::prepare_fixtures(plan, progress)?;

    let opts = (&plan.open, &plan.backend_options);
    let (opened, unavailable, first_error) = open_all(plan, opts, progress, failed).await?;
    if opened.is_empty() {
        return Err(first_error.unwrap_or_else(|| {
            HarnessError::NothingToMeasure(
                "no backend can run on this machine; see the reasons above".into(),
            )
        }));
    }
    let baseline = plan
        .baseline
        .clone()
        .unwrap_or_else(|| opened[0].name.clone());

    // A run of user models without --reference checks against the first backend that
    // could open them (candle may lack one of their operators).
    let mut check = plan.check.clone();
    if !plan.open.model_files.is_empty()
        && !check.reference_explicit
        && !opened.iter().any(|o| o.name == check.reference)
    {
        check.reference = opened[0].name.clone();
    }
    // The reference may not be among the backends compared; open it just for the check.
    let reference = match opened.iter().find(|o| o.name == check.reference) {
        Some(o) => o.backend.clone(),
        None => {
            open_one(&check.reference, opts, plan.request_timeout, progress)
                .await?
                .backend
        }
    };
    let (agreement, broken, firsts) =
        check::check_agreement(plan, &check, &reference, &opened, progress).await?;
    let mut opened = opened;
    for o in &mut opened {
        o.info.first_request_ms = firsts.iter().find(|(n, _)| *n == o.name).map(|f| f.1);
    }
    let excluded: BTreeSet<(String, String)> = agreement
        .iter()
        .filter(|a| !a.passed)
        .map(|a| (a.model.clone(), a.backend.clone()))
        .collect();
    drop(reference);
    let mut kept = Vec::new();
    for o in opened {
        match broken.iter().position(|(name, _, _)| *name == o.name) {
            // Dropping the backend stops its server.
            Some(i) => {
                let (name, at, e) = &broken[i];
                let e = HarnessError::Backend {
                    backend: name.clone(),
                    source: e.clone(),
                };
                fail_backend(plan, progress, failed, name, at, e)?;
            }
            None => kept.push(o),
        }
    }
    if kept.is_empty() {
        return Err(HarnessError::NothingToMeasure(
            "every backend failed before measuring; see the reasons above".into(),
        ));
    }
    Ok(Ready {
        opened: kept,
        unavailable,
        agreement,
        excluded,
        baseline,
    })
}

/// The options every backend reads, and each backend's own.
type Options<'a> = (&'a OpenOptions, &'a registry::LabelledOptions);

/// Opens every backend: the opened ones, those unavailable here (skipped), and the
/// first error of those that failed (recorded in `failed`).
async fn open_all(
    plan: &Plan,
    opts: Options<'_>,
    progress: &Progress,
    failed: &mut Vec<Failed>,
) -> Result<(Vec<Opened>, Vec<Unavailable>, Option<HarnessError>), HarnessError> {
    let mut opened = Vec::new();
    let mut unavailable = Vec::new();
    let mut first_error = None;
    let instances = plan
        .backends
        .iter()
        .flat_map(|name| plan.precisions.iter().map(move |&p| (name, p)));
    for (name, precision) in instances {
        let open = OpenOptions {
            precision,
            ..opts.0.clone()
        };
        let instance = crate::precision::instance(name, precision);
        match open_one(&instance, (&open, opts.1), plan.request_timeout, progress).await {
            Ok(mut o) => {
                o.precision = precision;
                o.info.precision = precision.to_string();
                opened.push(o)
            }
            Err(HarnessError::Backend {
                backend,
                source: source @ BackendError::Unavailable { .. },
            }) if !plan.backends_explicit
                || !plan.open.model_files.is_empty()
                || precision != contract::Precision::Fp32 =>
            {
                // A backend that cannot run a user's model, or a precision, is listed,
                // never fatal.
                progress.note(&format!("skipping {backend}: {source}"));
                unavailable.push(Unavailable {
                    backend,
                    reason: source.to_string(),
                });
            }
            // A backend the user named that cannot run here is a setup error.
            Err(
                e @ HarnessError::Backend {
                    source: BackendError::Unavailable { .. },
                    ..
                },
            ) => return Err(e),
            Err(e @ HarnessError::Backend { .. }) => {
                let copy = HarnessError::Config(e.to_string());
                fail_backend(plan, progress, failed, &instance, "open", e)?;
                first_error.get_or_insert(copy);
            }
            Err(e) => return Err(e),
        }
    }
    Ok((opened, unavailable, first_error))
}

async fn open_one(
    name: &str,
    (common, options): Options<'_>,
    request_timeout: std::time::Duration,
    progress: &Progress,
) -> Result<Opened, HarnessError> {
    // `candle@a` and `candle@b` are two instances of the backend type `candle`.
    registry::find(registry::backend_kind(name)).ok_or_else(|| {
        HarnessError::Config(format!(
            "unknown backend {name:?}; known backends: {}",
            registry::names().join(", ")
        ))
    })?;
    let fail = |source| HarnessError::Backend {
        backend: name.to_string(),
        source,
    };
    progress.note(&format!("opening {name}"));
    let rss_before = resources::procfs::own_rss();
    let t0 = Instant::now();
    let (common, options, owned_name) =
        (common.clone(), options.get(name).clone(), name.to_string());
    // Opening loads models (and may start a server): keep it off the async workers.
    let backend =
        tokio::task::spawn_blocking(move || registry::open(&owned_name, &common, &options))
            .await
            .map_err(|e| fail(BackendError::Engine(format!("opening panicked: {e}"))))?
            .map_err(fail)?;
    let backend = Deadline::wrap(backend, request_timeout);
    progress.note(&format!("waiting for {name} to be ready"));
    backend.health().await.map_err(fail)?;
    let cold_start_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let mut opened = Opened::new(name, backend, cold_start_ms);
    let loaded = resources::loaded_bytes(&opened.backend.served_by(), rss_before);
    opened.info.loaded_memory_mb = loaded.map(|b| b as f64 / (1024.0 * 1024.0));
    Ok(opened)
}

impl Opened {
    /// `backend`, open and ready under `name`, as it describes itself.
    pub fn new(name: &str, backend: Arc<dyn Backend>, cold_start_ms: f64) -> Opened {
        let d = backend.describe();
        Opened {
            metrics_url: backend.metrics_url(),
            precision: contract::Precision::Fp32,
            name: name.to_string(),
            info: BackendInfo {
                name: name.to_string(),
                engine: d.engine,
                protocol: d.protocol.to_string(),
                device: d.device,
                workers: d.workers,
                intra_threads: d.intra_threads,
                test_peer: d.served_by_test_peer,
                details: d.details,
                cold_start_ms,
                first_request_ms: None,
                loaded_memory_mb: None,
                precision: "fp32".into(),
            },
            backend,
        }
    }
}
