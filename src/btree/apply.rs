//! Bulk apply: merges a sorted batch of puts and deletes into a tree in one
//! pass, rewriting each touched node once.
//!
//! The walk partitions the batch by the separators of each branch, recurses
//! only into children that receive operations, and rebuilds a node only if
//! something under it changed. A rewritten node may split into several (its
//! entries are repacked evenly) or vanish (all its entries deleted). A
//! rewritten node left less than a quarter full is merged with a neighbour,
//! so deletions do not leave a trail of near-empty pages. All leaves stay at
//! one depth: splits add a level only at the root, and a root branch with a
//! single child is collapsed.
//!
//! Single-key `insert` and `remove` are batches of one.

use std::collections::{HashMap, HashSet};

use xxhash_rust::xxh3::xxh3_64;

use super::catalog::TreeInfo;
use super::cmp::{Comparator, is_bytewise};
use super::cursor::MAX_DEPTH;
use super::node::{
    BranchEntry, Entry, LeafEntry, LeafValue, MAX_INLINE_VALUE, MAX_KEY_LEN, Node, OverflowRef, encode, expect_node,
    separator_len,
    pack,
};
use super::value::MAX_VALUE_LEN;
use crate::error::{Result, StorageError};
use crate::page::{Allocator, Page, PageId, PageStore};

/// One operation of a batch: put `key` to `Some(value)`, or delete it.
pub type Op<'a> = (&'a [u8], Option<&'a [u8]>);

/// Checks a key's length.
pub(crate) fn check_key(key: &[u8]) -> Result<()> {
    check_op(key, None)
}

/// Checks the limits of one operation before anything is written.
pub(crate) fn check_op(key: &[u8], value: Option<&[u8]>) -> Result<()> {
    // A key too large for any item gets redb's error for one.
    if key.len() > MAX_VALUE_LEN {
        return Err(StorageError::ValueTooLarge(key.len()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StorageError::KeyTooLarge(key.len()));
    }
    if let Some(v) = value.filter(|v| v.len() > MAX_VALUE_LEN) {
        return Err(StorageError::ValueTooLarge(v.len()));
    }
    Ok(())
}

/// The writer's allocation state for one batch.
pub(crate) struct Ctx<'s> {
    pub(crate) store: &'s PageStore,
    pub(crate) alloc: &'s mut Allocator,
    /// Pages this writer allocated and has not published: freeing one makes
    /// it reusable at once.
    pub(crate) fresh: &'s mut HashSet<PageId>,
    /// Published pages this writer no longer references; the allocator gets
    /// them at commit.
    pub(crate) retired: &'s mut Vec<PageId>,
    /// Whether a retired page leaves the page cache at once, or once no
    /// snapshot reaches it (`TreeWriter::forget_replaced_at_once`).
    pub(crate) forget_at_once: bool,
    pub(crate) cmp: Comparator,
    /// Net change in the tree's entry count.
    pub(crate) len_delta: i64,
}

/// A node that replaces (part of) a subtree, as its parent will reference it.
type Children = Vec<BranchEntry>;

enum Outcome {
    Unchanged,
    Replaced(Children),
}

