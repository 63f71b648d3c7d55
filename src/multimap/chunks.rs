//! Writes to the chunks of keys at least [`CHUNKED_KEY_LEN`] long whose
//! type orders by bytes (see `pair`'s module docs for the layout, and
//! [`chunked`] for why byte order).
//!
//! Invariants, for every such key:
//! - its chunks hold its values, each once, in `V`'s order: the first
//!   value of each chunk (in its engine key) is above every value of the
//!   chunks before it, and a chunk's other values (its engine value) lie
//!   between its first and the next chunk's first;
//! - no chunk's engine value exceeds [`REST_BYTES`] unless it holds a single
//!   value (a split leaves every part with at least one value);
//! - [`EXTRA`] counts the values held in engine values, over all keys.
//!
//! An insert of a value equal to a stored one under a different spelling
//! (a custom `V` order) stores the new spelling, as an engine put does for
//! the one-value-per-entry layout. Every write is checked against the
//! engine's limits before the first one is made, so a refused insert
//! changes nothing.

use std::cmp::Ordering;
use std::ops::Bound;

use super::pair::{self, CHUNKED_KEY_LEN, EXTRA, REST_BYTES};
use crate::btree::{ValueBytes, check_key};
use crate::engine::{Direction, TableRef, WriteTxn};
use crate::error::StorageError;
use crate::types::Key;

type Result<T> = std::result::Result<T, StorageError>;

/// Whether the values of `key` (encoded, of type `K`) go in chunks. Only
/// for byte-ordered key types: there, keys equal under `K::compare` are
/// the same bytes, so every spelling of a key takes the same layout. (A
/// custom order may call keys of different lengths equal; the layout must
/// not differ between them.)
pub(crate) fn chunked<K: Key>(key: &[u8]) -> bool {
    key.len() >= CHUNKED_KEY_LEN && K::order_is_bytewise()
}

fn malformed() -> StorageError {
    StorageError::corrupted("a multimap table holds a malformed pair")
}

/// A stored chunk: its exact engine key, its first value and the others.
struct Chunk {
    engine_key: Vec<u8>,
    first: Vec<u8>,
    rest: Vec<Vec<u8>>,
}

impl Chunk {
    fn parse(engine_key: &[u8], value: &ValueBytes) -> Result<Self> {
        let (_, first) = pair::split_pair(engine_key).ok_or_else(malformed)?;
        let rest = pair::decode_rest(value.as_bytes()).ok_or_else(malformed)?;
        Ok(Self {
            engine_key: engine_key.to_vec(),
            first: first.to_vec(),
            rest: rest.into_iter().map(<[u8]>::to_vec).collect(),
        })
    }
}

/// The first chunk from one end of the engine range between two bounds.
/// An edge (`WriteTxn::edge`), a seek per layer: the first item of a range
/// was a copy of every chunk of the key the transaction had written, when
/// ranges copied the transaction's writes (10 000 values under one key:
/// quadratic).
fn chunk_at(
    txn: &mut WriteTxn,
    table: TableRef,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
    last: bool,
) -> Result<Option<Chunk>> {
    let direction = if last { Direction::Backward } else { Direction::Forward };
    txn.edge(table, lower, upper, direction)?
        .map(|(k, v)| Chunk::parse(k.as_bytes(), &v))
        .transpose()
}

/// The chunk of `key` whose first value is the greatest at or below `value`.
fn floor(txn: &mut WriteTxn, table: TableRef, key: &[u8], value: &[u8]) -> Result<Option<Chunk>> {
    let (low, target) = (pair::low(key), pair::pair(key, value));
    chunk_at(txn, table, Bound::Excluded(&low), Bound::Included(&target), true)
}

/// Where a chunk grew: at its end, at its front (a new first value), or
/// elsewhere. A chunk that grew at an end and must split keeps the other
/// end's values together, so values added in order fill whole chunks (as a
/// B-tree splits its rightmost leaf on appends), where halves would leave
/// every chunk half full.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Grew {
    AtEnd,
    AtFront,
    Inside,
}

