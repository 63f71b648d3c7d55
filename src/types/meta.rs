//! What a table stores about its types, and how a process finds a key order
//! from it.
//!
//! A table's metadata records its key and value type names, whether the
//! key order is plain byte order, and whether it is a multimap table
//! (`crate::multimap`). Byte order needs no code; any other order is
//! the key type's `compare`, which the engine learns when the table is opened
//! with its type. Recovery never needs it: records of a table whose order is
//! not known yet are deferred until the table is opened (`engine::deferred`).

use std::any::TypeId;
use std::sync::Arc;

use parking_lot::Mutex;

use super::traits::Key;
use crate::btree::{Comparator, bytewise};

/// The metadata the typed API stores with each table (a sluicedb
/// extension, for tools such as the `sluice` command-line tool that read
/// tables without their Rust types): the key and value type names, which
/// `open_table` compares to catch a table reopened with other types,
/// whether the key order is plain byte order, and whether the table is a
/// multimap table.
///
/// ```
/// use sluicedb::TableMeta;
///
/// let meta = TableMeta::decode(b"u64\0&str\0b\0w8,-").unwrap();
/// assert_eq!((meta.key_type.as_str(), meta.value_type.as_str(), meta.bytewise), ("u64", "&str", true));
/// assert!(!meta.multimap);
/// assert_eq!(meta.widths, Some((Some(8), None)));
/// assert_eq!(meta.encode(), b"u64\0&str\0b\0w8,-");
/// let multimap = TableMeta::decode(b"u64\0u64\0p\0m\0w8,8").unwrap();
/// assert!(multimap.multimap && multimap.bytewise_pair && !multimap.bytewise);
/// assert_eq!(multimap.encode(), b"u64\0u64\0p\0m\0w8,8");
/// // A multimap table created before the pair's order was recorded:
/// assert!(!TableMeta::decode(b"u64\0u64\0c\0m\0w8,8").unwrap().bytewise_pair);
/// // Written before widths were recorded:
/// assert_eq!(TableMeta::decode(b"u64\0&str\0b").unwrap().widths, None);
/// assert_eq!(TableMeta::decode(b"not metadata"), None);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    /// The key type's [`TypeName`](crate::TypeName).
    pub key_type: String,
    /// The value type's [`TypeName`](crate::TypeName).
    pub value_type: String,
    /// Whether keys are ordered by their bytes ([`Key::order_is_bytewise`]);
    /// otherwise only the key type's `compare` knows their order.
    pub bytewise: bool,
    /// Whether this is a multimap table ([`MultimapTableDefinition`](crate::MultimapTableDefinition)):
    /// its engine keys are encoded (key, value) pairs, its engine values
    /// empty, and its order is never byte order.
    pub multimap: bool,
    /// For a multimap table: whether its key and value types are both
    /// ordered by their bytes. Its pair order is then one order whatever
    /// the types, which a process knows without them (a savepoint restore
    /// needs it for a table the process has not opened). `false` for other
    /// tables, and for multimap tables created before it was recorded.
    pub bytewise_pair: bool,
    /// The key and value types' fixed widths (`Value::fixed_width`; `None`
    /// inside: variable), which `open_table` also compares: a type renamed
    /// nowhere but resized would misread every stored entry. `None` for
    /// tables created before sluicedb recorded widths (not compared).
    pub widths: Option<(Option<usize>, Option<usize>)>,
}

impl TableMeta {
    pub(crate) fn of<K: Key, V: crate::Value>() -> Self {
        Self {
            key_type: K::type_name().into_name(),
            value_type: V::type_name().into_name(),
            bytewise: K::order_is_bytewise(),
            multimap: false,
            bytewise_pair: false,
            widths: Some((K::fixed_width(), V::fixed_width())),
        }
    }

    /// [`of`](Self::of) with its encoding, made once per pair of types in
    /// this process ([`TypedMeta`]).
    pub(crate) fn typed<K: Key + 'static, V: crate::Value + 'static>() -> Arc<TypedMeta> {
        TypedMeta::cached::<K, V>(false, Self::of::<K, V>)
    }

