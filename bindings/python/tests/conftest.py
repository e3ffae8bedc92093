"""Shared fixtures: the `linkrisk` CLI (LINKRISK_BIN, else the workspace's target/ build) and a
synthetic cohort it writes, so every test compares the Python API with the CLI on the same
files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _find_cli():
    env = os.environ.get("LINKRISK_BIN")
    if env:
        return env
    for profile in ("release", "debug"):
        path = REPO / "target" / profile / "linkrisk"
        if path.exists():
            return str(path)
    return shutil.which("linkrisk")


@pytest.fixture(scope="session")
def cli():
    """Run the CLI; returns the CompletedProcess (text)."""
    binary = _find_cli()
    if binary is None:
        pytest.fail("no linkrisk CLI: build it (cargo build) or set LINKRISK_BIN")

    def run(*args, check=True):
        proc = subprocess.run([binary, *map(str, args)], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"linkrisk {' '.join(map(str, args))} exited {proc.returncode}: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def cli_json(cli, tmp_path_factory):
    """Run an audit command with `--json FILE` and return the parsed report."""
    out = tmp_path_factory.mktemp("json")
    counter = iter(range(10**6))

    def run(*args):
        path = out / f"report{next(counter)}.json"
        cli(*args, "--json", path)
        return json.loads(path.read_text())

    return run


@pytest.fixture(scope="session")
def cohort_dir(cli, tmp_path_factory):
    """A synthetic cohort (train/test/external splits, findings, demographics) from
    `linkrisk synth`."""
    path = tmp_path_factory.mktemp("synth") / "cohort"
    cli("synth", "--out", path, "--patients", 160, "--dim", 24, "--seed", 7)
    return path
