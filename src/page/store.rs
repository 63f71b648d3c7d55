//! Page I/O: checksummed fixed-size pages, the header, and the slot commit.
//!
//! ```text
//! every page except page 0 and overflow runs     (integers little-endian)
//! offset  size  field
//!      0     8  xxh3-64 of bytes 8..page_size, seeded with the page id
//!      8     1  kind (PageKind)
//!      9     1  kind-specific (a node's level), else zero
//!     10     2  entry count
//!     12     2  extra pages: a node spans this many pages after its first
//!               (zero for every page but a node holding keys too long for
//!               one page; see "Nodes longer than a page" below)
//!     14     2  reserved, zero
//!     16     8  generation: the transaction id of the commit that wrote it
//!     24     -  kind-specific body
//! ```
//!
//! Seeding the checksum with the page id also catches a page written to the
//! wrong place. A never-written (zero) page fails its checksum.
//!
//! Nodes longer than a page: a leaf or branch whose entries do not fit one
//! page (a key longer than about a page, `btree::node`) occupies a run of
//! consecutive pages, at most [`MAX_NODE_BYTES`] in all, read and written
//! as one buffer: the checksum at its start covers bytes 8 to the end of
//! the run, and the cache holds the run under its first page's id. Every
//! other page is one page long, and its extra-pages field is zero (files
//! written before runs existed have zero there too).
//!
//! Invariant (generations): a commit's tree holds no page whose generation is
//! above the commit's transaction id, since pages are copied on write and a
//! page reachable from a commit is never rewritten while that commit can be
//! read. A page stamped later than the commit a reader reached it from
//! belongs to a commit the reader cannot know: after damage to the newer
//! commit slot, the older commit's pages may have been reused by commits that
//! never became durable. Loading refuses any page stamped above the newest
//! generation this store has opened or written (`max_generation`); an open
//! that fell back past an unreadable slot verifies the whole commit that way
//! (`TreeStore::open`), and the integrity check compares every page with its
//! commit.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::cache::PageCache;
use super::header::{
    Header, MAGIC, MIN_PAGE_SIZE, SLOT_OFFSETS, Slot, creation_image, creation_slot, fresh_db_id, unfinished_creation,
};
use crate::error::{Result, StorageError};
use crate::io::{Failure, LatchedBackend, StorageBackend};

/// A page number; page `n` starts at byte `n * page_size`. Page 0 is the
/// header, so 0 doubles as "no page".
pub(crate) type PageId = u64;

/// An immutable, verified page image, shared by the cache and its readers
/// (its memory: `page::frame`).
pub(crate) use super::frame::Page;

pub(crate) const PAGE_HEADER_LEN: usize = 24;
const KIND_OFFSET: usize = 8;
const COUNT_OFFSET: usize = 10;
const EXTRA_PAGES_OFFSET: usize = 12;
const GENERATION_OFFSET: usize = 16;

/// What a page holds, from its byte 8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum PageKind {
    Leaf = 1,
    Branch = 2,
    FreeList = 3,
}

impl PageKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Leaf),
            2 => Some(Self::Branch),
            3 => Some(Self::FreeList),
            _ => None,
        }
    }
}

/// The most bytes a node may span: its entry offsets are `u16`s.
pub(crate) const MAX_NODE_BYTES: usize = 1 << 16;

/// A fresh page buffer with its kind and count set.
pub(crate) fn new_page(page_size: usize, kind: PageKind, count: u16) -> Vec<u8> {
    new_run(page_size, 1, kind, count)
}

/// A fresh buffer of `pages` consecutive pages (REQUIRES: at least one, and
/// more only for a node of at most [`MAX_NODE_BYTES`]) with its kind, count
/// and extra-pages field set.
pub(crate) fn new_run(page_size: usize, pages: usize, kind: PageKind, count: u16) -> Vec<u8> {
    debug_assert!(pages == 1 || (kind != PageKind::FreeList && pages * page_size <= MAX_NODE_BYTES));
    let mut buf = vec![0u8; page_size * pages];
    buf[KIND_OFFSET] = kind as u8;
    buf[COUNT_OFFSET..COUNT_OFFSET + 2].copy_from_slice(&count.to_le_bytes());
    let extra = u16::try_from(pages - 1).unwrap_or(u16::MAX);
    buf[EXTRA_PAGES_OFFSET..EXTRA_PAGES_OFFSET + 2].copy_from_slice(&extra.to_le_bytes());
    buf
}

