//! Area under the ROC curve with its DeLong variance, intervals and tests, and the ROC curve
//! itself. Every AUROC linkrisk reports (probe utility, attribute inference, re-ID
//! verification) comes from here, so there is one definition of ties and one variance.
//!
//! * AUROC is the Mann-Whitney statistic with ties counted one half (Hanley & McNeil 1982),
//!   computed from midranks in O(n log n); it equals scikit-learn's `roc_auc_score`.
//! * The variance is DeLong, DeLong & Clarke-Pearson (1988) computed with the fast midrank
//!   algorithm of Sun & Xu (2014, IEEE Signal Processing Letters 21(11):1389-1393):
//!   O(n log n) instead of O(m n), identical values.
//! * Intervals are Wald intervals on the logit scale by default (they stay inside (0, 1) and
//!   keep their coverage near AUROC 1, see docs/METHODS.md), or on the AUROC scale.
//! * Differences: independent samples (z from the two DeLong variances) or paired (same
//!   records, DeLong covariance).

use serde::Serialize;

use super::interval::{erfc, z_for_level, Estimate};
use crate::error::{Error, Result};

/// An AUROC with the counts it rests on and its DeLong variance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DelongAuroc {
    /// Area under the ROC curve (ties between a positive and a negative count 1/2).
    pub auroc: f64,
    /// DeLong variance of `auroc`. NaN when a class has fewer than two records (the
    /// sample variance of that class's structural components is undefined).
    pub variance: f64,
    /// Number of positive records.
    pub n_positive: usize,
    /// Number of negative records.
    pub n_negative: usize,
}

/// How an AUROC confidence interval is formed from the DeLong variance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AurocInterval {
    /// Wald interval on the logit scale, mapped back: stays in (0, 1) and keeps its
    /// coverage near AUROC 1 (see docs/METHODS.md, "AUROC and DeLong").
    #[default]
    Logit,
    /// Wald interval on the AUROC scale, clipped to [0, 1] (as pROC's `ci.auc` DeLong).
    Plain,
}

impl AurocInterval {
    /// The method name recorded in [`Estimate::method`].
    pub fn method_name(self) -> &'static str {
        match self {
            AurocInterval::Logit => "delong_logit",
            AurocInterval::Plain => "delong",
        }
    }
}

/// The difference of two AUROCs with its standard error, z statistic, two-sided p-value
/// and a Wald interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AurocDifference {
    /// First AUROC minus second.
    pub difference: f64,
    /// Standard error of the difference.
    pub std_error: f64,
    /// `difference / std_error`.
    pub z: f64,
    /// Two-sided p-value of H0: equal AUROCs (normal approximation).
    pub p_value: f64,
    /// Lower end of the Wald interval of the difference.
    pub ci_low: f64,
    /// Upper end of the Wald interval of the difference.
    pub ci_high: f64,
    /// Coverage of the interval.
    pub level: f64,
    /// `delong_independent` or `delong_paired`.
    pub method: &'static str,
}

/// Points of the ROC curve, as scikit-learn's `roc_curve(drop_intermediate=True)`: the
/// first point is (0, 0) with threshold +inf; collinear intermediate points are dropped.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RocCurve {
    /// False-positive rate at each threshold.
    pub fpr: Vec<f64>,
    /// True-positive rate at each threshold.
    pub tpr: Vec<f64>,
    /// Score thresholds (a record is called positive when its score >= threshold);
    /// `thresholds[0]` is +inf (serialised as `null`).
    pub thresholds: Vec<f64>,
}

fn check_inputs(scores: &[f64], labels: &[bool]) -> Result<(usize, usize)> {
    if scores.len() != labels.len() {
        return Err(Error::config(format!(
            "AUROC: {} scores for {} labels; they must be row-aligned",
            scores.len(),
            labels.len()
        )));
    }
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(Error::config(format!("AUROC: score {i} is NaN; scores must be numbers")));
    }
    let n_positive = labels.iter().filter(|&&l| l).count();
    let n_negative = labels.len() - n_positive;
    if n_positive == 0 || n_negative == 0 {
        return Err(Error::config(format!(
            "AUROC needs both classes; got {n_positive} positive and {n_negative} negative records"
        )));
    }
    Ok((n_positive, n_negative))
}

