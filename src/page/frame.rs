//! Page memory: [`Page`], an immutable, shared, reference-counted page image.
//!
//! A page of the default size ([`FRAME_BYTES`], 4 KiB) lives in a *frame*, a
//! slot of a 2 MiB chunk that is aligned to 2 MiB and, on Linux, advised to be
//! backed by one transparent huge page (`MADV_HUGEPAGE`). A point read or a
//! range touches a few pages scattered over the whole cache; with each page a
//! heap allocation of its own, nearly every one of those touches also missed
//! the TLB, and on a virtual machine a TLB miss walks two page tables. With
//! huge pages one TLB entry covers 509 pages. Measured on this project's 2-core
//! VM (1M keys, the tree flushed, alternating binaries; `design/format.md`,
//! "Page frames"): random point reads +27-35%, seek + 10 next +26-28%. The
//! one exception: a chunk mapped while the pool holds none stays on base
//! pages, so that a small database (or a big one's first pages) does not hold
//! a whole huge page for a few frames (`take_frame`).
//!
//! Pages of any other length (a node longer than a page, a database made with
//! larger pages, the tests' small pages) are allocated alone, with the same
//! layout: a 16-byte head (the reference count and the length) and then the
//! bytes, so the count shares a cache line with the page's own head, as an
//! `Arc<[u8]>`'s does.
//!
//! The chunks are the process's, shared by every database it opens: a page can
//! outlive its database (a value read from it, a range). A freed frame goes
//! back to its chunk; a chunk whose frames are all free is returned to the
//! system once another such chunk is kept, so the memory held is the peak of
//! live pages plus at most one idle chunk. Frames are handed out and taken back
//! under one lock, taken once per page read from the file or written, never
//! for a page read from the cache.
//!
//! Invariants: a frame is handed out only while it is free (each chunk's head
//! keeps the stack of its free frames' indexes, changed only under the pool's
//! lock); a page's bytes are written only through [`Page::get_mut`], which
//! requires its only holder; the count follows `Arc`'s orderings (increments
//! relaxed, the last decrement releases, the free acquires).

use std::alloc::Layout;
use std::fmt;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering, fence};

use parking_lot::Mutex;

use crate::hugepage;

/// The length of a page kept in a frame: the default (and smallest) page size.
pub(crate) const FRAME_BYTES: usize = 4096;
/// A page's head: its reference count and its length.
const HEAD_BYTES: usize = 16;
/// A frame: a head and a page.
const STRIDE: usize = HEAD_BYTES + FRAME_BYTES;
/// A chunk of frames: one huge page.
const CHUNK_BYTES: usize = hugepage::HUGE_PAGE;
/// Frames a chunk holds; its first slot holds the chunk's own head.
const FRAMES: usize = CHUNK_BYTES / STRIDE - 1;
/// Chunks with no frame in use kept for the next pages, beyond which a chunk
/// whose last frame is freed goes back to the system.
const IDLE_CHUNKS_KEPT: usize = 1;

const _: () = assert!(std::mem::size_of::<ChunkHead>() <= STRIDE);
const _: () = assert!(std::mem::size_of::<Head>() == HEAD_BYTES);
const _: () = assert!(FRAMES <= u16::MAX as usize);

/// A page's head, right before its bytes.
#[repr(C, align(16))]
struct Head {
    refs: AtomicUsize,
    /// The page's length in bytes.
    len: u32,
    /// Whether the page is a frame of a chunk (else a heap allocation).
    framed: bool,
}

/// An immutable page image, shared by the cache and its readers: a reference
/// count and the bytes (see the module's documentation). Cloning it counts
/// one more holder; the bytes are freed with the last.
pub(crate) struct Page {
    head: NonNull<Head>,
}

// SAFETY: a page's bytes are only written through `get_mut`, which requires
// the only holder, and its count is atomic: sharing or sending a handle is as
// safe as an `Arc<[u8]>`'s.
#[expect(unsafe_code, reason = "a page is an Arc<[u8]> whose memory comes from a chunk")]
unsafe impl Send for Page {}
// SAFETY: as for `Send`.
#[expect(unsafe_code, reason = "a page is an Arc<[u8]> whose memory comes from a chunk")]
unsafe impl Sync for Page {}

#[expect(unsafe_code, reason = "a page's memory is managed by hand (module documentation)")]
impl Page {
    /// A page of `len` bytes whose contents are unspecified (zeros, or the
    /// bytes of a page freed before): for a caller that overwrites it whole.
    pub(crate) fn for_overwrite(len: usize) -> Self {
        let (head, framed) = match (len == FRAME_BYTES).then(|| take_frame(&POOL)).flatten() {
            Some(frame) => (frame, true),
            None => (alloc_alone(len), false),
        };
        let len = u32::try_from(len).expect("a page is shorter than 4 GiB");
        // SAFETY: `head` points to memory for a head and `len` bytes, which
        // no one else holds; writing the head initializes it.
        unsafe {
            head.as_ptr().write(Head {
                refs: AtomicUsize::new(1),
                len,
                framed,
            });
        }
        Self { head }
    }

