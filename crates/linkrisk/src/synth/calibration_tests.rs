//! The calibration test (issue 21): the presets land in stated bands around the papers'
//! figures. The published figures and the bands are the table of docs/METHODS.md
//! ("Calibration to the papers"); change both together. Seeded (seed 0 of each preset), so
//! the figures are fixed; the bands are wide enough that a change of seed stays inside them
//! (the table gives the intervals) and narrow enough that the uncalibrated (classic) model
//! falls outside them (`the_classic_model_misses_the_bands`).

use std::sync::OnceLock;

use crate::audit::attributes::{attributes_by_reid, Attribute, AttributesConfig};
use crate::audit::reid::{reid, Attackers, ReidConfig};
use crate::audit::{relink, Direction, RelinkConfig, RelinkReport};
use crate::cohort::Cohort;
use crate::engine::NoProgress;

use super::{generate, Preset, SynthConfig, SynthModel};

/// Paper 1 (arXiv 2606.02276): Recall@1 about 15x chance at N = 100.
const PAPER1_LIFT_100: f64 = 15.0;
/// Paper 1: about 50x chance (Recall@1 near 0.5%) at N = 10,000.
const PAPER1_LIFT_10000: f64 = 50.0;
/// Band of the specialist's lift at N = 100 (random pools): within a factor of 2 of the
/// paper's. The synthetic model's lift grows about 7x from N = 100 to N = 10,000 where the
/// paper's grows about 3.3x (its tail of easy queries is heavier), so the calibration sits
/// between the two figures and a factor of 2 holds both (docs/METHODS.md).
const BAND_LIFT_100: (f64, f64) = (7.5, 30.0);
/// Band of the specialist's lift at N = 10,000: within a factor of 2.
const BAND_LIFT_10000: (f64, f64) = (25.0, 100.0);
/// Paper 2 (Nebbia et al. 2025), chest X-ray, image level: nearest-neighbour Rank-1.
const PAPER2_NN: f64 = 0.259;
/// Paper 2: the trained re-ID model's Rank-1.
const PAPER2_TRAINED: f64 = 0.637;
/// Band of the nearest-neighbour Rank-1 (the paper's figure +- 5 points).
const BAND_NN: (f64, f64) = (0.209, 0.309);
/// Band of the trained (linear-metric) attacker's Rank-1 (+- 7 points).
const BAND_TRAINED: (f64, f64) = (0.567, 0.707);
/// Paper 2: sex AUROC for re-identified vs not re-identified fundus images.
const PAPER2_SEX_AUROC: (f64, f64) = (0.821, 0.768);
/// Band of the AUROC gap (re-identified minus not): the paper's +5.3 points, 2 to 10.
const BAND_SEX_GAP: (f64, f64) = (0.02, 0.10);

fn cohort(config: &SynthConfig) -> Cohort {
    generate(config).unwrap().to_cohort().unwrap()
}

/// Image -> report on the test split: the exact expected Recall@1 of random pools at 100
/// and 10,000 (from the full ranks) and pathology-matched pools of 100.
fn relink_report(cohort: &Cohort) -> RelinkReport {
    let config = RelinkConfig {
        direction: Direction::QueryToGallery,
        pool_sizes: vec![100, 10_000],
        trials: 1,
        hard_negatives: true,
        bootstrap_replicates: 0,
        ..RelinkConfig::default()
    };
    relink(cohort, &config, &NoProgress).unwrap()
}

/// (random-pool expected lift at 100, at 10,000, pathology-matched lift at 100, full lift,
/// full Wilson lower bound over chance).
fn lifts(report: &RelinkReport) -> (f64, f64, f64, f64, f64) {
    let pool = |size: usize, kind: &str| {
        report.forward.pools.iter().find(|p| p.pool_size == size && p.kind == kind).unwrap()
    };
    let expected_lift = |size: usize| pool(size, "random").expected_recall_at_1 * size as f64;
    let full = &report.forward.full;
    (
        expected_lift(100),
        expected_lift(10_000),
        pool(100, "pathology_matched").lift_at_1,
        full.lift_at_1,
        full.ci95_recall_at_1[0] / full.chance_at_1,
    )
}

fn paper1() -> &'static (RelinkReport, RelinkReport) {
    static REPORTS: OnceLock<(RelinkReport, RelinkReport)> = OnceLock::new();
    REPORTS.get_or_init(|| {
        let specialist = Preset::Paper1.config();
        let general = SynthConfig { specialization: 0.0, ..specialist.clone() };
        (relink_report(&cohort(&specialist)), relink_report(&cohort(&general)))
    })
}

