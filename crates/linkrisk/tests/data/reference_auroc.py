"""Reference values for crates/linkrisk/src/metrics/auroc.rs.

Run: /work/venv/bin/python crates/linkrisk/tests/data/reference_auroc.py
Writes auroc_reference.json beside this script. Library versions are recorded in the file.

* AUROC and ROC curves: scikit-learn `roc_auc_score` and `roc_curve(drop_intermediate=True)`.
* DeLong variance/covariance: a direct O(m*n) implementation of DeLong, DeLong &
  Clarke-Pearson (1988), Biometrics 44:837-845 (structural components from the pairwise
  kernel psi(x, y) = 1 if x > y, 1/2 if x == y, 0 otherwise; sample variances with ddof=1),
  written here independently of the fast midrank algorithm (Sun & Xu 2014) used in Rust.
* Tests and intervals: scipy.stats.norm.
"""

import json
import pathlib

import numpy as np
import scipy
import sklearn
from scipy.stats import norm
from sklearn.metrics import roc_auc_score, roc_curve


def delong_direct(scores, labels):
    """scores: (K, N) array; labels: (N,) 0/1. Returns (aucs (K,), cov (K, K))."""
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    labels = np.asarray(labels).astype(bool)
    pos = scores[:, labels]
    neg = scores[:, ~labels]
    m, n = pos.shape[1], neg.shape[1]
    # psi[k, i, j] for positive i and negative j
    psi = (pos[:, :, None] > neg[:, None, :]).astype(np.float64) + 0.5 * (
        pos[:, :, None] == neg[:, None, :]
    )
    aucs = psi.mean(axis=(1, 2))
    v10 = psi.mean(axis=2)  # (K, m)
    v01 = psi.mean(axis=1)  # (K, n)
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return aucs, s10 / m + s01 / n


def ci_plain(auc, var, level=0.95):
    z = norm.ppf(0.5 + level / 2)
    se = np.sqrt(var)
    return [max(0.0, auc - z * se), min(1.0, auc + z * se)]


def ci_logit(auc, var, level=0.95):
    z = norm.ppf(0.5 + level / 2)
    lg = np.log(auc / (1 - auc))
    se = np.sqrt(var) / (auc * (1 - auc))
    expit = lambda t: 1 / (1 + np.exp(-t))
    return [expit(lg - z * se), expit(lg + z * se)]


def fixture(name, scores, labels):
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    fpr, tpr, thr = roc_curve(labels, scores, drop_intermediate=True)
    aucs, cov = delong_direct(scores[None, :], labels)
    auc = float(roc_auc_score(labels, scores))
    assert abs(auc - aucs[0]) < 1e-12
    var = float(cov[0, 0])
    return {
        "name": name,
        "scores": scores.tolist(),
        "labels": labels.tolist(),
        "roc_auc_score": auc,
        "roc_fpr": fpr.tolist(),
        "roc_tpr": tpr.tolist(),
        # thresholds[0] is +inf in scikit-learn >= 1.3; JSON has no inf, so it is dropped
        "roc_thresholds_after_first": thr[1:].tolist(),
        "delong_variance": var,
        "ci95_plain": ci_plain(auc, var),
        "ci95_logit": ci_logit(auc, var) if 0 < auc < 1 else None,
    }


rng = np.random.default_rng(20240611)
fixtures = []
# 1. tiny hand fixture with ties across classes
fixtures.append(fixture("tiny_ties", [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.1], [0, 0, 1, 1, 1, 0, 1, 1]))
# 2. 300 scores rounded to one decimal (heavy ties), imbalanced labels
labels = (rng.random(300) < 0.3).astype(int)
scores = np.round(rng.normal(loc=0.8 * labels, scale=1.0), 1)
fixtures.append(fixture("rounded_300", scores, labels))
# 3. integer scores 0..4 (ordinal ratings, extreme ties)
labels = (rng.random(120) < 0.5).astype(int)
scores = np.clip(np.round(rng.normal(loc=1.5 + labels, scale=1.0)), 0, 4)
fixtures.append(fixture("ordinal_120", scores, labels))
# 4. continuous scores, no ties, high AUROC (near 1)
labels = (rng.random(80) < 0.4).astype(int)
scores = rng.normal(loc=3.0 * labels, scale=1.0)
fixtures.append(fixture("continuous_high_80", scores, labels))
# 5. all scores tied
fixtures.append(fixture("all_tied", [0.5] * 10, [0, 1] * 5))

# Paired DeLong: two scores on the same records (covariance and test).
labels = (rng.random(200) < 0.35).astype(int)
latent = rng.normal(size=200)
score_a = np.round(latent + 1.0 * labels + 0.5 * rng.normal(size=200), 1)
score_b = np.round(latent + 0.6 * labels + 0.8 * rng.normal(size=200), 1)
aucs, cov = delong_direct(np.vstack([score_a, score_b]), labels)
diff = aucs[0] - aucs[1]
se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
z = diff / se
paired = {
    "scores_a": score_a.tolist(),
    "scores_b": score_b.tolist(),
    "labels": labels.tolist(),
    "aucs": aucs.tolist(),
    "cov": cov.tolist(),
    "difference": float(diff),
    "se": float(se),
    "z": float(z),
    "p_value": float(2 * norm.sf(abs(z))),
}

# Independent samples: DeLong on each, z test of the difference.
la = (rng.random(150) < 0.4).astype(int)
sa = np.round(rng.normal(loc=1.2 * la), 1)
lb = (rng.random(110) < 0.5).astype(int)
sb = np.round(rng.normal(loc=0.7 * lb), 1)
a_auc, a_cov = delong_direct(sa[None, :], la)
b_auc, b_cov = delong_direct(sb[None, :], lb)
diff = a_auc[0] - b_auc[0]
se = np.sqrt(a_cov[0, 0] + b_cov[0, 0])
z = diff / se
zq = norm.ppf(0.975)
independent = {
    "scores_a": sa.tolist(),
    "labels_a": la.tolist(),
    "scores_b": sb.tolist(),
    "labels_b": lb.tolist(),
    "auc_a": float(a_auc[0]),
    "var_a": float(a_cov[0, 0]),
    "auc_b": float(b_auc[0]),
    "var_b": float(b_cov[0, 0]),
    "difference": float(diff),
    "se": float(se),
    "z": float(z),
    "p_value": float(2 * norm.sf(abs(z))),
    "ci95_difference": [float(diff - zq * se), float(diff + zq * se)],
}

out = {
    "generated_by": "crates/linkrisk/tests/data/reference_auroc.py",
    "versions": {"numpy": np.__version__, "scipy": scipy.__version__, "scikit-learn": sklearn.__version__},
    "fixtures": fixtures,
    "paired": paired,
    "independent": independent,
}
path = pathlib.Path(__file__).with_name("auroc_reference.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print("wrote", path)
