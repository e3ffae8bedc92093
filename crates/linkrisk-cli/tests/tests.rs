//! CLI integration tests: one harness, one module per area.

mod report;
mod util;
