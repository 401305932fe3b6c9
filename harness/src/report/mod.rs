//! What a run produces: the JSON results document, the tables, and writing them.

mod breakdown;
mod results;
mod system;
mod table;
mod write;

pub use breakdown::breakdown_table;
pub use results::{
    BackendInfo, Breakdown, ErrorCount, PointResult, Ratio, Results, Unavailable, SCHEMA_VERSION,
};
pub use system::System;
pub use table::{agreement_table, markdown, ratio_tables, unavailable_lines};
pub use write::{write_outputs, Written};
