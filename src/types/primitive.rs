//! `Value` and `Key` for integers, `bool`, `char`, `()`, strings and byte
//! slices.
//!
//! Integers are stored big-endian, signed ones with the sign bit flipped, so
//! that byte order is numeric order; `NonZero*` as the integer it wraps.
//! `f32` and `f64` are values only, little-endian.

use std::cmp::Ordering;

use super::traits::{Key, MutInPlaceValue, TypeName, Value};

macro_rules! unsigned {
    ($($t:ty),*) => {$(
        impl Value for $t {
            type SelfType<'a> = $t;
            type AsBytes<'a> = [u8; size_of::<$t>()];

            fn fixed_width() -> Option<usize> {
                Some(size_of::<$t>())
            }

            fn from_bytes<'a>(data: &'a [u8]) -> $t
    where
        Self: 'a,
    {
                let mut bytes = [0u8; size_of::<$t>()];
                let n = bytes.len().min(data.len());
                bytes[..n].copy_from_slice(&data[..n]);
                <$t>::from_be_bytes(bytes)
            }

            fn as_bytes<'a, 'b: 'a>(value: &'a $t) -> [u8; size_of::<$t>()]
    where
        Self: 'b,
    {
                value.to_be_bytes()
            }

            fn type_name() -> TypeName {
                TypeName::new(stringify!($t))
            }
        }

        impl Key for $t {
            fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
                data1.cmp(data2)
            }

            fn order_is_bytewise() -> bool {
                true
            }
        }
    )*};
}

macro_rules! signed {
    ($($t:ty => $u:ty),*) => {$(
        impl Value for $t {
            type SelfType<'a> = $t;
            type AsBytes<'a> = [u8; size_of::<$t>()];

            fn fixed_width() -> Option<usize> {
                Some(size_of::<$t>())
            }

            fn from_bytes<'a>(data: &'a [u8]) -> $t
    where
        Self: 'a,
    {
                (<$u as Value>::from_bytes(data) ^ (1 << (<$u>::BITS - 1))) as $t
            }

            fn as_bytes<'a, 'b: 'a>(value: &'a $t) -> [u8; size_of::<$t>()]
    where
        Self: 'b,
    {
                ((*value as $u) ^ (1 << (<$u>::BITS - 1))).to_be_bytes()
            }

            fn type_name() -> TypeName {
                TypeName::new(stringify!($t))
            }
        }

        impl Key for $t {
            fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
                data1.cmp(data2)
            }

            fn order_is_bytewise() -> bool {
                true
            }
        }
    )*};
}

unsigned!(u8, u16, u32, u64, u128, usize);
signed!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128, isize => usize);

impl Value for bool {
    type SelfType<'a> = bool;
    type AsBytes<'a> = [u8; 1];

    fn fixed_width() -> Option<usize> {
        Some(1)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> bool
    where
        Self: 'a,
    {
        data.first().is_some_and(|&b| b != 0)
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a bool) -> [u8; 1]
    where
        Self: 'b,
    {
        [u8::from(*value)]
    }

    fn type_name() -> TypeName {
        TypeName::new("bool")
    }
}

impl Key for bool {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        data1.cmp(data2)
    }

    fn order_is_bytewise() -> bool {
        true
    }
}

impl Value for char {
    type SelfType<'a> = char;
    type AsBytes<'a> = [u8; 4];

    fn fixed_width() -> Option<usize> {
        Some(4)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> char
    where
        Self: 'a,
    {
        char::from_u32(<u32 as Value>::from_bytes(data)).unwrap_or(char::REPLACEMENT_CHARACTER)
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a char) -> [u8; 4]
    where
        Self: 'b,
    {
        u32::from(*value).to_be_bytes()
    }

    fn type_name() -> TypeName {
        TypeName::new("char")
    }
}

impl Key for char {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        data1.cmp(data2)
    }

    fn order_is_bytewise() -> bool {
        true
    }
}

impl Value for () {
    type SelfType<'a> = ();
    type AsBytes<'a> = [u8; 0];

