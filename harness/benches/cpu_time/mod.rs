//! CPU time of the parts of a bench run: threads of this process by name (from
//! `/proc/self/task`), waited child processes (`getrusage`), split into user and
//! system time where that tells where a difference lies, and a running child process as
//! a whole (its CPU-time clock).

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

/// The CPU-time clock of another process: all its threads, ended ones included.
pub struct ProcessClock(libc::clockid_t);

impl ProcessClock {
    /// The clock of process `pid`; `None` if the system gives none.
    pub fn of(pid: u32) -> Option<ProcessClock> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: clock_getcpuclockid writes into the clockid we own.
        let rc = unsafe { libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) };
        (rc == 0).then_some(ProcessClock(clock))
    }

    /// The process's CPU time so far.
    pub fn time(&self) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(self.0, &mut ts) };
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}