/// How many pages `page` spans (one, but for a node longer than a page).
pub(crate) fn page_span(page: &[u8]) -> usize {
    1 + u16::from_le_bytes([page[EXTRA_PAGES_OFFSET], page[EXTRA_PAGES_OFFSET + 1]]) as usize
}

#[inline]
pub(crate) fn page_kind(page: &[u8]) -> PageKind {
    // Verified at read time (`PageStore::read_page`).
    PageKind::from_byte(page[KIND_OFFSET]).unwrap_or(PageKind::Leaf)
}

/// The transaction id of the commit that wrote `page`.
pub(crate) fn page_generation(page: &[u8]) -> u64 {
    u64::from_le_bytes(
        page[GENERATION_OFFSET..GENERATION_OFFSET + 8]
            .try_into()
            .unwrap_or_default(),
    )
}

#[inline]
pub(crate) fn page_count_field(page: &[u8]) -> usize {
    u16::from_le_bytes([page[COUNT_OFFSET], page[COUNT_OFFSET + 1]]) as usize
}

/// Tuning for a page store.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoreOptions {
    pub(crate) page_size: usize,
    pub(crate) cache_bytes: usize,
    /// Structural check of a page's body, run once when a page is loaded
    /// from storage (the layer above owns the node layouts).
    pub(crate) validate: fn(&[u8]) -> Result<(), String>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            page_size: MIN_PAGE_SIZE,
            cache_bytes: 1 << 30,
            validate: |_| Ok(()),
        }
    }
}

/// Thread safety: all methods take `&self`; the cache and the backend are
/// internally synchronized. Writes of pages are only issued by the single tree
/// writer, to pages no reader can reach (see `allocator.rs`).
pub(crate) struct PageStore {
    backend: LatchedBackend<Box<dyn StorageBackend>>,
    header: Header,
    page_size: usize,
    cache: PageCache,
    validate: fn(&[u8]) -> Result<(), String>,
    /// Index of the slot holding the newest durable commit; the next commit
    /// writes the other one. Guarded so concurrent `commit_slot` calls (which
    /// the writer lock already prevents) could not interleave.
    current_slot: Mutex<usize>,
    /// The generation stamped on pages written now: the transaction id the
    /// current writer's commit will get.
    write_generation: AtomicU64,
    /// The highest generation any legitimate page can carry: the opened
    /// commit's, raised as writers start. A page loaded with a higher one
    /// belongs to a lost commit.
    max_generation: AtomicU64,
    /// Whether open chose a slot while the other failed its checksum (torn
    /// or damaged), so that the chosen commit's pages may have been reused.
    fell_back: bool,
    /// Whether written pages enter the cache (see
    /// [`set_cache_writes`](Self::set_cache_writes)). Invariant: only the
    /// holder of the tree writer lock writes pages and sets this, and every
    /// new writer sets it back on (`TreeStore::writer`), so one writer's
    /// bypass never outlives it into the next writer's pages.
    cache_writes: AtomicBool,
    /// Page writes not yet passed to the backend (see [`Gathered`]).
    gathered: Mutex<Gathered>,
    /// What `gathered` covers, for a read to check without the lock: its
    /// first page id above [`RANGE_LEN_BITS`] bits of its length in bytes,
    /// 0 when empty ([`u64::MAX`] for an id too large: then a read takes
    /// the lock to check). One word, set under the lock, so a reader sees
    /// one exact range: it issues the pages (and waits for their write)
    /// only if it reads one of them, which a reader of a commit published
    /// before its slot commit may. The range it sees is this one or a later
    /// one (it learned of the commit through a lock taken after the pages
    /// were gathered), and a later one means these were issued. (Two words,
    /// `from` and `to`, could be seen half updated: a reader then took the
    /// lock needlessly and waited behind the writer's write, or missed an
    /// overlap. A CI rehearsal hung in a test whose data file holds writes.)
    gathered_range: AtomicU64,
}

/// Bits of [`PageStore::gathered_range`] holding the gathered length in
/// bytes (at most [`GATHER_BYTES`] plus one node run).
const RANGE_LEN_BITS: u32 = 20;

/// Consecutive pages written by [`PageStore::write_page`], not yet passed
/// to the backend: one backend write (`pwritev`) of up to [`GATHER_BYTES`]
/// replaces a write per page. Measured on a one-transaction load of 1M
/// ascending keys: its 29K page writes of 4 KiB took ~100 ms of its ~270 ms
/// commit. A flush writes mostly consecutive pages too (94% of 35.7K
/// writes continued the one before, in a probe of 1000-key overwrite
/// batches at 300K keys). A page the cache holds is gathered by reference
/// (it is not copied); one that bypasses the cache by its buffer.
///
/// Invariant: the backend sees every write in the order the store was
/// asked for it. The gathered pages are issued before any other backend
/// write, sync, size change or length, and before a read of any byte they
/// cover; a write that does not continue them issues them first.
#[derive(Default)]
struct Gathered {
    /// The byte offset of the first page.
    from: u64,
    bytes: u64,
    pages: Vec<Written>,
}

