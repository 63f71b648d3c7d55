//! The shape of one tree: its height and how many pages and bytes it uses.
//! Added for redb parity (`TableStats`, `DatabaseStats`); read-only, one
//! walk over the tree's pages.

use super::cursor::MAX_DEPTH;
use super::node::{LeafValue, expect_node};
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
        shape.leaf_pages += 1;
        for i in 0..node.count() {
            shape.stored_bytes += node.key(i).len() as u64;
            shape.stored_bytes += match node.value(i) {
                LeafValue::Inline(bytes) => bytes.len() as u64,
                LeafValue::Overflow(r) => {
                    shape.overflow_pages += r.pages(store.page_size());
                    r.len
                }
            };
        }
        return Ok(1);
    }
    shape.branch_pages += 1;
    let mut height = 0;
    for i in 0..node.count() {
        shape.branch_key_bytes += node.key(i).len() as u64;
        height = height.max(walk(store, node.child(i), depth + 1, shape)?);
    }
    Ok(height + 1)
}
