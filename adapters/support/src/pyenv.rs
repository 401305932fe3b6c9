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
