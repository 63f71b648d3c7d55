//! The WAL payload of one committed transaction, and its decoding.
//!
//! ```text
//! batch (integers little-endian)
//!   u32 binding count, then per binding (the net change of the name -> table map):
//!       u16 name length, name, u8 present (0 = name unbound),
//!       if present: u64 table id, u32 metadata length, metadata
//!   u32 dropped-table count, then u64 table id each (their data is gone)
//!   u32 operation count, then per operation:
//!       u8 kind (1 put, 2 delete), u64 table id, u32 key length, key,
//!       if put: u32 value length, value
//!   u32 count-change count, then per table whose entry count changed:
//!       u64 table id, i64 change (entries added minus entries removed)
//! ```
//!
//! The count changes let every layer answer `len()` without counting: the
//! writer knows each insert's and remove's old value, so it knows exactly
//! how the table's entry count moves.
//!
//! A table created by the transaction gets the id `seq << 20 | n` (the
//! commit's sequence number and a per-transaction counter): unique for ever,
//! since sequence numbers never go backwards, so an id is never reused by a
//! later table that the log could confuse with an earlier one.

use super::key_bytes::KeyBytes;
use crate::error::{Result, StorageError};

/// Tables one transaction may create.
pub(crate) const TABLES_PER_TXN: u64 = 1 << 20;

/// The id of the `n`th table created by the commit with sequence `seq`.
pub(crate) fn new_table_id(seq: u64, n: u64) -> u64 {
    seq << 20 | n
}

/// A table as the name map binds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableDef {
    pub(crate) id: u64,
    pub(crate) meta: std::sync::Arc<[u8]>,
}

/// One put or delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DataOp {
    pub(crate) table: u64,
    pub(crate) key: KeyBytes,
    pub(crate) value: Option<OpValue>,
}

/// A put's value in a write set or a commit's batch: an allocation of its
/// own, or a slice of a chunk it shares with other values of its
/// transaction. A write set packs a bulk load's values into chunks, so a
/// million writes make a few hundred allocations (and, once the commit is
/// done, a few hundred frees: freeing a million small values one by one
/// took glibc a fifth of a 1M-key one-transaction load).
#[derive(Clone)]
pub(crate) enum OpValue {
    Owned(Vec<u8>),
    Shared {
        chunk: std::sync::Arc<Vec<u8>>,
        start: u32,
        len: u32,
    },
}

impl std::ops::Deref for OpValue {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Owned(bytes) => bytes,
            Self::Shared { chunk, start, len } => &chunk[*start as usize..*start as usize + *len as usize],
        }
    }
}

impl From<Vec<u8>> for OpValue {
    fn from(bytes: Vec<u8>) -> Self {
        Self::Owned(bytes)
    }
}

impl PartialEq for OpValue {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for OpValue {}

impl std::fmt::Debug for OpValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

/// Encoded bytes of one operation (see the module docs).
pub(crate) fn op_len(key_len: usize, value_len: Option<usize>) -> usize {
    1 + 8 + 4 + key_len + value_len.map_or(0, |len| 4 + len)
}

/// Encoded bytes of a batch but for its operations.
pub(crate) fn frame_len(bindings: &[(Vec<u8>, Option<TableDef>)], dropped: &[u64], counts: &[(u64, i64)]) -> usize {
    let bindings: usize = bindings
        .iter()
        .map(|(name, def)| 2 + name.len() + 1 + def.as_ref().map_or(0, |def| 8 + 4 + def.meta.len()))
        .sum();
    4 + bindings + 4 + 8 * dropped.len() + 4 + 4 + 16 * counts.len()
}

/// Encodes a batch from its parts (see the module docs): `ops` yields
/// `op_count` operations, each its table, key and value (`None`: a
/// delete); `len` is the encoding's exact length (the committer has it
/// already: it decides the commit's path).
pub(crate) fn encode_parts<'a>(
    len: usize,
    bindings: &[(Vec<u8>, Option<TableDef>)],
    dropped: &[u64],
    op_count: usize,
    ops: impl Iterator<Item = (u64, &'a [u8], Option<&'a [u8]>)>,
    counts: &[(u64, i64)],
) -> Vec<u8> {
    // Sized up front: growing from empty reallocated several times per
    // record (8% of a single-key commit).
    let mut out = Vec::with_capacity(len);
    encode_parts_into(&mut out, len, bindings, dropped, op_count, ops, counts);
    out
}

