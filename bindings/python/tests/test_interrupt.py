"""Long passes release the GIL, report progress, and stop promptly on Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np

import linkrisk

CHILD = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    import linkrisk
    n, d = 20000, 256
    rng = np.random.default_rng(0)
    image = rng.standard_normal((n, d), dtype=np.float32)
    report = image + rng.standard_normal((n, d), dtype=np.float32)
    meta = {"id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i}" for i in range(n)]}
    cohort = linkrisk.Cohort(views={"image": image, "report": report}, metadata=meta)
    started = []
    def progress(what, done, total):
        if not started:
            started.append(time.perf_counter())
            print("started", flush=True)
    try:
        linkrisk.relink(cohort, split="all", pools="10,100,1000,full", attack="all", trials=50,
                        direction="both", progress=progress)
        print("finished", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    """
)


def test_ctrl_c_during_relink_raises_keyboard_interrupt_promptly():
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "started", child.stderr.read()
        time.sleep(0.5)
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        waited = time.perf_counter() - sent
    finally:
        child.kill()
    assert "interrupted" in out, (out, err)
    assert child.returncode == 130
    # one block of queries plus one poll interval, with room for a loaded CI machine
    assert waited < 3.0, f"KeyboardInterrupt took {waited:.2f} s"


def _cohort(n=6000, d=128, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.standard_normal((n, d), dtype=np.float32)
    report = image + 0.5 * rng.standard_normal((n, d), dtype=np.float32)
    meta = {"id": [f"r{i}" for i in range(n)], "patient_id": [f"p{i // 2}" for i in range(n)]}
    return linkrisk.Cohort(views={"image": image, "report": report}, metadata=meta)


def test_relink_releases_the_gil_and_reports_progress():
    cohort = _cohort()
    calls = []
    result = {}

    def work():
        result["report"] = linkrisk.relink(cohort, split="all", pools="10,full", bootstrap=200,
                                           progress=lambda what, done, total: calls.append((what, done, total)))

    thread = threading.Thread(target=work)
    ticks = 0
    thread.start()
    while thread.is_alive():
        ticks += 1
        time.sleep(0.001)
    thread.join()
    assert "report" in result
    assert ticks > 20, "the main thread ran while relink worked"
    assert calls and calls[-1][1] == calls[-1][2], "the last call of a pass reports it complete"
    assert all(0 <= done <= total for _, done, total in calls)


def test_a_failing_progress_callback_stops_the_pass():
    cohort = _cohort(n=3000, d=32)

    def boom(what, done, total):
        raise RuntimeError("stop here")

    try:
        linkrisk.relink(cohort, split="all", pools="10,full", bootstrap=0, progress=boom)
    except RuntimeError as e:
        assert "stop here" in str(e)
    else:
        raise AssertionError("the callback's error was swallowed")
