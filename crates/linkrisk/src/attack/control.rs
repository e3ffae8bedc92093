//! Control baselines (in the spirit of anonymeter, Giomi et al. 2023): every attack is also
//! scored on a control in which the true link is absent, so that success an attack gets
//! from artefacts (hubs, ties, its own biases) is not mistaken for linkage.
//!
//! The control: query q's target is replaced by a *decoy*, the target of another query
//! pi(q), where pi is a seeded random permutation of the queries repaired so that no decoy
//! is a positive or an exclusion of q (the decoy never belongs to q's study or patient).
//! The query's own positives and exclusions are removed from its candidates, so the true
//! link is not among them. The attack itself is unchanged — same scores, same fitted
//! parameters — only the truth it is scored against is a decoy. An attack with no access to
//! the link scores chance on the control (1/N in a pool of N), up to its biases.
//!
//! Normalized risk = (attack - control) / (1 - control), anonymeter's residual success
//! rate; its interval propagates the two Wilson half-widths to first order (the delta
//! method, as anonymeter's `residual_success` does), treating the two rates as independent.

use rand::Rng;

use crate::engine::Targets;
use crate::error::{Error, Result};
use crate::metrics::Estimate;
use crate::rng;

/// The seeded decoy permutation of a ranking task: `decoy_of[q]` is the query whose target
/// becomes q's control target.
#[derive(Debug, Clone)]
pub struct Decoys {
    /// pi(q) for each query with an anchor; `u32::MAX` for queries without one.
    pub decoy_of: Vec<u32>,
    /// The control targets: q's positives are pi(q)'s, its exclusions are its own special
    /// items plus pi(q)'s exclusions.
    pub targets: Targets,
}

/// Random repairs tried per query before giving up.
const REPAIR_ATTEMPTS: usize = 10_000;

/// Build the control of `targets` from the stream (`seed`, `control-decoys`).
pub fn decoy_targets(targets: &Targets, seed: u64) -> Result<Decoys> {
    let n = targets.n_queries();
    let with_anchor: Vec<u32> = (0..n).filter(|&q| targets.anchor(q).is_some()).map(|q| q as u32).collect();
    let m = with_anchor.len();
    if m < 2 {
        return Err(Error::config("the control baseline needs at least two queries with a true match"));
    }
    let mut rng = rng::stream(seed, "control-decoys", 0);
    // pi over positions 0..m of `with_anchor`: a random permutation, then repaired.
    let mut pi: Vec<usize> = (0..m).collect();
    for i in (1..m).rev() {
        pi.swap(i, rng.random_range(0..=i));
    }
    let conflict = |a: usize, b: usize| -> bool {
        let (qa, qb) = (with_anchor[a] as usize, with_anchor[b] as usize);
        if qa == qb {
            return true;
        }
        let (special, _) = targets.special(qa);
        targets.positives(qb).any(|g| special.binary_search(&g).is_ok())
    };
    for a in 0..m {
        let mut attempts = 0;
        while conflict(a, pi[a]) {
            let b = rng.random_range(0..m);
            if !conflict(a, pi[b]) && !conflict(b, pi[a]) {
                pi.swap(a, b);
                break;
            }
            attempts += 1;
            if attempts == REPAIR_ATTEMPTS {
                return Err(Error::config(format!(
                    "control baseline: query {} could not be given a decoy outside its own study or patient; \
                     one patient holds most of the records",
                    with_anchor[a]
                )));
            }
        }
    }
    let mut decoy_of = vec![u32::MAX; n];
    for (a, &b) in pi.iter().enumerate() {
        decoy_of[with_anchor[a] as usize] = with_anchor[b];
    }
    let mut builder = Targets::builder(targets.n_gallery());
    let (mut positives, mut exclusions) = (Vec::new(), Vec::new());
    for q in 0..n {
        positives.clear();
        exclusions.clear();
        let d = decoy_of[q];
        if d != u32::MAX {
            let d = d as usize;
            let anchor = targets.anchor(d).expect("decoys have anchors") as u32;
            positives.push(anchor);
            positives.extend(targets.positives(d).filter(|&g| g != anchor));
            exclusions.extend(targets.special(q).0.iter().copied());
            exclusions.extend(targets.exclusions(d).filter(|g| !positives.contains(g)));
        }
        builder.push(&positives, &exclusions)?;
    }
    Ok(Decoys { decoy_of, targets: builder.build() })
}

