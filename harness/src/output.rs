//! Writing a run's files (`results.json`, `report.md`, `report.html`, `results.csv`) so that each is
//! either complete or absent.
//!
//! The paths are checked before anything is measured ([`check_paths`]): a `--json`
//! target that exists and is not a regular file (a directory, a symlink, a FIFO, a
//! device) and a `--results-dir` that is not a directory are refused with one sentence.
//! Each file is written to a unique temporary file in its target's directory (so two
//! runs writing one path never share a temporary name), synced, and renamed over the
//! target ([`tempfile::NamedTempFile::persist`]); a failed write leaves no temporary
//! file behind.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::report::{csv, html, markdown};
use crate::results::Results;
use crate::HarnessError;

/// Where a run's outputs went.
#[derive(Debug, Clone)]
pub struct Written {
    /// `<results_dir>/<timestamp>/`
    pub dir: PathBuf,
    /// The JSON results file(s).
    pub json: Vec<PathBuf>,
    /// The Markdown report.
    pub markdown: PathBuf,
    /// The perf_analyzer-style CSV.
    pub csv: PathBuf,
    /// The self-contained HTML report with plots.
    pub html: PathBuf,
}

/// Writes `results.json`, `report.md`, `report.html` and `results.csv` (and, with
/// `--savedmodel`, TF Serving's `tfserving.models.config`) into a new
/// `<results_dir>/<timestamp>/`, and
/// the JSON also to `--json` when given. Every file is written to a temporary name and
/// renamed into place, so an interrupted run leaves no file that looks complete.
pub fn write_outputs(results: &Results) -> Result<Written, HarnessError> {
    let stamp = results.started_at.replace(':', "-");
    let base = &results.config.results_dir;
    let mut dir = base.join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = base.join(format!("{stamp}-{n}"));
    }
    std::fs::create_dir_all(&dir).map_err(|e| output_err(&dir, e))?;
    let json = serde_json::to_string_pretty(results).expect("results serialise");
    let mut json_paths = vec![dir.join("results.json")];
    if let Some(extra) = &results.config.json {
        json_paths.push(extra.clone());
    }
    for p in &json_paths {
        atomic_write(p, json.as_bytes())?;
    }
    let md = dir.join("report.md");
    atomic_write(&md, markdown(results).as_bytes())?;
    let csv_path = dir.join("results.csv");
    atomic_write(&csv_path, csv(results).as_bytes())?;
    let html_path = dir.join("report.html");
    atomic_write(&html_path, html(results).as_bytes())?;
    let saved = &results.config.savedmodel_dirs;
    if !saved.is_empty() {
        // TF Serving's --model_config_file for the user's SavedModels (--savedmodel).
        let models: Vec<(String, PathBuf)> =
            saved.iter().map(|(k, v)| (k.clone(), v.into())).collect();
        let config = fixtures::tfserving::models_config(&models);
        atomic_write(&dir.join("tfserving.models.config"), config.as_bytes())?;
    }
    Ok(Written {
        dir,
        json: json_paths,
        markdown: md,
        csv: csv_path,
        html: html_path,
    })
}

/// Refuses, before anything is measured, output paths the run could not write or
/// must not replace: `--json` naming something that is not a regular file, or a file
/// in a directory that is not one; `--results-dir` naming something that is not a
/// directory.
pub fn check_paths(results_dir: &Path, json: Option<&Path>) -> Result<(), HarnessError> {
    if let Ok(meta) = std::fs::metadata(results_dir) {
        if !meta.is_dir() {
            return Err(HarnessError::Config(format!(
                "--results-dir {} is not a directory; give a directory (it is created if missing)",
                results_dir.display()
            )));
        }
    }
    if let Some(json) = json {
        check_target(json).map_err(|what| {
            HarnessError::Config(format!(
                "--json {} is {what}; give the path of a regular file (it is replaced whole)",
                json.display()
            ))
        })?;
    }
    Ok(())
}

