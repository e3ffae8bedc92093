//! Bad cohort input: every class exits with code 2 and a message naming the file, the row
//! or column, and the fix. Files come from numpy/pyarrow/safetensors where a real library
//! writes the bad case (crates/linkrisk/tests/data/bad, made by make_fixtures.py) and are
//! crafted byte by byte otherwise.

use std::path::Path;

use crate::util::*;

fn inspect_err(dir: &Path, needles: &[&str]) -> String {
    run_err([Path::new("inspect"), dir], needles)
}

/// Replace one cell of a metadata CSV: record `record` (0-based), column `column`.
fn edit_cell(csv: &str, record: usize, column: &str, value: &str) -> String {
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    let col = lines[0].split(',').position(|h| h == column).expect("column exists");
    let mut cells: Vec<String> = lines[record + 1].split(',').map(String::from).collect();
    cells[col] = value.to_string();
    lines[record + 1] = cells.join(",");
    lines.join("\n") + "\n"
}

#[test]
fn nan_value_names_file_row_and_column() {
    let cohort = SmallCohort::new(10);
    let dir = cohort.write_temp();
    let mut data = values(10, 8, 1);
    data[3 * 8 + 2] = f32::NAN;
    write_file(dir.path(), "image.npy", npy_f32(10, 8, &data));
    inspect_err(
        dir.path(),
        &["image.npy", "view `image`, row 3 (0-based), column 2", "NaN is not finite", "remove that record"],
    );
}

#[test]
fn infinite_value_in_safetensors() {
    let cohort = SmallCohort { views: vec![("report".into(), 6)], ..SmallCohort::new(10) };
    let dir = cohort.write_temp();
    let mut data = values(10, 4, 9);
    data[7 * 4] = f32::INFINITY;
    write_file(
        dir.path(),
        "views.safetensors",
        safetensors_bytes(&[("image", "F32", vec![10, 4], f32_bytes(&data))]),
    );
    inspect_err(
        dir.path(),
        &["views.safetensors", "view `image`, row 7 (0-based), column 0", "inf is not finite"],
    );
}

#[test]
fn all_zero_vector() {
    let dir = SmallCohort::new(10).write_temp();
    let mut data = values(10, 6, 2);
    data[5 * 6..6 * 6].fill(0.0);
    write_file(dir.path(), "report.npy", npy_f32(10, 6, &data));
    inspect_err(
        dir.path(),
        &["report.npy", "view `report`, row 5 (0-based): all-zero vector", "cosine similarity is undefined"],
    );
}

#[test]
fn view_rows_differ_from_metadata_records() {
    let dir = SmallCohort::new(10).write_temp();
    write_file(dir.path(), "image.npy", npy_f32(9, 8, &values(9, 8, 1)));
    write_file(dir.path(), "report.npy", npy_f32(9, 6, &values(9, 6, 2)));
    inspect_err(dir.path(), &["image.npy", "view `image` has 9 rows but the metadata has 10 records"]);
}

#[test]
fn image_report_pair_with_different_n() {
    let dir = SmallCohort::new(10).write_temp();
    write_file(dir.path(), "report.npy", npy_f32(9, 6, &values(9, 6, 2)));
    inspect_err(
        dir.path(),
        &["views have different numbers of rows", "`image` has 10", "`report` has 9", "report.npy"],
    );
}

#[test]
fn duplicate_id() {
    let cohort = SmallCohort::new(10);
    let dir = cohort.write_temp();
    write_file(dir.path(), "metadata.csv", edit_cell(&cohort.csv(), 3, "id", "r1"));
    inspect_err(dir.path(), &["metadata.csv", "row 5: duplicate id `r1` (first seen on row 3)"]);
}

#[test]
fn missing_required_column() {
    let cohort = SmallCohort::new(10);
    let dir = cohort.write_temp();
    write_file(dir.path(), "metadata.csv", cohort.csv().replacen("patient_id", "subject", 1));
    inspect_err(
        dir.path(),
        &["metadata.csv", "missing required column `patient_id`", "subject", "cohort.toml [columns]"],
    );
}

