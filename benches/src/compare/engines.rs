//! The engines under comparison, behind one interface, each configured as
//! its users would configure it for this job. Every setting is here, with
//! the reason, and the report lists them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::{KEY_LEN, VALUE_LEN};

/// A key and value of the standard data set.
pub type Kv = ([u8; KEY_LEN], [u8; VALUE_LEN]);

/// What a workload needs from an engine.
pub trait Engine: Send + Sync {
    /// Writes `kvs` as one transaction; durable (fsynced before returning) or not.
    fn write(&self, kvs: &[Kv], durable: bool);
    /// [`write`](Self::write) through the engine's write that does not
    /// return the value it replaces, where that is another call (sluicedb's
    /// `put`); RocksDB's and LMDB's writes are blind already, and redb has
    /// no blind write, so theirs is `write`.
    fn write_blind(&self, kvs: &[Kv], durable: bool) {
        self.write(kvs, durable);
    }
    /// Deletes `keys` as one durable transaction.
    fn remove(&self, keys: &[[u8; KEY_LEN]]);
    /// Commits one key without waiting for its sync; returns a handle that
    /// waits for it. Only engines with pipelined commits have this.
    fn write_pipelined(&self, _kv: &Kv) -> Option<Box<dyn FnOnce() + Send>> {
        None
    }
    /// A reader: a closure that looks a key up, and one that scans `n`
    /// entries from a key; each may hold a snapshot for its lifetime.
    fn reader(&self) -> Box<dyn Reader + '_>;
    /// Moves recent writes out of the write buffer (RocksDB's memtable flush,
    /// sluicedb's checkpoint); a no-op where there is none.
    fn flush(&self);
    /// Loads a whole data set as one transaction, durable when it returns.
    /// An iterator, so a caller may generate the data as it goes (the
    /// peak-RSS row then measures the engine, not a copy of its input).
    fn bulk_load(&self, kvs: &mut dyn Iterator<Item = Kv>);
    /// The exact number of entries, as this engine's users get it.
    fn exact_len(&self) -> u64;
    /// Removes the `n` smallest entries one at a time (take the first, delete
    /// it), in one durable transaction; returns how many it removed.
    fn pop_first(&self, n: usize) -> usize;
    /// Keeps only the entries whose key `keep` selects, in one durable
    /// transaction; returns the entries visited.
    fn retain(&self, keep: fn(&[u8]) -> bool) -> usize;
    /// Removes and hands back (copied out) the entries whose key `take`
    /// selects, in one durable transaction; returns `(visited, taken)`.
    fn extract_if(&self, take: fn(&[u8]) -> bool) -> (usize, usize);
    /// Gives free space back as this engine's users would (sluicedb's and
    /// redb's `compact`, RocksDB's `compact_range` over every key); returns
    /// false where there is no compaction in place (LMDB's is a copy to a
    /// new file, `mdb_env_copy2` with `MDB_CP_COMPACT`).
    fn compact(&mut self) -> bool {
        false
    }
    /// What the engine's write buffer holds right now, and what its
    /// background work has done so far, for the log (the "memtable
    /// populated" rows read through the buffer, and how full it is when
    /// they start moves their numbers; a flush or checkpoint during a write
    /// row moves that row's); `None` where there is none.
    fn write_buffer_note(&self) -> Option<String> {
        None
    }
}

/// Reads from one snapshot (or none, for RocksDB's plain reads).
pub trait Reader {
    /// Whether `key` is present.
    fn get(&self, key: &[u8; KEY_LEN]) -> bool;
    /// Entries visited by a seek to `start` and up to `n - 1` nexts.
    fn scan(&self, start: &[u8; KEY_LEN], n: usize) -> usize;
    /// Entries in the whole table.
    fn full_scan(&self) -> usize;
}

/// The settings every engine shares, from the command line.
#[derive(Clone, Copy, Debug)]
pub struct Shared {
    /// Bytes of cache: sluicedb's page cache, RocksDB's block cache, redb's cache.
    pub cache_bytes: usize,
}

