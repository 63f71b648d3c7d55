//! The tree store: named copy-on-write B+trees in one page file, pinned
//! snapshots for readers, and a single writer with two ways to commit.
//!
//! # Thread safety
//! [`TreeStore`] is shared freely. One [`TreeWriter`] exists at a time (it
//! holds the writer lock); any number of [`Snapshot`]s read concurrently and
//! never block the writer or each other beyond two short critical sections.
//!
//! Locks, and what each guards:
//! - `Shared::writer`: the allocator, the committed catalog root, the durable
//!   free-list chain; held by a `TreeWriter` for its whole life.
//! - `Shared::published`: the newest commit readers may pin, and the count of
//!   live snapshots per transaction. Taking a snapshot reads the commit and
//!   registers the reader under this one lock, so the writer, which reads the
//!   oldest reader under it after publishing, can never reuse a page a
//!   half-registered reader is about to read.
//!
//! # Commits
//! `non_durable_commit` publishes a new root in memory: readers see it,
//! nothing is synced. `commit` does the same and then makes it durable with
//! the slot protocol (`PageStore::commit_slot`). Transaction ids increase by
//! one per commit of either kind.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::apply::{self, Ctx, Op, check_op};
use super::catalog::TreeInfo;
use super::cmp::{Comparator, bytewise};
use super::cursor::{self, PinnedNode, RangeIter, TreeEntry};
use super::node;
use super::value::ValueBytes;
use crate::error::{Result, StorageError};
use crate::io::{Failure, StorageBackend};
use crate::page::freelist;
use crate::page::{Allocator, PageId, PageRanges, PageStore, Slot, StoreOptions};

/// The catalog tree of pins: durable commits kept readable, their pages
/// out of reuse, until unpinned (persistent savepoints,
/// `design/savepoints.md`). Key: the pin's id (u64, big-endian); value:
/// [`PinnedCommit`]'s encoding.
pub const PINS_TREE: &[u8] = b"sluice.pins";

/// A durable commit kept readable until [`TreeWriter::unpin`]: every page
/// it reached (its `ranges`) stays out of reuse, across reopens too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedCommit {
    /// The commit's transaction id.
    pub txn: u64,
    /// Its checkpoint sequence: the WAL records its trees hold.
    pub checkpoint_seq: u64,
    /// Its catalog.
    pub catalog: TreeInfo,
    ranges: PageRanges,
}

impl PinnedCommit {
    /// `txn | checkpoint_seq | catalog root | catalog len | n | n x (start, end)`,
    /// each a u64, little-endian.
    fn encode(&self) -> Vec<u8> {
        let fields = [
            self.txn,
            self.checkpoint_seq,
            self.catalog.root,
            self.catalog.len,
            self.ranges.len() as u64,
        ];
        let mut out = Vec::with_capacity(8 * (fields.len() + 2 * self.ranges.len()));
        for n in fields.into_iter().chain(self.ranges.iter().flat_map(|&(a, b)| [a, b])) {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out
    }

    /// Checked against the file's page count: ranges sorted, disjoint,
    /// non-empty, inside the file, and the catalog root among them.
    fn decode(bytes: &[u8], page_count: u64) -> Result<Self> {
        let bad = || StorageError::corrupted("malformed pin record");
        if !bytes.len().is_multiple_of(8) {
            return Err(bad());
        }
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8])))
            .collect();
        let [txn, checkpoint_seq, root, len, n, rest @ ..] = &words[..] else {
            return Err(bad());
        };
        if usize::try_from(*n).ok().and_then(|n| n.checked_mul(2)) != Some(rest.len()) {
            return Err(bad());
        }
        let ranges: Vec<(u64, u64)> = rest.chunks_exact(2).map(|r| (r[0], r[1])).collect();
        let mut floor = 1;
        for &(start, end) in &ranges {
            if start < floor || end <= start || end > page_count {
                return Err(bad());
            }
            floor = end;
        }
        let pinned = PinnedCommit {
            txn: *txn,
            checkpoint_seq: *checkpoint_seq,
            catalog: TreeInfo {
                root: *root,
                len: *len,
                meta: Vec::new(),
            },
            ranges: ranges.into(),
        };
        if *root != 0 && !pinned.ranges.iter().any(|&(a, b)| (a..b).contains(root)) {
            return Err(bad());
        }
        Ok(pinned)
    }
}

/// Options for opening a [`TreeStore`].
#[derive(Clone, Copy, Debug)]
pub struct TreeStoreOptions {
    /// Bytes of page cache.
    pub cache_bytes: usize,
}

impl Default for TreeStoreOptions {
    fn default() -> Self {
        Self { cache_bytes: 1 << 30 }
    }
}

impl TreeStoreOptions {
    fn store_options(&self) -> StoreOptions {
        StoreOptions {
            cache_bytes: self.cache_bytes,
            validate: node::validate,
            ..StoreOptions::default()
        }
    }
}

/// Free pages `relocate_all` keeps below its target beyond what it and the
/// two commits after it need, as a margin.
const RELOCATION_SLACK: u64 = 4;

/// What [`TreeWriter::relocate_all`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Relocation {
    /// Pages written below the target: moved pages and the nodes above them.
    /// Zero when the file is already as small as relocation can make it.
    pub pages_written: u64,
    /// The page count the file shrinks to, about, once the relocation's
    /// commit is durable and a later durable commit no snapshot of the older
    /// commits outlives.
    pub target_pages: u64,
}

/// A published commit: what a snapshot pins.
struct Commit {
    txn: u64,
    checkpoint_seq: u64,
    catalog: TreeInfo,
    /// The inner nodes point lookups have reached, by tree root
    /// (`Snapshot::pinned_root`); freed with the commit.
    pinned: Mutex<HashMap<PageId, Arc<PinnedNode>>>,
}

