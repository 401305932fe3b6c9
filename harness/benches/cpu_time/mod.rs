//! CPU time of the parts of a bench run in one process: threads by name (the harness's
//! own `/proc/self/task` reading, and here its user/system split), threads that have
//! ended (each adds its own time as it ends), and
//! waited child processes (`getrusage`), split into user and system time where that
//! tells where a difference lies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// User and system CPU time.
#[derive(Clone, Copy, Default, Debug)]
pub struct Split {
    pub user: Duration,
    pub system: Duration,
}

impl Split {
    /// What was used since `earlier`.
    pub fn since(self, earlier: Split) -> Split {
        Split {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }
}

/// On-CPU time of the live threads whose name starts with `prefix`.
pub fn threads_named(prefix: &str) -> Duration {
    harness::load::cpu::threads_cpu_time(|comm| comm.starts_with(prefix)).unwrap_or_default()
}

/// User and system time (`stat`, in clock ticks: 10 ms each, so read it over seconds)
/// of the live threads whose name starts with `prefix`.
pub fn threads_named_split(prefix: &str) -> Split {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut split = Split::default();
    for dir in tasks_named(prefix) {
        let Ok(s) = std::fs::read_to_string(dir.join("stat")) else {
            continue;
        };
        // Fields after the name, which is in parentheses and may hold spaces.
        let Some(rest) = s.rfind(')').map(|i| &s[i + 2..]) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        split.user += Duration::from_secs_f64(ticks(11) / hz);
        split.system += Duration::from_secs_f64(ticks(12) / hz);
    }
    split
}

fn tasks_named(prefix: &str) -> Vec<std::path::PathBuf> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    tasks
        .flatten()
        .map(|t| t.path())
        .filter(|dir| {
            std::fs::read_to_string(dir.join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .collect()
}

/// CPU time of threads that have ended, each adding its own with [`count_ended_thread`].
pub struct Ended(AtomicU64);

impl Ended {
    pub const fn new() -> Ended {
        Ended(AtomicU64::new(0))
    }

    /// Adds the calling thread's CPU time so far; call it as the thread ends.
    pub fn count_ended_thread(&self) {
        self.0
            .fetch_add(this_thread().as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }
}

/// CPU time of the calling thread.
pub fn this_thread() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// User and system time of the waited children so far.
pub fn children() -> Split {
    // SAFETY: getrusage writes into the struct we own.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    let t = |tv: libc::timeval| Duration::new(tv.tv_sec as u64, tv.tv_usec as u32 * 1000);
    Split {
        user: t(u.ru_utime),
        system: t(u.ru_stime),
    }
}