/// Normalized risk (attack - control) / (1 - control) with a delta-method interval from the
/// two Wilson half-widths (anonymeter's error propagation): with a = attack, c = control and
/// e_a, e_c the half-widths, e = sqrt((e_a / (1 - c))^2 + (e_c (1 - a) / (1 - c)^2)^2). The
/// interval is value ± e, capped at 1 above. NaN when the control rate is 1.
pub fn normalized_risk(attack: &Estimate, control: &Estimate) -> Estimate {
    let (a, c) = (attack.value, control.value);
    let level = attack.level;
    if c.is_nan() || c >= 1.0 || !a.is_finite() {
        return Estimate {
            value: f64::NAN,
            ci_low: f64::NAN,
            ci_high: f64::NAN,
            level,
            method: "delta_wilson",
        };
    }
    let value = (a - c) / (1.0 - c);
    let half_a = (attack.ci_high - attack.ci_low) / 2.0;
    let half_c = (control.ci_high - control.ci_low) / 2.0;
    let d_attack = 1.0 / (1.0 - c);
    let d_control = (a - 1.0) / ((1.0 - c) * (1.0 - c));
    let error = ((half_a * d_attack).powi(2) + (half_c * d_control).powi(2)).sqrt();
    Estimate {
        value,
        ci_low: value - error,
        ci_high: (value + error).min(1.0),
        level,
        method: "delta_wilson",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::wilson;

    #[test]
    fn decoys_avoid_the_query_group_and_form_a_permutation() {
        // 12 queries in studies of sizes 3, 3, 2, 2, 1, 1: same-study items excluded.
        let study = [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 5];
        let mut b = Targets::builder(12);
        for q in 0..12u32 {
            let ex: Vec<u32> =
                (0..12u32).filter(|&g| g != q && study[g as usize] == study[q as usize]).collect();
            b.push(&[q], &ex).unwrap();
        }
        let targets = b.build();
        for seed in 0..20 {
            let d = decoy_targets(&targets, seed).unwrap();
            let mut seen = [false; 12];
            for q in 0..12 {
                let p = d.decoy_of[q] as usize;
                assert_ne!(study[p], study[q], "seed {seed}: query {q} got decoy {p} from its own study");
                assert!(!seen[p]);
                seen[p] = true;
                let t = &d.targets;
                assert_eq!(t.anchor(q), Some(p));
                // The true match and the study are not candidates.
                assert!(t.is_excluded(q, q as u32));
                for g in 0..12u32 {
                    if study[g as usize] == study[q] {
                        assert!(t.is_excluded(q, g));
                    }
                    if study[g as usize] == study[p] && g as usize != p {
                        assert!(t.is_excluded(q, g));
                    }
                }
            }
        }
        // Reproducible.
        assert_eq!(
            decoy_targets(&targets, 3).unwrap().decoy_of,
            decoy_targets(&targets, 3).unwrap().decoy_of
        );
        // Impossible: every query in one study.
        let mut b = Targets::builder(3);
        for q in 0..3u32 {
            let ex: Vec<u32> = (0..3u32).filter(|&g| g != q).collect();
            b.push(&[q], &ex).unwrap();
        }
        let err = decoy_targets(&b.build(), 0).unwrap_err().to_string();
        assert!(err.contains("control baseline"), "{err}");
    }

    #[test]
    fn normalized_risk_propagates_wilson_half_widths() {
        // Reference: anonymeter 1.0 `residual_success` (stats/confidence.py) applied to the
        // same rates and errors: residual = (a - c) / (1 - c),
        // error = sqrt((e_a / |1 - c|)^2 + (e_c (a - 1) / (1 - c)^2)^2). Computed by hand:
        // a = 0.3, c = 0.02, e_a = 0.04, e_c = 0.01 -> 0.2857142857142857 ± 0.04175...
        let attack = Estimate { value: 0.3, ci_low: 0.26, ci_high: 0.34, level: 0.95, method: "wilson" };
        let control = Estimate { value: 0.02, ci_low: 0.01, ci_high: 0.03, level: 0.95, method: "wilson" };
        let r = normalized_risk(&attack, &control);
        assert!((r.value - 0.285_714_285_714_285_7).abs() < 1e-15);
        let e = ((0.04f64 / 0.98).powi(2) + (0.01f64 * 0.7 / (0.98 * 0.98)).powi(2)).sqrt();
        assert!((r.ci_high - r.value - e).abs() < 1e-15 && (r.value - r.ci_low - e).abs() < 1e-15);
        // An attack at control level has risk 0 with an interval around it.
        let a = wilson(50.0, 1000.0, 0.95);
        let r = normalized_risk(&a, &a);
        assert_eq!(r.value, 0.0);
        assert!(r.ci_low < 0.0 && r.ci_high > 0.0);
        assert!(normalized_risk(&a, &Estimate { value: 1.0, ..a }).value.is_nan());
    }
}