/// Opens engine `name` in `dir`.
pub fn open(name: &str, dir: &Path, shared: Shared) -> Arc<dyn Engine> {
    match name {
        "sluicedb" => Arc::new(Sluice::open(dir, shared)),
        "rocksdb" => Arc::new(Rocks::open(dir, shared, false)),
        "rocksdb-lz4" => Arc::new(Rocks::open(dir, shared, true)),
        "redb" => Arc::new(Redb::open(dir, shared)),
        "lmdb" => Arc::new(Lmdb::open(dir)),
        other => panic!("unknown engine {other}"),
    }
}

/// Every setting of every engine, for the report.
pub fn settings(shared: Shared) -> Vec<(&'static str, String)> {
    let cache = format!("{} MiB", shared.cache_bytes >> 20);
    vec![
        (
            "sluicedb",
            format!(
                "Builder defaults; page cache {cache}; one table; Durability::Immediate for durable rows, Durability::None for no-sync rows; commit_pipelined for the pipelined row"
            ),
        ),
        (
            "rocksdb",
            format!(
                "one WriteBatch per transaction; one-transaction loads: WriteBatches of 1000 keys, sync only on the last (RocksDB's bulk load without SST ingestion; not atomic, unlike the others); len(): an exact count with an iterator (the estimate-num-keys property is not exact); pop_first/retain/extract_if: one iterator, deletes gathered into one WriteBatch written with sync; WriteOptions::set_sync(true) for durable rows, false for no-sync rows; set_enable_pipelined_write(true); bloom filter 10 bits/key; LRU block cache {cache}; 64 MiB write buffer; no compression; increase_parallelism(cores)"
            ),
        ),
        (
            "rocksdb-lz4",
            "as rocksdb, with LZ4 compression: the compressed space row only".to_string(),
        ),
        (
            "redb",
            format!(
                "cache {cache}; one table; Durability::Immediate for durable rows, Durability::None for no-sync rows"
            ),
        ),
        (
            "lmdb",
            format!(
                "heed {HEED}; map size {} GiB; MDB_NOTLS (read_txn_without_tls); one unnamed database; default sync for durable rows, MDB_NOSYNC (mdb_env_set_flags inside the write transaction) for no-sync rows; no cache setting (LMDB reads through the OS page cache); len(): mdb_stat (exact); pop_first: first + del per pop",
                LMDB_MAP_SIZE >> 30
            ),
        ),
    ]
}

/// Disk space of every file under `dir`: `(allocated, apparent)`, where
/// allocated counts the blocks the files occupy (as `du` does) and apparent
/// sums their lengths. They differ for preallocated files: sluicedb's WAL
/// segments are sparse up to 64 MiB (length without blocks), RocksDB
/// preallocates its WAL with `fallocate` (blocks beyond the length).
pub fn disk_bytes(dir: &Path) -> (u64, u64) {
    fn walk(p: &PathBuf) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let Ok(meta) = std::fs::metadata(p) else { return (0, 0) };
        if meta.is_file() {
            return (meta.blocks() * 512, meta.len());
        }
        std::fs::read_dir(p)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| walk(&e.path()))
                    .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
            })
            .unwrap_or((0, 0))
    }
    walk(&dir.to_path_buf())
}

