//! NumPy `.npz` archives (`numpy.savez`, `numpy.savez_compressed`): a zip of `.npy`
//! members. Each member is a view named by its member name without `.npy`; a member named
//! `id` or `ids` holds record ids instead. Members are streamed through [`npy::read_from`]
//! straight into their `Vec<f32>`, stored or deflate-compressed alike, so the archive is
//! never held in memory.

use std::io::BufReader;
use std::path::Path;

use super::container::{self, is_id_member, member_path, Contents, Member, RecordIds, Select};
use super::npy;
use crate::error::{Error, Result};

/// Read the members `select` asks for, plus record ids when the archive has them.
pub fn read(path: &Path, select: &Select) -> Result<Contents> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::with_capacity(1 << 20, file)).map_err(|e| {
        Error::input(
            path,
            format!(
                "not a readable .npz (zip) archive ({e}); it may be truncated or not an .npz at all: \
                 save views with numpy.savez or numpy.savez_compressed"
            ),
        )
    })?;
    // The zip reader keeps one entry per name (the last); numpy's reader would see another.
    if let Some(listed) = central_directory_entries(path) {
        if listed != archive.len() {
            return Err(Error::input(
                path,
                format!(
                    "lists {listed} members but only {} distinct names: a member name appears twice \
                     (which copy is read is a guess); re-export the archive with one member per name",
                    archive.len()
                ),
            ));
        }
    }
    // (index in the archive, member name without `.npy`)
    let mut arrays: Vec<(usize, String)> = Vec::new();
    let mut id_member: Option<(usize, String)> = None;
    for index in 0..archive.len() {
        let name = archive.name_for_index(index).unwrap_or_default().to_string();
        if name.ends_with('/') {
            continue; // a directory entry holds no data
        }
        let Some(stem) = name.strip_suffix(".npy") else {
            return Err(Error::input(
                path,
                format!(
                    "member `{name}` is not a .npy array; an .npz must hold only .npy members (numpy.savez writes them)"
                ),
            ));
        };
        if arrays.iter().any(|(_, s)| s == stem) || id_member.as_ref().is_some_and(|(_, s)| s == stem) {
            return Err(Error::input(
                path,
                format!("holds member `{name}` twice (numpy would read only one); re-export the archive with one member per name"),
            ));
        }
        if is_id_member(stem) {
            if let Some((_, first)) = &id_member {
                return Err(Error::input(
                    path,
                    format!("has two record-id members (`{first}` and `{stem}`); keep one"),
                ));
            }
            id_member = Some((index, stem.to_string()));
        } else {
            arrays.push((index, stem.to_string()));
        }
    }
    let available: Vec<String> = arrays.iter().map(|(_, s)| s.clone()).collect();
    let wanted = container::resolve(path, select, &available, "member")?;
    let mut contents = Contents::default();
    for name in wanted {
        let index = arrays.iter().find(|(_, s)| *s == name).map(|(i, _)| *i).expect("resolved above");
        let where_ = member_path(path, &name);
        let mut member = archive.by_index(index).map_err(|e| corrupt(&where_, e))?;
        let size = member.size();
        let array = npy::read_from(&mut member, &where_, Some(size))?;
        verify_crc(&mut member, &where_)?;
        contents.arrays.push(Member { name, array });
    }
    if let Some((index, name)) = id_member {
        let where_ = member_path(path, &name);
        let mut member = archive.by_index(index).map_err(|e| corrupt(&where_, e))?;
        let size = member.size();
        let ids = npy::read_ids_from(&mut member, &where_, Some(size))?;
        verify_crc(&mut member, &where_)?;
        contents.ids = Some(RecordIds { member: name, ids });
    }
    Ok(contents)
}

/// The number of entries the archive's end-of-central-directory record lists, when it can
/// be read (`None` for ZIP64 archives, whose count is elsewhere, or no record found).
/// Hand-read: the zip crate exposes only its deduplicated entries.
fn central_directory_entries(path: &Path) -> Option<usize> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let tail_len = len.min(22 + 65_535);
    file.seek(SeekFrom::Start(len - tail_len)).ok()?;
    let mut tail = vec![0u8; tail_len as usize];
    file.read_exact(&mut tail).ok()?;
    let at =
        (0..tail.len().saturating_sub(21)).rev().find(|&i| tail[i..i + 4] == [0x50, 0x4b, 0x05, 0x06])?;
    let total = u16::from_le_bytes([tail[at + 10], tail[at + 11]]);
    (total != u16::MAX).then_some(total as usize)
}

/// Read a member to its end: the zip reader checks the member's CRC-32 only there, so a
/// stored member with damaged bytes (and a matching size) is refused as numpy refuses it.
fn verify_crc(member: &mut impl std::io::Read, path: &Path) -> Result<()> {
    std::io::copy(member, &mut std::io::sink()).map(|_| ()).map_err(|e| {
        Error::input(
            path,
            format!("this member fails its CRC-32 check ({e}); the archive is damaged: re-export it"),
        )
    })
}

fn corrupt(path: &Path, e: zip::result::ZipError) -> Error {
    Error::input(
        path,
        format!("cannot read this member ({e}); the archive is corrupt or truncated: re-export it"),
    )
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn archive(members: &[(&str, Vec<u8>)], method: zip::CompressionMethod) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".npz").tempfile().unwrap();
        {
            let mut zip = zip::ZipWriter::new(file.as_file_mut());
            let options = zip::write::SimpleFileOptions::default().compression_method(method);
            for (name, bytes) in members {
                zip.start_file(*name, options).unwrap();
                zip.write_all(bytes).unwrap();
            }
            zip.finish().unwrap();
        }
        file
    }

    fn npy_bytes(rows: usize, cols: usize, data: &[f32]) -> Vec<u8> {
        let mut buf = Vec::new();
        npy::write_to(&mut buf, rows, cols, data).unwrap();
        buf
    }

    #[test]
    fn stored_and_deflated_members_read_alike() {
        let image: Vec<f32> = (0..6).map(|i| i as f32 + 0.25).collect();
        let report: Vec<f32> = (0..4).map(|i| -(i as f32) - 1.5).collect();
        for method in [zip::CompressionMethod::Stored, zip::CompressionMethod::Deflated] {
            let f = archive(
                &[("image.npy", npy_bytes(2, 3, &image)), ("report.npy", npy_bytes(2, 2, &report))],
                method,
            );
            let all = read(f.path(), &Select::All).unwrap();
            let names: Vec<&str> = all.arrays.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["image", "report"]);
            assert_eq!(all.arrays[0].array.data, image);
            assert_eq!((all.arrays[1].array.rows, all.arrays[1].array.cols), (2, 2));
            assert_eq!(all.arrays[1].array.data, report);
            let one = read(f.path(), &Select::Named(vec!["report".into()])).unwrap();
            assert_eq!(one.arrays.len(), 1);
            assert_eq!(one.arrays[0].array.data, report);
        }
    }

    #[test]
    fn non_npy_member_is_an_error() {
        let f = archive(&[("notes.txt", b"hello".to_vec())], zip::CompressionMethod::Stored);
        let err = read(f.path(), &Select::All).unwrap_err().to_string();
        assert!(err.contains("`notes.txt` is not a .npy array"), "{err}");
    }
}
