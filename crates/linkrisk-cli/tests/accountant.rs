//! `linkrisk accountant`: values agree with Opacus 1.6.0 (the reference examples),
//! calibration inverts the accountant, bad flags are named.

use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

use crate::util::{json_stdout, linkrisk};

#[test]
fn epsilon_json_matches_opacus() {
    let out = linkrisk()
        .args(["accountant", "--sample-rate", "0.004266666666666667", "--noise-multiplier", "1.1"])
        .args(["--steps", "3515", "--delta", "1e-5", "--json"])
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
        .args(["--delta", "1e-5"])
        .assert()
        .success()
        .stdout(contains("epsilon 2.101365271643").and(contains("best RDP order 7.8")));
}

#[test]
fn calibration_round_trips() {
    let out = linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--epsilon", "0.34", "--steps", "1000"])
        .args(["--delta", "6e-6", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let sigma = json_stdout(&out)["noise_multiplier"].as_f64().unwrap();
    // Opacus get_noise_multiplier with epsilon_tolerance 1e-9: 3.7058125995099545.
    assert!((sigma - 3.7058125995099545).abs() < 1e-6, "{sigma}");
    let out = linkrisk()
        .args(["accountant", "--sample-rate", "0.01", "--noise-multiplier", &sigma.to_string()])
        .args(["--steps", "1000", "--delta", "6e-6", "--json"])
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