#[test]
fn unparseable_finding_label() {
    let cohort = SmallCohort::new(10);
    let dir = cohort.write_temp();
    write_file(dir.path(), "metadata.csv", edit_cell(&cohort.csv(), 2, "Edema", "yes"));
    inspect_err(
        dir.path(),
        &[
            "metadata.csv",
            "row 4, column `Edema`: cannot parse `yes` as a finding label",
            "1, 0, -1 (uncertain) or leave blank",
        ],
    );
}

#[test]
fn unparseable_age() {
    let cohort = SmallCohort::new(10);
    let dir = cohort.write_temp();
    write_file(dir.path(), "metadata.csv", edit_cell(&cohort.csv(), 1, "age", "sixty"));
    inspect_err(
        dir.path(),
        &["metadata.csv", "row 3, column `age`: cannot parse `sixty` as an age in years"],
    );
}

#[test]
fn truncated_npy() {
    let dir = SmallCohort::new(10).write_temp();
    let bytes = npy_f32(10, 8, &values(10, 8, 1));
    write_file(dir.path(), "image.npy", &bytes[..bytes.len() - 10]);
    inspect_err(dir.path(), &["image.npy", "file is truncated", "re-export the file"]);
}

#[test]
fn truncated_safetensors_npz_and_parquet() {
    let cohort = SmallCohort { views: vec![], ..SmallCohort::new(10) };
    let st = safetensors_bytes(&[("image", "F32", vec![10, 4], f32_bytes(&values(10, 4, 3)))]);
    let dir = cohort.write_temp();
    write_file(dir.path(), "views.safetensors", &st[..st.len() - 7]);
    inspect_err(dir.path(), &["views.safetensors", "truncated"]);

    let npz = npz_bytes(&[("image", npy_f32(10, 4, &values(10, 4, 3)))], true);
    let dir = cohort.write_temp();
    write_file(dir.path(), "views.npz", &npz[..npz.len() / 2]);
    inspect_err(dir.path(), &["views.npz", "truncated"]);

    let dir = temp_dir();
    let parquet = std::fs::read(fixture("parquet/list.parquet")).unwrap();
    write_file(dir.path(), "metadata.parquet", &parquet[..parquet.len() - 100]);
    inspect_err(dir.path(), &["metadata.parquet", "truncated"]);
}

#[test]
fn non_npy_file() {
    let dir = SmallCohort::new(10).write_temp();
    write_file(dir.path(), "image.npy", "id,patient_id\nr0,p0\n");
    inspect_err(dir.path(), &["image.npy", "not a .npy file", "numpy.save"]);
}

#[test]
fn unsupported_dtypes_written_by_numpy_and_safetensors() {
    let cohort = SmallCohort { views: vec![], ..SmallCohort::new(4) };
    for (fixture_name, file, needle) in [
        ("bad/int64.npy", "image.npy", "unsupported dtype int64 (`<i8`)"),
        ("bad/complex64.npy", "image.npy", "unsupported dtype complex64 (`<c8`)"),
        ("bad/complex64.safetensors", "views.safetensors", "unsupported dtype complex64 (`C64`)"),
    ] {
        let dir = cohort.write_temp();
        std::fs::copy(fixture(fixture_name), dir.path().join(file)).unwrap();
        inspect_err(dir.path(), &[file, needle, "float16, float32 or float64"]);
    }
    let dir = cohort.write_temp();
    let ints: Vec<u8> = (0..8i64).flat_map(|v| v.to_le_bytes()).collect();
    write_file(dir.path(), "views.safetensors", safetensors_bytes(&[("image", "I64", vec![4, 2], ints)]));
    inspect_err(dir.path(), &["views.safetensors:image", "unsupported dtype int64"]);
}

#[test]
fn fortran_order_npy() {
    let dir = SmallCohort { views: vec![], ..SmallCohort::new(4) }.write_temp();
    std::fs::copy(fixture("bad/fortran.npy"), dir.path().join("image.npy")).unwrap();
    inspect_err(dir.path(), &["image.npy", "Fortran (column-major) order", "ascontiguousarray"]);
}

#[test]
fn empty_cohort() {
    let cohort = SmallCohort { views: vec![], ..SmallCohort::new(0) };
    let dir = cohort.write_temp();
    inspect_err(dir.path(), &["metadata.csv", "the cohort is empty"]);
    let empty = temp_dir();
    inspect_err(empty.path(), &["no metadata.csv or metadata.parquet"]);
}