#[test]
fn paper1_preset_links_at_the_published_lifts() {
    let (specialist, general) = paper1();
    assert!(specialist.forward.n_gallery >= 10_000, "pools of 10,000 need a test split that large");
    let (lift_100, lift_10000, matched_100, full, full_low) = lifts(specialist);
    eprintln!(
        "paper1: lift@100 {lift_100:.1} (paper {PAPER1_LIFT_100}), lift@10000 {lift_10000:.1} (paper \
         {PAPER1_LIFT_10000}), matched@100 {matched_100:.1}, full {full:.1} (lower bound {full_low:.1})"
    );
    assert!((BAND_LIFT_100.0..=BAND_LIFT_100.1).contains(&lift_100), "lift@100 {lift_100}");
    assert!((BAND_LIFT_10000.0..=BAND_LIFT_10000.1).contains(&lift_10000), "lift@10000 {lift_10000}");
    assert!(matched_100 < 0.85 * lift_100 && matched_100 > 3.0, "pathology-matched lift@100 {matched_100}");
    assert!(full_low > 2.0, "full database: Wilson lower bound {full_low}x chance");
    let (general_100, general_10000, ..) = lifts(general);
    eprintln!("general model: lift@100 {general_100:.1}, lift@10000 {general_10000:.1}");
    assert!(general_100 < 0.5 * lift_100, "general model lift@100 {general_100} vs specialist {lift_100}");
    assert!(general_10000 < 0.5 * lift_10000, "general lift@10000 {general_10000}");
}

#[test]
fn paper2_preset_reidentifies_at_the_published_rates_and_reidentified_records_leak_sex_more() {
    let cohort = cohort(&Preset::Paper2.config());
    let config = ReidConfig { attackers: Attackers::Both, bootstrap_replicates: 0, ..ReidConfig::default() };
    let report = reid(&cohort, &config, &NoProgress).unwrap();
    let rank_1 = |name: &str| {
        report.attackers.iter().find(|a| a.attacker == name).map(|a| a.figures.rank_1).unwrap()
    };
    let (nn, trained) = (rank_1("nearest-neighbour"), rank_1("linear-metric"));
    eprintln!("paper2: Rank-1 nearest neighbour {nn:.3} (paper {PAPER2_NN}), trained {trained:.3} (paper {PAPER2_TRAINED})");
    assert!((BAND_NN.0..=BAND_NN.1).contains(&nn), "nearest-neighbour Rank-1 {nn}");
    assert!((BAND_TRAINED.0..=BAND_TRAINED.1).contains(&trained), "trained Rank-1 {trained}");

    let attributes = AttributesConfig { targets: vec![Attribute::Sex], ..AttributesConfig::default() };
    let nn_flags = ReidConfig { attackers: Attackers::NearestNeighbour, ..config };
    let report = attributes_by_reid(&cohort, &attributes, &nn_flags, &NoProgress).unwrap();
    let sex = &report.attributes.0.iter().find(|(name, _)| name == "sex").unwrap().1;
    let strata = sex.stratified.as_ref().unwrap();
    let (yes, no) = (strata.reidentified.as_ref().unwrap(), strata.not_reidentified.as_ref().unwrap());
    let difference = strata.difference.as_ref().unwrap();
    eprintln!(
        "paper2: sex AUROC re-identified {:.3} vs not {:.3} (paper {} vs {}), p = {:.2e}",
        yes.auroc, no.auroc, PAPER2_SEX_AUROC.0, PAPER2_SEX_AUROC.1, difference.p_value
    );
    let gap = yes.auroc - no.auroc;
    assert!((BAND_SEX_GAP.0..=BAND_SEX_GAP.1).contains(&gap), "sex AUROC gap {gap}");
    assert!(difference.p_value < 0.01, "the gap is significant: {difference:?}");
    assert!((0.72..0.88).contains(&sex.auroc), "overall sex AUROC {}", sex.auroc);
}

/// Without the calibrated mechanisms the same sizes miss the bands: the trained attacker
/// re-identifies nearly everyone and the attribute gap vanishes (issue 21's starting point).
#[test]
fn the_classic_model_misses_the_bands() {
    let config = SynthConfig { model: SynthModel::CLASSIC, ..Preset::Paper2.config() };
    let cohort = cohort(&SynthConfig { patients: 2000, ..config });
    let reid_config = ReidConfig { attackers: Attackers::Both, bootstrap_replicates: 0, ..ReidConfig::default() };
    let report = reid(&cohort, &reid_config, &NoProgress).unwrap();
    let trained = report.attackers.iter().find(|a| a.attacker == "linear-metric").unwrap().figures.rank_1;
    assert!(trained > BAND_TRAINED.1, "classic model: trained Rank-1 {trained}");
}
