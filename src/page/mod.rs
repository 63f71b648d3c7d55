//! The page store: a file of fixed-size, checksummed pages behind a header with
//! two commit slots, a page cache, and the allocator that decides when a freed
//! page may be written again.

mod allocator;
mod cache;
mod frame;
pub(crate) mod freelist;
mod header;
mod store;

pub(crate) use allocator::{Allocator, PageRanges};
pub(crate) use cache::CacheCounters;
// MAGIC: `db.rs` tells a foreign file from a damaged database by it.
pub(crate) use header::{MAGIC, MIN_PAGE_SIZE, Slot, fresh_db_id};
pub(crate) use store::{
    MAX_NODE_BYTES, PAGE_HEADER_LEN, Page, PageId, PageKind, PageStore, StoreOptions, new_run, page_count_field,
    page_generation, page_kind, page_span,
};
