//! Writing a run's files (`results.json`, `report.md`, `report.html`, `results.csv`) so that each is
//! either complete or absent.

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

/// Writes `results.json`, `report.md`, `report.html` and `results.csv` into a new `<results_dir>/<timestamp>/`, and
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
    Ok(Written {
        dir,
        json: json_paths,
        markdown: md,
        csv: csv_path,
        html: html_path,
    })
}

/// Writes `bytes` to `<path>.partial`, then renames it to `path`.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), HarnessError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| output_err(parent, e))?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| output_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        output_err(path, e)
    })
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
        assert!(!dir.path().join("sub").join("x.json.partial").exists());
        // A directory in the way is reported, not panicked on.
        let err = atomic_write(dir.path(), b"{}").unwrap_err().to_string();
        assert!(err.starts_with("cannot write"), "{err}");
    }
}
