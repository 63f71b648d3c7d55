//! Read paths over one immutable root: point lookups and double-ended range
//! iteration.
//!
//! A cursor is the path from the root to a leaf entry, as `(page, index)`
//! pairs. The tree under a root never changes, so two cursors in it compare by
//! their index paths alone: a range is exhausted when the front cursor passes
//! the back one, with no key comparisons while iterating.

use std::cmp::Ordering;
use std::marker::PhantomData;
use std::ops::Bound;
use std::sync::{Arc, OnceLock};

use super::cmp::{Comparator, compare};
use super::node::{Node, SEARCH_HEAD, expect_node, search_each};
use super::value::{ValueBytes, load};
use crate::error::{Result, StorageError};
use crate::page::{Page, PageId, PageStore};

/// Deeper than any real tree (a 4 KiB-page tree of 2^64 keys is ~16 levels);
/// a deeper walk means a cycle in a damaged file.
pub(crate) const MAX_DEPTH: usize = 32;

fn too_deep() -> StorageError {
    StorageError::corrupted("tree deeper than any valid tree (a page cycle?)")
}

/// Looks up `key` under `root` (0 = empty tree).
pub(crate) fn get(store: &PageStore, root: PageId, cmp: Comparator, key: &[u8]) -> Result<Option<ValueBytes>> {
    if root == 0 {
        return Ok(None);
    }
    get_under(store, root, store.read_page_prefetched(root, SEARCH_HEAD)?, cmp, key, MAX_DEPTH)
}

/// An inner node of one commit's tree, kept for the commit's lifetime with
/// the nodes below it that point lookups have reached (`Snapshot::pinned_root`).
///
/// A lookup through the page cache takes the page's slot lock and a shared
/// reference count at every level (profile of the flushed point-read row:
/// `PageCache::get` 20%, the node searches 24%), and the upper levels are
/// the hottest pages, shared by every reader thread. Pages a commit can
/// reach never change while it is pinned, so the commit keeps each inner
/// node it has been asked for, and its children's: a lookup walks those
/// with one acquire load a level and asks the cache only for the leaf.
pub(crate) struct PinnedNode {
    id: PageId,
    page: Page,
    /// For a node two or more levels above the leaves, one cell per child,
    /// filled when a lookup first passes through it; empty for the level
    /// above the leaves and for a leaf (whose children the cache serves).
    children: Box<[OnceLock<Arc<PinnedNode>>]>,
    /// About how many nodes its level holds: 1 for the root, else its
    /// parent's estimate times the parent's children. Decides whether the
    /// level is cold ([`COLD_LEVEL_BYTES`]).
    level_nodes: u64,
}

/// Bytes of pages at one pinned level beyond which its nodes are taken as
/// cold: about a server core's L2 cache. A point read at 10M keys of 16
/// bytes passes a level estimated at 2,100-4,000 nodes above the leaves
/// (8-16 MiB), where prefetching the node made reads 10-17% faster; at 1M
/// keys that level holds 170-200 (under 1 MiB), where the same prefetch
/// made them 4-9% slower (both trees four levels high, so the height
/// cannot decide).
const COLD_LEVEL_BYTES: u64 = 2 << 20;

impl PinnedNode {
    /// Pins page `id` (read and verified by the caller), the root of its
    /// tree.
    pub(crate) fn new(id: PageId, page: Page) -> Result<Self> {
        Self::at_level(id, page, 1)
    }

    /// Pins page `id`, one of about `level_nodes` nodes at its level.
    fn at_level(id: PageId, page: Page, level_nodes: u64) -> Result<Self> {
        let node = expect_node(&page, id)?;
        let children = if node.level() >= 2 {
            (0..node.count()).map(|_| OnceLock::new()).collect()
        } else {
            Box::default()
        };
        Ok(Self {
            id,
            page,
            children,
            level_nodes,
        })
    }

    /// Whether its level's pages outgrow the CPU's caches
    /// ([`COLD_LEVEL_BYTES`]).
    fn is_cold(&self) -> bool {
        self.level_nodes.saturating_mul(self.page.len() as u64) > COLD_LEVEL_BYTES
    }