/// A written page's bytes, kept until they are issued.
enum Written {
    Cached(Page),
    Uncached(Vec<u8>),
}

impl std::ops::Deref for Written {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Cached(page) => page,
            Self::Uncached(buf) => buf,
        }
    }
}

/// Bytes gathered at most before they are issued (`dd` here: 116 MiB in
/// 256 KiB writes took 0.03 s, in 4 KiB writes 0.10 s).
const GATHER_BYTES: u64 = 256 << 10;

impl PageStore {
    /// Writes a new, empty database image: the header and an empty commit in
    /// slot 0 (transaction 0, no trees, one page).
    ///
    /// In three synced steps, so that a crash leaves either a created
    /// database or a file `open` recognises as an unfinished creation (see
    /// `header::unfinished_creation`): empty the file; write page 0 with the
    /// magic zeroed; write the magic. The magic is whole only once everything
    /// else in page 0 is durable.
    pub(crate) fn create(backend: Box<dyn StorageBackend>, options: StoreOptions, db_id: u128) -> Result<(Self, Slot)> {
        let page_size = options.page_size;
        let page0 = creation_image(page_size, db_id);
        let header = Header::decode(&page0)?;
        let backend = LatchedBackend::new(backend);
        // Synced, so that no byte of an earlier, unfinished creation can
        // mix into the torn prefix of the next write.
        backend.set_len(0)?;
        backend.sync_data()?;
        let mut unsealed = page0.clone();
        unsealed[..MAGIC.len()].fill(0);
        backend.write(0, &unsealed)?;
        backend.sync_data()?;
        backend.write(0, &page0[..MAGIC.len()])?;
        backend.sync_data()?;
        let store = Self::with_header(backend, header, options, 0, 0);
        Ok((store, creation_slot()))
    }

    /// Opens an existing image at its newest valid commit slot.
    /// A file that an interrupted creation left behind (nothing was ever
    /// acknowledged in it) is created again, keeping its database id if its
    /// header survived.
    pub(crate) fn open(backend: Box<dyn StorageBackend>, options: StoreOptions) -> Result<(Self, Slot)> {
        let len = backend.len()?;
        if len <= options.page_size as u64 {
            let mut file = vec![0u8; len as usize];
            backend.read(0, &mut file)?;
            if let Some(db_id) = unfinished_creation(&file, options.page_size) {
                return Self::create(backend, options, db_id.unwrap_or_else(fresh_db_id));
            }
        }
        let backend = LatchedBackend::new(backend);
        let mut page0 = vec![0u8; MIN_PAGE_SIZE.min(len as usize)];
        backend.read(0, &mut page0)?;
        let header = Header::decode(&page0)?;
        if len < MIN_PAGE_SIZE as u64 {
            return Err(StorageError::corrupted("file truncated inside its header page"));
        }
        let page_size = u64::from(header.page_size);
        let mut slots = Vec::new();
        for (i, &at) in SLOT_OFFSETS.iter().enumerate() {
            if let Some(slot) = Slot::decode(&page0[at..], i, page_size) {
                slots.push((i, slot?));
            }
        }
        let Some(&(index, slot)) = slots.iter().max_by_key(|(_, slot)| slot.txn_id) else {
            return Err(StorageError::corrupted("both commit slots are damaged"));
        };
        // Every page below the count was written before the slot was synced
        // (the last one perhaps only in part: an overflow run's tail), so the
        // file reaches into the last page. The allocator grows the file from
        // the page count, so a count beyond the file must not be believed.
        let file_pages = len.div_ceil(page_size);
        if slot.page_count > file_pages {
            return Err(StorageError::corrupted(format!(
                "the newest commit's page count {} exceeds the {file_pages} pages in the file (truncated?)",
                slot.page_count
            )));
        }
        let mut store = Self::with_header(backend, header, options, index, slot.txn_id);
        // The creation commit (transaction 0) reaches no page, so only a
        // later commit can need verifying.
        store.fell_back = slots.len() < SLOT_OFFSETS.len() && slot.txn_id > 0;
        Ok((store, slot))
    }

