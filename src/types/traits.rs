//! The traits a table's key and value types implement.
//!
//! They have redb's shape, so types written for redb port by changing the
//! import. The encodings of the built-in implementations are sluicedb's own:
//! wherever possible they are *order-preserving* (integers big-endian with the
//! sign bit flipped, for instance), so that the byte order of the encoding is
//! the key order. Such keys are compared with `memcmp`, and their order is
//! known without the Rust type, which recovery relies on (see
//! [`Key::order_is_bytewise`]).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt::Debug;

/// The name of a type, stored with each table to catch a table reopened with
/// other types.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypeName(String);

impl TypeName {
    /// A type name. Names are compared exactly; use a stable, unique one.
    pub fn new(name: &str) -> Self {
        Self(name.to_string())
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// The name, moved out (no copy).
    pub(crate) fn into_name(self) -> String {
        self.0
    }
}

impl std::fmt::Display for TypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A type that can be stored as a table value.
pub trait Value: Debug {
    /// The type a stored value reads back as (may borrow the stored bytes).
    type SelfType<'a>: Debug + 'a
    where
        Self: 'a;

    /// The encoded form.
    type AsBytes<'a>: AsRef<[u8]> + 'a
    where
        Self: 'a;

    /// `Some(width)` if every value encodes to exactly `width` bytes.
    fn fixed_width() -> Option<usize>;

    /// Decodes a stored value.
    fn from_bytes<'a>(data: &'a [u8]) -> Self::SelfType<'a>
    where
        Self: 'a;

    /// Encodes a value.
    fn as_bytes<'a, 'b: 'a>(value: &'a Self::SelfType<'b>) -> Self::AsBytes<'a>
    where
        Self: 'b;

    /// The type's name, stored with the table.
    fn type_name() -> TypeName;
}

/// A type that can be a table key: a value with a total order.
pub trait Key: Value {
    /// Orders two encoded keys.
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering;

    /// Whether [`compare`](Self::compare) is plain byte order. Built-in types
    /// whose encoding preserves order say yes. A type that says no is compared
    /// with its own `compare`, which the database learns when the table is
    /// opened with its type; changes that recovery replays for such a table
    /// before that open are kept apart (readable, and still durable) and
    /// merged into the table at the first flush after it.
    /// The default, `false`, is always correct.
    fn order_is_bytewise() -> bool {
        false
    }

    /// redb's hook for a shorter key to store in branch nodes: an encoding
    /// `s` with `left <= s < right`. REQUIRES: `left < right`. The default
    /// returns `left`. sluicedb's branch nodes store whole keys and never
    /// call it; it exists so that types written for redb, which may
    /// override it, compile unchanged.
    fn separator<'a>(left: &'a [u8], right: &'a [u8]) -> Cow<'a, [u8]> {
        let _ = right;
        Cow::Borrowed(left)
    }
}

/// A value whose stored bytes can be written in place, through
/// [`Table::insert_reserve`](crate::Table::insert_reserve), as redb's.
pub trait MutInPlaceValue: Value {
    /// The type the reserved bytes are written as (`[u8]` for `&[u8]`).
    type BaseRefType: Debug + ?Sized;

    /// Sets up freshly reserved bytes (zeroed before this is called).
    fn initialize(data: &mut [u8]);

    /// The reserved bytes as the type they are written as.
    fn from_bytes_mut(data: &mut [u8]) -> &mut Self::BaseRefType;
}
