//! sluicedb: an embedded, transactional key-value store. A copy-on-write
//! B+tree holds the data; a write-ahead log and a memtable take the write
//! path off the tree.
//!
//! The storage foundation is available now: named copy-on-write B+trees in a
//! crash-safe page file, with pinned snapshots and two kinds of commit.
//!
//! ```
//! use sluicedb::btree::{bytewise, TreeStore, TreeStoreOptions};
//! use sluicedb::io::MemoryBackend;
//!
//! # fn main() -> Result<(), sluicedb::StorageError> {
//! let store = TreeStore::create(MemoryBackend::new(), 1, TreeStoreOptions::default())?;
//! let mut writer = store.writer()?;
//! writer.insert(b"fruit", bytewise, b"apple", b"red")?;
//! writer.insert(b"fruit", bytewise, b"banana", b"yellow")?;
//! writer.commit(0)?; // durable: pages synced, then the commit slot
//!
//! let snapshot = store.snapshot();
//! let fruit = snapshot.tree(b"fruit")?.expect("created above");
//! let value = snapshot.get(&fruit, bytewise, b"banana")?.expect("inserted above");
//! assert_eq!(value.as_bytes(), b"yellow");
//! assert_eq!(fruit.len(), 2);
//! # Ok(())
//! # }
//! ```
//!
//! Layers, each depending only on those below it: `btree` (trees, catalog,
//! snapshots) → `page` (header, commit slots, allocator, cache) → `io`
//! (the [`io::StorageBackend`] seam).

#![deny(unsafe_code)]

pub mod btree;
pub mod engine;
mod error;
pub mod io;
mod page;
pub mod wal;

pub use error::{Result, StorageError};

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
