//! Pure functions from [`crate::results::Results`] to text: the terminal page, the
//! Markdown report, the HTML report with its plots and perf_analyzer-style CSV. Nothing here measures or writes files.

mod breakdown;
mod cold_start;
mod csv;
mod grid;
mod html;
mod narrow;
mod page;
mod precision;
mod resources;
mod server_metrics;
mod table;
mod tails;
mod verdicts;

pub use breakdown::breakdown_table;
pub use cold_start::cold_start_table;
pub use csv::csv;
pub use grid::grid_table;
pub use html::html;
pub use narrow::{wrap, WIDTH};
pub use page::{page, run_page, unavailable_lines, Layout};
pub use precision::precision_table;
pub use resources::resources_table;
pub use server_metrics::server_metrics_table;
pub use table::{agreement_table, legend, ms, ratio_tables, FLAGS};
pub use tails::tails_tables;
pub use verdicts::verdict_summary;

/// The whole Markdown report (`report.md`): [`page`] in Markdown.
pub fn markdown(results: &crate::results::Results) -> String {
    page(results, Layout::Markdown)
}
