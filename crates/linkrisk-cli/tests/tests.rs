//! CLI integration tests: one harness, one module per area.

mod relink;
mod util;
