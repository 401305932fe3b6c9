//! The published schema is the generated one, and the types read back what they write.

use super::*;

const REGENERATE: &str = "cargo run -p harness -- schema > results/schema.json (or: UPDATE_SCHEMA=1 cargo test -p harness --lib results::tests)";

#[test]
fn the_committed_schema_is_the_generated_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/schema.json");
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        let text = serde_json::to_string_pretty(&schema()).expect("schema") + "\n";
        std::fs::write(&path, text).expect("results/schema.json is writable");
    }
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path).expect("results/schema.json is readable"),
    )
    .expect("results/schema.json is JSON");
    assert!(
        committed == schema(),
        "results/schema.json differs from the results types; regenerate it with `{REGENERATE}`"
    );
}

#[test]
fn the_schema_requires_every_row_field() {
    let s = schema();
    let row = &s["$defs"]["PointResult"];
    for field in [
        "model",
        "backend",
        "batch_size",
        "load",
        "latency_ms",
        "measurement",
    ] {
        assert!(
            row["required"]
                .as_array()
                .is_some_and(|r| r.iter().any(|f| f == field)),
            "{field}: {row}"
        );
    }
    assert!(row["properties"].get("samples").is_none(), "{row}");
    assert!(row["properties"].get("batch_class").is_none(), "{row}");
}
