//! The plan of a run, built once from its settings, and the record of those settings
//! that the results file keeps.

use crate::compare::{Check, Measure, Plan, Point};
use crate::config::RunConfig;
use crate::results::{BatchClass, RunRecord};

impl RunConfig {
    /// Every point to measure, in order: each model's small then large batch sizes,
    /// each at every load; a batch size in both lists is one point.
    pub fn points(&self) -> Vec<Point> {
        let mut points: Vec<Point> = Vec::new();
        for &model in &self.models {
            for class in [BatchClass::Small, BatchClass::Large] {
                let batches = match (class, model) {
                    (BatchClass::Small, _) => &self.small_batches,
                    (BatchClass::Large, fixtures::ModelId::TextCnn) => &self.large_batches,
                    (BatchClass::Large, _) => &self.large_batches_resnet,
                };
                for &batch in batches {
                    for &load in &self.loads {
                        let point = Point { model, batch, load };
                        if !points.contains(&point) {
                            points.push(point);
                        }
                    }
                }
            }
        }
        points
    }

    /// The plan of the run.
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
                server_urls: self.server_urls(),
            },
            seed: self.seed,
            check: Check {
                reference: self.reference.clone(),
                atol: self.atol,
                rtol: self.rtol,
                strict: self.strict,
            },
            points: self.points(),
            measure: Measure {
                trials: self.trials,
                window: self.window,
                max_windows: self.max_windows,
                budget: self.point_budget,
                stability: self.stability,
                percentile: self.percentile,
                warmup: self.warmup,
                max_in_flight: self.max_in_flight,
            },
            quiet: self.quiet,
            record: self.record(),
        }
    }

    /// The settings as the results file records them.
    fn record(&self) -> RunRecord {
        RunRecord {
            backends: self.backends.clone(),
            backends_explicit: self.backends_explicit,
            baseline: self.baseline.clone(),
            reference: self.reference.clone(),
            models: self.models.iter().map(|m| m.name().to_string()).collect(),
            workers: self.workers,
            intra_threads: self.intra_threads,
            device: self.device.to_string(),
            small_batches: self.small_batches.clone(),
            large_batches: self.large_batches.clone(),
            large_batches_resnet: self.large_batches_resnet.clone(),
            window: self.window,
            warmup: self.warmup,
            seed: self.seed,
            atol: self.atol,
            rtol: self.rtol,
            strict: self.strict,
            quick: self.quick,
            fixtures_dir: self.fixtures_dir.clone(),
            results_dir: self.results_dir.clone(),
            json: self.json.clone(),
            flask_url: self.flask_url.clone(),
            triton_url: self.triton_url.clone(),
            triton_grpc_url: self.triton_grpc_url.clone(),
            triton_http_body: self.triton_http_body.clone(),
            dynamic_batching: self.dynamic_batching,
            tfserving_url: self.tfserving_url.clone(),
            tfserving_grpc_url: self.tfserving_grpc_url.clone(),
            tfserving_format: self.tfserving_format.clone(),
            stack: self.stack.clone(),
            loads: self.loads.clone(),
            max_in_flight: self.max_in_flight,
            trials: self.trials,
            max_windows: self.max_windows,
            point_budget_s: self.point_budget.as_secs_f64(),
            stability: self.stability,
            percentile: self.percentile,
            format: self.format,
        }
    }
}
