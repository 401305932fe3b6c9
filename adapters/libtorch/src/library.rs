//! Which libtorch this process really runs, checked against the one it was built with.
//!
//! The build records the library directory and torch version it linked against
//! (`build.rs`); the binaries carry an rpath to that directory. At [`crate::open`] the
//! adapter reads `/proc/self/maps` to find the `libtorch_cpu.so` the dynamic loader
//! actually mapped, and refuses to run if it is another one (say, through a stray
//! `LD_LIBRARY_PATH`): results must never be attributed to a libtorch that did not
//! produce them.

use std::path::{Path, PathBuf};

use contract::BackendError;

/// The library directory recorded at build time.
pub const BUILT_LIB: &str = env!("SERVEBENCH_LIBTORCH_LIB");
/// The torch version recorded at build time, such as `2.13.0+cu130`.
pub const BUILT_VERSION: &str = env!("SERVEBENCH_LIBTORCH_VERSION");

/// The libtorch in use.
#[derive(Debug, Clone)]
pub struct Library {
    /// Directory of the loaded `libtorch_cpu.so`.
    pub dir: PathBuf,
    /// torch version of that library.
    pub version: String,
}

/// The libtorch this process loaded, if it is the one this crate was built against.
pub fn check() -> Result<Library, BackendError> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    let loaded = loaded_dir(&maps).unwrap_or_else(|| PathBuf::from(BUILT_LIB));
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if !same(&loaded, Path::new(BUILT_LIB)) {
        return Err(BackendError::Unavailable {
            backend: crate::NAME.into(),
            reason: format!(
                "this process loaded libtorch from {}, but it was built against {} (torch {BUILT_VERSION})",
                loaded.display(),
                BUILT_LIB
            ),
            fix: "unset LD_LIBRARY_PATH (the binary finds its libtorch by rpath), or rebuild with scripts/setup".into(),
        });
    }
    let version = installed_version(&loaded).unwrap_or_else(|| BUILT_VERSION.to_string());
    if version != BUILT_VERSION {
        return Err(BackendError::Unavailable {
            backend: crate::NAME.into(),
            reason: format!(
                "the torch package in {} is now version {version}, but this binary was built against {BUILT_VERSION}",
                loaded.display()
            ),
            fix: "rebuild: scripts/setup".into(),
        });
    }
    Ok(Library {
        dir: loaded,
        version,
    })
}

/// The directory of the `libtorch_cpu.so` mapped in `maps` (`/proc/self/maps` text).
fn loaded_dir(maps: &str) -> Option<PathBuf> {
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(Path::new)
        .find(|p| p.file_name().is_some_and(|n| n == "libtorch_cpu.so"))
        .and_then(Path::parent)
        .map(Path::to_path_buf)
}

/// `__version__` from the `version.py` of the torch package around `lib`
/// (`<site-packages>/torch/lib`), where there is one.
fn installed_version(lib: &Path) -> Option<String> {
    let text = std::fs::read_to_string(lib.parent()?.join("version.py")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("__version__"))
        .and_then(|rest| rest.split_once('='))
        .map(|(_, v)| v.trim().trim_matches(['\'', '"']).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_runs_the_libtorch_it_was_built_against() {
        let lib = check().unwrap();
        assert_eq!(lib.version, BUILT_VERSION);
        assert!(lib.version.starts_with("2.13.0"), "{}", lib.version);
    }

    #[test]
    fn finds_libtorch_cpu_in_maps() {
        let maps = "7f00-7f01 r-xp 00000000 08:01 1 /usr/lib/libc.so.6\n\
                    7f02-7f03 r-xp 00000000 08:01 2 /v/site-packages/torch/lib/libtorch_cpu.so\n";
        assert_eq!(
            loaded_dir(maps),
            Some(PathBuf::from("/v/site-packages/torch/lib"))
        );
        assert_eq!(loaded_dir("7f00-7f01 r-xp 0 0 0\n"), None);
    }
}
