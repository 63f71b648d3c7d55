//! The head-to-head comparison: engines, workloads and the report.

pub mod engines;
pub mod report;
pub mod resources;
pub mod workloads;
