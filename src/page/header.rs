//! The file header and its two commit slots, all in page 0.
//!
//! ```text
//! page 0                                       (all integers little-endian)
//! offset  size  field
//!      0     8  magic "SLUICEDB"
//!      8     4  format version (FORMAT_VERSION)
//!     12     4  page size in bytes
//!     16    16  database id (random; WAL segments carry it too)
//!     32     8  xxh3-64 of bytes 0..32
//!   1024    64  commit slot 0
//!   2048    64  commit slot 1
//!
//! commit slot
//!      0     8  transaction id of the commit
//!      8     8  checkpoint_seq: WAL records at or below it are in the tree
//!     16     8  catalog tree root page (0 = empty catalog)
//!     24     8  number of trees in the catalog
//!     32     8  first page of the free-page list (0 = none)
//!     40     8  page count: pages at or above it are not part of the database
//!     48     4  log id: the WAL these commits continue in (0: none
//!               recorded; renewed by every writable open)
//!     52     4  previous log id, whose segments are still accepted (0: none)
//!     56     8  xxh3-64 of bytes 0..56, seeded with the slot's index
//! ```
//!
//! A slot whose checksum passes is still checked field by field before any
//! number in it is used (`Slot::check`): the counters stay at or below
//! [`MAX_COUNTER`] so that `+ 1` can never overflow, page ids lie below the
//! page count, and the page count times the page size fits a `u64`.
//!
//! The header is written once, when the file is created, in two synced steps:
//! page 0 whole but with the magic zeroed, then the magic. A file whose magic
//! is absent or a torn prefix of it, and which is otherwise a prefix of that
//! first image, is an unfinished creation (`unfinished_creation`): nothing was
//! ever acknowledged in it, and it is created again. A commit rewrites only
//! the slot that is *not* current; the current slot is the valid one with the
//! higher transaction id. The slots sit in separate 512-byte sectors so that a
//! torn slot write cannot touch the other slot. See `design/format.md` for the
//! commit protocol and its crash cases.

use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::error::{Result, StorageError};

pub(crate) const MAGIC: [u8; 8] = *b"SLUICEDB";
/// The on-disk format this build writes and reads.
/// Version 2 added the page generation (page header bytes 16..24); version 3
/// gave a leaf entry a two-byte value word (`btree::node`), not four;
/// version 4 added fixed-width leaves (page header bytes 14..16, which a
/// version-3 build would ignore and misread the leaf); version 5 stores a
/// fixed-width leaf's keys together, before its values (a version-4 build
/// would read a key where a value lies).
pub(crate) const FORMAT_VERSION: u32 = 5;

const VERSION_OFFSET: usize = MAGIC.len();
const PAGE_SIZE_OFFSET: usize = VERSION_OFFSET + size_of::<u32>();
const DB_ID_OFFSET: usize = PAGE_SIZE_OFFSET + size_of::<u32>();
const HEADER_CHECKSUM_OFFSET: usize = DB_ID_OFFSET + size_of::<u128>();
pub(crate) const HEADER_LEN: usize = HEADER_CHECKSUM_OFFSET + size_of::<u64>();

/// Byte offset of each commit slot in page 0.
pub(crate) const SLOT_OFFSETS: [usize; 2] = [1024, 2048];
/// Eight u64 fields.
pub(crate) const SLOT_LEN: usize = size_of::<[u64; 8]>();
const SLOT_CHECKSUM_OFFSET: usize = SLOT_LEN - size_of::<u64>();

/// The largest transaction id or checkpoint sequence a slot may hold. Every
/// later `+ 1` on them (the next transaction, the next WAL sequence) stays far
/// below `u64::MAX`: at a billion commits a second the margin lasts 290 years.
/// A slot holding more is crafted or damaged, and is refused as corruption.
pub(crate) const MAX_COUNTER: u64 = u64::MAX / 2;

/// The smallest page size that holds the header and both slots.
pub(crate) const MIN_PAGE_SIZE: usize = 4096;

/// The immutable part of page 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) page_size: u32,
    pub(crate) db_id: u128,
}

