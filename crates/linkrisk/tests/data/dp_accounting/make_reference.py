"""Reference epsilons of Google's PLD accountant for linkrisk's PLD tests.

Run: python3 -m venv v && v/bin/pip install dp-accounting==0.6.0 && v/bin/python make_reference.py
(dp-accounting 0.6.0, numpy 2.4.6, scipy 1.17.1 produced pld_epsilon.csv). Each row: the
Poisson sampling rate q, noise multiplier sigma, steps, delta, discretisation interval and the
epsilon of `PLDAccountant(ADD_OR_REMOVE_ONE, value_discretization_interval=d)` after
`PoissonSampledDpEvent(q, GaussianDpEvent(sigma))` composed `steps` times, and the RDP
accountant's epsilon (dp_accounting's `RdpAccountant` with its default orders) beside it.
"""
import csv
import sys

import dp_accounting
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

SETTINGS = [
    # q, sigma, steps, delta, discretisation
    (0.01, 1.0, 1000, 1e-5, 1e-4),
    (0.01, 2.0, 1000, 6e-6, 1e-4),
    (0.01, 5.0, 1000, 6e-6, 1e-4),
    (0.004267, 1.1, 3515, 1e-5, 1e-4),
    (0.05, 1.5, 200, 1e-5, 1e-4),
    (0.1, 0.8, 50, 1e-5, 1e-4),
    (0.2, 3.0, 100, 6e-6, 1e-4),
    (0.001, 0.7, 10000, 1e-6, 1e-4),
    (1.0, 4.0, 16, 1e-5, 1e-4),
    (0.02, 20.0, 500, 6e-6, 1e-4),
    (0.01, 60.0, 1000, 6e-6, 1e-4),
    (0.3, 1.2, 30, 1e-3, 1e-4),
    (0.01, 2.0, 1000, 6e-6, 1e-3),
]


def main():
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["q", "sigma", "steps", "delta", "discretization", "epsilon_pld", "epsilon_rdp"])
    for q, sigma, steps, delta, d in SETTINGS:
        event = dp_event.SelfComposedDpEvent(
            dp_event.PoissonSampledDpEvent(q, dp_event.GaussianDpEvent(sigma)), steps)
        pld = pld_privacy_accountant.PLDAccountant(
            dp_accounting.NeighboringRelation.ADD_OR_REMOVE_ONE, value_discretization_interval=d)
        pld.compose(event)
        rdp = rdp_privacy_accountant.RdpAccountant()
        rdp.compose(event)
        w.writerow([repr(q), repr(sigma), steps, repr(delta), repr(d),
                    repr(float(pld.get_epsilon(delta))), repr(float(rdp.get_epsilon(delta)))])


if __name__ == "__main__":
    main()
