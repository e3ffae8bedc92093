//! Audits: each is a `Config -> Result<Report>` function over a validated cohort.
//! `relink` (paper 1, cross-modal re-linkage), `reid` (paper 2, patient re-identification),
//! `attributes` (demographic inference, stratified by re-identification) and `utility`
//! (linear-probe macro AUROC over the 14 findings).

pub mod attributes;
pub mod probing;
pub mod reid;
pub mod relink;
pub mod relink_partial;
#[cfg(test)]
mod test_cohort;
pub mod utility;

pub use reid::{reid, Attackers, ReidConfig, ReidReport};
pub use relink::{relink, Direction, MatchLevel, RelinkConfig, RelinkReport};