impl Header {
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut buf = [0u8; HEADER_LEN];
        buf[..VERSION_OFFSET].copy_from_slice(&MAGIC);
        buf[VERSION_OFFSET..PAGE_SIZE_OFFSET].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf[PAGE_SIZE_OFFSET..DB_ID_OFFSET].copy_from_slice(&self.page_size.to_le_bytes());
        buf[DB_ID_OFFSET..HEADER_CHECKSUM_OFFSET].copy_from_slice(&self.db_id.to_le_bytes());
        let sum = xxh3_64(&buf[..HEADER_CHECKSUM_OFFSET]);
        buf[HEADER_CHECKSUM_OFFSET..].copy_from_slice(&sum.to_le_bytes());
        buf
    }

    /// Parses the header, distinguishing a foreign file, a newer format and a
    /// damaged header, each with its own message.
    pub(crate) fn decode(buf: &[u8]) -> Result<Self> {
        let Some(buf) = buf.get(..HEADER_LEN) else {
            return Err(StorageError::corrupted("file too short for a sluicedb header"));
        };
        if buf[..VERSION_OFFSET] != MAGIC {
            return Err(StorageError::corrupted("not a sluicedb database (bad magic number)"));
        }
        let sum = u64_at(buf, HEADER_CHECKSUM_OFFSET);
        if sum != xxh3_64(&buf[..HEADER_CHECKSUM_OFFSET]) {
            return Err(StorageError::corrupted("file header checksum mismatch"));
        }
        let version = u32::from_le_bytes(buf[VERSION_OFFSET..PAGE_SIZE_OFFSET].try_into().unwrap_or_default());
        if version != FORMAT_VERSION {
            return Err(StorageError::corrupted(format!(
                "format version {version} is not supported by this build (it reads version {FORMAT_VERSION})"
            )));
        }
        let page_size = u32::from_le_bytes(buf[PAGE_SIZE_OFFSET..DB_ID_OFFSET].try_into().unwrap_or_default());
        if (page_size as usize) < MIN_PAGE_SIZE || !page_size.is_power_of_two() || page_size > 1 << 20 {
            return Err(StorageError::corrupted(format!("invalid page size {page_size}")));
        }
        let db_id = u128::from_le_bytes(buf[DB_ID_OFFSET..HEADER_CHECKSUM_OFFSET].try_into().unwrap_or_default());
        Ok(Self { page_size, db_id })
    }
}

/// Page 0 of a new database: the header and an empty commit in slot 0
/// (transaction 0, no trees, one page).
pub(crate) fn creation_image(page_size: usize, db_id: u128) -> Vec<u8> {
    let header = Header {
        page_size: page_size as u32,
        db_id,
    };
    let mut page0 = vec![0u8; page_size];
    page0[..HEADER_LEN].copy_from_slice(&header.encode());
    page0[SLOT_OFFSETS[0]..SLOT_OFFSETS[0] + SLOT_LEN].copy_from_slice(&creation_slot().encode(0));
    page0
}

/// The commit a new database starts at.
pub(crate) fn creation_slot() -> Slot {
    Slot {
        page_count: 1,
        ..Slot::default()
    }
}

