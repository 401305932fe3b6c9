//! Records the version of candle-core this crate is compiled against, for `describe()`.
//!
//! Cargo gives a build script no dependency versions, so this reads the workspace's
//! `Cargo.lock`, which names the exact version cargo resolved and builds.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let lock = Path::new(&manifest)
        .ancestors()
        .map(|dir| dir.join("Cargo.lock"))
        .find(|p| p.is_file());
    let version = lock
        .as_deref()
        .and_then(|p| {
            println!("cargo:rerun-if-changed={}", p.display());
            std::fs::read_to_string(p).ok()
        })
        .and_then(|text| locked_version(&text, "candle-core"))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SERVEBENCH_CANDLE_VERSION={version}");
    println!("cargo:rerun-if-changed=build.rs");
}

/// The `version` of the `[[package]]` named `name` in a `Cargo.lock`.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line == wanted {
            let next = lines.next()?;
            return next
                .strip_prefix("version = \"")
                .and_then(|v| v.strip_suffix('"'))
                .map(str::to_string);
        }
    }
    None
}