    fn with_header(
        backend: LatchedBackend<Box<dyn StorageBackend>>,
        header: Header,
        options: StoreOptions,
        current_slot: usize,
        generation: u64,
    ) -> Self {
        let page_size = header.page_size as usize;
        Self {
            backend,
            header,
            page_size,
            cache: PageCache::new(options.cache_bytes, page_size),
            validate: options.validate,
            current_slot: Mutex::new(current_slot),
            write_generation: AtomicU64::new(generation),
            cache_writes: AtomicBool::new(true),
            gathered: Mutex::new(Gathered::default()),
            gathered_range: AtomicU64::new(0),
            max_generation: AtomicU64::new(generation),
            fell_back: false,
        }
    }

    /// Whether the opened commit was chosen while the other slot failed its
    /// checksum. After a torn slot write that is the last durable commit and
    /// sound; after media damage to the newer slot its pages may have been
    /// reused since, so the caller verifies every page it reaches.
    pub(crate) fn fell_back(&self) -> bool {
        self.fell_back
    }

    /// Pages written from now on belong to the commit with transaction id
    /// `generation` (the tree writer calls this when it starts).
    pub(crate) fn set_write_generation(&self, generation: u64) {
        self.write_generation.store(generation, Ordering::Relaxed);
        self.max_generation.fetch_max(generation, Ordering::Relaxed);
    }

    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    pub(crate) fn db_id(&self) -> u128 {
        self.header.db_id
    }

    /// The first failure of the backend, if it has failed (it then refuses all
    /// further work).
    pub(crate) fn failure(&self) -> Option<Failure> {
        self.backend.failure()
    }

    /// The byte offset of page `id`. A page id comes from disk (a slot, a
    /// branch, a free list), so the product is checked, not trusted.
    fn offset(&self, id: PageId) -> Result<u64> {
        id.checked_mul(self.page_size as u64)
            .ok_or_else(|| StorageError::corrupted(format!("page {id} lies beyond any possible file")))
    }

    /// Starts loading what a [`read_page`](Self::read_page) of a cached
    /// page `id` reads first (its cache slot).
    pub(crate) fn prefetch_cached(&self, id: PageId) {
        self.cache.prefetch(id);
    }

    /// Starts loading the first line of cached page `id` (nothing if it is
    /// not cached), without taking it.
    pub(crate) fn prefetch_cached_page_head(&self, id: PageId) {
        self.cache.prefetch_page_head(id);
    }

    /// The page `id`, verified against its checksum.
    pub(crate) fn read_page(&self, id: PageId) -> Result<Page> {
        self.read_page_with(id, 0, false)
    }

    /// The page `id`, as [`read_page`](Self::read_page), with the lines of
    /// its first `head` bytes asked for before a search of it
    /// (`PageCache::get_prefetched`); a page read from the file is in the
    /// CPU's cache already.
    pub(crate) fn read_page_prefetched(&self, id: PageId, head: usize) -> Result<Page> {
        self.read_page_with(id, head, false)
    }

    /// The page, its first `head` bytes asked for (0: none); read from the
    /// file, it enters the cache first in the eviction order if it is a
    /// leaf and `stepped`, else last.
    #[inline]
    fn read_page_with(&self, id: PageId, head: usize, stepped: bool) -> Result<Page> {
        let cached = if head > 0 {
            self.cache.get_prefetched(id, head)
        } else {
            self.cache.get(id)
        };
        if let Some(page) = cached {
            return Ok(page);
        }
        let page = self.read_page_uncached(id)?;
        if stepped && page[KIND_OFFSET] == PageKind::Leaf as u8 {
            self.cache.insert_cold(id, page.clone());
        } else {
            self.cache.insert(id, page.clone(), false);
        }
        Ok(page)
    }

    /// The page `id`, as [`read_page`](Self::read_page), for a cursor
    /// stepping through the tree in key order: a leaf read from the file
    /// enters the cache first in the eviction order
    /// ([`PageCache::insert_cold`]), a branch as any page does (the next
    /// steps pass through it again, and every seek through its subtree).
    pub(crate) fn read_page_stepped(&self, id: PageId) -> Result<Page> {
        self.read_page_with(id, 0, true)
    }

