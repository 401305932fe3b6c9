//! The layer order of the harness's modules, enforced by reading their `crate::` paths.
//!
//! Each module may use only modules of a lower layer, never one beside or above it:
//! statistics know nothing of loads, loads nothing of results, results nothing of
//! measuring or printing, reports nothing of the CLI. A type two layers need lives in
//! the lower one.

/// Layers from the bottom up; `lib.rs` sits on top and may use them all.
const LAYERS: &[&[&str]] = &[
    &[
        "alloc",
        "error",
        "progress",
        "agreement",
        "stats",
        "precision",
    ],
    &["load", "registry"],
    &["resources"],
    &["results"],
    &["compare"],
    &["report"],
    &["diff"],
    &["output"],
    &["cli"],
    &["config"],
];

/// Upward uses still waiting for their fix, each with the reason.
const ALLOWED: &[(&str, &str, &str)] = &[];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every module named after `crate::` in code (comments skipped), including each
/// first segment of a `crate::{a::X, b}` group.
fn uses(text: &str) -> Vec<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group: split at commas outside nested braces.
            let mut depth = 0;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        found.push(ident(&group[k..]));
                    }
                    _ => {}
                }
            }
        } else {
            found.push(ident(rest));
        }
    }
    found.retain(|m| m.chars().next().is_some_and(|c| c.is_ascii_lowercase()));
    found
}

fn files(path: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            files(&e.path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn no_module_uses_one_above_or_beside_it() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut violations = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let path = entry.path();
        let module = path.file_stem().unwrap().to_string_lossy().to_string();
        if module == "lib" || module == "main" || module == "layers" {
            continue;
        }
        let Some(own) = layer(&module) else {
            violations.push(format!("module {module} has no layer in layers.rs"));
            continue;
        };
        let mut all = Vec::new();
        files(&path, &mut all);
        for file in all {
            checked += 1;
            let text = std::fs::read_to_string(&file).unwrap();
            for used in uses(&text) {
                if used == module {
                    continue;
                }
                let allowed = ALLOWED
                    .iter()
                    .any(|(from, to, _)| *from == module && *to == used);
                match layer(&used) {
                    Some(l) if l < own || allowed => {}
                    _ => violations.push(format!(
                        "{} uses crate::{used}, which is not below {module}",
                        file.strip_prefix(&src).unwrap().display()
                    )),
                }
            }
        }
    }
    assert!(checked > 20, "read only {checked} files");
    assert!(violations.is_empty(), "{violations:#?}");
}

#[test]
fn use_lines_are_read() {
    let text = "use crate::{\n    load::{Load, Window},\n    stats,\n};\n\
                let x = crate::report::csv(r); // crate::lib\nuse crate::HarnessError;";
    assert_eq!(uses(text), ["load", "stats", "report"]);
}