    fn fixed_width() -> Option<usize> {
        Some(0)
    }

    fn from_bytes<'a>(_: &'a [u8])
    where
        Self: 'a,
    {
    }

    fn as_bytes<'a, 'b: 'a>(_: &'a ()) -> [u8; 0] {
        []
    }

    fn type_name() -> TypeName {
        TypeName::new("()")
    }
}

impl Key for () {
    fn compare(_: &[u8], _: &[u8]) -> Ordering {
        Ordering::Equal
    }

    fn order_is_bytewise() -> bool {
        true
    }
}

/// Stored strings are UTF-8 written by `as_bytes`; a damaged one reads back
/// as U+FFFD rather than panicking.
fn str_from(data: &[u8]) -> &str {
    std::str::from_utf8(data).unwrap_or("\u{FFFD}")
}

impl Value for &str {
    type SelfType<'a>
        = &'a str
    where
        Self: 'a;
    type AsBytes<'a>
        = &'a str
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> &'a str
    where
        Self: 'a,
    {
        str_from(data)
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a &'b str) -> &'a str
    where
        Self: 'b,
    {
        value
    }

    fn type_name() -> TypeName {
        TypeName::new("&str")
    }
}

impl Key for &str {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        data1.cmp(data2)
    }

    fn order_is_bytewise() -> bool {
        true
    }
}

impl Value for String {
    type SelfType<'a> = String;
    type AsBytes<'a> = &'a str;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> String
    where
        Self: 'a,
    {
        str_from(data).to_string()
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a String) -> &'a str
    where
        Self: 'b,
    {
        value.as_str()
    }

    fn type_name() -> TypeName {
        TypeName::new("String")
    }
}

impl Key for String {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        data1.cmp(data2)
    }

    fn order_is_bytewise() -> bool {
        true
    }
}

impl Value for &[u8] {
    type SelfType<'a>
        = &'a [u8]
    where
        Self: 'a;
    type AsBytes<'a>
        = &'a [u8]
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> &'a [u8]
    where
        Self: 'a,
    {
        data
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a &'b [u8]) -> &'a [u8]
    where
        Self: 'b,
    {
        value
    }

    fn type_name() -> TypeName {
        TypeName::new("&[u8]")
    }
}

impl Key for &[u8] {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        data1.cmp(data2)
    }

    fn order_is_bytewise() -> bool {
        true
    }
}

/// A zero-filled array when stored bytes are short (only a damaged file).
static ZEROS: [u8; 4096] = [0; 4096];

impl<const N: usize> Value for &[u8; N] {
    type SelfType<'a>
        = &'a [u8; N]
    where
        Self: 'a;
    type AsBytes<'a>
        = &'a [u8; N]
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        Some(N)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> &'a [u8; N]
    where
        Self: 'a,
    {
        data.get(..N)
            .and_then(|d| <&[u8; N]>::try_from(d).ok())
            .or_else(|| ZEROS.get(..N).and_then(|z| <&[u8; N]>::try_from(z).ok()))
            .unwrap_or_else(|| Box::leak(Box::new([0u8; N])))
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a &'b [u8; N]) -> &'a [u8; N]
    where
        Self: 'b,
    {
        value
    }

    fn type_name() -> TypeName {
        TypeName::new(&format!("[u8;{N}]"))
    }
}

impl<const N: usize> Key for &[u8; N] {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        data1.cmp(data2)
    }

    fn order_is_bytewise() -> bool {
        true
    }
}

impl MutInPlaceValue for &[u8] {
    type BaseRefType = [u8];

    fn initialize(_data: &mut [u8]) {
        // Zeroed bytes are a valid `&[u8]` already.
    }

    fn from_bytes_mut(data: &mut [u8]) -> &mut [u8] {
        data
    }
}

