"""The DP-SGD privacy accountant (``linkrisk accountant``): epsilon of a run, or the noise
multiplier for a target epsilon. PLD by default (the tightest), RDP on request."""

from __future__ import annotations

from typing import Optional

from . import _linkrisk
from ._report import Report

__all__ = ["epsilon", "noise_multiplier"]

_PLD_DISCRETIZATION = 1e-4


def epsilon(
    sample_rate: float,
    noise_multiplier: float,
    delta: float,
    steps: Optional[int] = None,
    epochs: Optional[float] = None,
    accountant: str = "pld",
    rdp_orders: str = "extended",
    pld_discretization: float = _PLD_DISCRETIZATION,
    privacy_units: Optional[int] = None,
    allow_large_delta: bool = False,
) -> Report:
    """Epsilon of ``steps`` (or ``epochs``) DP-SGD steps with Poisson sampling rate
    ``sample_rate`` and noise multiplier ``noise_multiplier`` at ``delta``:
    ``linkrisk accountant --noise-multiplier ... --json``."""
    text = _linkrisk.epsilon(
        sample_rate, noise_multiplier, delta, steps=steps, epochs=epochs, accountant=accountant,
        rdp_orders=rdp_orders, pld_discretization=pld_discretization, privacy_units=privacy_units,
        allow_large_delta=allow_large_delta,
    )
    return Report("accountant", text)


def noise_multiplier(
    sample_rate: float,
    epsilon: float,
    delta: float,
    steps: Optional[int] = None,
    epochs: Optional[float] = None,
    accountant: str = "pld",
    rdp_orders: str = "extended",
    pld_discretization: float = _PLD_DISCRETIZATION,
    privacy_units: Optional[int] = None,
    allow_large_delta: bool = False,
) -> Report:
    """The smallest noise multiplier whose run meets (``epsilon``, ``delta``):
    ``linkrisk accountant --epsilon ... --json``."""
    text = _linkrisk.noise_multiplier(
        sample_rate, epsilon, delta, steps=steps, epochs=epochs, accountant=accountant,
        rdp_orders=rdp_orders, pld_discretization=pld_discretization, privacy_units=privacy_units,
        allow_large_delta=allow_large_delta,
    )
    return Report("accountant", text)
