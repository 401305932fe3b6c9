//! The user's models of a run (`--model-file`): each file read, named and given its inputs.

use std::path::PathBuf;

use fixtures::ModelId;

use crate::compare::Model;
use crate::HarnessError;

/// The user's models (`--model-file`), each read from its file and given its inputs:
/// a corrupt file, two files of one name, or inputs that do not fit are one sentence.
pub(super) fn user_models(
    files: &[PathBuf],
    data: Option<fixtures::user::InputData>,
    shapes: &[(String, Vec<usize>)],
) -> Result<Vec<Model>, HarnessError> {
    let shapes: std::collections::BTreeMap<String, Vec<usize>> = shapes.iter().cloned().collect();
    let mut out: Vec<Model> = Vec::new();
    for path in files {
        if !path.is_file() {
            return Err(HarnessError::Config(format!(
                "--model-file {} is not a file",
                path.display()
            )));
        }
        let model = fixtures::user::UserModel::read(path)
            .map_err(|e| HarnessError::Config(e.to_string()))?;
        if model.name.parse::<ModelId>().is_ok() || out.iter().any(|m| m.name() == model.name) {
            return Err(HarnessError::Config(format!(
                "--model-file {} is named {:?} like another model of the run; rename the file",
                path.display(),
                model.name
            )));
        }
        // One model's --shape entries may name inputs of another.
        let own: std::collections::BTreeMap<String, Vec<usize>> = shapes
            .iter()
            .filter(|(k, _)| model.inputs.iter().any(|i| &i.name == *k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let w = fixtures::user::UserWorkload::new(model, data.clone().unwrap_or_default(), &own)
            .map_err(|e| HarnessError::Config(e.to_string()))?;
        out.push(Model::User(std::sync::Arc::new(w)));
    }
    if let Some((name, _)) = shapes.iter().find(|(k, _)| {
        !out.iter().any(|m| match m {
            Model::User(w) => w.model.inputs.iter().any(|i| &i.name == *k),
            Model::Fixture(_) => false,
        })
    }) {
        return Err(HarnessError::Config(format!(
            "--shape names {name:?}, which is not an input of any --model-file model"
        )));
    }
    Ok(out)
}

/// The TorchScript files of the user's models (`--torchscript`), by model name: each a
/// file of TorchScript's format (a zip archive, as `torch.jit.save` writes) named like
/// a `--model-file` model (`model_files`, name to ONNX file); anything else is one
/// sentence.
pub(super) fn torchscript(
    files: &[PathBuf],
    model_files: &std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, HarnessError> {
    let mut out = std::collections::BTreeMap::new();
    for path in files {
        let bad =
            |why: String| HarnessError::Config(format!("--torchscript {}: {why}", path.display()));
        let mut magic = [0u8; 4];
        let read = std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic));
        match read {
            Err(e) if !path.exists() => return Err(bad(format!("no such file ({e})"))),
            Err(_) if !path.is_file() => return Err(bad("not a file".into())),
            Err(e) => return Err(bad(format!("cannot be read as TorchScript ({e})"))),
            Ok(()) if &magic != b"PK\x03\x04" => {
                return Err(bad(
                    "not TorchScript (torch.jit.save writes a zip archive; this file is not one)"
                        .into(),
                ))
            }
            Ok(()) => {}
        }
        let name = fixtures::user::name_of(path);
        pair(&mut out, name, path, model_files).map_err(bad)?;
    }
    Ok(out)
}

/// Adds `name` (a `--model-file` model's, else an error) with `path` to `out`, once.
fn pair(
    out: &mut std::collections::BTreeMap<String, String>,
    name: String,
    path: &std::path::Path,
    model_files: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    if !model_files.contains_key(&name) {
        let known: Vec<&str> = model_files.keys().map(String::as_str).collect();
        return Err(format!(
            "it names model {name:?}, which no --model-file gives (models: {}); name it like \
             the model's ONNX file",
            known.join(", ")
        ));
    }
    match out.insert(name.clone(), path.display().to_string()) {
        Some(_) => Err(format!("model {name:?} is given twice in this format")),
        None => Ok(()),
    }
}

/// The SavedModel base paths of the user's models (`--savedmodel`), by model name
/// (absolute): each a directory of numbered SavedModel versions named like a
/// `--model-file` model; anything else is one sentence.
pub(super) fn savedmodel(
    dirs: &[PathBuf],
    model_files: &std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, HarnessError> {
    let mut out = std::collections::BTreeMap::new();
    for dir in dirs {
        let bad =
            |why: String| HarnessError::Config(format!("--savedmodel {}: {why}", dir.display()));
        fixtures::tfserving::savedmodel_versions(dir).map_err(bad)?;
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let abs = std::path::absolute(dir).map_err(|e| bad(e.to_string()))?;
        pair(&mut out, name, &abs, model_files).map_err(bad)?;
    }
    Ok(out)
}
