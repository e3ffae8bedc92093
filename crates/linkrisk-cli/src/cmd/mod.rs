//! One file per subcommand: clap `Args` and a `run` that converts them into the library's
//! validated config, calls the library and prints.

pub mod accountant;
pub mod apply_heads;
pub mod attributes;
pub mod audit;
pub mod demo;
pub mod gate;
pub mod inspect;
pub mod merge;
pub mod mitigate;
pub mod privacy_audit;
pub mod reid;
pub mod relink;
pub mod report;
pub mod slurm;
pub mod synth;
pub mod train_heads;
pub mod utility;