    /// Reads and verifies a page without entering it in the cache (integrity
    /// checks use this so they see the bytes on disk); its memory may be a
    /// spare the cache lends (`PageCache::spare_page`).
    pub(crate) fn read_page_uncached(&self, id: PageId) -> Result<Page> {
        if id == 0 {
            return Err(StorageError::corrupted("a tree points at page 0 (the header)"));
        }
        // Into a spare page's memory when there is one (no allocation, no
        // copy; `PageCache::recycle`), else a new page read in place.
        let mut page = self
            .cache
            .spare_page()
            .unwrap_or_else(|| Page::for_overwrite(self.page_size));
        let buf = page.get_mut().expect("a spare or new page is held by no one else");
        let offset = self.offset(id)?;
        self.issue_before_read(offset, self.page_size as u64)?;
        self.backend
            .read(offset, buf)
            .map_err(|e| read_error(e, format!("page {id} lies beyond the end of the file")))?;
        if page_span(buf) > 1 {
            let run = self.read_rest_of_run(id, buf)?;
            self.cache.recycle(std::mem::replace(&mut page, run));
        }
        let buf: &[u8] = &page;
        let stored = u64::from_le_bytes(buf[..8].try_into().unwrap_or_default());
        if stored != xxh3_64_with_seed(&buf[8..], id) {
            return Err(StorageError::corrupted(format!("page {id} checksum mismatch")));
        }
        if PageKind::from_byte(buf[KIND_OFFSET]).is_none() {
            return Err(StorageError::corrupted(format!("page {id} has an unknown kind")));
        }
        let generation = page_generation(buf);
        let max = self.max_generation.load(Ordering::Relaxed);
        if generation > max {
            return Err(StorageError::corrupted(format!(
                "page {id} was written by commit {generation}, after the newest commit this database \
                 can reach ({max}): a newer commit was lost (damaged commit slot?) and its pages reused"
            )));
        }
        (self.validate)(buf).map_err(|msg| StorageError::corrupted(format!("page {id}: {msg}")))?;
        Ok(page)
    }

    /// The whole run of the node whose first page, `first`, was read into
    /// memory as page `id`: its extra pages read after it. The span is
    /// checked before anything is allocated for it (the checksum, checked
    /// after, covers the span field too).
    fn read_rest_of_run(&self, id: PageId, first: &[u8]) -> Result<Page> {
        let pages = page_span(first);
        let kind = PageKind::from_byte(first[KIND_OFFSET]);
        if !matches!(kind, Some(PageKind::Leaf | PageKind::Branch)) || pages * self.page_size > MAX_NODE_BYTES {
            return Err(StorageError::corrupted(format!(
                "page {id} claims a run of {pages} pages, which no node spans"
            )));
        }
        let mut run = vec![0u8; pages * self.page_size];
        run[..self.page_size].copy_from_slice(first);
        let rest_at = self.offset(id)? + self.page_size as u64;
        self.issue_before_read(rest_at, run.len() as u64)?;
        self.backend
            .read(rest_at, &mut run[self.page_size..])
            .map_err(|e| read_error(e, format!("the run at page {id} lies beyond the end of the file")))?;
        Ok(Page::from(run))
    }

    /// Seals `buf` with its checksum, writes it (no sync; gathered with the
    /// pages around it, see [`Gathered`]), and caches it unless writes
    /// bypass the cache (then whatever the cache held for `id` is dropped:
    /// the id's old contents are gone).
    ///
    /// REQUIRES: no live snapshot and no durable commit can reach page `id`
    /// (the allocator's invariant).
    /// `buf` is one page, or a node's run of them (see the module docs).
    pub(crate) fn write_page(&self, id: PageId, mut buf: Vec<u8>) -> Result<()> {
        debug_assert_eq!(buf.len(), self.page_size * page_span(&buf));
        let generation = self.write_generation.load(Ordering::Relaxed);
        buf[GENERATION_OFFSET..GENERATION_OFFSET + 8].copy_from_slice(&generation.to_le_bytes());
        let sum = xxh3_64_with_seed(&buf[8..], id);
        buf[..8].copy_from_slice(&sum.to_le_bytes());
        let offset = self.offset(id)?;
        let written = if self.cache_writes.load(Ordering::Relaxed) {
            let page = self.seal_into_page(buf);
            self.cache.insert(id, page.clone(), true);
            Written::Cached(page)
        } else {
            self.cache.forget(id);
            Written::Uncached(buf)
        };
        self.gather(offset, written)
    }

