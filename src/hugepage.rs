//! Memory for large tables the engine probes at random: mapped aligned to a
//! huge page and advised for one, where the system has them (Linux; other
//! systems and Miri get the heap).
//!
//! Why: a probe of a random slot of a table of megabytes on base pages
//! misses the TLB as well as the cache, and the page walk holds up even a
//! prefetch of the slot. The page cache's frames (`page::frame`) and the
//! memtables' point indexes (`engine::skiplist`) live in such memory.
//!
//! Invariant: a region returned by [`map_aligned`] is `len` bytes of zeroes
//! aligned to [`HUGE_PAGE`], owned by the caller until it hands it back to
//! [`unmap`] with the same `len`.

use std::alloc::Layout;
use std::marker::PhantomData;
use std::ptr::NonNull;

/// The huge page's size (x86-64's and arm64's with 4 KiB base pages), and
/// the alignment of every region mapped here.
pub(crate) const HUGE_PAGE: usize = 2 << 20;

/// How a [`ZeroedSlice`] that spans a huge page or more is backed. (A
/// smaller one comes from the heap whatever is asked.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Pages {
    /// Base pages, each backed at its first touch: for a table that may
    /// never fill (a database's first memtable, which a small database
    /// never freezes), whose untouched pages then cost nothing.
    Lazy,
    /// Base pages, all backed when the slice is made ([`populate`]): for a
    /// table that will fill, probed by one thread and written by another.
    Populated,
    /// Huge pages, advised for (`MADV_HUGEPAGE`) and backed at first
    /// touch: a table of megabytes probed at random misses the TLB on base
    /// pages. Not populated: a huge page the kernel must first compact
    /// memory for took 10-14 ms to populate at 10M keys, which at first
    /// touch is spread over the lookups instead of one commit.
    Huge,
}

/// A new region of `len` zeroed bytes (`len` a non-zero multiple of
/// [`HUGE_PAGE`]) aligned to a huge page, advised for huge pages if
/// `huge`. `None` if the system has no memory for it.
#[cfg(all(target_os = "linux", not(miri)))]
#[expect(unsafe_code, reason = "mapping anonymous memory")]
pub(crate) fn map_aligned(len: usize, huge: bool) -> Option<NonNull<u8>> {
    use libc::{MAP_ANONYMOUS, MAP_FAILED, MAP_PRIVATE, PROT_READ, PROT_WRITE};
    debug_assert!(len > 0 && len.is_multiple_of(HUGE_PAGE));
    // A huge page more, then the unaligned ends unmapped: mmap aligns to the
    // base page only, and a huge page needs its alignment.
    let mapped = len + HUGE_PAGE;
    // SAFETY: a new anonymous private mapping; no memory of ours is touched.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            mapped,
            PROT_READ | PROT_WRITE,
            MAP_PRIVATE | MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == MAP_FAILED {
        return None;
    }
    let base = base.cast::<u8>();
    let lead = base.addr().next_multiple_of(HUGE_PAGE) - base.addr();
    // SAFETY: `lead < HUGE_PAGE`, so the region lies inside the mapping.
    let region = unsafe { base.add(lead) };
    // SAFETY: the two ends are parts of the mapping just made that no one
    // uses; the region between them stays mapped. The advice only changes
    // how the kernel backs the region (a failure leaves base pages).
    unsafe {
        if lead > 0 {
            libc::munmap(base.cast(), lead);
        }
        libc::munmap(region.add(len).cast(), HUGE_PAGE - lead);
        if huge {
            libc::madvise(region.cast(), len, libc::MADV_HUGEPAGE);
        }
    }
    NonNull::new(region)
}

/// Returns a region [`map_aligned`] made to the system.
///
/// # Safety
/// `region` came from `map_aligned(len, _)` and nothing uses it any more.
#[cfg(all(target_os = "linux", not(miri)))]
#[expect(unsafe_code, reason = "unmapping a region no one uses")]
pub(crate) unsafe fn unmap(region: NonNull<u8>, len: usize) {
    // SAFETY: per the contract, the region is a mapping of `len` bytes that
    // no one reaches any more.
    unsafe {
        libc::munmap(region.as_ptr().cast(), len);
    }
}

/// Backs `len` bytes of a region [`map_aligned`] made with memory of its
/// own now, written (zeroes), rather than at each page's first touch. A
/// page first *read* maps the system's shared zero page, and the write that
/// follows replaces that mapping: a change every other core running the
/// process must be told of (an interrupt per page; in a virtual machine
/// each is an exit to the host). Best effort: a kernel without
/// `MADV_POPULATE_WRITE` (before Linux 5.14) leaves the pages to their
/// first touch.
///
/// # Safety
/// `region` came from `map_aligned(len, _)` and is still mapped.
#[cfg(all(target_os = "linux", not(miri)))]
#[expect(unsafe_code, reason = "advising a region of ours")]
pub(crate) unsafe fn populate(region: NonNull<u8>, len: usize) {
    // SAFETY: per the contract, the region is ours and mapped; the advice
    // writes nothing the program can see (its bytes stay zero).
    unsafe {
        libc::madvise(region.as_ptr().cast(), len, libc::MADV_POPULATE_WRITE);
    }
}

