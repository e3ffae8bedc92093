//! Exact maximum-weight perfect matching of a dense n x n score matrix: the Hungarian
//! method in its shortest-augmenting-path form with dual potentials (Kuhn 1955; Munkres
//! 1957; the O(n^3) organisation of Jonker & Volgenant 1987 / Crouse 2016, as in SciPy's
//! `linear_sum_assignment`). Rows are added one at a time; each addition runs a
//! Dijkstra-like search over reduced costs to the nearest free column and augments.

/// The column assigned to each row in a maximum-total-score perfect matching of `scores`
/// (row-major n x n, finite).
pub fn hungarian(scores: &[f64], n: usize) -> Vec<usize> {
    assert_eq!(scores.len(), n * n, "hungarian: scores must be n x n");
    if n == 0 {
        return Vec::new();
    }
    // Minimise cost = -score. Arrays are 1-based; column 0 is the search's virtual root.
    let mut u = vec![0f64; n + 1]; // row potentials
    let mut v = vec![0f64; n + 1]; // column potentials
    let mut row_of_col = vec![0usize; n + 1]; // 0 = free
    let mut way = vec![0usize; n + 1];
    let mut min_reduced = vec![f64::INFINITY; n + 1];
    let mut used = vec![false; n + 1];
    for i in 1..=n {
        row_of_col[0] = i;
        let mut j0 = 0usize;
        min_reduced.fill(f64::INFINITY);
        used.fill(false);
        loop {
            used[j0] = true;
            let i0 = row_of_col[j0];
            let row = &scores[(i0 - 1) * n..i0 * n];
            let ui = u[i0];
            let mut delta = f64::INFINITY;
            let mut j1 = 0usize;
            for j in 1..=n {
                if !used[j] {
                    let reduced = -row[j - 1] - ui - v[j];
                    if reduced < min_reduced[j] {
                        min_reduced[j] = reduced;
                        way[j] = j0;
                    }
                    if min_reduced[j] < delta {
                        delta = min_reduced[j];
                        j1 = j;
                    }
                }
            }
            for j in 0..=n {
                if used[j] {
                    u[row_of_col[j]] += delta;
                    v[j] -= delta;
                } else {
                    min_reduced[j] -= delta;
                }
            }
            j0 = j1;
            if row_of_col[j0] == 0 {
                break;
            }
        }
        // Augment along the recorded path back to the root.
        loop {
            let j1 = way[j0];
            row_of_col[j0] = row_of_col[j1];
            j0 = j1;
            if j0 == 0 {
                break;
            }
        }
    }
    let mut col_of_row = vec![0usize; n];
    for j in 1..=n {
        col_of_row[row_of_col[j] - 1] = j - 1;
    }
    col_of_row
}

/// Total score of an assignment.
pub fn total(scores: &[f64], n: usize, col_of_row: &[usize]) -> f64 {
    col_of_row.iter().enumerate().map(|(i, &j)| scores[i * n + j]).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every permutation of 0..n (Heap's algorithm).
    fn permutations(n: usize) -> Vec<Vec<usize>> {
        let mut a: Vec<usize> = (0..n).collect();
        let mut out = vec![a.clone()];
        let mut c = vec![0usize; n];
        let mut i = 0;
        while i < n {
            if c[i] < i {
                if i % 2 == 0 {
                    a.swap(0, i);
                } else {
                    a.swap(c[i], i);
                }
                out.push(a.clone());
                c[i] += 1;
                i = 0;
            } else {
                c[i] = 0;
                i += 1;
            }
        }
        out
    }

    #[test]
    fn matches_brute_force_over_all_permutations() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        for n in 1..=7 {
            let perms = permutations(n);
            for case in 0..30 {
                // Integer-valued scores in some cases, so that optima tie.
                let scores: Vec<f64> = (0..n * n)
                    .map(|_| {
                        if case % 2 == 0 {
                            rng.random_range(-3..4) as f64
                        } else {
                            rng.random_range(-1.0..1.0)
                        }
                    })
                    .collect();
                let got = hungarian(&scores, n);
                let mut sorted = got.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "not a permutation");
                let best = perms.iter().map(|p| total(&scores, n, p)).fold(f64::NEG_INFINITY, f64::max);
                assert!((total(&scores, n, &got) - best).abs() < 1e-9, "n={n} case {case}");
            }
        }
    }

    #[test]
    fn matches_scipy_linear_sum_assignment() {
        // Reference: scipy 1.17.1 `linear_sum_assignment(S, maximize=True)` on the matrix
        // S[i][j] = ((i * 7919 + j * 104729 + i * j * 31) % 1000) / 1000 for n = 60
        // (bench/attacks/hungarian_reference.py); optimal total score.
        const SCIPY_TOTAL: f64 = 58.055;
        let n = 60;
        let scores: Vec<f64> = (0..n * n)
            .map(|k| ((k / n * 7919 + k % n * 104_729 + (k / n) * (k % n) * 31) % 1000) as f64 / 1000.0)
            .collect();
        let got = hungarian(&scores, n);
        assert!((total(&scores, n, &got) - SCIPY_TOTAL).abs() < 1e-9, "{}", total(&scores, n, &got));
    }
}
