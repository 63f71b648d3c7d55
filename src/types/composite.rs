//! `Value` and `Key` for `Option<T>`, `Vec<T>`, `[T; N]` and tuples.
//!
//! A composite encodes its elements one after another. An element of fixed
//! width is stored as is; a variable-width element that is not the last of a
//! tuple is preceded by its length (u32, little-endian); the last element of a
//! tuple runs to the end. Composites whose elements are all fixed-width and
//! order-preserving (and a tuple's last element order-preserving) are
//! order-preserving themselves.
//!
//! One exception: a `Vec<T>` whose `T` is zero-width (`()`, `[(); N]`, ...)
//! would encode to nothing whatever its length, so it stores its length
//! instead, as a u64 big-endian. Its elements all encode alike and so compare
//! equal; its order is its length's, which that encoding's byte order is.

use std::cmp::Ordering;

use super::traits::{Key, TypeName, Value};

/// Splits one element of type `T` off the front of `data`. Never panics: a
/// damaged length yields a short element.
fn split_element<T: Value>(data: &[u8]) -> (&[u8], &[u8]) {
    match T::fixed_width() {
        Some(width) => data.split_at(width.min(data.len())),
        None => {
            let Some((len, rest)) = data.split_first_chunk::<4>() else {
                return (data, &[]);
            };
            let len = (u32::from_le_bytes(*len) as usize).min(rest.len());
            rest.split_at(len)
        }
    }
}

/// Appends one element of type `T` (length-prefixed if variable-width).
fn push_element<T: Value>(out: &mut Vec<u8>, bytes: &[u8]) {
    if T::fixed_width().is_none() {
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(bytes);
}

impl<T: Value> Value for Option<T> {
    type SelfType<'a>
        = Option<T::SelfType<'a>>
    where
        Self: 'a;
    type AsBytes<'a>
        = Vec<u8>
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        T::fixed_width().map(|w| w + 1)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Self::SelfType<'a>
    where
        Self: 'a,
    {
        match data.split_first() {
            Some((1, rest)) => Some(T::from_bytes(rest)),
            _ => None,
        }
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Self::SelfType<'b>) -> Vec<u8>
    where
        Self: 'b,
    {
        match value {
            None => {
                let mut out = vec![0u8];
                out.resize(1 + T::fixed_width().unwrap_or(0), 0);
                out
            }
            Some(v) => {
                let mut out = vec![1u8];
                out.extend_from_slice(T::as_bytes(v).as_ref());
                out
            }
        }
    }

    fn type_name() -> TypeName {
        TypeName::new(&format!("Option<{}>", T::type_name().name()))
    }
}

impl<T: Key> Key for Option<T> {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        match (data1.split_first(), data2.split_first()) {
            (Some((1, a)), Some((1, b))) => T::compare(a, b),
            (Some((1, _)), _) => Ordering::Greater,
            (_, Some((1, _))) => Ordering::Less,
            _ => Ordering::Equal,
        }
    }

    fn order_is_bytewise() -> bool {
        T::order_is_bytewise()
    }
}

/// Encodes the elements of a `Vec<T>` or `[T; N]` one after another.
fn encode_sequence<'a, 'b: 'a, T: Value + 'b>(values: &'a [T::SelfType<'b>]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        push_element::<T>(&mut out, T::as_bytes(v).as_ref());
    }
    out
}

/// The elements of an encoded `[T; N]`, or of a `Vec<T>` whose `T` has
/// width (see [`ZeroWidthCount`] for the others).
fn split_all<T: Value>(mut data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    while !data.is_empty() {
        let (part, rest) = split_element::<T>(data);
        // No progress: `T` is zero-width (its elements stored nothing) or the
        // bytes are damaged; either way there is no further element here.
        if rest.len() == data.len() {
            break;
        }
        parts.push(part);
        data = rest;
    }
    parts
}

/// The encoding of a `Vec` of zero-width elements: their count.
///
/// Invariant: used exactly when `T::fixed_width() == Some(0)`, by
/// `Vec::{as_bytes, from_bytes, compare, order_is_bytewise}` alike.
struct ZeroWidthCount;

impl ZeroWidthCount {
    fn applies<T: Value>() -> bool {
        T::fixed_width() == Some(0)
    }

