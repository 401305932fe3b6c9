//! Finds the libtorch this crate links against, the way torch-sys does, and records it:
//!
//! - `SERVEBENCH_LIBTORCH_LIB` / `SERVEBENCH_LIBTORCH_VERSION` (compile-time env) let the
//!   adapter check at run time that the libtorch actually loaded is this one, and report
//!   its version;
//! - `SERVEBENCH_TCH_VERSION`: the exact `tch` version, read from `Cargo.lock`;
//! - an rpath to the library directory (and `libtorch_cuda.so` kept as a needed
//!   library) for this crate's own tests, and the `libdir`
//!   link metadata (`DEP_SERVEBENCH_LIBTORCH_LIBDIR`) from which the harness's build
//!   script gives its binaries, tests and benches the same rpath. Without it a binary
//!   would need `LD_LIBRARY_PATH`, or pick up another libtorch on the system.
//!
//! Like torch-sys: with `LIBTORCH_USE_PYTORCH` set, ask the active Python's `torch`
//! package; else `LIBTORCH_LIB` or `LIBTORCH` + `/lib`.

use std::path::{Path, PathBuf};
use std::process::Command;

const PRINT_TORCH: &str = "import os, torch; \
print(os.path.join(os.path.dirname(torch.__file__), 'lib')); print(torch.__version__)";

fn main() {
    for var in ["LIBTORCH_USE_PYTORCH", "LIBTORCH", "LIBTORCH_LIB"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // Only the Python route depends on which python is first on PATH.
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
        println!("cargo:rerun-if-env-changed=PATH");
    }
    println!("cargo:rerun-if-changed=build.rs");
    let (lib, version) = match locate() {
        Ok(found) => found,
        Err(e) => panic!(
            "adapter-libtorch: cannot find libtorch: {e}. Run scripts/setup (it installs \
             torch==2.13.0 into .venv and writes .cargo/config.toml, which sets LIBTORCH)"
        ),
    };
    println!("cargo:rustc-env=SERVEBENCH_LIBTORCH_LIB={}", lib.display());
    println!("cargo:rustc-env=SERVEBENCH_LIBTORCH_VERSION={version}");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // Keep libtorch_cuda loaded (see harness/build.rs): without it, no CUDA device.
    let cuda = lib.join("libtorch_cuda.so");
    if cuda.is_file() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg={}", cuda.display());
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
    println!("cargo:libdir={}", lib.display());
    let tch = lock_version("tch").unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SERVEBENCH_TCH_VERSION={tch}");
}

/// The libtorch library directory and the torch version string.
fn locate() -> Result<(PathBuf, String), String> {
    if std::env::var_os("LIBTORCH_USE_PYTORCH").is_some() {
        let python = if std::env::var_os("VIRTUAL_ENV").is_some() {
            "python"
        } else {
            "python3"
        };
        let out = Command::new(python)
            .args(["-c", PRINT_TORCH])
            .output()
            .map_err(|e| format!("cannot run {python}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "`{python} -c 'import torch'` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        match (lines.next(), lines.next()) {
            (Some(lib), Some(version)) => Ok((PathBuf::from(lib), version.trim().to_string())),
            _ => Err(format!("unexpected output from {python}: {text}")),
        }
    } else {
        let lib = match (
            std::env::var_os("LIBTORCH_LIB"),
            std::env::var_os("LIBTORCH"),
        ) {
            (Some(lib), _) => PathBuf::from(lib),
            (None, Some(root)) => Path::new(&root).join("lib"),
            (None, None) => return Err("neither LIBTORCH_USE_PYTORCH nor LIBTORCH is set".into()),
        };
        // A libtorch download has `build-version`; the torch wheel has `version.py`.
        let root = lib.parent().unwrap_or(&lib);
        let version = std::fs::read_to_string(root.join("build-version"))
            .ok()
            .map(|v| v.trim().to_string())
            .or_else(|| wheel_version(&root.join("version.py")))
            .unwrap_or_else(|| "unknown".into());
        Ok((lib, version))
    }
}

/// `__version__` of a torch wheel's `version.py` (`__version__ = '2.13.0+cu130'`).
fn wheel_version(path: &Path) -> Option<String> {
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let value = l.strip_prefix("__version__")?.trim_start();
        let value = value.strip_prefix('=')?.trim();
        Some(value.trim_matches(|c| c == '\'' || c == '"').to_string())
    })
}

/// The version of `name` in the workspace's `Cargo.lock`.
fn lock_version(name: &str) -> Option<String> {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").ok()?;
    let lock = Path::new(&manifest)
        .ancestors()
        .map(|dir| dir.join("Cargo.lock"))
        .find(|p| p.is_file())?;
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(lock).ok()?;
    let wanted = format!("name = \"{name}\"");
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line == wanted {
            return lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"')
                .map(str::to_string);
        }
    }
    None
}
