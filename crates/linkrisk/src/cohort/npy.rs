//! NumPy `.npy` files (format versions 1-3): 2-D float32, float16 or float64 in C order,
//! little- or big-endian, read straight into one `Vec<f32>` (one copy of the data in memory,
//! no intermediate buffer for float32). Also the writer used by `synth` and `train-heads`.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Element type found in a file, before conversion to f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// IEEE half precision.
    Float16,
    /// IEEE single precision.
    Float32,
    /// IEEE double precision (converted to f32 at load).
    Float64,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Float16 => 2,
            Dtype::Float32 => 4,
            Dtype::Float64 => 8,
        }
    }

    /// numpy's name.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::Float16 => "float16",
            Dtype::Float32 => "float32",
            Dtype::Float64 => "float64",
        }
    }
}

/// A 2-D array converted to f32, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Array2 {
    /// Rows.
    pub rows: usize,
    /// Columns.
    pub cols: usize,
    /// Element type in the source.
    pub dtype: Dtype,
    /// `rows * cols` values, row-major.
    pub data: Vec<f32>,
}

const MAGIC: &[u8] = b"\x93NUMPY";

/// Parsed header of an `.npy` stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Element type.
    pub dtype: Dtype,
    /// Whether the data is big-endian.
    pub big_endian: bool,
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Bytes taken by magic, version, length and header text.
    pub header_len: usize,
}

/// Read a 2-D float `.npy` file into f32.
pub fn read(path: &Path) -> Result<Array2> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    read_from(std::io::BufReader::with_capacity(1 << 20, file), path, Some(len))
}

/// Read a 2-D float `.npy` stream; `path` names the source in errors and `total_len`, when
/// known, lets a truncated file be reported before reading.
pub fn read_from(mut reader: impl Read, path: &Path, total_len: Option<u64>) -> Result<Array2> {
    let header = read_header(&mut reader, path)?;
    let (rows, cols) = match header.shape.as_slice() {
        [r, c] => (*r, *c),
        [r] => {
            return Err(Error::input(
                path,
                format!("holds a 1-D array of shape ({r},); a view must be 2-D (records, dim): reshape with arr.reshape(len(arr), -1)"),
            ))
        }
        s => {
            return Err(Error::input(
                path,
                format!("holds an array of shape {s:?}; a view must be 2-D (records, dim)"),
            ))
        }
    };
    let count = rows.checked_mul(cols).ok_or_else(|| Error::input(path, "shape overflows"))?;
    let bytes = count as u64 * header.dtype.size() as u64;
    if let Some(total) = total_len {
        let available = total.saturating_sub(header.header_len as u64);
        if available < bytes {
            return Err(Error::input(
                path,
                format!(
                    "file is truncated: the header says ({rows}, {cols}) {} = {bytes} bytes of data but only {available} follow; re-export the file",
                    header.dtype.name()
                ),
            ));
        }
    }
    let data = read_values(&mut reader, path, count, header.dtype, header.big_endian)?;
    Ok(Array2 { rows, cols, dtype: header.dtype, data })
}

fn truncated(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        Error::input(
            path,
            "file is truncated: it ends before the data its header announces; re-export the file",
        )
    } else {
        Error::io(path, e)
    }
}

/// Read `count` elements of `dtype` and convert to f32.
fn read_values(
    reader: &mut impl Read,
    path: &Path,
    count: usize,
    dtype: Dtype,
    big_endian: bool,
) -> Result<Vec<f32>> {
    let mut out = vec![0f32; count];
    match dtype {
        Dtype::Float32 => {
            // Read the bytes straight into the output buffer: one copy in memory.
            let bytes: &mut [u8] = bytemuck_f32_as_bytes(&mut out);
            reader.read_exact(bytes).map_err(|e| truncated(path, e))?;
            let swap = big_endian != cfg!(target_endian = "big");
            if swap {
                for v in out.iter_mut() {
                    *v = f32::from_bits(v.to_bits().swap_bytes());
                }
            }
        }
        Dtype::Float16 | Dtype::Float64 => {
            let size = dtype.size();
            let mut buf = vec![0u8; (1 << 16) * size];
            let mut done = 0;
            while done < count {
                let take = (count - done).min(1 << 16);
                let chunk = &mut buf[..take * size];
                reader.read_exact(chunk).map_err(|e| truncated(path, e))?;
                let dst = &mut out[done..done + take];
                if dtype == Dtype::Float16 {
                    for (d, b) in dst.iter_mut().zip(chunk.chunks_exact(2)) {
                        let raw = [b[0], b[1]];
                        let bits = if big_endian { u16::from_be_bytes(raw) } else { u16::from_le_bytes(raw) };
                        *d = half::f16::from_bits(bits).to_f32();
                    }
                } else {
                    for (d, b) in dst.iter_mut().zip(chunk.chunks_exact(8)) {
                        let raw: [u8; 8] = b.try_into().expect("chunks of 8");
                        let v = if big_endian { f64::from_be_bytes(raw) } else { f64::from_le_bytes(raw) };
                        *d = v as f32;
                    }
                }
                done += take;
            }
        }
    }
    Ok(out)
}

/// View an f32 slice as bytes (f32 has no padding and every bit pattern is a valid u8).
fn bytemuck_f32_as_bytes(values: &mut [f32]) -> &mut [u8] {
    let len = std::mem::size_of_val(values);
    // SAFETY: f32 is plain old data, u8 has alignment 1, the length covers exactly the
    // same memory, and the borrow of `values` is carried by the returned slice.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), len) }
}

