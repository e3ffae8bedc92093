"""linkrisk from Python: the CLI's audits on numpy arrays and pandas metadata, the CLI's
JSON reports out.

    import linkrisk
    cohort = linkrisk.Cohort(views={"image": image, "report": report}, metadata=df)
    report = linkrisk.relink(cohort, pools=[10, 100, "full"], attack="all", seed=0)
    report.to_dict()          # the JSON `linkrisk relink DIR --json` writes
    report.save("RUN")        # then `linkrisk report RUN`

Every function takes the CLI command's flags as keyword arguments (``--attack-side`` is
``attack_side``) with the same defaults; errors raise :class:`InputError` or
:class:`ConfigError` (both ``ValueError``) with the CLI's message. Long passes release the
GIL and stop with ``KeyboardInterrupt`` on Ctrl-C. See docs/PYTHON.md.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _linkrisk
from . import accountant
from ._errors import ConfigError, InputError, LinkriskError
from ._report import Report

__version__: str = _linkrisk.__version__
__all__ = [
    "Cohort",
    "Report",
    "InputError",
    "ConfigError",
    "LinkriskError",
    "relink",
    "reid",
    "attributes",
    "utility",
    "accountant",
    "render",
    "__version__",
]

#: `--side-folds` default (linkrisk::audit::cross_fit::DEFAULT_SIDE_FOLDS).
DEFAULT_SIDE_FOLDS = 5

_FLOAT_DTYPES = ("float16", "float32", "float64")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    # pandas.NA / NaT without importing pandas
    return type(value).__name__ in ("NAType", "NaTType")


def _cells(values: Any) -> List[str]:
    """One column as the text cells a CSV of it would hold: missing values blank,
    integral floats without ``.0`` (pandas turns an int column with blanks into floats)."""
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        out = []
        for v in arr.tolist():
            if math.isnan(v):
                out.append("")
            elif v.is_integer() and abs(v) < 2**53:
                out.append(str(int(v)))
            else:
                out.append(repr(v))
        return out
    if arr.dtype.kind in "iu":
        return [str(v) for v in arr.tolist()]
    return ["" if _is_missing(v) else str(v) for v in (values.tolist() if hasattr(values, "tolist") else values)]


def _metadata_columns(metadata: Any):
    """(names, cells) from a pandas DataFrame or a dict of columns."""
    if hasattr(metadata, "columns") and hasattr(metadata, "__getitem__") and not isinstance(metadata, Mapping):
        names = [str(c) for c in metadata.columns]
        columns = [metadata[c].to_numpy() for c in metadata.columns]
    elif isinstance(metadata, Mapping):
        names = [str(c) for c in metadata.keys()]
        columns = list(metadata.values())
    else:
        raise ConfigError(
            "invalid configuration: metadata: pass a pandas DataFrame, a dict of columns or a path to metadata.csv/.parquet",
            "metadata: pass a pandas DataFrame, a dict of columns or a path to metadata.csv/.parquet",
        )
    return names, [_cells(c) for c in columns]


def _view_array(name: str, array: Any) -> "tuple[str, np.ndarray, str]":
    """A view as float32 C-contiguous (no copy when it already is), with its dtype name."""
    a = np.asarray(array)
    where = f"<array:{name}>"
    if a.ndim != 2:
        msg = f"view `{name}` must be 2-D (records x dimensions), got shape {a.shape}"
        raise InputError(f"{where}: {msg}", msg, where)
    if a.dtype.name not in _FLOAT_DTYPES:
        msg = f"view `{name}` has dtype {a.dtype.name}; embeddings must be float16, float32 or float64"
        raise InputError(f"{where}: {msg}", msg, where)
    return name, np.ascontiguousarray(a, dtype=np.float32), a.dtype.name


class Cohort:
    """A validated cohort: metadata plus named views (embedding matrices, one row per
    record), checked as ``linkrisk inspect`` checks a cohort directory.

    ``views`` maps view names to 2-D arrays (float16/32/64, any order; float32 C-contiguous
    arrays are read in place, others converted once). ``metadata`` is a pandas DataFrame, a
    dict of columns, or a path to ``metadata.csv`` / ``metadata.parquet``; it needs ``id``
    and ``patient_id`` (optional ``study_id``, ``split``, the 14 CheXpert findings,
    ``sex``, ``age``, ``race``; docs/FORMATS.md). Row ``i`` of every view is record ``i``.
    Raises :class:`InputError` with the CLI's message (in-memory rows are 0-based).
    """

    def __init__(self, views: Mapping[str, Any], metadata: Any):
        if not isinstance(views, Mapping) or not views:
            raise ConfigError(
                "invalid configuration: views: pass a dict of view name -> 2-D array, e.g. {\"image\": X, \"report\": Y}",
                "views: pass a dict of view name -> 2-D array, e.g. {\"image\": X, \"report\": Y}",
            )
        arrays = [_view_array(str(n), a) for n, a in views.items()]
        if isinstance(metadata, (str, os.PathLike)):
            inner = _linkrisk.cohort_from_arrays(arrays, metadata_path=os.fspath(metadata))
        else:
            names, cells = _metadata_columns(metadata)
            inner = _linkrisk.cohort_from_arrays(arrays, names=names, cells=cells)
        self._inner = inner

    @classmethod
    def load(cls, directory: "os.PathLike[str] | str") -> "Cohort":
        """Load a cohort directory (metadata.csv or .parquet, one file per view, optional
        cohort.toml) exactly as the CLI does."""
        cohort = cls.__new__(cls)
        cohort._inner = _linkrisk.load_cohort(os.fspath(directory))
        return cohort

    def __len__(self) -> int:
        return len(self._inner)

    @property
    def view_names(self) -> List[str]:
        """The views' names, sorted."""
        return self._inner.view_names

    @property
    def dir(self) -> Optional[str]:
        """The directory the cohort was loaded from, or None when built in memory."""
        return self._inner.dir

    def view(self, name: str) -> np.ndarray:
        """View ``name``'s rows as the audits see them (L2-normalised float32, a copy)."""
        return self._inner.view_rows(name)

    def summary(self) -> Dict[str, Any]:
        """Records, patients, views, splits, findings and demographics: the JSON of
        ``linkrisk inspect DIR --json``."""
        import json

        return json.loads(self._inner.summary_json())

    def fingerprint(self) -> str:
        """The cohort's fingerprint in run directories (the CLI's for a loaded cohort)."""
        return self._inner.fingerprint()

    def _default_label(self) -> str:
        return self._inner.default_label()

    def __repr__(self) -> str:
        where = f" from {self.dir}" if self.dir else ""
        return f"<linkrisk.Cohort {len(self)} records, views {', '.join(self.view_names)}{where}>"


