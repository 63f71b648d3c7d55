//! Criterion micro-benchmarks of the write path's hot pieces: a WAL append
//! (queue only), a no-sync commit (WAL append + memtable insert), and a
//! point read served by the memtable.
//!
//! Run: `cargo bench -p sluicedb-bench --bench pipeline`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluicedb::io::{MemLogDir, MemoryBackend};
use sluicedb::wal::{Journal, JournalOptions};
use sluicedb::{Database, Durability, ReadableDatabase, TableDefinition};
use sluicedb_bench::{Rng, key, value};

const T: TableDefinition<&[u8], &[u8]> = TableDefinition::new("t");

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(1));

    let (journal, _) = Journal::open(MemLogDir::new(), 1, 0, JournalOptions::default(), |_, _| Ok(())).unwrap();
    let record = [5u8; 128];
    group.bench_function("wal_append_128b", |b| {
        b.iter(|| black_box(journal.append(&record).unwrap()))
    });
    drop(journal);

    // A memtable large enough that nothing is flushed during the run.
    let db = Database::builder()
        .set_memtable_size(1 << 30)
        .create_with_backends(MemoryBackend::new(), MemLogDir::new())
        .unwrap();
    let mut i = 0u64;
    group.bench_function("commit_no_sync_single_key", |b| {
        b.iter(|| {
            let mut txn = db.begin_write().unwrap();
            txn.set_durability(Durability::None).unwrap();
            txn.open_table(T)
                .unwrap()
                .insert(key(i).as_slice(), value(i).as_slice())
                .unwrap();
            txn.commit().unwrap();
            i += 1;
        })
    });
    let read = db.begin_read().unwrap();
    let table = read.open_table(T).unwrap();
    let mut rng = Rng::new(3);
    let written = i.max(1);
    group.bench_function("memtable_get", |b| {
        b.iter(|| black_box(table.get(key(rng.next_u64() % written).as_slice()).unwrap().is_some()))
    });
    group.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
