//! `harness compare`: open every backend, check agreement, measure, report.
//!
//! The order of work is fixed and deliberate:
//! 1. make sure the fixtures exist (the same files for every backend);
//! 2. open every backend with the matched worker count and wait until it is ready
//!    (the time this takes is its cold start); a backend that cannot run here is
//!    listed with the reason, never replaced by another;
//! 3. run the same fixed inputs through every backend and compare with the
//!    reference; a backend outside tolerance is excluded from that model's timing;
//! 4. for each model, batch size and backend: prepare the request (outside the
//!    clock), warm up (never counted), then measure one closed-loop window.
//!    A batch size in both classes is measured once and reported in both tables.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use contract::{Backend, BackendError, OpenOptions, Prepared, ServerStats};
use fixtures::ModelId;

use crate::agreement::{self, Agreement};
use crate::config::{BatchClass, RunConfig, Window};
use crate::load;
use crate::progress::Progress;
use crate::registry;
use crate::report::{
    BackendInfo, Breakdown, ErrorCount, PointResult, Ratio, Results, System, Unavailable,
    SCHEMA_VERSION,
};
use crate::stats::{self, Latency};
use crate::HarnessError;

/// Samples per backend in the agreement check.
const AGREEMENT_BATCH: usize = 4;

/// A backend opened for the run.
struct Opened {
    name: String,
    backend: Arc<dyn Backend>,
    info: BackendInfo,
}

/// Runs the whole comparison and returns its results (not yet written anywhere).
pub async fn compare(cfg: RunConfig) -> Result<Results, HarnessError> {
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let progress = Progress::new(cfg.quiet);

    progress.note(&format!(
        "fixtures: {} (seed {})",
        cfg.fixtures_dir.display(),
        cfg.seed
    ));
    prepare_fixtures(&cfg, &progress)?;

    let opts = OpenOptions {
        models: cfg.models.iter().map(|m| m.name().to_string()).collect(),
        fixtures_dir: cfg.fixtures_dir.clone(),
        workers: cfg.workers,
        intra_threads: cfg.intra_threads,
        device: cfg.device,
        server_urls: cfg.server_urls(),
    };
    let (opened, unavailable) = open_all(&cfg, &opts, &progress).await?;
    if opened.is_empty() {
        return Err(HarnessError::NothingToMeasure(
            "no backend can run on this machine; see the reasons above".into(),
        ));
    }
    let baseline = cfg
        .baseline
        .clone()
        .unwrap_or_else(|| opened[0].name.clone());

    // The reference may not be among the backends compared; open it just for the check.
    let reference = match opened.iter().find(|o| o.name == cfg.reference) {
        Some(o) => o.backend.clone(),
        None => open_one(&cfg.reference, &opts, &progress).await?.backend,
    };
    let agreement = check_agreement(&cfg, &reference, &opened, &progress).await?;
    let excluded: BTreeSet<(String, String)> = agreement
        .iter()
        .filter(|a| !a.passed)
        .map(|a| (a.model.clone(), a.backend.clone()))
        .collect();
    drop(reference);

    let results = measure_all(&cfg, &opened, &excluded, &progress).await?;
    let ratios = ratios(&results, &baseline);
    let backends: Vec<BackendInfo> = opened.iter().map(|o| o.info.clone()).collect();
    progress.finish();
    drop(opened); // Stops servers and executor threads before the report is written.

    Ok(Results {
        schema_version: SCHEMA_VERSION,
        servebench_version: env!("CARGO_PKG_VERSION").into(),
        started_at,
        finished_at: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        system: System::probe(Results::engines(&backends)),
        config: cfg,
        backends,
        baseline,
        unavailable,
        agreement,
        results,
        ratios,
    })
}

