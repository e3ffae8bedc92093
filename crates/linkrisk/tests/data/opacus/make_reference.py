#!/usr/bin/env python3
"""Reference values for linkrisk's RDP accountant, computed with Opacus's own code.

Opacus 1.6.0's accountant code (RDPAccountant, analysis/rdp.py, utils.get_noise_multiplier)
needs only numpy and scipy, but `import opacus` pulls in torch. This script loads the
accountant files straight from the Opacus wheel with importlib, stubbing the two torch-only
imports (`opacus.optimizers.DPOptimizer`, the accountant registry), so every number below
comes from Opacus's unmodified functions.

Usage (from the repository root):
    /work/venv/bin/pip download opacus==1.6.0 --no-deps -d /tmp/opacus_dl
    (cd /tmp/opacus_dl && unzip -o -q opacus-1.6.0-py3-none-any.whl 'opacus/*')
    /work/venv/bin/python crates/linkrisk/tests/data/opacus/make_reference.py /tmp/opacus_dl

Writes, beside this script:
    rdp_orders.csv        q, sigma, alpha, rdp          (_compute_rdp, one step, per order)
    epsilon.csv           q, sigma, steps, delta, epsilon, best_order  (RDPAccountant)
    noise_multiplier.csv  epsilon, delta, q, steps, noise_multiplier (get_noise_multiplier,
                          its default epsilon_tolerance 0.01), noise_multiplier_tight (the
                          same with epsilon_tolerance 1e-9)
"""

import csv
import importlib.util
import os
import sys
import types
import warnings

import numpy as np
import scipy


def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_opacus(root):
    base = os.path.join(root, "opacus", "accountants")
    for pkg in ["opacus", "opacus.accountants", "opacus.accountants.analysis"]:
        module = types.ModuleType(pkg)
        module.__path__ = []
        sys.modules[pkg] = module
    optimizers = types.ModuleType("opacus.optimizers")
    optimizers.DPOptimizer = object  # only used in a type annotation of IAccountant
    sys.modules["opacus.optimizers"] = optimizers
    load("opacus.accountants.accountant", os.path.join(base, "accountant.py"))
    analysis = load("opacus.accountants.analysis.rdp", os.path.join(base, "analysis", "rdp.py"))
    sys.modules["opacus.accountants.analysis"].rdp = analysis
    rdp_accountant = load("opacus.accountants.rdp", os.path.join(base, "rdp.py"))
    sys.modules["opacus.accountants"].create_accountant = (
        lambda mechanism: rdp_accountant.RDPAccountant()
    )
    utils = load("opacus.accountants.utils", os.path.join(base, "utils.py"))
    return analysis, rdp_accountant.RDPAccountant, utils.get_noise_multiplier


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "/tmp/opacus_dl"
    analysis, RDPAccountant, get_noise_multiplier = load_opacus(root)
    here = os.path.dirname(os.path.abspath(__file__))
    warnings.simplefilter("ignore")  # "optimal order is the largest alpha" notices

    rates = [1e-5, 1e-4, 256 / 60000, 0.01, 0.05, 0.1, 0.3, 0.5, 0.99, 1.0]
    sigmas = [0.5, 0.7, 1.0, 1.1, 2.0, 4.0, 10.0, 50.0]
    alphas = [1.1, 1.5, 2.0, 2.5, 3.7, 5.0, 7.3, 10.9, 12, 32, 63]
    with open(os.path.join(here, "rdp_orders.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["q", "sigma", "alpha", "rdp"])
        for q in rates:
            for sigma in sigmas:
                for alpha in alphas:
                    rdp = analysis._compute_rdp(q, sigma, alpha)
                    w.writerow([repr(q), repr(sigma), repr(alpha), repr(float(rdp))])

    cases = []
    for q in [1e-4, 256 / 60000, 0.01, 0.1, 0.5, 1.0]:
        for sigma in [0.6, 1.0, 1.1, 2.0, 8.0]:
            for steps in [1, 100, 1000, 3515, 100000]:
                for delta in [1e-5, 6e-6]:
                    cases.append((q, sigma, steps, delta))
    # The two examples quoted in the issue, and a few extremes.
    cases += [(256 / 60000, 1.1, 3515, 1e-5), (0.01, 1.0, 1000, 1e-5),
              (1e-5, 0.3, 10, 1e-8), (0.02, 20.0, 1, 1e-10), (0.001, 0.8, 2_000_000, 1e-6)]
    with open(os.path.join(here, "epsilon.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["q", "sigma", "steps", "delta", "epsilon", "best_order"])
        for q, sigma, steps, delta in cases:
            accountant = RDPAccountant()
            accountant.history = [(sigma, q, steps)]
            eps, order = accountant.get_privacy_spent(delta=delta)
            w.writerow([repr(q), repr(sigma), steps, repr(delta), repr(float(eps)), repr(float(order))])

    with open(os.path.join(here, "noise_multiplier.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["epsilon", "delta", "q", "steps", "noise_multiplier", "noise_multiplier_tight"])
        for eps, delta, q, steps in [
            (0.34, 6e-6, 0.01, 1000),
            (1.0, 1e-5, 256 / 60000, 3515),
            (3.0, 1e-5, 0.01, 500),
            (8.0, 1e-5, 0.05, 200),
            (0.5, 1e-6, 0.001, 10000),
            (2.0, 1e-5, 1.0, 10),
        ]:
            sigma = get_noise_multiplier(target_epsilon=eps, target_delta=delta, sample_rate=q, steps=steps)
            tight = get_noise_multiplier(
                target_epsilon=eps, target_delta=delta, sample_rate=q, steps=steps, epsilon_tolerance=1e-9
            )
            w.writerow([repr(eps), repr(delta), repr(q), steps, repr(float(sigma)), repr(float(tight))])
    print(f"numpy {np.__version__}, scipy {scipy.__version__}; wrote {here}")


if __name__ == "__main__":
    main()