    /// Prefetches the page whole when its level is cold, as a search of a
    /// page from the cache does (`PageStore::read_page_prefetched`).
    fn prefetch_if_cold(&self) {
        if self.is_cold() {
            Node::new(&self.page).prefetch();
        }
    }

    /// Child `index` (page `id`, as this node names it), pinned now if no
    /// lookup has pinned it yet. REQUIRES: a node two or more levels above
    /// the leaves (one with cells).
    fn child(&self, store: &PageStore, index: usize, id: PageId) -> Result<&PinnedNode> {
        let cell = &self.children[index];
        Ok(match cell.get() {
            Some(pinned) => pinned,
            None => {
                let level_nodes = self.level_nodes.saturating_mul(self.children.len() as u64);
                let pinned = Arc::new(PinnedNode::at_level(id, store.read_page(id)?, level_nodes)?);
                cell.get_or_init(|| pinned)
            }
        })
    }
}

/// Looks up `key` under `root`, pinned as [`PinnedNode`]: pinned inner nodes
/// as far as they go (pinning the ones on the way not pinned yet), then the
/// last levels through the cache.
pub(crate) fn get_pinned(
    store: &PageStore,
    root: PageId,
    pinned: &PinnedNode,
    cmp: Comparator,
    key: &[u8],
) -> Result<Option<ValueBytes>> {
    finish_pinned(store, walk_pinned(store, root, pinned, cmp, key)?, cmp, key)
}

/// Where a point lookup's walk through the pinned nodes ends.
pub(crate) enum PinnedPath<'a> {
    /// The key's leaf is pinned (its id and page).
    Leaf(PageId, &'a Page),
    /// The path continues at this page, below the pinned nodes; its
    /// page-cache slot is being loaded.
    Below(PageId),
}

/// The first half of [`get_pinned`]: the walk through the pinned nodes
/// (cache-resident but for the cold levels), which starts loading the
/// cache slot of the first page below them. A caller with other misses to
/// wait for (the memtables') takes them between the halves.
pub(crate) fn walk_pinned<'a>(
    store: &PageStore,
    root: PageId,
    pinned: &'a PinnedNode,
    cmp: Comparator,
    key: &[u8],
) -> Result<PinnedPath<'a>> {
    let (mut id, mut at) = (root, pinned);
    for _ in 0..MAX_DEPTH {
        at.prefetch_if_cold();
        let node = expect_node(&at.page, id)?;
        if at.children.is_empty() {
            if node.is_leaf() {
                return Ok(PinnedPath::Leaf(id, &at.page));
            }
            let child = node.child(node.child_index(key, cmp));
            store.prefetch_cached(child);
            return Ok(PinnedPath::Below(child));
        }
        let index = node.child_index(key, cmp);
        let child = node.child(index);
        at = at.child(store, index, child)?;
        id = child;
    }
    Err(too_deep())
}

/// The second half of [`get_pinned`]: from where [`walk_pinned`] stopped.
pub(crate) fn finish_pinned(store: &PageStore, path: PinnedPath<'_>, cmp: Comparator, key: &[u8]) -> Result<Option<ValueBytes>> {
    match path {
        PinnedPath::Leaf(id, page) => get_under(store, id, page.clone(), cmp, key, 1),
        PinnedPath::Below(id) => get_under(store, id, store.read_page_prefetched(id, SEARCH_HEAD)?, cmp, key, MAX_DEPTH - 1),
    }
}