/// Midranks (1-based, ties get the mean of their ranks) of `values`, in input order.
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_unstable_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // ranks start+1 ..= end share their mean
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// Structural components of DeLong et al. (1988) by the midrank algorithm of Sun & Xu
/// (2014): for each positive, the fraction of negatives it outranks (`v10`); for each
/// negative, the fraction of positives that outrank it (`v01`); ties count 1/2.
struct Components {
    auroc: f64,
    v10: Vec<f64>,
    v01: Vec<f64>,
}

fn components(scores: &[f64], labels: &[bool]) -> Components {
    let positives: Vec<f64> = scores.iter().zip(labels).filter(|(_, &l)| l).map(|(&s, _)| s).collect();
    let negatives: Vec<f64> = scores.iter().zip(labels).filter(|(_, &l)| !l).map(|(&s, _)| s).collect();
    let (m, n) = (positives.len() as f64, negatives.len() as f64);
    let combined: Vec<f64> = positives.iter().chain(&negatives).copied().collect();
    let tz = midranks(&combined);
    let tx = midranks(&positives);
    let ty = midranks(&negatives);
    let v10: Vec<f64> = tx.iter().zip(&tz).map(|(x, z)| (z - x) / n).collect();
    let v01: Vec<f64> = ty.iter().zip(&tz[positives.len()..]).map(|(y, z)| 1.0 - (z - y) / m).collect();
    // The AUROC is the mean of either component vector; the rank-sum form is the exact one.
    let rank_sum: f64 = tz[..positives.len()].iter().sum();
    let auroc = (rank_sum - m * (m + 1.0) / 2.0) / (m * n);
    Components { auroc, v10, v01 }
}

fn covariance(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len();
    if len < 2 {
        return f64::NAN;
    }
    let mean_a = a.iter().sum::<f64>() / len as f64;
    let mean_b = b.iter().sum::<f64>() / len as f64;
    a.iter().zip(b).map(|(x, y)| (x - mean_a) * (y - mean_b)).sum::<f64>() / (len - 1) as f64
}

/// AUROC of `scores` for binary `labels` (true = positive), ties counted one half.
/// Errors when the lengths differ, a score is NaN, or a class is empty.
pub fn auroc(scores: &[f64], labels: &[bool]) -> Result<f64> {
    check_inputs(scores, labels)?;
    Ok(components(scores, labels).auroc)
}

/// AUROC with its DeLong variance (fast algorithm of Sun & Xu 2014).
pub fn delong(scores: &[f64], labels: &[bool]) -> Result<DelongAuroc> {
    let (n_positive, n_negative) = check_inputs(scores, labels)?;
    let c = components(scores, labels);
    let variance =
        covariance(&c.v10, &c.v10) / n_positive as f64 + covariance(&c.v01, &c.v01) / n_negative as f64;
    Ok(DelongAuroc { auroc: c.auroc, variance, n_positive, n_negative })
}

/// AUROCs of several scores on the same records and labels, with their DeLong covariance
/// matrix (row-major, `scores.len()` squared). The basis of the paired test.
pub fn delong_covariance(scores: &[&[f64]], labels: &[bool]) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut parts = Vec::with_capacity(scores.len());
    let mut counts = (0, 0);
    for s in scores {
        counts = check_inputs(s, labels)?;
        parts.push(components(s, labels));
    }
    let (m, n) = (counts.0 as f64, counts.1 as f64);
    let k = scores.len();
    let mut cov = vec![0.0; k * k];
    for a in 0..k {
        for b in a..k {
            let value =
                covariance(&parts[a].v10, &parts[b].v10) / m + covariance(&parts[a].v01, &parts[b].v01) / n;
            cov[a * k + b] = value;
            cov[b * k + a] = value;
        }
    }
    Ok((parts.iter().map(|p| p.auroc).collect(), cov))
}

