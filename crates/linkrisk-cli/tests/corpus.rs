//! Corruption corpus (issue 18): a generator of corrupted cohorts, kept here beside the test
//! that runs them. Every case starts from one valid 12-record cohort (`metadata.csv`,
//! `image.npy`, `report.npy`) and breaks one thing; each corrupted cohort goes through
//! `linkrisk inspect` and one audit (`linkrisk relink`): both must exit 2 with a message
//! naming the damaged file, and never panic. The base cohort itself must pass both, so a
//! case that fails proves its damage was found.

use std::path::Path;

use crate::util::*;

const RECORDS: usize = 12;
const DIM: usize = 6;

/// One corrupted cohort: its class, its name, how to break the valid base cohort in `dir`,
/// and the file the error message must name.
struct Case {
    class: &'static str,
    name: String,
    damage: Box<dyn Fn(&Path)>,
    names: &'static str,
}

fn base(dir: &Path) {
    let mut cohort = SmallCohort::new(RECORDS);
    cohort.views = vec![("image".into(), DIM), ("report".into(), DIM)];
    cohort.write(dir);
}

fn csv_text() -> String {
    let mut cohort = SmallCohort::new(RECORDS);
    cohort.views = vec![("image".into(), DIM), ("report".into(), DIM)];
    cohort.csv()
}

fn image_values() -> Vec<f32> {
    values(RECORDS, DIM, 1)
}

fn case(
    class: &'static str,
    name: impl Into<String>,
    names: &'static str,
    damage: impl Fn(&Path) + 'static,
) -> Case {
    Case { class, name: name.into(), damage: Box::new(damage), names }
}

/// Replace line `line` (0 = header) of the metadata CSV with `f(line)`.
fn edit_line(line: usize, f: impl Fn(&str) -> String + 'static) -> impl Fn(&Path) {
    move |dir: &Path| {
        let text = csv_text();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        lines[line] = f(&lines[line]);
        write_file(dir, "metadata.csv", lines.join("\n") + "\n");
    }
}

/// Replace cell `column` of record `record` in the metadata CSV.
fn edit_cell(record: usize, column: &'static str, value: &'static str) -> impl Fn(&Path) {
    move |dir: &Path| {
        let text = csv_text();
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        let col = lines[0].split(',').position(|h| h == column).expect("column exists");
        let mut cells: Vec<String> = lines[record + 1].split(',').map(String::from).collect();
        cells[col] = value.to_string();
        lines[record + 1] = cells.join(",");
        write_file(dir, "metadata.csv", lines.join("\n") + "\n");
    }
}