impl Ctx<'_> {
    fn alloc_page(&mut self) -> PageId {
        let page = self.alloc.alloc();
        self.fresh.insert(page);
        page
    }

    /// A node's first page, and its run's when it spans more (`pages`).
    fn alloc_node(&mut self, pages: u64) -> PageId {
        if pages == 1 {
            return self.alloc_page();
        }
        let start = self.alloc.alloc_run(pages);
        self.fresh.extend(start..start + pages);
        start
    }

    /// Frees the node at `id`, which spans `pages` pages.
    pub(crate) fn free_node(&mut self, id: PageId, pages: u64) {
        for page in id..id + pages {
            self.free_page(page);
        }
    }

    pub(crate) fn free_page(&mut self, page: PageId) {
        if self.fresh.remove(&page) {
            // Never published: no reader has it.
            self.store.forget_cached(page);
            self.alloc.release_unpublished(page);
        } else {
            // Readers of earlier commits may still read it: unless the
            // writer was told none will, it stays cached until none can
            // (`Shared::reclaim` in `btree::store`).
            if self.forget_at_once {
                self.store.forget_cached(page);
            }
            self.retired.push(page);
        }
    }

    pub(crate) fn free_overflow(&mut self, r: &OverflowRef) {
        let pages = r.pages(self.store.page_size());
        for page in r.start..r.start + pages {
            self.free_page(page);
        }
    }

    fn write_overflow(&mut self, value: &[u8]) -> Result<OverflowRef> {
        let pages = (value.len() as u64).div_ceil(self.store.page_size() as u64);
        let start = self.alloc.alloc_run(pages);
        self.fresh.extend(start..start + pages);
        self.store.write_run(start, value)?;
        Ok(OverflowRef {
            start,
            len: value.len() as u64,
            checksum: xxh3_64(value),
        })
    }

    /// Writes `entries` as one or more nodes at `level` (0 = leaves).
    ///
    /// Each node after the first is referenced by a separator: its first
    /// key, or for leaves of a byte-ordered tree the shortest prefix of it
    /// above the previous leaf's last key ([`shortest_separator`]), which
    /// the branch format allows (`node.rs`: a lower bound of the child,
    /// above every key of the previous one). Long keys that differ early
    /// then fill branches with a few bytes each, not whole keys. The first
    /// node keeps its first key: the key below it is in a sibling this call
    /// does not see. Branch levels pass their children's separators up
    /// unchanged (a branch's last separator is no upper bound of its last
    /// child, so none can be shortened against it).
    fn write_nodes<E: Entry>(&mut self, level: u8, entries: &[E]) -> Result<Children> {
        let page_size = self.store.page_size();
        let shorten = level == 0 && is_bytewise(self.cmp);
        let mut out = Vec::new();
        let mut previous_last: Option<&[u8]> = None;
        for group in pack(entries, page_size) {
            let entries = &entries[group];
            let (buf, used) = encode(page_size, level, entries);
            let id = self.alloc_node((buf.len() / page_size) as u64);
            self.store.write_page(id, buf)?;
            let first = entries[0].key();
            let key = match previous_last {
                Some(last) if shorten => shortest_separator(last, first)?,
                _ => first,
            };
            out.push(BranchEntry {
                key: key.to_vec(),
                child: id,
                fill: Some(used),
            });
            previous_last = entries.last().map(Entry::key);
        }
        Ok(out)
    }
}

/// Applies `ops` (REQUIRES: sorted by `ctx.cmp`, keys unique, limits
/// checked) to the tree at `root` (0 = empty) and returns the new root.
pub(crate) fn apply(ctx: &mut Ctx<'_>, root: PageId, ops: &[Op<'_>]) -> Result<PageId> {
    debug_assert!(ops.windows(2).all(|w| (ctx.cmp)(w[0].0, w[1].0).is_lt()));
    if ops.is_empty() {
        return Ok(root);
    }
    // `level` lists the nodes that replace the root, all at `height`.
    let (mut level, mut height) = if root == 0 {
        let mut entries = Vec::with_capacity(ops.len());
        for &(key, value) in ops {
            if let Some(v) = value {
                entries.push(LeafEntry {
                    key,
                    value: leaf_value(ctx, v)?,
                });
            }
        }
        ctx.len_delta += entries.len() as i64;
        (ctx.write_nodes(0, &entries)?, 0)
    } else {
        let root_level = Node::new(&ctx.store.read_page(root)?).level();
        match apply_node(ctx, root, ops, 0)? {
            Outcome::Unchanged => return Ok(root),
            Outcome::Replaced(children) => (children, root_level),
        }
    };
    while level.len() > 1 {
        height += 1;
        level = ctx.write_nodes(height, &level)?;
    }
    let Some(top) = level.pop() else {
        return Ok(0);
    };
    collapse(ctx, top.child)
}

/// Replaces a root branch that has a single child by that child, repeatedly.
fn collapse(ctx: &mut Ctx<'_>, mut root: PageId) -> Result<PageId> {
    loop {
        let page = ctx.store.read_page(root)?;
        let node = expect_node(&page, root)?;
        if node.is_leaf() || node.count() > 1 {
            return Ok(root);
        }
        let child = node.child(0);
        ctx.free_node(root, node.span());
        root = child;
    }
}

/// The stored form of a put's value: inline bytes borrowed from the batch, or
/// an overflow run written now.
fn leaf_value<'a>(ctx: &mut Ctx<'_>, value: &'a [u8]) -> Result<LeafValue<'a>> {
    if value.len() <= MAX_INLINE_VALUE {
        Ok(LeafValue::Inline(value))
    } else {
        ctx.write_overflow(value).map(LeafValue::Overflow)
    }
}