/// The operations whose code is the same for sluicedb and redb (their
/// APIs match): one body for both, so the comparison makes the same calls
/// on each. `$krate` is either crate, `$table` its table definition.
macro_rules! redb_shaped_ops {
    ($krate:ident, $table:ident) => {
        fn bulk_load(&self, kvs: &mut dyn Iterator<Item = Kv>) {
            let txn = self.begin(true);
            {
                let mut table = txn.open_table($table).unwrap();
                for (k, v) in kvs {
                    table.insert(k.as_slice(), v.as_slice()).unwrap();
                }
            }
            txn.commit().unwrap();
        }

        fn remove(&self, keys: &[[u8; KEY_LEN]]) {
            let txn = self.begin(true);
            {
                let mut table = txn.open_table($table).unwrap();
                for k in keys {
                    table.remove(k.as_slice()).unwrap();
                }
            }
            txn.commit().unwrap();
        }

        fn exact_len(&self) -> u64 {
            use $krate::{ReadableDatabase, ReadableTableMetadata};
            let txn = self.db.begin_read().unwrap();
            txn.open_table($table).unwrap().len().unwrap()
        }

        fn pop_first(&self, n: usize) -> usize {
            let txn = self.begin(true);
            let mut popped = 0;
            {
                let mut table = txn.open_table($table).unwrap();
                while popped < n && table.pop_first().unwrap().is_some() {
                    popped += 1;
                }
            }
            txn.commit().unwrap();
            popped
        }

        fn retain(&self, keep: fn(&[u8]) -> bool) -> usize {
            let txn = self.begin(true);
            let mut visited = 0;
            txn.open_table($table)
                .unwrap()
                .retain(|k, _| {
                    visited += 1;
                    keep(k)
                })
                .unwrap();
            txn.commit().unwrap();
            visited
        }

        fn extract_if(&self, take: fn(&[u8]) -> bool) -> (usize, usize) {
            let txn = self.begin(true);
            let mut visited = 0;
            let mut taken = Vec::new();
            {
                let mut table = txn.open_table($table).unwrap();
                for entry in table
                    .extract_if(|k, _| {
                        visited += 1;
                        take(k)
                    })
                    .unwrap()
                {
                    let (k, v) = entry.unwrap();
                    taken.push((k.value().to_vec(), v.value().to_vec()));
                }
            }
            txn.commit().unwrap();
            (visited, taken.len())
        }
    };
}

/// A snapshot's reader for sluicedb or redb (`$krate`), the same code for
/// both.
macro_rules! redb_shaped_reader {
    ($name:ident, $krate:ident) => {
        struct $name {
            table: Option<$krate::ReadOnlyTable<&'static [u8], &'static [u8]>>,
        }

        impl Reader for $name {
            fn get(&self, key: &[u8; KEY_LEN]) -> bool {
                self.table
                    .as_ref()
                    .is_some_and(|t| t.get(key.as_slice()).unwrap().is_some())
            }

            fn scan(&self, start: &[u8; KEY_LEN], n: usize) -> usize {
                self.table
                    .as_ref()
                    .map_or(0, |t| t.range(start.as_slice()..).unwrap().take(n).count())
            }

            fn full_scan(&self) -> usize {
                use $krate::ReadableTable;
                self.table.as_ref().map_or(0, |t| t.iter().unwrap().count())
            }
        }
    };
}

// --- sluicedb ---------------------------------------------------------------

const SLUICE_TABLE: sluicedb::TableDefinition<&[u8], &[u8]> = sluicedb::TableDefinition::new("bench");

pub struct Sluice {
    db: sluicedb::Database,
}

impl Sluice {
    fn open(dir: &Path, shared: Shared) -> Self {
        let db = sluicedb::Database::builder()
            .set_cache_size(shared.cache_bytes)
            .create(dir.join("data.sluice"))
            .unwrap();
        Self { db }
    }

    /// One transaction of `kvs` through `insert`, or `put` (`blind`).
    fn write_with(&self, kvs: &[Kv], durable: bool, blind: bool) {
        let txn = self.begin(durable);
        {
            let mut table = txn.open_table(SLUICE_TABLE).unwrap();
            for (k, v) in kvs {
                if blind {
                    table.put(k.as_slice(), v.as_slice()).unwrap();
                } else {
                    table.insert(k.as_slice(), v.as_slice()).unwrap();
                }
            }
        }
        txn.commit().unwrap();
    }

    fn begin(&self, durable: bool) -> sluicedb::WriteTransaction {
        let mut txn = self.db.begin_write().unwrap();
        txn.set_durability(if durable {
            sluicedb::Durability::Immediate
        } else {
            sluicedb::Durability::None
        })
        .unwrap();
        txn
    }
}

