#!/usr/bin/env bash
# The Python package's CI step (called by .ci/run after `cargo test --workspace`): build the
# wheel with maturin, install it into a fresh venv, run the pytest suite against the CLI that
# `cargo test` just built (target/debug/linkrisk). Python packages come from PyPI only.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/build"
"$work/build/bin/pip" install -q "maturin>=1.5,<2"
# The dev profile (dependencies at opt-level 3, as the workspace's) shares the workspace's
# target directory, so CI compiles only pyo3, numpy and the library again, not every crate.
CARGO_TARGET_DIR="$root/target" "$work/build/bin/maturin" build --profile dev --manifest-path "$here/Cargo.toml" -o "$work/wheels" -q
python3 -m venv "$work/test"
"$work/test/bin/pip" install -q "$work"/wheels/*.whl numpy pandas pytest
cd "$here"
LINKRISK_BIN="${LINKRISK_BIN:-$root/target/debug/linkrisk}" "$work/test/bin/python" -m pytest -q tests