/// Generates the fixtures of every model whose directory is absent (a fresh clone), and
/// otherwise only checks them: the harness never overwrites existing files. A file that
/// is missing, or whose size differs from the manifest, is an error naming the file
/// and the command that rebuilds it; deeper damage is reported by the backend that
/// fails to load it.
fn prepare_fixtures(cfg: &RunConfig, progress: &Progress) -> Result<(), HarnessError> {
    let dir = &cfg.fixtures_dir;
    let fixture_err = |e: fixtures::FixtureError| HarnessError::Fixtures(e.to_string());
    if let Ok(manifest) = fixtures::Manifest::read(dir) {
        if manifest.seed != cfg.seed {
            return Err(HarnessError::Fixtures(format!(
                "the fixtures in {} were generated with seed {}, not {}; run `cargo run --release -p fixtures -- generate --force --seed {} --dir {}`",
                dir.display(),
                manifest.seed,
                cfg.seed,
                cfg.seed,
                dir.display()
            )));
        }
    }
    let absent: Vec<ModelId> = cfg
        .models
        .iter()
        .copied()
        .filter(|&m| !fixtures::ModelFiles::new(dir, m).dir.exists())
        .collect();
    if !absent.is_empty() {
        progress.note(&format!(
            "generating fixtures for {} in {}",
            absent
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", "),
            dir.display()
        ));
        fixtures::ensure(dir, &absent, cfg.seed).map_err(fixture_err)?;
    }
    let manifest = fixtures::Manifest::read(dir).ok();
    for &model in &cfg.models {
        let files = fixtures::ModelFiles::new(dir, model);
        let recorded = manifest.as_ref().and_then(|m| m.model(model));
        for (path, entry) in [
            (&files.safetensors, recorded.map(|e| &e.safetensors)),
            (&files.onnx, recorded.map(|e| &e.onnx)),
        ] {
            let Ok(meta) = std::fs::metadata(path) else {
                return Err(fixture_err(fixtures::FixtureError::Missing {
                    path: path.clone(),
                }));
            };
            if let Some(entry) = entry.filter(|e| e.size != meta.len()) {
                return Err(fixture_err(fixtures::FixtureError::SizeMismatch {
                    path: path.clone(),
                    expected: entry.size,
                    actual: meta.len(),
                }));
            }
        }
    }
    Ok(())
}

