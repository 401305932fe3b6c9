//! Helpers shared by the end-to-end tests: run the real binary, read its outputs.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `harness` binary built for these tests with `args`.
pub fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .output()
        .expect("the harness binary runs")
}

/// The fixtures directory the tests share: generated once, on demand, by the harness.
pub fn fixtures_dir() -> PathBuf {
    fixtures::default_dir()
}

/// Stdout and stderr as text, for assertion messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every `results.json` below `dir`.
pub fn result_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                found.extend(result_files(&p));
            } else if p.file_name().is_some_and(|n| n == "results.json") {
                found.push(p);
            }
        }
    }
    found
}

/// Validates `doc` against the published schema, returning every violation.
pub fn schema_errors(doc: &serde_json::Value) -> Vec<String> {
    let schema_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).unwrap()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect()
}

/// True when the default terminal page has a row for `backend` with a p50 ratio
/// (`1.25 [1.18, 1.31]`): the narrow tables have one row per backend.
pub fn has_ratio_row(stdout: &str, backend: &str) -> bool {
    stdout.lines().any(|line| {
        let cells: Vec<&str> = line.split('│').map(str::trim).collect();
        // A ratio cell: `r [lo, hi]`, then `~` (contains 1.0) and `T` or `U` (missed the
        // precision target) where they apply.
        cells.contains(&backend)
            && cells.iter().any(|c| {
                c.split_once(" [").is_some_and(|(_, rest)| {
                    rest.split_once(']').is_some_and(|(_, marks)| {
                        marks
                            .split_whitespace()
                            .all(|m| ["~", "T", "U"].contains(&m))
                    })
                })
            })
    })
}

/// Characters in the widest line of `text`.
pub fn widest_line(text: &str) -> usize {
    text.lines().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// The terminal page with wrapped lines joined again: the default page wraps prose at 120
/// columns, continuing a line with two spaces of indent.
pub fn unwrapped(stdout: &str) -> String {
    let mut out = String::new();
    for line in stdout.lines() {
        match line.strip_prefix("  ") {
            Some(rest) if !out.is_empty() && !rest.starts_with(' ') => {
                out.push(' ');
                out.push_str(rest);
            }
            _ => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(line);
            }
        }
    }
    out
}

/// One test of this binary at a time: they start servers and measure latency.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A short `compare --quick` of `backends` (candle among them) on the text-CNN, its
/// results under `results`, the managed servers' pids appended to `pid_file` through
/// the adapter's `pid_env` variable. One request a window at least: candle's large
/// text-CNN batches take seconds a request in a debug build; this keeps tests short.
pub fn quick_compare(backends: &str, results: &Path, pid_env: &str, pid_file: &Path) -> Output {
    quick_compare_with(backends, results, pid_env, pid_file, &[])
}

/// [`quick_compare`] with `extra` arguments (a server's URL flag, ...).
pub fn quick_compare_with(
    backends: &str,
    results: &Path,
    pid_env: &str,
    pid_file: &Path,
    extra: &[&str],
) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([
            "compare",
            "--quick",
            "--quiet",
            "--time-budget",
            "10s",
            "--min-requests",
            "1",
            "--backends",
            backends,
            "--models",
            "text-cnn",
            "--results-dir",
        ])
        .arg(results)
        .args(extra)
        .env(pid_env, pid_file)
        .output()
        .expect("the harness binary runs")
}