fn apply_node(ctx: &mut Ctx<'_>, id: PageId, ops: &[Op<'_>], depth: usize) -> Result<Outcome> {
    if depth >= MAX_DEPTH {
        return Err(StorageError::corrupted(
            "tree deeper than any valid tree (a page cycle?)",
        ));
    }
    let page = ctx.store.read_page(id)?;
    let node = expect_node(&page, id)?;
    if node.is_leaf() {
        // Only a root is a leaf reached this way; leaves under a branch are
        // merged in runs by `apply_leaf_parent`. Either frees what it
        // replaces.
        return Ok(match merge_leaves(ctx, &[id], &[ops])? {
            Some(children) => Outcome::Replaced(children),
            None => Outcome::Unchanged,
        });
    }
    let outcome = if node.level() == 1 {
        apply_leaf_parent(ctx, node, ops)?
    } else {
        apply_branch(ctx, node, ops, depth)?
    };
    if matches!(outcome, Outcome::Replaced(_)) {
        ctx.free_node(id, node.span());
    }
    Ok(outcome)
}

/// Splits `ops` among the children of a branch: child `i` gets the keys below
/// the key of child `i + 1`.
fn partition<'o, 'a>(node: Node<'_>, cmp: Comparator, mut ops: &'o [Op<'a>]) -> Vec<&'o [Op<'a>]> {
    let count = node.count();
    let mut parts = Vec::with_capacity(count);
    for i in 0..count {
        let take = if i + 1 < count {
            let bound = node.key(i + 1);
            ops.partition_point(|(k, _)| cmp(k, bound).is_lt())
        } else {
            ops.len()
        };
        let (mine, rest) = ops.split_at(take);
        parts.push(mine);
        ops = rest;
    }
    parts
}

/// The shortest prefix of `next` that sorts above `last` in byte order
/// ([`separator_len`]). Keys out of order come only from a leaf whose
/// checksum passed but whose keys are not sorted (a crafted or damaged
/// page the merge read): an error, rather than a branch over them.
fn shortest_separator<'k>(last: &[u8], next: &'k [u8]) -> Result<&'k [u8]> {
    if last >= next {
        return Err(StorageError::corrupted(
            "a leaf's keys are out of order (a rewrite met them at a node boundary)",
        ));
    }
    Ok(&next[..separator_len(last, next)])
}

fn kept(node: Node<'_>, i: usize) -> BranchEntry {
    BranchEntry {
        key: node.key(i).to_vec(),
        child: node.child(i),
        fill: None,
    }
}