/// The corpus. Classes: view-file kinds, npy headers, npy data, npz, safetensors, metadata
/// structure, metadata values, alignment.
fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    // Files that are not regular files, where a view or the metadata is expected.
    cases.push(case("file-kind", "image.npy is a directory", "image.npy", |d| {
        std::fs::remove_file(d.join("image.npy")).unwrap();
        std::fs::create_dir(d.join("image.npy")).unwrap();
    }));
    cases.push(case("file-kind", "image.npy is a dangling symlink", "image.npy", |d| {
        std::fs::remove_file(d.join("image.npy")).unwrap();
        std::os::unix::fs::symlink(d.join("gone.npy"), d.join("image.npy")).unwrap();
    }));
    cases.push(case("file-kind", "image.npy is a symlink loop", "image.npy", |d| {
        std::fs::remove_file(d.join("image.npy")).unwrap();
        std::os::unix::fs::symlink("image.npy", d.join("image.npy")).unwrap();
    }));
    cases.push(case("file-kind", "image.npy links to /dev/zero", "image.npy", |d| {
        std::fs::remove_file(d.join("image.npy")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", d.join("image.npy")).unwrap();
    }));
    cases.push(case("file-kind", "image.npy is a FIFO", "image.npy", |d| {
        std::fs::remove_file(d.join("image.npy")).unwrap();
        let status = std::process::Command::new("mkfifo").arg(d.join("image.npy")).status().unwrap();
        assert!(status.success(), "mkfifo");
    }));
    cases.push(case("file-kind", "metadata.csv is a directory", "metadata.csv", |d| {
        std::fs::remove_file(d.join("metadata.csv")).unwrap();
        std::fs::create_dir(d.join("metadata.csv")).unwrap();
    }));
    cases.push(case("file-kind", "metadata.csv is a FIFO", "metadata.csv", |d| {
        std::fs::remove_file(d.join("metadata.csv")).unwrap();
        let status = std::process::Command::new("mkfifo").arg(d.join("metadata.csv")).status().unwrap();
        assert!(status.success(), "mkfifo");
    }));
    cases.push(case("file-kind", "extra view file is a directory", "extra.npz", |d| {
        std::fs::create_dir(d.join("extra.npz")).unwrap();
    }));

    // .npy headers.
    let npy = npy_f32(RECORDS, DIM, &image_values());
    let header_end = npy.iter().position(|&b| b == b'\n').unwrap();
    for keep in [0, 5, 9, 20, header_end, header_end + 7] {
        let bytes = npy[..keep].to_vec();
        cases.push(case(
            "npy-header",
            format!("image.npy truncated to {keep} bytes"),
            "image.npy",
            move |d| {
                write_file(d, "image.npy", &bytes);
            },
        ));
    }
    let header = String::from_utf8_lossy(&npy[10..header_end]).into_owned();
    let header_edits: Vec<(&str, String)> = vec![
        ("unterminated dict", header.replace('}', " ")),
        ("unclosed shape", header.replace(&format!("({RECORDS}, {DIM})"), &format!("({RECORDS}, {DIM} "))),
        ("no descr", header.replace("'descr'", "'kind_'")),
        ("no shape", header.replace("'shape'", "'shap_'")),
        ("bad shape entry", header.replace(&format!("({RECORDS},"), "(1x,")),
        ("int64 descr", header.replace("<f4", "<i8")),
        ("object descr", header.replace("<f4", "|O1")),
        ("3-d shape", header.replace(&format!("({RECORDS}, {DIM})"), &format!("({RECORDS}, 3, 2)"))),
        (
            "shape too large",
            header.replace(&format!("({RECORDS}, {DIM})"), &format!("({RECORDS}, {})", DIM * 2)),
        ),
        (
            "shape too small",
            header.replace(&format!("({RECORDS}, {DIM})"), &format!("({}, {DIM})", RECORDS - 1)),
        ),
        (
            "huge shape",
            header.replace(&format!("({RECORDS}, {DIM})"), "(18446744073709551615, 18446744073709551615)"),
        ),
        ("fortran order", header.replace("False", "True ")),
    ];
    for (what, text) in header_edits {
        let mut bytes = npy.clone();
        let text = format!("{text:<width$}", width = header_end - 10);
        bytes.splice(10..header_end, text.bytes());
        cases.push(case("npy-header", format!("image.npy header: {what}"), "image.npy", move |d| {
            write_file(d, "image.npy", &bytes);
        }));
    }
    let mut bad_magic = npy.clone();
    bad_magic[1] = b'X';
    cases.push(case("npy-header", "image.npy bad magic", "image.npy", move |d| {
        write_file(d, "image.npy", &bad_magic);
    }));
    let mut bad_version = npy.clone();
    bad_version[6] = 9;
    cases.push(case("npy-header", "image.npy version 9", "image.npy", move |d| {
        write_file(d, "image.npy", &bad_version);
    }));
    let mut huge_header = npy.clone();
    huge_header[8] = 0xff;
    huge_header[9] = 0xff;
    cases.push(case("npy-header", "image.npy header length past the end", "image.npy", move |d| {
        write_file(d, "image.npy", &huge_header);
    }));

    // .npy data.
    for (what, value) in [("NaN", f32::NAN), ("+Inf", f32::INFINITY), ("-Inf", f32::NEG_INFINITY)] {
        for row in [0, RECORDS - 1] {
            cases.push(case("npy-data", format!("image.npy {what} in row {row}"), "image.npy", move |d| {
                let mut data = image_values();
                data[row * DIM + 1] = value;
                write_file(d, "image.npy", npy_f32(RECORDS, DIM, &data));
            }));
        }
    }
    for row in [0, 5] {
        cases.push(case("npy-data", format!("report.npy all-zero row {row}"), "report.npy", move |d| {
            let mut data = values(RECORDS, DIM, 2);
            data[row * DIM..(row + 1) * DIM].fill(0.0);
            write_file(d, "report.npy", npy_f32(RECORDS, DIM, &data));
        }));
    }
    cases.push(case("npy-data", "image.npy row norm overflows float32", "image.npy", |d| {
        let mut data = image_values();
        data[3 * DIM..4 * DIM].fill(3.0e38);
        write_file(d, "image.npy", npy_f32(RECORDS, DIM, &data));
    }));
    cases.push(case("npy-data", "image.npy one byte short", "image.npy", |d| {
        let mut bytes = npy_f32(RECORDS, DIM, &image_values());
        bytes.pop();
        write_file(d, "image.npy", &bytes);
    }));
    cases.push(case("npy-data", "image.npy every value NaN", "image.npy", |d| {
        write_file(d, "image.npy", npy_f32(RECORDS, DIM, &vec![f32::NAN; RECORDS * DIM]));
    }));

    // .npz containers (the image view moved into views.npz).
    let member = npy_f32(RECORDS, DIM, &image_values());
    for compress in [false, true] {
        let kind = if compress { "deflated" } else { "stored" };
        let good = npz_bytes(&[("image", member.clone())], compress);
        let at = good.len() / 2;
        let truncated = good[..at].to_vec();
        cases.push(case("npz", format!("views.npz ({kind}) truncated"), "views.npz", move |d| {
            std::fs::remove_file(d.join("image.npy")).unwrap();
            write_file(d, "views.npz", &truncated);
        }));
        let mut nan = image_values();
        nan[7] = f32::NAN;
        let with_nan = npz_bytes(&[("image", npy_f32(RECORDS, DIM, &nan))], compress);
        cases.push(case("npz", format!("views.npz ({kind}) NaN member"), "views.npz", move |d| {
            std::fs::remove_file(d.join("image.npy")).unwrap();
            write_file(d, "views.npz", &with_nan);
        }));
        // Two members renamed to one name after writing (zip writers refuse to do it).
        let twice = npz_bytes(&[("image", member.clone()), ("imagf", member.clone())], compress);
        let twice = replace_all(&twice, b"imagf.npy", b"image.npy");
        cases.push(case("npz", format!("views.npz ({kind}) duplicate member"), "views.npz", move |d| {
            std::fs::remove_file(d.join("image.npy")).unwrap();
            write_file(d, "views.npz", &twice);
        }));
    }
    // A stored member with one changed value byte: only its CRC-32 tells.
    let mut crc = npz_bytes(&[("image", member.clone())], false);
    let data_at = find(&crc, &member).expect("stored member bytes") + member.len() - 9;
    crc[data_at] ^= 0x01;
    cases.push(case("npz", "views.npz stored member with a bad CRC-32", "views.npz", move |d| {
        std::fs::remove_file(d.join("image.npy")).unwrap();
        write_file(d, "views.npz", &crc);
    }));
    let text = npz_bytes(&[("image", member.clone())], false);
    let text = replace_all(&text, b"image.npy", b"image.txt");
    cases.push(case("npz", "views.npz member that is not .npy", "views.npz", move |d| {
        std::fs::remove_file(d.join("image.npy")).unwrap();
        write_file(d, "views.npz", &text);
    }));

    // safetensors (the image view moved into views.safetensors).
    let raw = f32_bytes(&image_values());
    let good = safetensors_bytes(&[("image", "F32", vec![RECORDS, DIM], raw.clone())]);
    let safetensor_cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated data", good[..good.len() - 5].to_vec()),
        ("truncated header", good[..12].to_vec()),
        ("header length past the end", {
            let mut b = good.clone();
            b[..8].copy_from_slice(&(1u64 << 40).to_le_bytes());
            b
        }),
        ("header not JSON", {
            let mut b = good.clone();
            b[8] = b'!';
            b
        }),
        (
            "shape larger than data",
            safetensors_bytes(&[("image", "F32", vec![RECORDS + 1, DIM], raw.clone())]),
        ),
        ("unsupported dtype", safetensors_bytes(&[("image", "I64", vec![RECORDS, DIM / 2], raw.clone())])),
        ("NaN value", {
            let mut v = image_values();
            v[2] = f32::NAN;
            safetensors_bytes(&[("image", "F32", vec![RECORDS, DIM], f32_bytes(&v))])
        }),
    ];
    for (what, bytes) in safetensor_cases {
        cases.push(case("safetensors", format!("views.safetensors {what}"), "views.safetensors", move |d| {
            std::fs::remove_file(d.join("image.npy")).unwrap();
            write_file(d, "views.safetensors", &bytes);
        }));
    }

    // Metadata structure.
    cases.push(case("metadata-structure", "empty metadata.csv", "metadata.csv", |d| {
        write_file(d, "metadata.csv", "");
    }));
    cases.push(case("metadata-structure", "header only", "metadata.csv", |d| {
        let text = csv_text();
        write_file(d, "metadata.csv", format!("{}\n", text.lines().next().unwrap()));
    }));
    cases.push(case(
        "metadata-structure",
        "duplicate column sex",
        "metadata.csv",
        edit_line(0, |h| h.replacen("race", "sex", 1)),
    ));
    cases.push(case(
        "metadata-structure",
        "duplicate column id",
        "metadata.csv",
        edit_line(0, |h| h.replacen("study_id", "id", 1)),
    ));
    cases.push(case(
        "metadata-structure",
        "no id column",
        "metadata.csv",
        edit_line(0, |h| h.replacen("id,", "record,", 1)),
    ));
    cases.push(case(
        "metadata-structure",
        "no patient_id column",
        "metadata.csv",
        edit_line(0, |h| h.replacen("patient_id", "patient", 1)),
    ));
    cases.push(case(
        "metadata-structure",
        "a row with a missing cell",
        "metadata.csv",
        edit_line(4, |l| l.rsplit_once(',').unwrap().0.to_string()),
    ));
    cases.push(case(
        "metadata-structure",
        "a row with an extra cell",
        "metadata.csv",
        edit_line(4, |l| format!("{l},extra")),
    ));
    cases.push(case(
        "metadata-structure",
        "an unterminated quote",
        "metadata.csv",
        edit_line(3, |l| format!("\"{l}")),
    ));
    cases.push(case("metadata-structure", "not UTF-8", "metadata.csv", |d| {
        let mut bytes = csv_text().into_bytes();
        let at = bytes.len() - 3;
        bytes[at] = 0xff;
        write_file(d, "metadata.csv", bytes);
    }));

    // Metadata values.
    cases.push(case("metadata-values", "duplicate id", "metadata.csv", edit_cell(3, "id", "r0")));
    cases.push(case("metadata-values", "empty id", "metadata.csv", edit_cell(3, "id", "")));
    cases.push(case("metadata-values", "empty patient_id", "metadata.csv", edit_cell(5, "patient_id", "")));
    cases.push(case("metadata-values", "finding label 2", "metadata.csv", edit_cell(2, "Edema", "2")));
    cases.push(case(
        "metadata-values",
        "finding label yes",
        "metadata.csv",
        edit_cell(2, "Cardiomegaly", "yes"),
    ));
    cases.push(case("metadata-values", "age -5", "metadata.csv", edit_cell(1, "age", "-5")));
    cases.push(case("metadata-values", "age NaN", "metadata.csv", edit_cell(1, "age", "NaN")));
    cases.push(case("metadata-values", "age abc", "metadata.csv", edit_cell(1, "age", "abc")));

    // Alignment between files.
    cases.push(case("alignment", "image.npy has one row fewer", "image.npy", |d| {
        write_file(d, "image.npy", npy_f32(RECORDS - 1, DIM, &values(RECORDS - 1, DIM, 1)));
    }));
    cases.push(case("alignment", "report.npy has one row more", "report.npy", |d| {
        write_file(d, "report.npy", npy_f32(RECORDS + 1, DIM, &values(RECORDS + 1, DIM, 2)));
    }));
    cases.push(case("alignment", "metadata.csv has one record fewer", "metadata", |d| {
        let text = csv_text();
        let lines: Vec<&str> = text.lines().collect();
        write_file(d, "metadata.csv", lines[..lines.len() - 1].join("\n") + "\n");
    }));
    cases.push(case("alignment", "view defined twice (npy and npz)", "image", |d| {
        write_file(d, "views.npz", npz_bytes(&[("image", npy_f32(RECORDS, DIM, &image_values()))], false));
    }));
    cases
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn replace_all(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    assert_eq!(from.len(), to.len());
    let mut out = bytes.to_vec();
    let mut at = 0;
    while let Some(i) = find(&out[at..], from) {
        out[at + i..at + i + from.len()].copy_from_slice(to);
        at += i + from.len();
    }
    out
}