    /// [`of_multimap`](Self::of_multimap) with its encoding, made once per
    /// pair of types in this process ([`TypedMeta`]).
    pub(crate) fn typed_multimap<K: Key + 'static, V: Key + 'static>() -> Arc<TypedMeta> {
        TypedMeta::cached::<K, V>(true, Self::of_multimap::<K, V>)
    }

    /// The metadata of a multimap table from `K` to `V`: its engine order is
    /// the pair order of `crate::multimap::pair`, never byte order.
    pub(crate) fn of_multimap<K: Key, V: Key>() -> Self {
        Self {
            key_type: K::type_name().into_name(),
            value_type: V::type_name().into_name(),
            bytewise: false,
            multimap: true,
            bytewise_pair: K::order_is_bytewise() && V::order_is_bytewise(),
            widths: Some((K::fixed_width(), V::fixed_width())),
        }
    }

    /// `key type \0 value type \0 order`, where order is `b` (bytewise),
    /// `p` (a multimap table's pair of byte-ordered types) or `c`, then
    /// `\0m` for a multimap table, then `\0w` and the key and
    /// value widths (decimal, or `-` for variable) separated by a comma.
    /// Each addition is optional on decode, so older files read unchanged.
    /// A NUL inside a type name is written as the bytes `FF 30` (`FF` never
    /// occurs in UTF-8), so no two pairs of names encode alike.
    pub fn encode(&self) -> Vec<u8> {
        // Written piece by piece: every typed `open_table` encodes.
        let mut out = Vec::with_capacity(self.key_type.len() + self.value_type.len() + 16);
        push_name(&mut out, &self.key_type);
        out.push(0);
        push_name(&mut out, &self.value_type);
        out.push(0);
        out.push(if self.bytewise {
            b'b'
        } else if self.multimap && self.bytewise_pair {
            b'p'
        } else {
            b'c'
        });
        if self.multimap {
            out.extend_from_slice(b"\0m");
        }
        if let Some((key, value)) = self.widths {
            let width = |out: &mut Vec<u8>, w: Option<usize>| match w {
                Some(w) => push_decimal(out, w),
                None => out.push(b'-'),
            };
            out.extend_from_slice(b"\0w");
            width(&mut out, key);
            out.push(b',');
            width(&mut out, value);
        }
        out
    }

    /// Decodes what [`encode`](Self::encode) wrote; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut fields = bytes.splitn(3, |&b| b == 0);
        let (key_type, value_type) = (read_name(fields.next()?)?, read_name(fields.next()?)?);
        let text = std::str::from_utf8(fields.next()?).ok()?;
        let mut parts = text.split('\0').peekable();
        let order = parts.next()?;
        let multimap = parts.next_if_eq(&"m").is_some();
        let widths = match parts.next() {
            None => None,
            Some(widths) => {
                let (key, value) = widths.strip_prefix('w')?.split_once(',')?;
                let width = |w: &str| if w == "-" { Some(None) } else { w.parse().ok().map(Some) };
                Some((width(key)?, width(value)?))
            }
        };
        // A multimap table's order is the pair order, never byte order: a
        // `b` with `m` is not something `encode` writes (and `resolve` must
        // never hand byte order to a multimap table's records).
        // Nor is a `p` without `m`.
        if parts.next().is_some()
            || !matches!(order, "b" | "c" | "p")
            || (multimap && order == "b")
            || (!multimap && order == "p")
        {
            return None;
        }
        Some(Self {
            key_type,
            value_type,
            bytewise: order == "b",
            multimap,
            bytewise_pair: order == "p",
            widths,
        })
    }

    /// Whether a table stored with this metadata holds the types of
    /// `current` (the metadata of the definition it is opened with): the
    /// same kind, type names and order, and, where both record them, the
    /// same widths. A multimap table's `bytewise_pair` is not compared:
    /// tables created before it was recorded say `false` for the same
    /// types. `Err` names the first type whose width changed and its
    /// stored width.
    pub(crate) fn admits(&self, current: &Self) -> Result<bool, (&str, Option<usize>)> {
        let same_types = self.key_type == current.key_type
            && self.value_type == current.value_type
            && self.bytewise == current.bytewise
            && self.multimap == current.multimap;
        if !same_types {
            return Ok(false);
        }
        match (self.widths, current.widths) {
            (Some((key, _)), Some((now, _))) if key != now => Err((&self.key_type, key)),
            (Some((_, value)), Some((_, now))) if value != now => Err((&self.value_type, value)),
            _ => Ok(true),
        }
    }
}