    /// Adds a page written at `offset` to the gathered ones, issuing them
    /// first if it does not continue them or they are full.
    fn gather(&self, offset: u64, page: Written) -> Result<()> {
        let mut gathered = self.gathered.lock();
        let len = page.len() as u64;
        if !gathered.pages.is_empty()
            && (gathered.from + gathered.bytes != offset || gathered.bytes + len > GATHER_BYTES)
        {
            self.issue(&mut gathered)?;
        }
        if gathered.pages.is_empty() {
            gathered.from = offset;
        }
        gathered.pages.push(page);
        gathered.bytes += len;
        let first = gathered.from / self.page_size as u64;
        let range = if first < 1 << (u64::BITS - RANGE_LEN_BITS) && gathered.bytes < 1 << RANGE_LEN_BITS {
            first << RANGE_LEN_BITS | gathered.bytes
        } else {
            u64::MAX
        };
        self.gathered_range.store(range, Ordering::Release);
        Ok(())
    }

    /// Passes the gathered pages to the backend, as one write.
    fn issue(&self, gathered: &mut Gathered) -> Result<()> {
        if gathered.pages.is_empty() {
            return Ok(());
        }
        let parts: Vec<&[u8]> = gathered.pages.iter().map(|page| &page[..]).collect();
        let result = self.backend.write_parts(gathered.from, &parts);
        // Issued or failed (the backend then latches the failure): either
        // way they are not written again.
        gathered.pages.clear();
        gathered.bytes = 0;
        self.gathered_range.store(0, Ordering::Release);
        Ok(result?)
    }

    /// Issues the gathered pages (see [`Gathered`]): before any other use
    /// of the backend that must follow them.
    fn issue_gathered(&self) -> Result<()> {
        self.issue(&mut self.gathered.lock())
    }

    /// Issues the gathered pages if any of them lies in `len` bytes from
    /// `offset`, which a read is about to read from the backend.
    fn issue_before_read(&self, offset: u64, len: u64) -> Result<()> {
        let overlaps = |from: u64, bytes: u64| bytes > 0 && offset < from + bytes && from < offset + len;
        match self.gathered_range.load(Ordering::Acquire) {
            0 => Ok(()),
            u64::MAX => {
                let mut gathered = self.gathered.lock();
                if overlaps(gathered.from, gathered.bytes) {
                    self.issue(&mut gathered)?;
                }
                Ok(())
            }
            range => {
                let from = (range >> RANGE_LEN_BITS) * self.page_size as u64;
                if overlaps(from, range & ((1 << RANGE_LEN_BITS) - 1)) {
                    self.issue_gathered()?;
                }
                Ok(())
            }
        }
    }

    /// Drops page `id` from the cache: no tree will read it again (a page a
    /// writer dropped before publishing it, or one no live snapshot
    /// reaches). Without this a flush that rewrites most leaves would hold
    /// both generations of them for as long as the cache has room.
    pub(crate) fn forget_cached(&self, id: PageId) {
        self.cache.forget(id);
    }

    /// `buf` as a page: copied into a spare page's memory if there is one
    /// (`PageCache::recycle`), else into a new allocation.
    fn seal_into_page(&self, buf: Vec<u8>) -> Page {
        let spare = self.cache.spare_page();
        if let Some(mut page) = spare
            && let Some(bytes) = page.get_mut()
            && bytes.len() == buf.len()
        {
            bytes.copy_from_slice(&buf);
            return page;
        }
        Page::from(buf)
    }

    /// The page cache's counters.
    pub(crate) fn cache_stats(&self) -> super::cache::CacheCounters {
        self.cache.stats()
    }

    /// Whether pages written from now on enter the cache (they do unless a
    /// writer turns it off; every new tree writer turns it back on). A bulk
    /// write turns it off so that it does not evict the pages readers use,
    /// nor hold the whole load in memory: its pages are read back from the
    /// file when someone needs them.
    pub(crate) fn set_cache_writes(&self, on: bool) {
        self.cache_writes.store(on, Ordering::Relaxed);
    }

    /// Writes raw bytes over the run of pages starting at `start` (overflow
    /// values; their checksum lives in the referencing leaf). Same REQUIRES as
    /// [`write_page`](Self::write_page).
    pub(crate) fn write_run(&self, start: PageId, data: &[u8]) -> Result<()> {
        self.issue_gathered()?;
        self.backend.write(self.offset(start)?, data)?;
        Ok(())
    }

    pub(crate) fn read_run(&self, start: PageId, len: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let offset = self.offset(start)?;
        self.issue_before_read(offset, len as u64)?;
        self.backend.read(offset, &mut buf).map_err(|e| {
            read_error(
                e,
                format!("overflow run at page {start} lies beyond the end of the file"),
            )
        })?;
        Ok(buf)
    }

