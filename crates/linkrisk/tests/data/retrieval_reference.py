"""Reference values for crates/linkrisk/src/metrics/retrieval.rs and bootstrap.rs tests.

Run with /work/venv/bin/python; prints the numbers quoted in those tests.
"""
import numpy as np
import scipy
from scipy.stats import hypergeom

print("scipy", scipy.__version__, "numpy", np.__version__)
# Pool of 100 = anchor + 99 negatives drawn from 999 negatives, 40 of which beat the anchor.
# P(hit@1) = P(no beater drawn); P(hit@5) = P(at most 4 beaters drawn).
print("hit@1", repr(hypergeom.pmf(0, 999, 40, 99)))
print("hit@5", repr(hypergeom.cdf(4, 999, 40, 99)))
# Large case: 43792 negatives, 15 beaters, pool of 10,000.
print("hit@1 large", repr(hypergeom.pmf(0, 43792, 15, 9999)))
print("hit@3 large", repr(hypergeom.cdf(2, 43792, 15, 9999)))
