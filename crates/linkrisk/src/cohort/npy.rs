//! NumPy `.npy` files (format versions 1-3): 2-D float32, float16 or float64 in C order,
//! little- or big-endian, read straight into one `Vec<f32>` (one copy of the data in memory,
//! no intermediate buffer for float32). Also 1-D record-id arrays (strings or integers) that
//! containers may carry to prove row alignment, and the writer used by `synth` and
//! `train-heads`. `.npz` members are `.npy` streams and go through [`read_from`].

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
    /// bfloat16 (safetensors only; numpy has no such dtype).
    #[serde(rename = "bfloat16")]
    BFloat16,
}

impl Dtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::Float16 | Dtype::BFloat16 => 2,
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
            Dtype::BFloat16 => "bfloat16",
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

/// Element type of an `.npy` array as its `descr` says, before deciding whether it can be
/// a view (floats) or a record-id array (strings, integers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// float16, float32 or float64.
    Float(Dtype),
    /// Signed or unsigned integer of `bytes` bytes.
    Int {
        /// Bytes per element (1, 2, 4 or 8).
        bytes: usize,
        /// Whether the integer is signed.
        signed: bool,
    },
    /// Fixed-width unicode string (`<U{chars}`), stored as UTF-32.
    Unicode {
        /// Characters per element.
        chars: usize,
    },
    /// Fixed-width byte string (`|S{len}`).
    Bytes {
        /// Bytes per element.
        len: usize,
    },
    /// Anything else (bool, complex, object, datetime, structured).
    Other,
}

impl Element {
    /// Bytes per element (0 for [`Element::Other`]).
    fn size(self) -> usize {
        match self {
            Element::Float(d) => d.size(),
            Element::Int { bytes, .. } => bytes,
            Element::Unicode { chars } => 4 * chars,
            Element::Bytes { len } => len,
            Element::Other => 0,
        }
    }
}

/// Parsed header of an `.npy` stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// numpy's `descr` string, e.g. `<f4`.
    pub descr: String,
    /// The element type `descr` describes.
    pub element: Element,
    /// Whether the data is big-endian.
    pub big_endian: bool,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// Shape as stored.
    pub shape: Vec<usize>,
    /// Bytes taken by magic, version, length and header text.
    pub header_len: usize,
}

impl Header {
    /// The float dtype of a view, or an error naming the unsupported dtype and the fix.
    pub fn float_dtype(&self, path: &Path) -> Result<Dtype> {
        match self.element {
            Element::Float(d) => Ok(d),
            _ => Err(unsupported_dtype(path, &numpy_type_name(&self.descr), &self.descr)),
        }
    }
}

/// The error for a view whose element type is not float16/32/64.
pub(crate) fn unsupported_dtype(path: &Path, type_name: &str, raw: &str) -> Error {
    Error::input(
        path,
        format!(
            "unsupported dtype {type_name} (`{raw}`); views must be float16, float32 or float64: \
             convert with arr.astype(numpy.float32) before saving"
        ),
    )
}

/// numpy's name for a `descr` string (`<i8` -> `int64`), for error messages.
pub fn numpy_type_name(descr: &str) -> String {
    let body = descr.trim_start_matches(['<', '>', '=', '|']);
    let mut chars = body.chars();
    let kind = chars.next().unwrap_or('?');
    let size: Option<usize> = chars.as_str().parse().ok();
    let bits = size.map(|s| s * 8).map(|b| b.to_string()).unwrap_or_default();
    match kind {
        'f' => format!("float{bits}"),
        'i' => format!("int{bits}"),
        'u' => format!("uint{bits}"),
        'c' => format!("complex{bits}"),
        'b' | '?' => "bool".to_string(),
        'O' => "object (pickled Python objects)".to_string(),
        'U' => "str (unicode)".to_string(),
        'S' | 'a' => "bytes".to_string(),
        'M' | 'm' => "datetime".to_string(),
        _ if descr.starts_with('[') => "structured (record) dtype".to_string(),
        _ => descr.to_string(),
    }
}

fn parse_descr(descr: &str) -> (Element, bool) {
    let big_endian = descr.starts_with('>');
    let body = descr.trim_start_matches(['<', '>', '=', '|']);
    let mut chars = body.chars();
    let kind = chars.next().unwrap_or('?');
    let size: Option<usize> = chars.as_str().parse().ok();
    let element = match (kind, size) {
        ('f', Some(2)) => Element::Float(Dtype::Float16),
        ('f', Some(4)) => Element::Float(Dtype::Float32),
        ('f', Some(8)) => Element::Float(Dtype::Float64),
        ('i', Some(b @ (1 | 2 | 4 | 8))) => Element::Int { bytes: b, signed: true },
        ('u', Some(b @ (1 | 2 | 4 | 8))) => Element::Int { bytes: b, signed: false },
        ('U', Some(c)) if c > 0 => Element::Unicode { chars: c },
        ('S', Some(l)) if l > 0 => Element::Bytes { len: l },
        _ => Element::Other,
    };
    (element, big_endian)
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
    let (rows, cols, dtype) = view_shape(&header, path, total_len)?;
    let data = read_values(&mut reader, path, rows * cols, dtype, header.big_endian)?;
    Ok(Array2 { rows, cols, dtype, data })
}

