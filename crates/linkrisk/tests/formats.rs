//! Files written by numpy, safetensors, pyarrow and pandas load to exactly the values those
//! libraries say they hold. Fixtures and expected values come from
//! `tests/data/make_fixtures.py` (numpy 2.4.6, pyarrow 26.0.1, pandas 3.1.1, safetensors
//! 0.8.0; see `_source` in `tests/data/expected.json`).

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns unwrap too

use std::path::{Path, PathBuf};

use linkrisk::cohort::container::Select;
use linkrisk::cohort::npy::{Array2, Dtype};
use linkrisk::cohort::{npy, npz, parquet, safetensors, Cohort, Label, MetadataOptions};
use serde_json::Value;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

fn expected() -> Value {
    let text = std::fs::read_to_string(data("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Compare an array with an expected entry bit for bit (f64 JSON -> f32 is exact because
/// the values were float32 to begin with).
fn assert_matches(array: &Array2, key: &str) {
    let all = expected();
    let e = &all[key];
    assert!(e.is_object(), "no expected entry {key}");
    assert_eq!(array.rows as u64, e["rows"].as_u64().unwrap(), "{key} rows");
    assert_eq!(array.cols as u64, e["cols"].as_u64().unwrap(), "{key} cols");
    assert_eq!(array.dtype.name(), e["dtype"].as_str().unwrap(), "{key} dtype");
    let want: Vec<f32> = e["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(array.data.len(), want.len(), "{key}");
    for (i, (got, want)) in array.data.iter().zip(&want).enumerate() {
        assert_eq!(got.to_bits(), want.to_bits(), "{key}[{i}]: {got} != {want}");
    }
}

fn member<'a>(contents: &'a linkrisk::cohort::container::Contents, name: &str) -> &'a Array2 {
    &contents.arrays.iter().find(|m| m.name == name).unwrap_or_else(|| panic!("no member {name}")).array
}

#[test]
fn npy_float32_float16_float64_and_big_endian() {
    for file in ["f32.npy", "f16.npy", "f64.npy", "f32_big_endian.npy"] {
        let array = npy::read(&data(&format!("npy/{file}"))).unwrap();
        assert_matches(&array, &format!("npy/{file}"));
    }
    // -0.0 survives as -0.0 (bit-exact comparison above would catch +0.0 too).
    let array = npy::read(&data("npy/f32.npy")).unwrap();
    assert_eq!(array.data[0].to_bits(), (-0.0f32).to_bits());
    assert_eq!(npy::read(&data("npy/f16.npy")).unwrap().dtype, Dtype::Float16);
}

#[test]
fn npz_stored_and_compressed() {
    let all = expected();
    let want_ids: Vec<String> =
        all["npz/ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    for file in ["views.npz", "views_compressed.npz"] {
        let contents = npz::read(&data(&format!("npz/{file}")), &Select::All).unwrap();
        assert_eq!(contents.arrays.len(), 2, "ids is not a view");
        assert_matches(member(&contents, "image"), &format!("npz/{file}:image"));
        assert_matches(member(&contents, "report"), &format!("npz/{file}:report"));
        let ids = contents.ids.unwrap();
        assert_eq!(ids.member, "ids");
        assert_eq!(ids.ids, want_ids);
    }
}

#[test]
fn safetensors_f32_f16_f64_bf16() {
    let contents = safetensors::read(&data("safetensors/views.safetensors"), &Select::All).unwrap();
    for name in ["image", "report", "double"] {
        assert_matches(member(&contents, name), &format!("safetensors/views.safetensors:{name}"));
    }
    let all = expected();
    let want: Vec<&str> =
        all["safetensors/ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(contents.ids.unwrap().ids, want);
    let bf16 = safetensors::read(&data("safetensors/bf16.safetensors"), &Select::Single).unwrap();
    assert_matches(member(&bf16, "emb"), "safetensors/bf16.safetensors:emb");
}

#[test]
fn parquet_fixed_size_list_and_list_with_metadata() {
    let options = MetadataOptions::default();
    let fixed =
        parquet::read(&data("parquet/fixed_size_list.parquet"), &Select::All, &options, true).unwrap();
    assert_matches(member(&fixed.contents, "image"), "parquet/fixed_size_list.parquet:image");
    assert_matches(member(&fixed.contents, "report"), "parquet/fixed_size_list.parquet:report");
    let list = parquet::read(&data("parquet/list.parquet"), &Select::All, &options, true).unwrap();
    assert_matches(member(&list.contents, "image"), "parquet/list.parquet:image");

    let all = expected();
    let want = &all["metadata"];
    let strings = |key: &str| -> Vec<String> {
        want[key].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
    };
    for m in [fixed.metadata.unwrap(), list.metadata.unwrap()] {
        assert_eq!(m.ids, strings("ids"));
        assert_eq!(m.patient_ids, strings("patient_ids"), "int64 patient ids read as text");
        assert_eq!(m.study_ids.as_ref().unwrap(), &strings("study_ids"));
        let splits: Vec<&str> = (0..m.len()).map(|i| m.split_name(i)).collect();
        assert_eq!(splits, strings("splits"));
        assert_eq!((m.n_patients, m.n_studies), (3, 4));
        let opt_strings = |key: &str| -> Vec<Option<String>> {
            want[key].as_array().unwrap().iter().map(|v| v.as_str().map(String::from)).collect()
        };
        assert_eq!(m.sex.as_ref().unwrap(), &opt_strings("sex"));
        assert_eq!(m.race.as_ref().unwrap(), &opt_strings("race"));
        let ages: Vec<Option<f64>> = want["age"].as_array().unwrap().iter().map(Value::as_f64).collect();
        assert_eq!(m.age.as_ref().unwrap(), &ages);
        let findings = m.findings.as_ref().unwrap();
        for (row, want_row) in findings.iter().zip(want["findings"].as_array().unwrap()) {
            let want_row: Vec<Label> = want_row
                .as_array()
                .unwrap()
                .iter()
                .map(|v| match v.as_i64() {
                    None => Label::Blank,
                    Some(1) => Label::Positive,
                    Some(0) => Label::Negative,
                    Some(-1) => Label::Uncertain,
                    Some(x) => panic!("label {x}"),
                })
                .collect();
            assert_eq!(row.as_slice(), want_row.as_slice());
        }
        assert!(m.extra_columns.is_empty(), "{:?}", m.extra_columns);
    }
}

#[test]
fn metadata_parquet_cohort_directory_without_manifest() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(data("parquet/fixed_size_list.parquet"), dir.path().join("metadata.parquet")).unwrap();
    let cohort = Cohort::load(dir.path()).unwrap();
    assert_eq!(cohort.view_names(), ["image", "report"]);
    assert_eq!(cohort.view("report").unwrap().source().dtype, Dtype::Float64);
    assert_eq!(cohort.len(), 4);
}

#[test]
fn manifest_cohort_loads_with_renames_split_mapping_and_id_check() {
    let dir = data("cohort");
    let cohort = Cohort::load(&dir).unwrap();
    let m = &cohort.metadata;
    assert_eq!(m.ids, ["d0", "d1", "d2", "d3", "d4"]);
    assert_eq!((m.n_patients, m.n_studies), (3, 4));
    assert_eq!(m.split_names, ["train", "test"], "validate and test both map to test");
    assert_eq!(m.age.as_ref().unwrap()[0], Some(70.0));
    assert_eq!(cohort.view_names(), ["image", "report"]);
    let all = expected();
    for name in ["image", "report"] {
        let view = cohort.view(name).unwrap();
        let e = &all[&format!("cohort:{name}")];
        let raw: Vec<f64> = e["data"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let dim = view.dim();
        assert_eq!(dim as u64, e["cols"].as_u64().unwrap());
        // Rows are the raw rows divided by their norm, computed independently here in f64.
        for (i, raw_row) in raw.chunks(dim).enumerate() {
            let norm = raw_row.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((f64::from(view.norms()[i]) - norm).abs() <= 1e-6 * norm);
            for (got, want) in view.row(i).iter().zip(raw_row) {
                assert!((f64::from(*got) - want / norm).abs() < 1e-6, "{name} row {i}");
            }
        }
    }
    let notes = cohort.load_notes();
    assert_eq!(notes.ids_checked.len(), 1);
    assert!(notes.ids_checked[0].file.ends_with("text.npz"));
    assert_eq!(notes.ignored_files, [dir.join("README.txt")]);
}

/// metadata.csv text for the four records of the Parquet fixtures, ids in `order`.
fn metadata_csv(order: &[&str]) -> String {
    let mut text = String::from("id,patient_id\n");
    for id in order {
        text.push_str(&format!("{id},p{id}\n"));
    }
    text
}

#[test]
fn parquet_view_file_is_checked_against_metadata_ids() {
    let manifest = "[views]\nimage = \"emb.parquet:image\"\nwhole = \"one.npz\"\n";
    let setup = |order: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(data("parquet/list.parquet"), dir.path().join("emb.parquet")).unwrap();
        std::fs::copy(data("npz/views.npz"), dir.path().join("two.npz")).unwrap();
        std::fs::write(dir.path().join("metadata.csv"), metadata_csv(order)).unwrap();
        std::fs::write(dir.path().join("cohort.toml"), manifest).unwrap();
        // A one-member archive named without `:member` in cohort.toml.
        let mut f = std::fs::File::create(dir.path().join("one.npz")).unwrap();
        let mut zip = zip_writer(&mut f);
        let mut bytes = Vec::new();
        npy::write_to(&mut bytes, 4, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]).unwrap();
        zip.start_file("only.npy", zip_options()).unwrap();
        std::io::Write::write_all(&mut zip, &bytes).unwrap();
        zip.finish().unwrap();
        dir
    };
    let dir = setup(&["r0", "r1", "r2", "r3"]);
    let cohort = Cohort::load(dir.path()).unwrap();
    assert_eq!(cohort.view_names(), ["image", "whole"], "only [views] are views; two.npz is ignored");
    assert_eq!(cohort.view("whole").unwrap().source().member.as_deref(), Some("only"));
    let checked = &cohort.load_notes().ids_checked;
    assert_eq!(checked.len(), 1);
    assert_eq!(
        (checked[0].file.file_name().unwrap(), checked[0].member.as_str()),
        ("emb.parquet".as_ref(), "id")
    );
    assert_eq!(cohort.load_notes().ignored_files, [dir.path().join("two.npz")]);

    let dir = setup(&["r0", "r1", "r3", "r2"]);
    let err = Cohort::load(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("emb.parquet") && err.contains("row 2 (0-based) of record ids `id` is `r2`"),
        "{err}"
    );
}

fn zip_writer(f: &mut std::fs::File) -> zip::ZipWriter<&mut std::fs::File> {
    zip::ZipWriter::new(f)
}

fn zip_options() -> zip::write::SimpleFileOptions {
    zip::write::SimpleFileOptions::default()
}