/// How many of `keys` (byte order, at most
/// [`SEARCH_GROUP`](super::node::SEARCH_GROUP)) the tree under the pinned
/// root `pinned` (page `root`) holds: [`get_pinned`] of each, the lookups
/// taken a level at a time so that their cache misses overlap. At each
/// level every key's node is searched together ([`search_each`]); below
/// the pinned nodes, the pages' cache slots and then their first lines are
/// asked for together before the leaves are searched. A key whose path
/// leaves the pinned nodes above a branch (a tree deeper than its pinned
/// nodes) finishes alone.
pub(crate) fn count_found(store: &PageStore, root: PageId, pinned: &PinnedNode, keys: &[&[u8]]) -> Result<u64> {
    // Each key's place: inside the pinned nodes, the page below them, or
    // done (found or not in a tree of one pinned leaf).
    enum At<'p> {
        Pinned(PageId, &'p PinnedNode),
        Below(PageId),
        Done,
    }
    let mut at: Vec<At<'_>> = keys.iter().map(|_| At::Pinned(root, pinned)).collect();
    let mut found = 0;
    for _ in 0..MAX_DEPTH {
        // The keys still inside the pinned nodes, with their nodes.
        let mut inside = Vec::with_capacity(keys.len());
        let mut nodes = Vec::with_capacity(keys.len());
        for (k, place) in at.iter().enumerate() {
            if let &At::Pinned(id, node) = place {
                inside.push((k, node));
                nodes.push((expect_node(&node.page, id)?, keys[k]));
            }
        }
        if nodes.is_empty() {
            break;
        }
        let mut results = [Err(0); super::node::SEARCH_GROUP];
        search_each(&nodes, |i, result| results[i] = result);
        for (((k, pinned), (node, _)), result) in inside.into_iter().zip(&nodes).zip(results) {
            if node.is_leaf() {
                found += u64::from(result.is_ok());
                at[k] = At::Done;
                continue;
            }
            let index = match result {
                Ok(i) => i,
                Err(i) => i.saturating_sub(1),
            };
            let child = node.child(index);
            at[k] = if pinned.children.is_empty() {
                store.prefetch_cached(child);
                At::Below(child)
            } else {
                At::Pinned(child, pinned.child(store, index, child)?)
            };
        }
    }
    // The pages below the pinned nodes: their first lines together, then
    // the leaves' searches together.
    for place in &at {
        if let At::Below(id) = place {
            store.prefetch_cached_page_head(*id);
        }
    }
    let mut leaves = Vec::with_capacity(keys.len());
    for (place, &key) in at.iter().zip(keys) {
        let At::Below(id) = *place else { continue };
        let page = store.read_page(id)?;
        if expect_node(&page, id)?.is_leaf() {
            leaves.push((id, page, key));
        } else {
            found += u64::from(get_under(store, id, page, super::bytewise, key, MAX_DEPTH - 1)?.is_some());
        }
    }
    let nodes = leaves
        .iter()
        .map(|(id, page, key)| Ok((expect_node(page, *id)?, *key)))
        .collect::<Result<Vec<_>>>()?;
    search_each(&nodes, |_, result| found += u64::from(result.is_ok()));
    Ok(found)
}

/// Descends from `page` (page `id`, its lines asked for: read with
/// `read_page_prefetched`, or pinned) at most `depth` levels.
fn get_under(
    store: &PageStore,
    mut id: PageId,
    mut page: Page,
    cmp: Comparator,
    key: &[u8],
    depth: usize,
) -> Result<Option<ValueBytes>> {
    for _ in 0..depth {
        let node = expect_node(&page, id)?;
        node.prefetch_rest();
        if node.is_leaf() {
            return match node.search(key, cmp) {
                Ok(i) => load(store, &page, node.leaf_entry(i).1).map(Some),
                Err(_) => Ok(None),
            };
        }
        id = node.child(node.child_index(key, cmp));
        page = store.read_page_prefetched(id, SEARCH_HEAD)?;
    }
    Err(too_deep())
}

/// One entry yielded by a range: its key and value, each a copy when short
/// or a slice of its page.
#[derive(Clone)]
pub struct TreeEntry {
    key: ValueBytes,
    value: ValueBytes,
}

impl TreeEntry {
    /// The entry's key.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// The entry's key as it was read.
    pub(crate) fn key_bytes(&self) -> &ValueBytes {
        &self.key
    }

    /// The entry's value.
    pub fn value(&self) -> &ValueBytes {
        &self.value
    }

    /// The key and the value.
    #[inline]
    pub fn into_key_value(self) -> (ValueBytes, ValueBytes) {
        (self.key, self.value)
    }
}

impl std::fmt::Debug for TreeEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeEntry")
            .field("key", &self.key())
            .field("value", &self.value)
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Edge {
    First,
    Last,
}

