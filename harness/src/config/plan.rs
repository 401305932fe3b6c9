//! The plan of a run, built once from its settings.

use crate::compare::{Check, Measure, Plan, Point};
use crate::config::RunConfig;
use crate::results::BatchClass;

impl RunConfig {
    /// Every point to measure, in order: each model's small then large batch sizes,
    /// each at every load; a batch size in both lists is one point.
    pub fn points(&self) -> Vec<Point> {
        let mut points: Vec<Point> = Vec::new();
        for model in &self.models {
            for class in [BatchClass::Small, BatchClass::Large] {
                for &batch in self.record.batches(model.name(), class) {
                    for &load in &self.loads {
                        let point = Point {
                            model: model.clone(),
                            batch,
                            load,
                        };
                        if !points.contains(&point) {
                            points.push(point);
                        }
                    }
                }
            }
        }
        points
    }

    /// The settings of one worker count of the run: its intra-op threads and load
    /// where they follow the count, and its even share of the time budget.
    pub fn at_workers(&self, workers: usize) -> RunConfig {
        let counts = self.record.grid().len().max(1) as f64;
        let mut c = self.clone();
        let r = &mut c.record;
        r.workers = workers;
        r.worker_counts = vec![workers];
        r.intra_threads = self
            .intra_threads_given
            .unwrap_or_else(|| contract::default_intra_threads(workers));
        if self.loads_follow_workers {
            r.loads = vec![crate::load::Load::Closed {
                concurrency: workers,
            }];
        }
        r.time_budget_s = self.record.time_budget_s / counts;
        c.split_budget();
        c
    }

    /// The plan of every worker count of the run, in order: one for a single count.
    pub fn plans(&self) -> Vec<Plan> {
        let grid = self.record.grid();
        if grid.len() == 1 {
            return vec![self.plan()];
        }
        grid.iter().map(|&n| self.at_workers(n).plan()).collect()
    }

    /// The plan of the run (of its first worker count, in a worker grid: see
    /// [`RunConfig::plans`]).
    pub fn plan(&self) -> Plan {
        Plan {
            backends: self.backends.clone(),
            backends_explicit: self.backends_explicit,
            baseline: self.baseline.clone(),
            models: self.models.clone(),
            open: contract::OpenOptions {
                models: self.models.iter().map(|m| m.name().to_string()).collect(),
                fixtures_dir: self.fixtures_dir.clone(),
                workers: self.workers,
                intra_threads: self.intra_threads,
                device: self.device,
                model_files: self
                    .models
                    .iter()
                    .filter_map(|m| match m {
                        crate::compare::Model::User(w) => {
                            Some((w.name().to_string(), w.model.path.clone()))
                        }
                        crate::compare::Model::Fixture(_) => None,
                    })
                    .collect(),
                torchscript_files: self
                    .torchscript_files
                    .iter()
                    .map(|(k, v)| (k.clone(), v.into()))
                    .collect(),
                precision: contract::Precision::Fp32,
            },
            precisions: self.precisions.clone(),
            backend_options: self.backend_options.clone(),
            seed: self.seed,
            check: Check {
                reference: self.reference.clone(),
                reference_explicit: self.reference_explicit,
                atol: self.atol,
                rtol: self.rtol,
                strict: self.strict,
            },
            points: self.points(),
            measure: Measure {
                trials: self.trials,
                window: self.window,
                max_windows: self.max_windows,
                target_precision: self.target_precision,
                time_budget: std::time::Duration::from_secs_f64(self.time_budget_s),
                backend_budget: std::time::Duration::from_secs_f64(self.backend_budget_s),
                stability: self.stability,
                percentile: self.percentile,
                warmup: self.warmup,
                max_in_flight: self.max_in_flight,
                request_timeout: std::time::Duration::from_secs_f64(self.request_timeout_s),
            },
            request_timeout: std::time::Duration::from_secs_f64(self.request_timeout_s),
            fail_fast: self.fail_fast,
            quiet: self.quiet,
            record: self.record.clone(),
        }
    }
}