impl Commit {
    fn new(txn: u64, checkpoint_seq: u64, catalog: TreeInfo) -> Self {
        Self {
            txn,
            checkpoint_seq,
            catalog,
            pinned: Mutex::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for Commit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commit")
            .field("txn", &self.txn)
            .field("checkpoint_seq", &self.checkpoint_seq)
            .field("catalog", &self.catalog)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Published {
    commit: Arc<Commit>,
    /// Live snapshots per pinned transaction.
    readers: BTreeMap<u64, usize>,
}

struct WriterState {
    alloc: Allocator,
    /// The newest published commit.
    txn: u64,
    catalog: TreeInfo,
    /// The newest durable commit.
    durable: Slot,
    /// Pages of the durable commit's free-list chain.
    freelist_chain: Vec<PageId>,
    /// The log ids the next durable commit records (`Slot::log_id` and
    /// `previous_log_id`).
    log_ids: (u32, u32),
}

struct Shared {
    pages: Arc<PageStore>,
    writer: Mutex<WriterState>,
    published: Mutex<Published>,
}

impl Shared {
    fn oldest_reader(&self) -> Option<u64> {
        self.published.lock().readers.keys().next().copied()
    }

    /// Frees what the oldest live snapshot allows (`Allocator::reclaim`),
    /// and drops from the page cache the pages no snapshot reaches any
    /// more. A retired page stays cached until then: readers of the
    /// commits before the one that replaced it still read it (forgotten at
    /// once, as until the fortieth session, it was read back from the file
    /// by every reader that began before a flush, under the cache's locks
    /// beside the flush's own inserts: two threads' point reads fell to a
    /// tenth of their rate for a quarter of a second after a flush).
    ///
    /// Every caller of `Allocator::reclaim` goes through here: a page the
    /// allocator frees must leave the cache before the writer can
    /// allocate it again (the allocator's module docs).
    fn reclaim(&self, state: &mut WriterState) {
        state.alloc.reclaim(self.oldest_reader());
        for page in state.alloc.take_unreachable() {
            self.pages.forget_cached(page);
        }
    }
}

/// Named copy-on-write B+trees in one page file. Cloning shares the store.
#[derive(Clone)]
pub struct TreeStore {
    shared: Arc<Shared>,
}

impl TreeStore {
    /// Writes a new, empty store over `backend` (its contents are discarded).
    pub fn create(backend: impl StorageBackend, db_id: u128, options: TreeStoreOptions) -> Result<Self> {
        let (pages, slot) = PageStore::create(Box::new(backend), options.store_options(), db_id)?;
        Self::from_parts(Arc::new(pages), slot, Vec::new(), Vec::new())
    }

    /// Opens the newest durable commit of an existing store.
    pub fn open(backend: impl StorageBackend, options: TreeStoreOptions) -> Result<Self> {
        let (pages, slot) = PageStore::open(Box::new(backend), options.store_options())?;
        if slot.catalog_root >= slot.page_count || slot.freelist_head >= slot.page_count {
            return Err(StorageError::corrupted("commit slot points outside the file"));
        }
        let pages = Arc::new(pages);
        if pages.fell_back() {
            super::check::verify_commit(&pages, slot.catalog_root, slot.txn_id)?;
        }
        let (free, chain) = freelist::read(&pages, slot.freelist_head, slot.page_count)?;
        let store = Self::from_parts(pages, slot, free, chain)?;
        // Before anything is allocated: the free list lists the pages pins
        // hold (the durable commit does not reach them).
        let pins = store.pins()?;
        let mut state = store.shared.writer.lock();
        for (id, pin) in pins {
            state.alloc.pin(id, pin.ranges);
        }
        drop(state);
        Ok(store)
    }

    /// The pins of the newest published commit, by id (read through a
    /// snapshot, so no page it reads is reused meanwhile).
    pub fn pins(&self) -> Result<Vec<(u64, PinnedCommit)>> {
        // Both under the writer lock, so the page count is the snapshot's
        // commit's: a pin dropped and its pages trimmed in between would
        // otherwise look like a record naming pages past the file's end.
        let (snapshot, page_count) = {
            let state = self.shared.writer.lock();
            (self.snapshot(), state.alloc.page_count())
        };
        read_pins(&self.shared.pages, &snapshot.inner.commit.catalog, page_count)
    }

    /// A snapshot of a pinned commit. It counts as a reader of that old
    /// commit while it lives, so pages retired since wait for it too.
    pub fn snapshot_of(&self, pin: &PinnedCommit) -> Snapshot {
        let commit = Arc::new(Commit::new(pin.txn, pin.checkpoint_seq, pin.catalog.clone()));
        *self.shared.published.lock().readers.entry(pin.txn).or_insert(0) += 1;
        Snapshot {
            inner: Arc::new(SnapshotInner {
                shared: self.shared.clone(),
                commit,
            }),
        }
    }

    /// Pages named by pins, and how many of them `snapshot` reaches (its
    /// trees, their overflow runs, its catalog): what savepoints add to
    /// the file beyond a commit is about the first less the second.
    pub fn pinned_pages(&self, snapshot: &Snapshot) -> Result<(u64, u64)> {
        let pinned = self.shared.writer.lock().alloc.pinned_count();
        if pinned == 0 {
            return Ok((0, 0));
        }
        let mut reached = Vec::new();
        let catalog = &snapshot.inner.commit.catalog;
        super::shape::pages(&self.shared.pages, catalog.root, &mut reached)?;
        for (_, tree) in list_trees(&self.shared.pages, catalog)? {
            super::shape::pages(&self.shared.pages, tree.root, &mut reached)?;
        }
        let state = self.shared.writer.lock();
        let shared = reached.into_iter().filter(|&page| state.alloc.pinned(page)).count();
        Ok((pinned, shared as u64))
    }

    fn from_parts(pages: Arc<PageStore>, slot: Slot, free: Vec<u64>, chain: Vec<PageId>) -> Result<Self> {
        let catalog = TreeInfo {
            root: slot.catalog_root,
            len: slot.catalog_len,
            meta: Vec::new(),
        };
        let commit = Arc::new(Commit::new(slot.txn_id, slot.checkpoint_seq, catalog.clone()));
        let state = WriterState {
            alloc: Allocator::new(slot.page_count, free, slot.txn_id),
            txn: slot.txn_id,
            catalog,
            durable: slot,
            freelist_chain: chain,
            log_ids: (slot.log_id, slot.previous_log_id),
        };
        Ok(Self {
            shared: Arc::new(Shared {
                pages,
                writer: Mutex::new(state),
                published: Mutex::new(Published {
                    commit,
                    readers: BTreeMap::new(),
                }),
            }),
        })
    }

    /// The random id written into the header at creation.
    pub fn db_id(&self) -> u128 {
        self.shared.pages.db_id()
    }

    /// The newest durable commit's checkpoint sequence.
    pub fn durable_checkpoint_seq(&self) -> u64 {
        self.shared.writer.lock().durable.checkpoint_seq
    }

    /// The log ids of the newest durable commit: the log its commits
    /// continue in and the one before it (`Slot::log_id`,
    /// `previous_log_id`; 0 for none).
    pub fn log_ids(&self) -> (u32, u32) {
        let durable = self.shared.writer.lock().durable;
        (durable.log_id, durable.previous_log_id)
    }

    /// The backend's first failure, if any: the store then refuses all work.
    pub fn failure(&self) -> Option<Failure> {
        self.shared.pages.failure()
    }

    /// Bytes in the data file, once every page written so far has reached
    /// it: an error if that write fails (it also latches the store), never
    /// the length of a file that lacks them.
    pub fn file_len(&self) -> Result<u64> {
        self.shared.pages.file_len()
    }

    /// Pins the newest published commit for reading.
    pub fn snapshot(&self) -> Snapshot {
        let mut published = self.shared.published.lock();
        let commit = published.commit.clone();
        *published.readers.entry(commit.txn).or_insert(0) += 1;
        Snapshot {
            inner: Arc::new(SnapshotInner {
                shared: self.shared.clone(),
                commit,
            }),
        }
    }

    /// Takes the writer lock, waiting for the current writer to finish.
    pub fn writer(&self) -> Result<TreeWriter<'_>> {
        let mut state = self.shared.writer.lock();
        if let Some(failure) = self.shared.pages.failure() {
            return Err(failure.later_error());
        }
        // Pages the last commits retired while a reader could still reach
        // them may be free by now (an engine's state shows a tree commit's
        // tree only after its commit, and its older tree's pages waited for
        // that state to go). Not looking left them to the next commit: a
        // tree commit's writer kept about three copies of the tree, not two,
        // and a compaction aimed at a page count too high, leaving the file
        // 2.2 times a fresh load's (`tests/page_leak_review.rs`).
        self.shared.reclaim(&mut state);
        let catalog = state.catalog.clone();
        // Every page this writer writes belongs to its commit (the free list
        // of a durable commit included): stamp them with its id.
        self.shared.pages.set_write_generation(state.txn + 1);
        self.shared.pages.set_cache_writes(true);
        Ok(TreeWriter {
            shared: &self.shared,
            state,
            catalog,
            changes: BTreeMap::new(),
            fresh: HashSet::new(),
            forget_at_once: false,
            retired: Vec::new(),
        })
    }

    /// The page cache's counters.
    pub(crate) fn cache_stats(&self) -> crate::page::CacheCounters {
        self.shared.pages.cache_stats()
    }

    /// The size of a page of the file, in bytes.
    pub fn page_size(&self) -> usize {
        self.shared.pages.page_size()
    }

    /// Allocator figures: `(pages in the file, pages free now)`.
    pub fn page_counts(&self) -> (u64, usize) {
        let state = self.shared.writer.lock();
        (state.alloc.page_count(), state.alloc.free_count())
    }

    /// Verifies every page reachable from the newest commit against its
    /// checksum, the key order of every tree whose order `cmp_for` knows
    /// (`None`: an order this process cannot compute, checked for structure
    /// only, never reported as corrupt for it), the entry counts, and that
    /// every page is either reachable or accounted free, exactly once.
    pub fn check_integrity(
        &self,
        cmp_for: &dyn Fn(&[u8], &TreeInfo) -> Option<Comparator>,
    ) -> Result<super::check::Report> {
        let state = self.shared.writer.lock();
        let pins: Vec<(u64, TreeInfo)> = read_pins(&self.shared.pages, &state.catalog, state.alloc.page_count())?
            .into_iter()
            .map(|(_, pin)| (pin.txn, pin.catalog))
            .collect();
        super::check::run(
            &self.shared.pages,
            state.txn,
            &state.catalog,
            &state.alloc,
            &state.freelist_chain,
            &pins,
            cmp_for,
        )
    }

    /// Levels from the root to the leaves of a tree (0 for an empty tree).
    pub fn height(&self, tree: &TreeInfo) -> Result<usize> {
        super::check::height(&self.shared.pages, tree.root)
    }
}

struct SnapshotInner {
    shared: Arc<Shared>,
    commit: Arc<Commit>,
}

impl Drop for SnapshotInner {
    fn drop(&mut self) {
        let mut published = self.shared.published.lock();
        if let Some(count) = published.readers.get_mut(&self.commit.txn) {
            *count -= 1;
            if *count == 0 {
                published.readers.remove(&self.commit.txn);
            }
        }
    }
}

/// A read view pinned on one commit: it never changes, and no page it can
/// reach is reused while it (or an iterator made from it) lives.
#[derive(Clone)]
pub struct Snapshot {
    inner: Arc<SnapshotInner>,
}

impl Snapshot {
    /// Whether this is the only live snapshot of the store, of any commit,
    /// and its holder the only one (no clone of it lives elsewhere): then
    /// no one else can read a page of any commit.
    pub(crate) fn is_only_view(&self) -> bool {
        if Arc::strong_count(&self.inner) != 1 {
            return false;
        }
        let published = self.inner.shared.published.lock();
        published.readers.len() == 1 && published.readers.get(&self.txn()) == Some(&1)
    }

    /// The pinned commit's transaction id.
    pub fn txn(&self) -> u64 {
        self.inner.commit.txn
    }

    /// The pinned commit's checkpoint sequence (as of its last durable commit
    /// or the value given to `commit`).
    pub fn checkpoint_seq(&self) -> u64 {
        self.inner.commit.checkpoint_seq
    }

    fn pages(&self) -> &Arc<PageStore> {
        &self.inner.shared.pages
    }

    /// The named tree, if it exists in this commit.
    pub fn tree(&self, name: &[u8]) -> Result<Option<TreeInfo>> {
        lookup_tree(self.pages(), &self.inner.commit.catalog, name)
    }

    /// Every tree, in name order.
    pub fn list_trees(&self) -> Result<Vec<(Vec<u8>, TreeInfo)>> {
        list_trees(self.pages(), &self.inner.commit.catalog)
    }

    /// The value under `key` in `tree`.
    pub fn get(&self, tree: &TreeInfo, cmp: Comparator, key: &[u8]) -> Result<Option<ValueBytes>> {
        cursor::get(self.pages(), tree.root, cmp, key)
    }

    /// The root of `tree` pinned in this snapshot's commit (`None` for an
    /// empty tree), for [`get_pinned`](Self::get_pinned): shared by every
    /// snapshot of the commit, so lookups from later transactions find the
    /// inner nodes earlier ones pinned.
    pub(crate) fn pinned_root(&self, tree: &TreeInfo) -> Result<Option<Arc<PinnedNode>>> {
        if tree.root == 0 {
            return Ok(None);
        }
        if let Some(pinned) = self.inner.commit.pinned.lock().get(&tree.root) {
            return Ok(Some(pinned.clone()));
        }
        // Read outside the lock; a racing reader's copy is as good.
        let pinned = Arc::new(PinnedNode::new(tree.root, self.pages().read_page(tree.root)?)?);
        let mut map = self.inner.commit.pinned.lock();
        Ok(Some(map.entry(tree.root).or_insert(pinned).clone()))
    }

    /// [`get`](Self::get), starting from the tree's root pinned by
    /// [`pinned_root`](Self::pinned_root).
    pub(crate) fn get_pinned(
        &self,
        tree: &TreeInfo,
        root: &PinnedNode,
        cmp: Comparator,
        key: &[u8],
    ) -> Result<Option<ValueBytes>> {
        cursor::get_pinned(self.pages(), tree.root, root, cmp, key)
    }

    /// [`get_pinned`](Self::get_pinned) in two halves, for a caller with
    /// other misses to wait for between them: the walk through the pinned
    /// nodes, which starts loading the next page's cache slot ...
    pub(crate) fn walk_pinned<'a>(
        &self,
        tree: &TreeInfo,
        root: &'a PinnedNode,
        cmp: Comparator,
        key: &[u8],
    ) -> Result<cursor::PinnedPath<'a>> {
        cursor::walk_pinned(self.pages(), tree.root, root, cmp, key)
    }