/// How far past the entry a scan reads it asks for the leaf's bytes
/// (`Cursor::entry`): about two entries of a 16-byte key and a 100-byte
/// value in a slotted leaf, sixteen keys in a fixed-width leaf (whose keys
/// lie together; the values' lines, read in order when a caller reads them,
/// are left to the hardware's stream prefetch). Measured, full scans of 1M
/// keys (probe, three runs each, entries interleaved): 256 and 512 bytes
/// alike, 128 no faster than none.
const SCAN_AHEAD_BYTES: usize = 256;

/// Asks for what the steps after the one into child `i` of branch `node`
/// will read first, in two stages a step apart: the cached page of the
/// next child (its reference count and first line, which the cache's `get`
/// touches first), and the cache slot of the one after it (whose lock the
/// next step's page-head prefetch takes). A scan thus finds each leaf's
/// first lines loaded when it steps into it.
///
/// Why: a full scan of 10M keys beside a flush (which evicts the scan's
/// lines from the shared cache) spent a tenth of its time in the page
/// cache's `get`, most of it (71%) waiting on the increment of the next
/// leaf's reference count (`perf annotate`, fifty-second session).
#[inline]
fn prefetch_siblings(store: &PageStore, node: &Node<'_>, i: usize, direction: Edge) {
    let (next, after) = match direction {
        Edge::First => (i.checked_add(1), i.checked_add(2)),
        Edge::Last => (i.checked_sub(1), i.checked_sub(2)),
    };
    let count = node.count();
    if let Some(next) = next.filter(|&n| n < count) {
        store.prefetch_cached_page_head(node.child(next));
    }
    if let Some(after) = after.filter(|&n| n < count) {
        store.prefetch_cached(node.child(after));
    }
}

/// A root-to-leaf path; empty when exhausted.
#[derive(Default)]
struct Cursor {
    path: Vec<(Page, usize)>,
}