fn apply_branch(ctx: &mut Ctx<'_>, node: Node<'_>, ops: &[Op<'_>], depth: usize) -> Result<Outcome> {
    let mut children: Children = Vec::with_capacity(node.count() + 4);
    let mut changed = false;
    for (i, mine) in partition(node, ctx.cmp, ops).into_iter().enumerate() {
        let outcome = if mine.is_empty() {
            Outcome::Unchanged
        } else {
            apply_node(ctx, node.child(i), mine, depth + 1)?
        };
        match outcome {
            Outcome::Unchanged => children.push(kept(node, i)),
            Outcome::Replaced(new) => {
                children.extend(new);
                changed = true;
            }
        }
    }
    finish_branch(ctx, children, changed, node.level())
}

/// A branch whose children are leaves: each run of consecutive leaves that
/// receive operations is merged and repacked as one sequence, so a batch
/// that touches many neighbouring leaves leaves them full rather than split
/// in halves.
fn apply_leaf_parent(ctx: &mut Ctx<'_>, node: Node<'_>, ops: &[Op<'_>]) -> Result<Outcome> {
    let parts = partition(node, ctx.cmp, ops);
    let mut children: Children = Vec::with_capacity(node.count() + 4);
    let mut changed = false;
    let mut i = 0;
    while i < parts.len() {
        if parts[i].is_empty() {
            children.push(kept(node, i));
            i += 1;
            continue;
        }
        let run_end = (i..parts.len()).find(|&j| parts[j].is_empty()).unwrap_or(parts.len());
        let ids: Vec<PageId> = (i..run_end).map(|j| node.child(j)).collect();
        match merge_leaves(ctx, &ids, &parts[i..run_end])? {
            Some(new) => {
                children.extend(new);
                changed = true;
            }
            None => children.extend((i..run_end).map(|j| kept(node, j))),
        }
        i = run_end;
    }
    finish_branch(ctx, children, changed, node.level())
}

fn finish_branch(ctx: &mut Ctx<'_>, mut children: Children, changed: bool, level: u8) -> Result<Outcome> {
    if !changed {
        return Ok(Outcome::Unchanged);
    }
    merge_underfull(ctx, &mut children, level - 1)?;
    if children.is_empty() {
        return Ok(Outcome::Replaced(children));
    }
    Ok(Outcome::Replaced(ctx.write_nodes(level, &children)?))
}

/// Merges consecutive leaves `ids` with their operations `parts`, writes
/// the result and frees the old leaves; `None` if nothing changed.
fn merge_leaves(ctx: &mut Ctx<'_>, ids: &[PageId], parts: &[&[Op<'_>]]) -> Result<Option<Children>> {
    let cmp = ctx.cmp;
    let pages: Vec<Page> = ids.iter().map(|&id| ctx.store.read_page(id)).collect::<Result<_>>()?;
    let mut merged: Vec<LeafEntry> = Vec::new();
    let mut changed = false;
    for ((page, &id), ops) in pages.iter().zip(ids).zip(parts) {
        let node = expect_node(page, id)?;
        if !node.is_leaf() {
            return Err(StorageError::corrupted(format!("page {id} should be a leaf")));
        }
        // New values first (overflow runs written), so entries can borrow them.
        let mut values: Vec<Option<LeafValue>> = Vec::with_capacity(ops.len());
        for &(_, value) in ops.iter() {
            values.push(value.map(|v| leaf_value(ctx, v)).transpose()?);
        }
        let count = node.count();
        merged.reserve(count + ops.len());
        let (mut i, mut j) = (0, 0);
        while i < count || j < ops.len() {
            let order = match (i < count, j < ops.len()) {
                (true, true) => cmp(node.key(i), ops[j].0),
                (true, false) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            if order.is_lt() {
                merged.push(LeafEntry {
                    key: node.key(i),
                    value: node.value(i),
                });
                i += 1;
                continue;
            }
            if order.is_eq() {
                // The old value is replaced or deleted either way.
                if let LeafValue::Overflow(r) = node.value(i) {
                    ctx.free_overflow(&r);
                }
                i += 1;
                ctx.len_delta -= 1;
                changed = true;
            }
            if let Some(value) = values[j] {
                merged.push(LeafEntry { key: ops[j].0, value });
                ctx.len_delta += 1;
                changed = true;
            }
            j += 1;
        }
    }
    if !changed {
        return Ok(None);
    }
    let written = ctx.write_nodes(0, &merged)?;
    // The old leaves are let go before they are freed: the cache then holds
    // the only reference to each and recycles its memory for the next page
    // (`PageCache::recycle`). Freed while still held here, they went back to
    // the allocator instead, often another thread's arena, which kept them:
    // the benchmark's peak RSS grew by 31 MB (run U).
    let spans: Vec<u64> = pages.iter().map(|page| Node::new(page).span()).collect();
    drop(merged);
    drop(pages);
    for (&id, span) in ids.iter().zip(spans) {
        ctx.free_node(id, span);
    }
    Ok(Some(written))
}

/// Merges each freshly written child that is less than a quarter full with a
/// neighbour. Merged results are not merged again, which bounds the work.
fn merge_underfull(ctx: &mut Ctx<'_>, children: &mut Children, level: u8) -> Result<()> {
    let min_fill = ctx.store.page_size() / 4;
    let mut i = 0;
    while i < children.len() {
        let small = children[i].fill.is_some_and(|used| used < min_fill);
        if !small || children.len() < 2 {
            i += 1;
            continue;
        }
        let a = if i + 1 < children.len() { i } else { i - 1 };
        let merged = rewrite_pair(ctx, children[a].child, children[a + 1].child, level)?;
        children.splice(a..a + 2, merged);
        i = a + 1;
    }
    Ok(())
}

/// Rewrites two sibling nodes as one or two evenly filled nodes.
fn rewrite_pair(ctx: &mut Ctx<'_>, left: PageId, right: PageId, level: u8) -> Result<Children> {
    let pages: [Page; 2] = [ctx.store.read_page(left)?, ctx.store.read_page(right)?];
    let nodes = [expect_node(&pages[0], left)?, expect_node(&pages[1], right)?];
    if nodes[0].level() != level || nodes[1].level() != level {
        return Err(StorageError::corrupted(format!(
            "sibling pages {left} and {right} are at different depths"
        )));
    }
    let mut out = if nodes[0].is_leaf() {
        let entries: Vec<LeafEntry> = nodes
            .iter()
            .flat_map(|n| {
                (0..n.count()).map(move |i| LeafEntry {
                    key: n.key(i),
                    value: n.value(i),
                })
            })
            .collect();
        ctx.write_nodes(level, &entries)?
    } else {
        let entries: Vec<BranchEntry> = nodes
            .iter()
            .flat_map(|n| {
                (0..n.count()).map(move |i| BranchEntry {
                    key: n.key(i).to_vec(),
                    child: n.child(i),
                    fill: None,
                })
            })
            .collect();
        ctx.write_nodes(level, &entries)?
    };
    ctx.free_node(left, nodes[0].span());
    ctx.free_node(right, nodes[1].span());
    for child in &mut out {
        child.fill = None;
    }
    Ok(out)
}

/// Frees every page of the tree at `root`, overflow runs included.
pub(crate) fn free_tree(ctx: &mut Ctx<'_>, root: PageId) -> Result<()> {
    if root == 0 {
        return Ok(());
    }
    let mut stack = vec![(root, 0usize)];
    while let Some((id, depth)) = stack.pop() {
        if depth >= MAX_DEPTH {
            return Err(StorageError::corrupted(
                "tree deeper than any valid tree (a page cycle?)",
            ));
        }
        let page = ctx.store.read_page(id)?;
        let node = expect_node(&page, id)?;
        for i in 0..node.count() {
            if node.is_leaf() {
                if let LeafValue::Overflow(r) = node.value(i) {
                    ctx.free_overflow(&r);
                }
            } else {
                stack.push((node.child(i), depth + 1));
            }
        }
        ctx.free_node(id, node.span());
    }
    Ok(())
}

/// Where every page of a store lies, for compaction: for each node the
/// highest page at or under it (overflow runs included, and for catalog
/// leaves the trees they name), and what moving it would cost.
///
/// A node must be rewritten by a relocation to `limit` exactly when the
/// highest page under it is at or above `limit`: either it lies there
/// itself, or a descendant moves and copy-on-write rewrites the path to it.
/// That makes the cost of every `limit` computable before anything moves, so
/// [`target`](Self::target) can pick one the free pages below it can hold.
pub(crate) struct RelocationPlan {
    /// Highest page at or under each node.
    max_under: HashMap<PageId, u64>,
    /// `(highest page, pages written if it moves)`: one per node and one per
    /// overflow run.
    items: Vec<(u64, u64)>,
}

impl RelocationPlan {
    /// Walks the catalog at `catalog_root` and every tree it names.
    pub(crate) fn new(store: &PageStore, catalog_root: PageId) -> Result<Self> {
        let mut plan = Self {
            max_under: HashMap::new(),
            items: Vec::new(),
        };
        if catalog_root != 0 {
            plan.walk(store, catalog_root, true, 0)?;
        }
        plan.items.sort_unstable();
        Ok(plan)
    }

    fn walk(&mut self, store: &PageStore, id: PageId, catalog: bool, depth: usize) -> Result<u64> {
        if depth >= MAX_DEPTH {
            return Err(StorageError::corrupted(
                "tree deeper than any valid tree (a page cycle?)",
            ));
        }
        let page = store.read_page(id)?;
        let node = expect_node(&page, id)?;
        let mut max = id + node.span() - 1;
        for i in 0..node.count() {
            if !node.is_leaf() {
                max = max.max(self.walk(store, node.child(i), catalog, depth + 1)?);
                continue;
            }
            let mut run_max = None;
            if let LeafValue::Overflow(r) = node.value(i) {
                let pages = r.pages(store.page_size());
                run_max = Some((r.start + pages.max(1) - 1, pages));
            }
            let mut tree_max = 0;
            if catalog {
                let info = catalog_entry(store, node.value(i))?;
                if info.root != 0 {
                    tree_max = self.walk(store, info.root, false, 0)?;
                }
            }
            if let Some((end, pages)) = run_max {
                // A catalog value stored as a run is rewritten whenever its
                // tree's root moves, wherever the run lies.
                let key = end.max(tree_max);
                self.items.push((key, pages));
                max = max.max(key);
            }
            max = max.max(tree_max);
        }
        self.max_under.insert(id, max);
        self.items.push((max, node.span()));
        Ok(max)
    }

    /// The smallest page count `t` such that the free pages below `t`
    /// (`free`, ascending) hold every page a relocation to `t` writes plus
    /// `reserve` more; `None` if no `t` below `page_count` does (then nothing
    /// should move).
    pub(crate) fn target(&self, free: impl Iterator<Item = u64>, page_count: u64, reserve: u64) -> Option<u64> {
        let mut needed: u64 = self.items.iter().map(|&(_, pages)| pages).sum::<u64>() + reserve;
        let mut items = self.items.iter().peekable();
        let mut free = free.peekable();
        let mut free_below = 0u64;
        for t in 1..page_count {
            // Items whose highest page is below `t` need not move.
            while let Some(&&(key, pages)) = items.peek() {
                if key >= t {
                    break;
                }
                needed -= pages;
                items.next();
            }
            while free.next_if(|&page| page < t).is_some() {
                free_below += 1;
            }
            if free_below >= needed {
                return Some(t);
            }
        }
        None
    }
}

fn catalog_entry(store: &PageStore, value: LeafValue<'_>) -> Result<TreeInfo> {
    match value {
        LeafValue::Inline(bytes) => TreeInfo::decode(bytes),
        LeafValue::Overflow(r) => TreeInfo::decode(&super::value::read_overflow(store, &r)?),
    }
}

/// A relocation in progress: see [`relocate`].
struct Relocation<'p> {
    plan: &'p RelocationPlan,
    limit: u64,
    /// The file's page count before: a node is never written at or past it.
    end: u64,
    written: u64,
}

