#!/usr/bin/env bash
# The privacy-utility frontier of docs/METHODS.md ("Mitigation and the privacy-utility
# frontier", "Measured frontier"): a synthetic cohort, then `linkrisk mitigate` with its
# defaults (epsilons 0.34, 1, 3, 8, inf; public warm start on 25% of the training patients
# with a 128-direction public projection; pools of 100 and 10,000) set against the
# audited model. Prints the frontier table and the summary lines; writes the JSON.
#
#   bench/mitigate/frontier.sh [PATIENTS] [EXTERNAL] [OUT]      (defaults 25000 5000 /tmp/frontier)
#
# Release build first: cargo build --release -p linkrisk-cli. About 10-20 minutes of CPU
# on two cores at the default size; 3000 600 takes under a minute.
set -euo pipefail
patients=${1:-25000}
external=${2:-5000}
out=${3:-/tmp/frontier}
bin=${LINKRISK:-target/release/linkrisk}
mkdir -p "$out"
"$bin" synth --out "$out/cohort" --patients "$patients" --external-patients "$external" --seed 2 > /dev/null
"$bin" mitigate "$out/cohort" --trials 2 --bootstrap 0 --seed 0 --json "$out/mitigate.json" --out "$out/run"