    /// How many of `keys` (byte order) `tree`, whose root is pinned as
    /// `root`, holds: their lookups taken together, a level at a time, so
    /// that their cache misses overlap (`cursor::count_found`). REQUIRES:
    /// at most [`SEARCH_GROUP`](super::node::SEARCH_GROUP) keys.
    pub(crate) fn count_found(&self, tree: &TreeInfo, root: &PinnedNode, keys: &[&[u8]]) -> Result<u64> {
        cursor::count_found(self.pages(), tree.root, root, keys)
    }

    /// ... and the rest of the lookup from where that walk stopped.
    pub(crate) fn finish_pinned(
        &self,
        path: cursor::PinnedPath<'_>,
        cmp: Comparator,
        key: &[u8],
    ) -> Result<Option<ValueBytes>> {
        cursor::finish_pinned(self.pages(), path, cmp, key)
    }

    /// Entries of `tree` between two bounds, in either direction.
    pub fn range(
        &self,
        tree: &TreeInfo,
        cmp: Comparator,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<RangeIter<'static>> {
        let mut iter = RangeIter::new(self.pages().clone(), tree.root, cmp, lower, upper)?;
        iter.pin(self.clone());
        Ok(iter)
    }

    /// [`range`](Self::range), seeking through the tree's root pinned by
    /// [`pinned_root`](Self::pinned_root).
    pub(crate) fn range_pinned(
        &self,
        tree: &TreeInfo,
        root: Arc<PinnedNode>,
        cmp: Comparator,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<RangeIter<'static>> {
        let mut iter = self.range(tree, cmp, lower, upper)?;
        iter.with_pinned_root(root);
        Ok(iter)
    }
}

