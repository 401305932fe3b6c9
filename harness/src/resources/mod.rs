//! What serving costs: CPU, memory and GPU use of whatever serves a backend's requests,
//! sampled on a thread of its own ([`SAMPLER_THREAD_NAME`], every [`PERIOD`]) while a
//! point is measured, and reported beside its latency.
//!
//! What is watched depends on where the requests are served
//! ([`contract::Backend::served_by`]):
//! - a **managed server** (Gunicorn's master and workers, tritonserver and its Python
//!   stubs): every process of its process group ([`procfs::Group`]);
//! - an **in-process engine** (candle, ONNX Runtime, libtorch): the harness process's
//!   threads that are not the harness's own (the async workers, the open loop's sender,
//!   this sampler, the main thread), and the process's resident memory since the point
//!   started plus what opening the backend added ([`procfs::Engine`]);
//! - a **server given by URL**: nothing; its resources are not visible.
//!
//! GPUs are read through NVML ([`gpu`]); without one every GPU field is `None`. Probes sit
//! behind the small [`Probe`] trait so that [`Aggregate`] (the arithmetic) is tested with
//! a test double.

pub mod gpu;
pub mod procfs;
mod sampler;

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use contract::ServedBy;

pub use sampler::Sampler;

/// Time between two readings: 20 Hz.
pub const PERIOD: Duration = Duration::from_millis(50);

/// Name of the sampling thread (so the in-process probe can leave it out).
pub const SAMPLER_THREAD_NAME: &str = "sb-sampler";

/// What a backend's usage figures describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// The process group of a server the harness started.
    ProcessGroup,
    /// The engine's threads inside the harness process.
    EngineThreads,
    /// A server the harness did not start: its resources are not visible.
    #[default]
    NotVisible,
}

/// Resource use of what served one point, over the trials' measured series.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Usage {
    /// What was watched.
    pub scope: Scope,
    /// CPU in use, in cores (CPU seconds per wall second); `None` where not visible.
    pub cpu_cores: Option<f64>,
    /// Peak resident memory, MiB: the server's process group summed, or for an
    /// in-process engine what opening it added plus the process's growth during the
    /// point; `None` where not visible.
    pub peak_memory_mb: Option<f64>,
    /// Mean GPU utilisation, %, averaged over the visible GPUs; `None` without a GPU.
    pub gpu_util_pct: Option<f64>,
    /// Peak GPU memory in use, MiB, summed over the visible GPUs; `None` without a GPU.
    pub gpu_memory_mb: Option<f64>,
    /// Mean power draw, W, summed over the visible GPUs; `None` without a GPU or where
    /// the GPU does not report it.
    pub gpu_power_w: Option<f64>,
    /// Readings the figures come from.
    pub readings: u64,
}

/// One GPU at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GpuReading {
    /// Utilisation over the driver's last sample period, %.
    pub util_pct: f64,
    /// Memory in use, bytes.
    pub memory_bytes: u64,
    /// Power draw, W, where the GPU reports it.
    pub power_w: Option<f64>,
}

/// What a probe saw at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// CPU time used so far by what is watched, seconds (cumulative: only differences
    /// mean anything).
    pub cpu_s: Option<f64>,
    /// Resident memory now, bytes.
    pub memory_bytes: Option<u64>,
    /// Every GPU watched.
    pub gpus: Vec<GpuReading>,
}

/// Something that can be read while a point is measured.
pub trait Probe: Send {
    /// Reads it now.
    fn read(&mut self) -> Reading;
}

/// Starts sampling what serves a backend (and the GPUs, if any); `None` for a server
/// whose resources are not visible. `loaded_bytes`: what opening an in-process engine
/// added to the process's memory.
pub fn watch(served: &ServedBy, loaded_bytes: u64, gpus: Option<&gpu::Gpus>) -> Option<Sampler> {
    let (scope, host): (Scope, Box<dyn Probe>) = match served {
        ServedBy::InProcess => (
            Scope::EngineThreads,
            Box::new(procfs::Engine::new(loaded_bytes)),
        ),
        ServedBy::ProcessGroups(g) => {
            (Scope::ProcessGroup, Box::new(procfs::Group::new(g.clone())))
        }
        ServedBy::NotVisible => return None,
    };
    let gpu = gpus.map(|g| Box::new(g.clone()) as Box<dyn Probe>);
    Sampler::start(Box::new(Both(Some(host), gpu)), Aggregate::new(scope))
}

