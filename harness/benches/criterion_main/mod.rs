//! `main` of the criterion benches: what `criterion_main!` does, after setting up the
//! harness binary's allocator as its own `main` does (freed memory kept), before any
//! other thread starts, so that what they time runs as it runs in the harness.

/// Runs the criterion `groups` (made by `criterion_group!`) and prints criterion's
/// summary.
pub fn run(groups: &[fn()]) {
    harness::alloc::keep_freed_memory();
    for group in groups {
        group();
    }
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
