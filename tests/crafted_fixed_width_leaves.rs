//! Format version 5: a fixed-width leaf whose header
//! fields are crafted (count, extra-page span, key width, value width,
//! level), its checksum resealed, must give an error or a documented
//! recovery through every read (get, both range directions, first/last,
//! len, check_integrity), a write and a checkpoint: never a panic
//! (BRIEF section 4). tests/defect_crafted_pages.rs covers one case (key
//! width 9 -> 8, then a write); this sweeps every header field of the
//! layout over edge values, for the first and the last leaf, through
//! every read.

use std::path::Path;

use sluicedb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata};

mod common;
use common::pages::{NUMS, PAGE, catalog_root, make, no_panic, reseal, u16_at, u64_at};

fn data_root(img: &[u8]) -> usize {
    let p = catalog_root(img);
    let page = &img[p * PAGE..(p + 1) * PAGE];
    for i in 0..u16_at(page, 10) {
        let at = u16_at(page, 24 + 2 * i);
        let key_len = u16_at(page, at);
        if key_len == 8 {
            return u64_at(page, at + 4 + key_len) as usize;
        }
    }
    panic!("no data tree in the catalog");
}

/// The data tree's leaves (the root is a branch over leaves).
fn leaves(img: &[u8]) -> Vec<usize> {
    let root = data_root(img);
    let page = &img[root * PAGE..(root + 1) * PAGE];
    assert_eq!(page[8], 2, "the root is a branch");
    assert_eq!(page[9], 1, "over leaves");
    (0..u16_at(page, 10))
        .map(|i| u64_at(page, u16_at(page, 24 + 2 * i)) as usize)
        .collect()
}

/// Every read, then a write and a checkpoint, then the integrity check;
/// the errors met, as text (a poisoned database names the panic).
fn exercise(path: &Path) -> Vec<String> {
    let mut seen = Vec::new();
    let s = |e: &dyn std::fmt::Display| e.to_string();
    let mut note = |r: Result<(), String>| {
        if let Err(e) = r {
            seen.push(e);
        }
    };
    let db = match Database::open(path) {
        Ok(db) => db,
        Err(e) => return vec![s(&e)],
    };
    note((|| {
        let r = db.begin_read().map_err(|e| s(&e))?;
        let t = r.open_table(NUMS).map_err(|e| s(&e))?;
        for k in [0u64, 1, 7, 33, 100, 299, 300, 420, 598, 599, 600, u64::MAX] {
            let _ = t.get(k).map_err(|e| s(&e))?.map(|v| v.value());
        }
        Ok(())
    })());
    note((|| {
        let r = db.begin_read().map_err(|e| s(&e))?;
        let t = r.open_table(NUMS).map_err(|e| s(&e))?;
        for e in t.iter().map_err(|e| s(&e))? {
            let (k, v) = e.map_err(|e| s(&e))?;
            let _ = (k.value(), v.value());
        }
        Ok(())
    })());
    note((|| {
        let r = db.begin_read().map_err(|e| s(&e))?;
        let t = r.open_table(NUMS).map_err(|e| s(&e))?;
        for e in t.iter().map_err(|e| s(&e))?.rev() {
            let (k, v) = e.map_err(|e| s(&e))?;
            let _ = (k.value(), v.value());
        }
        for e in t.range(250u64..350).map_err(|e| s(&e))?.rev() {
            let _ = e.map_err(|e| s(&e))?;
        }
        let _ = t.first().map_err(|e| s(&e))?;
        let _ = t.last().map_err(|e| s(&e))?;
        let _ = t.len().map_err(|e| s(&e))?;
        Ok(())
    })());
    note((|| {
        let txn = db.begin_write().map_err(|e| s(&e))?;
        {
            let mut t = txn.open_table(NUMS).map_err(|e| s(&e))?;
            for i in (0..620u64).step_by(5) {
                t.insert(i, 1).map_err(|e| s(&e))?;
            }
            t.remove(3u64).map_err(|e| s(&e))?;
        }
        txn.commit().map_err(|e| s(&e))?;
        db.checkpoint().map_err(|e| s(&e))?;
        Ok(())
    })());
    let mut db = db;
    note(db.check_integrity().map(drop).map_err(|e| s(&e)));
    drop(db);
    seen
}

/// Header fields of a node page: (offset, width in bytes).
const FIELDS: [(&str, usize, usize); 5] = [
    ("level", 9, 1),
    ("count", 10, 2),
    ("extra pages", 12, 2),
    ("key width + 1", 14, 2),
    ("value width", 24, 2),
];

#[test]
fn crafted_fixed_width_leaf_headers_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let base = make(&dir.path().join("base"));
    let all = leaves(&base);
    let targets = [all[0], all[all.len() / 2], *all.last().unwrap()];
    for &p in &targets {
        assert_ne!(u16_at(&base, p * PAGE + 14), 0, "page {p} is a fixed-width leaf");
    }
    let mut failures = Vec::new();
    let mut case = 0;
    for &p in &targets {
        for (name, at, width) in FIELDS {
            let orig = if width == 1 {
                base[p * PAGE + at] as usize
            } else {
                u16_at(&base, p * PAGE + at)
            };
            let max = if width == 1 { 0xFF } else { 0xFFFF };
            let mut values = vec![
                0,
                1,
                2,
                3,
                7,
                8,
                9,
                10,
                16,
                17,
                0x7F,
                0x80,
                0x100,
                0x1000,
                0x4000,
                0x8000,
                max - 1,
                max,
            ];
            values.extend([orig.wrapping_sub(1), orig + 1, orig * 2, orig.saturating_sub(orig / 2)]);
            values.retain(|&v| v <= max && v != orig);
            values.sort_unstable();
            values.dedup();
            for v in values {
                case += 1;
                let mut img = base.clone();
                let off = p * PAGE + at;
                if width == 1 {
                    img[off] = v as u8;
                } else {
                    img[off..off + 2].copy_from_slice(&(v as u16).to_le_bytes());
                }
                reseal(&mut img, p);
                let path = dir.path().join(format!("case{case}"));
                std::fs::write(&path, &img).unwrap();
                let outcome = no_panic(|| exercise(&path));
                let text = format!("{outcome:?}");
                if std::env::var("SWEEP_SHOW").is_ok() {
                    eprintln!("CASE page {p} {name} {orig} -> {v}: {text}");
                }
                if outcome.is_err() || text.contains("panicked") || text.contains("panic") {
                    failures.push(format!("page {p} {name} {orig} -> {v}: {text}"));
                }
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::remove_dir_all(dir.path().join(format!("case{case}-wal")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {case} crafted headers panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