/// `first` and `rest` (ascending) as the parts of chunks, split until each
/// engine value fits [`REST_BYTES`] (or holds one value).
fn split(first: Vec<u8>, mut rest: Vec<Vec<u8>>, grew: Grew, parts: &mut Vec<(Vec<u8>, Vec<Vec<u8>>)>) {
    let encoded: usize = rest.iter().map(|v| size_of::<u32>() + v.len()).sum();
    if encoded <= REST_BYTES || rest.is_empty() {
        parts.push((first, rest));
        return;
    }
    let at = match grew {
        Grew::AtEnd => rest.len() - 1,
        // The first value alone on the left; the right starts at rest[0].
        Grew::AtFront => 0,
        Grew::Inside => rest.len() / 2,
    };
    let mut right = rest.split_off(at);
    let right_first = right.remove(0);
    split(first, rest, Grew::Inside, parts);
    split(right_first, right, Grew::Inside, parts);
}

/// Stores `first` and `rest` (ascending) as chunks of `key` ([`split`]),
/// after removing the engine entry `replaces` if given; returns how many
/// values went into engine values. Nothing is written unless every part
/// passes the engine's key limit.
fn write(
    txn: &mut WriteTxn,
    table: TableRef,
    key: &[u8],
    replaces: Option<&[u8]>,
    (first, rest): (Vec<u8>, Vec<Vec<u8>>),
    grew: Grew,
) -> Result<u64> {
    let mut parts = Vec::new();
    split(first, rest, grew, &mut parts);
    let keyed: Vec<(Vec<u8>, Vec<Vec<u8>>)> = parts
        .into_iter()
        .map(|(first, rest)| (pair::pair(key, &first), rest))
        .collect();
    for (engine_key, _) in &keyed {
        check_key(engine_key)?;
    }
    if let Some(old) = replaces {
        txn.remove(table, old)?;
    }
    let mut in_rests = 0;
    for (engine_key, rest) in keyed {
        txn.insert(table, &engine_key, &pair::encode_rest(rest.iter().map(Vec::as_slice)))?;
        in_rests += rest.len() as u64;
    }
    Ok(in_rests)
}

/// Moves [`EXTRA`] by `now - before`.
fn count_rest(txn: &mut WriteTxn, table: TableRef, before: u64, now: u64) -> Result<()> {
    if before == now {
        return Ok(());
    }
    let extra = read_extra(txn.get(table, EXTRA)?)?;
    let extra = (extra + now)
        .checked_sub(before)
        .ok_or_else(|| StorageError::corrupted("a multimap table's value count is below its chunks'"))?;
    txn.insert(table, EXTRA, &extra.to_le_bytes())?;
    Ok(())
}

/// The value of [`EXTRA`] (absent: 0).
pub(crate) fn read_extra(value: Option<ValueBytes>) -> Result<u64> {
    value
        .map(|v| {
            v.as_bytes()
                .try_into()
                .map(u64::from_le_bytes)
                .map_err(|_| StorageError::corrupted("a multimap table's value count is malformed"))
        })
        .transpose()
        .map(|n| n.unwrap_or(0))
}