    /// u64 big-endian, so that byte order is count order.
    fn encode(len: usize) -> Vec<u8> {
        (len as u64).to_be_bytes().to_vec()
    }

    /// The stored count; damaged or missing bytes read as 0, never a panic.
    fn decode(data: &[u8]) -> usize {
        data.first_chunk::<8>()
            .map_or(0, |b| usize::try_from(u64::from_be_bytes(*b)).unwrap_or(usize::MAX))
    }
}

fn compare_sequences<T: Key>(a: &[u8], b: &[u8]) -> Ordering {
    let (pa, pb) = (split_all::<T>(a), split_all::<T>(b));
    for (x, y) in pa.iter().zip(&pb) {
        match T::compare(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    pa.len().cmp(&pb.len())
}

impl<T: Value> Value for Vec<T> {
    type SelfType<'a>
        = Vec<T::SelfType<'a>>
    where
        Self: 'a;
    type AsBytes<'a>
        = Vec<u8>
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        None
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Self::SelfType<'a>
    where
        Self: 'a,
    {
        if ZeroWidthCount::applies::<T>() {
            let count = ZeroWidthCount::decode(data);
            return std::iter::repeat_with(|| T::from_bytes(&[])).take(count).collect();
        }
        split_all::<T>(data).into_iter().map(T::from_bytes).collect()
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Self::SelfType<'b>) -> Vec<u8>
    where
        Self: 'b,
    {
        if ZeroWidthCount::applies::<T>() {
            return ZeroWidthCount::encode(value.len());
        }
        encode_sequence::<T>(value)
    }

    fn type_name() -> TypeName {
        TypeName::new(&format!("Vec<{}>", T::type_name().name()))
    }
}

impl<T: Key> Key for Vec<T> {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        if ZeroWidthCount::applies::<T>() {
            // Zero-width elements all encode alike, so they compare equal and
            // only the lengths differ.
            return ZeroWidthCount::decode(data1).cmp(&ZeroWidthCount::decode(data2));
        }
        compare_sequences::<T>(data1, data2)
    }

    fn order_is_bytewise() -> bool {
        match T::fixed_width() {
            // The count, big-endian.
            Some(0) => true,
            // Elements back to back: byte order is element-wise order, a
            // prefix first, exactly when `T`'s byte order is its order.
            Some(_) => T::order_is_bytewise(),
            // Little-endian length prefixes do not sort.
            None => false,
        }
    }
}

impl<T: Value, const N: usize> Value for [T; N] {
    type SelfType<'a>
        = [T::SelfType<'a>; N]
    where
        Self: 'a;
    type AsBytes<'a>
        = Vec<u8>
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        T::fixed_width().map(|w| w * N)
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Self::SelfType<'a>
    where
        Self: 'a,
    {
        let mut rest = data;
        std::array::from_fn(|_| {
            let (part, tail) = split_element::<T>(rest);
            rest = tail;
            T::from_bytes(part)
        })
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Self::SelfType<'b>) -> Vec<u8>
    where
        Self: 'b,
    {
        encode_sequence::<T>(value)
    }

    fn type_name() -> TypeName {
        TypeName::new(&format!("[{};{N}]", T::type_name().name()))
    }
}

impl<T: Key, const N: usize> Key for [T; N] {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        compare_sequences::<T>(data1, data2)
    }

    fn order_is_bytewise() -> bool {
        T::fixed_width().is_some() && T::order_is_bytewise()
    }
}

impl<A: Value> Value for (A,) {
    type SelfType<'a>
        = (A::SelfType<'a>,)
    where
        Self: 'a;
    type AsBytes<'a>
        = Vec<u8>
    where
        Self: 'a;

    fn fixed_width() -> Option<usize> {
        A::fixed_width()
    }

    fn from_bytes<'a>(data: &'a [u8]) -> Self::SelfType<'a>
    where
        Self: 'a,
    {
        (A::from_bytes(data),)
    }

    fn as_bytes<'a, 'b: 'a>(value: &'a Self::SelfType<'b>) -> Vec<u8>
    where
        Self: 'b,
    {
        A::as_bytes(&value.0).as_ref().to_vec()
    }

    fn type_name() -> TypeName {
        TypeName::new(&format!("({},)", A::type_name().name()))
    }
}

impl<A: Key> Key for (A,) {
    fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
        A::compare(data1, data2)
    }

    fn order_is_bytewise() -> bool {
        A::order_is_bytewise()
    }
}

macro_rules! tuple {
    ($($t:ident $i:tt),+ ; $last:ident $li:tt) => {
        impl<$($t: Value,)+ $last: Value> Value for ($($t,)+ $last) {
            type SelfType<'a> = ($($t::SelfType<'a>,)+ $last::SelfType<'a>) where Self: 'a;
            type AsBytes<'a> = Vec<u8> where Self: 'a;

            fn fixed_width() -> Option<usize> {
                Some(0 $(+ $t::fixed_width()?)+ + $last::fixed_width()?)
            }

            fn from_bytes<'a>(data: &'a [u8]) -> Self::SelfType<'a> where Self: 'a {
                let mut rest = data;
                ($({
                    let (part, tail) = split_element::<$t>(rest);
                    rest = tail;
                    $t::from_bytes(part)
                },)+ $last::from_bytes(rest))
            }

            fn as_bytes<'a, 'b: 'a>(value: &'a Self::SelfType<'b>) -> Vec<u8> where Self: 'b {
                let mut out = Vec::new();
                $(push_element::<$t>(&mut out, $t::as_bytes(&value.$i).as_ref());)+
                out.extend_from_slice($last::as_bytes(&value.$li).as_ref());
                out
            }

            fn type_name() -> TypeName {
                let names = [$($t::type_name().name().to_string(),)+ $last::type_name().name().to_string()];
                TypeName::new(&format!("({})", names.join(",")))
            }
        }

        impl<$($t: Key,)+ $last: Key> Key for ($($t,)+ $last) {
            fn compare(data1: &[u8], data2: &[u8]) -> Ordering {
                let (mut a, mut b) = (data1, data2);
                $(
                    let (pa, ta) = split_element::<$t>(a);
                    let (pb, tb) = split_element::<$t>(b);
                    match $t::compare(pa, pb) {
                        Ordering::Equal => {}
                        other => return other,
                    }
                    a = ta;
                    b = tb;
                )+
                $last::compare(a, b)
            }

            fn order_is_bytewise() -> bool {
                true $(&& $t::fixed_width().is_some() && $t::order_is_bytewise())+ && $last::order_is_bytewise()
            }
        }
    };
}