ProgressArg = Union[None, bool, Callable[[str, int, int], Any]]


class _Tqdm:
    """progress=True: one tqdm bar per pass (when tqdm is installed)."""

    def __init__(self):
        from tqdm.auto import tqdm  # noqa: F401  (ImportError -> no bar)

        self._tqdm = tqdm
        self._bar = None
        self._what = None

    def __call__(self, what: str, done: int, total: int) -> None:
        if what != self._what or self._bar is None:
            self.close()
            self._bar = self._tqdm(total=total, desc=what, leave=False)
            self._what = what
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _progress(progress: ProgressArg):
    if progress is None or progress is False:
        return None
    if progress is True:
        try:
            return _Tqdm()
        except ImportError:
            return None
    if callable(progress):
        return progress
    raise ConfigError(
        "invalid configuration: progress: pass None, True (a tqdm bar) or a callable progress(what, done, total)",
        "progress: pass None, True (a tqdm bar) or a callable progress(what, done, total)",
    )


def _items(value: Union[str, Iterable[Any]]) -> List[str]:
    """A comma-separated string or a list, as the CLI's comma-separated flags."""
    if isinstance(value, str):
        return [v for v in value.split(",")]
    return [str(v) for v in value]


def _check_cohort(cohort: Any) -> Cohort:
    if not isinstance(cohort, Cohort):
        raise TypeError(f"expected a linkrisk.Cohort, got {type(cohort).__name__}")
    return cohort


def _run(kind: str, cohort: Cohort, seed: Optional[int], progress: ProgressArg, call: Callable, kwargs: Dict[str, Any]):
    callback = _progress(progress)
    started = time.perf_counter()
    try:
        text, entries = call(cohort._inner, progress=callback, **kwargs)
    finally:
        if isinstance(callback, _Tqdm):
            callback.close()
    seconds = time.perf_counter() - started
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    command = ["python", f"linkrisk.{kind}(cohort, {shown})"]
    return Report(kind, text, entries, cohort=cohort, seed=seed, command=command, seconds=seconds)


def relink(
    cohort: Cohort,
    query: str = "image",
    gallery: str = "report",
    split: str = "test",
    pools: Union[str, Sequence[Union[int, str]]] = (10, 100, 1000, 10000, "full"),
    trials: int = 20,
    hard_negatives: bool = False,
    match: str = "study",
    direction: str = "query-to-gallery",
    seed: int = 0,
    bootstrap: int = 1000,
    attack: Union[str, Sequence[str]] = "cosine",
    attack_side: str = "auto",
    side_folds: int = DEFAULT_SIDE_FOLDS,
    csls_k: int = 10,
    leaked_pairs: Sequence[int] = (10, 100, 1000),
    progress: ProgressArg = None,
) -> Report:
    """Cross-modal re-linkage audit (``linkrisk relink``): can a record of view ``query`` be
    matched to its own record of view ``gallery`` by cosine similarity? Recall@1/5/10, MRR,
    lift over chance for the full gallery and random (and with ``hard_negatives``,
    pathology-matched) pools of the sizes in ``pools``; ``attack`` adds stronger attackers
    (``"all"`` or names: cosine, csls, inverted_softmax, qb_norm, assignment, procrustes,
    ridge; ``"none"`` skips the comparison). ``split="all"`` audits every record;
    ``direction="both"`` also audits gallery -> query. Returns the report whose
    ``to_dict()`` is ``linkrisk relink DIR --json``'s."""
    kwargs = dict(
        query=query, gallery=gallery, split=split, pools=_items(pools), trials=int(trials),
        hard_negatives=bool(hard_negatives), match_level=match, direction=direction, seed=int(seed),
        bootstrap=int(bootstrap), attack=_items(attack), attack_side=attack_side, side_folds=int(side_folds),
        csls_k=int(csls_k), leaked_pairs=[int(m) for m in leaked_pairs],
    )
    return _run("relink", _check_cohort(cohort), seed, progress, _linkrisk.relink, kwargs)


