#!/usr/bin/env python3
"""Write a large synthetic paired cohort for the scale-out measurements (docs/PERFORMANCE.md,
"Scale-out"): N records of N patients (one record each), views `image` and `report` of
dimension D, float32. report_i is a random Gaussian vector; image_i = report_i + noise, so
re-linkage succeeds for a fraction of queries. Columns: id, patient_id, split (all test).

Usage: /work/venv/bin/python bench/shard/make_cohort.py OUT_DIR [--n 400000] [--dim 512]
"""
import argparse
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--n", type=int, default=400_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--noise", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    with open(os.path.join(a.out, "metadata.csv"), "w") as f:
        f.write("id,patient_id,split\n")
        f.writelines(f"r{i},p{i},test\n" for i in range(a.n))
    # Written in row blocks so memory stays at one view.
    report = np.lib.format.open_memmap(os.path.join(a.out, "report.npy"), mode="w+", dtype=np.float32, shape=(a.n, a.dim))
    image = np.lib.format.open_memmap(os.path.join(a.out, "image.npy"), mode="w+", dtype=np.float32, shape=(a.n, a.dim))
    step = 50_000
    for s in range(0, a.n, step):
        e = min(a.n, s + step)
        r = rng.standard_normal((e - s, a.dim), dtype=np.float32)
        report[s:e] = r
        image[s:e] = r + a.noise * rng.standard_normal((e - s, a.dim), dtype=np.float32)
    report.flush()
    image.flush()
    print(f"wrote {a.n} x {a.dim} image/report to {a.out}")


if __name__ == "__main__":
    main()
