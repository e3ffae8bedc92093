//! Statistics, each with its interval: retrieval metrics (Recall@k, MRR, median rank,
//! chance, lift), Wilson and patient-bootstrap intervals, AUROC with DeLong variance.

pub mod auroc;
pub mod average_precision;
pub mod bootstrap;
pub mod interval;
pub mod retrieval;

pub use auroc::{
    auroc, auroc_ci, delong, macro_auroc, AurocDifference, AurocInterval, DelongAuroc, MacroAuroc,
};
pub use interval::{wilson, Estimate};