    /// The page's bytes, to write, if this is its only holder.
    pub(crate) fn get_mut(&mut self) -> Option<&mut [u8]> {
        // Acquire: every other holder's reads of the bytes happen before
        // their drops' releases, so before these writes.
        if self.head().refs.load(Ordering::Acquire) != 1 {
            return None;
        }
        // SAFETY: the only holder, borrowed mutably: no one else can read
        // the bytes while the slice lives.
        Some(unsafe { std::slice::from_raw_parts_mut(self.bytes_ptr(), self.len()) })
    }

    /// How many handles hold the page (for tests).
    #[cfg(test)]
    pub(crate) fn holders(&self) -> usize {
        self.head().refs.load(Ordering::Acquire)
    }

    /// Where the page's bytes lie (for tests: which memory a page reuses).
    #[cfg(test)]
    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.bytes_ptr()
    }

    /// Whether the page lives in a frame of a chunk (whose memory returns to
    /// the chunk when freed, not to the heap).
    pub(crate) fn is_frame(&self) -> bool {
        self.head().framed
    }

    fn head(&self) -> &Head {
        // SAFETY: the head lives as long as any handle.
        unsafe { self.head.as_ref() }
    }

    fn bytes_ptr(&self) -> *mut u8 {
        // SAFETY: the bytes follow the head in the same allocation.
        unsafe { self.head.as_ptr().cast::<u8>().add(HEAD_BYTES) }
    }
}

impl Deref for Page {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        let len = self.head().len as usize;
        #[expect(unsafe_code, reason = "a page's bytes follow its head")]
        // SAFETY: `len` initialized bytes follow the head, and no one writes
        // them while another handle exists (`get_mut`).
        unsafe {
            std::slice::from_raw_parts(self.bytes_ptr(), len)
        }
    }
}

impl Clone for Page {
    #[inline]
    fn clone(&self) -> Self {
        // Relaxed, as `Arc::clone`: a new holder comes from an existing one.
        let before = self.head().refs.fetch_add(1, Ordering::Relaxed);
        if before > isize::MAX as usize {
            std::process::abort();
        }
        Self { head: self.head }
    }
}

impl Drop for Page {
    #[inline]
    fn drop(&mut self) {
        if self.head().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other holder's use of the bytes happens before the free.
        fence(Ordering::Acquire);
        let (framed, len) = (self.head().framed, self.head().len as usize);
        if framed {
            give_back_frame(&POOL, self.head);
        } else {
            #[expect(unsafe_code, reason = "freeing a page allocated alone")]
            // SAFETY: allocated by `alloc_alone` with this length's layout,
            // and this was its last holder.
            unsafe {
                std::alloc::dealloc(self.head.as_ptr().cast(), alone_layout(len));
            }
        }
    }
}

impl From<&[u8]> for Page {
    fn from(bytes: &[u8]) -> Self {
        let mut page = Self::for_overwrite(bytes.len());
        page.get_mut()
            .expect("a new page has one holder")
            .copy_from_slice(bytes);
        page
    }
}

impl From<Vec<u8>> for Page {
    fn from(bytes: Vec<u8>) -> Self {
        Self::from(bytes.as_slice())
    }
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Page({} bytes)", self.len())
    }
}

/// The layout of a page of `len` bytes allocated alone.
fn alone_layout(len: usize) -> Layout {
    Layout::from_size_align(HEAD_BYTES + len, HEAD_BYTES).expect("a page's layout")
}

/// Memory for a head and `len` zeroed bytes, from the heap.
fn alloc_alone(len: usize) -> NonNull<Head> {
    let layout = alone_layout(len);
    #[expect(unsafe_code, reason = "allocating a page alone")]
    // SAFETY: the layout is never zero-sized (it holds the head).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
    NonNull::new(ptr.cast()).unwrap_or_else(|| std::alloc::handle_alloc_error(layout))
}

/// A chunk's own head, in its first slot: which of its frames are free.
#[repr(C)]
struct ChunkHead {
    /// How many of `free` are valid: the free frames' indexes, a stack.
    free_len: u16,
    /// Whether the chunk is in the pool's list of chunks with a free frame.
    listed: bool,
    free: [u16; FRAMES],
}

/// A chunk, by its head (its first byte).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Chunk(NonNull<ChunkHead>);

// SAFETY: a chunk is memory of the pool's, whose head is read and written
// only under the pool's lock.
#[expect(unsafe_code, reason = "chunk heads are guarded by the pool's lock")]
unsafe impl Send for Chunk {}

