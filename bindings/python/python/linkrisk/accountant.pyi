from typing import Optional

from ._report import Report

def epsilon(
    sample_rate: float,
    noise_multiplier: float,
    delta: float,
    steps: Optional[int] = None,
    epochs: Optional[float] = None,
    accountant: str = "pld",
    rdp_orders: str = "extended",
    pld_discretization: float = 1e-4,
    privacy_units: Optional[int] = None,
    allow_large_delta: bool = False,
) -> Report: ...
def noise_multiplier(
    sample_rate: float,
    epsilon: float,
    delta: float,
    steps: Optional[int] = None,
    epochs: Optional[float] = None,
    accountant: str = "pld",
    rdp_orders: str = "extended",
    pld_discretization: float = 1e-4,
    privacy_units: Optional[int] = None,
    allow_large_delta: bool = False,
) -> Report: ...