    /// The durable commit protocol's second half. The caller has written every
    /// page `slot` reaches. This syncs them, writes `slot` into the slot that
    /// is not current, and syncs again; only when that returns is the commit
    /// durable. A crash before the second sync completes leaves the old slot
    /// current (the new one is absent, torn, or valid with a higher id, each of
    /// which is a consistent commit because its pages were synced first).
    pub(crate) fn commit_slot(&self, slot: &Slot) -> Result<()> {
        let mut current = self.current_slot.lock();
        let next = 1 - *current;
        self.issue_gathered()?;
        self.backend.sync_data()?;
        self.backend.write(SLOT_OFFSETS[next] as u64, &slot.encode(next))?;
        self.backend.sync_data()?;
        *current = next;
        Ok(())
    }

    /// Resizes the file to `pages` pages (only ever over free pages).
    pub(crate) fn set_page_count(&self, pages: u64) -> Result<()> {
        self.issue_gathered()?;
        self.backend.set_len(self.offset(pages)?)?;
        Ok(())
    }

    pub(crate) fn file_len(&self) -> Result<u64> {
        self.issue_gathered()?;
        Ok(self.backend.len()?)
    }
}

fn read_error(e: io::Error, eof_message: String) -> StorageError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        StorageError::Corrupted(eof_message)
    } else {
        // `PreviousIo` if the latch refused the read.
        StorageError::from(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::MemoryBackend;

    fn leaf(page_size: usize, fill: u8) -> Vec<u8> {
        let mut buf = new_page(page_size, PageKind::Leaf, 0);
        buf[PAGE_HEADER_LEN..].fill(fill);
        buf
    }

    /// A memory backend that counts the writes the store issues.
    struct CountingBackend {
        inner: MemoryBackend,
        writes: std::sync::Arc<AtomicU64>,
    }

    impl StorageBackend for CountingBackend {
        fn len(&self) -> io::Result<u64> {
            self.inner.len()
        }
        fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.inner.read(offset, buf)
        }
        fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.inner.write(offset, data)
        }
        fn write_parts(&self, offset: u64, parts: &[&[u8]]) -> io::Result<()> {
            self.writes.fetch_add(1, Ordering::Relaxed);
            self.inner.write_parts(offset, parts)
        }
        fn set_len(&self, len: u64) -> io::Result<()> {
            self.inner.set_len(len)
        }
        fn sync_data(&self) -> io::Result<()> {
            self.inner.sync_data()
        }
    }

    /// Pages written past the cache go to the backend gathered, one write
    /// per run of consecutive pages up to `GATHER_BYTES`; a read of a
    /// gathered page, a write elsewhere, a rewrite of a gathered page and a
    /// slot commit each find the backend holding every page written before.
    #[test]
    fn uncached_writes_are_gathered_and_issued_in_order() {
        let writes = std::sync::Arc::new(AtomicU64::new(0));
        let backend = CountingBackend {
            inner: MemoryBackend::new(),
            writes: writes.clone(),
        };
        let (store, slot) = PageStore::create(Box::new(backend), StoreOptions::default(), 1).unwrap();
        let size = store.page_size();
        store.set_cache_writes(false);
        let issued = || writes.swap(0, Ordering::Relaxed);
        issued();
        let per_write = GATHER_BYTES / size as u64;
        for id in 1..=3 * per_write {
            store.write_page(id, leaf(size, id as u8)).unwrap();
        }
        assert_eq!(issued(), 2, "two full runs issued, the third still gathered");
        // A read of a gathered page issues them first.
        let read = store.read_page_uncached(2 * per_write + 5).unwrap();
        assert!(read[PAGE_HEADER_LEN..].iter().all(|&b| b == (2 * per_write + 5) as u8));
        assert_eq!(issued(), 1);
        // A read elsewhere issues nothing.
        store.write_page(3 * per_write + 1, leaf(size, 1)).unwrap();
        store.read_page_uncached(1).unwrap();
        assert_eq!(issued(), 0);
        // A page that does not continue the run issues it first; so does a
        // rewrite of a gathered page, whose newer bytes win.
        store.write_page(10, leaf(size, 0xaa)).unwrap();
        assert_eq!(issued(), 1);
        store.write_page(10, leaf(size, 0xbb)).unwrap();
        assert_eq!(issued(), 1);
        store.commit_slot(&slot).unwrap();
        assert_eq!(issued(), 2, "the last page, then the slot");
        let page = store.read_page_uncached(10).unwrap();
        assert!(page[PAGE_HEADER_LEN..].iter().all(|&b| b == 0xbb));
        assert!(store.file_len().unwrap() >= (3 * per_write + 2) * size as u64);
        // Cached writes are gathered too, and read from the cache.
        store.set_cache_writes(true);
        store.write_page(11, leaf(size, 0xcc)).unwrap();
        store.write_page(12, leaf(size, 0xdd)).unwrap();
        assert!(
            store.read_page(11).unwrap()[PAGE_HEADER_LEN..]
                .iter()
                .all(|&b| b == 0xcc)
        );
        assert_eq!(issued(), 0);
        store.issue_gathered().unwrap();
        assert_eq!(issued(), 1);
        assert!(
            store.read_page_uncached(12).unwrap()[PAGE_HEADER_LEN..]
                .iter()
                .all(|&b| b == 0xdd)
        );
    }

    /// A page a writer drops becomes a spare only when no one else holds
    /// it, and a page written into a spare's memory reads back as written,
    /// from the cache and from the file, while the dropped page's holder
    /// keeps its own bytes.
    #[test]
    fn written_pages_reuse_dropped_pages_no_one_holds() {
        let options = StoreOptions {
            validate: |_| Ok(()),
            ..StoreOptions::default()
        };
        let (store, _) = PageStore::create(Box::new(MemoryBackend::new()), options, 1).unwrap();
        let size = store.page_size();
        store.write_page(1, leaf(size, 1)).unwrap();
        store.write_page(2, leaf(size, 2)).unwrap();
        // Issued: the gathered pages no longer hold them.
        store.issue_gathered().unwrap();
        let held = store.read_page(2).unwrap();
        store.forget_cached(1);
        store.forget_cached(2);
        let spares = store.cache.spares();
        assert_eq!(spares.len(), 1, "only the page no one holds is a spare");
        store.write_page(3, leaf(size, 3)).unwrap();
        let written = store.cache.get(3).expect("a written page is cached");
        assert_eq!(written.as_ptr(), spares[0], "the new page did not reuse the spare");
        assert!(store.cache.spares().is_empty());
        assert!(written[PAGE_HEADER_LEN..].iter().all(|&b| b == 3));
        assert!(store.read_page(3).unwrap()[PAGE_HEADER_LEN..].iter().all(|&b| b == 3));
        assert!(
            store.read_page_uncached(3).unwrap()[PAGE_HEADER_LEN..]
                .iter()
                .all(|&b| b == 3)
        );
        assert!(
            held[PAGE_HEADER_LEN..].iter().all(|&b| b == 2),
            "a holder's page changed"
        );
        assert!(store.read_page(1).unwrap()[PAGE_HEADER_LEN..].iter().all(|&b| b == 1));
    }

    /// A page evicted from a full cache becomes a spare, and the next page
    /// read from the file is read into its memory and verified there: the
    /// read returns its own bytes, and a reader still holding the evicted
    /// page keeps it (no spare then).
    #[test]
    fn reads_reuse_evicted_pages_no_one_holds() {
        let options = StoreOptions {
            validate: |_| Ok(()),
            cache_bytes: 2 * 4096,
            ..StoreOptions::default()
        };
        let (store, _) = PageStore::create(Box::new(MemoryBackend::new()), options, 1).unwrap();
        let size = store.page_size();
        assert_eq!(size, 4096);
        for id in 1..=4 {
            store.write_page(id, leaf(size, id as u8)).unwrap();
            // Issued at once, so the gathered pages do not hold it.
            store.issue_gathered().unwrap();
        }
        // Writing 3 evicted 1 (a spare), writing 4 reused that spare and
        // evicted 2 (the spare now).
        let spares = store.cache.spares();
        assert_eq!(spares.len(), 1, "an evicted page no one holds is a spare");
        let read = store.read_page(1).unwrap();
        assert!(
            spares.contains(&read.as_ptr()),
            "the read allocated instead of reusing a spare"
        );
        assert!(
            read[PAGE_HEADER_LEN..].iter().all(|&b| b == 1),
            "the reused page kept stale bytes"
        );
        // Reading 1 evicted 3 (a spare); reading 2 reuses it and evicts 4,
        // which `held` keeps: freed from the cache's side, never a spare.
        let held = store.read_page(4).unwrap();
        store.read_page(2).unwrap();
        assert!(store.cache.spares().is_empty(), "a page someone holds became a spare");
        assert!(held[PAGE_HEADER_LEN..].iter().all(|&b| b == 4));
        assert!(store.read_page(3).unwrap()[PAGE_HEADER_LEN..].iter().all(|&b| b == 3));
    }
}