impl Cursor {
    fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.path.iter().map(|(_, i)| *i)
    }

    /// Descends from `page` along its first or last children to a leaf.
    fn descend(&mut self, store: &PageStore, mut id: PageId, edge: Edge) -> Result<()> {
        loop {
            if self.path.len() >= MAX_DEPTH {
                return Err(too_deep());
            }
            // A leaf read from the file is queued for eviction first: a
            // scan's leaves do not push out what the cache held before it.
            let page = store.read_page_stepped(id)?;
            // No `Node::prefetch` here: a step reads its page from one end,
            // which the hardware prefetcher streams (measured: full scans
            // 2-4% slower with it).
            let node = expect_node(&page, id)?;
            let i = if edge == Edge::First { 0 } else { node.count() - 1 };
            let next = (!node.is_leaf()).then(|| node.child(i));
            self.path.push((page, i));
            match next {
                Some(child) => id = child,
                None => return Ok(()),
            }
        }
    }

    /// Positions on the first entry `>= key` (or `> key` when `exclusive`),
    /// scanning forward, or the last entry `<= key` (`< key`) for `Edge::Last`.
    ///
    /// `pinned` is the root's [`PinnedNode`], when the caller has it: the
    /// descent then takes the pinned inner nodes (no page-cache lookup) as
    /// far as they go, as point lookups do.
    #[allow(clippy::too_many_arguments)]
    fn seek(
        &mut self,
        store: &PageStore,
        root: PageId,
        mut pinned: Option<&PinnedNode>,
        cmp: Comparator,
        key: &[u8],
        exclusive: bool,
        edge: Edge,
    ) -> Result<()> {
        let mut id = root;
        loop {
            if self.path.len() >= MAX_DEPTH {
                return Err(too_deep());
            }
            let page = match pinned {
                Some(at) => {
                    at.prefetch_if_cold();
                    at.page.clone()
                }
                None => store.read_page_prefetched(id, SEARCH_HEAD)?,
            };
            let node = expect_node(&page, id)?;
            if pinned.is_none() {
                node.prefetch_rest();
            }
            if !node.is_leaf() {
                let i = node.child_index(key, cmp);
                let child = node.child(i);
                pinned = match pinned {
                    Some(at) if !at.children.is_empty() => Some(at.child(store, i, child)?),
                    _ => None,
                };
                id = child;
                self.path.push((page, i));
                continue;
            }
            // `at` is the index of the first entry past the bound going forward.
            // Forward, the wanted entry is `at`; backward, it is `at - 1`.
            let at = match node.search(key, cmp) {
                Ok(i) => i + usize::from(exclusive == (edge == Edge::First)),
                Err(i) => i,
            };
            let count = node.count();
            self.path.push((page, 0));
            return match edge {
                Edge::First if at < count => self.set_leaf_index(at),
                Edge::First => {
                    self.set_leaf_index(count - 1)?;
                    self.step(store, Edge::First)
                }
                Edge::Last if at > 0 => self.set_leaf_index(at - 1),
                Edge::Last => self.step(store, Edge::Last),
            };
        }
    }

    fn set_leaf_index(&mut self, i: usize) -> Result<()> {
        if let Some(top) = self.path.last_mut() {
            top.1 = i;
        }
        Ok(())
    }

    /// Moves one entry forward (`Edge::First`) or backward (`Edge::Last`);
    /// empties the path when it runs off the tree.
    #[inline]
    fn step(&mut self, store: &PageStore, direction: Edge) -> Result<()> {
        while let Some((page, i)) = self.path.last_mut() {
            let count = Node::new(page).count();
            let moved = match direction {
                Edge::First if *i + 1 < count => Some(*i + 1),
                Edge::Last if *i > 0 => Some(*i - 1),
                _ => None,
            };
            let Some(next) = moved else {
                self.path.pop();
                continue;
            };
            *i = next;
            let node = Node::new(page);
            if node.is_leaf() {
                return Ok(());
            }
            let child = node.child(next);
            prefetch_siblings(store, &node, next, direction);
            return self.descend(store, child, direction);
        }
        Ok(())
    }

    #[inline]
    fn entry(&self, store: &PageStore) -> Result<Option<TreeEntry>> {
        let Some((page, index)) = self.path.last() else {
            return Ok(None);
        };
        let (key, value) = Node::new(page).leaf_entry(*index);
        // A scan reads the leaf from one end: start loading the entries a
        // few steps on (the line `SCAN_AHEAD_BYTES` past this key). The hardware's
        // stream prefetch left a full scan waiting on the next entry's
        // key a sixth of its time; a wrapping address past the page is
        // only a hint.
        crate::prefetch::prefetch(page.as_ptr().wrapping_add(key.start + SCAN_AHEAD_BYTES));
        Ok(Some(TreeEntry {
            key: ValueBytes::in_page(page, key.start, key.len()),
            value: load(store, page, value)?,
        }))
    }
}

/// A double-ended iterator over the entries of one tree between two bounds.
///
/// It holds its pages by reference count, so it stays valid on its own; the
/// lifetime `'a` ties it to a borrow when the root it walks belongs to an
/// uncommitted writer, whose pages may be reused once the writer moves on.
///
/// Each end's cursor is positioned on that end's first step, so a forward
/// scan pays one descent, not two. While only one cursor exists, the far
/// bound is checked by comparing keys; once both do, they stop where they
/// meet (compared by position, as the bounds no longer matter).
pub struct RangeIter<'a> {
    store: Arc<PageStore>,
    root: PageId,
    cmp: Comparator,
    lower: Bound<ValueBytes>,
    upper: Bound<ValueBytes>,
    front: Option<Cursor>,
    back: Option<Cursor>,
    done: bool,
    /// Keeps a snapshot's pages from being reused while the iterator lives.
    pin: Option<super::store::Snapshot>,
    /// The root pinned in that snapshot's commit, for the seeks.
    pinned: Option<Arc<PinnedNode>>,
    _borrow: PhantomData<&'a ()>,
}

/// A bound kept by the iterator: inline when the key is short, as most
/// are (an allocation per range read otherwise).
fn owned_bound(b: Bound<&[u8]>) -> Bound<ValueBytes> {
    b.map(ValueBytes::copy_of)
}

