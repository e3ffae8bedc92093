//! Calibration of the synthetic cohorts to the papers' magnitudes (docs/METHODS.md,
//! "Calibration to the papers"): generate a preset's cohort, optionally with the knobs of
//! the generative model replaced, and print the figures the calibration test bands.
//!
//! `cargo run --release -p linkrisk --example synth_calibration -- paper1|paper2 [MODEL_JSON]
//! [SPECIALIZATION] [PATIENTS]` where MODEL_JSON is a `SynthModel` (or `-` for the preset's).

use linkrisk::audit::attributes::{attributes_by_reid, Attribute, AttributesConfig};
use linkrisk::audit::reid::{reid, Attackers, ReidConfig};
use linkrisk::audit::{relink, Direction, RelinkConfig};
use linkrisk::engine::NoProgress;
use linkrisk::synth::{generate, Preset, SynthModel};

fn main() -> linkrisk::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let preset = Preset::parse(args.first().map_or("paper1", String::as_str))?;
    let mut config = preset.config();
    if let Some(json) = args.get(1).filter(|a| *a != "-") {
        config.model = serde_json::from_str::<SynthModel>(json).expect("a SynthModel as JSON");
    }
    if let Some(s) = args.get(2) {
        config.specialization = s.parse().expect("a specialization");
    }
    if let Some(p) = args.get(3) {
        config.patients = p.parse().expect("a patient count");
    }
    let started = std::time::Instant::now();
    let cohort = generate(&config)?.to_cohort()?;
    let test = cohort.metadata.rows_in_split("test").map_or(0, |r| r.len());
    println!("{} s={} records {} test {} ({:.1}s)", preset.name(), config.specialization, cohort.len(), test, started.elapsed().as_secs_f64());
    let pools: Vec<usize> = [10, 100, 1000, 10_000].into_iter().filter(|&n| n <= test).collect();
    let relink_config = RelinkConfig {
        direction: Direction::QueryToGallery,
        pool_sizes: pools,
        trials: 3,
        hard_negatives: true,
        bootstrap_replicates: 0,
        ..RelinkConfig::default()
    };
    let report = relink(&cohort, &relink_config, &NoProgress)?;
    let f = &report.forward;
    println!(
        "relink full: R@1 {:.5} lift {:.1} (n {})",
        f.full.recall_at_1, f.full.lift_at_1, f.full.n_queries
    );
    for p in &f.pools {
        println!(
            "relink {:>17} N={:>5}: R@1 {:.4} [{:.4}, {:.4}] lift {:.1} (expected {:.4})",
            p.kind, p.pool_size, p.recall_at_1, p.ci95_recall_at_1[0], p.ci95_recall_at_1[1], p.lift_at_1,
            p.expected_recall_at_1
        );
    }
    println!("relink {:.1}s", started.elapsed().as_secs_f64());
    let reid_config = ReidConfig { attackers: Attackers::Both, bootstrap_replicates: 0, ..ReidConfig::default() };
    let r = reid(&cohort, &reid_config, &NoProgress)?;
    for a in &r.attackers {
        let v = serde_json::to_value(&a.figures).unwrap();
        println!("reid {:<18} rank-1 {} mAP {}", a.attacker, v["rank_1"], v["map"]);
    }
    println!("reid {:.1}s", started.elapsed().as_secs_f64());
    let attributes_config = AttributesConfig {
        targets: vec![Attribute::Sex],
        ..AttributesConfig::default()
    };
    let a = attributes_by_reid(&cohort, &attributes_config, &ReidConfig { attackers: Attackers::NearestNeighbour, bootstrap_replicates: 0, ..ReidConfig::default() }, &NoProgress)?;
    let v = serde_json::to_value(&a.attributes).unwrap();
    println!("attributes {}", serde_json::to_string(&v).unwrap());
    println!("done {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}