/// The chunks and their free frames.
struct Pool {
    /// Chunks with at least one free frame; frames are taken from the last.
    with_free: Vec<Chunk>,
    /// How many of them have every frame free.
    idle: usize,
    /// How many chunks are mapped.
    chunks: usize,
}

impl Pool {
    const fn new() -> Self {
        Self {
            with_free: Vec::new(),
            idle: 0,
            chunks: 0,
        }
    }
}

/// The process's chunks, for every page (see the module's documentation).
static POOL: Mutex<Pool> = Mutex::new(Pool::new());

#[expect(unsafe_code, reason = "frames are carved out of chunks by hand")]
impl Chunk {
    fn head(&mut self) -> &mut ChunkHead {
        // SAFETY: the head is initialized when the chunk is made, and the
        // pool's lock (held by every caller) serializes its uses.
        unsafe { self.0.as_mut() }
    }

    /// Frame `i`'s head.
    fn frame(self, i: usize) -> NonNull<Head> {
        // SAFETY: frame `i < FRAMES` lies inside the chunk, after its head.
        unsafe { self.0.cast::<u8>().add((i + 1) * STRIDE).cast() }
    }

    /// The chunk holding frame `head`, and the frame's index.
    fn of(head: NonNull<Head>) -> (Self, usize) {
        let chunk = head.as_ptr().cast::<u8>().map_addr(|a| a & !(CHUNK_BYTES - 1));
        let i = (head.as_ptr().addr() - chunk.addr()) / STRIDE - 1;
        // SAFETY: a frame's chunk is its address rounded down to the chunk
        // alignment, not null.
        (Self(unsafe { NonNull::new_unchecked(chunk.cast()) }), i)
    }
}

/// A free frame's memory, or `None` if no chunk can be had (the caller then
/// allocates the page alone).
fn take_frame(pool: &Mutex<Pool>) -> Option<NonNull<Head>> {
    let mut pool = pool.lock();
    if pool.with_free.is_empty() {
        // The first chunk is left on base pages: a small database, or a
        // big one's first pages (the header, the root), would otherwise
        // hold a whole huge page for a few frames (the peak-RSS row's
        // one-transaction load used one frame of its only chunk, 2 MiB
        // resident).
        let chunk = Chunk(map_chunk(pool.chunks > 0)?.cast());
        {
            let mut chunk = chunk;
            let head = chunk.head();
            head.free_len = FRAMES as u16;
            head.listed = true;
            // Popped from the end: frame 0 first, then up through the chunk.
            for (slot, i) in head.free.iter_mut().zip((0..FRAMES as u16).rev()) {
                *slot = i;
            }
        }
        pool.with_free.push(chunk);
        pool.idle += 1;
        pool.chunks += 1;
    }
    let mut chunk = *pool.with_free.last().expect("a chunk with a free frame");
    let head = chunk.head();
    if usize::from(head.free_len) == FRAMES {
        pool.idle -= 1;
    }
    head.free_len -= 1;
    let i = usize::from(head.free[usize::from(head.free_len)]);
    if head.free_len == 0 {
        head.listed = false;
        pool.with_free.pop();
    }
    Some(chunk.frame(i))
}

/// Frees frame `frame` (its page's last holder is gone).
fn give_back_frame(pool: &Mutex<Pool>, frame: NonNull<Head>) {
    let (chunk, i) = Chunk::of(frame);
    let mut pool = pool.lock();
    let (was_listed, all_free) = {
        let mut chunk = chunk;
        let head = chunk.head();
        head.free[usize::from(head.free_len)] = i as u16;
        head.free_len += 1;
        (
            std::mem::replace(&mut head.listed, true),
            usize::from(head.free_len) == FRAMES,
        )
    };
    if !was_listed {
        pool.with_free.push(chunk);
    }
    if !all_free {
        return;
    }
    if pool.idle < IDLE_CHUNKS_KEPT {
        pool.idle += 1;
        return;
    }
    let at = pool.with_free.iter().position(|c| *c == chunk).expect("a listed chunk");
    pool.with_free.swap_remove(at);
    pool.chunks -= 1;
    drop(pool);
    unmap_chunk(chunk.0.cast());
}

/// A new chunk: `CHUNK_BYTES` of zeroed memory aligned to `CHUNK_BYTES`
/// (a huge page), advised for a huge page if `huge` (`crate::hugepage`).
fn map_chunk(huge: bool) -> Option<NonNull<u8>> {
    hugepage::map_aligned(CHUNK_BYTES, huge)
}