impl Engine for Sluice {
    fn write(&self, kvs: &[Kv], durable: bool) {
        self.write_with(kvs, durable, false);
    }

    fn write_blind(&self, kvs: &[Kv], durable: bool) {
        self.write_with(kvs, durable, true);
    }

    redb_shaped_ops!(sluicedb, SLUICE_TABLE);

    fn write_pipelined(&self, (k, v): &Kv) -> Option<Box<dyn FnOnce() + Send>> {
        let txn = self.begin(true);
        txn.open_table(SLUICE_TABLE)
            .unwrap()
            .insert(k.as_slice(), v.as_slice())
            .unwrap();
        let pending = txn.commit_pipelined().unwrap();
        Some(Box::new(move || pending.wait().unwrap()))
    }

    fn reader(&self) -> Box<dyn Reader + '_> {
        use sluicedb::ReadableDatabase;
        let txn = self.db.begin_read().unwrap();
        Box::new(SluiceReader {
            table: txn.open_table(SLUICE_TABLE).ok(),
        })
    }

    fn flush(&self) {
        self.db.checkpoint().unwrap();
    }

    fn write_buffer_note(&self) -> Option<String> {
        let stats = self.db.stats();
        Some(format!(
            "memtable {:.1} MiB (frozen at {:.0} MiB), {} frozen of {:.1} MiB; so far {} flushes in {} passes, \
             {} checkpoints, {} stalls, {} slowdowns",
            mib(stats.memtable_bytes),
            mib(stats.memtable_limit),
            stats.frozen_memtables,
            mib(stats.frozen_bytes),
            stats.flushes,
            stats.flush_passes,
            stats.checkpoints,
            stats.stalls,
            stats.slowdowns
        ))
    }

    fn compact(&mut self) -> bool {
        self.db.compact().unwrap();
        true
    }
}

redb_shaped_reader!(SluiceReader, sluicedb);

// --- RocksDB ----------------------------------------------------------------

pub struct Rocks {
    db: rocksdb::DB,
}

impl Rocks {
    fn open(dir: &Path, shared: Shared, compressed: bool) -> Self {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        // Leader/follower group commit with the WAL write and memtable insert
        // pipelined: RocksDB's best setting for concurrent durable writers.
        opts.set_enable_pipelined_write(true);
        // The write buffer (memtable) size the BRIEF fixes for both engines.
        opts.set_write_buffer_size(64 << 20);
        // Background flush and compaction threads = cores, as its tuning
        // guide recommends.
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as i32;
        opts.increase_parallelism(cores);
        opts.set_compression_type(if compressed {
            rocksdb::DBCompressionType::Lz4
        } else {
            rocksdb::DBCompressionType::None
        });
        let mut table = rocksdb::BlockBasedOptions::default();
        // 10 bits per key: ~1% false positives, the usual setting for point reads.
        table.set_bloom_filter(10.0, false);
        table.set_block_cache(&rocksdb::Cache::new_lru_cache(shared.cache_bytes));
        opts.set_block_based_table_factory(&table);
        Self {
            db: rocksdb::DB::open(&opts, dir.join("rocksdb")).unwrap(),
        }
    }

    fn write_options(durable: bool) -> rocksdb::WriteOptions {
        let mut w = rocksdb::WriteOptions::default();
        w.set_sync(durable);
        w
    }
}

impl Engine for Rocks {
    fn write(&self, kvs: &[Kv], durable: bool) {
        let mut batch = rocksdb::WriteBatch::default();
        for (k, v) in kvs {
            batch.put(k, v);
        }
        self.db.write_opt(batch, &Self::write_options(durable)).unwrap();
    }

    fn remove(&self, keys: &[[u8; KEY_LEN]]) {
        let mut batch = rocksdb::WriteBatch::default();
        for k in keys {
            batch.delete(k);
        }
        self.db.write_opt(batch, &Self::write_options(true)).unwrap();
    }

