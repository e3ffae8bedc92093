//! CLI integration tests: one harness, one module per area. `util` holds the shared
//! helpers (temporary cohorts, raw file writers, running the binary).

mod util;

mod cohort_input;
mod inspect;
