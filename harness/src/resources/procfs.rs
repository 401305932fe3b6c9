//! Probes reading Linux's `/proc`: a managed server's process group, or an in-process
//! engine's threads.
//!
//! CPU time is cumulative per thread or process; a [`Counter`] keeps, per id, the value
//! first and last seen, so threads or processes that start during the measurement count
//! from zero and those that end keep what they had used when last read. Memory is the
//! resident set (`statm`, `stat`): for a process group, summed over its processes
//! (pages a fork shares with its parent count in each).

use std::collections::HashMap;
use std::path::Path;

use super::{Probe, Reading, SAMPLER_THREAD_NAME};
use crate::load::cpu::{CLIENT_THREAD_NAME, TOKIO_DEFAULT_THREAD_NAMES};
use crate::load::open::SENDER_THREAD_NAME;

/// Thread names (as `/proc` truncates them to 15 bytes) of the harness's own threads.
const HARNESS_THREADS: [&str; 5] = [
    CLIENT_THREAD_NAME,
    TOKIO_DEFAULT_THREAD_NAMES[0],
    TOKIO_DEFAULT_THREAD_NAMES[1],
    SENDER_THREAD_NAME,
    SAMPLER_THREAD_NAME,
];

/// Readings between two scans of `/proc` for a group's processes.
const RESCAN_EVERY: u64 = 20;

/// Cumulative CPU per id, counted from the first reading.
#[derive(Debug, Default)]
struct Counter {
    seen: HashMap<u32, (u64, u64)>,
    started: bool,
}

impl Counter {
    fn update(&mut self, id: u32, value: u64) {
        let started = self.started;
        let e = self
            .seen
            .entry(id)
            .or_insert((if started { 0 } else { value }, value));
        e.1 = e.1.max(value);
    }

    /// Ends a reading: ids first seen later count from zero.
    fn total(&mut self) -> u64 {
        self.started = true;
        self.seen.values().map(|(a, b)| b.saturating_sub(*a)).sum()
    }
}

/// The process groups of a server the harness started.
pub struct Group {
    leaders: Vec<u32>,
    members: Vec<u32>,
    cpu: Counter,
    reads: u64,
}

impl Group {
    /// Watches the groups led by `leaders`.
    pub fn new(leaders: Vec<u32>) -> Group {
        Group {
            leaders,
            members: Vec::new(),
            cpu: Counter::default(),
            reads: 0,
        }
    }
}

impl Probe for Group {
    fn read(&mut self) -> Reading {
        if self.reads % RESCAN_EVERY == 0 {
            self.members = members(&self.leaders);
        }
        self.reads += 1;
        let tick_ns = 1e9 / clock_ticks_per_s();
        let mut rss_pages = 0;
        let mut any = false;
        for &pid in &self.members {
            if let Some(s) = ProcStat::read(&Path::new("/proc").join(pid.to_string())) {
                any = true;
                self.cpu
                    .update(pid, ((s.utime + s.stime) as f64 * tick_ns) as u64);
                rss_pages += s.rss_pages;
            }
        }
        let cpu_ns = self.cpu.total();
        Reading {
            cpu_s: any.then_some(cpu_ns as f64 / 1e9),
            memory_bytes: any.then_some(rss_pages * page_size()),
            gpus: vec![],
        }
    }
}

/// An in-process engine: every thread of this process but the harness's own.
pub struct Engine {
    cpu: Counter,
    /// Subtracted from the process's resident memory.
    memory_base: i64,
}

impl Engine {
    /// Watches the engine threads; `loaded_bytes` is what opening the backend added to
    /// the process's resident memory, counted in every reading on top of the growth
    /// since now.
    pub fn new(loaded_bytes: u64) -> Engine {
        Engine {
            cpu: Counter::default(),
            memory_base: own_rss().unwrap_or(0) as i64 - loaded_bytes as i64,
        }
    }
}

