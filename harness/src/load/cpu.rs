//! The harness's own CPU use, to tell when the load generator is the bottleneck.
//!
//! In-process engines (candle, ONNX Runtime, libtorch) run on their own executor
//! threads inside the harness's process, so the whole process's CPU time (getrusage)
//! would count the engine as client. Instead we sum the on-CPU time of the async
//! runtime's worker threads — where every load task, timer, HTTP/gRPC client and
//! hand-off to an executor runs — read from `/proc/self/task/<tid>/schedstat` (ns;
//! `stat`'s clock ticks where schedstat is missing). Threads are recognised by name:
//! the load threads' [`super::threads::LOAD_THREAD_NAME`], [`CLIENT_THREAD_NAME`] (set
//! by [`crate::run`]) or tokio's default. A window whose
//! client threads were busy more than [`SATURATED`] of the time is client-bound.

use std::time::Duration;

use super::Measurement;

/// Name of the harness's async worker threads.
pub const CLIENT_THREAD_NAME: &str = "sb-client";

/// Busy fraction of each client thread above which the client is saturated.
pub const SATURATED: f64 = 0.9;

/// Names tokio gives its worker threads when the runtime's builder sets none: tokio
/// 1.54's `tokio-rt-worker`, and the older `tokio-runtime-worker` as `/proc` truncates
/// it to 15 bytes (tests and benches build such runtimes).
pub const TOKIO_DEFAULT_THREAD_NAMES: [&str; 2] = ["tokio-rt-worker", "tokio-runtime-w"];

/// Thread names (as `/proc` truncates them to 15 bytes) that run load tasks.
const CLIENT_COMMS: [&str; 3] = [
    CLIENT_THREAD_NAME,
    TOKIO_DEFAULT_THREAD_NAMES[0],
    TOKIO_DEFAULT_THREAD_NAMES[1],
];

/// Client CPU time at the start of a window.
pub struct ClientCpu {
    at_start: Option<Duration>,
}

impl ClientCpu {
    /// Reads the client threads' CPU time now.
    pub fn now() -> ClientCpu {
        ClientCpu {
            at_start: client_cpu_time(),
        }
    }

    /// Stores the CPU time used since [`ClientCpu::now`] and the runtime's worker count
    /// into `m`.
    pub fn finish_into(self, m: &mut Measurement) {
        if let (Some(a), Some(b)) = (self.at_start, client_cpu_time()) {
            m.client_cpu_s = Some(b.saturating_sub(a).as_secs_f64());
        }
        m.client_threads = tokio::runtime::Handle::try_current()
            .map(|h| h.metrics().num_workers())
            .unwrap_or(1);
    }
}

/// Summed CPU time of the client threads, or `None` off Linux.
pub fn client_cpu_time() -> Option<Duration> {
    threads_cpu_time(|comm| {
        CLIENT_COMMS.contains(&comm) || comm.starts_with(super::threads::LOAD_THREAD_NAME)
    })
}

/// Summed CPU time of this process's threads whose name (as `/proc` has it, at most 15
/// bytes) `named` accepts, or `None` if none was found (or off Linux).
pub fn threads_cpu_time(named: impl Fn(&str) -> bool) -> Option<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut total = Duration::ZERO;
    let mut found = false;
    for t in tasks.flatten() {
        let dir = t.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !named(comm.trim_end()) {
            continue;
        }
        if let Some(d) = schedstat(&dir).or_else(|| stat_ticks(&dir)) {
            total += d;
            found = true;
        }
    }
    found.then_some(total)
}

/// First field of `schedstat`: time on CPU, ns.
fn schedstat(dir: &std::path::Path) -> Option<Duration> {
    let s = std::fs::read_to_string(dir.join("schedstat")).ok()?;
    let ns: u64 = s.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// utime + stime of `stat`, in clock ticks.
fn stat_ticks(dir: &std::path::Path) -> Option<Duration> {
    let s = std::fs::read_to_string(dir.join("stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then(|| Duration::from_secs_f64(ticks as f64 / hz as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CPU time of the calling thread.
    fn thread_cpu() -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    #[test]
    fn busy_runtime_threads_are_measured() {
        let mut named = tokio::runtime::Builder::new_multi_thread();
        named.thread_name(CLIENT_THREAD_NAME);
        check_busy_thread_is_counted(named);
    }

    /// A runtime built without a thread name (as `#[tokio::test]` and the benches do)
    /// runs on tokio's default names, which count as client threads too.
    #[test]
    fn threads_with_tokios_default_name_are_measured() {
        check_busy_thread_is_counted(tokio::runtime::Builder::new_multi_thread());
    }

    /// The count sums every thread of the process with a client name, so the two tests
    /// above take turns: run side by side, one would count the other's busy thread.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn check_busy_thread_is_counted(mut builder: tokio::runtime::Builder) {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let rt = builder.worker_threads(1).build().unwrap();
        let (m, own) = rt.block_on(async {
            tokio::spawn(async {
                let cpu = ClientCpu::now();
                let t0 = std::time::Instant::now();
                let own0 = thread_cpu();
                let mut x = 0u64;
                // Busy for 100 ms of this thread's own CPU time, however loaded the
                // machine is.
                while thread_cpu() - own0 < Duration::from_millis(100) {
                    for _ in 0..1000 {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                }
                let own = thread_cpu() - own0;
                let mut m = Measurement::empty();
                m.wall = t0.elapsed();
                cpu.finish_into(&mut m);
                (m, own)
            })
            .await
            .unwrap()
        });
        let seen = m.client_cpu_s.expect("Linux exposes thread CPU time");
        // Everything this worker thread burnt is counted (schedstat is exact; stat's
        // clock ticks round to 10 ms).
        assert!(
            seen >= own.as_secs_f64() - 0.02,
            "{seen} s counted of {own:?}"
        );
        assert!(m.client_load().unwrap() > 0.0);
        assert_eq!(m.client_threads, 1);
    }
}
