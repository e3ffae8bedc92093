"""Python `linkrisk.relink` vs the CLI on the same 20,000 x 20,000 d=512 cohort (issue 19).

    python bench/python/relink_vs_cli.py --cli target/release/linkrisk --rounds 3

Writes a random paired cohort (seeded) to a temporary directory, then interleaves, round by
round, `linkrisk relink DIR --split all --json OUT` and a Python process that loads the same
.npy/.csv files with numpy/pandas, builds `linkrisk.Cohort` in memory and calls
`linkrisk.relink(cohort, split="all")`; both run the CLI's default settings. Reports each
process's wall and user+sys CPU seconds (os.wait4), the Python call's own wall time, and
checks the two reports are equal.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CHILD = """
import sys, time, json
import numpy as np, pandas as pd
import linkrisk
d = sys.argv[1]
cohort = linkrisk.Cohort(views={"image": np.load(d + "/image.npy"), "report": np.load(d + "/report.npy")},
                         metadata=pd.read_csv(d + "/metadata.csv"))
t = time.perf_counter()
r = linkrisk.relink(cohort, split="all")
call = time.perf_counter() - t
open(sys.argv[2], "w").write(r.to_json())
print(call)
"""


def timed(cmd):
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read()
    err = proc.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd[0]} failed: {err}")
    return wall, usage.ru_utime + usage.ru_stime, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rng = np.random.default_rng(0)
        image = rng.standard_normal((args.n, args.dim), dtype=np.float32)
        report = (image + 2.0 * rng.standard_normal((args.n, args.dim), dtype=np.float32)).astype(np.float32)
        np.save(f"{tmp}/image.npy", image)
        np.save(f"{tmp}/report.npy", report)
        with open(f"{tmp}/metadata.csv", "w") as f:
            f.write("id,patient_id\n")
            f.writelines(f"r{i},p{i // 2}\n" for i in range(args.n))
        del image, report
        rows = []
        for r in range(args.rounds):
            cli = timed([args.cli, "relink", tmp, "--split", "all", "--json", f"{tmp}/cli.json"])
            py = timed([sys.executable, "-c", CHILD, tmp, f"{tmp}/py.json"])
            same = json.load(open(f"{tmp}/cli.json")) == json.load(open(f"{tmp}/py.json"))
            rows.append((cli[0], cli[1], py[0], py[1], float(py[2]), same))
            print(f"round {r}: CLI wall {cli[0]:.2f} s cpu {cli[1]:.2f} s | Python wall {py[0]:.2f} s "
                  f"cpu {py[1]:.2f} s (relink call {float(py[2]):.2f} s) | reports equal: {same}", flush=True)
        cw, cc, pw, pc, call, _ = (sorted(x)[len(x) // 2] for x in zip(*rows))
        print(f"median: CLI wall {cw:.2f} s cpu {cc:.2f} s; Python wall {pw:.2f} s cpu {pc:.2f} s "
              f"(call {call:.2f} s); Python/CLI wall {pw / cw:.3f}, cpu {pc / cc:.3f}")


if __name__ == "__main__":
    main()