tuple!(A 0; B 1);
tuple!(A 0, B 1; C 2);
tuple!(A 0, B 1, C 2; D 3);
tuple!(A 0, B 1, C 2, D 3; E 4);
tuple!(A 0, B 1, C 2, D 3, E 4; F 5);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5; G 6);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6; H 7);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7; I 8);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8; J 9);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9; K 10);
tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10; L 11);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_order_element_by_element() {
        type T = (&'static str, u32);
        let values: [(&str, u32); 4] = [("a", 9), ("ab", 1), ("b", 0), ("b", 7)];
        for pair in values.windows(2) {
            let (a, b) = (T::as_bytes(&pair[0]), T::as_bytes(&pair[1]));
            assert_eq!(T::compare(&a, &b), Ordering::Less, "{pair:?}");
            assert_eq!(T::from_bytes(&a), pair[0]);
        }
        assert!(!T::order_is_bytewise(), "a variable-width element before the last");
        assert!(<(u32, &str)>::order_is_bytewise());
        assert_eq!(<(u32, &str)>::type_name().name(), "(u32,&str)");
    }

    #[test]
    fn options_vectors_and_arrays_round_trip() {
        let some = <Option<u16>>::as_bytes(&Some(5));
        let none = <Option<u16>>::as_bytes(&None);
        assert_eq!(<Option<u16>>::from_bytes(&some), Some(5));
        assert_eq!(<Option<u16>>::compare(&none, &some), Ordering::Less);
        let v = <Vec<&str>>::as_bytes(&vec!["x", "", "yz"]);
        assert_eq!(<Vec<&str>>::from_bytes(&v), vec!["x", "", "yz"]);
        let arr = <[u8; 3]>::as_bytes(&[1, 2, 3]);
        assert_eq!(<[u8; 3]>::from_bytes(&arr), [1, 2, 3]);
        assert_eq!(
            <Vec<u64>>::compare(&<Vec<u64>>::as_bytes(&vec![1]), &<Vec<u64>>::as_bytes(&vec![1, 0])),
            Ordering::Less
        );
    }
}