/// Read only the listed rows (ascending or not, each at most once) of a 2-D float `.npy`
/// file: row i of the result is row `rows[i]` of the file. Runs of consecutive rows are read
/// with one seek each, so a shard that needs a slice of a large view reads just that slice.
/// Returns the array and the number of rows the file holds.
pub fn read_rows(path: &Path, rows: &[usize]) -> Result<(Array2, usize)> {
    use std::io::{Seek, SeekFrom};
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let header = read_header(&mut reader, path)?;
    let (file_rows, cols, dtype) = view_shape(&header, path, Some(len))?;
    if let Some(&bad) = rows.iter().find(|&&r| r >= file_rows) {
        return Err(Error::input(path, format!("row {bad} requested but the file holds {file_rows} rows")));
    }
    let row_bytes = (cols * dtype.size()) as u64;
    let mut data = Vec::with_capacity(rows.len() * cols);
    let mut i = 0;
    while i < rows.len() {
        let mut j = i + 1;
        while j < rows.len() && rows[j] == rows[j - 1] + 1 {
            j += 1;
        }
        let offset = header.header_len as u64 + rows[i] as u64 * row_bytes;
        reader.seek(SeekFrom::Start(offset)).map_err(|e| Error::io(path, e))?;
        data.extend(read_values(&mut reader, path, (j - i) * cols, dtype, header.big_endian)?);
        i = j;
    }
    Ok((Array2 { rows: rows.len(), cols, dtype, data }, file_rows))
}

/// Rows, columns and float dtype of a view's header, rejecting 1-D, Fortran-order and
/// truncated arrays with the fix.
pub(crate) fn view_shape(
    header: &Header,
    path: &Path,
    total_len: Option<u64>,
) -> Result<(usize, usize, Dtype)> {
    let dtype = header.float_dtype(path)?;
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
    if header.fortran_order && rows > 1 && cols > 1 {
        return Err(Error::input(
            path,
            "array is in Fortran (column-major) order; save a C-order copy with numpy.save(path, numpy.ascontiguousarray(arr))",
        ));
    }
    let count = rows.checked_mul(cols).ok_or_else(|| Error::input(path, "shape overflows"))?;
    check_length(path, header, count, total_len)?;
    Ok((rows, cols, dtype))
}

/// Error when fewer bytes follow the header than `count` elements need.
fn check_length(path: &Path, header: &Header, count: usize, total_len: Option<u64>) -> Result<()> {
    let bytes = count as u64 * header.element.size() as u64;
    if let Some(total) = total_len {
        let available = total.saturating_sub(header.header_len as u64);
        if available < bytes {
            return Err(Error::input(
                path,
                format!(
                    "file is truncated: the header says shape {:?} {} = {bytes} bytes of data but only {available} follow; re-export the file",
                    header.shape,
                    numpy_type_name(&header.descr)
                ),
            ));
        }
    }
    Ok(())
}

/// Read a 1-D array of record ids (strings or integers; shape `(n,)` or `(n, 1)`) as text.
/// Containers may carry such an array (`ids` in an `.npz`) to prove their rows follow the
/// metadata's order.
pub fn read_ids_from(mut reader: impl Read, path: &Path, total_len: Option<u64>) -> Result<Vec<String>> {
    let header = read_header(&mut reader, path)?;
    let n = match header.shape.as_slice() {
        [n] | [n, 1] => *n,
        s => {
            return Err(Error::input(
                path,
                format!(
                "record ids must be a 1-D array (n,), found shape {s:?}; save them with numpy.asarray(ids)"
            ),
            ))
        }
    };
    let element = header.element;
    if matches!(element, Element::Float(_) | Element::Other) {
        return Err(Error::input(
            path,
            format!(
                "record ids have dtype {}; save them as strings or integers: numpy.asarray(ids, dtype=str)",
                numpy_type_name(&header.descr)
            ),
        ));
    }
    check_length(path, &header, n, total_len)?;
    let size = element.size();
    let mut bytes = vec![0u8; n * size];
    reader.read_exact(&mut bytes).map_err(|e| truncated(path, e))?;
    let big = header.big_endian;
    let mut ids = Vec::with_capacity(n);
    for (row, raw) in bytes.chunks_exact(size.max(1)).enumerate() {
        let id = match element {
            Element::Int { bytes, signed } => {
                let mut buf = [0u8; 8];
                if big {
                    buf[8 - bytes..].copy_from_slice(raw);
                    buf.reverse();
                } else {
                    buf[..bytes].copy_from_slice(raw);
                }
                let unsigned = u64::from_le_bytes(buf);
                if signed {
                    let shift = 64 - 8 * bytes as u32;
                    (((unsigned << shift) as i64) >> shift).to_string()
                } else {
                    unsigned.to_string()
                }
            }
            Element::Unicode { .. } => {
                let mut text = String::new();
                for c in raw.chunks_exact(4) {
                    let c: [u8; 4] = c.try_into().expect("chunks of 4");
                    let code = if big { u32::from_be_bytes(c) } else { u32::from_le_bytes(c) };
                    if code == 0 {
                        break;
                    }
                    text.push(char::from_u32(code).ok_or_else(|| {
                        Error::input(path, format!("record id on row {row} is not valid unicode"))
                    })?);
                }
                text
            }
            Element::Bytes { .. } => {
                let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                String::from_utf8_lossy(&raw[..end]).into_owned()
            }
            Element::Float(_) | Element::Other => unreachable!("rejected above"),
        };
        ids.push(id);
    }
    Ok(ids)
}

