//! The config file, read as flags (ripgrep's way): each `key = value` of the TOML file
//! becomes `--key=value`, put before the command line's own flags. One parser reads both;
//! a flag given on the command line overrides the file's (`args_override_self`), a
//! boolean included (`--strict=false`).
//!
//! A table named after a backend (`["triton-http@json"]`) holds options of that backend
//! alone: its keys are server flags, read after every other flag for that backend only.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::HarnessError;

/// The `--config FILE` (or `--config=FILE`) of a command line, if any.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            return None;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(p) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(p));
        }
    }
    None
}

/// The settings of a config file, as flags.
#[derive(Debug, Default, PartialEq)]
pub struct FileArgs {
    /// Flags for the whole run.
    pub flags: Vec<String>,
    /// Server flags of one backend name (`NAME` or `NAME@LABEL`) each.
    pub own: Vec<(String, Vec<String>)>,
}

/// The settings of the TOML file at `path`, as flags.
pub fn file_args(path: &Path) -> Result<FileArgs, HarnessError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        HarnessError::Config(format!("cannot read config file {}: {e}", path.display()))
    })?;
    let invalid = |why: String| {
        HarnessError::Config(format!(
            "config file {} is not valid: {why}",
            path.display()
        ))
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| invalid(e.message().to_string()))?;
    let mut args = FileArgs::default();
    for (key, value) in &table {
        if let toml::Value::Table(own) = value {
            if crate::registry::find(crate::registry::backend_kind(key)).is_none() {
                return Err(invalid(format!(
                    "table [{key}] is not a backend name; a table holds the server options of \
                     one backend, such as [\"triton-http@json\"] (known backends: {})",
                    crate::registry::names().join(", ")
                )));
            }
            args.own.push((key.clone(), flags(own, &invalid)?));
            continue;
        }
        args.flags.extend(flags(
            &toml::Table::from_iter([(key.clone(), value.clone())]),
            &invalid,
        )?);
    }
    Ok(args)
}

/// The `key = value` pairs of `table`, as `--key=value` flags.
fn flags(
    table: &toml::Table,
    invalid: &dyn Fn(String) -> HarnessError,
) -> Result<Vec<String>, HarnessError> {
    let mut args = Vec::new();
    for (key, value) in table {
        let flag = format!("--{}", key.replace('_', "-"));
        let value = match value {
            toml::Value::Array(items) => items
                .iter()
                .map(|v| {
                    scalar(v)
                        .ok_or_else(|| invalid(format!("{key} holds a list of lists or tables")))
                })
                .collect::<Result<Vec<_>, _>>()?
                .join(","),
            v => scalar(v).ok_or_else(|| invalid(format!("{key} holds a table")))?,
        };
        args.push(format!("{flag}={value}"));
    }
    Ok(args)
}

/// A TOML scalar as a flag value.
fn scalar(v: &toml::Value) -> Option<String> {
    Some(match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::Array(_) | toml::Value::Table(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "workers = 2\nmodels = [\"resnet18\"]\nquick = true\nduration = 2.0\nsmall_batches = [1, 4]\n",
        )
        .unwrap();
        let mut args = file_args(&path).unwrap().flags;
        args.sort();
        assert_eq!(
            args,
            [
                "--duration=2",
                "--models=resnet18",
                "--quick=true",
                "--small-batches=1,4",
                "--workers=2"
            ]
        );
        let e = file_args(&dir.path().join("missing.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read config file"), "{e}");
        std::fs::write(
            &path,
            "workers = 2\n[\"triton-http@json\"]\ntriton_http_body = \"json\"\n",
        )
        .unwrap();
        assert_eq!(
            file_args(&path).unwrap(),
            FileArgs {
                flags: vec!["--workers=2".into()],
                own: vec![(
                    "triton-http@json".into(),
                    vec!["--triton-http-body=json".into()]
                )],
            }
        );
        std::fs::write(&path, "[tensorrt]\nx = 1\n").unwrap();
        let e = file_args(&path).unwrap_err().to_string();
        assert!(e.contains("table [tensorrt] is not a backend name"), "{e}");
        std::fs::write(&path, "workers = [[1]]\n").unwrap();
        let e = file_args(&path).unwrap_err().to_string();
        assert!(
            e.contains("c.toml is not valid") && e.contains("workers"),
            "{e}"
        );
    }

    #[test]
    fn the_config_path_is_found_in_either_spelling() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["--quiet", "--config", "a.toml"])),
            Some(PathBuf::from("a.toml"))
        );
        assert_eq!(
            config_path(&args(&["--config=b.toml"])),
            Some(PathBuf::from("b.toml"))
        );
        assert_eq!(config_path(&args(&["--", "--config", "c"])), None);
    }
}
