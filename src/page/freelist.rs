//! The persisted free-page list: a chain of pages written at each durable
//! commit, listing every page below the commit's page count that the commit
//! does not reach.
//!
//! ```text
//! free-list page (after the common 24-byte page header; count = ids here)
//! offset  size  field
//!     24     8  next free-list page (0 = last)
//!     32  8*n   page ids, little-endian u64
//! ```
//!
//! Storing the list outside the trees avoids the classic recursion of a free
//! list kept in a tree (updating the tree frees pages, which updates the
//! list...). The list's own pages are allocated before the list is encoded,
//! so they never appear in it; the previous commit's list pages are retired
//! with the new commit like any other page.

use super::header::u64_at;
use super::store::{PAGE_HEADER_LEN, PageId, PageKind, PageStore, new_page, page_count_field, page_kind};
use crate::error::{Result, StorageError};

const NEXT_OFFSET: usize = PAGE_HEADER_LEN;
const IDS_OFFSET: usize = NEXT_OFFSET + size_of::<u64>();

fn ids_per_page(page_size: usize) -> usize {
    (page_size - IDS_OFFSET) / size_of::<u64>()
}

/// How many pages a list of `ids` free pages needs.
pub(crate) fn pages_needed(page_size: usize, ids: usize) -> usize {
    ids.div_ceil(ids_per_page(page_size))
}

/// Writes `ids` into the chain `pages` (at least `pages_needed` long; extra
/// pages are written empty) and
/// returns its head, or 0 for an empty list.
pub(crate) fn write(store: &PageStore, pages: &[PageId], ids: &[u64]) -> Result<PageId> {
    let per_page = ids_per_page(store.page_size());
    debug_assert!(pages.len() >= pages_needed(store.page_size(), ids.len()));
    let mut chunks = ids.chunks(per_page);
    for (i, &page) in pages.iter().enumerate() {
        let chunk = chunks.next().unwrap_or(&[]);
        let mut buf = new_page(store.page_size(), PageKind::FreeList, chunk.len() as u16);
        let next = pages.get(i + 1).copied().unwrap_or(0);
        buf[NEXT_OFFSET..IDS_OFFSET].copy_from_slice(&next.to_le_bytes());
        for (j, id) in chunk.iter().enumerate() {
            let at = IDS_OFFSET + j * 8;
            buf[at..at + 8].copy_from_slice(&id.to_le_bytes());
        }
        store.write_page(page, buf)?;
    }
    Ok(pages.first().copied().unwrap_or(0))
}

/// Reads the chain at `head`: returns the free ids and the chain's own pages.
/// Every id must lie inside `1..page_count`; a loop or a bad id is corruption.
pub(crate) fn read(store: &PageStore, head: PageId, page_count: u64) -> Result<(Vec<u64>, Vec<PageId>)> {
    let mut ids = Vec::new();
    let mut chain = Vec::new();
    let mut next = head;
    while next != 0 {
        if next >= page_count || chain.len() as u64 >= page_count {
            return Err(StorageError::corrupted(format!(
                "free list points at page {next} outside the file or loops"
            )));
        }
        let page = store.read_page_uncached(next)?;
        if page_kind(&page) != PageKind::FreeList {
            return Err(StorageError::corrupted(format!("page {next} is not a free-list page")));
        }
        let count = page_count_field(&page);
        if count > ids_per_page(page.len()) {
            return Err(StorageError::corrupted(format!("free-list page {next} overflows")));
        }
        for j in 0..count {
            let id = u64_at(&page, IDS_OFFSET + j * 8);
            if id == 0 || id >= page_count {
                return Err(StorageError::corrupted(format!("free list names invalid page {id}")));
            }
            ids.push(id);
        }
        chain.push(next);
        next = u64_at(&page, NEXT_OFFSET);
    }
    Ok((ids, chain))
}