pub(crate) fn truncated(path: &Path, e: std::io::Error) -> Error {
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
    if dtype == Dtype::Float32 {
        // Read the bytes straight into the output buffer: one copy in memory.
        let bytes: &mut [u8] = bytemuck_f32_as_bytes(&mut out);
        reader.read_exact(bytes).map_err(|e| truncated(path, e))?;
        if big_endian != cfg!(target_endian = "big") {
            for v in out.iter_mut() {
                *v = f32::from_bits(v.to_bits().swap_bytes());
            }
        }
        return Ok(out);
    }
    let size = dtype.size();
    let mut buf = vec![0u8; (1 << 16) * size];
    let mut done = 0;
    while done < count {
        let take = (count - done).min(1 << 16);
        let chunk = &mut buf[..take * size];
        reader.read_exact(chunk).map_err(|e| truncated(path, e))?;
        decode_into(&mut out[done..done + take], chunk, dtype, big_endian);
        done += take;
    }
    Ok(out)
}

/// Convert raw bytes of `dtype` (`dst.len()` elements) to f32. Shared by every format.
pub(crate) fn decode_into(dst: &mut [f32], src: &[u8], dtype: Dtype, big_endian: bool) {
    debug_assert_eq!(src.len(), dst.len() * dtype.size());
    match dtype {
        Dtype::Float32 => {
            for (d, b) in dst.iter_mut().zip(src.chunks_exact(4)) {
                let raw: [u8; 4] = b.try_into().expect("chunks of 4");
                *d = if big_endian { f32::from_be_bytes(raw) } else { f32::from_le_bytes(raw) };
            }
        }
        Dtype::Float16 | Dtype::BFloat16 => {
            for (d, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                let raw = [b[0], b[1]];
                let bits = if big_endian { u16::from_be_bytes(raw) } else { u16::from_le_bytes(raw) };
                *d = if dtype == Dtype::Float16 {
                    half::f16::from_bits(bits).to_f32()
                } else {
                    half::bf16::from_bits(bits).to_f32()
                };
            }
        }
        Dtype::Float64 => {
            for (d, b) in dst.iter_mut().zip(src.chunks_exact(8)) {
                let raw: [u8; 8] = b.try_into().expect("chunks of 8");
                *d = (if big_endian { f64::from_be_bytes(raw) } else { f64::from_le_bytes(raw) }) as f32;
            }
        }
    }
}

/// View an f32 slice as bytes (f32 has no padding and every bit pattern is a valid u8).
pub(crate) fn bytemuck_f32_as_bytes(values: &mut [f32]) -> &mut [u8] {
    let len = std::mem::size_of_val(values);
    // SAFETY: f32 is plain old data, u8 has alignment 1, the length covers exactly the
    // same memory, and the borrow of `values` is carried by the returned slice.
    unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), len) }
}

/// Parse the magic string, version and header dictionary. The element type is reported,
/// not checked: callers decide what they accept.
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
    let dict = text.trim_end_matches([' ', '\n', '\0']).trim_start();
    if !(dict.starts_with('{') && dict.ends_with('}')) {
        return Err(Error::input(
            path,
            "corrupt .npy header: the header is not one complete Python dict ({...}); the file is \
             damaged or was not written by numpy.save: re-export it",
        ));
    }
    if dict_value(&text, "shape").is_some_and(|s| !s.contains(')')) {
        return Err(Error::input(
            path,
            "corrupt .npy header: the 'shape' tuple is not closed; re-export the file",
        ));
    }
    let descr_text = dict_value(&text, "descr")
        .ok_or_else(|| Error::input(path, "corrupt .npy header: no 'descr' key"))?
        .trim();
    let descr = if descr_text.starts_with('[') {
        descr_text.to_string()
    } else {
        descr_text.trim_matches(|c| c == '\'' || c == '"').to_string()
    };
    let (element, big_endian) = parse_descr(&descr);
    let fortran_order =
        dict_value(&text, "fortran_order").map(|v| v.trim().starts_with("True")).unwrap_or(false);
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
    Ok(Header { descr, element, big_endian, fortran_order, shape, header_len: prefix + header_text_len })
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
