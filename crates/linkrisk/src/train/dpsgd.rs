//! The randomness of DP-SGD: Poisson sampling of patients, the public rule that splits a
//! sampled batch into groups, and the Gaussian noise. Each comes from a seeded stream, so
//! a run is reproducible from its seed (which must then stay secret: see docs/METHODS.md).

use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::real::Real;
use crate::rng;

/// Patients `0..n_units` each kept independently with probability `sample_rate` at `step`,
/// in increasing order. Gaps between kept patients are geometric, so the cost is
/// proportional to the batch, not to the cohort.
pub(crate) fn poisson_sample(seed: u64, step: u64, n_units: usize, sample_rate: f64) -> Vec<u32> {
    if sample_rate >= 1.0 {
        return (0..n_units as u32).collect();
    }
    let mut rng = rng::stream(seed, "train/poisson", step);
    let log_keep_none = (-sample_rate).ln_1p(); // ln(1 - q) < 0
    let mut kept = Vec::with_capacity((n_units as f64 * sample_rate * 1.2) as usize + 8);
    let mut next = 0f64;
    loop {
        // Failures before the next success ~ Geometric(q): floor(ln U / ln(1 - q)), U in (0, 1].
        let u: f64 = 1.0 - rng.random::<f64>();
        next += (u.ln() / log_keep_none).floor();
        if next >= n_units as f64 {
            break;
        }
        kept.push(next as u32);
        next += 1.0;
    }
    kept
}

/// Key of the public grouping hash for a run.
pub(crate) fn group_key(seed: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"linkrisk-dp-groups-v1");
    hasher.update(&seed.to_le_bytes());
    *hasher.finalize().as_bytes()
}

/// The group of patient `patient_id` at `step`: a keyed hash of the step and the patient's
/// own id, modulo the fixed number of groups. It depends on nothing else in the dataset,
/// so adding or removing a patient never moves another patient to a different group.
pub(crate) fn group_of(key: &[u8; 32], step: u64, patient_id: &str, n_groups: usize) -> usize {
    let mut hasher = blake3::Hasher::new_keyed(key);
    hasher.update(&step.to_le_bytes());
    hasher.update(patient_id.as_bytes());
    let bytes = hasher.finalize();
    let mut word = [0u8; 8];
    word.copy_from_slice(&bytes.as_bytes()[..8]);
    (u64::from_le_bytes(word) % n_groups as u64) as usize
}

/// Values per noise chunk; each chunk has its own stream, so noise is generated in
/// parallel and is the same for every thread count.
const NOISE_CHUNK: usize = 1 << 14;

/// Add independent N(0, std^2) noise to every coordinate of `grad` for `step`.
pub(crate) fn add_noise<T: Real>(grad: &mut [T], std: f64, seed: u64, step: u64) {
    let chunks_per_step = grad.len().div_ceil(NOISE_CHUNK) as u64;
    grad.par_chunks_mut(NOISE_CHUNK).enumerate().for_each(|(chunk, values)| {
        let mut rng = rng::stream(seed, "train/noise", step * chunks_per_step + chunk as u64);
        for v in values {
            let z: f64 = rng.sample(StandardNormal);
            *v += T::of(std * z);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_sampling_has_rate_q_and_is_reproducible() {
        let (n, q) = (20_000, 0.05);
        let mut total = 0usize;
        let mut hits = vec![0u32; n];
        let steps = 200;
        for step in 0..steps {
            let kept = poisson_sample(3, step, n, q);
            assert!(kept.windows(2).all(|w| w[0] < w[1]) && kept.iter().all(|&p| (p as usize) < n));
            total += kept.len();
            for &p in &kept {
                hits[p as usize] += 1;
            }
        }
        assert_eq!(poisson_sample(3, 7, n, q), poisson_sample(3, 7, n, q));
        assert_ne!(poisson_sample(3, 7, n, q), poisson_sample(3, 8, n, q));
        // Mean batch n q = 1000 per step; over 200 steps sd of the total is sqrt(200 n q (1-q)).
        let expected = steps as f64 * n as f64 * q;
        let sd = (expected * (1.0 - q)).sqrt();
        assert!((total as f64 - expected).abs() < 5.0 * sd, "{total} vs {expected}");
        // Every position is sampled at rate q (first and last patients included).
        let first: u32 = hits[..1000].iter().sum();
        let last: u32 = hits[n - 1000..].iter().sum();
        let per_block = 1000.0 * steps as f64 * q;
        for block in [first, last] {
            assert!((f64::from(block) - per_block).abs() < 5.0 * per_block.sqrt(), "{block}");
        }
        assert_eq!(poisson_sample(1, 0, 10, 1.0), (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn groups_depend_only_on_the_patient() {
        let key = group_key(9);
        let g: Vec<usize> = (0..1000).map(|p| group_of(&key, 4, &format!("p{p}"), 16)).collect();
        assert!(g.iter().all(|&k| k < 16));
        let mut counts = [0; 16];
        for &k in &g {
            counts[k] += 1;
        }
        assert!(counts.iter().all(|&c| c > 30 && c < 100), "{counts:?}");
        assert_eq!(group_of(&key, 4, "p17", 16), g[17]);
        assert_ne!(
            (0..50).map(|p| group_of(&key, 5, &format!("p{p}"), 16)).collect::<Vec<_>>(),
            g[..50].to_vec()
        );
    }

    #[test]
    fn noise_has_the_calibrated_scale() {
        // 200,000 draws: the sample sd of N(0, s^2) is within 5 sd (s / sqrt(2n)) of s.
        let std = 2.5;
        let mut grad = vec![0f32; 100_000];
        add_noise(&mut grad, std, 11, 0);
        let mut more = vec![0f32; 100_000];
        add_noise(&mut more, std, 11, 1);
        let values: Vec<f64> = grad.iter().chain(&more).map(|&v| f64::from(v)).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        assert!(mean.abs() < 5.0 * std / n.sqrt(), "mean {mean}");
        assert!((sd - std).abs() < 5.0 * std / (2.0 * n).sqrt(), "sd {sd}");
        // Independent across steps and chunks, identical on a rerun.
        let corr = grad.iter().zip(&more).map(|(&a, &b)| f64::from(a * b)).sum::<f64>() / (1e5 * std * std);
        assert!(corr.abs() < 5.0 / 1e5f64.sqrt(), "{corr}");
        let mut again = vec![0f32; 100_000];
        add_noise(&mut again, std, 11, 0);
        assert_eq!(again, grad);
        // Tails: about 4.55% of draws beyond 2 sd.
        let beyond = values.iter().filter(|v| v.abs() > 2.0 * std).count() as f64 / n;
        assert!((beyond - 0.0455).abs() < 0.003, "{beyond}");
    }
}