/// Nothing to do on the heap: `alloc_zeroed`'s memory is the program's.
///
/// # Safety
/// As the Linux version's.
#[cfg(not(all(target_os = "linux", not(miri))))]
#[expect(unsafe_code, reason = "the Linux version's contract")]
pub(crate) unsafe fn populate(_region: NonNull<u8>, _len: usize) {}

/// A new region from the heap (no huge-page advice here).
#[cfg(not(all(target_os = "linux", not(miri))))]
pub(crate) fn map_aligned(len: usize, _huge: bool) -> Option<NonNull<u8>> {
    let layout = Layout::from_size_align(len, HUGE_PAGE).ok()?;
    #[expect(unsafe_code, reason = "allocating a region")]
    // SAFETY: the layout is not zero-sized.
    NonNull::new(unsafe { std::alloc::alloc_zeroed(layout) })
}

/// Returns a region [`map_aligned`] made to the heap.
///
/// # Safety
/// `region` came from `map_aligned(len, _)` and nothing uses it any more.
#[cfg(not(all(target_os = "linux", not(miri))))]
#[expect(unsafe_code, reason = "freeing a region no one uses")]
pub(crate) unsafe fn unmap(region: NonNull<u8>, len: usize) {
    let layout = Layout::from_size_align(len, HUGE_PAGE).expect("a region's layout");
    // SAFETY: allocated by `map_aligned` with this layout, per the contract.
    unsafe {
        std::alloc::dealloc(region.as_ptr(), layout);
    }
}

/// A slice of `T`s that starts out zeroed: mapped on its own when it spans
/// at least a huge page ([`map_aligned`], backed as [`Pages`] says), else
/// from the heap, whose untouched pages stay unmapped until used. (Mapped
/// on its own, not from the heap: a block of megabytes that glibc maps and
/// frees raises its threshold for mapping blocks on their own, and smaller
/// blocks freed later stay resident.)
pub(crate) struct ZeroedSlice<T> {
    ptr: NonNull<T>,
    len: usize,
    /// Bytes mapped by `map_aligned` (0: a heap allocation of `len` `T`s).
    mapped: usize,
    _owns: PhantomData<T>,
}

// SAFETY: the slice owns its `T`s as a `Box<[T]>` would.
#[expect(unsafe_code, reason = "an owned slice is sent as its elements are")]
unsafe impl<T: Send> Send for ZeroedSlice<T> {}
// SAFETY: as for `Send`: shared access is `&[T]`.
#[expect(unsafe_code, reason = "an owned slice is shared as its elements are")]
unsafe impl<T: Sync> Sync for ZeroedSlice<T> {}

impl<T> ZeroedSlice<T> {
    /// `len` zeroed `T`s, backed as `pages` asks if they span a huge page;
    /// aborts as the allocator does if there is no memory.
    ///
    /// # Safety
    /// All-zero bytes are a valid `T`, and `T` needs no drop.
    #[expect(unsafe_code, reason = "zeroed memory taken as initialized `T`s")]
    pub(crate) unsafe fn new(len: usize, pages: Pages) -> Self {
        const { assert!(!std::mem::needs_drop::<T>(), "a zeroed slice never drops its elements") };
        let layout = Layout::array::<T>(len).expect("a slice of at most a few GiB");
        if layout.size() == 0 {
            return Self {
                ptr: NonNull::dangling(),
                len,
                mapped: 0,
                _owns: PhantomData,
            };
        }
        assert!(layout.align() <= HUGE_PAGE, "a huge page aligns every element");
        if layout.size() >= HUGE_PAGE {
            let mapped = layout.size().next_multiple_of(HUGE_PAGE);
            let region =
                map_aligned(mapped, pages == Pages::Huge).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
            if pages == Pages::Populated {
                // SAFETY: just mapped, `mapped` bytes long.
                unsafe { populate(region, mapped) };
            }
            return Self {
                ptr: region.cast(),
                len,
                mapped,
                _owns: PhantomData,
            };
        }
        // SAFETY: the layout is not zero-sized.
        let base = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(base.cast()).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Self {
            ptr,
            len,
            mapped: 0,
            _owns: PhantomData,
        }
    }
}

impl<T> std::ops::Deref for ZeroedSlice<T> {
    type Target = [T];

