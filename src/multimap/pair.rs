//! The engine entries of a multimap table, and the order the engine keeps
//! them in.
//!
//! An engine entry is a **chunk**: one or more values of one key. Its
//! engine key is the pair (key, first value); its engine value holds the
//! values after the first, in `V`'s order ([`encode_rest`]: each a u32
//! length, little-endian, then its bytes; empty for a chunk of one value,
//! which is the layout of every pair written before chunks). A key shorter
//! than [`CHUNKED_KEY_LEN`] keeps one value per chunk (repeating a short key
//! costs less than rewriting a chunk per insert); a longer key gathers its
//! values in chunks of up to [`REST_BYTES`], so it is stored once per chunk,
//! not once per value. One more entry, [`EXTRA`], counts the values held in
//! chunks' engine values, so that the number of pairs is the engine's entry
//! count plus it, less one for itself.
//!
//! Layout of an engine key:
//!
//! ```text
//! offset 0           u8   kind: 0 = LOW probe, 1 = PAIR, 2 = HIGH probe
//! offset 1           u32  key length n, little-endian
//! offset 5           n    the key's bytes (K::as_bytes)
//! offset 5 + n       ..   the value's bytes (V::as_bytes), the rest; empty
//!                         for probes
//! ```
//!
//! Splitting is O(1) and unambiguous: the length says where the key ends and
//! the value is the rest. Only `PAIR`s are ever stored. The probes exist
//! only as range bounds: `LOW(k)` sorts before every pair with key `k` and
//! `HIGH(k)` after every one, so the pairs of key `k` are exactly the range
//! `LOW(k)..HIGH(k)`, without fabricating a value smaller or larger than
//! every `V` (there may be none).
//!
//! Order ([`pair_cmp`]): `K::compare` of the keys, then the kind (LOW < PAIR
//! < HIGH), then `V::compare` of the values. It is a total order whenever
//! `K::compare` and `V::compare` are. Bytes that do not parse (never written
//! by this module; the engine only hands the comparator keys it stored or
//! bounds built here) sort before every well-formed key, bytewise among
//! themselves, so the comparator stays total and never panics.

use std::cmp::Ordering;

use crate::error::StorageError;
use crate::types::Key;

/// Bytes before the key: the kind and the key length.
const HEADER: usize = 1 + size_of::<u32>();

/// A range probe sorting before every pair of its key.
const LOW: u8 = 0;
/// A stored (key, value) pair.
const PAIR: u8 = 1;
/// A range probe sorting after every pair of its key.
const HIGH: u8 = 2;

fn encode(kind: u8, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + key.len() + value.len());
    out.push(kind);
    // A key longer than u32::MAX bytes is far beyond the engine's key limit,
    // which rejects the whole pair before anything is stored; saturating
    // keeps this function total.
    out.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(value);
    out
}

/// Keys at least this long gather their values in chunks.
pub(crate) const CHUNKED_KEY_LEN: usize = 64;

/// A chunk's engine value grows to at most this many bytes before it is
/// split (so it stays inline in its leaf: `btree::node`).
pub(crate) const REST_BYTES: usize = 1024;

/// The engine key of the count of values held in chunks' engine values (a
/// u64, little-endian; absent means 0). It does not parse as a pair, so it
/// sorts before every pair and probe ([`pair_cmp`]).
pub(crate) const EXTRA: &[u8] = b"\xffextra values";

/// A chunk's engine value: the values after its first, each with its
/// length.
pub(crate) fn encode_rest<'a>(values: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for value in values {
        out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// The values [`encode_rest`] wrote; `None` for bytes it did not write.
pub(crate) fn decode_rest(mut bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut values = Vec::new();
    while !bytes.is_empty() {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        if len > rest.len() {
            return None;
        }
        let (value, rest) = rest.split_at(len);
        values.push(value);
        bytes = rest;
    }
    Some(values)
}

/// The engine key of the pair (`key`, `value`).
pub(crate) fn pair(key: &[u8], value: &[u8]) -> Vec<u8> {
    encode(PAIR, key, value)
}

/// The longest key + value a multimap table stores: the engine's key limit
/// less the header a pair's engine key carries.
pub(crate) const MAX_PAIR_LEN: usize = crate::btree::MAX_KEY_LEN - HEADER;

