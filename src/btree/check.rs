//! The integrity check: walks every page reachable from a commit, verifying
//! it against the bytes on disk, and accounts for every page of the file.

use std::collections::HashSet;
use std::ops::Bound::Unbounded;
use std::sync::Arc;

use super::catalog::TreeInfo;
use super::cmp::{Comparator, bytewise};
use super::cursor::MAX_DEPTH;
use super::node::{LeafValue, Node, expect_node};
use super::value::read_overflow;
use crate::error::{Result, StorageError};
use crate::page::{Allocator, PageId, PageStore, page_generation};

/// What an integrity check found (it fails with `Corrupted` otherwise).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Named trees.
    pub trees: u64,
    /// Entries across all trees.
    pub entries: u64,
    /// Pages reachable from the commit (trees, catalog, overflow runs).
    pub reachable_pages: u64,
    /// Pages in the file, the header page included.
    pub file_pages: u64,
}

struct Walk<'a> {
    store: &'a PageStore,
    seen: HashSet<PageId>,
    page_count: u64,
    /// The checked commit's transaction id: no page it reaches was written
    /// by a later commit (store.rs, "generations").
    generation: u64,
}

impl Walk<'_> {
    fn mark(&mut self, page: PageId) -> Result<()> {
        if page == 0 || page >= self.page_count {
            return Err(StorageError::corrupted(format!(
                "reference to page {page} outside the file"
            )));
        }
        if !self.seen.insert(page) {
            return Err(StorageError::corrupted(format!("page {page} is referenced twice")));
        }
        Ok(())
    }

    /// Walks the subtree at `id`, whose keys must lie in `[lower, upper)`
    /// when the tree's order `cmp` is known; returns (entries, depth).
    fn tree(
        &mut self,
        id: PageId,
        cmp: Option<Comparator>,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        depth: usize,
    ) -> Result<(u64, usize)> {
        if depth >= MAX_DEPTH {
            return Err(StorageError::corrupted("tree too deep (a page cycle?)"));
        }
        self.mark(id)?;
        let page = self.store.read_page_uncached(id)?;
        check_generation(&page, id, self.generation)?;
        let node = expect_node(&page, id)?;
        for page in id + 1..id + node.span() {
            self.mark(page)?;
        }
        if let Some(cmp) = cmp {
            for i in 0..node.count() {
                let key = node.key(i);
                let in_bounds =
                    lower.is_none_or(|lo| cmp(lo, key).is_le()) && upper.is_none_or(|hi| cmp(key, hi).is_lt());
                let ordered = i == 0 || cmp(node.key(i - 1), key).is_lt();
                if !in_bounds || !ordered {
                    return Err(StorageError::corrupted(format!("page {id}: key {i} out of order")));
                }
            }
        }
        if node.is_leaf() {
            for i in 0..node.count() {
                if let LeafValue::Overflow(r) = node.value(i) {
                    for page in r.start..r.start + r.pages(self.store.page_size()) {
                        self.mark(page)?;
                    }
                    read_overflow(self.store, &r)?;
                }
            }
            return Ok((node.count() as u64, 1));
        }
        let (mut entries, mut child_depth) = (0, None);
        for i in 0..node.count() {
            // Every stored key is a true lower bound of its child (node.rs),
            // and key 0 was checked against this node's own lower bound above.
            let lo = Some(node.key(i));
            let hi = if i + 1 < node.count() {
                Some(node.key(i + 1))
            } else {
                upper
            };
            let (n, d) = self.tree(node.child(i), cmp, lo, hi, depth + 1)?;
            if child_depth.is_some_and(|cd| cd != d) {
                return Err(StorageError::corrupted(format!(
                    "page {id}: leaves at different depths"
                )));
            }
            child_depth = Some(d);
            entries += n;
        }
        let depth = child_depth.unwrap_or(0) + 1;
        if usize::from(node.level()) + 1 != depth {
            return Err(StorageError::corrupted(format!(
                "page {id}: level disagrees with its depth"
            )));
        }
        Ok((entries, depth))
    }
}

fn check_generation(page: &[u8], id: PageId, generation: u64) -> Result<()> {
    let written = page_generation(page);
    if written > generation {
        return Err(StorageError::corrupted(format!(
            "page {id} was written by commit {written}, after commit {generation} that reaches it: \
             a newer commit was lost (damaged commit slot?) and reused its pages"
        )));
    }
    Ok(())
}