/// The comparator to build `K`'s tables with: plain byte order when `K`'s
/// order is byte order (the engine can then treat equal keys as equal bytes,
/// which its memtable filters rely on), `K::compare` otherwise.
pub(crate) fn comparator<K: Key>() -> Comparator {
    if K::order_is_bytewise() { bytewise } else { K::compare }
}

/// The key order of a table, from its metadata (the engine's resolver):
/// byte order when the metadata says so, the byte-wise pair order of a
/// multimap table of byte-ordered types; `None` (unknown until the table is
/// opened with its key type) otherwise. The engine then defers the table's
/// recovered records (`engine::deferred`); nothing needs registering.
pub(crate) fn resolve(meta: &[u8]) -> Option<Comparator> {
    let meta = TableMeta::decode(meta)?;
    if meta.bytewise {
        Some(bytewise)
    } else if meta.multimap && meta.bytewise_pair {
        Some(crate::multimap::bytewise_pair_order())
    } else {
        None
    }
}

/// The escape of a NUL inside a type name ([`TableMeta::encode`]).
const NUL_ESCAPE: [u8; 2] = [0xFF, b'0'];

/// A typed table's metadata and its encoding, for `open_table`, which a
/// single-write commit calls every time: the type names are user code that
/// allocates a `String` each, and the encoding another buffer (about 900 of
/// the 2,800 instructions an open took, callgrind). Made once per (key
/// type, value type, kind) in this process and kept: a program has as many
/// as it has table types.
pub(crate) struct TypedMeta {
    pub(crate) meta: TableMeta,
    pub(crate) encoded: Vec<u8>,
}

type TypedKey = (TypeId, TypeId, bool);

/// Every [`TypedMeta`] made so far: a short list (a program's table types).
static TYPED: Mutex<Vec<(TypedKey, Arc<TypedMeta>)>> = Mutex::new(Vec::new());

impl TypedMeta {
    fn cached<K: 'static, V: 'static>(multimap: bool, make: impl FnOnce() -> TableMeta) -> Arc<TypedMeta> {
        let key = (TypeId::of::<K>(), TypeId::of::<V>(), multimap);
        if let Some((_, typed)) = TYPED.lock().iter().find(|(k, _)| *k == key) {
            return typed.clone();
        }
        // Made outside the lock: `type_name` is the types' own code. Two
        // threads may both make one; the first kept is found from then on.
        let meta = make();
        let typed = Arc::new(TypedMeta {
            encoded: meta.encode(),
            meta,
        });
        TYPED.lock().push((key, typed.clone()));
        typed
    }
}

/// Appends `n` in decimal, without `write!`'s formatting machinery: a
/// fixed-width type's metadata holds its widths, encoded on every typed
/// `open_table`.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    // Type names hold no NUL but by design: copy them whole (the split
    // below cost ~160 instructions per name, on every typed open).
    if !name.as_bytes().contains(&0) {
        out.extend_from_slice(name.as_bytes());
        return;
    }
    for (i, piece) in name.split('\0').enumerate() {
        if i > 0 {
            out.extend_from_slice(&NUL_ESCAPE);
        }
        out.extend_from_slice(piece.as_bytes());
    }
}