/// `NonZero*` integers, stored and ordered as the integer they wrap (so a
/// key's bytes sort numerically, as that integer's do). `NonZeroUsize` and
/// `NonZeroIsize` are left out, as redb leaves them out: their width varies
/// between platforms.
macro_rules! nonzero {
    ($($t:ident => $prim:ty),*) => {$(
        impl Value for std::num::$t {
            type SelfType<'a> = std::num::$t;
            type AsBytes<'a> = <$prim as Value>::AsBytes<'a>;

            fn fixed_width() -> Option<usize> {
                <$prim as Value>::fixed_width()
            }

            /// Bytes that decode to zero (which `as_bytes` never produces, so
            /// only damaged bytes do) read as the type's `MIN`, never a panic.
            fn from_bytes<'a>(data: &'a [u8]) -> std::num::$t
            where
                Self: 'a,
            {
                std::num::$t::new(<$prim as Value>::from_bytes(data)).unwrap_or(std::num::$t::MIN)
            }

            fn as_bytes<'a, 'b: 'a>(value: &'a std::num::$t) -> Self::AsBytes<'a>
            where
                Self: 'b,
            {
                <$prim as Value>::as_bytes(&value.get())
            }

            fn type_name() -> TypeName {
                TypeName::new(stringify!($t))
            }
        }

        impl Key for std::num::$t {
            fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
                <$prim as Key>::compare(data1, data2)
            }

            fn order_is_bytewise() -> bool {
                <$prim as Key>::order_is_bytewise()
            }
        }
    )*};
}

nonzero!(
    NonZeroU8 => u8, NonZeroU16 => u16, NonZeroU32 => u32, NonZeroU64 => u64, NonZeroU128 => u128,
    NonZeroI8 => i8, NonZeroI16 => i16, NonZeroI32 => i32, NonZeroI64 => i64, NonZeroI128 => i128
);

/// `f32` and `f64`: values only, as in redb (floats have no total order to
/// key a table by). Stored little-endian, as redb stores them.
macro_rules! float {
    ($($t:ty),*) => {$(
        impl Value for $t {
            type SelfType<'a> = $t;
            type AsBytes<'a> = [u8; size_of::<$t>()];

            fn fixed_width() -> Option<usize> {
                Some(size_of::<$t>())
            }

            /// Short (damaged) bytes are zero-padded, never a panic.
            fn from_bytes<'a>(data: &'a [u8]) -> $t
            where
                Self: 'a,
            {
                let mut bytes = [0u8; size_of::<$t>()];
                let n = bytes.len().min(data.len());
                bytes[..n].copy_from_slice(&data[..n]);
                <$t>::from_le_bytes(bytes)
            }

            fn as_bytes<'a, 'b: 'a>(value: &'a $t) -> [u8; size_of::<$t>()]
            where
                Self: 'b,
            {
                value.to_le_bytes()
            }

            fn type_name() -> TypeName {
                TypeName::new(stringify!($t))
            }
        }
    )*};
}

float!(f32, f64);

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip_and_order<T>(values: &[T])
    where
        T: Key + PartialOrd + std::fmt::Debug + Copy + 'static,
        for<'a> T: Value<SelfType<'a> = T>,
    {
        for pair in values.windows(2) {
            let (a, b) = (T::as_bytes(&pair[0]), T::as_bytes(&pair[1]));
            assert_eq!(
                T::compare(a.as_ref(), b.as_ref()),
                pair[0].partial_cmp(&pair[1]).unwrap()
            );
            assert_eq!(T::from_bytes(a.as_ref()), pair[0]);
        }
    }

    #[test]
    fn integer_encodings_sort_numerically() {
        round_trip_and_order::<i64>(&[i64::MIN, -300, -1, 0, 1, 255, 256, i64::MAX]);
        round_trip_and_order::<u32>(&[0, 1, 255, 256, 65_536, u32::MAX]);
        round_trip_and_order::<i8>(&[i8::MIN, -1, 0, 1, i8::MAX]);
        round_trip_and_order::<char>(&['a', 'b', 'é', '中']);
        for pair in ["", "a", "ab", "b"].windows(2) {
            assert_eq!(<&str>::compare(pair[0].as_bytes(), pair[1].as_bytes()), Ordering::Less);
        }
    }
}
