//! The composite encodings (`Option`, `Vec`, `[T; N]`, tuples), nested in
//! each other over zero-width, fixed-width and variable-width elements,
//! against Rust's own order of the same values (which is element-wise and
//! lexicographic, a prefix first, as a key order should be):
//! - `from_bytes(as_bytes(v)) == v` (so distinct values never share a key);
//! - a fixed-width type encodes to exactly its width;
//! - `compare` agrees with `Ord`, and byte order does too whenever
//!   `order_is_bytewise()` claims it.
//!
//! Each base type is checked on its own and inside every composite, at two
//! levels of nesting, including as a tuple's non-last element (where
//! variable-width values are length-prefixed).

use std::cmp::Ordering;
use std::fmt::Debug;

use proptest::prelude::*;
use sluicedb::{Key, Value};

/// A deterministic generator of small values, so nested types can be built
/// generically from one seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A type the test can make random values of.
trait Arb: Sized {
    fn arb(rng: &mut Rng) -> Self;
}

impl Arb for () {
    fn arb(_: &mut Rng) -> Self {}
}

impl Arb for bool {
    fn arb(rng: &mut Rng) -> Self {
        rng.below(2) == 1
    }
}

impl Arb for u8 {
    fn arb(rng: &mut Rng) -> Self {
        [0, 1, 2, 0x7f, 0x80, 0xff][rng.below(6) as usize]
    }
}

impl Arb for u16 {
    fn arb(rng: &mut Rng) -> Self {
        [0, 1, 0xff, 0x100, 0xffff][rng.below(5) as usize]
    }
}

impl Arb for i32 {
    fn arb(rng: &mut Rng) -> Self {
        [i32::MIN, -256, -1, 0, 1, 255, i32::MAX][rng.below(7) as usize]
    }
}

impl Arb for String {
    fn arb(rng: &mut Rng) -> Self {
        let len = rng.below(4);
        (0..len)
            .map(|_| ['\0', 'a', 'b', '\u{ff}'][rng.below(4) as usize])
            .collect()
    }
}

impl<T: Arb> Arb for Option<T> {
    fn arb(rng: &mut Rng) -> Self {
        (rng.below(3) != 0).then(|| T::arb(rng))
    }
}

impl<T: Arb> Arb for Vec<T> {
    fn arb(rng: &mut Rng) -> Self {
        let len = rng.below(4);
        (0..len).map(|_| T::arb(rng)).collect()
    }
}

impl<T: Arb, const N: usize> Arb for [T; N] {
    fn arb(rng: &mut Rng) -> Self {
        std::array::from_fn(|_| T::arb(rng))
    }
}

impl<A: Arb, B: Arb> Arb for (A, B) {
    fn arb(rng: &mut Rng) -> Self {
        (A::arb(rng), B::arb(rng))
    }
}

impl<A: Arb, B: Arb, C: Arb> Arb for (A, B, C) {
    fn arb(rng: &mut Rng) -> Self {
        (A::arb(rng), B::arb(rng), C::arb(rng))
    }
}

/// A key type whose decoded form is the owned value itself.
trait Case: Key + for<'a> Value<SelfType<'a> = Self> + Arb + Ord + Clone + Debug + 'static {}
impl<T: Key + for<'a> Value<SelfType<'a> = T> + Arb + Ord + Clone + Debug + 'static> Case for T {}