/// Why a relocation stopped.
enum Stop {
    Storage(StorageError),
    /// A node longer than a page found no free run anywhere in the file:
    /// moving it would grow the file.
    WouldGrow,
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

/// Moves every page at or above `limit` into free pages below it, rewriting
/// the nodes above moved pages (copy-on-write), in the catalog at `root` and
/// every tree it names; returns the new catalog root and the pages written.
///
/// Allocation is only ever below `limit` (`Allocator::alloc_below`), so the
/// file never grows. REQUIRES: `limit` chosen by `plan.target`, which
/// guarantees the free pages below it suffice; should they not, this fails
/// with `Internal` rather than allocate elsewhere. An overflow run that finds
/// no free run below `limit` stays where it is (the file then shrinks less).
/// A node longer than a page that finds no free run below `limit` takes the
/// first free run before the file's end; if there is none, `Ok(None)`: the
/// relocation would grow the file, and the caller abandons it (the plan
/// counts free pages, not runs). Originals are retired (or released at once
/// if this writer made them).
pub(crate) fn relocate(
    ctx: &mut Ctx<'_>,
    plan: &RelocationPlan,
    limit: u64,
    root: PageId,
) -> Result<Option<(PageId, u64)>> {
    let mut r = Relocation {
        plan,
        limit,
        end: ctx.alloc.page_count(),
        written: 0,
    };
    match relocate_node(ctx, &mut r, root, true, 0) {
        Ok(root) => Ok(Some((root, r.written))),
        Err(Stop::WouldGrow) => Ok(None),
        Err(Stop::Storage(e)) => Err(e),
    }
}

fn relocate_node(
    ctx: &mut Ctx<'_>,
    r: &mut Relocation<'_>,
    id: PageId,
    catalog: bool,
    depth: usize,
) -> std::result::Result<PageId, Stop> {
    if id == 0 || r.plan.max_under.get(&id).is_none_or(|&max| max < r.limit) {
        return Ok(id);
    }
    if depth >= MAX_DEPTH {
        return Err(StorageError::corrupted("tree deeper than any valid tree (a page cycle?)").into());
    }
    let page = ctx.store.read_page(id)?;
    let node = expect_node(&page, id)?;
    let new_id = if node.is_leaf() {
        relocate_leaf(ctx, r, node, catalog)?
    } else {
        let mut entries = Vec::with_capacity(node.count());
        for i in 0..node.count() {
            entries.push(BranchEntry {
                key: node.key(i).to_vec(),
                child: relocate_node(ctx, r, node.child(i), catalog, depth + 1)?,
                fill: None,
            });
        }
        write_below(ctx, r, node.level(), &entries)?
    };
    ctx.free_node(id, node.span());
    Ok(new_id)
}

fn relocate_leaf(
    ctx: &mut Ctx<'_>,
    r: &mut Relocation<'_>,
    node: Node<'_>,
    catalog: bool,
) -> std::result::Result<PageId, Stop> {
    // Catalog entries whose tree moved get new bytes; they must outlive
    // the entries that borrow them.
    let mut new_infos: Vec<Option<Vec<u8>>> = vec![None; node.count()];
    if catalog {
        for (i, slot) in new_infos.iter_mut().enumerate() {
            let mut info = catalog_entry(ctx.store, node.value(i))?;
            let root = relocate_node(ctx, r, info.root, false, 0)?;
            if root != info.root {
                info.root = root;
                *slot = Some(info.encode());
            }
        }
    }
    let mut entries = Vec::with_capacity(node.count());
    for (i, new_info) in new_infos.iter().enumerate() {
        let value = match (node.value(i), new_info) {
            (LeafValue::Inline(_), Some(bytes)) => LeafValue::Inline(bytes),
            (LeafValue::Overflow(old), Some(bytes)) => {
                // The run must be rewritten (its tree moved); below the
                // limit if a run fits there, else first fit as usual.
                let run = match move_run(ctx, r, &old, bytes)? {
                    Some(run) => run,
                    None => ctx.write_overflow(bytes)?,
                };
                ctx.free_overflow(&old);
                LeafValue::Overflow(run)
            }
            (LeafValue::Overflow(old), None) if old.start + old.pages(ctx.store.page_size()) > r.limit => {
                let bytes = super::value::read_overflow(ctx.store, &old)?;
                match move_run(ctx, r, &old, &bytes)? {
                    Some(run) => {
                        ctx.free_overflow(&old);
                        LeafValue::Overflow(run)
                    }
                    None => LeafValue::Overflow(old),
                }
            }
            (value, None) => value,
        };
        entries.push(LeafEntry {
            key: node.key(i),
            value,
        });
    }
    write_below(ctx, r, 0, &entries)
}

/// Writes `bytes` (the run `old` held, or its replacement of the same
/// length) into a free run below the limit; `None` if there is none.
fn move_run(ctx: &mut Ctx<'_>, r: &mut Relocation<'_>, old: &OverflowRef, bytes: &[u8]) -> Result<Option<OverflowRef>> {
    let pages = old.pages(ctx.store.page_size());
    let Some(start) = ctx.alloc.alloc_run_below(pages, r.limit) else {
        return Ok(None);
    };
    ctx.fresh.extend(start..start + pages);
    ctx.store.write_run(start, bytes)?;
    r.written += pages;
    Ok(Some(OverflowRef {
        start,
        len: bytes.len() as u64,
        checksum: xxh3_64(bytes),
    }))
}

/// Writes one node (its entries fit one node: they did before, and moving
/// changes only page numbers) to the lowest free page below the limit, or
/// for a node longer than a page the first free run below it. A node that
/// finds no such run is written where a run is free, as an overflow run
/// that finds none stays where it is: the file then shrinks less.
fn write_below<E: Entry>(
    ctx: &mut Ctx<'_>,
    r: &mut Relocation<'_>,
    level: u8,
    entries: &[E],
) -> std::result::Result<PageId, Stop> {
    let page_size = ctx.store.page_size();
    if pack(entries, page_size).len() != 1 {
        return Err(StorageError::Internal("a relocated node no longer fits one node".into()).into());
    }
    let (buf, _) = encode(page_size, level, entries);
    let pages = (buf.len() / page_size) as u64;
    let id = if pages > 1 {
        let run = ctx
            .alloc
            .alloc_run_below(pages, r.limit)
            .or_else(|| ctx.alloc.alloc_run_below(pages, r.end))
            .ok_or(Stop::WouldGrow)?;
        ctx.fresh.extend(run..run + pages);
        run
    } else {
        let id = ctx.alloc.alloc_below(r.limit).ok_or_else(|| {
            StorageError::Internal(format!(
                "compaction ran out of free pages below its target of {} pages",
                r.limit
            ))
        })?;
        ctx.fresh.insert(id);
        id
    };
    ctx.store.write_page(id, buf)?;
    r.written += pages;
    Ok(id)
}
