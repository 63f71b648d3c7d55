//! [`DatabaseStats`]: redb's storage figures of a whole database, from
//! [`WriteTransaction::stats`](crate::WriteTransaction::stats). (sluicedb's
//! engine counters are [`Stats`](crate::Stats), from
//! [`Database::stats`](crate::Database::stats).)

use crate::btree::TreeShape;

/// Storage figures of the data file's trees, as redb's `DatabaseStats`.
///
/// They describe the B+trees in the data file as of the transaction's
/// snapshot, with the entries not yet flushed into them (commits in the
/// memtables, the transaction's own writes) counted as the pages they will
/// take, as [`TableStats`](crate::TableStats) counts them; a table with a
/// handle open is counted as of the transaction's start, as redb does.
/// `stored_bytes` is exact; the page figures are exact once a flush has
/// written everything ([`Database::checkpoint`](crate::Database::checkpoint)).
/// The catalog of tables (and the copies of persistent savepoints written
/// by older versions) count as metadata; the pages persistent savepoints
/// keep beyond the current trees count as allocated and fragmented, as
/// redb counts them. The WAL is not counted; [`Stats`](crate::Stats)
/// reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DatabaseStats {
    tree_height: u32,
    allocated_pages: u64,
    leaf_pages: u64,
    branch_pages: u64,
    stored_bytes: u64,
    metadata_bytes: u64,
    fragmented_bytes: u64,
    page_size: usize,
}

fn pages(shape: &TreeShape) -> u64 {
    shape.leaf_pages + shape.branch_pages + shape.overflow_pages
}

impl DatabaseStats {
    /// From the user tables' trees and the engine's own trees (its table
    /// catalog), as [`engine::WriteTxn::table_shapes`](crate::engine::WriteTxn::table_shapes)
    /// returns them.
    pub(crate) fn new(tables: &[TreeShape], own: &TreeShape) -> Self {
        let page_size = tables.first().map_or(own.page_size, |t| t.page_size);
        let table_pages: u64 = tables.iter().map(pages).sum();
        let stored: u64 = tables.iter().map(|t| t.stored_bytes).sum();
        let branch_keys: u64 = tables.iter().map(|t| t.branch_key_bytes).sum();
        let own_used = own.stored_bytes + own.branch_key_bytes;
        let allocated = table_pages + pages(own);
        Self {
            tree_height: tables
                .iter()
                .map(|t| t.height)
                .max()
                .unwrap_or(0)
                .try_into()
                .unwrap_or(u32::MAX),
            allocated_pages: allocated,
            leaf_pages: tables.iter().map(|t| t.leaf_pages).sum(),
            branch_pages: tables.iter().map(|t| t.branch_pages).sum(),
            stored_bytes: stored,
            metadata_bytes: branch_keys + own_used,
            fragmented_bytes: (allocated * page_size as u64).saturating_sub(stored + branch_keys + own_used),
            page_size,
        }
    }

    /// Adds the pages persistent savepoints keep: `pinned` pages in all,
    /// `shared` of them reached by the transaction's tree snapshot. The
    /// trees as projected keep at most `shared` of those (fewer once their
    /// unflushed removals are flushed), so this counts the pinned pages
    /// beyond the projection: exact once a flush has written everything,
    /// as the other page figures.
    pub(crate) fn with_pinned_pages(mut self, pinned: u64, shared: u64) -> Self {
        let kept_only_by_savepoints = pinned - shared.min(pinned).min(self.allocated_pages);
        self.allocated_pages += kept_only_by_savepoints;
        self.fragmented_bytes += kept_only_by_savepoints * self.page_size as u64;
        self
    }

    /// Levels of the deepest table's tree.
    pub fn tree_height(&self) -> u32 {
        self.tree_height
    }

    /// Pages the trees occupy (user tables' and the engine's own).
    pub fn allocated_pages(&self) -> u64 {
        self.allocated_pages
    }

    /// Leaf pages of the user tables' trees.
    pub fn leaf_pages(&self) -> u64 {
        self.leaf_pages
    }

    /// Branch pages of the user tables' trees.
    pub fn branch_pages(&self) -> u64 {
        self.branch_pages
    }

    /// Bytes of the keys and values in the user tables' trees.
    pub fn stored_bytes(&self) -> u64 {
        self.stored_bytes
    }

    /// Bytes of branch keys, plus everything in the engine's own trees.
    pub fn metadata_bytes(&self) -> u64 {
        self.metadata_bytes
    }

    /// Bytes of the trees' pages holding none of the above.
    pub fn fragmented_bytes(&self) -> u64 {
        self.fragmented_bytes
    }

    /// Bytes per page.
    pub fn page_size(&self) -> usize {
        self.page_size
    }
}