/// Whether `file` (the whole file) is what an interrupted creation leaves,
/// and if so the database id its header names, when the header survived.
///
/// Creation (`PageStore::create`) empties the file and syncs, writes
/// [`creation_image`] with the magic zeroed and syncs, then writes the magic
/// and syncs. A crash between those syncs leaves, under the crash model
/// (each unsynced write lost, kept, or torn to a prefix), a file no longer
/// than a page that is a prefix of the first image, with a strict prefix of
/// the magic (perhaps none) followed by zeros. The database id and the header
/// checksum are free: they depend on the id, which is random.
///
/// An empty file is not one: it is a new file, which `create` makes a
/// database of and `open` refuses (as `Builder::open` does).
///
/// Never true of a database that was created: its magic is whole, and its
/// commits fill slot 1 (and slot 0 differs from the creation commit once two
/// commits were made), while an unfinished creation's slot 1 is zero and any
/// byte it holds beyond the header equals the creation image's. A zero-filled
/// or random file longer than 8 bytes is not one either (byte 8 is the
/// version's nonzero low byte in the creation image).
pub(crate) fn unfinished_creation(file: &[u8], page_size: usize) -> Option<Option<u128>> {
    if file.is_empty() || file.len() > page_size {
        return None;
    }
    let magic = &file[..file.len().min(MAGIC.len())];
    let torn = magic.iter().zip(MAGIC).take_while(|(a, b)| **a == *b).count();
    if torn == MAGIC.len() || magic[torn..].iter().any(|&b| b != 0) {
        return None;
    }
    // The magic is written only after the whole page was synced: any byte of
    // it means a whole page. (So a database cut down to a few bytes, which
    // keep a prefix of its magic, is not taken for a creation.)
    if torn > 0 && file.len() != page_size {
        return None;
    }
    let template = creation_image(page_size, 0);
    let free = DB_ID_OFFSET..HEADER_LEN;
    let matches = file
        .iter()
        .zip(&template)
        .enumerate()
        .skip(MAGIC.len())
        .all(|(i, (a, b))| a == b || free.contains(&i));
    if !matches {
        return None;
    }
    // The id survives if the header was synced whole (then only the magic
    // is missing, and the header checksum verifies with it).
    let db_id = file.get(..HEADER_LEN).and_then(|bytes| {
        let mut header = [0u8; HEADER_LEN];
        header.copy_from_slice(bytes);
        header[..MAGIC.len()].copy_from_slice(&MAGIC);
        Header::decode(&header).ok().map(|h| h.db_id)
    });
    Some(db_id)
}

/// A new random database id (time, process, thread and stack address
/// hashed), for a creation whose header did not survive.
pub(crate) fn fresh_db_id() -> u128 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let local = 0u8;
    let seed = format!(
        "{nanos}:{}:{:p}:{:?}",
        std::process::id(),
        &local,
        std::thread::current().id()
    );
    xxhash_rust::xxh3::xxh3_128(seed.as_bytes())
}

/// One commit: everything needed to find the database as of a durable commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) txn_id: u64,
    pub(crate) checkpoint_seq: u64,
    pub(crate) catalog_root: u64,
    pub(crate) catalog_len: u64,
    pub(crate) freelist_head: u64,
    pub(crate) page_count: u64,
    /// The identity of the WAL this file's commits continue in (the
    /// segments' `log_id`, `wal::record::SegmentHeader`): renewed by every
    /// writable open, so two copies of one file never write logs that pass
    /// for each other's. 0: none recorded (a file from before log ids; any
    /// segment is accepted).
    pub(crate) log_id: u32,
    /// The log before it, whose segments are still accepted: the open that
    /// renewed the id may have found records of it to replay (0: none).
    pub(crate) previous_log_id: u32,
}

impl Slot {
    pub(crate) fn encode(&self, index: usize) -> [u8; SLOT_LEN] {
        let mut buf = [0u8; SLOT_LEN];
        let fields = [
            self.txn_id,
            self.checkpoint_seq,
            self.catalog_root,
            self.catalog_len,
            self.freelist_head,
            self.page_count,
            u64::from(self.previous_log_id) << 32 | u64::from(self.log_id),
        ];
        for (i, field) in fields.iter().enumerate() {
            buf[i * 8..i * 8 + 8].copy_from_slice(&field.to_le_bytes());
        }
        let sum = xxh3_64_with_seed(&buf[..SLOT_CHECKSUM_OFFSET], index as u64);
        buf[SLOT_CHECKSUM_OFFSET..].copy_from_slice(&sum.to_le_bytes());
        buf
    }

