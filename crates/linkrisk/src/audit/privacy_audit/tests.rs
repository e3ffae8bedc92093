//! The one-run bound against the paper's algorithm run with SciPy, the guesses, the
//! membership figures, and the audit end to end: power on broken DP-SGD, no violation on
//! real DP-SGD, membership AUROC of non-private vs DP heads.

use super::membership::{figures, lira_offline};
use super::one_run::{audit, epsilon_lower_bound, guess_grid, p_value};
use super::*;

/// crates/linkrisk/tests/data/one_run_audit/reference.csv, from reference.py (SciPy 1.17.1).
fn reference_rows() -> Vec<(String, Vec<f64>)> {
    let text = include_str!("../../../tests/data/one_run_audit/reference.csv");
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("kind"))
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            let nums =
                cells[1..].iter().map(|c| if c.is_empty() { f64::NAN } else { c.parse().unwrap() }).collect();
            (cells[0].to_string(), nums)
        })
        .collect()
}

#[test]
fn p_values_and_lower_bounds_match_the_paper_s_algorithm_under_scipy() {
    let rows = reference_rows();
    assert_eq!(rows.len(), 16);
    for (kind, v) in rows {
        let (m, r, correct) = (v[0] as u64, v[1] as u64, v[2] as u64);
        match kind.as_str() {
            "p_value" => {
                let got = p_value(m, r, correct, v[3], v[4]);
                assert!(
                    (got - v[6]).abs() <= 1e-9 * v[6].max(1e-300) + 1e-15,
                    "p_value{v:?}: {got} vs {}",
                    v[6]
                );
            }
            _ => {
                let got = epsilon_lower_bound(m, r, correct, v[4], v[5]);
                assert!((got - v[6]).abs() <= 2e-9, "eps_lb{v:?}: {got} vs {}", v[6]);
            }
        }
    }
}

#[test]
fn perfect_guesses_reject_small_epsilons_and_coin_flips_reject_none() {
    let m = 1000;
    // Scores that order the included canaries first: every guess is right.
    let included: Vec<bool> = (0..m).map(|i| i % 2 == 0).collect();
    let perfect: Vec<f64> = included.iter().map(|&b| if b { 1.0 } else { 0.0 }).collect();
    let a = audit(&perfect, &included, 6e-6, 0.95);
    assert_eq!(a.by_guesses.len(), guess_grid(m).len());
    assert!(a.by_guesses.iter().all(|g| g.correct == g.guesses));
    // 400 of 400 correct at level 0.0125: beyond 4.
    assert!(a.epsilon_lower_bound > 4.0, "{a:?}");
    assert_eq!(a.best_k, 200);
    // Scores unrelated to the coins: no bound.
    let mut rng = crate::rng::stream(3, "test", 0);
    let noise: Vec<f64> = (0..m).map(|_| rng.random::<f64>()).collect();
    let n = audit(&noise, &included, 6e-6, 0.95);
    assert!(n.epsilon_lower_bound < 0.3, "{n:?}");
}

#[test]
fn tpr_at_fpr_counts_members_above_the_held_out_quantile() {
    // 1,000 held-out scores 0..999, members 500..1499: at FPR 1% the threshold is the
    // 11th-highest held-out score (989): 10 false positives, members above 989: 510.
    let mut scores: Vec<f64> = (0..1000).map(f64::from).collect();
    let mut member = vec![false; 1000];
    scores.extend((500..1500).map(f64::from));
    member.extend(vec![true; 1000]);
    let f = figures("loss", &scores, &member, 0.95, &[0.001, 0.01]).unwrap();
    assert_eq!(f.tpr_at_fpr[1].fpr, 0.01);
    assert!((f.tpr_at_fpr[1].tpr.value - 0.510).abs() < 1e-12, "{:?}", f.tpr_at_fpr[1]);
    assert_eq!(f.tpr_at_fpr[0].fpr, 0.001);
    assert!((f.tpr_at_fpr[0].tpr.value - 0.501).abs() < 1e-12);
    // AUROC: pairs with the member below the held-out score, sum over m = 500..999 of
    // (999 - m) = 124,750, plus half the 500 ties: 1 - 125,000 / 1e6.
    assert!((f.auroc.value - 0.875).abs() < 1e-9, "{}", f.auroc.value);
}

#[test]
fn lira_calibrates_each_patient_against_its_out_shadows() {
    // Patient 0 always scores high (an easy example), patient 1 low; the target model
    // lifts patient 1 above its OUT mean only.
    let target = vec![-0.1, -1.0];
    let shadows = vec![vec![-0.1, -3.0], vec![-0.1, -3.1], vec![-0.1, -2.9]];
    let inside = vec![vec![false, false]; 3];
    let s = lira_offline(&target, &shadows, &inside);
    assert!(s[1] > s[0] + 1.0, "{s:?}");
    assert!(s[0].abs() < 1e-6, "{s:?}");
}

fn audit_config(epsilons: Vec<f64>, fault: Option<Fault>) -> PrivacyAuditConfig {
    let mut c = PrivacyAuditConfig {
        epsilons,
        canaries: 200,
        shadows: 0,
        reference_reports: 200,
        fault,
        ..Default::default()
    };
    c.training.public_pca_rank = 0;
    c.training.public_training.epochs = 5.0;
    c.training.non_private_training.epochs = 40.0;
    c.training.non_private_training.dim = 16;
    c.training.private_training.epochs = 40.0;
    c.training.private_training.dim = 16;
    c.training.public_training.dim = 16;
    c.training.delta = 1e-4;
    c
}

#[test]
fn the_one_run_audit_has_power_on_broken_dp_sgd_and_stays_below_the_claim_on_real_dp_sgd() {
    let cohort = crate::train::tests::correlated_cohort(300, 100, 0.5, 11);
    let broken = run(&cohort, &audit_config(vec![1.0], Some(Fault::NoNoise)), &mut |_| {}).unwrap();
    let real = run(&cohort, &audit_config(vec![1.0, f64::INFINITY], None), &mut |_| {}).unwrap();
    let (b, dp, np) = (&broken.points[0], &real.points[0], &real.points[1]);
    eprintln!(
        "claimed 1: broken lower bound {:.3}, DP lower bound {:.3} (accountant {:?}), non-private {:.3}; MI AUROC DP {:.3}, non-private {:.3}",
        b.one_run.epsilon_lower_bound, dp.one_run.epsilon_lower_bound, dp.accountant_epsilon,
        np.one_run.epsilon_lower_bound, dp.membership[0].auroc.value, np.membership[0].auroc.value
    );
    assert!(b.privacy.fault == Some(Fault::NoNoise) && !b.privacy.private);
    assert!(b.one_run.epsilon_lower_bound > 1.0 && b.lower_bound_exceeds_claim, "{:?}", b.one_run);
    assert!(dp.one_run.epsilon_lower_bound <= dp.accountant_epsilon.unwrap(), "{:?}", dp.one_run);
    assert!(!dp.lower_bound_exceeds_claim);
    assert!(np.membership[0].auroc.value > dp.membership[0].auroc.value);
    assert_eq!(dp.one_run.canaries, 200);
}
