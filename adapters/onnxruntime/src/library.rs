//! Finding and loading the ONNX Runtime shared library.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use contract::BackendError;
use support::pyenv;

use crate::NAME;

/// The loaded library and the process-wide ONNX Runtime environment.
#[derive(Clone)]
pub struct Library {
    /// Where the library was loaded from.
    pub path: PathBuf,
    /// Its version, such as `1.31.1`.
    pub version: String,
    /// The environment every session is created in.
    pub environment: ort::environment::Environment,
}

/// Where the library is: `ORT_DYLIB_PATH`, else `onnxruntime/capi/libonnxruntime.so*` in
/// the project's Python environment.
pub fn find_library() -> Result<PathBuf, BackendError> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(unavailable(format!(
                "ORT_DYLIB_PATH points to {}, which is not a file",
                p.display()
            )))
        };
    }
    let site = pyenv::site_packages().ok_or_else(|| {
        unavailable(format!(
            "the project's Python environment {} does not exist",
            pyenv::venv().display()
        ))
    })?;
    let capi = site.join("onnxruntime").join("capi");
    // The fully versioned file (libonnxruntime.so.1.31.1) rather than its symlinks.
    pyenv::versioned_library(&capi, "libonnxruntime.so")
        .map_err(|_| {
            unavailable(format!(
                "the onnxruntime wheel is not installed in {}",
                site.display()
            ))
        })?
        .ok_or_else(|| unavailable(format!("no libonnxruntime.so in {}", capi.display())))
}

/// Loads the library once per process and builds the environment every session uses.
pub fn load() -> Result<Library, BackendError> {
    static LOADED: OnceLock<Result<Library, BackendError>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path = find_library()?;
            let builder = ort::init_from(&path)
                .map_err(|e| unavailable(format!("cannot load {}: {e}", path.display())))?;
            let environment = builder
                .with_name("servebench")
                .build()
                .map_err(|e| unavailable(format!("cannot create an environment: {e}")))?;
            Ok(Library {
                version: version_of(&path),
                path,
                environment,
            })
        })
        .clone()
}

/// The version from the file name (`libonnxruntime.so.1.31.1`), else from the build info.
fn version_of(path: &Path) -> String {
    let name = file_name(path);
    if let Some(v) = name.strip_prefix("libonnxruntime.so.") {
        return v.to_string();
    }
    ort::info()
        .split(',')
        .find_map(|part| part.trim().strip_prefix("git-branch=rel-"))
        .unwrap_or("unknown")
        .to_string()
}

fn unavailable(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: NAME.into(),
        reason,
        fix: format!(
            "{} (it installs the onnxruntime wheel), or set ORT_DYLIB_PATH to libonnxruntime.so",
            pyenv::SETUP_HINT
        ),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}
