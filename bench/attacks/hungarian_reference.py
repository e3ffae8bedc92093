"""Reference optimum for crates/linkrisk/src/attack/assignment/hungarian.rs
(`matches_scipy_linear_sum_assignment`): scipy's linear_sum_assignment on a deterministic
integer-hash matrix that Rust rebuilds exactly.

Run: /work/venv/bin/python bench/attacks/hungarian_reference.py
"""
import numpy as np
import scipy
from scipy.optimize import linear_sum_assignment

n = 60
i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
s = ((i * 7919 + j * 104729 + i * j * 31) % 1000) / 1000.0
rows, cols = linear_sum_assignment(s, maximize=True)
print(f"scipy {scipy.__version__}: n={n} optimal total {s[rows, cols].sum()!r}")
