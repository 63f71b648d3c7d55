//! The engine: memtables, the staged commit pipeline (Build → AppendWAL →
//! WaitForSync → Apply), state snapshots, the background flush and
//! checkpoint thread, and recovery.

mod apply;
mod batch;
mod core;
mod deferred;
mod filter;
mod flush_marker;
mod id_hash;
mod inserter;
mod log_tail;
mod key_bytes;
mod memtable;
mod merge;
mod names;
mod pending;
mod pop;
mod publication;
mod recovery;
mod skiplist;
mod state;
mod tree_commit;
mod tree_filter;
mod txn;
mod writeset;

pub use core::{
    CheckpointedTable, Durability, Engine, EngineOptions, MEMTABLE_TREE_SHARE, RecordSummary, RecoveryReport, Resolver,
    checkpointed_tables,
};
pub use merge::MergedRange;
pub(crate) use merge::Direction;
pub use txn::{PendingCommit, ReadTable, ReadTxn, SavepointPin, Stats, TableRef, WriteTxn};
pub(crate) use txn::project;
