//! Cluster (patient) bootstrap: records of one patient are not independent, so intervals
//! resample whole patients with replacement (Davison & Hinkley 1997, "Bootstrap Methods
//! and their Application", sec. 3.8; Field & Welsh 2007, "Bootstrapping clustered data",
//! JRSS-B 69:369-390). Each replicate draws from its own seeded stream, so intervals are
//! identical on every run and thread count.

use rand::Rng;
use rayon::prelude::*;

use super::interval::Estimate;
use crate::error::{Error, Result};
use crate::rng;

/// Percentile-bootstrap intervals for the means of several per-record statistics at once,
/// resampling clusters (patients). `statistics[s][i]` is statistic s of record i;
/// `cluster[i]` is record i's patient (any u32 labels). Returns one [`Estimate`] per
/// statistic: the plain mean and the `level` percentile interval over `replicates`
/// replicates (method `bootstrap_patient`).
pub fn cluster_bootstrap_means(
    statistics: &[&[f64]],
    cluster: &[u32],
    replicates: usize,
    level: f64,
    seed: u64,
    purpose: &str,
) -> Result<Vec<Estimate>> {
    let n = cluster.len();
    if n == 0 {
        return Err(Error::config("bootstrap over zero records"));
    }
    if replicates < 2 {
        return Err(Error::config(format!("bootstrap replicates must be at least 2, got {replicates}")));
    }
    if !(level > 0.0 && level < 1.0) {
        return Err(Error::config(format!("interval level must be in (0, 1), got {level}")));
    }
    if let Some(s) = statistics.iter().position(|s| s.len() != n) {
        return Err(Error::config(format!(
            "statistic {s} has {} values for {n} records",
            statistics[s].len()
        )));
    }
    // Dense cluster ids, per-cluster sums and sizes.
    let mut dense = std::collections::HashMap::new();
    let ids: Vec<usize> = cluster
        .iter()
        .map(|c| {
            let next = dense.len();
            *dense.entry(*c).or_insert(next)
        })
        .collect();
    let n_clusters = dense.len();
    let n_stats = statistics.len();
    let mut sums = vec![0.0f64; n_clusters * n_stats];
    let mut sizes = vec![0u64; n_clusters];
    for (i, &c) in ids.iter().enumerate() {
        sizes[c] += 1;
        for (s, values) in statistics.iter().enumerate() {
            sums[c * n_stats + s] += values[i];
        }
    }
    let replicate_means: Vec<Vec<f64>> = (0..replicates)
        .into_par_iter()
        .map(|r| {
            let mut rng = rng::stream(seed, purpose, r as u64);
            let mut total = vec![0.0f64; n_stats];
            let mut count = 0u64;
            for _ in 0..n_clusters {
                let c = rng.random_range(0..n_clusters);
                count += sizes[c];
                for s in 0..n_stats {
                    total[s] += sums[c * n_stats + s];
                }
            }
            total.iter().map(|t| t / count as f64).collect()
        })
        .collect();
    let alpha = (1.0 - level) / 2.0;
    Ok((0..n_stats)
        .map(|s| {
            let mut values: Vec<f64> = replicate_means.iter().map(|m| m[s]).collect();
            values.sort_by(f64::total_cmp);
            Estimate {
                value: statistics[s].iter().sum::<f64>() / n as f64,
                ci_low: percentile(&values, alpha),
                ci_high: percentile(&values, 1.0 - alpha),
                level,
                method: "bootstrap_patient",
            }
        })
        .collect())
}

/// The `q` quantile of sorted `values` with linear interpolation (numpy's default).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_matches_numpy() {
        // numpy 2.4.6: np.percentile([1, 2, 4, 8, 16], [2.5, 97.5]) = [1.1, 15.2]
        let v = [1.0, 2.0, 4.0, 8.0, 16.0];
        assert!((percentile(&v, 0.025) - 1.1).abs() < 1e-12);
        assert!((percentile(&v, 0.975) - 15.2).abs() < 1e-12);
    }

    #[test]
    fn clustered_records_widen_the_interval() {
        // 200 patients; in the clustered case each patient's 5 records share one outcome, so
        // the effective sample is 200, not 1000, and the interval must be wider.
        let n_patients = 200;
        let outcome = |p: usize| f64::from(u8::from((p * 7919) % 10 < 3));
        let mut values = Vec::new();
        let mut clustered = Vec::new();
        let mut independent = Vec::new();
        for p in 0..n_patients {
            for r in 0..5 {
                values.push(outcome(p));
                clustered.push(p as u32);
                independent.push((p * 5 + r) as u32);
            }
        }
        let wide = cluster_bootstrap_means(&[&values], &clustered, 400, 0.95, 1, "t").unwrap()[0];
        let narrow = cluster_bootstrap_means(&[&values], &independent, 400, 0.95, 1, "t").unwrap()[0];
        assert!((wide.value - 0.3).abs() < 1e-12);
        assert!(wide.ci_low < 0.3 && wide.ci_high > 0.3);
        let (w, n) = (wide.ci_high - wide.ci_low, narrow.ci_high - narrow.ci_low);
        // Binomial standard errors: sqrt(.21/200) vs sqrt(.21/1000): ratio sqrt(5) ~ 2.24.
        assert!(w / n > 1.7 && w / n < 2.9, "clustered width {w}, independent {n}");
        // Same seed, same interval; another seed, another one.
        let again = cluster_bootstrap_means(&[&values], &clustered, 400, 0.95, 1, "t").unwrap()[0];
        assert_eq!(wide, again);
        assert!(cluster_bootstrap_means(&[&values], &clustered, 1, 0.95, 1, "t").is_err());
    }
}
