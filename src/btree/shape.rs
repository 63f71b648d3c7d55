//! The shape of one tree: its height and how many pages and bytes it uses.
//! Added for redb parity (`TableStats`, `DatabaseStats`); read-only, one
//! walk over the tree's pages.

use super::cursor::MAX_DEPTH;
use super::node::{
    Entry, LeafEntry, LeafValue, NODE_HEADER_LEN, branch_entry_len, expect_node, leaf_entry_len, separator_len,
    value_field_len,
};
use crate::error::{Result, StorageError};
use crate::page::{PageId, PageStore};

/// Pages and bytes of a tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeShape {
    /// Levels from the root to the leaves (0 for an empty tree).
    pub height: usize,
    /// Leaf pages.
    pub leaf_pages: u64,
    /// Branch pages.
    pub branch_pages: u64,
    /// Pages holding values too large for a leaf.
    pub overflow_pages: u64,
    /// Bytes of the keys and values stored (in leaves and overflow pages).
    pub stored_bytes: u64,
    /// Bytes the leaves' entries take: a fixed-width leaf's keys and values,
    /// a slotted leaf's entries with their offset slots and headers (what
    /// [`projected`](Self::projected) compares).
    pub leaf_bytes: u64,
    /// Bytes of the keys stored in branch pages.
    pub branch_key_bytes: u64,
    /// Bytes per page.
    pub page_size: usize,
}

/// The shape of the tree under `root` (0: empty).
pub(crate) fn shape(store: &PageStore, root: PageId) -> Result<TreeShape> {
    let mut shape = TreeShape {
        page_size: store.page_size(),
        ..TreeShape::default()
    };
    if root != 0 {
        shape.height = walk(store, root, 0, &mut shape)?;
    }
    Ok(shape)
}

/// Adds the subtree at `id` to `shape`; returns its height.
fn walk(store: &PageStore, id: PageId, depth: usize, shape: &mut TreeShape) -> Result<usize> {
    if depth >= MAX_DEPTH {
        return Err(StorageError::corrupted("tree too deep (a page cycle?)"));
    }
    let page = store.read_page(id)?;
    let node = expect_node(&page, id)?;
    if node.is_leaf() {
        shape.leaf_pages += node.span();
        for i in 0..node.count() {
            let (key, value) = (node.key(i), node.value(i));
            shape.leaf_bytes += match value {
                LeafValue::Inline(v) if node.is_fixed_width() => key.len() + v.len(),
                _ => LeafEntry { key, value }.encoded_len(),
            } as u64;
            shape.stored_bytes += key.len() as u64;
            shape.stored_bytes += match value {
                LeafValue::Inline(bytes) => bytes.len() as u64,
                LeafValue::Overflow(r) => {
                    shape.overflow_pages += r.pages(store.page_size());
                    r.len
                }
            };
        }
        return Ok(1);
    }
    shape.branch_pages += node.span();
    let mut height = 0;
    for i in 0..node.count() {
        shape.branch_key_bytes += node.key(i).len() as u64;
        height = height.max(walk(store, node.child(i), depth + 1, shape)?);
    }
    Ok(height + 1)
}

/// Appends to `out` every page of the tree under `root` (0: none): its
/// nodes, every page of nodes that span several, and its overflow runs.
pub(crate) fn pages(store: &PageStore, root: PageId, out: &mut Vec<PageId>) -> Result<()> {
    let mut stack = vec![(root, 0)];
    while let Some((id, depth)) = stack.pop() {
        if id == 0 {
            continue;
        }
        if depth >= MAX_DEPTH {
            return Err(StorageError::corrupted("tree too deep (a page cycle?)"));
        }
        let page = store.read_page(id)?;
        let node = expect_node(&page, id)?;
        out.extend(id..id + node.span());
        if node.is_leaf() {
            for i in 0..node.count() {
                if let LeafValue::Overflow(r) = node.value(i) {
                    out.extend(r.start..r.start + r.pages(store.page_size()));
                }
            }
        } else {
            stack.extend((0..node.count()).map(|i| (node.child(i), depth + 1)));
        }
    }
    Ok(())
}

/// What a scan of a table's visible entries finds, in the terms of
/// [`TreeShape`]: the input of [`TreeShape::projected`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Census {
    /// Entries seen.
    pub entries: u64,
    /// Bytes of their keys.
    pub key_bytes: u64,
    /// Bytes of their keys and values.
    pub stored_bytes: u64,
    /// Bytes they take in leaves (as [`TreeShape::leaf_bytes`] counts):
    /// their key and value bytes alone while every entry has one key length
    /// and one inline value length (fixed-width leaves), else with each
    /// entry's offset and header.
    pub leaf_bytes: u64,
    /// Bytes they would take in slotted leaves.
    slotted_bytes: u64,
    /// The key and value lengths of every entry so far, if they share one
    /// and the values are inline (`None` also before the first entry).
    fixed_width: Option<(usize, usize)>,
    /// Overflow pages their long values take.
    pub overflow_pages: u64,
    /// Neighbouring pairs of keys measured by
    /// [`add_separator`](Self::add_separator) (byte-ordered trees only).
    pub separators: u64,
    /// Bytes of those pairs' shortest separators.
    pub separator_bytes: u64,
}

