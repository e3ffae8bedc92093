//! safetensors files (`safetensors.numpy.save_file`, `safetensors.torch.save_file`): each
//! 2-D tensor is a view named by the tensor (F32, F16, BF16 or F64, converted to f32); a 1-D
//! integer tensor named `id` or `ids` holds record ids instead.
//!
//! The file is memory-mapped and each tensor copied into its `Vec<f32>` in slices; after
//! each slice the mapped pages are released (`MADV_DONTNEED`), so loading costs one copy of
//! the data rather than the copy plus the mapped file.

use std::path::Path;

use ::safetensors::tensor::{Dtype as StDtype, SafeTensorError, SafeTensors};
use memmap2::Mmap;

use super::container::{self, is_id_member, member_path, Contents, Member, RecordIds, Select};
use super::npy::{self, Array2, Dtype};
use crate::error::{Error, Result};

/// Bytes copied between two page releases.
const SLICE_BYTES: usize = 16 << 20;

/// Read the tensors `select` asks for, plus record ids when the file has them.
pub fn read(path: &Path, select: &Select) -> Result<Contents> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if len < 8 {
        return Err(not_safetensors(path, &format!("only {len} bytes")));
    }
    // SAFETY: the map is read-only and shared; like every reader of memory-mapped input we
    // rely on the file not being truncated or rewritten by another process while loading.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?;
    let tensors = SafeTensors::deserialize(&map).map_err(|e| describe(path, &map, e))?;
    let mut names: Vec<String> = tensors.names().into_iter().cloned().collect();
    names.sort();
    let (ids_names, available): (Vec<String>, Vec<String>) = names.into_iter().partition(|n| is_id_member(n));
    if ids_names.len() > 1 {
        return Err(Error::input(path, "has both an `id` and an `ids` tensor; keep one"));
    }
    let wanted = container::resolve(path, select, &available, "tensor")?;
    let mut contents = Contents::default();
    for name in wanted {
        let tensor = tensors.tensor(&name).map_err(|e| describe(path, &map, e))?;
        let where_ = member_path(path, &name);
        let dtype = float_dtype(tensor.dtype()).ok_or_else(|| {
            npy::unsupported_dtype(&where_, &torch_name(tensor.dtype()), &format!("{:?}", tensor.dtype()))
        })?;
        let (rows, cols) = match tensor.shape() {
            [r, c] => (*r, *c),
            s => {
                return Err(Error::input(
                    &where_,
                    format!(
                    "tensor has shape {s:?}; a view must be 2-D (records, dim): save t.reshape(len(t), -1)"
                ),
                ))
            }
        };
        let bytes = tensor.data();
        let offset = bytes.as_ptr() as usize - map.as_ptr() as usize;
        let data = copy_releasing(&map, offset, bytes, rows * cols, dtype);
        contents.arrays.push(Member { name, array: Array2 { rows, cols, dtype, data } });
    }
    if let Some(name) = ids_names.into_iter().next() {
        let tensor = tensors.tensor(&name).map_err(|e| describe(path, &map, e))?;
        let ids = read_ids(&member_path(path, &name), tensor.dtype(), tensor.shape(), tensor.data())?;
        contents.ids = Some(RecordIds { member: name, ids });
    }
    Ok(contents)
}

/// Convert `count` elements of `bytes` (which start `offset` bytes into `map`) to f32,
/// releasing the mapped pages behind each slice once it is copied.
fn copy_releasing(map: &Mmap, offset: usize, bytes: &[u8], count: usize, dtype: Dtype) -> Vec<f32> {
    let mut out = vec![0f32; count];
    let size = dtype.size();
    let per_slice = (SLICE_BYTES / size).max(1);
    let mut done = 0;
    while done < count {
        let take = (count - done).min(per_slice);
        let src = &bytes[done * size..(done + take) * size];
        let dst = &mut out[done..done + take];
        if dtype == Dtype::Float32 && cfg!(target_endian = "little") {
            npy::bytemuck_f32_as_bytes(dst).copy_from_slice(src);
        } else {
            npy::decode_into(dst, src, dtype, false);
        }
        release(map, offset + done * size, take * size);
        done += take;
    }
    out
}

/// Drop the mapped pages of a range already copied, so they stop counting as resident.
#[cfg(unix)]
fn release(map: &Mmap, offset: usize, len: usize) {
    // SAFETY: the map is a read-only shared file mapping; MADV_DONTNEED only drops the
    // page-table entries, and a later read faults the same bytes back in from the file.
    // Failure only means the pages stay resident, so the result is ignored.
    let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len) };
}

#[cfg(not(unix))]
fn release(_map: &Mmap, _offset: usize, _len: usize) {}

fn float_dtype(dtype: StDtype) -> Option<Dtype> {
    match dtype {
        StDtype::F32 => Some(Dtype::Float32),
        StDtype::F16 => Some(Dtype::Float16),
        StDtype::BF16 => Some(Dtype::BFloat16),
        StDtype::F64 => Some(Dtype::Float64),
        _ => None,
    }
}

/// PyTorch's name for a safetensors dtype, for messages.
fn torch_name(dtype: StDtype) -> String {
    match dtype {
        StDtype::BOOL => "bool".into(),
        StDtype::U8 => "uint8".into(),
        StDtype::I8 => "int8".into(),
        StDtype::I16 => "int16".into(),
        StDtype::U16 => "uint16".into(),
        StDtype::I32 => "int32".into(),
        StDtype::U32 => "uint32".into(),
        StDtype::I64 => "int64".into(),
        StDtype::U64 => "uint64".into(),
        other => format!("{other:?}"),
    }
}

