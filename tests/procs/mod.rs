//! What the tests of managed servers share: whether the processes a run started are
//! gone, by pid and by process group (read from /proc).
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

/// `(state, ppid, pgrp)` of `pid` from /proc, if it exists.
fn stat(pid: u32) -> Option<(String, u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command, which may hold spaces: state, ppid, pgrp.
    let fields: Vec<&str> = stat.rsplit(')').next()?.split_whitespace().collect();
    Some((
        fields.first()?.to_string(),
        fields.get(1)?.parse().ok()?,
        fields.get(2)?.parse().ok()?,
    ))
}

/// True if `pid` is a live process (a zombie is dead: it only waits to be reaped).
pub fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(state, _, _)| state != "Z")
}

/// Live processes whose process group is `group`.
pub fn group_members(group: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|(state, _, pgrp)| state != "Z" && pgrp == group))
        .collect()
}

/// What is left of a server: live pids among `pids`, live members of the group
/// `pids[0]`, and whether `dir` (its temporary directory) still exists.
pub fn leftovers(pids: &[u32], dir: Option<&Path>) -> String {
    let left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
    let members = pids.first().map(|&g| group_members(g)).unwrap_or_default();
    let dir_left = dir.filter(|d| d.exists());
    if left.is_empty() && members.is_empty() && dir_left.is_none() {
        return String::new();
    }
    format!("pids {left:?} of {pids:?}, group members {members:?}, directory {dir_left:?}")
}

/// Waits up to `within` until nothing of the server is left; the leftovers otherwise.
pub fn wait_gone(pids: &[u32], dir: Option<&Path>, within: Duration) -> String {
    let deadline = Instant::now() + within;
    loop {
        let left = leftovers(pids, dir);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The pid file a managed server's test hook writes: one line per server, its group's
/// pids, the server first.
pub fn read_pid_file(pid_file: &Path) -> Vec<Vec<u32>> {
    std::fs::read_to_string(pid_file)
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().map(|p| p.parse().unwrap()).collect())
        .collect()
}
