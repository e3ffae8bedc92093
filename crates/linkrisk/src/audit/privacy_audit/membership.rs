//! Membership inference against trained heads: each patient is scored by how well the
//! heads align its own pairs (the negative InfoNCE loss of its records against a reference
//! set of reports, the loss attack of Yeom et al., CSF 2018), and calibrated per patient by
//! shadow heads in LiRA's offline variant (Carlini et al., "Membership Inference Attacks
//! From First Principles", IEEE S&P 2022, §VI-C: only OUT shadows, a fixed global variance).

use rayon::prelude::*;
use serde::Serialize;

use crate::cohort::Cohort;
use crate::error::Result;
use crate::metrics::auroc::{auroc_ci, delong, AurocInterval};
use crate::metrics::interval::{wilson, Estimate};

/// Per-record log-softmax of the own report among `reference` reports (and itself), at
/// temperature `tau`, averaged per patient: `scores[p]` for the dense patient indices in
/// `patients` (records of other patients are ignored).
pub fn patient_scores(
    projected: &Cohort,
    patients: &[u32],
    reference: &[usize],
    tau: f64,
) -> Result<Vec<f64>> {
    let image = projected.view("image")?;
    let report = projected.view("report")?;
    let meta = &projected.metadata;
    let mut slot = vec![usize::MAX; meta.n_patients];
    for (k, &p) in patients.iter().enumerate() {
        slot[p as usize] = k;
    }
    let rows: Vec<usize> =
        (0..meta.len()).filter(|&i| slot[meta.patient[i] as usize] != usize::MAX).collect();
    let inv_tau = 1.0 / tau;
    let record_scores: Vec<f64> = rows
        .par_iter()
        .map(|&i| {
            let q = image.row(i);
            let dot = |j: usize| -> f64 {
                q.iter().zip(report.row(j)).map(|(a, b)| f64::from(*a) * f64::from(*b)).sum()
            };
            let own = dot(i) * inv_tau;
            let logits: Vec<f64> = reference
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| dot(j) * inv_tau)
                .chain(std::iter::once(own))
                .collect();
            own - log_sum_exp(&logits)
        })
        .collect();
    let mut sum = vec![0.0; patients.len()];
    let mut count = vec![0usize; patients.len()];
    for (&i, s) in rows.iter().zip(&record_scores) {
        let k = slot[meta.patient[i] as usize];
        sum[k] += s;
        count[k] += 1;
    }
    Ok(sum.iter().zip(&count).map(|(s, &c)| if c > 0 { s / c as f64 } else { f64::NEG_INFINITY }).collect())
}

/// log(sum(exp(logits))), shifted by the largest logit so no term overflows.
pub(super) fn log_sum_exp(logits: &[f64]) -> f64 {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    max + logits.iter().map(|l| (l - max).exp()).sum::<f64>().ln()
}

/// LiRA's logit scaling of a log-probability `s` (<= 0): log(p / (1 - p)), p = e^s.
fn logit_of_log_probability(s: f64) -> f64 {
    let s = s.min(-1e-12);
    s - (-s.exp()).ln_1p()
}

/// Offline LiRA scores: `(phi(target) - mu_out(p)) / sigma_out`, with `mu_out(p)` the mean
/// over the shadows that did not train on p (`shadow_in[k][p]` false) and one global
/// `sigma_out` over every OUT shadow score (the fixed-variance variant, recommended with few
/// shadows). A patient that every shadow trained on falls back to the global OUT mean.
pub fn lira_offline(target: &[f64], shadows: &[Vec<f64>], shadow_in: &[Vec<bool>]) -> Vec<f64> {
    let n = target.len();
    let phi = |s: f64| logit_of_log_probability(s);
    let mut mu = vec![f64::NAN; n];
    let (mut all_sum, mut all_n) = (0.0, 0usize);
    for p in 0..n {
        let outs: Vec<f64> =
            (0..shadows.len()).filter(|&k| !shadow_in[k][p]).map(|k| phi(shadows[k][p])).collect();
        if !outs.is_empty() {
            mu[p] = outs.iter().sum::<f64>() / outs.len() as f64;
            all_sum += outs.iter().sum::<f64>();
            all_n += outs.len();
        }
    }
    let global_mu = if all_n > 0 { all_sum / all_n as f64 } else { 0.0 };
    let (mut ss, mut dof) = (0.0, 0usize);
    for p in 0..n {
        for k in (0..shadows.len()).filter(|&k| !shadow_in[k][p]) {
            ss += (phi(shadows[k][p]) - mu[p]).powi(2);
            dof += 1;
        }
    }
    let sigma = if dof > 1 { (ss / (dof - 1) as f64).sqrt().max(1e-9) } else { 1.0 };
    (0..n).map(|p| (phi(target[p]) - if mu[p].is_nan() { global_mu } else { mu[p] }) / sigma).collect()
}

/// True-positive rate at a false-positive rate.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TprAtFpr {
    /// The FPR asked for.
    pub fpr_target: f64,
    /// The FPR attained on the held-out patients (at most the target).
    pub fpr: f64,
    /// Members scored above the threshold, with a Wilson interval (the threshold, set on
    /// the held-out scores, is taken as fixed).
    pub tpr: Estimate,
}

/// One attack's membership-inference figures.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AttackFigures {
    /// `loss` or `lira_offline`.
    pub attack: &'static str,
    /// AUROC of members vs held-out, DeLong interval.
    pub auroc: Estimate,
    /// TPR at FPR 0.1% and 1%.
    pub tpr_at_fpr: Vec<TprAtFpr>,
}

/// AUROC (members positive) and TPR at `fprs` of `scores` (higher = member).
pub fn figures(
    attack: &'static str,
    scores: &[f64],
    member: &[bool],
    level: f64,
    fprs: &[f64],
) -> Result<AttackFigures> {
    let d = delong(scores, member)?;
    let auroc = auroc_ci(&d, level, AurocInterval::Logit);
    let mut out: Vec<f64> = scores.iter().zip(member).filter(|(_, &m)| !m).map(|(s, _)| *s).collect();
    out.sort_by(|a, b| b.total_cmp(a));
    let ins: Vec<f64> = scores.iter().zip(member).filter(|(_, &m)| m).map(|(s, _)| *s).collect();
    let tpr_at_fpr = fprs
        .iter()
        .map(|&f| {
            // Allowed false positives; a member counts when strictly above the threshold.
            let allowed = (f * out.len() as f64).floor() as usize;
            let threshold = out.get(allowed).copied().unwrap_or(f64::NEG_INFINITY);
            let fp = out.iter().filter(|&&s| s > threshold).count();
            let tp = ins.iter().filter(|&&s| s > threshold).count();
            TprAtFpr {
                fpr_target: f,
                fpr: fp as f64 / out.len().max(1) as f64,
                tpr: wilson(tp as f64, ins.len() as f64, level),
            }
        })
        .collect();
    Ok(AttackFigures { attack, auroc, tpr_at_fpr })
}