impl Probe for Engine {
    fn read(&mut self) -> Reading {
        let main = std::process::id();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for t in tasks.flatten() {
                let Some(tid) = t.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                    continue;
                };
                let dir = t.path();
                let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
                if tid == main || HARNESS_THREADS.contains(&comm.trim_end()) {
                    continue;
                }
                if let Some(ns) = schedstat_ns(&dir) {
                    self.cpu.update(tid, ns);
                }
            }
        }
        let cpu_ns = self.cpu.total();
        Reading {
            cpu_s: Some(cpu_ns as f64 / 1e9),
            memory_bytes: own_rss().map(|m| (m as i64 - self.memory_base).max(0) as u64),
            gpus: vec![],
        }
    }
}

/// Resident memory of this process, bytes.
pub fn own_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = s.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * page_size())
}

/// Resident memory of every process of the groups led by `leaders`, bytes.
pub fn group_rss(leaders: &[u32]) -> Option<u64> {
    let pages: Vec<u64> = members(leaders)
        .iter()
        .filter_map(|pid| ProcStat::read(&Path::new("/proc").join(pid.to_string())))
        .map(|s| s.rss_pages)
        .collect();
    (!pages.is_empty()).then(|| pages.iter().sum::<u64>() * page_size())
}

/// Pids of every process whose process group is one of `leaders`.
fn members(leaders: &[u32]) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let s = ProcStat::read(&e.path())?;
            leaders.contains(&s.pgrp).then_some(pid)
        })
        .collect()
}

/// The fields of `/proc/<pid>/stat` we use.
struct ProcStat {
    pgrp: u32,
    utime: u64,
    stime: u64,
    rss_pages: u64,
}

impl ProcStat {
    fn read(dir: &Path) -> Option<ProcStat> {
        let s = std::fs::read_to_string(dir.join("stat")).ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces:
        // state, ppid, pgrp, ..., utime (12th), stime (13th), ..., rss (22nd).
        let f: Vec<&str> = s[s.rfind(')')? + 2..].split_whitespace().collect();
        Some(ProcStat {
            pgrp: f.get(2)?.parse().ok()?,
            utime: f.get(11)?.parse().ok()?,
            stime: f.get(12)?.parse().ok()?,
            rss_pages: f.get(21)?.parse().ok()?,
        })
    }
}

/// First field of a thread's `schedstat`: time on CPU, ns.
fn schedstat_ns(dir: &Path) -> Option<u64> {
    let s = std::fs::read_to_string(dir.join("schedstat")).ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_counts_late_ids_from_zero_and_keeps_ended_ones() {
        let mut c = Counter::default();
        c.update(1, 100);
        assert_eq!(c.total(), 0);
        c.update(1, 150);
        c.update(2, 30); // started after the first reading
        assert_eq!(c.total(), 80);
        c.update(2, 40); // 1 ended: keeps its 50
        assert_eq!(c.total(), 90);
    }

    #[test]
    fn an_engine_thread_is_counted_and_a_harness_thread_is_not() {
        let busy = |name: &str| {
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            let s = stop.clone();
            let h = std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let mut x = 0u64;
                    while !s.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_add(1));
                    }
                })
                .unwrap();
            (stop, h)
        };
        let mut probe = Engine::new(0);
        let first = probe.read();
        // A harness thread spinning is not counted (other tests' threads may be).
        let (stop, h) = busy(SAMPLER_THREAD_NAME);
        std::thread::sleep(std::time::Duration::from_millis(100));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap();
        let (stop, h) = busy("engine-0");
        std::thread::sleep(std::time::Duration::from_millis(100));
        let during = probe.read();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        h.join().unwrap();
        let used = during.cpu_s.unwrap() - first.cpu_s.unwrap();
        assert!(used > 0.0, "the engine thread's CPU was not seen");
        assert!(during.memory_bytes.is_some());
    }

    #[test]
    fn a_process_group_is_read() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5 & sleep 5"])
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        // Give sh time to fork its background child.
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut g = Group::new(vec![pid]);
        let r = g.read();
        assert!(r.memory_bytes.unwrap() > 0);
        assert!(r.cpu_s.is_some());
        assert!(members(&[pid]).len() >= 2, "{:?}", members(&[pid]));
        // SAFETY: signals the group we started.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        let _ = child.wait();
    }
}
