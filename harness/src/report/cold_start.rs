//! What a backend costs before its first answer: per backend, the time from opening
//! (engine load, server start) until ready, the latency of its first request after
//! ready (the agreement check's first request), and the resident memory once loaded.

use tabled::builder::Builder;

use crate::report::table::{ms, titled};
use crate::results::{Results, AGREEMENT_BATCH};

/// The cold start table under a title line, or an empty string without backends.
/// Backends opened at several worker counts have one row per count.
pub fn cold_start_table(results: &Results, markdown: bool) -> String {
    if results.backends.is_empty() {
        return String::new();
    }
    let mut builder = Builder::default();
    builder.push_record([
        "backend",
        "workers",
        "ready in ms",
        "first request ms",
        "loaded MiB",
    ]);
    for b in &results.backends {
        builder.push_record([
            b.name.clone(),
            b.workers.to_string(),
            ms(b.cold_start_ms),
            b.first_request_ms.map_or("-".into(), ms),
            b.loaded_memory_mb
                .map_or("not visible".into(), |m| format!("{m:.0}")),
        ]);
    }
    let title = format!(
        "Cold start: open until ready, the first request after ready (batch {AGREEMENT_BATCH}), resident memory once loaded"
    );
    titled(builder, markdown, "Cold start", &title)
}