    /// The slot at `index`: `None` if its checksum fails (never written, torn,
    /// or damaged); an error if the checksum passes but a field is impossible
    /// (see [`check`](Self::check)).
    pub(crate) fn decode(buf: &[u8], index: usize, page_size: u64) -> Option<Result<Self>> {
        let buf = buf.get(..SLOT_LEN)?;
        let sum = u64_at(buf, SLOT_CHECKSUM_OFFSET);
        if sum != xxh3_64_with_seed(&buf[..SLOT_CHECKSUM_OFFSET], index as u64) {
            return None;
        }
        let log_ids = u64_at(buf, 48);
        let slot = Self {
            txn_id: u64_at(buf, 0),
            checkpoint_seq: u64_at(buf, 8),
            catalog_root: u64_at(buf, 16),
            catalog_len: u64_at(buf, 24),
            freelist_head: u64_at(buf, 32),
            page_count: u64_at(buf, 40),
            log_id: log_ids as u32,
            previous_log_id: (log_ids >> 32) as u32,
        };
        let checked = slot.check(page_size).map(|()| slot);
        Some(
            checked
                .map_err(|msg| StorageError::corrupted(format!("commit slot {index} has a valid checksum but {msg}"))),
        )
    }

    /// Checks every field against what a real commit can hold, so that no
    /// arithmetic on them can overflow later. (That the page count fits the
    /// file is checked by the caller, for the slot it opens: an older slot
    /// may name more pages than a newer commit left in the file.)
    fn check(&self, page_size: u64) -> Result<(), String> {
        if self.txn_id > MAX_COUNTER {
            return Err(format!(
                "transaction id {} exceeds the largest valid one ({MAX_COUNTER})",
                self.txn_id
            ));
        }
        if self.checkpoint_seq > MAX_COUNTER {
            return Err(format!(
                "checkpoint sequence {} exceeds the largest valid one ({MAX_COUNTER})",
                self.checkpoint_seq
            ));
        }
        // Page 0 always exists, and every page must have a byte offset.
        if self.page_count == 0 || self.page_count.checked_mul(page_size).is_none() {
            return Err(format!("page count {} is impossible", self.page_count));
        }
        if self.catalog_root >= self.page_count {
            return Err(format!(
                "catalog root page {} lies outside its {} pages",
                self.catalog_root, self.page_count
            ));
        }
        if self.freelist_head >= self.page_count {
            return Err(format!(
                "free-list head page {} lies outside its {} pages",
                self.freelist_head, self.page_count
            ));
        }
        // An empty catalog has no root; a root node holds at least one entry,
        // and no entry is smaller than a byte.
        let max_trees = self.page_count.saturating_mul(page_size);
        if (self.catalog_root == 0) != (self.catalog_len == 0) || self.catalog_len > max_trees {
            return Err(format!(
                "catalog count {} does not fit catalog root page {}",
                self.catalog_len, self.catalog_root
            ));
        }
        Ok(())
    }
}

