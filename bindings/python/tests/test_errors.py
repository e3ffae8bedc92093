"""Every class of bad input raises InputError (bad settings ConfigError), both ValueErrors,
with the CLI's message and the file, row and column it names."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

import linkrisk


@pytest.fixture()
def parts(cohort_dir):
    views = {name: np.load(cohort_dir / f"{name}.npy") for name in ("image", "report")}
    return views, pd.read_csv(cohort_dir / "metadata.csv")


def test_errors_are_value_errors():
    assert issubclass(linkrisk.InputError, ValueError) and issubclass(linkrisk.ConfigError, ValueError)


def test_nan_names_view_row_and_column(parts):
    views, df = parts
    views["image"] = views["image"].copy()
    views["image"][7, 3] = np.nan
    with pytest.raises(linkrisk.InputError, match=r"view `image`, row 7 \(0-based\), column 3: value NaN is not finite") as e:
        linkrisk.Cohort(views=views, metadata=df)
    assert (e.value.file, e.value.row, e.value.column) == ("<array:image>", 7, "3")


def test_inf_and_zero_rows(parts):
    views, df = parts
    views["report"] = views["report"].copy()
    views["report"][2, 0] = np.inf
    with pytest.raises(linkrisk.InputError, match="row 2 .*value inf is not finite"):
        linkrisk.Cohort(views=views, metadata=df)
    views["report"][2, 0] = 1.0
    views["report"][4] = 0.0
    with pytest.raises(linkrisk.InputError, match="row 4 .*all-zero vector") as e:
        linkrisk.Cohort(views=views, metadata=df)
    assert e.value.row == 4


def test_misaligned_rows(parts):
    views, df = parts
    with pytest.raises(linkrisk.InputError, match="views have different numbers of rows"):
        linkrisk.Cohort(views={"image": views["image"], "report": views["report"][:-1]}, metadata=df)
    with pytest.raises(linkrisk.InputError, match=f"has {len(df) - 1} rows but the metadata has {len(df)} records"):
        linkrisk.Cohort(views={"image": views["image"][:-1]}, metadata=df)


def test_metadata_problems(parts):
    views, df = parts
    dup = df.copy()
    dup.loc[5, "id"] = dup.loc[4, "id"]
    with pytest.raises(linkrisk.InputError, match="duplicate") as e:
        linkrisk.Cohort(views=views, metadata=dup)
    assert e.value.file == "<metadata>"
    with pytest.raises(linkrisk.InputError, match="missing required column `patient_id`"):
        linkrisk.Cohort(views=views, metadata=df.drop(columns=["patient_id"]))
    no_patient = df.copy()
    no_patient["patient_id"] = no_patient["patient_id"].astype(str)
    no_patient.loc[3, "patient_id"] = None
    with pytest.raises(linkrisk.InputError, match="row 3"):
        linkrisk.Cohort(views=views, metadata=no_patient)
    bad_age = df.copy()
    bad_age["age"] = bad_age["age"].astype(object)
    bad_age.loc[9, "age"] = "old"
    with pytest.raises(linkrisk.InputError, match=r"row 9 \(0-based\), column `age`: cannot parse `old`") as e:
        linkrisk.Cohort(views=views, metadata=bad_age)
    assert (e.value.row, e.value.column) == (9, "age")
    bad_label = df.copy()
    bad_label["Edema"] = bad_label["Edema"].astype(object)
    bad_label.loc[1, "Edema"] = "yes"
    with pytest.raises(linkrisk.InputError, match="column `Edema`: cannot parse `yes` as a finding label"):
        linkrisk.Cohort(views=views, metadata=bad_label)


def test_array_shape_and_dtype(parts):
    views, df = parts
    with pytest.raises(linkrisk.InputError, match="must be 2-D"):
        linkrisk.Cohort(views={"image": views["image"][0]}, metadata=df)
    with pytest.raises(linkrisk.InputError, match="dtype int64"):
        linkrisk.Cohort(views={"image": np.ones((len(df), 4), dtype=np.int64)}, metadata=df)


def test_unknown_view_and_split(cohort_dir):
    cohort = linkrisk.Cohort.load(cohort_dir)
    with pytest.raises(linkrisk.InputError, match="no view named `text`; this cohort has: image, image_features, report, report_features"):
        linkrisk.relink(cohort, gallery="text", bootstrap=0)
    with pytest.raises(linkrisk.LinkriskError, match="validation"):
        linkrisk.relink(cohort, split="validation", bootstrap=0)


def test_bad_settings_raise_config_error(cohort_dir):
    cohort = linkrisk.Cohort.load(cohort_dir)
    with pytest.raises(linkrisk.ConfigError, match="pools: `ten` is neither a pool size"):
        linkrisk.relink(cohort, pools=["ten"])
    with pytest.raises(linkrisk.ConfigError, match="pool size 1 is too small"):
        linkrisk.relink(cohort, pools=[1])
    with pytest.raises(linkrisk.ConfigError):
        linkrisk.relink(cohort, attack="magic")
    with pytest.raises(linkrisk.ConfigError, match="match_level"):
        linkrisk.relink(cohort, match="record")
    with pytest.raises(linkrisk.ConfigError):
        linkrisk.accountant.epsilon(sample_rate=1.5, noise_multiplier=1.0, steps=10, delta=1e-5)
    with pytest.raises(linkrisk.ConfigError, match="steps or epochs"):
        linkrisk.accountant.epsilon(sample_rate=0.1, noise_multiplier=1.0, delta=1e-5)


def test_file_errors_match_the_cli(cohort_dir, tmp_path, cli):
    """A broken cohort directory: Cohort.load raises the text the CLI prints."""
    bad = tmp_path / "bad"
    shutil.copytree(cohort_dir, bad)
    image = np.load(bad / "image.npy")
    image[11, 2] = np.nan
    np.save(bad / "image.npy", image)
    proc = cli("inspect", bad, check=False)
    assert proc.returncode == 2
    with pytest.raises(linkrisk.InputError) as e:
        linkrisk.Cohort.load(bad)
    assert proc.stderr.strip() == f"linkrisk: error: {e.value}"
    assert e.value.file.endswith("image.npy") and e.value.row == 11 and e.value.column == "2"
    with pytest.raises(linkrisk.InputError, match="not a directory|No such file"):
        linkrisk.Cohort.load(tmp_path / "missing")