    fn reader(&self) -> Box<dyn Reader + '_> {
        Box::new(RocksReader { db: &self.db })
    }

    fn flush(&self) {
        self.db.flush().unwrap();
    }

    fn write_buffer_note(&self) -> Option<String> {
        let property = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        Some(format!(
            "active memtable {:.1} MiB, {} immutable, all memtables {:.1} MiB; {} level-0 files, \
             {} compactions pending",
            mib(property("rocksdb.cur-size-active-mem-table")),
            property("rocksdb.num-immutable-mem-table"),
            mib(property("rocksdb.cur-size-all-mem-tables")),
            // A string property, not an integer one.
            self.db
                .property_value("rocksdb.num-files-at-level0")
                .ok()
                .flatten()
                .unwrap_or_default(),
            property("rocksdb.compaction-pending")
        ))
    }

    /// RocksDB has no large atomic transaction short of one huge WriteBatch
    /// (which it holds in memory and writes as one memtable insert); its
    /// users bulk-load without SST ingestion as batches of about 1000 keys,
    /// unsynced, with a sync on the last.
    fn bulk_load(&self, kvs: &mut dyn Iterator<Item = Kv>) {
        let mut kvs = kvs.peekable();
        let mut batch = rocksdb::WriteBatch::default();
        while let Some((k, v)) = kvs.next() {
            batch.put(k, v);
            let last = kvs.peek().is_none();
            if batch.len() == 1000 || last {
                let full = std::mem::take(&mut batch);
                self.db.write_opt(full, &Self::write_options(last)).unwrap();
            }
        }
    }

    /// The `rocksdb.estimate-num-keys` property is only an estimate; an exact
    /// count is a full iteration.
    fn exact_len(&self) -> u64 {
        let mut iter = self.db.raw_iterator();
        iter.seek_to_first();
        let mut n = 0;
        while iter.valid() {
            n += 1;
            iter.next();
        }
        n
    }

    /// One iterator walks from the first key while the deletes gather in one
    /// WriteBatch: within one transaction the next "first" is the iterator's
    /// next entry. (A fresh `seek_to_first` per pop would skip every
    /// tombstone before it: quadratic, which RocksDB users avoid.)
    fn pop_first(&self, n: usize) -> usize {
        let mut batch = rocksdb::WriteBatch::default();
        let mut iter = self.db.raw_iterator();
        iter.seek_to_first();
        let mut popped = 0;
        while popped < n && iter.valid() {
            batch.delete(iter.key().unwrap());
            std::hint::black_box(iter.value());
            popped += 1;
            iter.next();
        }
        self.db.write_opt(batch, &Self::write_options(true)).unwrap();
        popped
    }

    fn retain(&self, keep: fn(&[u8]) -> bool) -> usize {
        let mut batch = rocksdb::WriteBatch::default();
        let mut iter = self.db.raw_iterator();
        iter.seek_to_first();
        let mut visited = 0;
        while iter.valid() {
            let k = iter.key().unwrap();
            if !keep(k) {
                batch.delete(k);
            }
            visited += 1;
            iter.next();
        }
        self.db.write_opt(batch, &Self::write_options(true)).unwrap();
        visited
    }

    fn extract_if(&self, take: fn(&[u8]) -> bool) -> (usize, usize) {
        let mut batch = rocksdb::WriteBatch::default();
        let mut taken = Vec::new();
        let mut iter = self.db.raw_iterator();
        iter.seek_to_first();
        let mut visited = 0;
        while iter.valid() {
            let k = iter.key().unwrap();
            if take(k) {
                batch.delete(k);
                taken.push((k.to_vec(), iter.value().unwrap().to_vec()));
            }
            visited += 1;
            iter.next();
        }
        self.db.write_opt(batch, &Self::write_options(true)).unwrap();
        (visited, taken.len())
    }

    fn compact(&mut self) -> bool {
        self.db.compact_range::<&[u8], &[u8]>(None, None);
        true
    }
}

struct RocksReader<'a> {
    db: &'a rocksdb::DB,
}

