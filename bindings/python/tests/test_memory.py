"""A cohort built in memory from numpy arrays and pandas/dict metadata is the cohort loaded
from the same files; other dtypes and orders convert once; float32 C arrays are not copied
by the Python layer and never modified."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import linkrisk
from linkrisk import _view_array


def _arrays(cohort_dir):
    return {name: np.load(cohort_dir / f"{name}.npy") for name in ("image", "report")}


def _settings():
    return dict(pools=[10, 50, "full"], attack="csls,procrustes", bootstrap=50, trials=4, seed=5)


@pytest.fixture(scope="module")
def loaded_report(cohort_dir):
    return linkrisk.relink(linkrisk.Cohort.load(cohort_dir), **_settings()).to_dict()


def test_dataframe_cohort_equals_loaded(cohort_dir, loaded_report):
    views = _arrays(cohort_dir)
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in views.values())
    df = pd.read_csv(cohort_dir / "metadata.csv")
    cohort = linkrisk.Cohort(views={"image": views["image"], "report": views["report"]}, metadata=df)
    assert len(cohort) == len(df) and cohort.view_names == ["image", "report"]
    assert linkrisk.relink(cohort, **_settings()).to_dict() == loaded_report
    loaded = linkrisk.Cohort.load(cohort_dir)
    for name in views:
        assert np.array_equal(cohort.view(name), loaded.view(name))
    # the audits see the same metadata too
    assert linkrisk.utility(cohort, folds=3).to_dict() == linkrisk.utility(loaded, folds=3).to_dict()


def test_dict_and_path_metadata(cohort_dir, loaded_report):
    views = _arrays(cohort_dir)
    df = pd.read_csv(cohort_dir / "metadata.csv", dtype=str, keep_default_na=False)
    as_dict = {c: list(df[c]) for c in df.columns}
    from_dict = linkrisk.Cohort(views=views, metadata=as_dict)
    assert linkrisk.relink(from_dict, **_settings()).to_dict() == loaded_report
    from_path = linkrisk.Cohort(views=views, metadata=cohort_dir / "metadata.csv")
    assert linkrisk.relink(from_path, **_settings()).to_dict() == loaded_report


def test_float32_c_arrays_are_used_in_place_and_left_alone(cohort_dir):
    image = np.load(cohort_dir / "image.npy")
    before = image.copy()
    _, passed, dtype = _view_array("image", image)
    assert passed is image and dtype == "float32", "no conversion copy for float32 C-contiguous input"
    cohort = linkrisk.Cohort(views={"image": image, "report": np.load(cohort_dir / "report.npy")},
                             metadata=cohort_dir / "metadata.csv")
    linkrisk.relink(cohort, pools="10,full", bootstrap=0)
    assert np.array_equal(image, before), "the caller's array is never normalised in place"


@pytest.mark.parametrize("convert", [
    lambda a: a.astype(np.float64),
    lambda a: np.asfortranarray(a),
    lambda a: np.asfortranarray(a.astype(np.float64)),
    lambda a: a[:, ::-1][:, ::-1],  # a non-contiguous view
])
def test_float64_and_fortran_inputs_equal_float32(cohort_dir, loaded_report, convert):
    views = {k: convert(v) for k, v in _arrays(cohort_dir).items()}
    cohort = linkrisk.Cohort(views=views, metadata=pd.read_csv(cohort_dir / "metadata.csv"))
    assert linkrisk.relink(cohort, **_settings()).to_dict() == loaded_report


def test_float16_in_memory_equals_float16_file(cohort_dir, tmp_path, cli_json):
    """float16 views: the in-memory cohort equals the CLI on the same float16 .npy files."""
    import shutil

    half = tmp_path / "half"
    half.mkdir()
    shutil.copy(cohort_dir / "metadata.csv", half / "metadata.csv")
    views = {}
    for name, array in _arrays(cohort_dir).items():
        views[name] = array.astype(np.float16)
        np.save(half / f"{name}.npy", views[name])
    cohort = linkrisk.Cohort(views=views, metadata=pd.read_csv(half / "metadata.csv"))
    report = linkrisk.relink(cohort, pools="10,full", bootstrap=30, attack="csls")
    assert report.to_dict() == cli_json("relink", half, "--pools", "10,full", "--bootstrap", 30, "--attack", "csls")
    assert cohort.summary()["views"][0]["dtype"] == "float16"


def test_in_memory_save_needs_a_label_and_fingerprints_content(cohort_dir, tmp_path):
    views = _arrays(cohort_dir)
    df = pd.read_csv(cohort_dir / "metadata.csv")
    a = linkrisk.Cohort(views=views, metadata=df)
    report = linkrisk.relink(a, pools="10,full", bootstrap=0)
    with pytest.raises(linkrisk.ConfigError, match="label"):
        report.save(tmp_path / "run")
    report.save(tmp_path / "run", label="model-a")
    b = linkrisk.Cohort(views={k: v[::-1].copy() for k, v in views.items()}, metadata=df.iloc[::-1])
    assert a.fingerprint() == linkrisk.Cohort(views=views, metadata=df).fingerprint()
    assert b.fingerprint() != a.fingerprint()
    other = linkrisk.relink(b, pools="10,full", bootstrap=0)
    with pytest.raises(linkrisk.InputError):
        other.save(tmp_path / "run", label="model-a")  # another cohort under a recorded label