/// [`encode_parts`] appended to `out` (a WAL queue's buffer: no buffer of
/// the payload's own).
pub(crate) fn encode_parts_into<'a>(
    out: &mut Vec<u8>,
    len: usize,
    bindings: &[(Vec<u8>, Option<TableDef>)],
    dropped: &[u64],
    op_count: usize,
    ops: impl Iterator<Item = (u64, &'a [u8], Option<&'a [u8]>)>,
    counts: &[(u64, i64)],
) {
    let start = out.len();
    out.reserve(len);
    out.extend_from_slice(&(bindings.len() as u32).to_le_bytes());
    for (name, def) in bindings {
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(name);
        match def {
            None => out.push(0),
            Some(def) => {
                out.push(1);
                out.extend_from_slice(&def.id.to_le_bytes());
                out.extend_from_slice(&(def.meta.len() as u32).to_le_bytes());
                out.extend_from_slice(&def.meta);
            }
        }
    }
    out.extend_from_slice(&(dropped.len() as u32).to_le_bytes());
    for id in dropped {
        out.extend_from_slice(&id.to_le_bytes());
    }
    out.extend_from_slice(&(op_count as u32).to_le_bytes());
    for (table, key, value) in ops {
        out.push(if value.is_some() { 1 } else { 2 });
        out.extend_from_slice(&table.to_le_bytes());
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
    }
    out.extend_from_slice(&(counts.len() as u32).to_le_bytes());
    for (table, change) in counts {
        out.extend_from_slice(&table.to_le_bytes());
        out.extend_from_slice(&change.to_le_bytes());
    }
    debug_assert_eq!(out.len() - start, len, "a batch's encoding and its computed length disagree");
}

/// A commit's changes but its data writes (what `engine::core::apply_frame`
/// applies to a memtable).
pub(crate) struct Frame {
    pub(crate) bindings: Vec<(Vec<u8>, Option<TableDef>)>,
    pub(crate) dropped: Vec<u64>,
    pub(crate) counts: Vec<(u64, i64)>,
}

/// A decoded transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) bindings: Vec<(Vec<u8>, Option<TableDef>)>,
    pub(crate) dropped: Vec<u64>,
    pub(crate) ops: Vec<DataOp>,
    /// Per table, how its entry count changed.
    pub(crate) counts: Vec<(u64, i64)>,
}

impl Batch {
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.encode_sized(self.encoded_len())
    }

    /// [`encode`](Self::encode), given its length.
    pub(crate) fn encode_sized(&self, len: usize) -> Vec<u8> {
        let ops = self.ops.iter().map(|op| (op.table, &op.key[..], op.value.as_deref()));
        encode_parts(len, &self.bindings, &self.dropped, self.ops.len(), ops, &self.counts)
    }

    /// The exact length of [`encode`](Self::encode)'s output.
    pub(crate) fn encoded_len(&self) -> usize {
        let ops: usize = self
            .ops
            .iter()
            .map(|op| op_len(op.key.len(), op.value.as_ref().map(|v| v.len())))
            .sum();
        frame_len(&self.bindings, &self.dropped, &self.counts) + ops
    }

    /// Decodes a payload; any inconsistency is corruption (the WAL checksum
    /// passed, so this means a bug or a foreign writer).
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader { bytes, pos: 0 };
        let mut batch = Batch::default();
        for _ in 0..r.u32()? {
            let len = r.u16()? as usize;
            let name = r.take(len)?.to_vec();
            let def = match r.u8()? {
                0 => None,
                1 => {
                    let id = r.u64()?;
                    let len = r.u32()? as usize;
                    Some(TableDef {
                        id,
                        meta: r.take(len)?.into(),
                    })
                }
                other => return Err(bad(&format!("binding flag {other}"))),
            };
            batch.bindings.push((name, def));
        }
        for _ in 0..r.u32()? {
            batch.dropped.push(r.u64()?);
        }
        for _ in 0..r.u32()? {
            let kind = r.u8()?;
            let table = r.u64()?;
            let len = r.u32()? as usize;
            let key = KeyBytes::new(r.take(len)?);
            let value = match kind {
                1 => {
                    let len = r.u32()? as usize;
                    Some(OpValue::Owned(r.take(len)?.to_vec()))
                }
                2 => None,
                other => return Err(bad(&format!("operation kind {other}"))),
            };
            batch.ops.push(DataOp { table, key, value });
        }
        for _ in 0..r.u32()? {
            let table = r.u64()?;
            batch.counts.push((table, r.u64()? as i64));
        }
        if r.pos != bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(batch)
    }
}

fn bad(what: &str) -> StorageError {
    StorageError::corrupted(format!("WAL transaction record: {what}"))
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| bad("truncated"))?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap_or_default()))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncation() {
        let batch = Batch {
            bindings: vec![
                (
                    b"a".to_vec(),
                    Some(TableDef {
                        id: new_table_id(9, 1),
                        meta: b"u64".as_slice().into(),
                    }),
                ),
                (b"b".to_vec(), None),
            ],
            dropped: vec![77],
            ops: vec![
                DataOp {
                    table: 5,
                    key: KeyBytes::new(b"k"),
                    value: Some(b"v".to_vec().into()),
                },
                DataOp {
                    table: 5,
                    key: KeyBytes::new(b"gone"),
                    value: None,
                },
            ],
            counts: vec![(5, 0), (new_table_id(9, 1), -3)],
        };
        let bytes = batch.encode();
        assert_eq!(bytes.len(), batch.encoded_len(), "the size computed up front is exact");
        assert_eq!(bytes.capacity(), bytes.len(), "encoding never grew the buffer");
        assert_eq!(Batch::decode(&bytes).unwrap(), batch);
        for cut in 0..bytes.len() {
            assert!(Batch::decode(&bytes[..cut]).is_err(), "prefix {cut} accepted");
        }
    }
}