/// Resident memory of what serves a backend once it is ready, bytes: a managed server's
/// process groups, or the growth of this process since `rss_before` (read before the
/// backend was opened) for an in-process engine.
pub fn loaded_bytes(served: &ServedBy, rss_before: Option<u64>) -> Option<u64> {
    match served {
        ServedBy::InProcess => Some(procfs::own_rss()?.saturating_sub(rss_before?)),
        ServedBy::ProcessGroups(g) => procfs::group_rss(g),
        ServedBy::NotVisible => None,
    }
}

/// Host and GPU probes read together.
pub struct Both(pub Option<Box<dyn Probe>>, pub Option<Box<dyn Probe>>);

impl Probe for Both {
    fn read(&mut self) -> Reading {
        let mut r = self.0.as_mut().map(|p| p.read()).unwrap_or_default();
        if let Some(gpu) = &mut self.1 {
            r.gpus = gpu.read().gpus;
        }
        r
    }
}

/// Readings of one point, in segments (one per trial's series): CPU is the CPU time of
/// every segment over their summed wall time; memory the peak of any reading; GPU
/// utilisation and power the mean over readings, GPU memory the peak.
#[derive(Debug, Clone, Default)]
pub struct Aggregate {
    scope: Scope,
    /// First and last (time, CPU seconds) of the open segment.
    segment: Option<((Duration, f64), (Duration, f64))>,
    cpu_s: f64,
    cpu_wall_s: f64,
    peak_memory: Option<u64>,
    gpu_readings: u64,
    gpu_util_sum: f64,
    gpu_power_sum: f64,
    gpu_power_readings: u64,
    gpu_peak_memory: u64,
    readings: u64,
}

impl Aggregate {
    /// An empty aggregate of readings of `scope`.
    pub fn new(scope: Scope) -> Aggregate {
        Aggregate {
            scope,
            ..Default::default()
        }
    }

    /// Adds a reading taken `at` (any fixed origin within a segment).
    pub fn add(&mut self, at: Duration, r: &Reading) {
        self.readings += 1;
        if let Some(cpu) = r.cpu_s {
            self.segment = Some(match self.segment {
                None => ((at, cpu), (at, cpu)),
                Some((first, _)) => (first, (at, cpu)),
            });
        }
        if let Some(m) = r.memory_bytes {
            self.peak_memory = Some(self.peak_memory.map_or(m, |p| p.max(m)));
        }
        if !r.gpus.is_empty() {
            let n = r.gpus.len() as f64;
            self.gpu_readings += 1;
            self.gpu_util_sum += r.gpus.iter().map(|g| g.util_pct).sum::<f64>() / n;
            let mem: u64 = r.gpus.iter().map(|g| g.memory_bytes).sum();
            self.gpu_peak_memory = self.gpu_peak_memory.max(mem);
            if r.gpus.iter().all(|g| g.power_w.is_some()) {
                self.gpu_power_readings += 1;
                self.gpu_power_sum += r.gpus.iter().filter_map(|g| g.power_w).sum::<f64>();
            }
        }
    }

    /// Closes the open segment: the next reading starts a new one.
    pub fn end_segment(&mut self) {
        if let Some(((t0, c0), (t1, c1))) = self.segment.take() {
            if t1 > t0 {
                self.cpu_s += (c1 - c0).max(0.0);
                self.cpu_wall_s += (t1 - t0).as_secs_f64();
            }
        }
    }

    /// Adds every segment of `other`.
    pub fn merge(&mut self, other: &Aggregate) {
        let mut o = other.clone();
        o.end_segment();
        self.scope = o.scope;
        self.cpu_s += o.cpu_s;
        self.cpu_wall_s += o.cpu_wall_s;
        self.peak_memory = match (self.peak_memory, o.peak_memory) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.gpu_readings += o.gpu_readings;
        self.gpu_util_sum += o.gpu_util_sum;
        self.gpu_power_sum += o.gpu_power_sum;
        self.gpu_power_readings += o.gpu_power_readings;
        self.gpu_peak_memory = self.gpu_peak_memory.max(o.gpu_peak_memory);
        self.readings += o.readings;
    }