/// Checks one type over `n` random values (and every pair of them).
fn check<T: Case>(rng: &mut Rng, n: usize) -> Result<(), String> {
    let name = T::type_name();
    let values: Vec<T> = (0..n).map(|_| T::arb(rng)).collect();
    let encoded: Vec<Vec<u8>> = values.iter().map(|v| T::as_bytes(v).as_ref().to_vec()).collect();
    for (v, e) in values.iter().zip(&encoded) {
        let back = T::from_bytes(e);
        if &back != v {
            return Err(format!("{name}: {v:?} encodes to {e:?}, which reads back as {back:?}"));
        }
        if let Some(w) = T::fixed_width()
            && e.len() != w
        {
            return Err(format!(
                "{name}: fixed width {w}, but {v:?} encodes to {} bytes",
                e.len()
            ));
        }
    }
    for (a, ea) in values.iter().zip(&encoded) {
        for (b, eb) in values.iter().zip(&encoded) {
            let want = a.cmp(b);
            let got = T::compare(ea, eb);
            if got != want {
                return Err(format!("{name}: compare({a:?}, {b:?}) is {got:?}, not {want:?}"));
            }
            if T::order_is_bytewise() && ea.cmp(eb) != want {
                return Err(format!(
                    "{name} claims byte order, but {a:?} -> {ea:?} vs {b:?} -> {eb:?} is {:?}, not {want:?}",
                    ea.cmp(eb)
                ));
            }
        }
    }
    Ok(())
}

/// `T` alone and in every composite position.
fn check_in_composites<T: Case>(rng: &mut Rng) -> Result<(), String> {
    const N: usize = 12;
    check::<T>(rng, N)?;
    check::<Option<T>>(rng, N)?;
    check::<Vec<T>>(rng, N)?;
    check::<[T; 2]>(rng, N)?;
    check::<(T, u8)>(rng, N)?;
    check::<(u8, T)>(rng, N)?;
    check::<(T, String, T)>(rng, N)?;
    check::<Option<Vec<T>>>(rng, N)?;
    check::<Vec<Option<T>>>(rng, N)?;
    check::<Vec<[T; 3]>>(rng, N)?;
    check::<(Vec<T>, T)>(rng, N)?;
    check::<Vec<Vec<T>>>(rng, N)?;
    Ok(())
}

/// Every base type: zero-width, fixed-width and variable-width, and the
/// composites of those that are themselves zero-width or fixed-width.
fn check_all(seed: u64) -> Result<(), String> {
    let rng = &mut Rng(seed | 1);
    check_in_composites::<()>(rng)?;
    check_in_composites::<[(); 3]>(rng)?;
    check_in_composites::<((), ())>(rng)?;
    check_in_composites::<Option<()>>(rng)?;
    check_in_composites::<bool>(rng)?;
    check_in_composites::<u8>(rng)?;
    check_in_composites::<u16>(rng)?;
    check_in_composites::<i32>(rng)?;
    check_in_composites::<(u8, ())>(rng)?;
    check_in_composites::<Option<i32>>(rng)?;
    check_in_composites::<String>(rng)?;
    check_in_composites::<Vec<()>>(rng)?;
    check_in_composites::<Vec<u8>>(rng)?;
    check_in_composites::<Option<String>>(rng)?;
    check_in_composites::<(String, u16)>(rng)?;
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn composite_encodings_round_trip_and_order(seed in any::<u64>()) {
        prop_assert_eq!(check_all(seed), Ok(()));
    }
}

#[test]
fn zero_width_arrays_and_optional_unit() {
    assert_eq!(<[(); 4]>::fixed_width(), Some(0));
    assert_eq!(<[(); 4]>::from_bytes(&[]), [(); 4]);
    assert_eq!(<[(); 4]>::compare(&[], &[]), Ordering::Equal);
    assert_eq!(<Option<()>>::fixed_width(), Some(1));
    let (none, some) = (<Option<()>>::as_bytes(&None), <Option<()>>::as_bytes(&Some(())));
    assert_ne!(none, some);
    assert_eq!(<Option<()>>::from_bytes(&some), Some(()));
    assert_eq!(<Option<()>>::from_bytes(&none), None);
    assert_eq!(<Option<()>>::compare(&none, &some), Ordering::Less);
    assert!(<Vec<()>>::order_is_bytewise(), "the count is stored big-endian");
    assert!(!<Vec<&str>>::order_is_bytewise(), "length prefixes are little-endian");
}