/// Parse the magic string, version and header dictionary.
pub fn read_header(reader: &mut impl Read, path: &Path) -> Result<Header> {
    let mut magic = [0u8; 8];
    reader.read_exact(&mut magic).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::input(
                path,
                "not a .npy file: shorter than the 8-byte magic string; save views with numpy.save",
            )
        } else {
            Error::io(path, e)
        }
    })?;
    if &magic[..6] != MAGIC {
        return Err(Error::input(
            path,
            "not a .npy file (no \\x93NUMPY magic string); save views with numpy.save",
        ));
    }
    let major = magic[6];
    let (header_text_len, prefix) = match major {
        1 => {
            let mut b = [0u8; 2];
            reader.read_exact(&mut b).map_err(|e| truncated(path, e))?;
            (u16::from_le_bytes(b) as usize, 10)
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            reader.read_exact(&mut b).map_err(|e| truncated(path, e))?;
            (u32::from_le_bytes(b) as usize, 12)
        }
        v => {
            return Err(Error::input(
                path,
                format!("unsupported .npy format version {v}; numpy writes versions 1-3"),
            ))
        }
    };
    if header_text_len > 1 << 20 {
        return Err(Error::input(path, "corrupt .npy header (header longer than 1 MiB)"));
    }
    let mut text = vec![0u8; header_text_len];
    reader.read_exact(&mut text).map_err(|e| truncated(path, e))?;
    let text = String::from_utf8_lossy(&text);
    let descr = dict_value(&text, "descr")
        .ok_or_else(|| Error::input(path, "corrupt .npy header: no 'descr' key"))?;
    let descr = descr.trim().trim_matches(|c| c == '\'' || c == '"');
    let (big_endian, dtype) = match descr {
        "<f4" | "=f4" => (false, Dtype::Float32),
        ">f4" => (true, Dtype::Float32),
        "<f2" | "=f2" => (false, Dtype::Float16),
        ">f2" => (true, Dtype::Float16),
        "<f8" | "=f8" => (false, Dtype::Float64),
        ">f8" => (true, Dtype::Float64),
        other => {
            return Err(Error::input(
                path,
                format!("unsupported dtype `{other}`; views must be float16, float32 or float64: convert with arr.astype(numpy.float32)"),
            ))
        }
    };
    let fortran = dict_value(&text, "fortran_order").map(|v| v.trim().starts_with("True")).unwrap_or(false);
    if fortran {
        return Err(Error::input(
            path,
            "array is in Fortran (column-major) order; save a C-order copy with numpy.save(path, numpy.ascontiguousarray(arr))",
        ));
    }
    let shape_text = dict_value(&text, "shape")
        .ok_or_else(|| Error::input(path, "corrupt .npy header: no 'shape' key"))?;
    let shape_text = shape_text.trim().trim_start_matches('(');
    let shape_text = shape_text.split(')').next().unwrap_or("");
    let mut shape = Vec::new();
    for part in shape_text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        shape.push(
            part.parse::<usize>()
                .map_err(|_| Error::input(path, format!("corrupt .npy header: bad shape entry `{part}`")))?,
        );
    }
    Ok(Header { dtype, big_endian, shape, header_len: prefix + header_text_len })
}

/// The raw text after `'key':` in a Python dict literal, up to the next top-level comma.
fn dict_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let start = text.find(&format!("'{key}'")).or_else(|| text.find(&format!("\"{key}\"")))? + key.len() + 2;
    let rest = text[start..].trim_start().strip_prefix(':')?;
    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    Some(rest)
}

/// Write a row-major f32 matrix as a version-1 `.npy` file (little-endian `<f4`).
pub fn write(path: &Path, rows: usize, cols: usize, data: &[f32]) -> Result<()> {
    assert_eq!(data.len(), rows * cols, "npy::write: data length must be rows * cols");
    let file = std::fs::File::create(path).map_err(|e| Error::write(path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    write_to(&mut w, rows, cols, data).map_err(|e| Error::write(path, e))?;
    w.flush().map_err(|e| Error::write(path, e))
}

/// Write an `.npy` stream (used for files and for members of `.npz` archives).
pub fn write_to(w: &mut impl Write, rows: usize, cols: usize, data: &[f32]) -> std::io::Result<()> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {cols}), }}");
    // Pad so that magic + version + length + header is a multiple of 64, ending in '\n'.
    let total = 10 + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    w.write_all(MAGIC)?;
    w.write_all(&[1, 0])?;
    w.write_all(&(header.len() as u16).to_le_bytes())?;
    w.write_all(header.as_bytes())?;
    for chunk in data.chunks(1 << 14) {
        let mut buf = Vec::with_capacity(chunk.len() * 4);
        for v in chunk {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        w.write_all(&buf)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_through_writer() {
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 1.0).collect();
        let mut buf = Vec::new();
        write_to(&mut buf, 3, 4, &data).unwrap();
        assert_eq!((buf.len() - 48) % 64, 0, "header padded to 64 bytes");
        let back = read_from(buf.as_slice(), Path::new("x.npy"), Some(buf.len() as u64)).unwrap();
        assert_eq!((back.rows, back.cols, back.dtype), (3, 4, Dtype::Float32));
        assert_eq!(back.data, data);
    }

    #[test]
    fn truncated_is_an_error_naming_the_sizes() {
        let mut buf = Vec::new();
        write_to(&mut buf, 3, 4, &[1.0; 12]).unwrap();
        buf.truncate(buf.len() - 4);
        let err = read_from(buf.as_slice(), Path::new("x.npy"), Some(buf.len() as u64)).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        let err = read_from(buf.as_slice(), Path::new("x.npy"), None).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
