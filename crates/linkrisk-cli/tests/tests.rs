//! CLI integration tests: one harness, one module per area. `util` holds the shared
//! helpers (temporary cohorts, raw file writers, running the binary).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

mod util;

mod accountant;
mod attacks;
mod audit;
mod cohort_input;
mod corpus;
mod demo;
mod gate;
mod hardening;
mod inspect;
mod mitigate;
mod probes;
mod reid;
mod reid_shard;
mod relink;
mod report;
mod shard;
mod synth;
mod train_heads;
