//! The intra-op thread limit is really in effect: per-thread CPU time from `/proc`
//! shows that only the executors' own pool threads compute, and with two intra-op
//! threads, both do.
//!
//! One test in its own process, so that no other test's threads are counted.

#![cfg(target_os = "linux")]

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use common::{infer, open};
use contract::Backend;
use fixtures::{inputs, ModelId};

/// CPU time (clock ticks, user + system) of every thread of this process, by thread id,
/// with the thread's name.
fn cpu_by_thread() -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    for entry in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let (Ok(stat), Ok(comm)) = (
            std::fs::read_to_string(entry.path().join("stat")),
            std::fs::read_to_string(entry.path().join("comm")),
        ) else {
            continue; // The thread ended meanwhile.
        };
        // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        out.insert(tid, (comm.trim().to_string(), ticks));
    }
    out
}

/// Runs `rounds` of `concurrent` simultaneous ResNet-18 and text-CNN requests and
/// returns the CPU ticks each thread spent meanwhile, by thread name (threads that
/// spent nothing are left out).
async fn busy_threads(
    backend: &Arc<dyn Backend>,
    concurrent: usize,
    rounds: usize,
) -> HashMap<String, u64> {
    let image = inputs::batch(ModelId::Resnet18, 1, 3);
    let ids = inputs::batch(ModelId::TextCnn, 8, 3);
    let before = cpu_by_thread();
    for _ in 0..rounds {
        let calls: Vec<_> = (0..concurrent)
            .map(|_| {
                let (b, image, ids) = (backend.clone(), image.clone(), ids.clone());
                tokio::spawn(async move {
                    infer(&*b, ModelId::Resnet18, image).await;
                    infer(&*b, ModelId::TextCnn, ids).await;
                })
            })
            .collect();
        for c in calls {
            c.await.unwrap();
        }
    }
    let mut spent = HashMap::new();
    for (tid, (name, ticks)) in cpu_by_thread() {
        let start = before.get(&tid).map_or(0, |(_, t)| *t);
        if ticks > start {
            *spent.entry(name).or_insert(0) += ticks - start;
        }
    }
    spent
}

/// Threads that did a real share (at least 5%) of the work.
fn workers(spent: &HashMap<String, u64>) -> Vec<String> {
    let total: u64 = spent.values().sum();
    let mut names: Vec<String> = spent
        .iter()
        .filter(|(_, &t)| t * 20 >= total)
        .map(|(n, _)| n.clone())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_executors_pool_threads_compute() {
    common::fixtures_dir();
    let models = ["resnet18", "text-cnn"];

    // One executor, one intra-op thread: one thread does everything.
    let backend = open(&models, 1, 1);
    assert_eq!(candle_core::utils::barrier_pool().n_workers(), 0);
    busy_threads(&backend, 1, 1).await; // warm-up
    let spent = busy_threads(&backend, 1, 8).await;
    assert_eq!(workers(&spent), ["candle-0-t0"], "{spent:?}");
    drop(backend);

    // One executor, two intra-op threads: both of its threads share the work.
    let backend = open(&models, 1, 2);
    busy_threads(&backend, 1, 1).await;
    let spent = busy_threads(&backend, 1, 8).await;
    assert_eq!(workers(&spent), ["candle-0-t0", "candle-0-t1"], "{spent:?}");
    drop(backend);

    // Two executors of one thread each, under concurrent load: one thread each.
    let backend = open(&models, 2, 1);
    busy_threads(&backend, 2, 1).await;
    let spent = busy_threads(&backend, 2, 6).await;
    assert_eq!(workers(&spent), ["candle-0-t0", "candle-1-t0"], "{spent:?}");

    // candle's own element-wise pool never started a thread.
    let names: Vec<String> = cpu_by_thread().into_values().map(|(n, _)| n).collect();
    assert!(
        !names.iter().any(|n| n.starts_with("candle-bp")),
        "{names:?}"
    );
}