impl Reader for RocksReader<'_> {
    fn get(&self, key: &[u8; KEY_LEN]) -> bool {
        self.db.get_pinned(key).unwrap().is_some()
    }

    fn scan(&self, start: &[u8; KEY_LEN], n: usize) -> usize {
        let mut iter = self.db.raw_iterator();
        iter.seek(start);
        let mut count = 0;
        while iter.valid() && count < n {
            std::hint::black_box(iter.value());
            count += 1;
            iter.next();
        }
        count
    }

    fn full_scan(&self) -> usize {
        let mut iter = self.db.raw_iterator();
        iter.seek_to_first();
        let mut count = 0;
        while iter.valid() {
            std::hint::black_box(iter.value());
            count += 1;
            iter.next();
        }
        count
    }
}

// --- redb -------------------------------------------------------------------

const REDB_TABLE: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("bench");

pub struct Redb {
    db: redb::Database,
}

impl Redb {
    fn open(dir: &Path, shared: Shared) -> Self {
        let db = redb::Database::builder()
            .set_cache_size(shared.cache_bytes)
            .create(dir.join("data.redb"))
            .unwrap();
        Self { db }
    }

    fn begin(&self, durable: bool) -> redb::WriteTransaction {
        let mut txn = self.db.begin_write().unwrap();
        let _ = txn.set_durability(if durable {
            redb::Durability::Immediate
        } else {
            redb::Durability::None
        });
        txn
    }
}

impl Engine for Redb {
    fn write(&self, kvs: &[Kv], durable: bool) {
        let txn = self.begin(durable);
        {
            let mut table = txn.open_table(REDB_TABLE).unwrap();
            for (k, v) in kvs {
                table.insert(k.as_slice(), v.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }

    redb_shaped_ops!(redb, REDB_TABLE);

    fn reader(&self) -> Box<dyn Reader + '_> {
        use redb::ReadableDatabase;
        let txn = self.db.begin_read().unwrap();
        Box::new(RedbReader {
            table: txn.open_table(REDB_TABLE).ok(),
        })
    }

    fn flush(&self) {}

    fn compact(&mut self) -> bool {
        self.db.compact().unwrap();
        true
    }
}

redb_shaped_reader!(RedbReader, redb);

// --- LMDB (heed) ------------------------------------------------------------

/// The heed version, for the report.
pub const HEED: &str = "0.22";

/// LMDB's map size: the most the file may grow to (address space, not
/// memory: the file grows as pages are written). Users set it well above
/// the data; 1M keys take a few hundred MiB.
const LMDB_MAP_SIZE: usize = 64 << 30;

type LmdbDb = heed::Database<heed::types::Bytes, heed::types::Bytes>;

pub struct Lmdb {
    env: heed::Env<heed::WithoutTls>,
    db: LmdbDb,
    /// Whether MDB_NOSYNC is set; changed only inside a write transaction
    /// (LMDB's writer lock), so one thread at a time changes the flags.
    no_sync: std::sync::Mutex<bool>,
}

impl Lmdb {
    fn open(dir: &Path) -> Self {
        let dir = dir.join("lmdb");
        std::fs::create_dir_all(&dir).unwrap();
        // MDB_NOTLS: read transactions are not tied to their thread, the
        // usual setting for Rust (readers may move between threads).
        let mut opts = heed::EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(LMDB_MAP_SIZE);
        // SAFETY: one process opens this environment, once.
        let env = unsafe { opts.open(&dir) }.unwrap();
        let mut txn = env.write_txn().unwrap();
        let db: LmdbDb = env.create_database(&mut txn, None).unwrap();
        txn.commit().unwrap();
        Self {
            env,
            db,
            no_sync: std::sync::Mutex::new(false),
        }
    }

    /// A write transaction that commits with a sync (LMDB's default) or
    /// without (MDB_NOSYNC, set for this commit).
    fn begin(&self, durable: bool) -> heed::RwTxn<'_> {
        let txn = self.env.write_txn().unwrap();
        let mut no_sync = self.no_sync.lock().unwrap();
        if *no_sync == durable {
            let mode = if durable {
                heed::FlagSetMode::Disable
            } else {
                heed::FlagSetMode::Enable
            };
            // SAFETY: this thread holds LMDB's writer lock (the write
            // transaction), so no other thread sets flags or commits; a
            // no-sync commit is what the no-sync rows measure.
            unsafe { self.env.set_flags(heed::EnvFlags::NO_SYNC, mode) }.unwrap();
            *no_sync = !durable;
        }
        txn
    }
}

impl Engine for Lmdb {
    fn write(&self, kvs: &[Kv], durable: bool) {
        let mut txn = self.begin(durable);
        for (k, v) in kvs {
            self.db.put(&mut txn, k, v).unwrap();
        }
        txn.commit().unwrap();
    }

