//! The sampling thread: reads a probe now, every [`PERIOD`], and once more when stopped.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::{Aggregate, Probe, PERIOD, SAMPLER_THREAD_NAME};

type Stop = Arc<(Mutex<bool>, Condvar)>;

/// A probe being read on its own thread, into an aggregate.
pub struct Sampler {
    stop: Stop,
    handle: JoinHandle<(Box<dyn Probe>, Aggregate)>,
}

impl Sampler {
    /// Starts reading `probe` into `aggregate` on a new thread; `None` if the thread
    /// cannot start (then this series is not sampled).
    pub fn start(mut probe: Box<dyn Probe>, mut aggregate: Aggregate) -> Option<Sampler> {
        let stop: Stop = Arc::new((Mutex::new(false), Condvar::new()));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name(SAMPLER_THREAD_NAME.into())
            .spawn(move || {
                run(&mut *probe, &mut aggregate, &s);
                (probe, aggregate)
            })
            .ok()?;
        Some(Sampler { stop, handle })
    }

    /// Takes a last reading, ends the segment and gives back the probe and aggregate.
    pub fn stop(self) -> (Box<dyn Probe>, Aggregate) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        self.handle.join().expect("the sampler does not panic")
    }
}

fn run(probe: &mut dyn Probe, aggregate: &mut Aggregate, stop: &Stop) {
    let t0 = Instant::now();
    let (lock, cv) = &**stop;
    loop {
        // Read without holding the lock, so `stop` never waits for /proc or NVML.
        let r = probe.read();
        aggregate.add(t0.elapsed(), &r);
        let stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
        let (stopped, _) = cv
            .wait_timeout_while(stopped, PERIOD, |s| !*s)
            .unwrap_or_else(|e| e.into_inner());
        if *stopped {
            drop(stopped);
            // A last reading at the end of the series.
            let r = probe.read();
            aggregate.add(t0.elapsed(), &r);
            break;
        }
    }
    aggregate.end_segment();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{Reading, Scope};

    /// Test double: a probe whose CPU counter grows by 0.1 s per reading.
    struct Ticking(f64);

    impl Probe for Ticking {
        fn read(&mut self) -> Reading {
            self.0 += 0.1;
            Reading {
                cpu_s: Some(self.0),
                memory_bytes: Some(1 << 20),
                gpus: vec![],
            }
        }
    }

    #[test]
    fn reads_at_start_and_at_stop_at_least() {
        let s =
            Sampler::start(Box::new(Ticking(0.0)), Aggregate::new(Scope::EngineThreads)).unwrap();
        std::thread::sleep(PERIOD * 3);
        let (_, a) = s.stop();
        let u = a.usage();
        assert!(u.readings >= 2, "{u:?}");
        assert_eq!(u.peak_memory_mb, Some(1.0));
        assert!(u.cpu_cores.is_some());
    }
}