#[test]
fn empty_patient_id_is_an_unknown_patient() {
    let cohort = SmallCohort::new(10);
    let dir = cohort.write_temp();
    write_file(dir.path(), "metadata.csv", edit_cell(&cohort.csv(), 2, "patient_id", ""));
    inspect_err(dir.path(), &["metadata.csv", "row 4: column `patient_id` is empty (unknown patient)"]);
}

#[test]
fn misaligned_rows_detected_from_container_ids() {
    let cohort = SmallCohort { views: vec![], ..SmallCohort::new(4) };
    let dir = cohort.write_temp();
    let npz = npz_bytes(
        &[("image", npy_f32(4, 3, &values(4, 3, 5))), ("ids", npy_strings(&["r0", "r2", "r1", "r3"]))],
        false,
    );
    write_file(dir.path(), "views.npz", npz);
    inspect_err(
        dir.path(),
        &[
            "views.npz",
            "rows are misaligned: row 1 (0-based) of record ids `ids` is `r2`",
            "metadata.csv has id `r1`",
        ],
    );
    // Integer ids in safetensors against text ids in the metadata.
    let dir = cohort.write_temp();
    let ids: Vec<u8> = (0..4i64).flat_map(|v| v.to_le_bytes()).collect();
    write_file(
        dir.path(),
        "views.safetensors",
        safetensors_bytes(&[
            ("image", "F32", vec![4, 2], f32_bytes(&values(4, 2, 6))),
            ("ids", "I64", vec![4], ids),
        ]),
    );
    inspect_err(dir.path(), &["views.safetensors", "row 0 (0-based) of record ids `ids` is `0`"]);
    // Ids stored as pickled objects (pandas strings saved with np.savez) cannot be read.
    let dir = cohort.write_temp();
    std::fs::copy(fixture("bad/object_ids.npz"), dir.path().join("views.npz")).unwrap();
    inspect_err(dir.path(), &["views.npz:ids", "dtype object", "dtype=str"]);
}

#[test]
fn parquet_list_of_wrong_length_or_null() {
    let dir = temp_dir();
    std::fs::copy(fixture("bad/ragged_list.parquet"), dir.path().join("metadata.parquet")).unwrap();
    inspect_err(
        dir.path(),
        &[
            "metadata.parquet",
            "row 2 (0-based), column `image`: the embedding has 3 values but earlier rows have 4",
        ],
    );
    let dir = temp_dir();
    std::fs::copy(fixture("bad/null_embedding.parquet"), dir.path().join("metadata.parquet")).unwrap();
    inspect_err(dir.path(), &["metadata.parquet", "row 1 (0-based), column `image`: the embedding is null"]);
}

#[test]
fn manifest_mistakes() {
    let cohort = SmallCohort::new(4);
    let dir = cohort.write_temp();
    write_file(dir.path(), "cohort.toml", "[view]\nimage = \"image.npy\"\n");
    inspect_err(dir.path(), &["cohort.toml", "unknown field `view`"]);
    write_file(dir.path(), "cohort.toml", "[views]\nimage = \"missing.npy\"\n");
    inspect_err(dir.path(), &["missing.npy", "does not exist"]);
    write_file(dir.path(), "cohort.toml", "[views]\nimage = \"image.npy\"\n[columns]\nid = \"dicom_id\"\n");
    inspect_err(dir.path(), &["missing required column `dicom_id` (the column cohort.toml maps to `id`)"]);
}

#[test]
fn ambiguous_or_missing_directory() {
    let dir = SmallCohort::new(4).write_temp();
    std::fs::copy(fixture("parquet/list.parquet"), dir.path().join("metadata.parquet")).unwrap();
    inspect_err(dir.path(), &["both metadata.csv and metadata.parquet"]);
    inspect_err(&dir.path().join("nope"), &["nope", "not a directory"]);
}

#[test]
fn duplicate_view_names_across_files() {
    let dir = SmallCohort::new(4).write_temp();
    write_file(dir.path(), "more.npz", npz_bytes(&[("image", npy_f32(4, 3, &values(4, 3, 7)))], false));
    inspect_err(dir.path(), &["view `image` is defined twice", "image.npy", "more.npz:image"]);
}
