"""Reference values for linkrisk's one-run privacy audit (audit/privacy_audit/one_run.rs).

The algorithm of Steinke, Nasr and Jagielski, "Privacy Auditing with One (1) Training Run"
(NeurIPS 2023), Appendix D, written out with SciPy's binomial distribution. Run:

    python3 -m venv /tmp/ref && /tmp/ref/bin/pip install scipy
    /tmp/ref/bin/python reference.py > reference.csv

Generated with SciPy 1.x (version printed in the CSV's first comment line).
"""
import math
import scipy
import scipy.stats


def p_value(m, r, v, eps, delta):
    q = 1.0 / (1.0 + math.exp(-eps))
    beta = scipy.stats.binom.sf(v - 1, r, q)
    alpha = 0.0
    total = 0.0
    for i in range(1, v + 1):
        total += scipy.stats.binom.pmf(v - i, r, q)
        if total > i * alpha:
            alpha = total / i
    return min(beta + alpha * delta * 2 * m, 1.0)


def eps_lower_bound(m, r, v, delta, p):
    if r == 0 or p_value(m, r, v, 0.0, delta) >= p:
        return 0.0
    lo, hi = 0.0, 1.0
    while p_value(m, r, v, hi, delta) < p:
        hi += 1.0
    while hi - lo > 1e-9:
        mid = 0.5 * (lo + hi)
        if p_value(m, r, v, mid, delta) < p:
            lo = mid
        else:
            hi = mid
    return lo


print(f"# scipy {scipy.__version__}")
print("kind,m,r,v,eps,delta,p,value")
for (m, r, v, eps, delta) in [
    (1000, 200, 200, 3.0, 6e-6), (1000, 200, 150, 0.5, 6e-6), (1000, 200, 120, 0.2, 1e-5),
    (1000, 100, 90, 1.0, 0.0), (500, 50, 30, 0.1, 1e-3), (2000, 400, 390, 4.0, 1e-5),
    (1000, 20, 20, 2.0, 6e-6), (100, 100, 50, 0.0, 1e-2),
]:
    print(f"p_value,{m},{r},{v},{eps!r},{delta!r},,{float(p_value(m, r, v, eps, delta))!r}")
for (m, r, v, delta, p) in [
    (1000, 200, 200, 6e-6, 0.0125), (1000, 200, 150, 6e-6, 0.05), (1000, 200, 120, 1e-5, 0.05),
    (1000, 100, 90, 0.0, 0.05), (1000, 40, 40, 6e-6, 0.0125), (1000, 400, 260, 6e-6, 0.0125),
    (1000, 200, 105, 6e-6, 0.05), (2000, 400, 390, 1e-5, 0.05),
]:
    print(f"eps_lb,{m},{r},{v},,{delta!r},{p!r},{float(eps_lower_bound(m, r, v, delta, p))!r}")
