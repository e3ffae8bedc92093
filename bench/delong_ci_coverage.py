"""Coverage of 95% DeLong intervals for AUROC: plain (Wald on the AUROC scale, clipped to
[0, 1]) vs logit-transformed. Binormal model: positives ~ N(delta, 1), negatives ~ N(0, 1),
true AUROC = Phi(delta / sqrt(2)). The numbers are quoted in docs/METHODS.md.

Run: /work/venv/bin/python bench/delong_ci_coverage.py
"""

import numpy as np
from scipy.stats import norm, rankdata

rng = np.random.default_rng(7)
z = norm.ppf(0.975)


def fast_delong(pos, neg):
    m, n = len(pos), len(neg)
    tz = rankdata(np.concatenate([pos, neg]))
    tx, ty = rankdata(pos), rankdata(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1 - (tz[m:] - ty) / m
    return auc, v10.var(ddof=1) / m + v01.var(ddof=1) / n


print(f"{'AUROC':>6} {'m=n':>5} {'plain':>7} {'logit':>7} {'degenerate':>10}")
for true_auc in [0.75, 0.9, 0.95, 0.98]:
    delta = np.sqrt(2) * norm.ppf(true_auc)
    for size in [20, 50, 200]:
        reps = 4000
        hit_plain = hit_logit = degenerate = 0
        for _ in range(reps):
            auc, var = fast_delong(rng.normal(delta, 1, size), rng.normal(0, 1, size))
            se = np.sqrt(var)
            lo, hi = max(0, auc - z * se), min(1, auc + z * se)
            hit_plain += lo <= true_auc <= hi
            if 0 < auc < 1:
                lg = np.log(auc / (1 - auc))
                sl = se / (auc * (1 - auc))
                lo, hi = 1 / (1 + np.exp(-(lg - z * sl))), 1 / (1 + np.exp(-(lg + z * sl)))
                hit_logit += lo <= true_auc <= hi
            else:
                degenerate += 1
        print(f"{true_auc:6.2f} {size:5d} {hit_plain / reps:7.3f} {hit_logit / reps:7.3f} {degenerate:10d}")
