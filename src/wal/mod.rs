//! The write-ahead log: a segmented, checksummed redo log with a sync thread
//! and group commit, and the recovery reader. Only the commit pipeline and
//! recovery call it.

mod journal;
mod metrics;
mod reader;
mod record;
mod segment;

pub use journal::{
    DEFAULT_MAX_QUEUE_BYTES, FIRST_SEGMENT_BYTES, Journal, JournalOptions, RecoveredLog, Recovery, SyncBy, scan,
};
pub use metrics::{JournalMetrics, SYNC_LATENCY_BUCKETS_US};
pub use reader::{LaterRecord, Stop, StopReason};
pub use record::MAX_PAYLOAD;
pub(crate) use segment::parse_name as segment_first_seq;
pub(crate) use segment::segment_name;
pub(crate) use reader::{segment_log_ids, segment_owner};