fn read_ids(path: &Path, dtype: StDtype, shape: &[usize], bytes: &[u8]) -> Result<Vec<String>> {
    let n = match shape {
        [n] | [n, 1] => *n,
        s => {
            return Err(Error::input(
                path,
                format!("record ids must be a 1-D tensor (n,), found shape {s:?}"),
            ))
        }
    };
    let (size, signed) = match dtype {
        StDtype::I8 => (1, true),
        StDtype::U8 => (1, false),
        StDtype::I16 => (2, true),
        StDtype::U16 => (2, false),
        StDtype::I32 => (4, true),
        StDtype::U32 => (4, false),
        StDtype::I64 => (8, true),
        StDtype::U64 => (8, false),
        other => {
            return Err(Error::input(
                path,
                format!(
                    "record ids have dtype {other:?}; safetensors ids must be an integer tensor (e.g. int64)"
                ),
            ))
        }
    };
    debug_assert_eq!(bytes.len(), n * size);
    Ok(bytes
        .chunks_exact(size)
        .map(|raw| {
            let mut buf = [0u8; 8];
            buf[..size].copy_from_slice(raw);
            let unsigned = u64::from_le_bytes(buf);
            if signed {
                let shift = 64 - 8 * size as u32;
                (((unsigned << shift) as i64) >> shift).to_string()
            } else {
                unsigned.to_string()
            }
        })
        .collect())
}

fn not_safetensors(path: &Path, why: &str) -> Error {
    Error::input(
        path,
        format!(
            "not a readable safetensors file ({why}); it may be truncated or another format: \
             save views with safetensors.numpy.save_file or safetensors.torch.save_file"
        ),
    )
}

/// Turn the crate's error into a message that names the problem and the fix. A header that
/// does not deserialize is parsed again as plain JSON to find a tensor with an unknown dtype.
fn describe(path: &Path, map: &[u8], e: SafeTensorError) -> Error {
    match e {
        SafeTensorError::MetadataIncompleteBuffer | SafeTensorError::InvalidOffset(_) => Error::input(
            path,
            format!(
                "file is truncated or corrupt: its header describes tensor data that does not match the file's {} bytes; re-export the file",
                map.len()
            ),
        ),
        SafeTensorError::InvalidHeaderDeserialization => {
            if let Some((tensor, dtype)) = unknown_dtype(map) {
                let name = match dtype.strip_prefix('C') {
                    Some(bits) => format!("complex{bits}"),
                    None => dtype.clone(),
                };
                npy::unsupported_dtype(&member_path(path, &tensor), &name, &dtype)
            } else {
                not_safetensors(path, "its JSON header does not describe tensors")
            }
        }
        SafeTensorError::InvalidTensorView(dtype, shape, len) => Error::input(
            path,
            format!("tensor of dtype {dtype:?} and shape {shape:?} does not fit its {len} bytes; re-export the file"),
        ),
        other => not_safetensors(path, &format!("{other:?}")),
    }
}

fn unknown_dtype(map: &[u8]) -> Option<(String, String)> {
    let n = usize::try_from(u64::from_le_bytes(map.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Value = serde_json::from_slice(map.get(8..8usize.checked_add(n)?)?).ok()?;
    let known = ["BOOL", "U8", "I8", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "F64", "I64", "U64"];
    header.as_object()?.iter().find_map(|(name, info)| {
        let dtype = info.get("dtype")?.as_str()?;
        (!known.contains(&dtype)).then(|| (name.clone(), dtype.to_string()))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use ::safetensors::tensor::TensorView;

    use super::*;

    fn write(tensors: &[(&str, StDtype, Vec<usize>, Vec<u8>)]) -> tempfile::NamedTempFile {
        let views: HashMap<String, TensorView> = tensors
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                (name.to_string(), TensorView::new(*dtype, shape.clone(), bytes).unwrap())
            })
            .collect();
        let file = tempfile::Builder::new().suffix(".safetensors").tempfile().unwrap();
        ::safetensors::serialize_to_file(&views, &None, file.path()).unwrap();
        file
    }

    #[test]
    fn float_tensors_become_views_and_ids_are_read() {
        let image: Vec<f32> = (0..40_000).map(|i| i as f32 * 0.5 - 3.0).collect();
        let image_bytes: Vec<u8> = image.iter().flat_map(|v| v.to_le_bytes()).collect();
        let report: Vec<f64> = vec![1.5, -2.25, 3.0, 4.0];
        let report_bytes: Vec<u8> = report.iter().flat_map(|v| v.to_le_bytes()).collect();
        let ids: Vec<u8> = [10i64, -20].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f = write(&[
            ("image", StDtype::F32, vec![2, 20_000], image_bytes),
            ("report", StDtype::F64, vec![2, 2], report_bytes),
            ("ids", StDtype::I64, vec![2], ids),
        ]);
        let c = read(f.path(), &Select::All).unwrap();
        assert_eq!(c.arrays.len(), 2);
        assert_eq!(c.arrays[0].name, "image");
        assert_eq!(c.arrays[0].array.data, image);
        assert_eq!(c.arrays[1].array.data, vec![1.5, -2.25, 3.0, 4.0]);
        assert_eq!(c.arrays[1].array.dtype, Dtype::Float64);
        assert_eq!(c.ids.unwrap().ids, ["10", "-20"]);
    }

    #[test]
    fn integer_view_is_an_unsupported_dtype() {
        let f = write(&[("image", StDtype::I64, vec![1, 2], vec![0u8; 16])]);
        let err = read(f.path(), &Select::All).unwrap_err().to_string();
        assert!(err.contains(":image") && err.contains("unsupported dtype int64"), "{err}");
    }
}
