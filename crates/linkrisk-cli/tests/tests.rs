//! End-to-end tests of the `linkrisk` binary, one module per area.

mod synth;
mod util;
