"""Independent check of a synthetic cohort written by `linkrisk synth` (numpy + scikit-learn).

Usage: /work/venv/bin/python bench/synth/check_cohort.py DIR [DIR ...]

For each cohort, on the `test` split: image->report top-1 accuracy (brute force), the same
within pathology-matched candidate sets (identical 14-label vector) next to random candidate
sets of the same sizes, patient re-identification rank-1 on image.npy (query vs all other test
images, queries whose patient has another test study), a logistic-regression probe for sex and
for the findings (train split -> test split), and finding prevalence per split.
"""
import csv
import sys
from collections import defaultdict

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

FINDINGS = ["No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion",
            "Edema", "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion",
            "Pleural Other", "Fracture", "Support Devices"]


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def check(d):
    rows = list(csv.DictReader(open(f"{d}/metadata.csv")))
    split = np.array([r["split"] for r in rows])
    patient = np.array([r["patient_id"] for r in rows])
    sex = np.array([r["sex"] == "F" for r in rows])
    labels = np.array([[r[f] for f in FINDINGS] for r in rows])
    positive = labels == "1"
    img = np.load(f"{d}/image.npy")
    rep = np.load(f"{d}/report.npy")
    feats = np.load(f"{d}/image_features.npy")
    te = np.where(split == "test")[0]
    tr = np.where(split == "train")[0]
    I, R = unit(img[te]), unit(rep[te])
    S = I @ R.T
    n = len(te)
    top1 = np.mean(S.argmax(1) == np.arange(n))
    groups = defaultdict(list)
    for i, key in enumerate(map(tuple, labels[te])):
        groups[key].append(i)
    rng = np.random.default_rng(0)
    matched, random_pool, chance = [], [], []
    for i, key in enumerate(map(tuple, labels[te])):
        g = groups[key]
        if len(g) < 5:
            continue
        matched.append(S[i, g].argmax() == g.index(i))
        others = rng.choice(np.delete(np.arange(n), i), len(g) - 1, replace=False)
        pool = np.concatenate([[i], others])
        random_pool.append(S[i, pool].argmax() == 0)
        chance.append(1 / len(g))
    SI = I @ I.T
    np.fill_diagonal(SI, -np.inf)
    pt = patient[te]
    has_other = np.array([(pt == pt[i]).sum() > 1 for i in range(n)])
    reid = np.mean((pt[SI.argmax(1)] == pt)[has_other])
    reid_chance = np.mean([((pt == pt[i]).sum() - 1) / (n - 1) for i in np.where(has_other)[0]])

    def probe(x, y):
        clf = LogisticRegression(max_iter=3000, C=1.0).fit(unit(x[tr]), y[tr])
        return roc_auc_score(y[te], clf.predict_proba(unit(x[te]))[:, 1])

    if "--quick" in sys.argv:
        print(f"{d}: top1 {top1:.4f} matched {np.mean(matched):.3f} random {np.mean(random_pool):.3f} chance {np.mean(chance):.3f} reid {reid:.3f}")
        return
    sex_auc = probe(img, sex)
    finding_auc = [probe(img, positive[:, k]) for k in range(14)]
    feature_auc = [probe(feats, positive[:, k]) for k in range(14)]
    print(f"== {d}")
    print(f"test records {n}; image->report top-1 {top1:.4f} (chance {1 / n:.5f}, lift {top1 * n:.1f})")
    print(f"pathology-matched top-1 {np.mean(matched):.3f} vs random pools of the same sizes "
          f"{np.mean(random_pool):.3f}; chance {np.mean(chance):.3f} ({len(matched)} queries)")
    print(f"re-ID rank-1 on image.npy {reid:.3f} (chance {reid_chance:.4f}, {has_other.sum()} queries)")
    print(f"sex AUROC (image.npy probe) {sex_auc:.3f}")
    print(f"finding macro AUROC: image.npy {np.mean(finding_auc):.3f}, image_features {np.mean(feature_auc):.3f}")
    for name in ["train", "test", "external"]:
        m = split == name
        if m.any():
            prev = " ".join(f"{FINDINGS[k][:6]}={positive[m, k].mean():.3f}" for k in range(14))
            print(f"prevalence {name}: {prev}")


for d in [a for a in sys.argv[1:] if not a.startswith("--")]:
    check(d)