/// Refuses, before anything starts, a temporary directory the run cannot use: managed
/// servers keep their model repositories, state and sockets there (`TMPDIR`, else
/// `/tmp`). One sentence naming the directory and what is wrong with it, rather than a
/// backend later reported as unavailable.
pub fn check_tmpdir() -> Result<(), HarnessError> {
    let dir = std::env::temp_dir();
    let named = match std::env::var_os("TMPDIR") {
        Some(_) => format!("TMPDIR {}", dir.display()),
        None => format!(
            "the temporary directory {} (TMPDIR is not set)",
            dir.display()
        ),
    };
    let wrong = match std::fs::metadata(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
        Err(e) => format!("cannot be read ({e})"),
        Ok(meta) if !meta.is_dir() => "is not a directory".to_string(),
        Ok(_) => match tempfile::tempdir_in(&dir) {
            Ok(_) => return Ok(()),
            Err(e) => format!("is not writable ({})", e.kind()),
        },
    };
    Err(HarnessError::Config(format!(
        "{named} {wrong}; set TMPDIR to a writable directory (managed servers keep their files there)"
    )))
}

/// `Err(what it is)` when `path` exists and is not a regular file, or its directory
/// exists and is not a directory.
fn check_target(path: &Path) -> Result<(), &'static str> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let t = meta.file_type();
        if t.is_symlink() {
            return Err("a symbolic link");
        }
        if t.is_dir() {
            return Err("a directory");
        }
        if !t.is_file() {
            return Err("not a regular file (a FIFO, socket or device)");
        }
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(meta) = parent.and_then(|p| std::fs::metadata(p).ok()) {
        if !meta.is_dir() {
            return Err("in a directory that is a file");
        }
    }
    Ok(())
}

/// Writes `bytes` to a unique temporary file beside `path`, syncs it, and renames it
/// to `path`. A target that is not a regular file is refused, never replaced.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), HarnessError> {
    check_target(path).map_err(|what| HarnessError::Output {
        path: path.display().to_string(),
        reason: format!("it is {what}"),
    })?;
    let parent = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => parent,
        None => Path::new("."),
    };
    std::fs::create_dir_all(parent).map_err(|e| output_err(parent, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Dropped on any error below: the temporary file is removed.
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(parent)
        .map_err(|e| output_err(parent, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| output_err(path, e))?;
    tmp.persist(path).map_err(|e| output_err(path, e.error))?;
    Ok(())
}

impl Written {
    /// The line naming the files written, as the terminal shows it.
    pub fn line(&self) -> String {
        let json: Vec<String> = self.json.iter().map(|p| p.display().to_string()).collect();
        format!(
            "Results: {} (JSON), {} (Markdown), {} (HTML)",
            json.join(", "),
            self.markdown.display(),
            self.html.display()
        )
    }
}

fn output_err(path: &Path, e: std::io::Error) -> HarnessError {
    HarnessError::Output {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_leaves_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("x.json");
        atomic_write(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
        // A directory in the way is reported, not panicked on.
        let err = atomic_write(dir.path(), b"{}").unwrap_err().to_string();
        assert!(err.starts_with("cannot write"), "{err}");
    }

    /// Two runs writing one path at once: each write is whole, the last one wins, and
    /// no temporary file is left.
    #[test]
    fn two_writers_of_one_path_do_not_collide() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        let a = vec![b'a'; 1 << 20];
        let b = vec![b'b'; 1 << 20];
        std::thread::scope(|s| {
            for bytes in [&a, &b] {
                let p = &p;
                s.spawn(move || {
                    for _ in 0..20 {
                        atomic_write(p, bytes).unwrap();
                    }
                });
            }
        });
        let got = std::fs::read(&p).unwrap();
        assert!(got == a || got == b);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn special_targets_are_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        std::fs::write(&real, "keep").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let err = atomic_write(&link, b"{}").unwrap_err().to_string();
        assert!(err.contains("a symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "keep");
        let e = check_paths(&real, None).unwrap_err().to_string();
        assert!(e.contains("is not a directory"), "{e}");
        let e = check_paths(dir.path(), Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a directory"), "{e}");
        check_paths(&dir.path().join("new"), Some(&real)).unwrap();
    }
}