fn read_name(field: &[u8]) -> Option<String> {
    let mut name = Vec::with_capacity(field.len());
    let mut bytes = field.iter();
    while let Some(&b) = bytes.next() {
        match b {
            0xFF if bytes.next() == Some(&NUL_ESCAPE[1]) => name.push(0),
            0xFF => return None,
            b => name.push(b),
        }
    }
    String::from_utf8(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_nul_round_trip_and_never_encode_alike() {
        let meta = |key: &str, value: &str| TableMeta {
            key_type: key.into(),
            value_type: value.into(),
            bytewise: false,
            multimap: false,
            bytewise_pair: false,
            widths: Some((None, Some(8))),
        };
        let (one, other) = (meta("a\0b", "c"), meta("a", "b\0c"));
        assert_ne!(one.encode(), other.encode());
        for m in [one, other, meta("\0", "\0\0"), meta("", "")] {
            assert_eq!(TableMeta::decode(&m.encode()), Some(m.clone()), "{m:?}");
        }
        // A lone escape byte is not something `encode` writes.
        assert_eq!(TableMeta::decode(b"a\xFF\0b\0c"), None);
    }

    #[test]
    fn typed_metadata_is_made_once_per_pair_of_types_and_kind() {
        let (a, b) = (TableMeta::typed::<u64, &str>(), TableMeta::typed::<u64, &str>());
        assert!(Arc::ptr_eq(&a, &b), "the second open reuses the first's");
        assert_eq!(a.meta, TableMeta::of::<u64, &str>());
        assert_eq!(a.encoded, a.meta.encode());
        let other = TableMeta::typed::<u64, u32>();
        assert_eq!(other.meta, TableMeta::of::<u64, u32>());
        let multimap = TableMeta::typed_multimap::<u64, &str>();
        assert!(!Arc::ptr_eq(&a, &multimap));
        assert_eq!(multimap.meta, TableMeta::of_multimap::<u64, &str>());
    }

    #[test]
    fn widths_encode_in_decimal_as_formatting_would() {
        for n in [0, 1, 9, 10, 99, 100, 4096, 123_456_789, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().into_bytes());
        }
        let meta = TableMeta {
            key_type: "u64".into(),
            value_type: "[u8;16]".into(),
            bytewise: true,
            multimap: false,
            bytewise_pair: false,
            widths: Some((Some(8), None)),
        };
        assert_eq!(meta.encode(), b"u64\0[u8;16]\0b\0w8,-");
    }

    /// A multimap table's order letter: `p` only for a multimap table of
    /// byte-ordered types (never decoded for an ordinary table), `c` for
    /// any other, and what `resolve` makes of each.
    #[test]
    fn multimap_tables_of_byte_ordered_types_resolve_to_the_pair_order() {
        let pair = TableMeta::of_multimap::<u64, &str>();
        assert!(pair.bytewise_pair && pair.encode().windows(3).any(|w| w == b"\0p\0"));
        let resolved = resolve(&pair.encode()).expect("a byte-ordered pair resolves");
        let (a, b) = (crate::multimap::bytewise_pair_order(), resolved);
        assert!(
            std::ptr::fn_addr_eq(a, b),
            "resolved to another order than the typed open uses"
        );
        // A tuple with a variable-width element before the last: its own order.
        assert!(!<(&str, u8) as Key>::order_is_bytewise());
        let custom = TableMeta::of_multimap::<(&str, u8), u64>();
        assert!(!custom.bytewise_pair);
        assert!(
            resolve(&custom.encode()).is_none(),
            "a custom key order is never guessed"
        );
        assert_eq!(TableMeta::decode(b"u64\0u64\0p\0w8,8"), None, "p without m");
        let old = TableMeta::decode(b"u64\0u64\0c\0m\0w8,8").unwrap();
        assert!(
            old.admits(&TableMeta::of_multimap::<u64, u64>()).unwrap(),
            "tables from before the letter open"
        );
    }
}