impl Snapshot {
    /// The pages and bytes `tree` uses in this snapshot (for `TableStats`);
    /// `None`, a table with no tree yet, has the shape of an empty tree.
    pub fn shape(&self, tree: Option<&TreeInfo>) -> Result<super::TreeShape> {
        super::shape::shape(&self.inner.shared.pages, tree.map_or(0, |t| t.root))
    }

    /// The smallest entry of `tree`.
    pub fn first(&self, tree: &TreeInfo, cmp: Comparator) -> Result<Option<TreeEntry>> {
        self.range(tree, cmp, Bound::Unbounded, Bound::Unbounded)?
            .next()
            .transpose()
    }

    /// The largest entry of `tree`.
    pub fn last(&self, tree: &TreeInfo, cmp: Comparator) -> Result<Option<TreeEntry>> {
        self.range(tree, cmp, Bound::Unbounded, Bound::Unbounded)?
            .next_back()
            .transpose()
    }
}

/// The pins recorded in the commit whose catalog is `catalog`.
/// REQUIRES: no page that commit reaches is reused while this runs (a
/// snapshot of it, or the writer lock with it the writer's commit).
fn read_pins(pages: &Arc<PageStore>, catalog: &TreeInfo, page_count: u64) -> Result<Vec<(u64, PinnedCommit)>> {
    let Some(tree) = lookup_tree(pages, catalog, PINS_TREE)? else {
        return Ok(Vec::new());
    };
    RangeIter::new(pages.clone(), tree.root, bytewise, Bound::Unbounded, Bound::Unbounded)?
        .map(|entry| {
            let entry = entry?;
            let id = entry
                .key()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StorageError::corrupted("malformed pin id"))?;
            Ok((id, PinnedCommit::decode(entry.value().as_bytes(), page_count)?))
        })
        .collect()
}