/// Adds `value` to `key`'s values; whether it was there already.
/// REQUIRES: [`chunked`] holds for `key`.
pub(crate) fn insert<V: Key>(txn: &mut WriteTxn, table: TableRef, key: &[u8], value: &[u8]) -> Result<bool> {
    debug_assert!(key.len() >= CHUNKED_KEY_LEN);
    check_key(&pair::pair(key, value))?;
    if let Some(mut chunk) = floor(txn, table, key, value)? {
        let before = chunk.rest.len() as u64;
        if V::compare(&chunk.first, value) == Ordering::Equal {
            if chunk.first != value {
                // The new spelling of an equal value: the chunk's new key.
                let now = write(
                    txn,
                    table,
                    key,
                    Some(&chunk.engine_key),
                    (value.to_vec(), chunk.rest),
                    Grew::Inside,
                )?;
                count_rest(txn, table, before, now)?;
            }
            return Ok(true);
        }
        let (existed, grew) = match chunk.rest.binary_search_by(|r| V::compare(r, value)) {
            Ok(at) if chunk.rest[at] == value => return Ok(true),
            Ok(at) => {
                chunk.rest[at] = value.to_vec();
                (true, Grew::Inside)
            }
            Err(at) => {
                let grew = if at == chunk.rest.len() {
                    Grew::AtEnd
                } else {
                    Grew::Inside
                };
                chunk.rest.insert(at, value.to_vec());
                (false, grew)
            }
        };
        let now = write(txn, table, key, None, (chunk.first, chunk.rest), grew)?;
        count_rest(txn, table, before, now)?;
        return Ok(existed);
    }
    // Below every value of `key`: the new first of its first chunk, if any.
    let (target, high) = (pair::pair(key, value), pair::high(key));
    match chunk_at(txn, table, Bound::Excluded(&target), Bound::Excluded(&high), false)? {
        Some(chunk) => {
            let before = chunk.rest.len() as u64;
            let mut rest = Vec::with_capacity(chunk.rest.len() + 1);
            rest.push(chunk.first);
            rest.extend(chunk.rest);
            let now = write(
                txn,
                table,
                key,
                Some(&chunk.engine_key),
                (value.to_vec(), rest),
                Grew::AtFront,
            )?;
            count_rest(txn, table, before, now)?;
        }
        None => {
            txn.insert(table, &target, &[])?;
        }
    }
    Ok(false)
}

/// Removes `value` from `key`'s values; whether it was there.
/// REQUIRES: [`chunked`] holds for `key`.
pub(crate) fn remove<V: Key>(txn: &mut WriteTxn, table: TableRef, key: &[u8], value: &[u8]) -> Result<bool> {
    debug_assert!(key.len() >= CHUNKED_KEY_LEN);
    let Some(mut chunk) = floor(txn, table, key, value)? else {
        return Ok(false);
    };
    let before = chunk.rest.len() as u64;
    let now = if V::compare(&chunk.first, value) == Ordering::Equal {
        if chunk.rest.is_empty() {
            txn.remove(table, &chunk.engine_key)?;
            0
        } else {
            let first = chunk.rest.remove(0);
            write(
                txn,
                table,
                key,
                Some(&chunk.engine_key),
                (first, chunk.rest),
                Grew::Inside,
            )?
        }
    } else {
        let Ok(at) = chunk.rest.binary_search_by(|r| V::compare(r, value)) else {
            return Ok(false);
        };
        chunk.rest.remove(at);
        txn.insert(
            table,
            &chunk.engine_key,
            &pair::encode_rest(chunk.rest.iter().map(Vec::as_slice)),
        )?;
        before - 1
    };
    count_rest(txn, table, before, now)?;
    Ok(true)
}

/// Removes every chunk of `key` (of any length); returns its values,
/// ascending.
pub(crate) fn remove_all(txn: &mut WriteTxn, table: TableRef, key: &[u8]) -> Result<Vec<Vec<u8>>> {
    let (low, high) = (pair::low(key), pair::high(key));
    let chunks: Vec<Chunk> = txn
        .range(table, Bound::Excluded(&low), Bound::Excluded(&high))?
        .map(|item| item.and_then(|(k, v)| Chunk::parse(k.as_bytes(), &v)))
        .collect::<Result<_>>()?;
    let mut values = Vec::new();
    let mut before = 0;
    for chunk in chunks {
        txn.remove(table, &chunk.engine_key)?;
        before += chunk.rest.len() as u64;
        values.push(chunk.first);
        values.extend(chunk.rest);
    }
    count_rest(txn, table, before, 0)?;
    Ok(values)
}
