//! The fuzz targets' seed corpora are small valid files of the current
//! format. This test checks that the committed seeds still open; run it with
//! `SLUICE_WRITE_SEEDS=1` to regenerate them after a format change.

use std::path::PathBuf;

use sluicedb::btree::{TreeStore, TreeStoreOptions, bytewise};
use sluicedb::io::{CrashBackend, CrashLogDir, MemoryBackend};
use sluicedb::wal::{Journal, JournalOptions};

fn seed_dir() -> PathBuf {
    corpus("open_file")
}

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// A WAL segment of five records (database id 7, as the target expects)
/// written under `log_id`; with `segment_size` small enough, the log rolls
/// and this first segment ends in a seal.
fn wal_segment(log_id: u32, segment_size: u64) -> Vec<u8> {
    let dir = CrashLogDir::new();
    let options = JournalOptions {
        log_id,
        segment_size,
        ..JournalOptions::default()
    };
    let (journal, _) = Journal::open(dir.clone(), 7, 0, options, |_, _| Ok(())).unwrap();
    for i in 0..5u8 {
        let seq = journal.append(&vec![i; 10 + 40 * i as usize]).unwrap();
        journal.wait_for_sync(seq).unwrap();
    }
    let name = journal.segments()[0].clone();
    drop(journal);
    dir.file_bytes(&name).unwrap()
}

/// WAL segments: a few records, and the same with a torn tail (no log id:
/// an even length, which the target opens without ids); the same records
/// under the target's log id and under another's (odd lengths, which it
/// opens with its ids: one replays, the other is refused as foreign); and
/// the first segment of a log that rolled, ending in its seal (refused: the
/// segment it names is missing, then repaired).
fn wal_seeds() -> Vec<(String, Vec<u8>)> {
    let whole = wal_segment(0, 64 << 20);
    let torn = whole[..whole.len() - 30].to_vec();
    let odd = |mut bytes: Vec<u8>| {
        if bytes.len().is_multiple_of(2) {
            bytes.push(0);
        }
        bytes
    };
    vec![
        ("seed-five-records".into(), whole),
        ("seed-torn-tail".into(), torn),
        ("seed-own-log".into(), odd(wal_segment(0x5EED_0001, 64 << 20))),
        ("seed-foreign-log".into(), odd(wal_segment(0x0BAD_0001, 64 << 20))),
        ("seed-sealed".into(), wal_segment(0, 256)),
    ]
}

/// Small databases: empty, one tree, several trees with an overflow value and
/// a free list.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, trees, keys) in [
        ("seed-empty", 0u8, 0u16),
        ("seed-one-tree", 1, 40),
        ("seed-three-trees", 3, 120),
    ] {
        let backend = std::sync::Arc::new(CrashBackend::new());
        let store = TreeStore::create(backend.clone(), 42, TreeStoreOptions::default()).unwrap();
        let mut w = store.writer().unwrap();
        for t in 0..trees {
            for k in 0..keys {
                let value = if k == 7 { vec![t; 5000] } else { vec![t; 30] };
                w.insert(&[b't', t], bytewise, &k.to_be_bytes(), &value).unwrap();
            }
        }
        w.commit(1).unwrap();
        if trees > 1 {
            let mut w = store.writer().unwrap();
            for k in (0..keys).step_by(2) {
                w.remove(&[b't', 0], bytewise, &k.to_be_bytes()).unwrap();
            }
            w.commit(2).unwrap();
        }
        drop(store);
        out.push((name.to_string(), backend.durable_image()));
    }
    out
}

/// Inputs for `open_file`'s crafted mode (see the target's comment): the
/// one-tree seed with its newest slot rewritten, once valid and opened
/// through the engine, once with `checkpoint_seq = u64::MAX`; and two
/// images in its resealing mode, one through the tree store, one through
/// the engine.
fn crafted_seeds(files: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let image = &files.iter().find(|(name, _)| name == "seed-one-tree").unwrap().1;
    let slot = &image[2048..2048 + 48];
    let header = &image[8..16];
    let mut out = Vec::new();
    for (name, flags, seq) in [
        ("seed-crafted-engine", 1u8 | 4, None),
        ("seed-crafted-max-seq", 1 | 4, Some(u64::MAX)),
    ] {
        let mut input = vec![flags];
        input.extend_from_slice(slot);
        if let Some(seq) = seq {
            input[9..17].copy_from_slice(&seq.to_le_bytes());
        }
        input.extend_from_slice(header);
        input.extend_from_slice(image);
        out.push((name.to_string(), input));
    }
    // Resealing mode (flag bit 3): the images' own slots, every node page
    // resealed after the fuzzer's changes.
    for (name, flags, image) in [
        ("seed-crafted-resealed-tree", 8u8, "seed-three-trees"),
        ("seed-crafted-resealed-engine", 8 | 4, "seed-one-tree"),
    ] {
        let image = &files.iter().find(|(file, _)| file == image).unwrap().1;
        let mut input = vec![flags];
        input.resize(1 + 48 + 8, 0);
        input.extend_from_slice(image);
        out.push((name.to_string(), input));
    }
    out
}

#[test]
fn committed_seeds_are_valid_files_of_this_format() {
    let dir = seed_dir();
    if std::env::var_os("SLUICE_WRITE_SEEDS").is_some() {
        let files = seeds();
        let crafted = crafted_seeds(&files);
        for (target, seeds) in [
            ("open_file", files),
            ("open_file", crafted),
            ("wal_segment", wal_seeds()),
        ] {
            std::fs::create_dir_all(corpus(target)).unwrap();
            for (name, bytes) in seeds {
                std::fs::write(corpus(target).join(name), bytes).unwrap();
            }
        }
    }
    for (name, bytes) in wal_seeds() {
        let committed = std::fs::read(corpus("wal_segment").join(&name)).unwrap();
        assert_eq!(
            committed, bytes,
            "{name} is stale (regenerate with SLUICE_WRITE_SEEDS=1)"
        );
    }
    for (name, bytes) in crafted_seeds(&seeds()) {
        let committed = std::fs::read(corpus("open_file").join(&name)).unwrap();
        assert_eq!(
            committed, bytes,
            "{name} is stale (regenerate with SLUICE_WRITE_SEEDS=1)"
        );
    }
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("seed-") || name.starts_with("seed-crafted-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let store = TreeStore::open(MemoryBackend::from_bytes(bytes), TreeStoreOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e} (regenerate with SLUICE_WRITE_SEEDS=1)", path.display()));
        store.check_integrity(&|_, _| Some(bytewise)).unwrap();
        count += 1;
    }
    assert_eq!(count, 3, "expected the three seed files in {}", dir.display());
}
