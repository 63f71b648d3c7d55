//! Criterion micro-benchmarks of the B+tree's hot paths at the BRIEF's scale:
//! 1M keys of 16 bytes with 100-byte values, in random order.
//!
//! Run: `cargo bench -p sluicedb-bench --bench tree`. The setup prints the
//! tree height, file size and initial load rate; criterion prints the rest.
//! `SLUICE_BENCH_KEYS` overrides the key count.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::os::unix::fs::FileExt;
use std::time::Instant;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::FileBackend;
use sluicedb_bench::{Rng, key, value};

const TREE: &[u8] = b"bench";
/// Keys per bulk apply: about what a 16 MiB memtable flush carries.
const BATCH: u64 = 100_000;

fn key_count() -> u64 {
    std::env::var("SLUICE_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// Sorted `(key, value)` pairs for indexes `ids`.
fn sorted_batch(ids: impl Iterator<Item = u64>) -> Vec<([u8; 16], [u8; 100])> {
    let mut batch: Vec<_> = ids.map(|i| (key(i), value(i))).collect();
    batch.sort_unstable_by_key(|entry| entry.0);
    batch
}

fn apply(store: &TreeStore, batch: &[([u8; 16], [u8; 100])], durable: bool) {
    let ops: Vec<(&[u8], Option<&[u8]>)> = batch.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
    let mut w = store.writer().unwrap();
    w.apply(TREE, bytewise, &ops).unwrap();
    if durable {
        w.commit(0).unwrap();
    } else {
        w.non_durable_commit().unwrap();
    }
}

fn load(dir: &std::path::Path, n: u64) -> (TreeStore, std::path::PathBuf) {
    let path = dir.join("tree.sluice");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    let store = TreeStore::create(FileBackend::new(file), 1, TreeStoreOptions::default()).unwrap();
    let start = Instant::now();
    for first in (0..n).step_by(BATCH as usize) {
        apply(&store, &sorted_batch(first..(first + BATCH).min(n)), true);
    }
    let secs = start.elapsed().as_secs_f64();
    let snap = store.snapshot();
    let info = snap.tree(TREE).unwrap().unwrap();
    eprintln!(
        "tree: {n} keys loaded by {} durable bulk applies of {BATCH} in {secs:.2}s ({:.0} keys/s); height {}; file {} bytes ({:.1} bytes/key)",
        n.div_ceil(BATCH),
        n as f64 / secs,
        store.height(&info).unwrap(),
        std::fs::metadata(&path).unwrap().len(),
        std::fs::metadata(&path).unwrap().len() as f64 / n as f64,
    );
    let report = store.check_integrity(&|_, _| Some(bytewise)).unwrap();
    let (file_pages, free_pages) = store.page_counts();
    eprintln!(
        "tree: {} pages reachable ({:.1} bytes/key live), {file_pages} pages in the file, {free_pages} free",
        report.reachable_pages,
        (report.reachable_pages * 4096) as f64 / n as f64,
    );
    (store, path)
}

fn benches(c: &mut Criterion) {
    let n = key_count();
    let dir = tempfile::tempdir().unwrap();
    let (store, path) = load(dir.path(), n);

    let mut group = c.benchmark_group("tree");
    group.sample_size(10);
    group.throughput(Throughput::Elements(BATCH));
    let mut rng = Rng::new(7);
    group.bench_function("bulk_apply_100k_random_overwrites", |b| {
        b.iter_batched(
            || {
                sorted_batch((0..BATCH).map(|_| rng.next_u64() % n))
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()
            },
            |batch| {
                let batch: Vec<_> = batch.into_iter().collect();
                apply(&store, &batch, false)
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut group = c.benchmark_group("tree");
    group.throughput(Throughput::Elements(1));
    let snap = store.snapshot();
    let info = snap.tree(TREE).unwrap().unwrap();
    let mut rng = Rng::new(11);
    group.bench_function("get_random_hit", |b| {
        b.iter(|| {
            let k = key(rng.next_u64() % n);
            black_box(snap.get(&info, bytewise, &k).unwrap().unwrap());
        })
    });
    let mut rng = Rng::new(12);
    group.bench_function("range_seek_then_10_next", |b| {
        b.iter(|| {
            let k = key(rng.next_u64() % n);
            let iter = snap
                .range(
                    &info,
                    bytewise,
                    std::ops::Bound::Included(&k[..]),
                    std::ops::Bound::Unbounded,
                )
                .unwrap();
            black_box(iter.take(11).count());
        })
    });

    // The page-access choice (design/format.md): what one page costs by
    // `pread` from the OS page cache, against a whole cached lookup above.
    let file = std::fs::File::open(&path).unwrap();
    let pages = std::fs::metadata(&path).unwrap().len() / 4096;
    let mut rng = Rng::new(13);
    let mut buf = vec![0u8; 4096];
    group.bench_function("page_access/pread_4k", |b| {
        b.iter(|| {
            let page = 1 + rng.next_u64() % (pages - 1);
            file.read_exact_at(&mut buf, page * 4096).unwrap();
            black_box(&buf);
        })
    });
    group.finish();
}

criterion_group!(tree, benches);
criterion_main!(tree);