impl RangeIter<'_> {
    pub(crate) fn new(
        store: Arc<PageStore>,
        root: PageId,
        cmp: Comparator,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<Self> {
        Ok(Self {
            store,
            root,
            cmp,
            lower: owned_bound(lower),
            upper: owned_bound(upper),
            front: None,
            back: None,
            done: root == 0,
            pin: None,
            pinned: None,
            _borrow: PhantomData,
        })
    }

    pub(crate) fn pin(&mut self, snapshot: super::store::Snapshot) {
        self.pin = Some(snapshot);
    }

    /// Seeks through `root`, this tree's root pinned in the pinned
    /// snapshot's commit (`Snapshot::pinned_root`); ignored if it is
    /// another page than the root this iterator walks.
    pub(crate) fn with_pinned_root(&mut self, root: Arc<PinnedNode>) {
        if root.id == self.root {
            self.pinned = Some(root);
        }
    }

    /// Positions `direction`'s cursor at its bound, if not yet done.
    #[inline]
    fn position(&mut self, direction: Edge) -> Result<()> {
        let positioned = match direction {
            Edge::First => self.front.is_some(),
            Edge::Last => self.back.is_some(),
        };
        if positioned { Ok(()) } else { self.seek_bound(direction) }
    }

    /// Positions `direction`'s cursor at its bound: the first step's seek.
    fn seek_bound(&mut self, direction: Edge) -> Result<()> {
        let (slot, bound) = match direction {
            Edge::First => (&mut self.front, &self.lower),
            Edge::Last => (&mut self.back, &self.upper),
        };
        let mut cursor = Cursor::default();
        match bound {
            Bound::Unbounded => cursor.descend(&self.store, self.root, direction)?,
            Bound::Included(k) => {
                cursor.seek(&self.store, self.root, self.pinned.as_deref(), self.cmp, k, false, direction)?
            }
            Bound::Excluded(k) => {
                cursor.seek(&self.store, self.root, self.pinned.as_deref(), self.cmp, k, true, direction)?
            }
        }
        *slot = Some(cursor);
        self.done = self.crossed();
        Ok(())
    }

    /// How many entries of the leaf under `direction`'s cursor, from the
    /// one its next step returns on, are known to come before `key` in that
    /// direction (below it going forward, above it going backward). Looked
    /// at only when that entry is the first of its leaf in the direction:
    /// all of the leaf's if its bound in the tree says so; else, and
    /// anywhere else in a leaf, none (0, as while that end has no cursor).
    /// A merge that knows the newer layers' next key passes that many of
    /// the tree's entries on without comparing each with it
    /// (`MergedRange::step`). The steps may still end sooner (the far
    /// bound, the other end).
    #[inline]
    pub(crate) fn leaf_entries_before(&self, key: &[u8], forward: bool) -> usize {
        let cursor = if forward { &self.front } else { &self.back };
        let Some(path) = cursor.as_ref().map(|cursor| cursor.path.as_slice()) else {
            return 0;
        };
        let Some(((leaf, index), ancestors)) = path.split_last() else {
            return 0;
        };
        // (A leaf of no entries, which only damage makes, has no first.)
        let first = if forward { Some(0) } else { Node::new(leaf).count().checked_sub(1) };
        if first != Some(*index) {
            return 0;
        }
        self.leaf_before(leaf, ancestors, key, forward)
    }

    /// [`leaf_entries_before`](Self::leaf_entries_before) at the first
    /// entry of `leaf`, reached through `ancestors` (the cursor's path
    /// above it): the leaf's count if it lies wholly before `key`, else 0.
    ///
    /// The leaf's bound is the separator key, in the nearest ancestor, of
    /// the subtree after the leaf's (forward: every key of the leaf is
    /// below it) or of the leaf's own subtree (backward: every key is at or
    /// above it). Relies on the branch invariant the descent's
    /// `Node::child_index` relies on: child `i` holds the keys from
    /// separator `i` (included) to separator `i + 1` (excluded), shortened
    /// separators included (`node::separator_len`). That branch is in the
    /// processor's cache already; the leaf's far end is not (comparing with
    /// the leaf's last key instead, a miss per leaf, made a full scan slower
    /// than comparing every entry).
    #[inline(never)]
    fn leaf_before(&self, leaf: &Page, ancestors: &[(Page, usize)], key: &[u8], forward: bool) -> usize {
        for (page, i) in ancestors.iter().rev() {
            let node = Node::new(page);
            let separator = match forward {
                true if *i + 1 < node.count() => *i + 1,
                false if *i > 0 => *i,
                _ => continue,
            };
            let order = compare(self.cmp, node.key(separator), key);
            let before = if forward { order.is_le() } else { order.is_gt() };
            return if before { Node::new(leaf).count() } else { 0 };
        }
        0
    }

    /// Whether a cursor ran out, or the two have passed each other.
    #[inline]
    fn crossed(&self) -> bool {
        match (&self.front, &self.back) {
            (Some(front), Some(back)) => {
                front.path.is_empty() || back.path.is_empty() || front.indices().gt(back.indices())
            }
            (Some(only), None) | (None, Some(only)) => only.path.is_empty(),
            (None, None) => false,
        }
    }

    /// With one cursor only: whether the entry under it lies within the
    /// opposite bound (the upper one going forward).
    #[inline]
    fn within_far_bound(&self, cursor: &Cursor, direction: Edge) -> bool {
        let (bound, wanted) = match direction {
            Edge::First => (&self.upper, Ordering::Less),
            Edge::Last => (&self.lower, Ordering::Greater),
        };
        let (bound, inclusive) = match bound {
            Bound::Unbounded => return true,
            Bound::Included(k) => (k, true),
            Bound::Excluded(k) => (k, false),
        };
        let Some((page, index)) = cursor.path.last() else {
            return false;
        };
        let key = Node::new(page).key(*index);
        let order = compare(self.cmp, key, bound);
        order == wanted || (inclusive && order.is_eq())
    }

    #[inline]
    fn advance(&mut self, direction: Edge) -> Option<Result<TreeEntry>> {
        if self.done {
            return None;
        }
        if let Err(e) = self.position(direction) {
            self.done = true;
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        let (cursor, other) = match direction {
            Edge::First => (self.front.as_ref()?, self.back.as_ref()),
            Edge::Last => (self.back.as_ref()?, self.front.as_ref()),
        };
        let last = match other {
            Some(other) => cursor.indices().eq(other.indices()),
            None if !self.within_far_bound(cursor, direction) => {
                self.done = true;
                return None;
            }
            None => false,
        };
        let cursor = match direction {
            Edge::First => self.front.as_mut()?,
            Edge::Last => self.back.as_mut()?,
        };
        let entry = match cursor.entry(&self.store) {
            Ok(entry) => entry?,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        if let Err(e) = cursor.step(&self.store, direction) {
            self.done = true;
            return Some(Err(e));
        }
        self.done = last || self.crossed();
        Some(Ok(entry))
    }
}

impl Iterator for RangeIter<'_> {
    type Item = Result<TreeEntry>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        self.advance(Edge::First)
    }
}

impl DoubleEndedIterator for RangeIter<'_> {
    #[inline]
    fn next_back(&mut self) -> Option<Self::Item> {
        self.advance(Edge::Last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::node::{LeafEntry, LeafValue, encode};

    #[test]
    fn a_pinned_level_is_cold_once_its_pages_outgrow_the_budget() {
        let entry = LeafEntry {
            key: b"k",
            value: LeafValue::Inline(b"v"),
        };
        let (bytes, _) = encode(4096, 0, &[entry]);
        let page: Page = bytes.into();
        let budget_nodes = COLD_LEVEL_BYTES / page.len() as u64;
        let pinned = |nodes| PinnedNode::at_level(7, page.clone(), nodes).unwrap();
        assert!(!pinned(1).is_cold(), "a root is never cold");
        assert!(!pinned(budget_nodes).is_cold());
        assert!(pinned(budget_nodes + 1).is_cold());
        assert!(pinned(u64::MAX).is_cold(), "the estimate saturates");
    }
}
