//! Key and value types redb 4.6 implements that sluicedb lacked (issue 14,
//! item 2): `NonZero*` keys and values ordered as the integer they wrap,
//! `Option<NonZero*>`, and `f32`/`f64` values, alone and inside composites,
//! read back after a reopen (which replays them from the WAL) and after a
//! checkpoint (from the tree). Also `Key::separator`'s default.

use std::num::{NonZeroI8, NonZeroI32, NonZeroI128, NonZeroU8, NonZeroU16, NonZeroU32, NonZeroU64, NonZeroU128};

use proptest::prelude::*;
use sluicedb::{Database, Key, ReadableDatabase, ReadableTable, TableDefinition, Value};

const NZ: TableDefinition<NonZeroI32, NonZeroU64> = TableDefinition::new("nz");
const OPT: TableDefinition<Option<NonZeroI32>, Option<NonZeroU32>> = TableDefinition::new("opt");
const FLOATS: TableDefinition<u8, (f32, f64)> = TableDefinition::new("floats");
const ARRAYS: TableDefinition<[&[u8]; 2], [f32; 2]> = TableDefinition::new("arrays");

#[test]
fn nonzero_option_and_float_tables_survive_reopen_and_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let db = Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(NZ).unwrap();
            for k in [7, -1, i32::MAX, i32::MIN, -300] {
                let k = NonZeroI32::new(k).unwrap();
                t.insert(k, NonZeroU64::from(k.unsigned_abs())).unwrap();
            }
            let mut t = txn.open_table(OPT).unwrap();
            t.insert(NonZeroI32::new(3), None).unwrap();
            t.insert(None, NonZeroU32::new(u32::MAX)).unwrap();
            t.insert(NonZeroI32::new(i32::MIN), NonZeroU32::new(1)).unwrap();
            t.insert(NonZeroI32::new(-9), None).unwrap();
            let mut t = txn.open_table(FLOATS).unwrap();
            t.insert(0, (0.3f32, -1.5e300f64)).unwrap();
            t.insert(1, (f32::NAN, f64::INFINITY)).unwrap();
            let mut t = txn.open_table(ARRAYS).unwrap();
            t.insert([b"a".as_slice(), b"bc".as_slice()], [1.25f32, -0.0]).unwrap();
        }
        txn.commit().unwrap();
    }
    for checkpoint in [false, true] {
        let db = Database::open(&path).unwrap();
        if checkpoint {
            db.checkpoint().unwrap();
        }
        let read = db.begin_read().unwrap();
        let t = read.open_table(NZ).unwrap();
        assert_eq!(
            t.get(NonZeroI32::new(-300).unwrap()).unwrap().unwrap().value().get(),
            300
        );
        let keys: Vec<i32> = t.iter().unwrap().map(|e| e.unwrap().0.value().get()).collect();
        assert_eq!(keys, [i32::MIN, -300, -1, 7, i32::MAX]);

        let t = read.open_table(OPT).unwrap();
        assert_eq!(t.get(None).unwrap().unwrap().value(), NonZeroU32::new(u32::MAX));
        assert_eq!(t.get(NonZeroI32::new(3)).unwrap().unwrap().value(), None);
        let keys: Vec<Option<i32>> = t
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value().map(NonZeroI32::get))
            .collect();
        assert_eq!(keys, [None, Some(i32::MIN), Some(-9), Some(3)]);

        let t = read.open_table(FLOATS).unwrap();
        assert_eq!(t.get(0).unwrap().unwrap().value(), (0.3f32, -1.5e300f64));
        let (nan, inf) = t.get(1).unwrap().unwrap().value();
        assert!(nan.is_nan() && inf == f64::INFINITY);

        let t = read.open_table(ARRAYS).unwrap();
        let v = t.get([b"a".as_slice(), b"bc".as_slice()]).unwrap().unwrap().value();
        assert_eq!(v[0], 1.25);
        assert!(v[1] == 0.0 && v[1].is_sign_negative());
    }
}

/// Checks `K`'s encoding round-trips and orders as the Rust type does.
fn same_order<K: Key + for<'a> Value<SelfType<'a> = K> + Ord + Copy + std::fmt::Debug>(a: K, b: K) {
    let (ea, eb) = (K::as_bytes(&a), K::as_bytes(&b));
    assert_eq!(K::from_bytes(ea.as_ref()), a);
    assert_eq!(K::compare(ea.as_ref(), eb.as_ref()), a.cmp(&b), "{a:?} vs {b:?}");
    if K::order_is_bytewise() {
        assert_eq!(ea.as_ref().cmp(eb.as_ref()), a.cmp(&b), "{a:?} vs {b:?}");
    }
    if a < b {
        // The default separator is the left key: an encoding in range.
        let s = K::separator(ea.as_ref(), eb.as_ref());
        assert_eq!(K::as_bytes(&K::from_bytes(&s)).as_ref(), s.as_ref());
    }
}

proptest! {
    #[test]
    fn nonzero_encodings_round_trip_and_order_as_the_integer(
        a in any::<NonZeroI32>(), b in any::<NonZeroI32>(),
        c in any::<NonZeroU8>(), d in any::<NonZeroU8>(),
        e in any::<NonZeroI128>(), f in any::<NonZeroI128>(),
        g in any::<NonZeroU128>(), h in any::<NonZeroU128>(),
        i in any::<NonZeroI8>(), j in any::<NonZeroI8>(),
        k in any::<NonZeroU16>(), l in any::<NonZeroU16>(),
    ) {
        same_order(a, b);
        same_order(c, d);
        same_order(e, f);
        same_order(g, h);
        same_order(i, j);
        same_order(k, l);
        same_order(Some(a), None);
        same_order(Some(a), Some(b));
    }

    #[test]
    fn float_values_round_trip_bit_for_bit(x in any::<f32>(), y in any::<f64>()) {
        prop_assert_eq!(<f32 as Value>::from_bytes(f32::as_bytes(&x).as_ref()).to_bits(), x.to_bits());
        prop_assert_eq!(<f64 as Value>::from_bytes(f64::as_bytes(&y).as_ref()).to_bits(), y.to_bits());
    }
}

#[test]
fn damaged_nonzero_bytes_decode_without_panicking() {
    // Zero is never an encoding of a NonZero; damaged bytes read as MIN.
    let zero = <i32 as Value>::as_bytes(&0);
    assert_eq!(NonZeroI32::from_bytes(zero.as_ref()), NonZeroI32::MIN);
    assert_eq!(NonZeroU64::from_bytes(&[]), NonZeroU64::MIN);
    assert_eq!(
        <f64 as Value>::from_bytes(&[1]),
        f64::from_le_bytes([1, 0, 0, 0, 0, 0, 0, 0])
    );
}
