//! A cache prefetch hint, for code that knows which memory it reads next
//! (the skip list's next node, a key filter's block, a memtable value, a
//! B-tree node's whole page before its search: `prefetch_bytes`).

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

/// Asks the CPU to start loading every cache line `bytes` touches, from
/// the line holding its first byte to the one holding its last (a buffer
/// need not start on a line boundary). Computing the addresses reads
/// nothing, so this touches no memory itself.
#[inline]
pub(crate) fn prefetch_bytes(bytes: &[u8]) {
    const LINE: usize = 64;
    let start = bytes.as_ptr();
    let before = start.addr() % LINE;
    let first = start.wrapping_sub(before);
    for offset in (0..before + bytes.len()).step_by(LINE) {
        prefetch(first.wrapping_add(offset));
    }
}