impl Census {
    /// Counts one entry.
    pub fn add(&mut self, key: &[u8], value_len: usize, page_size: usize) {
        self.entries += 1;
        self.key_bytes += key.len() as u64;
        self.stored_bytes += (key.len() + value_len) as u64;
        self.slotted_bytes += leaf_entry_len(key.len(), value_field_len(value_len)) as u64;
        let own = (value_field_len(value_len) == value_len).then_some((key.len(), value_len));
        if self.entries == 1 {
            self.fixed_width = own;
        } else if self.fixed_width != own {
            self.fixed_width = None;
        }
        self.leaf_bytes = match self.fixed_width {
            Some((k, v)) => self.entries * (k + v) as u64,
            None => self.slotted_bytes,
        };
        if value_field_len(value_len) != value_len {
            self.overflow_pages += (value_len as u64).div_ceil(page_size as u64);
        }
    }
}

impl Census {
    /// Counts the shortest separator of two neighbouring keys of a
    /// byte-ordered tree (`last < next`), as a leaf boundary between them
    /// would store it (`btree::apply::shortest_separator`).
    pub fn add_separator(&mut self, last: &[u8], next: &[u8]) {
        self.separators += 1;
        self.separator_bytes += separator_len(last, next) as u64;
    }
}

impl TreeShape {
    /// This tree's shape with the entries a flush has not yet written into
    /// it counted as the pages they will take. `census` is a scan of every
    /// entry the table holds (tree, memtables, a transaction's own writes);
    /// what it finds beyond what the tree's leaves hold goes first into the
    /// room those leaves have left (a flush merges entries into the leaves
    /// they sort into), then into the fewest new leaf pages it fits, under
    /// as many branch levels as the leaves need at the fan-out the keys'
    /// average length allows. An estimate (a leaf's room is spread over
    /// its key range), and exact when nothing is waiting for a flush.
    pub fn projected(mut self, census: &Census) -> TreeShape {
        let usable = self.page_size.saturating_sub(NODE_HEADER_LEN).max(1) as u64;
        let room = (self.leaf_pages * usable).saturating_sub(self.leaf_bytes);
        let extra_leaf_bytes = census.leaf_bytes.saturating_sub(self.leaf_bytes + room);
        let extra_leaves = extra_leaf_bytes.div_ceil(usable);
        if extra_leaves == 0 && (self.height > 0 || census.entries == 0) {
            return self;
        }
        self.leaf_pages += extra_leaves.max(1);
        self.overflow_pages = self.overflow_pages.max(census.overflow_pages);
        self.stored_bytes = self.stored_bytes.max(census.stored_bytes);
        self.leaf_bytes = self.leaf_bytes.max(census.leaf_bytes);
        // Branch levels over all the leaves, at the fan-out of separators
        // as long as the average separator measured (byte order), else the
        // average key.
        let average_separator = census
            .separator_bytes
            .checked_div(census.separators)
            .or_else(|| census.key_bytes.checked_div(census.entries))
            .unwrap_or(0) as usize;
        let fan_out = (usable / branch_entry_len(average_separator) as u64).max(2);
        let (mut level, mut height, mut branches) = (self.leaf_pages, 1, 0);
        while level > 1 {
            level = level.div_ceil(fan_out);
            branches += level;
            height += 1;
        }
        self.height = self.height.max(height);
        self.branch_pages = self.branch_pages.max(branches);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;

    fn census(entries: u64, key_len: usize, value_len: usize) -> Census {
        let mut census = Census::default();
        for _ in 0..entries {
            census.add(&vec![7; key_len], value_len, PAGE);
        }
        census
    }

    fn empty() -> TreeShape {
        TreeShape {
            page_size: PAGE,
            ..TreeShape::default()
        }
    }

    #[test]
    fn an_empty_table_projects_to_an_empty_tree() {
        assert_eq!(empty().projected(&Census::default()), empty());
    }

    #[test]
    fn unflushed_entries_fill_leaves_under_branches() {
        let small = empty().projected(&census(3, 5, 5));
        assert_eq!((small.height, small.leaf_pages, small.branch_pages), (1, 1, 0));
        assert_eq!(small.stored_bytes, 30);
        // Entries of empty keys and values still make a leaf.
        assert_eq!(empty().projected(&census(1, 0, 0)).height, 1);

        // 100K entries of 8 + 8 bytes: 16 bytes each in a fixed-width
        // leaf, 4072 usable bytes per 4 KiB page: 393 leaves. Separators
        // of 8 bytes take 20: 203 children per branch, so 2 branches over
        // the leaves and a root above them.
        let big = empty().projected(&census(100_000, 8, 8));
        assert_eq!((big.height, big.leaf_pages, big.branch_pages), (3, 393, 3));
        // Values of 8 and 9 bytes in turn: slotted leaves, 22.5 bytes an
        // entry (slot and header included): 553 leaves, 3 branches over
        // them and a root.
        let mut mixed = Census::default();
        for i in 0..100_000 {
            mixed.add(&[7; 8], 8 + i % 2, PAGE);
        }
        let mixed = empty().projected(&mixed);
        assert_eq!((mixed.height, mixed.leaf_pages, mixed.branch_pages), (3, 553, 4));

        // Long values go to overflow pages, as the tree stores them.
        let long = empty().projected(&census(2, 8, 5000));
        assert_eq!(long.overflow_pages, 4);
        assert_eq!(long.stored_bytes, 2 * 5008);
    }

    #[test]
    fn a_flushed_table_keeps_its_shape() {
        let census = census(10, 8, 8);
        let tree = TreeShape {
            height: 2,
            leaf_pages: 3,
            branch_pages: 1,
            stored_bytes: census.stored_bytes,
            leaf_bytes: census.leaf_bytes,
            ..empty()
        };
        assert_eq!(tree.projected(&census), tree);
        // Removals waiting for a flush leave the tree's pages counted.
        assert_eq!(tree.projected(&Census::default()), tree);
    }
}
