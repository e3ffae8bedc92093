//! Integration tests of the `linkrisk` binary: one harness, one module per area.

mod probes;
mod util;
