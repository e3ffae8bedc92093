//! A minimal little-endian binary codec for the per-query records of a partial result.
//! Records are fixed-layout numbers (counts, pool outcomes), millions of them for a large
//! audit: JSON would be ten times larger and slower, and no serialization crate is needed for
//! a handful of integer types. Every read is bounds-checked, so a truncated or corrupt body is
//! an error, never a panic.

use std::path::Path;

use crate::error::{Error, Result};

/// Appends values to a byte buffer.
#[derive(Debug, Default)]
pub struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    /// An empty buffer.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// Append one byte.
    pub fn u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    /// Append a u32.
    pub fn u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Append a u64.
    pub fn u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// Append a length or index (stored as u64).
    pub fn usize(&mut self, v: usize) {
        self.u64(v as u64);
    }

    /// Append an f32 by its bits (read back bit for bit).
    pub fn f32(&mut self, v: f32) {
        self.u32(v.to_bits());
    }

    /// Append a bool (one byte).
    pub fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads values back; errors name the file and say the partial is corrupt.
#[derive(Debug)]
pub struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    /// Read `bytes`, which came from `path` (for messages).
    pub fn new(bytes: &'a [u8], path: &'a Path) -> Reader<'a> {
        Reader { bytes, at: 0, path }
    }

    /// The error for a body that does not decode.
    pub fn corrupt(&self, what: &str) -> Error {
        Error::input(
            self.path,
            format!(
                "partial result is corrupt ({what} at byte {} of its records); delete it and rerun that shard",
                self.at
            ),
        )
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N]> {
        let end = self.at.checked_add(N).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else { return Err(self.corrupt("records end early")) };
        let out: [u8; N] = self.bytes[self.at..end].try_into().expect("N bytes");
        self.at = end;
        Ok(out)
    }

    /// Read one byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take::<1>()?[0])
    }

    /// Read a u32.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take()?))
    }

    /// Read a u64.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take()?))
    }

    /// Read an f32 written by [`Writer::f32`] (bit for bit).
    pub fn f32(&mut self) -> Result<f32> {
        Ok(f32::from_bits(self.u32()?))
    }

    /// Read a length or index, rejecting values that cannot be one.
    pub fn usize(&mut self) -> Result<usize> {
        let v = self.u64()?;
        usize::try_from(v).map_err(|_| self.corrupt("impossible length"))
    }

    /// Read a length that will allocate `item_bytes` per item, refusing lengths that the
    /// remaining bytes could not hold (a corrupt length must not allocate gigabytes).
    pub fn len(&mut self, item_bytes: usize) -> Result<usize> {
        let n = self.usize()?;
        let remaining = self.bytes.len() - self.at;
        if n.saturating_mul(item_bytes.max(1)) > remaining {
            return Err(self.corrupt("length larger than the records left"));
        }
        Ok(n)
    }

    /// Read a bool.
    pub fn bool(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.corrupt("invalid flag byte")),
        }
    }

    /// Fail unless every byte was read.
    pub fn finish(self) -> Result<()> {
        if self.at != self.bytes.len() {
            return Err(self.corrupt("bytes left over after the last record"));
        }
        Ok(())
    }
}

/// Encode record lists (one per direction or attacker): per list, its length and its
/// records, each written by `encode`.
pub fn encode_lists<T>(lists: &[Vec<T>], encode: impl Fn(&mut Writer, &T)) -> Vec<u8> {
    let mut w = Writer::new();
    for list in lists {
        w.usize(list.len());
        for record in list {
            encode(&mut w, record);
        }
    }
    w.into_bytes()
}

/// Decode `lists` record lists written by [`encode_lists`]; `min_record_bytes` bounds a
/// list's length by the bytes left (so a corrupt length allocates nothing), `path` names the
/// file in errors, and every byte must be read.
pub fn decode_lists<T>(
    bytes: &[u8],
    path: &Path,
    lists: usize,
    min_record_bytes: usize,
    decode: impl Fn(&mut Reader<'_>) -> Result<T>,
) -> Result<Vec<Vec<T>>> {
    let mut r = Reader::new(bytes, path);
    let mut out = Vec::with_capacity(lists);
    for _ in 0..lists {
        let n = r.len(min_record_bytes)?;
        let mut records = Vec::with_capacity(n);
        for _ in 0..n {
            records.push(decode(&mut r)?);
        }
        out.push(records);
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let mut w = Writer::new();
        w.u8(7);
        w.u32(0xDEAD_BEEF);
        w.u64(u64::MAX - 1);
        w.usize(3);
        w.bool(true);
        w.f32(-0.1);
        let bytes = w.into_bytes();
        let path = Path::new("p.lrp");
        let mut r = Reader::new(&bytes, path);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u32().unwrap(), 0xDEAD_BEEF);
        assert_eq!(r.u64().unwrap(), u64::MAX - 1);
        assert_eq!(r.usize().unwrap(), 3);
        assert!(r.bool().unwrap());
        assert_eq!(r.f32().unwrap().to_bits(), (-0.1f32).to_bits());
        r.finish().unwrap();

        let mut r = Reader::new(&bytes[..5], path);
        r.u8().unwrap();
        let err = r.u64().unwrap_err().to_string();
        assert!(err.contains("p.lrp") && err.contains("corrupt"), "{err}");
        // A huge length is refused before anything is allocated.
        let mut w = Writer::new();
        w.usize(1 << 40);
        let bytes = w.into_bytes();
        assert!(Reader::new(&bytes, path).len(8).is_err());
        // Leftover bytes are corruption too.
        let r = Reader::new(&[0u8], path);
        assert!(r.finish().is_err());
        assert!(Reader::new(&[2u8], path).bool().is_err());
    }

    #[test]
    fn lists_round_trip_and_refuse_leftovers() {
        let lists = vec![vec![1u32, 2, 3], vec![], vec![7]];
        let bytes = encode_lists(&lists, |w, &v| w.u32(v));
        let path = Path::new("p.lrp");
        assert_eq!(decode_lists(&bytes, path, 3, 4, |r| r.u32()).unwrap(), lists);
        assert!(decode_lists(&bytes, path, 2, 4, |r| r.u32()).is_err(), "leftover list");
        assert!(decode_lists(&bytes[..bytes.len() - 1], path, 3, 4, |r| r.u32()).is_err());
    }
}
