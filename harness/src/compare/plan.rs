//! What a run measures: every (model, batch size, load level), once each.

use fixtures::ModelId;

use crate::config::{BatchClass, RunConfig};
use crate::load::Load;

/// One point: a model at a batch size under one load, with the tables it appears in.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Model.
    pub model: ModelId,
    /// Samples per request.
    pub batch: usize,
    /// Load level.
    pub load: Load,
    /// Batch classes (tables) the point is reported in.
    pub classes: Vec<BatchClass>,
}

/// Every point to measure, in order; a batch size in both classes is measured once.
/// `harness run` reports its single batch size in the small-batch table only.
pub fn plan(cfg: &RunConfig) -> Vec<Point> {
    let mut points: Vec<Point> = Vec::new();
    let classes: &[BatchClass] = if cfg.single {
        &[BatchClass::Small]
    } else {
        &[BatchClass::Small, BatchClass::Large]
    };
    for &model in &cfg.models {
        for &class in classes {
            for &batch in cfg.batches(model, class) {
                for &load in &cfg.loads {
                    match points
                        .iter_mut()
                        .find(|p| p.model == model && p.batch == batch && p.load == load)
                    {
                        Some(p) => p.classes.push(class),
                        None => points.push(Point {
                            model,
                            batch,
                            load,
                            classes: vec![class],
                        }),
                    }
                }
            }
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_batch_sizes_are_planned_once_per_load() {
        let cfg = crate::config::Settings {
            models: Some(vec!["text-cnn".into()]),
            small_batches: Some(vec![1, 2]),
            large_batches: Some(vec![1, 100]),
            concurrency: Some(vec![1, 2]),
            ..Default::default()
        }
        .validate(&["candle"])
        .unwrap();
        let p = plan(&cfg);
        assert_eq!(p.len(), 6);
        assert_eq!(p[0].classes, vec![BatchClass::Small, BatchClass::Large]);
        assert_eq!(p[0].load, Load::Closed { concurrency: 1 });
        assert_eq!(p[1].load, Load::Closed { concurrency: 2 });
    }
}
