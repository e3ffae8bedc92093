"""Independent check of synthetic cohorts written by `linkrisk synth` (numpy, scipy, scikit-learn).

Usage: /work/venv/bin/python bench/synth/check_cohort.py [--quick] DIR [DIR ...]

For each cohort, on the `test` split:
- image->report top-1 accuracy by brute-force cosine nearest neighbour;
- top-1 within pathology-matched candidate sets (same 14-label vector; and same set of
  positive findings) next to the exact expectation for random candidate sets of the same
  sizes (hypergeometric: no candidate that beats the true report is drawn);
- patient re-identification rank-1 on image.npy and report.npy (query vs every other test
  record; queries whose patient has another test study);
- unless --quick: logistic-regression probes (train split -> test split) for sex and the
  14 findings (macro AUROC) on image.npy and image_features.npy, and a linear projection head
  learnt from the frozen features (CCA on the train split, 32 components), scored by top-1 on
  the test and external splits;
- finding prevalence per split.
"""
import csv
import sys
from collections import defaultdict

import numpy as np
from scipy.special import gammaln
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

FINDINGS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
            "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
            "Pleural Other", "Fracture", "Support Devices"]


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def log_choose(n, k):
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def top1(a, b):
    s = unit(a) @ unit(b).T
    return np.mean(s.argmax(1) == np.arange(len(a)))


def matched_pools(S, keys):
    n = len(S)
    beaters = (S > np.diag(S)[:, None]).sum(1)
    groups = defaultdict(list)
    for i, k in enumerate(keys):
        groups[k].append(i)
    hit, expected, chance = [], [], []
    for i, k in enumerate(keys):
        g = groups[k]
        if len(g) < 2:
            continue
        hit.append(S[i, g].argmax() == g.index(i))
        m = len(g)
        free = n - 1 - beaters[i]
        expected.append(0.0 if free < m - 1 else np.exp(log_choose(free, m - 1) - log_choose(n - 1, m - 1)))
        chance.append(1 / m)
    return np.mean(hit), np.mean(expected), np.mean(chance), len(hit)


def reid(x, patient):
    s = unit(x) @ unit(x).T
    np.fill_diagonal(s, -np.inf)
    n = len(x)
    has_other = np.array([(patient == patient[i]).sum() > 1 for i in range(n)])
    rank1 = np.mean((patient[s.argmax(1)] == patient)[has_other])
    chance = np.mean([((patient == patient[i]).sum() - 1) / (n - 1) for i in np.where(has_other)[0]])
    return rank1, chance, has_other.sum()


def cca_head(x, y, train, evaluate, k=32, reg=0.1):
    mx, my = x[train].mean(0), y[train].mean(0)

    def whitener(a):
        w, v = np.linalg.eigh(np.cov(a, rowvar=False) + reg * np.eye(a.shape[1]))
        return v @ np.diag(w ** -0.5) @ v.T

    wx, wy = whitener(x[train] - mx), whitener(y[train] - my)
    u, _, vt = np.linalg.svd(((x[train] - mx) @ wx).T @ ((y[train] - my) @ wy))
    return {name: top1((x[m] - mx) @ wx @ u[:, :k], (y[m] - my) @ wy @ vt.T[:, :k]) for name, m in evaluate.items()}


def check(d, quick):
    rows = list(csv.DictReader(open(f"{d}/metadata.csv")))
    split = np.array([r["split"] for r in rows])
    patient = np.array([r["patient_id"] for r in rows])
    sex = np.array([r["sex"] == "F" for r in rows])
    labels = np.array([[r[f] for f in FINDINGS] for r in rows])
    positive = labels == "1"
    img = np.load(f"{d}/image.npy").astype(np.float64)
    rep = np.load(f"{d}/report.npy").astype(np.float64)
    te, tr, ex = split == "test", split == "train", split == "external"
    n = te.sum()
    S = unit(img[te]) @ unit(rep[te]).T
    print(f"== {d}")
    t1 = np.mean(S.argmax(1) == np.arange(n))
    print(f"test records {n}; image->report top-1 {t1:.4f} (chance {1 / n:.5f}, lift {t1 * n:.1f})")
    for name, keys in [("same 14 labels", list(map(tuple, labels[te]))),
                       ("same positives", list(map(tuple, positive[te])))]:
        hit, expected, chance, q = matched_pools(S, keys)
        print(f"matched pools ({name}): top-1 {hit:.3f} vs random pools of the same sizes {expected:.3f}; "
              f"chance {chance:.3f} ({q} queries)")
    for view, x in [("image.npy", img), ("report.npy", rep)]:
        r, c, q = reid(x[te], patient[te])
        print(f"re-ID rank-1 on {view} {r:.3f} (chance {c:.4f}, {q} queries)")
    if not quick:
        feats = np.load(f"{d}/image_features.npy").astype(np.float64)
        rfeats = np.load(f"{d}/report_features.npy").astype(np.float64)

        def probe(x, y):
            clf = LogisticRegression(max_iter=3000, C=1.0).fit(unit(x[tr]), y[tr])
            return roc_auc_score(y[te], clf.predict_proba(unit(x[te]))[:, 1])

        print(f"sex AUROC (logistic probe on image.npy) {probe(img, sex):.3f}")
        fa = [probe(img, positive[:, k]) for k in range(14)]
        ff = [probe(feats, positive[:, k]) for k in range(14)]
        print(f"finding macro AUROC: image.npy {np.mean(fa):.3f}, image_features {np.mean(ff):.3f}")
        print("per finding (image.npy): " + " ".join(f"{FINDINGS[k][:8]}={fa[k]:.2f}" for k in range(14)))
        head = cca_head(feats, rfeats, tr, {"test": te, "external": ex})
        print(f"CCA head (32 components) on frozen features, image->report top-1: "
              f"test {head['test']:.3f} ({te.sum()} records), external {head['external']:.3f} ({ex.sum()} records)")
    for name in ["train", "test", "external"]:
        m = split == name
        if m.any():
            prev = " ".join(f"{FINDINGS[k][:8]}={positive[m, k].mean():.3f}" for k in range(14))
            print(f"prevalence {name}: {prev}")


quick = "--quick" in sys.argv
for d in [a for a in sys.argv[1:] if not a.startswith("--")]:
    check(d, quick)
