//! The fixtures a run needs: generated when absent, otherwise only checked.

use std::path::Path;

use fixtures::ModelId;

use crate::compare::Plan;
use crate::progress::Progress;
use crate::HarnessError;

/// Generates the fixtures of every model whose directory is absent (a fresh clone), and
/// otherwise only checks them: the harness never overwrites existing files. A file that
/// is missing, or whose size or SHA-256 differs from the manifest, is an error naming
/// the file and the command that rebuilds it (so corrupted reference weights are
/// named, not blamed on the backend that disagrees with them). Hashes are cached by
/// size and modification time ([`fixtures::verify_file`]).
///
/// Only the default directory is filled: a `--fixtures-dir` the user named must be
/// complete ([`complete`]), so a typo never writes a fresh set of weights somewhere.
pub fn prepare_fixtures(plan: &Plan, progress: &Progress) -> Result<(), HarnessError> {
    let dir = &plan.open.fixtures_dir;
    // A user's model (`--model-file`) is read from its own file by each backend.
    let models: Vec<ModelId> = plan
        .models
        .iter()
        .filter_map(|m| match m {
            crate::compare::Model::Fixture(id) => Some(*id),
            crate::compare::Model::User(_) => None,
        })
        .collect();
    if models.is_empty() {
        return Ok(());
    }
    let fixture_err = |e: fixtures::FixtureError| HarnessError::Fixtures(e.to_string());
    if *dir != fixtures::default_dir() {
        complete(dir, &models, plan.seed)?;
    }
    if let Ok(manifest) = fixtures::Manifest::read(dir) {
        if manifest.seed != plan.seed {
            return Err(HarnessError::Fixtures(format!(
                "the fixtures in {} were generated with seed {}, not {}; run `cargo run --release -p fixtures -- generate --force --seed {} --dir {}`",
                dir.display(),
                manifest.seed,
                plan.seed,
                plan.seed,
                dir.display()
            )));
        }
    }
    let absent: Vec<ModelId> = models
        .iter()
        .copied()
        .filter(|&m| !fixtures::ModelFiles::new(dir, m).dir.exists())
        .collect();
    if !absent.is_empty() {
        progress.note(&format!(
            "generating fixtures for {} in {}",
            absent
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", "),
            dir.display()
        ));
        fixtures::ensure(dir, &absent, plan.seed).map_err(fixture_err)?;
    }
    let manifest = fixtures::Manifest::read(dir).ok();
    for &model in &models {
        let files = fixtures::ModelFiles::new(dir, model);
        let recorded = manifest.as_ref().and_then(|m| m.model(model));
        for (path, entry) in [
            (&files.safetensors, recorded.map(|e| &e.safetensors)),
            (&files.onnx, recorded.map(|e| &e.onnx)),
        ] {
            match entry {
                Some(entry) => fixtures::verify_file(path, entry).map_err(fixture_err)?,
                None if !path.exists() => {
                    return Err(fixture_err(fixtures::FixtureError::Missing {
                        path: path.clone(),
                    }))
                }
                None => {}
            }
        }
    }
    Ok(())
}

/// Checks that a fixtures directory the user named holds the manifest and every file of
/// `models`: one sentence naming what is missing and the command that makes it.
pub fn complete(dir: &Path, models: &[ModelId], seed: u64) -> Result<(), HarnessError> {
    let make = format!(
        "make it with `cargo run --release -p fixtures -- generate --seed {seed} --dir {}` \
         (scripts/setup makes the default fixtures/generated, with Triton's and TF Serving's)",
        dir.display()
    );
    if !dir.is_dir() {
        return Err(HarnessError::Fixtures(format!(
            "--fixtures-dir {} does not exist; {make}",
            dir.display()
        )));
    }
    let mut missing = Vec::new();
    if !dir.join(fixtures::MANIFEST_FILE).is_file() {
        missing.push(fixtures::MANIFEST_FILE.to_string());
    }
    for &model in models {
        let files = fixtures::ModelFiles::new(dir, model);
        for path in [&files.safetensors, &files.onnx] {
            if !path.is_file() {
                let rel = path.strip_prefix(dir).unwrap_or(path);
                missing.push(rel.display().to_string());
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    Err(HarnessError::Fixtures(format!(
        "--fixtures-dir {} is incomplete (missing {}); {make}",
        dir.display(),
        missing.join(", ")
    )))
}
