//! A cache prefetch hint, for code that knows which memory it reads next
//! (the skip list's next node, a key filter's block, a memtable value, a
//! B-tree node's whole page before its search: `Node::prefetch`).

/// Asks the CPU to start loading the cache line at `p` (a hint: any
/// address, null included, is safe; it never faults).
#[inline(always)]
#[expect(unsafe_code, reason = "a prefetch instruction")]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    // SAFETY: prefetching reads nothing the program sees and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}