    fn bulk_load(&self, kvs: &mut dyn Iterator<Item = Kv>) {
        let mut txn = self.begin(true);
        for (k, v) in kvs {
            self.db.put(&mut txn, &k, &v).unwrap();
        }
        txn.commit().unwrap();
    }

    fn remove(&self, keys: &[[u8; KEY_LEN]]) {
        let mut txn = self.begin(true);
        for k in keys {
            self.db.delete(&mut txn, k).unwrap();
        }
        txn.commit().unwrap();
    }

    fn reader(&self) -> Box<dyn Reader + '_> {
        Box::new(LmdbReader {
            txn: self.env.read_txn().unwrap(),
            db: self.db,
        })
    }

    fn flush(&self) {}

    fn exact_len(&self) -> u64 {
        let txn = self.env.read_txn().unwrap();
        self.db.len(&txn).unwrap()
    }

    fn pop_first(&self, n: usize) -> usize {
        let mut txn = self.begin(true);
        let mut popped = 0;
        while popped < n {
            let Some((k, _)) = self.db.first(&txn).unwrap() else {
                break;
            };
            let k = k.to_vec();
            self.db.delete(&mut txn, &k).unwrap();
            popped += 1;
        }
        txn.commit().unwrap();
        popped
    }

    fn retain(&self, keep: fn(&[u8]) -> bool) -> usize {
        let mut txn = self.begin(true);
        let mut visited = 0;
        {
            let mut iter = self.db.iter_mut(&mut txn).unwrap();
            while let Some(entry) = iter.next() {
                let (k, _) = entry.unwrap();
                visited += 1;
                if !keep(k) {
                    // SAFETY: nothing borrowed from the database outlives
                    // this call (the key was only read above).
                    unsafe { iter.del_current() }.unwrap();
                }
            }
        }
        txn.commit().unwrap();
        visited
    }

    fn extract_if(&self, take: fn(&[u8]) -> bool) -> (usize, usize) {
        let mut txn = self.begin(true);
        let mut visited = 0;
        let mut taken = Vec::new();
        {
            let mut iter = self.db.iter_mut(&mut txn).unwrap();
            while let Some(entry) = iter.next() {
                let (k, v) = entry.unwrap();
                visited += 1;
                if take(k) {
                    taken.push((k.to_vec(), v.to_vec()));
                    // SAFETY: the entry was copied out; nothing borrowed
                    // from the database outlives this call.
                    unsafe { iter.del_current() }.unwrap();
                }
            }
        }
        txn.commit().unwrap();
        (visited, taken.len())
    }
}

struct LmdbReader<'a> {
    txn: heed::RoTxn<'a, heed::WithoutTls>,
    db: LmdbDb,
}

impl Reader for LmdbReader<'_> {
    fn get(&self, key: &[u8; KEY_LEN]) -> bool {
        self.db.get(&self.txn, key).unwrap().is_some()
    }

    fn scan(&self, start: &[u8; KEY_LEN], n: usize) -> usize {
        use std::ops::Bound;
        let range = (Bound::Included(start.as_slice()), Bound::Unbounded);
        self.db.range(&self.txn, &range).unwrap().take(n).count()
    }

    fn full_scan(&self) -> usize {
        self.db.iter(&self.txn).unwrap().count()
    }
}

/// Bytes as MiB, for the log.
fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}
