#!/usr/bin/env bash
# End-to-end test of sharded audits on a real Slurm cluster. Run it under the throw-away
# single-node cluster:   bash ../shared/tools/slurm-local.sh -- tests/slurm/e2e.sh
#
# 1. `linkrisk slurm relink ... --shards 4 --submit` submits a 4-task job array and a merge
#    job (afterok); while the array runs, task 2 is cancelled (scancel: SIGTERM, then
#    SIGKILL), so the array fails and the merge job is cancelled.
# 2. The same command is submitted again: tasks whose partial is complete skip their work
#    (their logs say so), task 2 computes, the merge runs.
# 3. The merged JSON report must equal the single-process run's byte for byte.
# 4. `linkrisk slurm reid ... --shards 4 --submit` (nearest neighbour and the trained
#    linear-metric attacker): the merged re-identification report must equal the single run's
#    byte for byte, and run.json must hold the same per-attacker entries.
# Env: LINKRISK_BIN (default: cargo-built target/debug/linkrisk), E2E_PATIENTS (cohort size),
#      KEEP=1 keeps the work directory.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
log() { printf '[e2e %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { log "FAIL: $*"; for f in "$work"/RUN/logs/*; do [ -f "$f" ] && { echo "== $f"; cat "$f"; } >&2; done; exit 1; }

command -v sbatch >/dev/null || { echo "sbatch not found: run under ../shared/tools/slurm-local.sh" >&2; exit 1; }
if [ -n "${LINKRISK_BIN:-}" ]; then
    bin=$LINKRISK_BIN
else
    (cd "$repo" && cargo build -q -p linkrisk-cli)
    bin="${CARGO_TARGET_DIR:-$repo/target}/debug/linkrisk"
fi
work=$(mktemp -d /tmp/linkrisk-slurm-e2e.XXXXXX)
chmod 755 "$work"
if [ "${KEEP:-0}" = 1 ]; then trap 'log "kept $work"' EXIT; else trap 'rm -rf "$work"' EXIT; fi

patients=${E2E_PATIENTS:-10000}
"$bin" synth --out "$work/cohort" --patients "$patients" --dim 64 --feature-dim 8 --seed 3 >/dev/null
flags=(--attack none --split all --pools 2,10,100,full --trials 5 --hard-negatives --bootstrap 100 --seed 9)
t0=$(date +%s.%N)
"$bin" relink "$work/cohort" "${flags[@]}" --json "$work/single.json" >/dev/null
log "single run: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"

submit() {
    "$bin" slurm relink "$work/cohort" --shards 4 --out "$work/RUN" --cpus-per-task 1 --time 0:30:00 \
        --submit -- "${flags[@]}"
}
job_id() { sed -n "s/^$1 job \([0-9][0-9]*\).*/\1/p"; }
# Wait until a job has left the queue (finished, failed or cancelled).
wait_gone() {
    for _ in $(seq 1800); do
        [ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ] && return 0
        sleep 0.5
    done
    fail "job $1 still queued after 15 minutes"
}

# ---- 1. submit, then kill task 2 while it runs
out=$(submit) || fail "linkrisk slurm --submit failed"
echo "$out"
array=$(job_id array <<<"$out"); merge=$(job_id merge <<<"$out")
[ -n "$array" ] && [ -n "$merge" ] || fail "no job ids in: $out"
state=""
for _ in $(seq 600); do
    state=$(squeue -h -j "${array}_2" -o %T 2>/dev/null || true)
    [ "$state" = RUNNING ] && break
    [ -z "$state" ] && break
    sleep 0.1
done
[ "$state" = RUNNING ] || fail "task 2 never seen running (state '$state'); use a larger E2E_PATIENTS"
sleep 0.5
scancel "${array}_2"
log "cancelled task ${array}_2 while it ran"
wait_gone "$array"
wait_gone "$merge"
[ ! -e "$work/RUN/relink.json" ] || fail "the merge ran although task 2 was cancelled"
[ ! -e "$work/RUN/shards/relink.shard-0002-of-0004.lrp" ] || fail "the killed shard left a partial that looks complete"
done_before=$(ls "$work"/RUN/shards/*.lrp 2>/dev/null | wc -l)
log "after the kill: $done_before of 4 partials complete, no merged report"

# ---- 2. resubmit: complete shards are skipped, the killed one recomputed, then merged
out=$(submit) || fail "resubmission failed"
echo "$out"
array2=$(job_id array <<<"$out"); merge2=$(job_id merge <<<"$out")
wait_gone "$array2"
wait_gone "$merge2"
[ -f "$work/RUN/relink.json" ] || fail "no merged report after resubmission"
skipped=$(cat "$work"/RUN/logs/relink-shard-*-of-4.job-"$array2".out | grep -c 'skipped' || true)
recomputed=$(grep -l 'queries' "$work"/RUN/logs/relink-shard-2-of-4.job-"$array2".out || true)
[ "$skipped" = "$done_before" ] || fail "resubmission skipped $skipped shards, expected $done_before"
[ -n "$recomputed" ] || fail "task 2 was not recomputed on resubmission"
log "resubmission: $skipped shards skipped (complete), shard 2 recomputed"

# ---- 3. the merged report is the single run's
cmp "$work/single.json" "$work/RUN/relink.json" || fail "merged report differs from the single run"
grep -q '"audit": "relink"' "$work/RUN/run.json" || fail "run.json lacks the merged audit"
log "PASS: merged report of 4 Slurm shards (one killed and resubmitted) == single run"

# ---- 4. reid: a 4-task array with the trained attacker, merged == single run
reid_flags=(--attacker linear-metric --bootstrap 100 --negatives-per-query 20 --seed 9)
t0=$(date +%s.%N)
"$bin" reid "$work/cohort" "${reid_flags[@]}" --json "$work/reid-single.json" --out "$work/REID-SINGLE" >/dev/null
log "reid single run: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
t0=$(date +%s.%N)
out=$("$bin" slurm reid "$work/cohort" --shards 4 --out "$work/REID" --cpus-per-task 1 --time 0:30:00 \
    --submit -- "${reid_flags[@]}") || fail "linkrisk slurm reid --submit failed"
echo "$out"
array=$(job_id array <<<"$out"); merge=$(job_id merge <<<"$out")
[ -n "$array" ] && [ -n "$merge" ] || fail "no job ids in: $out"
wait_gone "$array"
wait_gone "$merge"
log "reid 4-task array + merge: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s (wall, queue included)"
[ -f "$work/REID/reid.json" ] || { for f in "$work"/REID/logs/*; do echo "== $f"; cat "$f"; done >&2; fail "no merged reid report"; }
tasks=$(grep -l 'queries' "$work"/REID/logs/reid-shard-*-of-4.job-"$array".out | wc -l)
[ "$tasks" = 4 ] || fail "$tasks of 4 reid tasks wrote their shard"
cmp "$work/reid-single.json" "$work/REID/reid.json" || fail "merged reid report differs from the single run"
python3 - "$work/REID-SINGLE/run.json" "$work/REID/run.json" <<'PY' || fail "run.json entries of the merged reid differ from the single run's"
import json, sys
single, merged = (json.load(open(p))["runs"] for p in sys.argv[1:])
assert [r["audit"] for r in single] == [r["audit"] for r in merged], "entries differ"
assert len(merged) == 2, f"{len(merged)} entries, expected one per attacker"
PY
log "PASS: merged reid report of 4 Slurm shards (both attackers) == single run"