/// Per-record influence of each record on the AUROC (the DeLong structural component,
/// centred and scaled): `(v10_i - A) / m` for a positive, `(v01_j - A) / n` for a negative,
/// in input order. For any weighted sum of AUROCs measured on the same records (e.g. a
/// one-vs-rest macro AUROC), the variance is estimated by the sum over records of the
/// squared weighted sum of influences; for a single AUROC this is DeLong's variance with
/// `1/m`, `1/n` in place of `1/(m-1)`, `1/(n-1)`.
pub fn auroc_influence(scores: &[f64], labels: &[bool]) -> Result<(f64, Vec<f64>)> {
    let (m, n) = check_inputs(scores, labels)?;
    let c = components(scores, labels);
    let (mut next_pos, mut next_neg) = (0, 0);
    let influence = labels
        .iter()
        .map(|&l| {
            if l {
                next_pos += 1;
                (c.v10[next_pos - 1] - c.auroc) / m as f64
            } else {
                next_neg += 1;
                (c.v01[next_neg - 1] - c.auroc) / n as f64
            }
        })
        .collect();
    Ok((c.auroc, influence))
}

/// The mean of several AUROCs measured on the same records (e.g. one per finding, or one
/// per group in one-vs-rest), with a variance that accounts for their correlation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MacroAuroc {
    /// Mean of the task AUROCs.
    pub auroc: f64,
    /// Variance of the mean: influence components averaged over tasks per record, summed
    /// within clusters, squared and summed, times G / (G - 1) for G clusters.
    pub variance: f64,
    /// Number of tasks averaged.
    pub n_tasks: usize,
    /// Number of clusters (patients, or records when no clusters are given) that carry
    /// at least one labelled record.
    pub n_clusters: usize,
}

/// Macro AUROC of `tasks` (each: scores and labels over the same n records, `None` =
/// record not used by that task) with the variance of the mean from the tasks' DeLong
/// influence components ([`auroc_influence`]). With `clusters` (e.g. the patient of each
/// record) influences are summed within a cluster before squaring, so correlated records
/// of one patient are not counted as independent evidence (the clustered AUROC variance of
/// Obuchowski 1997, Biometrics 53:567-578, in its influence-function form).
pub fn macro_auroc(tasks: &[(&[f64], &[Option<bool>])], clusters: Option<&[u32]>) -> Result<MacroAuroc> {
    let n = match tasks.first() {
        Some((scores, _)) => scores.len(),
        None => return Err(Error::config("macro AUROC of zero tasks")),
    };
    if let Some(c) = clusters {
        if c.len() != n {
            return Err(Error::config(format!("macro AUROC: {} cluster ids for {n} records", c.len())));
        }
    }
    let mut mean_influence = vec![0.0; n];
    let mut used = vec![false; n];
    let mut sum_auroc = 0.0;
    for (scores, labels) in tasks {
        if scores.len() != n || labels.len() != n {
            return Err(Error::config("macro AUROC: every task must cover the same records"));
        }
        let rows: Vec<usize> = (0..n).filter(|&i| labels[i].is_some()).collect();
        let s: Vec<f64> = rows.iter().map(|&i| scores[i]).collect();
        let l: Vec<bool> = rows.iter().map(|&i| labels[i] == Some(true)).collect();
        let (a, influence) = auroc_influence(&s, &l)?;
        sum_auroc += a;
        for (&i, psi) in rows.iter().zip(influence) {
            mean_influence[i] += psi / tasks.len() as f64;
            used[i] = true;
        }
    }
    // Ordered by cluster id, so the sum of squares below adds in one order every run (a
    // HashMap's order changes from run to run and with it the last bits of the variance).
    let mut per_cluster: std::collections::BTreeMap<u32, f64> = std::collections::BTreeMap::new();
    for i in (0..n).filter(|&i| used[i]) {
        let key = clusters.map_or(i as u32, |c| c[i]);
        *per_cluster.entry(key).or_insert(0.0) += mean_influence[i];
    }
    let g = per_cluster.len() as f64;
    let sum_sq: f64 = per_cluster.values().map(|v| v * v).sum();
    let variance = if g > 1.0 { sum_sq * g / (g - 1.0) } else { f64::NAN };
    Ok(MacroAuroc {
        auroc: sum_auroc / tasks.len() as f64,
        variance,
        n_tasks: tasks.len(),
        n_clusters: per_cluster.len(),
    })
}

