"""Every report from Python equals the CLI's JSON for the same cohort and settings (dict
equality: the reports carry no timing or provenance keys, so nothing is left out)."""

from __future__ import annotations

import json

import linkrisk


def test_relink_equals_cli(cohort_dir, cli_json):
    cohort = linkrisk.Cohort.load(cohort_dir)
    report = linkrisk.relink(cohort, pools=[10, 50, "full"], attack="all", direction="both",
                             hard_negatives=True, bootstrap=100, trials=5, seed=3)
    expected = cli_json("relink", cohort_dir, "--pools", "10,50,full", "--attack", "all", "--direction", "both",
                        "--hard-negatives", "--bootstrap", 100, "--trials", 5, "--seed", 3)
    assert report.to_dict() == expected
    assert report["attacks"] and report["reverse"]["attacks"], "the attacks ran, both directions"


def test_relink_json_text_is_the_cli_file(cohort_dir, cli, tmp_path):
    cohort = linkrisk.Cohort.load(cohort_dir)
    report = linkrisk.relink(cohort, pools="10,full", attack="none", bootstrap=0, split="all")
    path = tmp_path / "r.json"
    cli("relink", cohort_dir, "--pools", "10,full", "--attack", "none", "--bootstrap", 0, "--split", "all",
        "--json", path)
    assert report.to_json() + "\n" == path.read_text()


def test_reid_equals_cli(cohort_dir, cli_json):
    cohort = linkrisk.Cohort.load(cohort_dir)
    report = linkrisk.reid(cohort, attacker="linear-metric", attack="csls", bootstrap=50, seed=1)
    expected = cli_json("reid", cohort_dir, "--attacker", "linear-metric", "--attack", "csls",
                        "--bootstrap", 50, "--seed", 1)
    assert report.to_dict() == expected


def test_attributes_equals_cli(cohort_dir, cli_json):
    cohort = linkrisk.Cohort.load(cohort_dir)
    report = linkrisk.attributes(cohort, stratify_by_reid=True, min_group=5, seed=2)
    expected = cli_json("attributes", cohort_dir, "--stratify-by-reid", "--min-group", 5, "--seed", 2)
    assert report.to_dict() == expected
    plain = linkrisk.attributes(cohort, targets="sex,age", age_threshold="median", auroc_ci="plain")
    assert plain.to_dict() == cli_json("attributes", cohort_dir, "--targets", "sex,age", "--age-threshold",
                                       "median", "--auroc-ci", "plain")


def test_utility_equals_cli(cohort_dir, cli_json):
    cohort = linkrisk.Cohort.load(cohort_dir)
    report = linkrisk.utility(cohort, uncertain="positive", folds=3)
    assert report.to_dict() == cli_json("utility", cohort_dir, "--uncertain", "positive", "--folds", 3)
    assert report.to_dict()["macro_auroc"] is not None


def test_summary_equals_inspect(cohort_dir, cli):
    summary = linkrisk.Cohort.load(cohort_dir).summary()
    assert summary == json.loads(cli("inspect", cohort_dir, "--json").stdout)


def test_accountant_equals_cli(cli):
    eps = linkrisk.accountant.epsilon(sample_rate=0.01, noise_multiplier=1.1, steps=1000, delta=1e-5)
    out = cli("accountant", "--sample-rate", 0.01, "--noise-multiplier", 1.1, "--steps", 1000, "--delta", 1e-5,
              "--json").stdout
    assert eps.to_dict() == json.loads(out)
    assert eps.to_json() == out.strip()
    rdp = linkrisk.accountant.noise_multiplier(sample_rate=0.01, epsilon=2.0, epochs=3, delta=1e-5,
                                               accountant="rdp", rdp_orders="opacus")
    out = cli("accountant", "--sample-rate", 0.01, "--epsilon", 2.0, "--epochs", 3, "--delta", 1e-5,
              "--accountant", "rdp", "--rdp-orders", "opacus", "--json").stdout
    assert rdp.to_dict() == json.loads(out)
    assert rdp["achieved_epsilon"] <= 2.0


def _entries(run_dir):
    """run.json's entries without what differs between two recordings of one audit."""
    runs = json.loads((run_dir / "run.json").read_text())["runs"]
    return sorted(
        ({k: v for k, v in e.items() if k not in ("command", "started_unix", "seconds")} for e in runs),
        key=lambda e: e["key"],
    )


def test_save_records_like_out_and_report_renders(cohort_dir, cli, tmp_path):
    cohort = linkrisk.Cohort.load(cohort_dir)
    py_run, cli_run = tmp_path / "py", tmp_path / "cli"
    linkrisk.relink(cohort, pools="10,full", bootstrap=20).save(py_run)
    linkrisk.reid(cohort, bootstrap=20).save(py_run)
    cli("relink", cohort_dir, "--pools", "10,full", "--bootstrap", 20, "--out", cli_run)
    cli("reid", cohort_dir, "--bootstrap", 20, "--out", cli_run)
    # command, started_unix and seconds are the provenance of each recording
    assert _entries(py_run) == _entries(cli_run)
    assert len(_entries(py_run)) >= 2
    cli("report", py_run)
    assert (py_run / "report.html").exists() and (py_run / "report.md").exists()
    written = linkrisk.render(py_run)
    assert any(w.endswith("report.html") for w in written)