async fn open_all(
    cfg: &RunConfig,
    opts: &OpenOptions,
    progress: &Progress,
) -> Result<(Vec<Opened>, Vec<Unavailable>), HarnessError> {
    let mut opened = Vec::new();
    let mut unavailable = Vec::new();
    for name in &cfg.backends {
        match open_one(name, opts, progress).await {
            Ok(o) => opened.push(o),
            Err(HarnessError::Backend {
                backend,
                source: source @ BackendError::Unavailable { .. },
            }) if !cfg.backends_explicit => {
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
    opts: &OpenOptions,
    progress: &Progress,
) -> Result<Opened, HarnessError> {
    let entry = registry::find(name).ok_or_else(|| {
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
    let t0 = Instant::now();
    let open = entry.open;
    let opts_owned = opts.clone();
    // Opening loads models (and may start a server): keep it off the async workers.
    let backend = tokio::task::spawn_blocking(move || open(&opts_owned))
        .await
        .map_err(|e| fail(BackendError::Engine(format!("opening panicked: {e}"))))?
        .map_err(fail)?;
    backend.health().await.map_err(fail)?;
    let cold_start_ms = t0.elapsed().as_secs_f64() * 1000.0;
    let description = backend.describe();
    Ok(Opened {
        name: name.to_string(),
        info: BackendInfo {
            description,
            cold_start_ms,
        },
        backend,
    })
}

async fn check_agreement(
    cfg: &RunConfig,
    reference: &Arc<dyn Backend>,
    opened: &[Opened],
    progress: &Progress,
) -> Result<Vec<Agreement>, HarnessError> {
    let mut rows = Vec::new();
    for &model in &cfg.models {
        // A seed of its own, so agreement inputs are not the timed inputs.
        let input = fixtures::inputs::batch(model, AGREEMENT_BATCH, cfg.seed.wrapping_add(1));
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

/// Every (model, batch size) to measure, with the classes it is reported in.
fn plan(cfg: &RunConfig) -> Vec<(ModelId, usize, Vec<BatchClass>)> {
    let mut points: Vec<(ModelId, usize, Vec<BatchClass>)> = Vec::new();
    for &model in &cfg.models {
        for class in [BatchClass::Small, BatchClass::Large] {
            for &batch in cfg.batches(model, class) {
                match points
                    .iter_mut()
                    .find(|(m, b, _)| *m == model && *b == batch)
                {
                    Some((_, _, classes)) => classes.push(class),
                    None => points.push((model, batch, vec![class])),
                }
            }
        }
    }
    points
}

async fn measure_all(
    cfg: &RunConfig,
    opened: &[Opened],
    excluded: &BTreeSet<(String, String)>,
    progress: &Progress,
) -> Result<Vec<PointResult>, HarnessError> {
    let points = plan(cfg);
    progress.start(points.len() as u64 * opened.len() as u64);
    let mut rows = Vec::new();
    for (model, batch, classes) in points {
        let input = fixtures::inputs::batch(model, batch, cfg.seed);
        for o in opened {
            progress.step(&format!("{model} batch {batch} on {}", o.name));
            if excluded.contains(&(model.name().to_string(), o.name.clone())) {
                continue;
            }
            let point = measure_point(cfg, o, model, batch, input.clone()).await?;
            for &class in &classes {
                rows.push(PointResult {
                    batch_class: class,
                    ..point.clone()
                });
            }
        }
    }
    Ok(rows)
}

async fn measure_point(
    cfg: &RunConfig,
    o: &Opened,
    model: ModelId,
    batch: usize,
    input: contract::Tensor,
) -> Result<PointResult, HarnessError> {
    let fail = |source| HarnessError::Backend {
        backend: o.name.clone(),
        source,
    };
    let request: Arc<Prepared> =
        Arc::new(o.backend.prepare(model.name(), vec![input]).map_err(fail)?);
    let warm = load::closed_loop(
        o.backend.clone(),
        request.clone(),
        cfg.concurrency,
        Window::Requests(cfg.warmup),
    )
    .await;
    if warm.ok() == 0 && warm.failed() > 0 {
        let (kind, msg) = warm
            .error_messages
            .iter()
            .next()
            .expect("an error was counted");
        return Err(HarnessError::NothingToMeasure(format!(
            "{} failed every warm-up request on {model} batch {batch} ({kind}): {msg}",
            o.name
        )));
    }
    let before = server_stats(o, model).await;
    let m = load::closed_loop(o.backend.clone(), request, cfg.concurrency, cfg.window).await;
    let after = server_stats(o, model).await;
    let seconds = m.wall.as_secs_f64();
    let (throughput_rps, samples_per_s) = stats::throughput(m.ok(), batch, seconds);
    Ok(PointResult {
        model: model.name().into(),
        backend: o.name.clone(),
        batch_class: BatchClass::Small,
        batch_size: batch,
        concurrency: cfg.concurrency,
        workers: o.info.description.workers,
        requests: m.ok(),
        errors: m.failed(),
        error_kinds: m
            .errors
            .iter()
            .map(|(kind, &count)| ErrorCount {
                kind: kind.clone(),
                count,
                example: m.error_messages.get(kind).cloned().unwrap_or_default(),
            })
            .collect(),
        duration_s: seconds,
        throughput_rps,
        samples_per_s,
        latency_ms: Latency::from_histogram(&m.histogram),
        server: breakdown(before, after),
    })
}

async fn server_stats(o: &Opened, model: ModelId) -> Option<ServerStats> {
    o.backend.server_stats(model.name()).await.ok().flatten()
}

/// Per-request server-side averages over a window, from counters read before and after.
fn breakdown(before: Option<ServerStats>, after: Option<ServerStats>) -> Option<Breakdown> {
    let (b, a) = (before?, after?);
    let n = a.requests.checked_sub(b.requests).filter(|&n| n > 0)? as f64;
    let per = |x: u64, y: u64| y.saturating_sub(x) as f64 / n / 1e6;
    Some(Breakdown {
        queue_ms: per(b.queue_ns, a.queue_ns),
        compute_input_ms: per(b.compute_input_ns, a.compute_input_ns),
        compute_infer_ms: per(b.compute_infer_ns, a.compute_infer_ns),
        compute_output_ms: per(b.compute_output_ns, a.compute_output_ns),
    })
}

/// Every backend's p50 and mean against the baseline's, point by point.
pub fn ratios(results: &[PointResult], baseline: &str) -> Vec<Ratio> {
    let base: BTreeMap<(&str, BatchClass, usize), Latency> = results
        .iter()
        .filter(|r| r.backend == baseline)
        .filter_map(|r| {
            Some((
                (r.model.as_str(), r.batch_class, r.batch_size),
                r.latency_ms?,
            ))
        })
        .collect();
    results
        .iter()
        .filter(|r| r.backend != baseline)
        .filter_map(|r| {
            let b = base.get(&(r.model.as_str(), r.batch_class, r.batch_size))?;
            let l = r.latency_ms?;
            Some(Ratio {
                model: r.model.clone(),
                batch_class: r.batch_class,
                batch_size: r.batch_size,
                backend: r.backend.clone(),
                baseline: baseline.to_string(),
                p50_ratio: stats::ratio(l.p50, b.p50)?,
                mean_ratio: stats::ratio(l.mean, b.mean)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(backend: &str, batch: usize, p50: f64, mean: f64) -> PointResult {
        PointResult {
            model: "text-cnn".into(),
            backend: backend.into(),
            batch_class: BatchClass::Small,
            batch_size: batch,
            concurrency: 1,
            workers: 1,
            requests: 10,
            errors: 0,
            error_kinds: vec![],
            duration_s: 1.0,
            throughput_rps: 10.0,
            samples_per_s: 10.0,
            latency_ms: Some(Latency {
                mean,
                p50,
                p90: p50,
                p95: p50,
                p99: p50,
                max: p50,
            }),
            server: None,
        }
    }

    #[test]
    fn ratios_pair_each_point_with_the_baseline() {
        let rows = vec![
            point("a", 1, 2.0, 4.0),
            point("b", 1, 3.0, 2.0),
            point("a", 8, 10.0, 10.0),
            point("b", 8, 5.0, 20.0),
            point("b", 16, 5.0, 5.0), // no baseline at 16: no ratio
        ];
        let r = ratios(&rows, "a");
        assert_eq!(r.len(), 2);
        assert_eq!(
            (r[0].batch_size, r[0].p50_ratio, r[0].mean_ratio),
            (1, 1.5, 0.5)
        );
        assert_eq!(
            (r[1].batch_size, r[1].p50_ratio, r[1].mean_ratio),
            (8, 0.5, 2.0)
        );
        assert!(r.iter().all(|x| x.backend == "b" && x.baseline == "a"));
    }

    #[test]
    fn breakdown_divides_by_requests_in_the_window() {
        let b = ServerStats {
            requests: 10,
            queue_ns: 1_000_000,
            ..Default::default()
        };
        let a = ServerStats {
            requests: 20,
            queue_ns: 21_000_000,
            compute_infer_ns: 50_000_000,
            ..Default::default()
        };
        let d = breakdown(Some(b), Some(a)).unwrap();
        assert_eq!((d.queue_ms, d.compute_infer_ms), (2.0, 5.0));
        assert!(breakdown(Some(a), Some(a)).is_none());
        assert!(breakdown(None, Some(a)).is_none());
    }

    #[test]
    fn shared_batch_sizes_are_planned_once() {
        let cfg = crate::config::Settings {
            models: Some(vec!["text-cnn".into()]),
            small_batches: Some(vec![1, 2]),
            large_batches: Some(vec![1, 100]),
            ..Default::default()
        }
        .validate(&["candle"])
        .unwrap();
        let p = plan(&cfg);
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].2, vec![BatchClass::Small, BatchClass::Large]);
    }
}
