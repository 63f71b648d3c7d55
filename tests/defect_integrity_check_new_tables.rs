//! Suspected defect: `Engine::check_integrity` took the key orders from the
//! state's tree snapshot but checked the tree writer's newer catalog. A
//! table with a custom order created and flushed in between was checked in
//! byte order and reported as corrupt.
//!
//! One thread creates tables ordered numerically (an order byte order
//! disagrees with) and checkpoints each; another runs the integrity check in
//! a loop. It must never report damage.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::engine::{Disk, small_options};
use common::{key, numeric};

const TABLES: u16 = 150;

#[test]
fn integrity_checks_racing_new_custom_order_tables_report_no_damage() {
    let db = Arc::new(Disk::new().open(small_options()));
    let done = Arc::new(AtomicBool::new(false));
    let checker = {
        let (db, done) = (db.clone(), done.clone());
        std::thread::spawn(move || {
            let mut checks = 0u64;
            while !done.load(Ordering::Acquire) {
                if let Err(e) = db.check_integrity() {
                    panic!("integrity check {checks} reported damage: {e}");
                }
                checks += 1;
            }
            checks
        })
    };
    for n in 0..TABLES {
        let mut w = db.begin_write().unwrap();
        let t = w
            .open_table(format!("numbers {n}").as_bytes(), b"numeric", numeric)
            .unwrap();
        // Keys 200..320: across 256, where numeric and byte order part.
        for i in 200..320u16 {
            w.insert(t, &key(i), b"value").unwrap();
        }
        w.commit().unwrap();
        db.checkpoint().unwrap();
    }
    done.store(true, Ordering::Release);
    let checks = checker.join().unwrap();
    assert!(checks > 0);
    db.check_integrity().unwrap();
}
