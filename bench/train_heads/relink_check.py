#!/usr/bin/env python3
"""Quick image->report re-linkage check of cohorts written by `linkrisk train-heads`
(or any cohort with image.npy / report.npy / metadata.csv with a split column).

For each split: Recall@1 in random pools of N=100 (the true report plus 99 other records of
the same split, one pool per query, numpy seed 0) and Recall@1 against the whole split.
Not the audit (that is `linkrisk relink`); a dependency-free sanity check used for the
numbers in docs/METHODS.md ("Utility at small epsilon").

Usage: /work/venv/bin/python bench/train_heads/relink_check.py DIR [DIR ...]
"""

import csv
import json
import os
import sys

import numpy as np


def load(d):
    rows = list(csv.DictReader(open(os.path.join(d, "metadata.csv"))))
    img = np.load(os.path.join(d, "image.npy")).astype(np.float64)
    rep = np.load(os.path.join(d, "report.npy")).astype(np.float64)
    img /= np.linalg.norm(img, axis=1, keepdims=True)
    rep /= np.linalg.norm(rep, axis=1, keepdims=True)
    return rows, img, rep


def recall_at_1(img, rep, idx, rng, pool=100):
    sims = img[idx] @ rep[idx].T
    n = len(idx)
    hits = 0
    for q in range(n):
        negatives = rng.choice(np.delete(np.arange(n), q), pool - 1, replace=False)
        hits += bool((sims[q, q] > sims[q, negatives]).all())
    full = float((sims.argmax(1) == np.arange(n)).mean())
    return hits / n, full


def main():
    rng = np.random.default_rng(0)
    for d in sys.argv[1:]:
        rows, img, rep = load(d)
        ledger_path = os.path.join(d, "privacy.json")
        ledger = json.load(open(ledger_path)) if os.path.exists(ledger_path) else {}
        line = [d, f"epsilon={ledger.get('epsilon')}", f"sigma={ledger.get('noise_multiplier')}"]
        for split in sorted({r["split"] for r in rows}):
            idx = np.array([i for i, r in enumerate(rows) if r["split"] == split])
            r100, full = recall_at_1(img, rep, idx, rng)
            line.append(f"{split}: R@1(N=100) {r100:.3f} R@1(all {len(idx)}) {full:.4f}")
        print("  ".join(line))


if __name__ == "__main__":
    main()
