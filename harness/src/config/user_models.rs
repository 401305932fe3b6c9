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
