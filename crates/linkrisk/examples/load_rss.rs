//! Peak memory of loading a large view: the loader must hold about one copy of the data
//! (a 400,000 x 512 float32 view is 819 MB), never the file plus a copy.
//!
//! ```sh
//! cargo run --example load_rss -- write /tmp/big npy 400000 512   # or npz, npz-deflate, safetensors, parquet
//! cargo run --example load_rss -- metadata /tmp/big               # peak RSS of the metadata alone
//! cargo run --example load_rss -- load /tmp/big                   # peak RSS of Cohort::load
//! ```
//! Each step is its own process, so `VmHWM` (peak resident set, from /proc/self/status)
//! of `load` counts only what loading needs.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use linkrisk::cohort::{npy, Cohort, Metadata};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["write", dir, format, rows, dim] => write(
            Path::new(dir),
            format,
            rows.parse().expect("rows is a number"),
            dim.parse().expect("dim is a number"),
        ),
        ["metadata", dir] => {
            let start = std::time::Instant::now();
            let path = Path::new(dir).join("metadata.csv");
            let metadata = if path.exists() {
                Metadata::read_csv(&path)
            } else {
                Cohort::load(dir).map(|c| c.metadata) // Parquet metadata carries the view
            };
            metadata.map(|m| report("metadata", m.len(), 0, start))
        }
        ["load", dir] => {
            let start = std::time::Instant::now();
            Cohort::load(dir).map(|c| {
                let view = c.views().next().expect("one view");
                report("load", c.len(), view.dim(), start)
            })
        }
        _ => {
            eprintln!("usage: load_rss write DIR npy|npz|npz-deflate|safetensors|parquet ROWS DIM | metadata DIR | load DIR");
            std::process::exit(2);
        }
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn report(step: &str, rows: usize, dim: usize, start: std::time::Instant) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    let data_mb = (rows * dim * 4) as f64 / (1 << 20) as f64;
    println!(
        "{step}: {rows} x {dim} in {:.2} s; view data {data_mb:.1} MiB; peak RSS (VmHWM) {:.1} MiB; RSS now {:.1} MiB",
        start.elapsed().as_secs_f64(),
        field("VmHWM:"),
        field("VmRSS:"),
    );
}

/// Deterministic values, generated row by row so the writer never needs them all at once.
fn row(i: usize, dim: usize, out: &mut Vec<f32>) {
    out.clear();
    let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for _ in 0..dim {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5 + 1e-3);
    }
}

fn write(dir: &Path, format: &str, rows: usize, dim: usize) -> linkrisk::Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| linkrisk::Error::write(dir, e))?;
    let io = |e: std::io::Error| linkrisk::Error::write(dir, e);
    if format != "parquet" {
        let mut csv = String::from("id,patient_id\n");
        for i in 0..rows {
            csv.push_str(&format!("r{i},p{}\n", i / 3));
        }
        std::fs::write(dir.join("metadata.csv"), csv).map_err(io)?;
    }
    let mut buf = Vec::with_capacity(dim);
    // The whole matrix as little-endian f32 bytes, streamed.
    let mut stream = |w: &mut dyn Write| -> std::io::Result<()> {
        let mut bytes = Vec::with_capacity(dim * 4);
        for i in 0..rows {
            row(i, dim, &mut buf);
            bytes.clear();
            bytes.extend(buf.iter().flat_map(|v| v.to_le_bytes()));
            w.write_all(&bytes)?;
        }
        Ok(())
    };
    let npy_header = {
        let mut probe = Vec::new();
        npy::write_to(&mut probe, rows, dim, &[]).ok(); // header only: data is empty
        probe
    };
    match format {
        "npy" => {
            let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("image.npy")).map_err(io)?);
            f.write_all(&npy_header).map_err(io)?;
            stream(&mut f).map_err(io)?;
            f.flush().map_err(io)?;
        }
        "npz" | "npz-deflate" => {
            let f = std::fs::File::create(dir.join("views.npz")).map_err(io)?;
            let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(f));
            let method = if format == "npz" {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            let options =
                zip::write::SimpleFileOptions::default().compression_method(method).large_file(true);
            zip.start_file("image.npy", options).map_err(|e| io(std::io::Error::other(e)))?;
            zip.write_all(&npy_header).map_err(io)?;
            stream(&mut zip).map_err(io)?;
            zip.finish().map_err(|e| io(std::io::Error::other(e)))?;
        }
        "safetensors" => {
            let bytes = rows * dim * 4;
            let mut header =
                format!(r#"{{"image":{{"dtype":"F32","shape":[{rows},{dim}],"data_offsets":[0,{bytes}]}}}}"#);
            header.push_str(&" ".repeat((8 - header.len() % 8) % 8));
            let mut f =
                std::io::BufWriter::new(std::fs::File::create(dir.join("views.safetensors")).map_err(io)?);
            f.write_all(&(header.len() as u64).to_le_bytes()).map_err(io)?;
            f.write_all(header.as_bytes()).map_err(io)?;
            stream(&mut f).map_err(io)?;
            f.flush().map_err(io)?;
        }
        "parquet" => {
            let item = Arc::new(Field::new("item", DataType::Float32, false));
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Utf8, false),
                Field::new("patient_id", DataType::Utf8, false),
                Field::new("image", DataType::FixedSizeList(item.clone(), dim as i32), false),
            ]));
            let f = std::fs::File::create(dir.join("metadata.parquet")).map_err(io)?;
            let mut writer = parquet::arrow::ArrowWriter::try_new(f, schema.clone(), None)
                .map_err(|e| io(std::io::Error::other(e)))?;
            for start in (0..rows).step_by(8192) {
                let end = (start + 8192).min(rows);
                let ids: Vec<String> = (start..end).map(|i| format!("r{i}")).collect();
                let patients: Vec<String> = (start..end).map(|i| format!("p{}", i / 3)).collect();
                let mut values = Vec::with_capacity((end - start) * dim);
                for i in start..end {
                    row(i, dim, &mut buf);
                    values.extend_from_slice(&buf);
                }
                let list = FixedSizeListArray::try_new(
                    item.clone(),
                    dim as i32,
                    Arc::new(Float32Array::from(values)),
                    None,
                )
                .map_err(|e| io(std::io::Error::other(e)))?;
                let columns: Vec<ArrayRef> = vec![
                    Arc::new(StringArray::from(ids)),
                    Arc::new(StringArray::from(patients)),
                    Arc::new(list),
                ];
                let batch = RecordBatch::try_new(schema.clone(), columns)
                    .map_err(|e| io(std::io::Error::other(e)))?;
                writer.write(&batch).map_err(|e| io(std::io::Error::other(e)))?;
            }
            writer.close().map_err(|e| io(std::io::Error::other(e)))?;
        }
        other => panic!("unknown format {other}"),
    }
    Ok(())
}