/// Reads a little-endian u64 at `offset`; callers have checked the length.
pub(crate) fn u64_at(buf: &[u8], offset: usize) -> u64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&buf[offset..offset + 8]);
    u64::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let header = Header {
            page_size: 4096,
            db_id: 0xDEAD_BEEF_0123,
        };
        let bytes = header.encode();
        assert_eq!(Header::decode(&bytes).unwrap(), header);
        for bit in 0..HEADER_LEN * 8 {
            let mut damaged = bytes;
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(Header::decode(&damaged).is_err(), "bit {bit} flip accepted");
        }
        assert!(Header::decode(&bytes[..10]).is_err());
    }

    #[test]
    fn unfinished_creation_is_told_apart_from_damage() {
        let image = creation_image(4096, 99);
        let mut unsealed = image.clone();
        unsealed[..8].fill(0);
        assert_eq!(unfinished_creation(&[], 4096), None, "an empty file");
        assert_eq!(
            unfinished_creation(&image[..7], 4096),
            None,
            "a database cut to 7 bytes"
        );
        for len in [1, 5, 8, 9, 40, 1500, 4096] {
            assert!(unfinished_creation(&unsealed[..len], 4096).is_some(), "prefix {len}");
        }
        assert_eq!(unfinished_creation(&unsealed, 4096), Some(Some(99)));
        assert_eq!(unfinished_creation(&unsealed[..30], 4096), Some(None));
        for torn in 0..8 {
            let mut partial = unsealed.clone();
            partial[..torn].copy_from_slice(&MAGIC[..torn]);
            assert_eq!(
                unfinished_creation(&partial, 4096),
                Some(Some(99)),
                "magic torn at {torn}"
            );
        }
        assert_eq!(unfinished_creation(&image, 4096), None, "a finished creation");
        assert_eq!(unfinished_creation(&[0; 9], 4096), None, "zeros");
        assert_eq!(unfinished_creation(&[0; 4096], 4096), None, "zeros");
        let mut committed = unsealed.clone();
        committed[SLOT_OFFSETS[1]] = 1;
        assert_eq!(unfinished_creation(&committed, 4096), None, "slot 1 written");
        let mut longer = unsealed.clone();
        longer.push(0);
        assert_eq!(unfinished_creation(&longer, 4096), None, "pages beyond the header");
    }

    #[test]
    fn newer_version_is_named_in_the_error() {
        let mut bytes = Header {
            page_size: 4096,
            db_id: 1,
        }
        .encode();
        bytes[VERSION_OFFSET..PAGE_SIZE_OFFSET].copy_from_slice(&7u32.to_le_bytes());
        let sum = xxh3_64(&bytes[..HEADER_CHECKSUM_OFFSET]);
        bytes[HEADER_CHECKSUM_OFFSET..].copy_from_slice(&sum.to_le_bytes());
        let err = Header::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("format version 7"), "{err}");
    }

    #[test]
    fn slot_round_trips_and_is_bound_to_its_index() {
        let slot = Slot {
            txn_id: 9,
            checkpoint_seq: 77,
            catalog_root: 3,
            catalog_len: 2,
            freelist_head: 5,
            page_count: 12,
            log_id: 0xabcd,
            previous_log_id: 0x1234,
        };
        let bytes = slot.encode(1);
        assert_eq!(Slot::decode(&bytes, 1, 4096).unwrap().unwrap(), slot);
        assert!(
            Slot::decode(&bytes, 0, 4096).is_none(),
            "a slot copied to the other index"
        );
        let mut torn = bytes;
        torn[40..].fill(0);
        assert!(Slot::decode(&torn, 1, 4096).is_none());
    }

    #[test]
    fn impossible_numbers_are_refused_despite_a_valid_checksum() {
        let good = Slot {
            txn_id: 9,
            checkpoint_seq: 77,
            catalog_root: 3,
            catalog_len: 2,
            freelist_head: 5,
            page_count: 12,
            log_id: 0,
            previous_log_id: 0,
        };
        let bad = [
            Slot {
                txn_id: u64::MAX,
                ..good
            },
            Slot {
                txn_id: MAX_COUNTER + 1,
                ..good
            },
            Slot {
                checkpoint_seq: u64::MAX,
                ..good
            },
            Slot { page_count: 0, ..good },
            Slot {
                page_count: u64::MAX / 4096 + 1,
                ..good
            },
            Slot {
                catalog_root: 12,
                ..good
            },
            Slot {
                freelist_head: u64::MAX,
                ..good
            },
            Slot { catalog_len: 0, ..good },
            Slot {
                catalog_root: 0,
                ..good
            },
            Slot {
                catalog_len: u64::MAX,
                ..good
            },
        ];
        for slot in bad {
            let decoded = Slot::decode(&slot.encode(0), 0, 4096).expect("checksum is valid");
            assert!(decoded.is_err(), "{slot:?} accepted");
        }
        let limit = Slot {
            txn_id: MAX_COUNTER,
            checkpoint_seq: MAX_COUNTER,
            ..good
        };
        assert!(Slot::decode(&limit.encode(0), 0, 4096).unwrap().is_ok());
        let with_logs = Slot {
            log_id: u32::MAX,
            previous_log_id: u32::MAX - 1,
            ..good
        };
        assert_eq!(Slot::decode(&with_logs.encode(0), 0, 4096).unwrap().unwrap(), with_logs);
    }
}