impl MacroAuroc {
    /// Its interval, formed as for a single AUROC ([`auroc_ci`]); the method name gets the
    /// suffix of the variance used.
    pub fn ci(&self, level: f64, interval: AurocInterval) -> Estimate {
        let as_single =
            DelongAuroc { auroc: self.auroc, variance: self.variance, n_positive: 0, n_negative: 0 };
        let mut e = auroc_ci(&as_single, level, interval);
        e.method = match e.method {
            "delong_logit" => "influence_logit",
            "delong" => "influence",
            _ => "influence_undefined",
        };
        e
    }
}

/// The difference of two macro AUROCs on disjoint records (independent samples).
pub fn macro_test_independent(a: &MacroAuroc, b: &MacroAuroc, level: f64) -> AurocDifference {
    difference(a.auroc - b.auroc, a.variance + b.variance, level, "influence_independent")
}

/// Confidence interval of an AUROC from its DeLong variance at coverage `level`.
/// When the variance is not finite (a class with one record) the interval is the
/// uninformative [0, 1] with method `delong_undefined`; at AUROC exactly 0 or 1 the logit
/// is undefined and the variance is 0, so the interval is the single point (method `delong`).
pub fn auroc_ci(estimate: &DelongAuroc, level: f64, interval: AurocInterval) -> Estimate {
    let value = estimate.auroc;
    if !estimate.variance.is_finite() {
        return Estimate { value, ci_low: 0.0, ci_high: 1.0, level, method: "delong_undefined" };
    }
    let z = z_for_level(level);
    let se = estimate.variance.max(0.0).sqrt();
    let plain = || Estimate {
        value,
        ci_low: (value - z * se).max(0.0),
        ci_high: (value + z * se).min(1.0),
        level,
        method: AurocInterval::Plain.method_name(),
    };
    match interval {
        AurocInterval::Plain => plain(),
        AurocInterval::Logit if value <= 0.0 || value >= 1.0 => plain(),
        AurocInterval::Logit => {
            let logit = (value / (1.0 - value)).ln();
            let se_logit = se / (value * (1.0 - value));
            let expit = |t: f64| 1.0 / (1.0 + (-t).exp());
            Estimate {
                value,
                ci_low: expit(logit - z * se_logit),
                ci_high: expit(logit + z * se_logit),
                level,
                method: interval.method_name(),
            }
        }
    }
}

fn difference(diff: f64, variance: f64, level: f64, method: &'static str) -> AurocDifference {
    let std_error = variance.max(0.0).sqrt();
    let z = diff / std_error;
    // Two-sided p = 2 * Phi(-|z|) = erfc(|z| / sqrt 2). A zero difference with zero
    // variance is no evidence of a difference.
    let p_value = if z.is_nan() { 1.0 } else { erfc(z.abs() / std::f64::consts::SQRT_2) };
    let half = z_for_level(level) * std_error;
    AurocDifference {
        difference: diff,
        std_error,
        z,
        p_value,
        ci_low: diff - half,
        ci_high: diff + half,
        level,
        method,
    }
}

/// DeLong test of `a.auroc - b.auroc` for AUROCs measured on disjoint (independent)
/// records, e.g. re-identified vs not re-identified: the variance of the difference is the
/// sum of the two DeLong variances.
pub fn delong_test_independent(a: &DelongAuroc, b: &DelongAuroc, level: f64) -> AurocDifference {
    difference(a.auroc - b.auroc, a.variance + b.variance, level, "delong_independent")
}

/// DeLong test of the difference of two scores' AUROCs on the same records (paired): the
/// variance is `var_a + var_b - 2 cov_ab` from [`delong_covariance`].
pub fn delong_test_paired(
    scores_a: &[f64],
    scores_b: &[f64],
    labels: &[bool],
    level: f64,
) -> Result<AurocDifference> {
    let (aurocs, cov) = delong_covariance(&[scores_a, scores_b], labels)?;
    Ok(difference(aurocs[0] - aurocs[1], cov[0] + cov[3] - 2.0 * cov[1], level, "delong_paired"))
}

