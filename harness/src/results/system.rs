//! The machine a run happened on.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Machine facts recorded with every run.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct System {
    /// CPU model name.
    pub cpu: String,
    /// Logical cores available to the process.
    pub cores: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// Operating system.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// Engine and version of every backend measured.
    pub engines: BTreeMap<String, String>,
}

impl System {
    /// Reads the facts of this machine (Linux `/proc`; "unknown" elsewhere).
    pub fn probe(engines: BTreeMap<String, String>) -> System {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let field = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| {
                    let (k, v) = l.split_once([':', '='])?;
                    (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
                })
                .unwrap_or_else(|| "unknown".into())
        };
        let mem_kib: f64 = field(&read("/proc/meminfo"), "MemTotal")
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap_or(0.0);
        System {
            cpu: field(&read("/proc/cpuinfo"), "model name"),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
            os: field(&read("/etc/os-release"), "PRETTY_NAME"),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            engines,
        }
    }
}
