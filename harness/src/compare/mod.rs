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
//!    interval is within `--precision` or the point's share of `--time-budget` is
//!    spent ([`measure`]). A point is measured once per backend: one row, whichever
//!    tables show it.
//! 5. ratios against the baseline, each with a 95 % interval from the paired rounds
//!    ([`ratios`], [`crate::stats::paired`]).

mod fixtures_check;
pub mod measure;
pub mod plan;
pub mod ratios;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use contract::{Backend, BackendError, OpenOptions};
use fixtures::ModelId;

use crate::agreement::{self, Agreement};
use crate::progress::Progress;
use crate::registry;
use crate::resources;
use crate::results::{BackendInfo, Results, System, Unavailable, SCHEMA_VERSION};
use crate::HarnessError;

pub use plan::{Check, Measure, Plan, Point};
pub use ratios::ratios;

/// Samples per backend in the agreement check.
const AGREEMENT_BATCH: usize = 4;

/// A backend opened for the run.
pub struct Opened {
    /// Its name in the run: the backend type, or `NAME@LABEL`.
    pub name: String,
    /// The open backend.
    pub backend: Arc<dyn Backend>,
    /// What it said about itself, and its cold start.
    pub info: BackendInfo,
}

/// Runs the whole plan and returns its results (not yet written anywhere).
pub async fn compare(plan: Plan) -> Result<Results, HarnessError> {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let progress = Progress::new(plan.quiet);

    progress.note(&format!(
        "fixtures: {} (seed {})",
        plan.open.fixtures_dir.display(),
        plan.seed
    ));
    fixtures_check::prepare_fixtures(&plan, &progress)?;

    let opts = (&plan.open, &plan.backend_options);
    let (opened, unavailable) = open_all(&plan, opts, &progress).await?;
    if opened.is_empty() {
        return Err(HarnessError::NothingToMeasure(
            "no backend can run on this machine; see the reasons above".into(),
        ));
    }
    let baseline = plan
        .baseline
        .clone()
        .unwrap_or_else(|| opened[0].name.clone());

    // The reference may not be among the backends compared; open it just for the check.
    let reference = match opened.iter().find(|o| o.name == plan.check.reference) {
        Some(o) => o.backend.clone(),
        None => {
            open_one(&plan.check.reference, opts, &progress)
                .await?
                .backend
        }
    };
    let agreement = check_agreement(&plan, &reference, &opened, &progress).await?;
    let excluded: BTreeSet<(String, String)> = agreement
        .iter()
        .filter(|a| !a.passed)
        .map(|a| (a.model.clone(), a.backend.clone()))
        .collect();
    drop(reference);

    let results = measure::measure_all(&plan, &opened, &baseline, &excluded, &progress).await?;
    let ratios = ratios(&results, &baseline, plan.seed, plan.measure.precision);
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
    })
}

/// The options every backend reads, and each backend's own.
type Options<'a> = (&'a OpenOptions, &'a registry::LabelledOptions);

async fn open_all(
    plan: &Plan,
    opts: Options<'_>,
    progress: &Progress,
) -> Result<(Vec<Opened>, Vec<Unavailable>), HarnessError> {
    let mut opened = Vec::new();
    let mut unavailable = Vec::new();
    for name in &plan.backends {
        match open_one(name, opts, progress).await {
            Ok(o) => opened.push(o),
            Err(HarnessError::Backend {
                backend,
                source: source @ BackendError::Unavailable { .. },
            }) if !plan.backends_explicit => {
                progress.note(&format!("skipping {backend}: {source}"));
                unavailable.push(Unavailable {
                    backend,
                    reason: source.to_string(),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok((opened, unavailable))
}

async fn open_one(
    name: &str,
    (common, options): Options<'_>,
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
                loaded_memory_mb: None,
            },
            backend,
        }
    }
}

async fn check_agreement(
    plan: &Plan,
    reference: &Arc<dyn Backend>,
    opened: &[Opened],
    progress: &Progress,
) -> Result<Vec<Agreement>, HarnessError> {
    let mut rows = Vec::new();
    let cfg = &plan.check;
    for &model in &plan.models {
        // A seed of its own, so agreement inputs are not the timed inputs.
        let input = fixtures::inputs::batch(model, AGREEMENT_BATCH, plan.seed.wrapping_add(1));
        let want = logits(reference, &cfg.reference, model, input.clone()).await?;
        for o in opened.iter().filter(|o| o.name != cfg.reference) {
            progress.note(&format!("agreement: {} on {model}", o.name));
            let got = logits(&o.backend, &o.name, model, input.clone()).await?;
            let (max_abs_diff, max_rel_diff, top1_agreement, passed) =
                agreement::compare(&got, &want, model.classes(), cfg.atol, cfg.rtol).map_err(
                    |e| HarnessError::Disagreement(format!("{} on {model}: {e}", o.name)),
                )?;
            let row = Agreement {
                model: model.name().into(),
                backend: o.name.clone(),
                reference: cfg.reference.clone(),
                max_abs_diff,
                max_rel_diff,
                top1_agreement,
                passed,
            };
            if !passed {
                let msg = format!(
                    "{} disagrees with {} on {model}: max abs diff {:.3e} exceeds the tolerance (atol {} + rtol {} x largest output)",
                    o.name, cfg.reference, max_abs_diff, cfg.atol, cfg.rtol
                );
                if cfg.strict {
                    return Err(HarnessError::Disagreement(msg));
                }
                progress.note(&format!("{msg}; excluded from {model} timings"));
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

async fn logits(
    backend: &Arc<dyn Backend>,
    name: &str,
    model: ModelId,
    input: contract::Tensor,
) -> Result<Vec<f32>, HarnessError> {
    let fail = |source| HarnessError::Backend {
        backend: name.to_string(),
        source,
    };
    let request = backend.prepare(model.name(), vec![input]).map_err(fail)?;
    let outputs = backend.infer(&request).await.map_err(fail)?;
    let first = outputs.first().ok_or_else(|| {
        fail(BackendError::Protocol(format!(
            "{model} returned no output tensor"
        )))
    })?;
    first.to_f32().map_err(fail)
}