    #[expect(unsafe_code, reason = "the slice's own initialized elements")]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialized (zeroed, per `new`'s
        // contract) `T`s that live as long as `self`, or is dangling for an
        // empty slice or zero-sized `T`s.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for ZeroedSlice<T> {
    #[expect(unsafe_code, reason = "frees the memory `new` took")]
    fn drop(&mut self) {
        if self.mapped > 0 {
            // SAFETY: mapped by `new` with this length; the slice is gone.
            unsafe { unmap(self.ptr.cast(), self.mapped) };
            return;
        }
        let layout = Layout::array::<T>(self.len).expect("as in `new`");
        if layout.size() > 0 {
            // SAFETY: allocated by `new` with this layout; the slice is gone.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr().cast(), layout) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn a_zeroed_slice_reads_zero_and_keeps_what_is_stored_whatever_its_size() {
        // Empty, on the heap, exactly a huge page, and past one (a whole
        // number of huge pages mapped, the tail unused), each backed every
        // way. Miri takes
        // the heap sizes only: a walk of megabytes takes it minutes.
        let sizes: &[usize] = if cfg!(miri) {
            &[0, 1, 1000]
        } else {
            &[0, 1, 1000, HUGE_PAGE / 8, HUGE_PAGE / 8 + 1]
        };
        let backings = [Pages::Lazy, Pages::Populated, Pages::Huge];
        for (&len, pages) in sizes
            .iter()
            .flat_map(|len| backings.iter().map(move |&pages| (len, pages)))
        {
            // SAFETY: zero is a valid `AtomicU64`, which needs no drop.
            #[expect(unsafe_code, reason = "the contract of `ZeroedSlice::new`")]
            let slice = unsafe { ZeroedSlice::<AtomicU64>::new(len, pages) };
            assert_eq!(slice.len(), len);
            assert!(
                slice.iter().all(|word| word.load(Ordering::Relaxed) == 0),
                "{len} words"
            );
            for (i, word) in slice.iter().enumerate().step_by(4099) {
                word.store(i as u64 + 1, Ordering::Relaxed);
            }
            for (i, word) in slice.iter().enumerate().step_by(4099) {
                assert_eq!(word.load(Ordering::Relaxed), i as u64 + 1);
            }
            if len * 8 >= HUGE_PAGE {
                assert!(
                    slice.as_ptr().addr().is_multiple_of(HUGE_PAGE),
                    "{len} words: aligned to a huge page"
                );
            }
        }
    }

    /// Which of the region's base pages are resident (`mincore`).
    #[cfg(all(target_os = "linux", not(miri)))]
    fn resident_pages<T>(slice: &ZeroedSlice<T>) -> usize {
        const BASE_PAGE: usize = 4096;
        let bytes = slice.mapped;
        let mut vec = vec![0u8; bytes.div_ceil(BASE_PAGE)];
        // SAFETY: the region is mapped, `bytes` long and base-page aligned;
        // `vec` has a byte per base page.
        #[expect(unsafe_code, reason = "asking the kernel about our own mapping")]
        let status = unsafe { libc::mincore(slice.ptr.as_ptr().cast(), bytes, vec.as_mut_ptr()) };
        assert_eq!(status, 0, "mincore: {}", std::io::Error::last_os_error());
        vec.iter().filter(|&&page| page & 1 == 1).count()
    }

    /// (Needs Linux 5.14 or later, whose `MADV_POPULATE_WRITE` backs the
    /// populated slice; an older kernel fails this test and leaves such a
    /// slice to its first touch, which is slower, never wrong.)
    #[test]
    #[cfg(all(target_os = "linux", not(miri)))]
    fn a_populated_slice_is_backed_before_its_first_touch_and_a_lazy_one_is_not() {
        let len = 2 * HUGE_PAGE / 8;
        // SAFETY: zero is a valid `AtomicU64`, which needs no drop.
        #[expect(unsafe_code, reason = "the contract of `ZeroedSlice::new`")]
        let (lazy, populated) = unsafe {
            (
                ZeroedSlice::<AtomicU64>::new(len, Pages::Lazy),
                ZeroedSlice::<AtomicU64>::new(len, Pages::Populated),
            )
        };
        assert_eq!(resident_pages(&lazy), 0, "nothing touched, nothing backed");
        assert_eq!(resident_pages(&populated), 2 * HUGE_PAGE / 4096, "every page backed");
        lazy[0].store(1, Ordering::Relaxed);
        // One page, or one huge page where the system backs all anonymous
        // memory with them (transparent huge pages "always").
        let touched = resident_pages(&lazy);
        assert!(
            (1..=HUGE_PAGE / 4096).contains(&touched),
            "{touched} pages backed by one store"
        );
        assert!(populated.iter().all(|word| word.load(Ordering::Relaxed) == 0));
    }
}
