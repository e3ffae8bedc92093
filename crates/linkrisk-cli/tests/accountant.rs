//! `linkrisk accountant`: values agree with Opacus 1.6.0 (the reference examples),
//! calibration inverts the accountant, bad flags are named.

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use crate::util::{json_stdout, linkrisk};

#[test]
fn epsilon_json_matches_opacus() {
    let out = linkrisk()
        .args(["accountant", "--sample-rate", "0.004266666666666667", "--noise-multiplier", "1.1"])
        .args([
            "--steps",
            "3515",
            "--delta",
            "1e-5",
            "--json",
            "--accountant",
            "rdp",
            "--rdp-orders",
            "opacus",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v = json_stdout(&out);
    // Opacus 1.6.0 RDPAccountant: 1.281144275963647 at order 12.
    assert!((v["epsilon"].as_f64().unwrap() - 1.281144275963647).abs() < 1e-12, "{v}");
    assert_eq!(v["best_order"].as_f64().unwrap(), 12.0);
}

#[test]
fn epochs_are_steps_over_sample_rate_and_text_output() {
    // 10 epochs at q = 0.01 are 1000 steps: Opacus gives 2.1013652716430564 (order 7.8).
    linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--noise-multiplier", "1.0", "--epochs", "10"])
        .args(["--delta", "1e-5", "--accountant", "rdp", "--rdp-orders", "opacus"])
        .assert()
        .success()
        .stdout(contains("epsilon 2.101365271643").and(contains("best RDP order 7.8")));
}

#[test]
fn calibration_round_trips() {
    let out = linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--epsilon", "0.34", "--steps", "1000"])
        .args(["--delta", "6e-6", "--json", "--accountant", "rdp", "--rdp-orders", "opacus"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let sigma = json_stdout(&out)["noise_multiplier"].as_f64().unwrap();
    // Opacus get_noise_multiplier with epsilon_tolerance 1e-9: 3.7058125995099545.
    assert!((sigma - 3.7058125995099545).abs() < 1e-6, "{sigma}");
    let out = linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--noise-multiplier", &sigma.to_string()])
        .args([
            "--steps",
            "1000",
            "--delta",
            "6e-6",
            "--json",
            "--accountant",
            "rdp",
            "--rdp-orders",
            "opacus",
        ])
        .output()
        .unwrap();
    let eps = json_stdout(&out)["epsilon"].as_f64().unwrap();
    assert!(eps <= 0.34 && eps > 0.34 - 1e-6, "{eps}");
}

#[test]
fn bad_flags_are_named() {
    for (args, flag) in [
        (
            vec!["--sample-rate", "0", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"],
            "--sample-rate",
        ),
        (
            vec!["--sample-rate", "1.5", "--noise-multiplier", "1", "--steps", "10", "--delta", "1e-5"],
            "--sample-rate",
        ),
        (
            vec!["--sample-rate", "0.1", "--noise-multiplier", "-1", "--steps", "10", "--delta", "1e-5"],
            "--noise-multiplier",
        ),
        (vec!["--sample-rate", "0.1", "--noise-multiplier", "1", "--steps", "10", "--delta", "1"], "--delta"),
        (vec!["--sample-rate", "0.1", "--epsilon", "0", "--steps", "10", "--delta", "1e-5"], "--epsilon"),
        (
            vec!["--sample-rate", "0.1", "--noise-multiplier", "1", "--steps", "0", "--delta", "1e-5"],
            "--steps",
        ),
        (
            vec!["--sample-rate", "0.1", "--noise-multiplier", "1", "--epochs", "-2", "--delta", "1e-5"],
            "--epochs",
        ),
    ] {
        linkrisk().arg("accountant").args(&args).assert().code(2).stderr(contains(flag));
    }
    // Exactly one of --noise-multiplier / --epsilon.
    linkrisk()
        .args(["accountant", "--sample-rate", "0.1", "--steps", "10", "--delta", "1e-5"])
        .assert()
        .code(2)
        .stderr(contains("--noise-multiplier"));
    linkrisk()
        .args(["accountant", "--sample-rate", "0.1", "--steps", "10", "--delta", "1e-5"])
        .args(["--noise-multiplier", "1", "--epsilon", "1"])
        .assert()
        .code(2)
        .stderr(contains("cannot be used with"));
}

#[test]
fn pld_is_the_default_and_matches_dp_accounting() {
    // dp_accounting 0.6.0 PLDAccountant (crates/linkrisk/tests/data/dp_accounting): q 0.01,
    // sigma 2, 1000 steps, delta 6e-6 -> 0.6449440155710793; its RDP accountant 0.7084.
    let out = linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--noise-multiplier", "2", "--steps", "1000"])
        .args(["--delta", "6e-6", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = json_stdout(&out);
    assert!((v["epsilon"].as_f64().unwrap() - 0.6449440155710793).abs() < 1e-6, "{v}");
    assert_eq!(v["accountant"]["accountant"], "pld", "{v}");
    assert_eq!(v["accountant"]["discretization"].as_f64(), Some(1e-4), "{v}");
    assert!(v.get("best_order").is_none(), "PLD has no RDP order: {v}");
    // Calibration through the PLD needs less noise than through Opacus's RDP (3.7058 at
    // epsilon 0.34) and meets the target.
    let out = linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--epsilon", "0.34", "--steps", "1000"])
        .args(["--delta", "6e-6", "--json"])
        .output()
        .unwrap();
    let v = json_stdout(&out);
    let sigma = v["noise_multiplier"].as_f64().unwrap();
    assert!(sigma < 3.7058125995099545 * 0.97, "{v}");
    assert!(v["achieved_epsilon"].as_f64().unwrap() <= 0.34, "{v}");
}

#[test]
fn delta_must_be_below_one_over_the_privacy_units() {
    let base = ["accountant", "--sample-rate", "0.01", "--noise-multiplier", "2", "--steps", "100"];
    // delta 0.5 with 162 patients (the example) is refused, naming both numbers.
    linkrisk()
        .args(base)
        .args(["--delta", "0.5", "--privacy-units", "162"])
        .assert()
        .code(2)
        .stderr(contains("--delta 0.5").and(contains("162")).and(contains("--allow-large-delta")));
    // 1/162 itself is refused too (the bound is strict).
    linkrisk()
        .args(base)
        .args(["--delta", &(1.0f64 / 162.0).to_string(), "--privacy-units", "162"])
        .assert()
        .code(2);
    // Below it is fine, and --allow-large-delta lets an experiment through.
    linkrisk().args(base).args(["--delta", "1e-3", "--privacy-units", "162"]).assert().success();
    let out = linkrisk()
        .args(base)
        .args(["--delta", "0.5", "--privacy-units", "162", "--allow-large-delta", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(json_stdout(&out)["epsilon"].as_f64().unwrap() >= 0.0, "epsilon is never negative");
}

#[test]
fn opacus_grid_floor_and_extended_grid_reach() {
    // Opacus's orders stop at 63: epsilon 0.1 at delta 6e-6 is unreachable with any noise.
    linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--epsilon", "0.1", "--steps", "1000"])
        .args(["--delta", "6e-6", "--accountant", "rdp", "--rdp-orders", "opacus"])
        .assert()
        .code(2)
        .stderr(contains("out of reach"));
    for accountant in ["rdp", "pld"] {
        let out = linkrisk()
            .args(["accountant", "--sample-rate", "0.01", "--epsilon", "0.05", "--steps", "1000"])
            .args(["--delta", "6e-6", "--json", "--accountant", accountant])
            .output()
            .unwrap();
        assert!(out.status.success(), "{accountant}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(json_stdout(&out)["achieved_epsilon"].as_f64().unwrap() <= 0.05);
    }
    linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--noise-multiplier", "2", "--steps", "10"])
        .args(["--delta", "1e-5", "--pld-discretization", "0"])
        .assert()
        .code(2)
        .stderr(contains("--pld-discretization"));
}
