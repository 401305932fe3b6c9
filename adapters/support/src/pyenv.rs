//! Finding the project's Python environment.
//!
//! Several backends need files that pip installed: the ONNX Runtime shared library, the
//! Flask app's interpreter, the Triton server bundled in a wheel. They all come from one
//! place, the project-local virtual environment that the README's set-up command
//! creates at `<repository>/.venv`. `SERVEBENCH_VENV` points elsewhere.

use std::path::{Path, PathBuf};

/// The command that creates the project's Python environment, for error messages.
pub const SETUP_HINT: &str = "run `scripts/setup` from the repository root";

/// The project's virtual environment: `SERVEBENCH_VENV`, else `<repository>/.venv`.
pub fn venv() -> PathBuf {
    if let Some(dir) = std::env::var_os("SERVEBENCH_VENV") {
        return PathBuf::from(dir);
    }
    repository_root().join(".venv")
}

/// The repository this build came from (two levels above this crate).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crate lives two levels below the repository root")
        .to_path_buf()
}

/// The environment's interpreter, if the environment exists.
pub fn python() -> Option<PathBuf> {
    let p = venv().join("bin").join("python3");
    p.exists().then_some(p)
}

/// `<venv>/lib/python3.X/site-packages`, if the environment exists.
pub fn site_packages() -> Option<PathBuf> {
    let lib = venv().join("lib");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&lib)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect();
    found.sort();
    found.pop()
}

/// The version of the distribution whose `.dist-info` directory starts with `prefix`
/// (such as `mlserver-`) in `venv`'s site-packages.
pub fn dist_version(venv: &Path, prefix: &str) -> Option<String> {
    let lib = std::fs::read_dir(venv.join("lib")).ok()?;
    lib.flatten()
        .map(|e| e.path().join("site-packages"))
        .filter_map(|site| std::fs::read_dir(site).ok())
        .flat_map(|d| d.flatten())
        .filter_map(|e| e.file_name().into_string().ok())
        .find_map(|n| {
            n.strip_prefix(prefix)?
                .strip_suffix(".dist-info")
                .map(str::to_string)
        })
}

/// The shared library `name` (such as `libonnxruntime.so`) in a wheel's directory `dir`:
/// of the files whose names start with it, the most fully versioned one
/// (`libonnxruntime.so.1.31.1` rather than a `libonnxruntime.so` symlink); `None` if
/// there is none.
pub fn versioned_library(dir: &Path, name: &str) -> std::io::Result<Option<PathBuf>> {
    let file_name = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| file_name(p).starts_with(name))
        .collect();
    libs.sort_by_key(|p| file_name(p).len());
    Ok(libs.pop())
}

#[cfg(test)]
mod versioned_library_tests {
    use super::*;

    #[test]
    fn the_most_versioned_file_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["libx.so", "libx.so.1", "libx.so.1.31.1", "liby.so.2.0.0.0"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        let found = versioned_library(dir.path(), "libx.so").unwrap().unwrap();
        assert_eq!(found.file_name().unwrap(), "libx.so.1.31.1");
        assert_eq!(versioned_library(dir.path(), "libz.so").unwrap(), None);
        assert!(versioned_library(&dir.path().join("missing"), "libx.so").is_err());
    }
}
