//! What a run produces: the JSON results document, the tables, and writing them.

mod breakdown;
mod csv;
mod results;
mod system;
mod table;
mod tails;
mod write;

pub use breakdown::breakdown_table;
pub use csv::csv;
pub use results::{
    BackendInfo, Breakdown, ErrorCount, MeasurementInfo, PointResult, Ratio, Results, Unavailable,
    SCHEMA_VERSION,
};
pub use system::System;
pub use table::{agreement_table, legend, markdown, ratio_tables, unavailable_lines, FLAGS};
pub use tails::tails_tables;
pub use write::{write_outputs, Written};