fn lookup_tree(pages: &PageStore, catalog: &TreeInfo, name: &[u8]) -> Result<Option<TreeInfo>> {
    cursor::get(pages, catalog.root, bytewise, name)?
        .map(|bytes| TreeInfo::decode(bytes.as_bytes()))
        .transpose()
}

fn list_trees(pages: &Arc<PageStore>, catalog: &TreeInfo) -> Result<Vec<(Vec<u8>, TreeInfo)>> {
    RangeIter::new(
        pages.clone(),
        catalog.root,
        bytewise,
        Bound::Unbounded,
        Bound::Unbounded,
    )?
    .map(|entry| {
        let entry = entry?;
        Ok((entry.key().to_vec(), TreeInfo::decode(entry.value().as_bytes())?))
    })
    .collect()
}

/// The single writer. Changes are private until [`non_durable_commit`]
/// or [`commit`]; dropping the writer without committing aborts them.
///
/// [`non_durable_commit`]: TreeWriter::non_durable_commit
/// [`commit`]: TreeWriter::commit
pub struct TreeWriter<'a> {
    shared: &'a Shared,
    state: MutexGuard<'a, WriterState>,
    /// The catalog as of the last commit; `changes` go on top at commit.
    catalog: TreeInfo,
    /// Trees created, changed (`Some`) or deleted (`None`) since the last commit.
    changes: BTreeMap<Vec<u8>, Option<TreeInfo>>,
    fresh: HashSet<PageId>,
    retired: Vec<PageId>,
    /// See [`forget_replaced_at_once`](Self::forget_replaced_at_once).
    forget_at_once: bool,
}