/// Returns a chunk made by [`map_chunk`] to the system.
fn unmap_chunk(chunk: NonNull<u8>) {
    #[expect(unsafe_code, reason = "unmapping a chunk no page uses")]
    // SAFETY: made by `map_chunk`; every frame of the chunk is free, and it
    // was removed from the pool under its lock: no one can reach it.
    unsafe {
        hugepage::unmap(chunk, CHUNK_BYTES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_of_the_frame_size_live_in_frames_and_others_alone() {
        let framed = Page::from(vec![7u8; FRAME_BYTES]);
        let alone = Page::from(vec![8u8; 100]);
        let run = Page::from(vec![9u8; 2 * FRAME_BYTES]);
        assert!(framed.is_frame() && !alone.is_frame() && !run.is_frame());
        assert_eq!(
            (&framed[..], &alone[..], &run[..]),
            (&[7u8; FRAME_BYTES][..], &[8u8; 100][..], &[9u8; 2 * FRAME_BYTES][..])
        );
        assert_eq!(Page::from(Vec::new()).len(), 0);
    }

    #[test]
    fn a_page_is_written_only_by_its_only_holder_and_freed_with_its_last() {
        let mut page = Page::for_overwrite(FRAME_BYTES);
        page.get_mut().expect("one holder").fill(3);
        let other = page.clone();
        assert_eq!(page.holders(), 2);
        assert!(page.get_mut().is_none(), "two holders: no writes");
        drop(other);
        assert_eq!(page.holders(), 1);
        assert!(page.get_mut().is_some());
        assert!(page.iter().all(|&b| b == 3));
    }

    #[test]
    fn pages_in_frames_keep_their_bytes_whatever_the_order_of_frees() {
        // More pages than two chunks hold, from several threads, freed in
        // another order than taken, and frames taken again meanwhile.
        let per_thread = FRAMES / 2 + 3;
        let pages: Vec<Page> = std::thread::scope(|s| {
            let makers: Vec<_> = (0..4u8)
                .map(|t| {
                    s.spawn(move || {
                        (0..per_thread)
                            .map(|i| Page::from(vec![t ^ i as u8; FRAME_BYTES]))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            makers.into_iter().flat_map(|m| m.join().unwrap()).collect()
        });
        for (n, page) in pages.iter().enumerate() {
            let (t, i) = (n / per_thread, n % per_thread);
            assert!(page.iter().all(|&b| b == t as u8 ^ i as u8), "page {n} was overwritten");
        }
        let (odd, even): (Vec<_>, Vec<_>) = pages.into_iter().enumerate().partition(|(n, _)| n % 2 == 1);
        drop(odd);
        let again: Vec<Page> = (0..FRAMES).map(|_| Page::from(vec![0xEE; FRAME_BYTES])).collect();
        for (n, page) in &even {
            let (t, i) = (n / per_thread, n % per_thread);
            assert!(
                page.iter().all(|&b| b == t as u8 ^ i as u8),
                "live page {n} was handed out again"
            );
        }
        assert!(again.iter().all(|page| page.iter().all(|&b| b == 0xEE)));
    }

    #[test]
    fn a_pool_keeps_one_idle_chunk_and_gives_the_others_back() {
        let pool = Mutex::new(Pool::new());
        let frames: Vec<NonNull<Head>> = (0..3 * FRAMES).map(|_| take_frame(&pool).unwrap()).collect();
        assert_eq!(pool.lock().chunks, 3);
        assert!(pool.lock().with_free.is_empty(), "three chunks, every frame taken");
        let distinct: std::collections::HashSet<usize> = frames.iter().map(|f| f.as_ptr().addr()).collect();
        assert_eq!(distinct.len(), frames.len(), "a frame handed out twice");
        // Freed chunk by chunk: the first to empty is kept, the next two go.
        for (n, frame) in frames.iter().enumerate() {
            give_back_frame(&pool, *frame);
            let pool = pool.lock();
            let emptied = (n + 1) / FRAMES;
            assert_eq!(
                pool.chunks,
                3 - emptied.saturating_sub(IDLE_CHUNKS_KEPT),
                "after {} frees",
                n + 1
            );
            assert_eq!(pool.idle, emptied.min(IDLE_CHUNKS_KEPT));
        }
        // The kept chunk serves the next frames; a fourth is mapped only
        // once it is full.
        let again: Vec<NonNull<Head>> = (0..FRAMES + 1).map(|_| take_frame(&pool).unwrap()).collect();
        let counts = |pool: &Mutex<Pool>| {
            let pool = pool.lock();
            (pool.chunks, pool.idle)
        };
        assert_eq!(counts(&pool), (2, 0));
        for frame in again {
            give_back_frame(&pool, frame);
        }
        assert_eq!(counts(&pool), (1, 1));
        let mut pool = pool.lock();
        let last = pool.with_free.pop().unwrap();
        unmap_chunk(last.0.cast());
    }
}
