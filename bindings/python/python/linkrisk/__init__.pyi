"""Type stubs of the linkrisk Python package (docs/PYTHON.md)."""

import os
from typing import Any, Callable, Dict, Iterable, KeysView, List, Mapping, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

from . import accountant as accountant
from ._errors import ConfigError as ConfigError, InputError as InputError, LinkriskError as LinkriskError

__version__: str
DEFAULT_SIDE_FOLDS: int

PathLike = Union[str, "os.PathLike[str]"]
#: None (no display), True (a tqdm bar when tqdm is installed) or progress(what, done, total).
ProgressArg = Union[None, bool, Callable[[str, int, int], Any]]
Metadata = Union[PathLike, Mapping[str, Sequence[Any]], Any]  # Any: a pandas DataFrame

class Cohort:
    def __init__(self, views: Mapping[str, npt.ArrayLike], metadata: Metadata) -> None: ...
    @classmethod
    def load(cls, directory: PathLike) -> "Cohort": ...
    def __len__(self) -> int: ...
    @property
    def view_names(self) -> List[str]: ...
    @property
    def dir(self) -> Optional[str]: ...
    def view(self, name: str) -> np.ndarray: ...
    def summary(self) -> Dict[str, Any]: ...
    def fingerprint(self) -> str: ...

class Report:
    kind: str
    seconds: float
    def to_dict(self) -> Dict[str, Any]: ...
    def to_json(self) -> str: ...
    def __getitem__(self, key: str) -> Any: ...
    def keys(self) -> KeysView[str]: ...
    def save(self, run_dir: PathLike, label: Optional[str] = None) -> str: ...
    def _repr_html_(self) -> str: ...

def relink(
    cohort: Cohort,
    query: str = "image",
    gallery: str = "report",
    split: str = "test",
    pools: Union[str, Sequence[Union[int, str]]] = ...,
    trials: int = 20,
    hard_negatives: bool = False,
    match: str = "study",
    direction: str = "query-to-gallery",
    seed: int = 0,
    bootstrap: int = 1000,
    attack: Union[str, Sequence[str]] = "cosine",
    attack_side: str = "auto",
    side_folds: int = 5,
    csls_k: int = 10,
    leaked_pairs: Sequence[int] = ...,
    progress: ProgressArg = None,
) -> Report: ...
def reid(
    cohort: Cohort,
    view: str = "image",
    split: str = "test",
    attacker: str = "auto",
    train_split: Optional[str] = None,
    attack_side: str = "auto",
    side_folds: int = 5,
    include_same_study: bool = False,
    seed: int = 0,
    bootstrap: int = 1000,
    negatives_per_query: int = 50,
    attack: Union[str, Sequence[str]] = "none",
    csls_k: int = 10,
    progress: ProgressArg = None,
) -> Report: ...
def attributes(
    cohort: Cohort,
    view: str = "image",
    targets: Union[str, Sequence[str]] = ...,
    age_threshold: Union[str, float] = "65",
    min_group: int = 20,
    stratify_by_reid: bool = False,
    reid_attacker: str = "none",
    train_split: Optional[str] = None,
    attack_side: str = "auto",
    side_folds: int = 5,
    eval_split: str = "test",
    folds: int = 5,
    seed: int = 0,
    tol: float = 1e-6,
    auroc_ci: str = "logit",
    progress: ProgressArg = None,
) -> Report: ...
def utility(
    cohort: Cohort,
    view: str = "image",
    uncertain: str = "exclude",
    blank: str = "negative",
    train_split: Optional[str] = None,
    attack_side: str = "auto",
    side_folds: int = 5,
    eval_split: str = "test",
    folds: int = 5,
    seed: int = 0,
    tol: float = 1e-6,
    auroc_ci: str = "logit",
    progress: ProgressArg = None,
) -> Report: ...
def render(run_dir: PathLike) -> List[str]: ...