def reid(
    cohort: Cohort,
    view: str = "image",
    split: str = "test",
    attacker: str = "auto",
    train_split: Optional[str] = None,
    attack_side: str = "auto",
    side_folds: int = DEFAULT_SIDE_FOLDS,
    include_same_study: bool = False,
    seed: int = 0,
    bootstrap: int = 1000,
    negatives_per_query: int = 50,
    attack: Union[str, Sequence[str]] = "none",
    csls_k: int = 10,
    progress: ProgressArg = None,
) -> Report:
    """Patient re-identification audit (``linkrisk reid``): is the nearest other record of a
    query (in view ``view``, split ``split``) one of the same patient? Rank-1, CMC, mAP and
    verification AUROC for plain nearest neighbour and (``attacker="auto"`` /
    ``"linear-metric"``) a linear metric trained on other patients. ``save()`` records one
    run-directory entry per attacker, as ``--out RUN`` does."""
    kwargs = dict(
        view=view, split=split, attacker=attacker, train_split=train_split, attack_side=attack_side,
        side_folds=int(side_folds), include_same_study=bool(include_same_study), seed=int(seed),
        bootstrap=int(bootstrap), negatives_per_query=int(negatives_per_query), attack=_items(attack),
        csls_k=int(csls_k),
    )
    return _run("reid", _check_cohort(cohort), seed, progress, _linkrisk.reid, kwargs)


def attributes(
    cohort: Cohort,
    view: str = "image",
    targets: Union[str, Sequence[str]] = ("sex", "age", "race"),
    age_threshold: Union[str, float] = "65",
    min_group: int = 20,
    stratify_by_reid: bool = False,
    reid_attacker: str = "none",
    train_split: Optional[str] = None,
    attack_side: str = "auto",
    side_folds: int = DEFAULT_SIDE_FOLDS,
    eval_split: str = "test",
    folds: int = 5,
    seed: int = 0,
    tol: float = 1e-6,
    auroc_ci: str = "logit",
    progress: ProgressArg = None,
) -> Report:
    """Attribute inference (``linkrisk attributes``): linear-probe AUROC for sex, age group
    (``age >= age_threshold``, or ``"median"``) and race from view ``view``; with
    ``stratify_by_reid`` the AUROCs of re-identified vs not re-identified records (paper 2's
    analysis; the re-ID audit runs on ``eval_split``)."""
    kwargs = dict(
        view=view, targets=_items(targets), age_threshold=str(age_threshold), min_group=int(min_group),
        stratify_by_reid=bool(stratify_by_reid), reid_attacker=reid_attacker, train_split=train_split,
        attack_side=attack_side, side_folds=int(side_folds), eval_split=eval_split, folds=int(folds),
        seed=int(seed), tol=float(tol), auroc_ci=auroc_ci,
    )
    return _run("attributes", _check_cohort(cohort), seed, progress, _linkrisk.attributes, kwargs)


def utility(
    cohort: Cohort,
    view: str = "image",
    uncertain: str = "exclude",
    blank: str = "negative",
    train_split: Optional[str] = None,
    attack_side: str = "auto",
    side_folds: int = DEFAULT_SIDE_FOLDS,
    eval_split: str = "test",
    folds: int = 5,
    seed: int = 0,
    tol: float = 1e-6,
    auroc_ci: str = "logit",
    progress: ProgressArg = None,
) -> Report:
    """Utility (``linkrisk utility``): linear-probe macro AUROC over the 14 CheXpert findings,
    probes trained on ``train_split`` (or cross-fitted) and evaluated on ``eval_split``."""
    kwargs = dict(
        view=view, uncertain=uncertain, blank=blank, train_split=train_split, attack_side=attack_side,
        side_folds=int(side_folds), eval_split=eval_split, folds=int(folds), seed=int(seed), tol=float(tol),
        auroc_ci=auroc_ci,
    )
    return _run("utility", _check_cohort(cohort), seed, progress, _linkrisk.utility, kwargs)


def render(run_dir: "os.PathLike[str] | str") -> List[str]:
    """Render a run directory as ``report.html`` and ``report.md`` (``linkrisk report RUN``);
    returns the files written."""
    return _linkrisk.render_report(os.fspath(run_dir))