    /// The figures so far (the open segment included).
    pub fn usage(&self) -> Usage {
        let mut a = self.clone();
        a.end_segment();
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let gpu = a.gpu_readings > 0;
        Usage {
            scope: a.scope,
            cpu_cores: (a.cpu_wall_s > 0.0).then(|| a.cpu_s / a.cpu_wall_s),
            peak_memory_mb: a.peak_memory.map(mib),
            gpu_util_pct: gpu.then(|| a.gpu_util_sum / a.gpu_readings as f64),
            gpu_memory_mb: gpu.then(|| mib(a.gpu_peak_memory)),
            gpu_power_w: (a.gpu_power_readings > 0)
                .then(|| a.gpu_power_sum / a.gpu_power_readings as f64),
            readings: a.readings,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn host(cpu: f64, mem: u64) -> Reading {
        Reading {
            cpu_s: Some(cpu),
            memory_bytes: Some(mem),
            gpus: vec![],
        }
    }

    #[test]
    fn cpu_is_cpu_time_over_wall_time_of_every_segment() {
        let mut a = Aggregate::new(Scope::ProcessGroup);
        // Segment 1: 1.5 CPU s in 1 s; segment 2 (counter kept running): 0.5 in 1 s.
        a.add(ms(0), &host(10.0, 100 << 20));
        a.add(ms(500), &host(10.7, 300 << 20));
        a.add(ms(1000), &host(11.5, 200 << 20));
        a.end_segment();
        a.add(ms(5000), &host(20.0, 50 << 20));
        a.add(ms(6000), &host(20.5, 50 << 20));
        let u = a.usage();
        assert_eq!(u.cpu_cores, Some(1.0));
        assert_eq!(u.peak_memory_mb, Some(300.0));
        assert_eq!(u.readings, 5);
        assert_eq!(u.gpu_util_pct, None);
        assert_eq!(u.gpu_memory_mb, None);
    }

    #[test]
    fn a_single_reading_gives_no_cpu_figure_and_nothing_gives_nothing() {
        let mut a = Aggregate::new(Scope::EngineThreads);
        a.add(ms(0), &host(1.0, 1 << 20));
        assert_eq!(a.usage().cpu_cores, None);
        assert_eq!(a.usage().peak_memory_mb, Some(1.0));
        let none = Aggregate::new(Scope::NotVisible).usage();
        assert_eq!(none, Usage::default());
    }

    #[test]
    fn gpus_average_utilisation_sum_memory_and_power() {
        let gpu = |util, mem_mib: u64, w| GpuReading {
            util_pct: util,
            memory_bytes: mem_mib << 20,
            power_w: w,
        };
        let mut a = Aggregate::new(Scope::ProcessGroup);
        let mut r = host(0.0, 0);
        r.gpus = vec![gpu(20.0, 100, Some(50.0)), gpu(40.0, 300, Some(70.0))];
        a.add(ms(0), &r);
        r.gpus = vec![gpu(60.0, 100, Some(50.0)), gpu(80.0, 100, None)];
        a.add(ms(50), &r);
        let u = a.usage();
        assert_eq!(u.gpu_util_pct, Some(50.0));
        assert_eq!(u.gpu_memory_mb, Some(400.0));
        // Only the reading where every GPU reported power counts.
        assert_eq!(u.gpu_power_w, Some(120.0));
    }

    #[test]
    fn merged_trials_pool_segments() {
        let mut t1 = Aggregate::new(Scope::EngineThreads);
        t1.add(ms(0), &host(0.0, 10 << 20));
        t1.add(ms(1000), &host(2.0, 10 << 20));
        let mut t2 = Aggregate::new(Scope::EngineThreads);
        t2.add(ms(0), &host(5.0, 30 << 20));
        t2.add(ms(3000), &host(7.0, 20 << 20));
        let mut all = Aggregate::new(Scope::EngineThreads);
        all.merge(&t1);
        all.merge(&t2);
        let u = all.usage();
        assert_eq!(u.cpu_cores, Some(1.0));
        assert_eq!(u.peak_memory_mb, Some(30.0));
        assert_eq!(u.scope, Scope::EngineThreads);
    }
}
