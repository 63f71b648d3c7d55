//! The snapshot data format: the key-value table's pairs in key order.
//!
//! ```text
//! magic "SLRSNAP1" | count: u64 LE | count × (key_len: u32 LE, key, value_len: u32 LE, value)
//! ```
//!
//! Snapshot bytes arrive from another node: decoding checks every length
//! and the UTF-8 of every string, and fails with an error, never a panic.

use std::io;

const MAGIC: &[u8; 8] = b"SLRSNAP1";

/// Writes pairs into snapshot bytes, one at a time.
pub(crate) struct Encoder {
    out: Vec<u8>,
    count: u64,
}

impl Encoder {
    pub(crate) fn new() -> Self {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&0u64.to_le_bytes());
        Self { out, count: 0 }
    }

    pub(crate) fn push(&mut self, key: &str, value: &str) -> Result<(), io::Error> {
        for part in [key, value] {
            let len = u32::try_from(part.len()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("snapshot string of {} bytes is too long", part.len()),
                )
            })?;
            self.out.extend_from_slice(&len.to_le_bytes());
            self.out.extend_from_slice(part.as_bytes());
        }
        self.count += 1;
        Ok(())
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        self.out[MAGIC.len()..MAGIC.len() + 8].copy_from_slice(&self.count.to_le_bytes());
        self.out
    }
}

/// Reads the pairs back from snapshot bytes.
pub(crate) fn decode(data: &[u8]) -> Result<Vec<(&str, &str)>, io::Error> {
    let mut rest = data;
    let magic = take(&mut rest, MAGIC.len())?;
    if magic != MAGIC {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "snapshot data does not start with SLRSNAP1",
        ));
    }
    let count = u64::from_le_bytes(array(take(&mut rest, 8)?)?);
    let mut pairs = Vec::new();
    for _ in 0..count {
        let key = string(&mut rest)?;
        let value = string(&mut rest)?;
        pairs.push((key, value));
    }
    if !rest.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snapshot data has {} bytes after its {count} pairs", rest.len()),
        ));
    }
    Ok(pairs)
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], io::Error> {
    if rest.len() < n {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("snapshot data truncated: needed {n} more bytes, {} left", rest.len()),
        ));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn array<const N: usize>(bytes: &[u8]) -> Result<[u8; N], io::Error> {
    <[u8; N]>::try_from(bytes)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "snapshot length field of the wrong width"))
}

fn string<'a>(rest: &mut &'a [u8]) -> Result<&'a str, io::Error> {
    let len = u32::from_le_bytes(array(take(rest, 4)?)?);
    let bytes = take(rest, len as usize)?;
    std::str::from_utf8(bytes)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot string is not UTF-8: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut enc = Encoder::new();
        enc.push("a", "1").unwrap();
        enc.push("", "").unwrap();
        enc.push("key", "välue").unwrap();
        let data = enc.finish();
        assert_eq!(decode(&data).unwrap(), [("a", "1"), ("", ""), ("key", "välue")]);
    }

    #[test]
    fn damaged_data_is_an_error() {
        let mut enc = Encoder::new();
        enc.push("key", "value").unwrap();
        let data = enc.finish();
        // Every truncation, and a trailing byte, fail cleanly.
        for cut in 0..data.len() {
            assert!(decode(&data[..cut]).is_err(), "truncated at {cut}");
        }
        let mut long = data.clone();
        long.push(0);
        assert!(decode(&long).is_err());
        // A huge count or length does not allocate or panic.
        let mut huge = data.clone();
        huge[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(decode(&huge).is_err());
        let mut bad_magic = data;
        bad_magic[0] = b'X';
        assert!(decode(&bad_magic).is_err());
    }
}
