//! Audits: each is a `Config -> Result<Report>` function over a validated cohort.
//! `relink` (paper 1, cross-modal re-linkage), `reid` (paper 2, patient re-identification),
//! `attributes` (demographic inference, stratified by re-identification), `utility`
//! (linear-probe macro AUROC over the 14 findings) and `mitigate` (DP projection heads: the
//! privacy-utility frontier).

pub mod attributes;
pub mod cross_fit;
pub mod mitigate;
pub mod privacy_audit;
pub mod probing;
pub mod reid;
pub mod relink;
#[cfg(test)]
mod test_cohort;
pub mod utility;

pub use mitigate::{run as mitigate, MitigateConfig, MitigateReport};
pub use reid::partial as reid_partial;
pub use reid::{reid, Attackers, ReidConfig, ReidReport};
pub use relink::partial as relink_partial;
pub use relink::{relink, AttackSide, Direction, MatchLevel, RelinkConfig, RelinkReport};