/// The ROC curve of `scores` for `labels`, equal to scikit-learn's
/// `roc_curve(labels, scores, drop_intermediate=True)`.
pub fn roc_curve(scores: &[f64], labels: &[bool]) -> Result<RocCurve> {
    let (n_positive, n_negative) = check_inputs(scores, labels)?;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Descending by score; the order within ties does not change the cumulative counts at
    // the last record of each run of ties, which is all that is kept.
    order.sort_unstable_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let mut tps: Vec<u64> = Vec::new();
    let mut fps: Vec<u64> = Vec::new();
    let mut thresholds: Vec<f64> = Vec::new();
    let (mut tp, mut fp) = (0u64, 0u64);
    for (pos, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        let last_of_run = pos + 1 == order.len() || scores[order[pos + 1]] != scores[i];
        if last_of_run {
            tps.push(tp);
            fps.push(fp);
            thresholds.push(scores[i]);
        }
    }
    // drop_intermediate: keep a point unless both second differences vanish.
    let keep: Vec<usize> = if tps.len() > 2 {
        (0..tps.len())
            .filter(|&j| {
                j == 0
                    || j + 1 == tps.len()
                    || fps[j + 1] + fps[j - 1] != 2 * fps[j]
                    || tps[j + 1] + tps[j - 1] != 2 * tps[j]
            })
            .collect()
    } else {
        (0..tps.len()).collect()
    };
    let mut curve = RocCurve {
        fpr: Vec::with_capacity(keep.len() + 1),
        tpr: Vec::with_capacity(keep.len() + 1),
        thresholds: Vec::with_capacity(keep.len() + 1),
    };
    curve.fpr.push(0.0);
    curve.tpr.push(0.0);
    curve.thresholds.push(f64::INFINITY);
    for j in keep {
        curve.fpr.push(fps[j] as f64 / n_negative as f64);
        curve.tpr.push(tps[j] as f64 / n_positive as f64);
        curve.thresholds.push(thresholds[j]);
    }
    Ok(curve)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const REFERENCE: &str = include_str!("../../tests/data/auroc_reference.json");

    fn floats(v: &Value) -> Vec<f64> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
    }

    fn bools(v: &Value) -> Vec<bool> {
        v.as_array().unwrap().iter().map(|x| x.as_i64().unwrap() == 1).collect()
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Reference values: scikit-learn 1.9.1 roc_auc_score / roc_curve, a direct O(m n)
    /// DeLong in numpy 2.4.6, scipy 1.17.1 (tests/data/reference_auroc.py).
    #[test]
    fn matches_sklearn_and_direct_delong_on_tied_fixtures() {
        let reference: Value = serde_json::from_str(REFERENCE).unwrap();
        for f in reference["fixtures"].as_array().unwrap() {
            let name = f["name"].as_str().unwrap();
            let scores = floats(&f["scores"]);
            let labels = bools(&f["labels"]);
            let expected = f["roc_auc_score"].as_f64().unwrap();
            let d = delong(&scores, &labels).unwrap();
            assert!(close(d.auroc, expected, 1e-12), "{name}: {} vs {expected}", d.auroc);
            assert!(close(auroc(&scores, &labels).unwrap(), expected, 1e-12), "{name}");
            let var = f["delong_variance"].as_f64().unwrap();
            assert!(close(d.variance, var, 1e-14 + 1e-12 * var), "{name}: {} vs {var}", d.variance);
            let plain = floats(&f["ci95_plain"]);
            let e = auroc_ci(&d, 0.95, AurocInterval::Plain);
            assert!(close(e.ci_low, plain[0], 1e-12) && close(e.ci_high, plain[1], 1e-12), "{name} {e:?}");
            if let Some(logit) = f["ci95_logit"].as_array() {
                let e = auroc_ci(&d, 0.95, AurocInterval::Logit);
                assert_eq!(e.method, "delong_logit");
                assert!(close(e.ci_low, logit[0].as_f64().unwrap(), 1e-12), "{name} {e:?}");
                assert!(close(e.ci_high, logit[1].as_f64().unwrap(), 1e-12), "{name} {e:?}");
            }
            let curve = roc_curve(&scores, &labels).unwrap();
            let (fpr, tpr) = (floats(&f["roc_fpr"]), floats(&f["roc_tpr"]));
            let thr = floats(&f["roc_thresholds_after_first"]);
            assert_eq!(curve.fpr.len(), fpr.len(), "{name}: ROC point count");
            assert!(curve.thresholds[0].is_infinite());
            for j in 0..fpr.len() {
                assert!(
                    close(curve.fpr[j], fpr[j], 1e-15) && close(curve.tpr[j], tpr[j], 1e-15),
                    "{name} point {j}"
                );
            }
            assert_eq!(&curve.thresholds[1..], &thr[..], "{name} thresholds");
        }
    }

    #[test]
    fn paired_and_independent_tests_match_reference() {
        let reference: Value = serde_json::from_str(REFERENCE).unwrap();
        let p = &reference["paired"];
        let (a, b, labels) = (floats(&p["scores_a"]), floats(&p["scores_b"]), bools(&p["labels"]));
        let (aurocs, cov) = delong_covariance(&[&a, &b], &labels).unwrap();
        let expected_cov: Vec<f64> = p["cov"].as_array().unwrap().iter().flat_map(floats).collect();
        for (x, y) in aurocs.iter().zip(floats(&p["aucs"])) {
            assert!(close(*x, y, 1e-12));
        }
        for (x, y) in cov.iter().zip(&expected_cov) {
            assert!(close(*x, *y, 1e-15), "{x} vs {y}");
        }
        let t = delong_test_paired(&a, &b, &labels, 0.95).unwrap();
        assert!(close(t.difference, p["difference"].as_f64().unwrap(), 1e-12));
        assert!(close(t.std_error, p["se"].as_f64().unwrap(), 1e-12));
        assert!(close(t.z, p["z"].as_f64().unwrap(), 1e-9));
        assert!(close(t.p_value, p["p_value"].as_f64().unwrap(), 1e-12), "{t:?}");

        let r = &reference["independent"];
        let da = delong(&floats(&r["scores_a"]), &bools(&r["labels_a"])).unwrap();
        let db = delong(&floats(&r["scores_b"]), &bools(&r["labels_b"])).unwrap();
        assert!(close(da.auroc, r["auc_a"].as_f64().unwrap(), 1e-12));
        assert!(close(da.variance, r["var_a"].as_f64().unwrap(), 1e-15));
        assert!(close(db.variance, r["var_b"].as_f64().unwrap(), 1e-15));
        let t = delong_test_independent(&da, &db, 0.95);
        assert_eq!(t.method, "delong_independent");
        assert!(close(t.z, r["z"].as_f64().unwrap(), 1e-9));
        assert!(close(t.p_value, r["p_value"].as_f64().unwrap(), 1e-12), "{t:?}");
        let ci = floats(&r["ci95_difference"]);
        assert!(close(t.ci_low, ci[0], 1e-12) && close(t.ci_high, ci[1], 1e-12));
    }

    #[test]
    fn influence_variance_is_delong_without_small_sample_factors() {
        let scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.1, 0.7, 0.2];
        let labels = [false, false, true, true, true, false, true, true, false, false];
        let (a, influence) = auroc_influence(&scores, &labels).unwrap();
        let d = delong(&scores, &labels).unwrap();
        assert_eq!(a, d.auroc);
        // sum psi^2 = (m-1)/m * S10/m + (n-1)/n * S01/n; recompute both parts from components
        let c = components(&scores, &labels);
        let (m, n) = (5.0, 5.0);
        let expected =
            (m - 1.0) / m * covariance(&c.v10, &c.v10) / m + (n - 1.0) / n * covariance(&c.v01, &c.v01) / n;
        let got: f64 = influence.iter().map(|x| x * x).sum();
        assert!(close(got, expected, 1e-15), "{got} vs {expected}");
        assert!(got < d.variance);
    }

    #[test]
    fn macro_variance_reduces_to_delong_and_clusters_duplicates() {
        let scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.1, 0.7, 0.2, 0.55, 0.3];
        let truth = [false, false, true, true, true, false, true, true, false, false, true, false];
        let labels: Vec<Option<bool>> = truth.iter().map(|&l| Some(l)).collect();
        let single = macro_auroc(&[(&scores, &labels)], None).unwrap();
        let d = delong(&scores, &truth).unwrap();
        assert!(close(single.auroc, d.auroc, 1e-15));
        // n/(n-1) * ((m-1)/m S10/m + (k-1)/k S01/k) with m = k = 6, n = 12
        let c = components(&scores, &truth);
        let expected = 12.0 / 11.0
            * (5.0 / 6.0 * covariance(&c.v10, &c.v10) / 6.0 + 5.0 / 6.0 * covariance(&c.v01, &c.v01) / 6.0);
        assert!(close(single.variance, expected, 1e-15), "{} vs {expected}", single.variance);
        // Each record twice: unclustered variance about halves, clustered by the original
        // record it stays at the single-copy value (up to the G/(G-1) factor).
        let doubled: Vec<f64> = scores.iter().flat_map(|&s| [s, s]).collect();
        let doubled_labels: Vec<Option<bool>> = labels.iter().flat_map(|&l| [l, l]).collect();
        let ids: Vec<u32> = (0..12u32).flat_map(|i| [i, i]).collect();
        let naive = macro_auroc(&[(&doubled, &doubled_labels)], None).unwrap();
        let clustered = macro_auroc(&[(&doubled, &doubled_labels)], Some(&ids)).unwrap();
        assert!(close(naive.auroc, single.auroc, 1e-15));
        assert!(naive.variance < 0.6 * single.variance);
        assert!(
            close(clustered.variance, single.variance, 1e-15),
            "{} vs {}",
            clustered.variance,
            single.variance
        );
        // Two tasks: the mean of the AUROCs; excluded records carry no influence.
        let other: Vec<Option<bool>> =
            truth.iter().enumerate().map(|(i, &l)| (i % 3 != 0).then_some(!l)).collect();
        let both = macro_auroc(&[(&scores, &labels), (&scores, &other)], None).unwrap();
        let kept: Vec<usize> = (0..12).filter(|i| i % 3 != 0).collect();
        let a2 = auroc(
            &kept.iter().map(|&i| scores[i]).collect::<Vec<_>>(),
            &kept.iter().map(|&i| !truth[i]).collect::<Vec<_>>(),
        )
        .unwrap();
        assert!(close(both.auroc, (d.auroc + a2) / 2.0, 1e-15));
        assert_eq!(both.n_tasks, 2);
        // Perfectly anti-correlated tasks (same scores, flipped labels) cancel in the mean.
        let flipped: Vec<Option<bool>> = labels.iter().map(|l| l.map(|x| !x)).collect();
        let cancel = macro_auroc(&[(&scores, &labels), (&scores, &flipped)], None).unwrap();
        assert!(close(cancel.auroc, 0.5, 1e-15) && cancel.variance.abs() < 1e-15);
    }

    #[test]
    fn bad_inputs_and_degenerate_cases() {
        assert!(auroc(&[0.1, 0.2], &[true, true]).unwrap_err().to_string().contains("both classes"));
        assert!(auroc(&[0.1, f64::NAN], &[true, false]).unwrap_err().to_string().contains("NaN"));
        assert!(auroc(&[0.1], &[true, false]).unwrap_err().to_string().contains("row-aligned"));
        // perfect separation: AUROC 1, variance 0, point interval
        let d = delong(&[0.9, 0.8, 0.1, 0.2], &[true, true, false, false]).unwrap();
        assert_eq!((d.auroc, d.variance), (1.0, 0.0));
        let e = auroc_ci(&d, 0.95, AurocInterval::Logit);
        assert_eq!((e.ci_low, e.ci_high), (1.0, 1.0));
        // one positive: variance undefined -> uninformative interval
        let d = delong(&[0.9, 0.1, 0.2], &[true, false, false]).unwrap();
        assert!(d.variance.is_nan());
        let e = auroc_ci(&d, 0.95, AurocInterval::Logit);
        assert_eq!((e.ci_low, e.ci_high, e.method), (0.0, 1.0, "delong_undefined"));
        // reversed labels give 1 - AUROC with the same variance
        let s = [0.3, 0.1, 0.3, 0.7, 0.5, 0.2];
        let l = [true, false, false, true, false, true];
        let flipped: Vec<bool> = l.iter().map(|x| !x).collect();
        let (a, b) = (delong(&s, &l).unwrap(), delong(&s, &flipped).unwrap());
        assert!(close(a.auroc + b.auroc, 1.0, 1e-15) && close(a.variance, b.variance, 1e-15));
    }
}
