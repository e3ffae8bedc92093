"""Reference fits for crates/linkrisk/src/probe (L2-regularised logistic regression).

Run: /work/venv/bin/python crates/linkrisk/tests/data/reference_logistic.py
Writes logistic_reference.json beside this script.

scikit-learn's LogisticRegression(C=C) minimises C * sum_i logloss + |w|^2 / 2 with an
unpenalised intercept. linkrisk minimises (1/n) sum_i logloss + (lambda/2) |w|^2; the two
have the same minimiser when C = 1 / (lambda * n), n = rows used for that target.
Fitted with solver="newton-cholesky", tol=1e-12 (converges to machine precision).
Features are float32 values (as cohorts store them), fitted in float64.
"""

import json
import pathlib

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

rng = np.random.default_rng(11)
n, d = 400, 16
# Embedding-like features: a shared offset plus anisotropic noise, rows L2-normalised.
scales = np.linspace(2.0, 0.1, d)
raw = 1.5 + rng.normal(size=(n, d)) * scales
x = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
xd = x.astype(np.float64)
signal = xd @ rng.normal(size=(d, 3)) * 6.0
logits = signal - signal.mean(axis=0) + np.array([0.0, 0.5, -4.0])
y = (rng.random((n, 3)) < 1 / (1 + np.exp(-logits))).astype(int)
# target 1: 15% of rows unlabelled (e.g. uncertain); encoded as -1
y[rng.random(n) < 0.15, 1] = -1
lambdas = [1e-2, 1e-3, 3e-4]

targets = []
for t in range(3):
    active = y[:, t] >= 0
    n_t = int(active.sum())
    c = 1.0 / (lambdas[t] * n_t)
    model = LogisticRegression(C=c, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    model.fit(xd[active], y[active, t])
    w, b = model.coef_[0], model.intercept_[0]
    z = xd[active] @ w + b
    yt = y[active, t]
    objective = np.mean(np.logaddexp(0, z) - yt * z) + 0.5 * lambdas[t] * w @ w
    targets.append(
        {
            "lambda": lambdas[t],
            "n_train": n_t,
            "sklearn_C": c,
            "coef": w.tolist(),
            "intercept": float(b),
            "probability": model.predict_proba(xd)[:, 1].tolist(),
            "objective": float(objective),
        }
    )

out = {
    "generated_by": "crates/linkrisk/tests/data/reference_logistic.py",
    "versions": {"numpy": np.__version__, "scikit-learn": sklearn.__version__},
    "n": n,
    "d": d,
    "features": [float(v) for v in x.ravel()],
    "labels": y.T.tolist(),
    "targets": targets,
}
path = pathlib.Path(__file__).with_name("logistic_reference.json")
path.write_text(json.dumps(out) + "\n")
print("wrote", path, [t["objective"] for t in targets], [np.mean(y[:, t] == 1) for t in range(3)])
