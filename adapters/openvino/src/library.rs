//! Finding and loading the OpenVINO C library of the `openvino` wheel.
//!
//! The wheel ships `openvino/libs/libopenvino_c.so.<N>` (no unversioned name) next to
//! `libopenvino.so.<N>`, the plugins (`libopenvino_intel_cpu_plugin.so`) and the ONNX
//! frontend. Its files carry `RPATH=$ORIGIN`, so loading the C library **by its full path**
//! resolves its dependencies and plugins inside the same directory: neither a
//! `libopenvino_c.so` symlink nor `LD_LIBRARY_PATH` is needed, and the user sets up nothing.

use std::path::PathBuf;
use std::sync::OnceLock;

use contract::BackendError;
use support::pyenv;

use crate::NAME;

/// Environment variable naming a directory that holds `libopenvino_c.so*` (such as another
/// environment's `site-packages/openvino/libs`); without it the project's Python
/// environment (`SERVEBENCH_VENV`, else `.venv`) is searched.
pub const LIBS_ENV: &str = "SERVEBENCH_OPENVINO_LIBS";

/// The loaded library.
#[derive(Clone, Debug)]
pub struct Library {
    /// Where the C library was loaded from.
    pub path: PathBuf,
    /// OpenVINO's own build number, such as `2026.4.1-...`.
    pub version: String,
}

/// Where the C library is: in `SERVEBENCH_OPENVINO_LIBS`, else in `openvino/libs` of the
/// project's Python environment.
pub fn find_library() -> Result<PathBuf, BackendError> {
    let dir = match std::env::var_os(LIBS_ENV) {
        Some(d) => {
            let d = PathBuf::from(d);
            if !d.is_dir() {
                return Err(unavailable(format!(
                    "{LIBS_ENV} points to {}, which is not a directory",
                    d.display()
                )));
            }
            d
        }
        None => {
            let site = pyenv::site_packages().ok_or_else(|| {
                unavailable(format!(
                    "the project's Python environment {} does not exist",
                    pyenv::venv().display()
                ))
            })?;
            let libs = site.join("openvino").join("libs");
            if !libs.is_dir() {
                return Err(unavailable(format!(
                    "the openvino wheel is not installed in {}",
                    site.display()
                )));
            }
            libs
        }
    };
    // The versioned file (libopenvino_c.so.2641) rather than an unversioned symlink.
    pyenv::versioned_library(&dir, "libopenvino_c.so")
        .map_err(|e| unavailable(format!("cannot read {}: {e}", dir.display())))?
        .ok_or_else(|| unavailable(format!("no libopenvino_c.so in {}", dir.display())))
}

/// Loads the library once per process and checks that it answers.
pub fn load() -> Result<Library, BackendError> {
    static LOADED: OnceLock<Result<Library, BackendError>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path = find_library()?;
            openvino_sys::library::load_from(&path)
                .map_err(|e| unavailable(format!("cannot load {}: {e}", path.display())))?;
            // Creating a core loads the plugin list: a broken install fails here, once.
            openvino::Core::new().map_err(|e| {
                unavailable(format!(
                    "{} loaded but OpenVINO cannot start: {e}",
                    path.display()
                ))
            })?;
            Ok(Library {
                version: openvino::version().build_number,
                path,
            })
        })
        .clone()
}

fn unavailable(reason: String) -> BackendError {
    BackendError::Unavailable {
        backend: NAME.into(),
        reason,
        fix: format!(
            "{} (it installs the openvino wheel), or set {LIBS_ENV} to the wheel's openvino/libs directory",
            pyenv::SETUP_HINT
        ),
    }
}
