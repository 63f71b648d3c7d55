//! Journal statistics.

use std::time::Duration;

/// Upper bounds of the sync-latency histogram buckets, in microseconds; the
/// last bucket counts everything slower.
pub const SYNC_LATENCY_BUCKETS_US: [u64; 12] = [50, 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102_400];

/// A snapshot of the journal's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JournalMetrics {
    /// Records appended since the journal was opened.
    pub records: u64,
    /// Bytes written to segments (headers included).
    pub bytes: u64,
    /// `fdatasync` calls on segments.
    pub fsyncs: u64,
    /// Records covered by the fsyncs (the sum of group sizes).
    pub synced_records: u64,
    /// The largest number of records one fsync made durable.
    pub max_group: u64,
    /// Sync latencies: `sync_latency[i]` counts syncs that took at most
    /// `SYNC_LATENCY_BUCKETS_US[i]` µs; the last entry counts the rest.
    pub sync_latency: [u64; SYNC_LATENCY_BUCKETS_US.len() + 1],
    /// The slowest sync so far, in microseconds.
    pub max_sync_us: u64,
    /// Records appended but not yet written.
    pub queue_depth: u64,
    /// Bytes appended but not yet written: the queue plus what the sync
    /// thread has taken and is writing. At most
    /// `max(JournalOptions::max_queue_bytes, the largest record)`.
    pub queue_bytes: u64,
    /// Appends that waited for room under `JournalOptions::max_queue_bytes`
    /// (backpressure: committers outran the log's writes).
    pub queue_stalls: u64,
    /// Time those appends waited, summed, in microseconds.
    pub queue_stall_micros: u64,
    /// Segment files created.
    pub segments_created: u64,
    /// Of those, segments made from a spare written ahead of the roll (see
    /// `LogDir::spare_segments`).
    pub segments_from_spares: u64,
    /// Spares the spare thread failed to make (an I/O error or a panic).
    /// The next roll then creates its segment as a hole; the log carries on.
    pub spare_failures: u64,
    /// The last such failure, for the operator.
    pub last_spare_error: Option<String>,
    /// Segment files deleted after checkpoints.
    pub segments_deleted: u64,
    /// Attempts to delete an old segment that failed. The segment stays
    /// (harmless: recovery skips segments wholly at or below the
    /// checkpoint) and the next checkpoint retries; the journal carries on.
    pub segment_delete_failures: u64,
    /// The last such failure, for the operator.
    pub last_delete_error: Option<String>,
    /// Whether writing the log panicked (in the sync thread or a lone
    /// committer) and committers now sync for themselves.
    pub degraded: bool,
}

impl JournalMetrics {
    /// Average records per fsync.
    pub fn average_group(&self) -> f64 {
        if self.fsyncs == 0 {
            0.0
        } else {
            self.synced_records as f64 / self.fsyncs as f64
        }
    }

    pub(crate) fn record_sync(&mut self, group: u64, took: Duration) {
        self.fsyncs += 1;
        self.synced_records += group;
        self.max_group = self.max_group.max(group);
        let us = took.as_micros() as u64;
        let bucket = SYNC_LATENCY_BUCKETS_US
            .iter()
            .position(|&bound| us <= bound)
            .unwrap_or(SYNC_LATENCY_BUCKETS_US.len());
        self.sync_latency[bucket] += 1;
        self.max_sync_us = self.max_sync_us.max(us);
    }

    /// The sync latency at quantile `q` (0.0..=1.0), in microseconds, from
    /// the histogram: the upper bound of the bucket that holds it (the
    /// slowest sync, for the open-ended last bucket). 0 before any sync.
    pub fn sync_latency_quantile_us(&self, q: f64) -> u64 {
        let total: u64 = self.sync_latency.iter().sum();
        if total == 0 {
            return 0;
        }
        // The rank of the q-quantile sync, 1-based.
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &count) in self.sync_latency.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return SYNC_LATENCY_BUCKETS_US
                    .get(i)
                    .map_or(self.max_sync_us, |&bound| bound.min(self.max_sync_us.max(1)));
            }
        }
        self.max_sync_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_come_from_bucket_bounds_and_never_exceed_the_max() {
        let mut m = JournalMetrics::default();
        assert_eq!(m.sync_latency_quantile_us(0.5), 0);
        for _ in 0..98 {
            m.record_sync(1, Duration::from_micros(70));
        }
        m.record_sync(1, Duration::from_micros(3000));
        m.record_sync(1, Duration::from_millis(500));
        assert_eq!(m.sync_latency_quantile_us(0.5), 100);
        assert_eq!(m.sync_latency_quantile_us(0.99), 3200);
        assert_eq!(m.sync_latency_quantile_us(1.0), 500_000);
        assert_eq!(m.max_sync_us, 500_000);
    }
}
