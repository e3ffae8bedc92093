"""``Report``: one audit's result, the CLI's JSON as a dict, with Jupyter rendering and
``save(run_dir)`` for ``linkrisk report RUN``."""

from __future__ import annotations

import copy
import html
import json
import os
from typing import Any, Dict, List, Optional, Sequence

from . import _linkrisk


class Report:
    """The report of one audit (or accountant call).

    ``to_dict()`` is exactly what the CLI's ``--json`` writes for the same cohort and
    settings (docs/REPORTS.md describes its keys); ``save(run_dir)`` records it in a run
    directory as ``--out RUN`` does, so ``linkrisk report RUN`` and ``linkrisk gate RUN``
    read it.
    """

    def __init__(
        self,
        kind: str,
        text: str,
        entries: Sequence[str] = (),
        cohort: Any = None,
        seed: Optional[int] = None,
        command: Sequence[str] = (),
        seconds: float = 0.0,
    ):
        self.kind = kind
        self._text = text
        self._data: Dict[str, Any] = json.loads(text)
        self._entries = list(entries)
        self._cohort = cohort
        self._seed = seed
        self._command = list(command)
        #: Wall-clock seconds the call took.
        self.seconds = seconds

    def to_dict(self) -> Dict[str, Any]:
        """The report as the CLI's JSON, parsed (a fresh copy each call)."""
        return copy.deepcopy(self._data)

    def to_json(self) -> str:
        """The report as JSON text: byte for byte what the CLI's ``--json FILE`` writes
        (without its final newline)."""
        return self._text

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def keys(self):
        """Top-level keys of the report."""
        return self._data.keys()

    def __repr__(self) -> str:
        return f"<linkrisk.Report {self.kind}: {', '.join(_headline(self.kind, self._data)) or 'no headline'}>"

    def save(self, run_dir: "os.PathLike[str] | str", label: Optional[str] = None) -> str:
        """Record this report in run directory ``run_dir`` (created if needed) as the CLI's
        ``--out RUN`` does, under ``label`` (default: the cohort directory's name; required
        for in-memory cohorts) and the cohort's fingerprint. A run directory refuses a
        second cohort under a recorded label. Returns the path of ``run.json``; then
        ``linkrisk report RUN`` (or :func:`linkrisk.render`) renders it."""
        if self._cohort is None or not self._entries:
            raise TypeError(f"a {self.kind} report is not an audit of a cohort; there is nothing to record")
        if label is None:
            label = self._cohort._default_label()
        return _linkrisk.record(
            os.fspath(run_dir),
            self._entries,
            label,
            self._cohort._inner.fingerprint(),
            self._command,
            self._seed,
            float(self.seconds),
        )

    def _repr_html_(self) -> str:
        return render_html(self.kind, self._data)


def _pct(x: Any) -> str:
    return f"{100 * x:.2f}%" if isinstance(x, (int, float)) else "-"


def _ci(ci: Any) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2:
        return f"[{_pct(ci[0])}, {_pct(ci[1])}]"
    return "-"


def _headline(kind: str, d: Dict[str, Any]) -> List[str]:
    """One or two numbers that summarise a report, for ``repr``."""
    out = []
    if kind == "relink":
        for x in (d, d.get("reverse")):
            if x:
                out.append(f"{x['query_view']}->{x['gallery_view']} Recall@1 {_pct(x['full']['recall_at_1'])}")
    elif kind == "reid":
        if "rank_1" in d:
            out.append(f"Rank-1 {_pct(d['rank_1'])}")
    elif kind == "utility":
        if d.get("macro_auroc") is not None:
            out.append(f"macro AUROC {d['macro_auroc']:.4f}")
    elif kind == "attributes":
        for name, r in (d.get("attributes") or {}).items():
            out.append(f"{name} AUROC {r['auroc']:.4f}")
    elif "epsilon" in d:
        out.append(f"epsilon {d['epsilon']:.6g}")
    elif "noise_multiplier" in d:
        out.append(f"noise multiplier {d['noise_multiplier']:.6g}")
    return out


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _relink_direction(x: Dict[str, Any]) -> str:
    f = x["full"]
    rows = [["full database", _pct(f["recall_at_1"]), _ci(f["ci95_recall_at_1"]), _pct(f["recall_at_10"]),
             f"{f['lift_at_1']:.2f}"]]
    for p in x.get("pools", []):
        label = ("pathology N=" if p["kind"] == "pathology_matched" else "random N=") + str(p["pool_size"])
        rows.append([label, _pct(p["recall_at_1"]), _ci(p["ci95_recall_at_1"]), _pct(p["recall_at_10"]),
                     f"{p['lift_at_1']:.2f}"])
    title = (f"<p><b>{html.escape(x['query_view'])} &rarr; {html.escape(x['gallery_view'])}</b>: "
             f"{x['n_queries']} queries x {x['n_gallery']} gallery items, {x['n_patients']} patients</p>")
    table = _table(["candidates", "Recall@1", "95% CI", "Recall@10", "lift@1"], rows)
    attacks = ""
    c = x
    if c.get("attacks"):
        arows = [[a["name"], a.get("pool_size") or "full", a.get("leaked_pairs") or "-", _pct(a["recall_at_1"]),
                  _pct(a["control_recall_at_1"]), f"{a['normalized_risk']:.4f}"] for a in c.get("attacks", [])]
        attacks = f"<p>strongest attack: <b>{html.escape(str(c.get('strongest_attack')))}</b></p>" + _table(
            ["attack", "pool", "leaked", "Recall@1", "control", "norm. risk"], arows)
    return title + table + attacks


def render_html(kind: str, d: Dict[str, Any]) -> str:
    """A compact HTML summary of a report (Jupyter's rich display)."""
    parts = [f"<div class='linkrisk-report'><h4>linkrisk {html.escape(kind)}</h4>"]
    if kind == "relink":
        parts.append(_relink_direction(d))
        if d.get("reverse"):
            parts.append(_relink_direction(d["reverse"]))
    elif kind == "utility":
        rows = [[f["finding"], f"{f['result']['auroc']:.4f}"] for f in d.get("findings", [])]
        parts.append(_table(["finding", "AUROC"], rows))
    elif kind == "attributes":
        rows = [[name, f"{r['auroc']:.4f}", f"[{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}]", r.get("definition", "")]
                for name, r in (d.get("attributes") or {}).items()]
        parts.append(_table(["attribute", "AUROC", "95% CI", "definition"], rows))
    scalars = [[k, v] for k, v in d.items() if isinstance(v, (str, int, float, bool)) or v is None]
    parts.append(_table(["field", "value"], scalars))
    parts.append("</div>")
    return "".join(parts)
