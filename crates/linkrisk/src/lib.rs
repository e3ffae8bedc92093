//! linkrisk: measure and mitigate how far medical embedding models let de-identified data
//! be linked back to patients.
//!
//! The library holds all logic; the `linkrisk` binary only parses arguments and prints.
//! Data flows `cohort` (validated input) -> `engine` (blocked cosine ranking) -> `audit`
//! (relink, reid, attributes, utility) -> `metrics` (statistics with intervals) ->
//! `report` (serde structs and renderers). `train` and `privacy` produce DP projection heads
//! whose outputs are new cohorts. `synth` makes cohorts with known ground truth.

pub mod attack;
pub mod audit;
pub mod cleanup;
pub mod cohort;
pub mod engine;
pub mod error;
pub mod limits;
pub mod metrics;
pub mod privacy;
pub mod probe;
pub mod report;
pub mod rng;
pub mod runner;
pub mod shard;
pub mod synth;
pub mod train;

pub use error::{Error, Result};

/// The linkrisk version, recorded in every report and shard fingerprint.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