/// Reads every node page reachable from the commit `generation` whose catalog
/// root is `catalog_root`, checking each against its checksum and its
/// generation. Run at open when the commit was chosen while the other slot
/// was unreadable (`PageStore::fell_back`): if that slot held a newer commit,
/// this one's pages may have been reused since, and must be found out before
/// any of them is served or a new commit is built on them. (Overflow runs
/// need no walk: each read verifies the value's checksum from its leaf.)
pub(crate) fn verify_commit(store: &Arc<PageStore>, catalog_root: PageId, generation: u64) -> Result<()> {
    let mut seen = HashSet::new();
    let mut roots = Vec::new();
    if catalog_root != 0 {
        let catalog = super::cursor::RangeIter::new(store.clone(), catalog_root, bytewise, Unbounded, Unbounded)?;
        for entry in catalog {
            roots.push(TreeInfo::decode(entry?.value().as_bytes())?.root);
        }
        roots.push(catalog_root);
    }
    // Depth-first over (page, depth); `seen` stops cycles and shared pages.
    let mut stack: Vec<(PageId, usize)> = roots.into_iter().filter(|&r| r != 0).map(|r| (r, 0)).collect();
    while let Some((id, depth)) = stack.pop() {
        if depth >= MAX_DEPTH {
            return Err(StorageError::corrupted("tree too deep (a page cycle?)"));
        }
        if !seen.insert(id) {
            continue;
        }
        let page = store.read_page_uncached(id)?;
        check_generation(&page, id, generation)?;
        let node = expect_node(&page, id)?;
        if !node.is_leaf() {
            stack.extend((0..node.count()).map(|i| (node.child(i), depth + 1)));
        }
    }
    Ok(())
}

/// Walks the commit whose catalog is `catalog`: the catalog, then every
/// tree it names, checked in its order where `cmp_for` knows it. Returns
/// the number of trees and of entries.
fn walk_commit(
    store: &Arc<PageStore>,
    walk: &mut Walk<'_>,
    catalog: &TreeInfo,
    cmp_for: &dyn Fn(&[u8], &TreeInfo) -> Option<Comparator>,
) -> Result<(u64, u64)> {
    let mut trees = Vec::new();
    if catalog.root != 0 {
        let (n, _) = walk.tree(catalog.root, Some(bytewise), None, None, 0)?;
        if n != catalog.len {
            return Err(StorageError::corrupted(format!(
                "catalog holds {n} trees, its count says {}",
                catalog.len
            )));
        }
        let all = super::cursor::RangeIter::new(store.clone(), catalog.root, bytewise, Unbounded, Unbounded)?;
        for entry in all {
            let entry = entry?;
            trees.push((entry.key().to_vec(), TreeInfo::decode(entry.value().as_bytes())?));
        }
    }
    let mut entries = 0;
    for (name, info) in &trees {
        if info.root == 0 {
            if info.len != 0 {
                return Err(StorageError::corrupted("empty tree with a nonzero count"));
            }
            continue;
        }
        let (n, _) = walk.tree(info.root, cmp_for(name, info), None, None, 0)?;
        if n != info.len {
            return Err(StorageError::corrupted(format!(
                "tree {:?} holds {n} entries, its count says {}",
                String::from_utf8_lossy(name),
                info.len
            )));
        }
        entries += n;
    }
    Ok((trees.len() as u64, entries))
}

/// Checks the commit `generation` whose catalog is `catalog`, against the
/// allocator's account of free pages and the durable free-list chain; then
/// every pinned commit (`pins`: its transaction id and catalog) as a commit
/// of its own, whose pages must all be pinned and none free.
pub(crate) fn run(
    store: &Arc<PageStore>,
    generation: u64,
    catalog: &TreeInfo,
    alloc: &Allocator,
    chain: &[PageId],
    pins: &[(u64, TreeInfo)],
    cmp_for: &dyn Fn(&[u8], &TreeInfo) -> Option<Comparator>,
) -> Result<Report> {
    let page_count = alloc.page_count();
    let mut walk = Walk {
        store,
        seen: HashSet::new(),
        page_count,
        generation,
    };
    let (trees, entries) = walk_commit(store, &mut walk, catalog, cmp_for)?;
    let report = Report {
        file_pages: page_count,
        trees,
        entries,
        reachable_pages: walk.seen.len() as u64,
    };
    for &page in chain {
        walk.mark(page)?;
    }
    for page in alloc.free_after_restart() {
        if walk.seen.contains(&page) {
            return Err(StorageError::corrupted(format!("page {page} is both free and in use")));
        }
        walk.seen.insert(page);
    }
    let leaked = (1..page_count).filter(|p| !walk.seen.contains(p)).count();
    if leaked > 0 {
        return Err(StorageError::corrupted(format!(
            "{leaked} pages are neither in use nor free"
        )));
    }
    let free: HashSet<PageId> = alloc.free_pages().collect();
    for (txn, catalog) in pins {
        let mut pinned = Walk {
            store,
            seen: HashSet::new(),
            page_count,
            generation: *txn,
        };
        walk_commit(store, &mut pinned, catalog, cmp_for)?;
        if let Some(page) = pinned.seen.iter().find(|&&p| free.contains(&p) || !alloc.pinned(p)) {
            return Err(StorageError::corrupted(format!(
                "page {page} of the commit pinned at {txn} is not kept for it"
            )));
        }
    }
    Ok(report)
}

/// Levels from `root` down to the leaves (0 for an empty tree).
pub(crate) fn height(store: &PageStore, mut root: PageId) -> Result<usize> {
    let mut levels = 0;
    while root != 0 {
        levels += 1;
        if levels > MAX_DEPTH {
            return Err(StorageError::corrupted("tree too deep (a page cycle?)"));
        }
        let page = store.read_page(root)?;
        let node = Node::new(&page);
        root = if node.is_leaf() { 0 } else { node.child(0) };
    }
    Ok(levels)
}
