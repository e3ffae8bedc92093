//! Helpers shared by the CLI integration tests: temporary directories, small cohorts written
//! to disk (metadata.csv plus views), raw `.npy` / `.npz` / safetensors bytes for crafting
//! bad inputs, and running the `linkrisk` binary with its exit code and output captured.

#![allow(dead_code)] // each test module uses a different subset

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

use linkrisk::cohort::metadata::MetadataBuilder;
use linkrisk::cohort::write::write_cohort;
use linkrisk::cohort::{Label, FINDINGS, N_FINDINGS};

/// The `linkrisk` binary built by cargo for this test run.
pub fn linkrisk() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("linkrisk").expect("the linkrisk binary is built")
}

/// What a run of the binary returned.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Run `linkrisk ARGS` and capture everything.
pub fn run<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let output = linkrisk().args(args).output().expect("linkrisk runs");
    Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Run and assert success (exit code 0); returns the outcome.
pub fn run_ok<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(args);
    assert_eq!(out.code, 0, "expected success\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    out
}

/// Run and assert the error exit code 2 with every `needle` in stderr; returns stderr.
pub fn run_err<I, S>(args: I, needles: &[&str]) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(args);
    assert_eq!(out.code, 2, "expected exit code 2\nstdout:\n{}\nstderr:\n{}", out.stdout, out.stderr);
    for needle in needles {
        assert!(out.stderr.contains(needle), "stderr lacks {needle:?}:\n{}", out.stderr);
    }
    assert!(!out.stderr.contains("panicked"), "the binary panicked:\n{}", out.stderr);
    out.stderr
}

/// A fresh temporary directory, removed when dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Write `contents` to `dir/name` (creating parent directories) and return the path.
pub fn write_file(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent directory");
    }
    std::fs::write(&path, contents).expect("write file");
    path
}

/// A committed fixture of the library crate (`crates/linkrisk/tests/data/REL`).
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../linkrisk/tests/data").join(rel)
}

/// Deterministic, well-spread, never-all-zero values (rows x cols, row-major) for views.
pub fn values(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    (0..rows * cols)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            // Uniform in [-1, 1), shifted away from 0 so no row can be all zeros.
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            if u >= 0.0 {
                u + 0.01
            } else {
                u - 0.01
            }
        })
        .collect()
}

/// Raw `.npy` bytes (format 1.0) for any `descr` and shape; `data` is written as given.
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let shape_text = match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_text}, }}");
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// `.npy` bytes of a float32 matrix.
pub fn npy_f32(rows: usize, cols: usize, data: &[f32]) -> Vec<u8> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_bytes("<f4", &[rows, cols], &bytes)
}

/// `.npy` bytes of a 1-D string array (numpy `<U{width}`), e.g. record ids.
pub fn npy_strings(values: &[&str]) -> Vec<u8> {
    let width = values.iter().map(|v| v.chars().count()).max().unwrap_or(1).max(1);
    let mut bytes = Vec::new();
    for v in values {
        let mut chars: Vec<u32> = v.chars().map(|c| c as u32).collect();
        chars.resize(width, 0);
        bytes.extend(chars.iter().flat_map(|c| c.to_le_bytes()));
    }
    npy_bytes(&format!("<U{width}"), &[values.len()], &bytes)
}

/// `.npz` bytes: a zip of `name.npy` members (stored, or deflated when `compress`).
pub fn npz_bytes(members: &[(&str, Vec<u8>)], compress: bool) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut cursor);
        let method = if compress { zip::CompressionMethod::Deflated } else { zip::CompressionMethod::Stored };
        let options = zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in members {
            zip.start_file(format!("{name}.npy"), options).expect("zip member");
            zip.write_all(bytes).expect("zip write");
        }
        zip.finish().expect("zip finish");
    }
    cursor.into_inner()
}

/// safetensors bytes: `(name, dtype e.g. "F32", shape, raw little-endian data)` per tensor.
pub fn safetensors_bytes(tensors: &[(&str, &str, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    let mut text = serde_json::Value::Object(header).to_string();
    text.push_str(&" ".repeat((8 - text.len() % 8) % 8));
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    for (_, _, _, bytes) in tensors {
        out.extend_from_slice(bytes);
    }
    out
}

/// Little-endian bytes of f32 values.
pub fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A small, valid cohort description; `write` puts `metadata.csv` and one `.npy` per view in
/// a directory. Record `i` is `r{i}`, patient `p{i / records_per_patient}`, study `s{i}`;
/// patients alternate between the `train` and `test` splits.
#[derive(Debug, Clone)]
pub struct SmallCohort {
    /// Number of records.
    pub records: usize,
    /// Records per patient (the last patient may have fewer).
    pub records_per_patient: usize,
    /// (view name, dim) pairs written as `name.npy`.
    pub views: Vec<(String, usize)>,
    /// Whether to write the 14 CheXpert finding columns.
    pub findings: bool,
    /// Whether to write `sex`, `age`, `race`.
    pub demographics: bool,
    /// Whether to write a `split` column.
    pub split: bool,
}

impl SmallCohort {
    /// `records` records, 2 per patient, views `image` (8-d) and `report` (6-d), all columns.
    pub fn new(records: usize) -> Self {
        SmallCohort {
            records,
            records_per_patient: 2,
            views: vec![("image".into(), 8), ("report".into(), 6)],
            findings: true,
            demographics: true,
            split: true,
        }
    }

    /// The `metadata.csv` text.
    pub fn csv(&self) -> String {
        let mut header = vec!["id".to_string(), "patient_id".into(), "study_id".into()];
        if self.split {
            header.push("split".into());
        }
        if self.findings {
            header.extend(FINDINGS.iter().map(|f| f.to_string()));
        }
        if self.demographics {
            header.extend(["sex".into(), "age".into(), "race".into()]);
        }
        let mut text = header.join(",");
        text.push('\n');
        let labels = ["1", "0", "-1", ""];
        for i in 0..self.records {
            let patient = i / self.records_per_patient;
            let mut row = vec![format!("r{i}"), format!("p{patient}"), format!("s{i}")];
            if self.split {
                row.push(if patient % 2 == 0 { "train" } else { "test" }.into());
            }
            if self.findings {
                row.extend((0..FINDINGS.len()).map(|k| labels[(i + k) % 4].to_string()));
            }
            if self.demographics {
                row.push(if patient % 2 == 0 { "F" } else { "M" }.into());
                row.push(if i % 5 == 4 { String::new() } else { format!("{}", 40 + i % 30) });
                row.push(["White", "Black", "Asian"][patient % 3].into());
            }
            text.push_str(&row.join(","));
            text.push('\n');
        }
        text
    }

    /// Write `metadata.csv` and the views into `dir` (created if needed).
    pub fn write(&self, dir: &Path) {
        write_file(dir, "metadata.csv", self.csv());
        for (k, (name, dim)) in self.views.iter().enumerate() {
            let data = values(self.records, *dim, k as u64 + 1);
            write_file(dir, &format!("{name}.npy"), npy_f32(self.records, *dim, &data));
        }
    }

    /// Write into a fresh temporary directory.
    pub fn write_temp(&self) -> tempfile::TempDir {
        let dir = temp_dir();
        self.write(dir.path());
        dir
    }
}

/// The bytes of `dir/name`.
pub fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("read {}: {e}", dir.join(name).display()))
}

