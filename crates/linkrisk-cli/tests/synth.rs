//! `linkrisk synth` and `linkrisk demo`.

use predicates::prelude::*;

use crate::util::{linkrisk, read, temp_dir};

const FILES: [&str; 5] =
    ["metadata.csv", "image.npy", "report.npy", "image_features.npy", "report_features.npy"];

#[test]
fn same_seed_gives_identical_files_on_any_thread_count() {
    let tmp = temp_dir();
    let runs = [("a", "1"), ("b", "2"), ("c", "2")];
    for (name, threads) in runs {
        linkrisk()
            .args(["synth", "--patients", "2000", "--seed", "7", "--out"])
            .arg(tmp.path().join(name))
            .env("RAYON_NUM_THREADS", threads)
            .assert()
            .success()
            .stdout(predicate::str::contains("records").and(predicate::str::contains("image_features")));
    }
    for file in FILES {
        let a = read(&tmp.path().join("a"), file);
        assert!(a.len() > 1000, "{file} is too small");
        for other in ["b", "c"] {
            assert!(a == read(&tmp.path().join(other), file), "{file} differs between runs a and {other}");
        }
    }
}

#[test]
fn another_seed_gives_other_files() {
    let tmp = temp_dir();
    for (name, seed) in [("a", "1"), ("b", "2")] {
        linkrisk()
            .args([
                "synth",
                "--patients",
                "200",
                "--external-patients",
                "0",
                "--dim",
                "8",
                "--feature-dim",
                "8",
            ])
            .args(["--seed", seed, "--out"])
            .arg(tmp.path().join(name))
            .assert()
            .success();
    }
    for file in FILES {
        assert!(
            read(&tmp.path().join("a"), file) != read(&tmp.path().join("b"), file),
            "{file} did not change"
        );
    }
}

#[test]
fn written_cohort_loads_with_the_flags_shapes_and_splits() {
    let tmp = temp_dir();
    let out = tmp.path().join("cohort");
    linkrisk()
        .args(["synth", "--patients", "150", "--external-patients", "40", "--studies-per-patient", "3"])
        .args(["--dim", "16", "--feature-dim", "20", "--specialization", "0.25", "--out"])
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::contains("external").and(predicate::str::contains("specialization 0.25")));
    let cohort = linkrisk::cohort::Cohort::load(&out).unwrap();
    assert_eq!(cohort.metadata.n_patients, 190);
    assert_eq!(cohort.metadata.split_names, ["train", "test", "external"].map(String::from).to_vec());
    for (view, dim) in [("image", 16), ("report", 16), ("image_features", 20), ("report_features", 20)] {
        assert_eq!(cohort.view(view).unwrap().dim(), dim, "{view}");
    }
    let mut per_patient = std::collections::HashMap::<u32, usize>::new();
    for &p in &cohort.metadata.patient {
        *per_patient.entry(p).or_default() += 1;
    }
    assert!(per_patient.values().all(|&k| (1..=3).contains(&k)));
    linkrisk()
        .arg("inspect")
        .arg(&out)
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^patients +190$").unwrap());
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let tmp = temp_dir();
    for (flag, value) in
        [("--specialization", "1.5"), ("--patients", "0"), ("--dim", "1"), ("--studies-per-patient", "0")]
    {
        linkrisk()
            .args(["synth", flag, value, "--out"])
            .arg(tmp.path().join("x"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains(flag).and(predicate::str::contains(value)));
    }
    assert!(!tmp.path().join("x").exists(), "nothing is written when the flags are invalid");
}
