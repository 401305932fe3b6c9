//! Batch-1 latency of each fixture model on one executor, for 1 and 2 intra-op threads.
//!
//! `cargo run --release -p adapter-candle --example latency [-- FIXTURES_DIR [RUNS]]`
//! (default: the repository's fixtures directory, generated if needed; 20 runs).

use std::time::{Duration, Instant};

use contract::Engine;
use fixtures::ModelId;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().map_or_else(fixtures::default_dir, Into::into);
    let runs: usize = args.next().map_or(Ok(20), |r| r.parse())?;
    fixtures::ensure(&dir, &ModelId::ALL, fixtures::DEFAULT_SEED)?;
    println!(
        "candle {} on {}",
        adapter_candle::CANDLE_VERSION,
        dir.display()
    );
    for threads in [1, 2] {
        let mut engine = adapter_candle::CandleEngine::new(
            0,
            &dir,
            &ModelId::ALL,
            (candle_core::Device::Cpu, candle_core::DType::F32),
            threads,
        )?;
        for model in ModelId::ALL {
            let input = [fixtures::inputs::batch(model, 1, 7)];
            for _ in 0..3 {
                engine.infer(model.name(), &input)?;
            }
            let mut times: Vec<Duration> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    engine.infer(model.name(), &input).map(|_| start.elapsed())
                })
                .collect::<Result<_, _>>()?;
            times.sort();
            let mean = times.iter().sum::<Duration>() / runs as u32;
            println!(
                "{model:<9} batch 1, intra_threads {threads}: p50 {:>8.2} ms  mean {:>8.2} ms  min {:>8.2} ms",
                ms(times[runs / 2]),
                ms(mean),
                ms(times[0])
            );
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