/// Stdout of a finished command, parsed as JSON.
pub fn json_stdout(output: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// xorshift64* with Box-Muller normals: deterministic test data without extra crates.
#[derive(Debug)]
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

/// Write a cohort with `n_patients` patients (2 records each), an `image` view of `dim`
/// columns in which findings and sex shift the embedding; splits train (70%) / test.
/// "Fracture" is never positive. Returns the record ids.
pub fn write_probe_cohort(dir: &Path, n_patients: usize, dim: usize, seed: u64) -> Vec<String> {
    let mut noise = Noise::new(seed);
    let directions: Vec<Vec<f32>> =
        (0..N_FINDINGS + 1).map(|_| (0..dim).map(|_| noise.normal()).collect()).collect();
    let mut b = MetadataBuilder {
        study_ids: Some(Vec::new()),
        splits: Some(Vec::new()),
        findings: Some(Vec::new()),
        sex: Some(Vec::new()),
        age: Some(Vec::new()),
        ..Default::default()
    };
    let mut data = Vec::new();
    for p in 0..n_patients {
        let female = noise.uniform() < 0.5;
        let identity: Vec<f32> = (0..dim).map(|_| noise.normal()).collect();
        for s in 0..2 {
            let mut row: Vec<f32> = identity.iter().map(|v| 0.5 * v).collect();
            let mut labels = [Label::Blank; N_FINDINGS];
            for (k, label) in labels.iter_mut().enumerate() {
                let positive = k != 12 && noise.uniform() < 0.25;
                *label = if positive {
                    Label::Positive
                } else if noise.uniform() < 0.5 {
                    Label::Negative
                } else {
                    Label::Blank
                };
                if positive {
                    row.iter_mut().zip(&directions[k]).for_each(|(v, d)| *v += 1.5 * d);
                }
            }
            if female {
                row.iter_mut().zip(&directions[N_FINDINGS]).for_each(|(v, d)| *v += 1.5 * d);
            }
            row.iter_mut().for_each(|v| *v += noise.normal());
            data.extend(row);
            b.ids.push(format!("r{p}_{s}"));
            b.patient_ids.push(format!("p{p}"));
            b.study_ids.as_mut().expect("column present").push(format!("s{s}"));
            b.splits.as_mut().expect("column present").push(if p % 10 < 7 { "train" } else { "test" }.into());
            b.findings.as_mut().expect("column present").push(labels);
            b.sex.as_mut().expect("column present").push(Some(if female { "F" } else { "M" }.into()));
            b.age.as_mut().expect("column present").push((p % 5 != 0).then(|| 30.0 + (p * 7 % 60) as f64));
        }
    }
    let ids = b.ids.clone();
    let metadata = b.build(Path::new("metadata.csv"), 2).expect("valid metadata");
    write_cohort(dir, &metadata, &[("image", dim, &data)]).expect("cohort written");
    ids
}

/// Write a cohort of the builder's records with the given raw views `(name, dim, rows)`
/// into `dir`.
pub fn write_built_cohort(dir: &Path, builder: MetadataBuilder, views: &[(&str, usize, &[f32])]) {
    let meta = builder.build(Path::new("<test>"), 0).expect("valid metadata");
    write_cohort(dir, &meta, views).expect("cohort written");
}

/// Run `linkrisk AUDIT DIR FLAGS --shard i/n --out RUN` (its partial goes to RUN/shards/);
/// returns stdout. Shared by the relink and reid shard tests.
pub fn run_shard(audit: &str, dir: &Path, run_dir: &Path, flags: &[&str], i: usize, n: usize) -> String {
    let out = linkrisk()
        .arg(audit)
        .arg(dir)
        .args(flags)
        .args(["--shard", &format!("{i}/{n}"), "--out"])
        .arg(run_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{audit} shard {i}/{n}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Where shard `i`/`n` of `audit` writes its partial under RUN.
pub fn shard_partial(audit: &str, run_dir: &Path, i: usize, n: usize) -> PathBuf {
    run_dir.join("shards").join(format!("{audit}.shard-{i:04}-of-{n:04}.lrp"))
}
