//! Property test (issue 18): random byte damage of a cohort's `.npy`, `.npz` (stored and
//! deflated), safetensors and CSV inputs never makes [`Cohort::load`] panic; and damage to a
//! checksummed container (`.npz`: CRC-32 per member) is never accepted with changed values.
//! (Raw `.npy`, safetensors and CSV carry no checksum: a flipped mantissa bit there is a
//! valid, different number, so for them the property is "no panic, and a cohort that loads
//! is a valid one of the same shape".)

use std::io::Write as _;
use std::path::Path;

use proptest::prelude::*;

use super::metadata::MetadataBuilder;
use super::Cohort;

const RECORDS: usize = 8;
const DIM: usize = 4;

fn image() -> Vec<f32> {
    (0..RECORDS * DIM).map(|i| 1.0 + (i % 7) as f32 * 0.25).collect()
}

/// A valid cohort in `dir` with the image view in `format` (report always `.npy`).
fn write_base(dir: &Path, format: &str) {
    let b = MetadataBuilder {
        ids: (0..RECORDS).map(|i| format!("r{i}")).collect(),
        patient_ids: (0..RECORDS).map(|i| format!("p{}", i / 2)).collect(),
        ..Default::default()
    };
    let metadata = b.build(&dir.join("metadata.csv"), 2).unwrap();
    let report: Vec<f32> = (0..RECORDS * DIM).map(|i| 2.0 - (i % 5) as f32 * 0.3).collect();
    super::write::write_cohort(dir, &metadata, &[("report", DIM, &report)]).unwrap();
    let npy_path = dir.join("image.npy");
    super::npy::write(&npy_path, RECORDS, DIM, &image()).unwrap();
    match format {
        "npy" | "csv" => {}
        "npz-stored" | "npz-deflated" => {
            let bytes = std::fs::read(&npy_path).unwrap();
            std::fs::remove_file(&npy_path).unwrap();
            let file = std::fs::File::create(dir.join("views.npz")).unwrap();
            let mut zip = zip::ZipWriter::new(file);
            let method = if format == "npz-stored" {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            zip.start_file("image.npy", zip::write::SimpleFileOptions::default().compression_method(method))
                .unwrap();
            zip.write_all(&bytes).unwrap();
            zip.finish().unwrap();
        }
        "safetensors" => {
            std::fs::remove_file(&npy_path).unwrap();
            let data: Vec<u8> = image().iter().flat_map(|v| v.to_le_bytes()).collect();
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![RECORDS, DIM], &data)
                    .unwrap();
            let bytes = safetensors::serialize([("image", view)], &None).unwrap();
            std::fs::write(dir.join("views.safetensors"), bytes).unwrap();
        }
        other => unreachable!("{other}"),
    }
}

fn damaged_file(format: &str) -> &'static str {
    match format {
        "npy" => "image.npy",
        "npz-stored" | "npz-deflated" => "views.npz",
        "safetensors" => "views.safetensors",
        _ => "metadata.csv",
    }
}

/// Flip bytes of the damaged file at `flips` (position fraction, xor mask), then load.
fn check(format: &str, flips: &[(f64, u8)], truncate: Option<f64>) -> std::result::Result<(), TestCaseError> {
    let tmp = tempfile::tempdir().unwrap();
    write_base(tmp.path(), format);
    let path = tmp.path().join(damaged_file(format));
    let original = Cohort::load(tmp.path()).expect("the base cohort loads");
    let mut bytes = std::fs::read(&path).unwrap();
    for &(at, mask) in flips {
        let i = ((at * bytes.len() as f64) as usize).min(bytes.len() - 1);
        bytes[i] ^= mask;
    }
    if let Some(keep) = truncate {
        bytes.truncate((keep * bytes.len() as f64) as usize);
    }
    std::fs::write(&path, &bytes).unwrap();
    // A panic here fails the property (proptest reports it with the input).
    let Ok(loaded) = Cohort::load(tmp.path()) else { return Ok(()) };
    prop_assert_eq!(loaded.len(), RECORDS);
    if format.starts_with("npz") {
        // A damaged member name may rename the view; its values must still be the originals.
        let before = original.view("image").unwrap();
        let after = loaded.views().find(|v| v.name() != "report").expect("the member's view");
        prop_assert_eq!(before.rows(), after.rows(), "a damaged .npz loaded with changed values");
    }
    Ok(())
}

fn flips() -> impl Strategy<Value = Vec<(f64, u8)>> {
    prop::collection::vec((0.0..1.0f64, 1u8..=255), 1..4)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn damaged_npy_never_panics(flips in flips(), truncate in prop::option::of(0.0..1.0f64)) {
        check("npy", &flips, truncate)?;
    }

    #[test]
    fn damaged_npz_never_panics_nor_loads_changed_values(
        flips in flips(),
        truncate in prop::option::of(0.0..1.0f64),
        stored in any::<bool>(),
    ) {
        check(if stored { "npz-stored" } else { "npz-deflated" }, &flips, truncate)?;
    }

    #[test]
    fn damaged_safetensors_never_panics(flips in flips(), truncate in prop::option::of(0.0..1.0f64)) {
        check("safetensors", &flips, truncate)?;
    }

    #[test]
    fn damaged_csv_never_panics(flips in flips(), truncate in prop::option::of(0.0..1.0f64)) {
        check("csv", &flips, truncate)?;
    }
}