/// Checks that `key` and `value` fit one pair, before anything is written:
/// the error names their joint length, the one the caller can see (the
/// engine's check of the pair's key named the length with the header, and
/// refused a key + value of the 20 KiB the docs allowed).
pub(crate) fn check_len(key: &[u8], value: &[u8]) -> Result<(), StorageError> {
    let len = key.len().saturating_add(value.len());
    if len > crate::btree::MAX_VALUE_LEN {
        return Err(StorageError::ValueTooLarge(len));
    }
    if len > MAX_PAIR_LEN {
        return Err(StorageError::KeyTooLarge(len));
    }
    Ok(())
}

/// The bound sorting before every pair whose key equals `key`.
pub(crate) fn low(key: &[u8]) -> Vec<u8> {
    encode(LOW, key, &[])
}

/// The bound sorting after every pair whose key equals `key`.
pub(crate) fn high(key: &[u8]) -> Vec<u8> {
    encode(HIGH, key, &[])
}

/// Splits an engine key into (kind, key bytes, value bytes); `None` if the
/// bytes are not something [`encode`] wrote.
pub(crate) fn split(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&kind, rest) = bytes.split_first()?;
    if kind > HIGH {
        return None;
    }
    let (len, rest) = rest.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    if len > rest.len() {
        return None;
    }
    let (key, value) = rest.split_at(len);
    Some((kind, key, value))
}

/// The key and value of a stored pair; `None` for anything else (a probe or
/// bytes this module did not write).
pub(crate) fn split_pair(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    match split(bytes)? {
        (PAIR, key, value) => Some((key, value)),
        _ => None,
    }
}

/// The engine order of a multimap table from `K` to `V`; see the module
/// docs. A plain `fn`, so it is a [`Comparator`](crate::btree::Comparator).
pub(crate) fn pair_cmp<K: Key, V: Key>(a: &[u8], b: &[u8]) -> Ordering {
    match (split(a), split(b)) {
        (Some((kind_a, key_a, value_a)), Some((kind_b, key_b, value_b))) => {
            K::compare(key_a, key_b).then(kind_a.cmp(&kind_b)).then_with(|| {
                // Only pairs carry values; two probes of one kind and key
                // are the same bound.
                if kind_a == PAIR {
                    V::compare(value_a, value_b)
                } else {
                    Ordering::Equal
                }
            })
        }
        (None, None) => a.cmp(b),
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rests_round_trip_and_reject_garbage() {
        let values: [&[u8]; 3] = [b"", b"a", b"bcd"];
        let bytes = encode_rest(values);
        assert_eq!(decode_rest(&bytes).unwrap(), values);
        assert_eq!(decode_rest(b"").unwrap(), Vec::<&[u8]>::new());
        for cut in 1..bytes.len() {
            if cut != 4 && cut != 9 {
                assert_eq!(decode_rest(&bytes[..cut]), None, "cut at {cut}");
            }
        }
        assert!(split(EXTRA).is_none(), "the count entry is no pair");
        assert_eq!(pair_cmp::<u64, u64>(EXTRA, &low(b"")), Ordering::Less);
    }

    #[test]
    fn pairs_split_back_and_probes_bracket_their_key() {
        let p = pair(b"key", b"value");
        assert_eq!(split_pair(&p), Some((&b"key"[..], &b"value"[..])));
        assert_eq!(split_pair(&low(b"key")), None);
        assert_eq!(split_pair(b"\x01\xff\xff\xff\xffshort"), None);
        assert_eq!(split(b""), None);
        assert_eq!(split(b"\x03\0\0\0\0"), None);

        let cmp = pair_cmp::<u64, &str>;
        let key = |n: u64| <u64 as crate::Value>::as_bytes(&n).to_vec();
        let (k1, k2) = (key(1), key(2));
        let sorted = [
            low(&k1),
            pair(&k1, b""),
            pair(&k1, b"a"),
            pair(&k1, b"b"),
            high(&k1),
            low(&k2),
            pair(&k2, b""),
            high(&k2),
        ];
        assert_eq!(cmp(b"junk", &sorted[0]), Ordering::Less);
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(cmp(a, b), i.cmp(&j), "{i} vs {j}");
            }
        }
    }
}
