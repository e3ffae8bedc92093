#!/usr/bin/env bash
# Scale-out measurements for docs/PERFORMANCE.md ("Scale-out"). Not a test.
#   1. a cohort of N records (bench/shard/make_cohort.py), single run vs 1, 2 and 4 shards
#      (run one after another on this machine; each shard timed) plus the merge;
#   2. peak RSS and time of one shard (1/64) of a 400,000 x 512 cohort, gallery memory-mapped
#      (default) vs read into memory (LINKRISK_NO_MMAP=1).
# Usage (repository root, after `cargo build --release -p linkrisk-cli`):
#   bash bench/shard/scale_out.sh [N=50000] [BIG_DIR]
# Audit flags: the defaults of `linkrisk relink` (pools 10,100,1000,10000,full, 20 trials,
# 1000 patient-bootstrap replicates), split `test` (every record).
set -euo pipefail
bin=${LINKRISK_BIN:-target/release/linkrisk}
n=${1:-50000}
big=${2:-}
py=${PYTHON:-/work/venv/bin/python}
work=$(mktemp -d /tmp/linkrisk-scale.XXXXXX)
trap 'rm -rf "$work"' EXIT
"$py" bench/shard/make_cohort.py "$work/cohort" --n "$n" --dim 512 >/dev/null
# Wall seconds, peak RSS (KiB), CPU seconds (user + system).
timed() { /usr/bin/time -f "%e %M %U %S" -o "$work/t" "$@" >/dev/null; awk '{print $1, $2, $3 + $4}' "$work/t"; }
echo "cohort: $n x 512, threads: $(nproc)"
read -r s rss cpu < <(timed "$bin" relink "$work/cohort" --json "$work/single.json")
echo "single run: ${s} s, peak RSS $((rss / 1024)) MiB, CPU ${cpu} s"
for shards in 1 2 4; do
    run="$work/run$shards"
    line="shards $shards:"
    max=0; sum=0
    for i in $(seq "$shards"); do
        read -r s rss cpu < <(timed "$bin" relink "$work/cohort" --shard "$i/$shards" --out "$run")
        line="$line shard $i ${s} s (CPU ${cpu} s, $((rss / 1024)) MiB);"
        sum=$(awk -v a="$sum" -v b="$s" 'BEGIN{print a+b}')
        max=$(awk -v a="$max" -v b="$s" 'BEGIN{print (b>a)?b:a}')
    done
    read -r m mrss mcpu < <(timed "$bin" merge "$run"/shards/*.lrp --json "$run/merged.json")
    cmp -s "$work/single.json" "$run/merged.json" && same=identical || same=DIFFERENT
    echo "$line sum ${sum} s, slowest ${max} s, merge ${m} s (CPU ${mcpu} s, $((mrss / 1024)) MiB); merged JSON $same"
done
if [ -n "$big" ]; then
    echo "big cohort: $big"
    # The gallery memory-mapped (the default) and read into memory, alternately; the two
    # partials must be byte-identical.
    for round in 1 2; do
        read -r s rss cpu < <(timed "$bin" relink "$big" --shard 1/64 --partial "$work/big.lrp")
        echo "shard 1/64, gallery mapped: ${s} s, CPU ${cpu} s, peak RSS $((rss / 1024)) MiB"
        read -r s rss cpu < <(LINKRISK_NO_MMAP=1 timed "$bin" relink "$big" --shard 1/64 --partial "$work/big-read.lrp")
        echo "shard 1/64, gallery read:   ${s} s, CPU ${cpu} s, peak RSS $((rss / 1024)) MiB"
        cmp -s "$work/big.lrp" "$work/big-read.lrp" && echo "partials identical" || echo "partials DIFFERENT"
        rm -f "$work/big.lrp" "$work/big-read.lrp"
    done
    # Anonymous vs file-backed pages during the ranking (build the example first:
    # cargo build --release -p linkrisk --example shard_rss).
    if [ -x target/release/examples/shard_rss ]; then
        target/release/examples/shard_rss "$big" 1/64 "$work/rss.lrp"
        LINKRISK_NO_MMAP=1 target/release/examples/shard_rss "$big" 1/64 "$work/rss.lrp"
    fi
fi