#[test]
fn every_corrupted_cohort_fails_inspect_and_an_audit_naming_the_file() {
    let valid = temp_dir();
    base(valid.path());
    run_ok(["inspect", valid.path().to_str().unwrap()]);
    let audit = |dir: &Path| {
        let dir = dir.to_str().unwrap().to_string();
        run([dir.as_str(), "--bootstrap", "0", "--trials", "2", "--pools", "4"].iter().fold(
            vec!["relink".to_string()],
            |mut v, a| {
                v.push(a.to_string());
                v
            },
        ))
    };
    assert_eq!(audit(valid.path()).code, 0, "the base cohort is valid");

    let cases = corpus();
    let mut classes: Vec<&str> = cases.iter().map(|c| c.class).collect();
    classes.dedup();
    assert!(cases.len() >= 60, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let dir = temp_dir();
        base(dir.path());
        (case.damage)(dir.path());
        let inspect = run(["inspect", dir.path().to_str().unwrap()]);
        let relink = audit(dir.path());
        for (what, out) in [("inspect", &inspect), ("relink", &relink)] {
            let ok = out.code == 2 && out.stderr.contains(case.names) && !out.stderr.contains("panicked");
            if !ok {
                failures.push(format!(
                    "[{}] {}: {what} exit {} (want 2 naming {}):\n{}",
                    case.class, case.name, out.code, case.names, out.stderr
                ));
            }
        }
    }
    eprintln!("corruption corpus: {} cases in {} classes", cases.len(), classes.len());
    assert!(
        failures.is_empty(),
        "{} of {} checks failed:\n{}",
        failures.len(),
        2 * cases.len(),
        failures.join("\n")
    );
}