impl TreeWriter<'_> {
    /// Whether the published pages this writer replaces from now on leave
    /// the page cache at once (`true`: the caller knows of no reader that
    /// will read them) or once no snapshot reaches them (`false`, the
    /// default: `Shared::reclaim`). Either is correct; they differ in
    /// memory and in a reader's misses. Left for the allocator's readers
    /// gate, a flush's replaced leaves pile up for a whole part of it, and
    /// freed then in thousands, they leave their memory in the readers'
    /// heap arena instead of serving the flush's next pages (the cache's
    /// spares): a checkpoint with no reader about peaked 40 MiB higher.
    /// Forgotten at once while a reader of the older tree lives, each
    /// leaf it reads is read back from the file.
    pub fn forget_replaced_at_once(&mut self, at_once: bool) {
        self.forget_at_once = at_once;
    }

    /// The newest durable commit's checkpoint sequence, read under the writer
    /// lock: no durable commit can change it while this writer lives, so a
    /// caller may compare against it before choosing what to commit.
    pub fn durable_checkpoint_seq(&self) -> u64 {
        self.state.durable.checkpoint_seq
    }

    /// Pages this writer writes from now on bypass the page cache (a bulk
    /// write: see `PageStore::set_cache_writes`); readers load them from the
    /// file when they need them.
    pub fn bypass_cache(&mut self) {
        self.shared.pages.set_cache_writes(false);
    }

    /// Records `current` as the WAL the file's commits continue in, and
    /// `previous` as the one before it, from the next durable commit on
    /// (see `Slot::log_id`).
    pub fn set_log_ids(&mut self, current: u32, previous: u32) {
        self.state.log_ids = (current, previous);
    }

    /// The transaction id the next commit will get.
    pub fn next_txn(&self) -> u64 {
        self.state.txn + 1
    }

    /// Bytes of the file's pages in use (not free) as this writer leaves
    /// them: the trees' size, for sizing what is flushed into them.
    pub fn used_bytes(&self) -> u64 {
        let used = self.state.alloc.page_count().saturating_sub(self.state.alloc.free_count() as u64);
        used.saturating_mul(self.shared.pages.page_size() as u64)
    }

    /// The named tree as this writer sees it.
    pub fn tree(&self, name: &[u8]) -> Result<Option<TreeInfo>> {
        match self.changes.get(name) {
            Some(change) => Ok(change.clone()),
            None => lookup_tree(&self.shared.pages, &self.catalog, name),
        }
    }

    /// Every tree as this writer sees it, in name order.
    pub fn list_trees(&self) -> Result<Vec<(Vec<u8>, TreeInfo)>> {
        let mut trees: BTreeMap<Vec<u8>, TreeInfo> =
            list_trees(&self.shared.pages, &self.catalog)?.into_iter().collect();
        for (name, change) in &self.changes {
            match change {
                Some(info) => trees.insert(name.clone(), info.clone()),
                None => trees.remove(name),
            };
        }
        Ok(trees.into_iter().collect())
    }

    /// Creates an empty tree with `meta` unless it exists; returns the tree.
    pub fn create_tree(&mut self, name: &[u8], meta: &[u8]) -> Result<TreeInfo> {
        check_op(name, None)?;
        if let Some(info) = self.tree(name)? {
            return Ok(info);
        }
        let info = TreeInfo {
            meta: meta.to_vec(),
            ..TreeInfo::default()
        };
        self.changes.insert(name.to_vec(), Some(info.clone()));
        Ok(info)
    }

    /// Deletes a tree and frees its pages; returns whether it existed.
    pub fn delete_tree(&mut self, name: &[u8]) -> Result<bool> {
        let Some(info) = self.tree(name)? else {
            return Ok(false);
        };
        let mut ctx = self.ctx(bytewise);
        apply::free_tree(&mut ctx, info.root)?;
        self.changes.insert(name.to_vec(), None);
        Ok(true)
    }

    /// Renames a tree; returns whether `from` existed.
    /// REQUIRES: no tree named `to` exists.
    pub fn rename_tree(&mut self, from: &[u8], to: &[u8]) -> Result<bool> {
        check_op(to, None)?;
        let Some(info) = self.tree(from)? else {
            return Ok(false);
        };
        debug_assert!(self.tree(to)?.is_none(), "rename target exists");
        self.changes.insert(from.to_vec(), None);
        self.changes.insert(to.to_vec(), Some(info));
        Ok(true)
    }

    fn ctx(&mut self, cmp: Comparator) -> Ctx<'_> {
        Ctx {
            store: &self.shared.pages,
            alloc: &mut self.state.alloc,
            fresh: &mut self.fresh,
            retired: &mut self.retired,
            forget_at_once: self.forget_at_once,
            cmp,
            len_delta: 0,
        }
    }

    /// Applies a batch of puts and deletes to the tree `name` (created with
    /// empty metadata if missing) in one pass.
    ///
    /// REQUIRES: `ops` sorted by `cmp` with unique keys; `cmp` is the tree's
    /// comparator.
    pub fn apply(&mut self, name: &[u8], cmp: Comparator, ops: &[Op<'_>]) -> Result<()> {
        for &(key, value) in ops {
            check_op(key, value)?;
        }
        let mut info = self.create_tree(name, &[])?;
        let mut ctx = self.ctx(cmp);
        info.root = apply::apply(&mut ctx, info.root, ops)?;
        let delta = ctx.len_delta;
        info.len = info
            .len
            .checked_add_signed(delta)
            .ok_or_else(|| StorageError::corrupted("tree entry count underflow"))?;
        self.changes.insert(name.to_vec(), Some(info));
        Ok(())
    }

    /// Inserts one entry; returns the previous value.
    pub fn insert(&mut self, name: &[u8], cmp: Comparator, key: &[u8], value: &[u8]) -> Result<Option<ValueBytes>> {
        check_op(key, Some(value))?;
        let old = self.get(name, cmp, key)?;
        self.apply(name, cmp, &[(key, Some(value))])?;
        Ok(old)
    }

    /// Removes one entry; returns its value.
    pub fn remove(&mut self, name: &[u8], cmp: Comparator, key: &[u8]) -> Result<Option<ValueBytes>> {
        let old = self.get(name, cmp, key)?;
        if old.is_some() {
            self.apply(name, cmp, &[(key, None)])?;
        }
        Ok(old)
    }

    /// The value under `key` as this writer sees it.
    pub fn get(&self, name: &[u8], cmp: Comparator, key: &[u8]) -> Result<Option<ValueBytes>> {
        match self.tree(name)? {
            Some(info) => cursor::get(&self.shared.pages, info.root, cmp, key),
            None => Ok(None),
        }
    }

    /// Entries of a tree as this writer sees it, between two bounds.
    pub fn range(
        &self,
        name: &[u8],
        cmp: Comparator,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
    ) -> Result<RangeIter<'_>> {
        let root = self.tree(name)?.map_or(0, |info| info.root);
        RangeIter::new(self.shared.pages.clone(), root, cmp, lower, upper)
    }

    /// Compaction's move: every page at or above a target page count (the
    /// catalog's, the trees', overflow runs) is copied into a free page below
    /// it, and the nodes above moved pages are rewritten (copy-on-write).
    /// Nothing is allocated at or above the target, so the file never grows;
    /// the target is the smallest page count whose free pages hold all the
    /// copies plus the free lists of the next two durable commits.
    ///
    /// The originals are retired with the next commit. The caller's protocol
    /// (`Engine::compact`): `relocate_all`, `commit`, let go of every snapshot
    /// of the older commits, then one more `commit`, which reclaims the
    /// originals and trims the file to about the target. Pages held by
    /// snapshots still live then stay, and the file shrinks less.
    pub fn relocate_all(&mut self) -> Result<Relocation> {
        // A pinned commit's pages must stay where its pin names them.
        if self.has_pins() {
            return Err(StorageError::Internal("compaction with pinned commits (savepoints)".into()));
        }
        self.fold_changes()?;
        let pages = &self.shared.pages;
        let page_count = self.state.alloc.page_count();
        let plan = apply::RelocationPlan::new(pages, self.catalog.root)?;
        // Two free lists: the relocation's own commit's and the trimming
        // commit's; a free list never lists more than `page_count` pages.
        let free_list = freelist::pages_needed(pages.page_size(), page_count as usize) as u64;
        let reserve = 2 * free_list + RELOCATION_SLACK;
        let Some(target) = plan.target(self.state.alloc.free_pages(), page_count, reserve) else {
            return Ok(Relocation {
                pages_written: 0,
                target_pages: page_count,
            });
        };
        let old_root = self.catalog.root;
        // What this writer holds unpublished before the relocation: nothing,
        // as compaction follows a checkpoint; so an abandoned relocation is
        // undone by releasing every fresh page and forgetting what it
        // retired (the catalog root stays the old one).
        let (fresh_before, retired_before) = (self.fresh.len(), self.retired.len());
        let mut ctx = self.ctx(bytewise);
        let Some((root, written)) = apply::relocate(&mut ctx, &plan, target, old_root)? else {
            if fresh_before != 0 {
                return Err(StorageError::Internal(
                    "a relocation to abandon followed unpublished writes".into(),
                ));
            }
            for page in self.fresh.drain() {
                self.state.alloc.release_unpublished(page);
            }
            self.retired.truncate(retired_before);
            return Ok(Relocation {
                pages_written: 0,
                target_pages: page_count,
            });
        };
        self.catalog.root = root;
        Ok(Relocation {
            pages_written: written,
            target_pages: target,
        })
    }

    /// Writes the trees changed since the last commit into the catalog.
    fn fold_changes(&mut self) -> Result<()> {
        let changes = std::mem::take(&mut self.changes);
        let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = changes
            .into_iter()
            .map(|(name, info)| (name, info.map(|i| i.encode())))
            .collect();
        let ops: Vec<Op<'_>> = encoded.iter().map(|(k, v)| (k.as_slice(), v.as_deref())).collect();
        let mut catalog = self.catalog.clone();
        let mut ctx = self.ctx(bytewise);
        catalog.root = apply::apply(&mut ctx, catalog.root, &ops)?;
        let delta = ctx.len_delta;
        catalog.len = catalog
            .len
            .checked_add_signed(delta)
            .ok_or_else(|| StorageError::corrupted("catalog count underflow"))?;
        self.catalog = catalog;
        Ok(())
    }

    /// Publishes the changes to new snapshots without syncing anything;
    /// returns the commit's transaction id.
    pub fn non_durable_commit(mut self) -> Result<u64> {
        self.publish(None)
    }

    /// Publishes the changes and makes them, and every earlier commit,
    /// durable, recording `checkpoint_seq` in the commit slot; returns the
    /// commit's transaction id.
    ///
    /// Fails with [`StorageError::Internal`] if `checkpoint_seq` is below the
    /// durable one ([`durable_checkpoint_seq`](Self::durable_checkpoint_seq)):
    /// nothing is published and the writer's changes are dropped, as by
    /// [`abort`](Self::abort).
    pub fn commit(mut self, checkpoint_seq: u64) -> Result<u64> {
        self.commit_and_continue(checkpoint_seq)
    }

    /// [`commit`](Self::commit), keeping the writer: its next changes go on
    /// top of this commit. A long writer (a flush) commits durably part way
    /// so that the pages it has replaced can be reused before it ends.
    pub fn commit_and_continue(&mut self, checkpoint_seq: u64) -> Result<u64> {
        // Invariant (BRIEF §1, sequences never go backwards): the durable
        // `checkpoint_seq` only grows. Recovery replays the WAL after it and
        // WAL segments at or below it are deleted, so a smaller value would
        // replay commits already in the tree, or name records that are gone.
        // Checked here, before anything is published, so a refused commit
        // changes nothing; this is the only way a durable slot is written.
        let durable = self.state.durable.checkpoint_seq;
        if checkpoint_seq < durable {
            return Err(StorageError::Internal(format!(
                "durable commit with checkpoint_seq {checkpoint_seq} below the durable checkpoint_seq {durable}"
            )));
        }
        let txn = self.publish(Some(checkpoint_seq))?;
        self.make_durable(txn, checkpoint_seq)?;
        Ok(txn)
    }

    /// Discards every change since the last commit.
    pub fn abort(self) {}

    /// Pins the durable commit under `id` (see [`PinnedCommit`]): its pages
    /// stay out of reuse until [`unpin`](Self::unpin), across reopens. The
    /// pin's record is made durable by a commit at the same checkpoint
    /// sequence before this returns.
    ///
    /// REQUIRES (else `Internal`, nothing pinned): the published commit is
    /// the durable one and this writer has changed nothing, so the durable
    /// commit is what every reader of the newest commit sees.
    pub fn pin_durable(&mut self, id: u64) -> Result<PinnedCommit> {
        let durable = self.state.durable;
        if !self.at_durable() {
            return Err(StorageError::Internal(
                "a pin needs the writer at the durable commit, with no changes".into(),
            ));
        }
        if self.tree(PINS_TREE)?.is_some() && self.get(PINS_TREE, bytewise, &id.to_be_bytes())?.is_some() {
            return Err(StorageError::Internal(format!("pin {id} exists")));
        }
        let pin = PinnedCommit {
            txn: durable.txn_id,
            checkpoint_seq: durable.checkpoint_seq,
            catalog: self.catalog.clone(),
            ranges: self.state.alloc.durable_ranges(),
        };
        // Pinned before the record's commit retires any page of the commit.
        self.state.alloc.pin(id, pin.ranges.clone());
        let recorded = self
            .apply(PINS_TREE, bytewise, &[(&id.to_be_bytes(), Some(&pin.encode()))])
            .and_then(|()| self.commit_and_continue(durable.checkpoint_seq));
        if let Err(e) = recorded {
            // Not durable, or the store is failed and writes nothing more.
            self.state.alloc.unpin(id);
            return Err(e);
        }
        Ok(pin)
    }

    /// Drops pin `id` (returns whether it existed): its record goes with a
    /// durable commit at the durable checkpoint sequence, then the pages
    /// only it kept are free.
    ///
    /// REQUIRES: no reader of the pinned commit ([`TreeStore::snapshot_of`])
    /// is left, and nothing that could still ask for it survives a crash
    /// (the savepoint's deletion is durable). And, as for
    /// [`pin_durable`](Self::pin_durable), the writer at the durable commit
    /// with no changes (else `Internal`, nothing changed): a durable commit
    /// of a published flush at the old checkpoint sequence would have
    /// recovery count its entries twice.
    pub fn unpin(&mut self, id: u64) -> Result<bool> {
        if self.tree(PINS_TREE)?.is_none() || self.get(PINS_TREE, bytewise, &id.to_be_bytes())?.is_none() {
            self.state.alloc.unpin(id);
            return Ok(false);
        }
        if !self.at_durable() {
            return Err(StorageError::Internal(
                "an unpin needs the writer at the durable commit, with no changes".into(),
            ));
        }
        self.apply(PINS_TREE, bytewise, &[(&id.to_be_bytes(), None)])?;
        if self.tree(PINS_TREE)?.is_some_and(|tree| tree.len == 0) {
            self.delete_tree(PINS_TREE)?;
        }
        let checkpoint_seq = self.state.durable.checkpoint_seq;
        self.commit_and_continue(checkpoint_seq)?;
        self.state.alloc.unpin(id);
        Ok(true)
    }

    /// Whether any commit is pinned ([`pin_durable`](Self::pin_durable)):
    /// [`relocate_all`](Self::relocate_all) refuses to run then.
    pub fn has_pins(&self) -> bool {
        self.state.alloc.pinned_count() > 0
    }

    /// Pages kept only for pins: no longer reached by the newest commit.
    pub fn held_pages(&self) -> usize {
        self.state.alloc.held_count()
    }

    /// Whether the published commit is the durable one and this writer has
    /// changed nothing since.
    pub fn at_durable(&self) -> bool {
        self.state.txn == self.state.durable.txn_id && self.changes.is_empty() && self.fresh.is_empty()
    }

    /// Makes the pages that commits retired free for this writer as far as
    /// live snapshots allow (commits do it; a snapshot let go since the
    /// last one may allow more).
    pub fn reclaim(&mut self) {
        self.shared.reclaim(&mut self.state);
    }

    /// Pages this writer has written since its last commit.
    pub fn written_pages(&self) -> usize {
        self.fresh.len()
    }

    fn publish(&mut self, checkpoint_seq: Option<u64>) -> Result<u64> {
        self.fold_changes()?;
        let catalog = self.catalog.clone();

        let txn = self.state.txn + 1;
        let retired = std::mem::take(&mut self.retired);
        self.state.alloc.retire(txn, retired);
        self.fresh.clear();
        self.state.txn = txn;
        self.state.catalog = catalog.clone();
        let checkpoint_seq = checkpoint_seq.unwrap_or(self.state.durable.checkpoint_seq);
        self.shared.published.lock().commit = Arc::new(Commit::new(txn, checkpoint_seq, catalog));
        self.shared.reclaim(&mut self.state);
        Ok(txn)
    }

    /// The durable half of `commit`: free list, then the slot protocol.
    fn make_durable(&mut self, txn: u64, checkpoint_seq: u64) -> Result<()> {
        let pages = &self.shared.pages;
        let state = &mut *self.state;
        assert!(
            checkpoint_seq >= state.durable.checkpoint_seq,
            "checked by `commit`: the durable checkpoint_seq never goes backwards"
        );
        self.shared.reclaim(state);
        state.alloc.trim_tail();
        // A commit that changes nothing since the durable one (same catalog
        // root, which copy-on-write never reuses while the durable commit
        // reaches it, and same page count) has the same free pages: keep the
        // durable free list instead of writing an identical one, which could
        // need a page past the end of the file (compaction's commits must not
        // grow it). Unless a free page lies below the list's pages: then a
        // new list moves down and the old one's pages can be trimmed later.
        let lowest_free = state.alloc.free_pages().next().unwrap_or(u64::MAX);
        let unchanged = state.catalog.root == state.durable.catalog_root
            && state.catalog.len == state.durable.catalog_len
            && state.alloc.page_count() == state.durable.page_count
            && state.freelist_chain.iter().all(|&page| page < lowest_free);
        let (chain, head) = if unchanged {
            (std::mem::take(&mut state.freelist_chain), state.durable.freelist_head)
        } else {
            // The previous durable commit's free list is garbage once this
            // one is durable, like any page this commit stopped referencing
            // (retired pages need this commit durable: none is free yet).
            let old_chain = std::mem::take(&mut state.freelist_chain);
            state.alloc.retire(txn, old_chain);
            // Allocate the chain first, so its pages are not listed as free.
            let need = freelist::pages_needed(pages.page_size(), state.alloc.free_after_restart().len());
            let chain: Vec<PageId> = (0..need).map(|_| state.alloc.alloc()).collect();
            let free = state.alloc.free_after_restart();
            let head = freelist::write(pages, &chain, &free)?;
            (chain, head)
        };
        let slot = Slot {
            txn_id: txn,
            checkpoint_seq,
            catalog_root: state.catalog.root,
            catalog_len: state.catalog.len,
            freelist_head: head,
            page_count: state.alloc.page_count(),
            log_id: state.log_ids.0,
            previous_log_id: state.log_ids.1,
        };
        pages.commit_slot(&slot)?;
        state.durable = slot;
        state.freelist_chain = chain;
        state.alloc.mark_durable(txn);
        self.shared.reclaim(state);
        let wanted = slot.page_count * pages.page_size() as u64;
        if pages.file_len()? > wanted {
            // Only free pages lie past the page count, so a crash either side
            // of this resize leaves a valid file.
            pages.set_page_count(slot.page_count)?;
        }
        Ok(())
    }
}

impl Drop for TreeWriter<'_> {
    fn drop(&mut self) {
        // Abort: pages written since the last commit were never published.
        for page in self.fresh.drain() {
            self.state.alloc.release_unpublished(page);
        }
    }
}
