//! The catalog: a bytewise-ordered tree mapping each tree's name to its
//! descriptor. Its own root and entry count live in the commit slot.
//!
//! ```text
//! catalog value
//! offset  size  field
//!      0     8  root page of the named tree (0 = empty tree)
//!      8     8  number of entries in the tree
//!     16     -  metadata owned by the layer above (type names), opaque here
//! ```

use crate::error::{Result, StorageError};
use crate::page::PageId;

/// Where a tree lives and what it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeInfo {
    /// Root page (0 = empty).
    pub(crate) root: PageId,
    /// Number of entries, maintained by every apply, so `len` needs no scan.
    pub(crate) len: u64,
    /// Opaque bytes owned by the layer above.
    pub(crate) meta: Vec<u8>,
}

const FIXED_LEN: usize = 16;

impl TreeInfo {
    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the tree holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The metadata stored with the tree.
    pub fn meta(&self) -> &[u8] {
        &self.meta
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED_LEN + self.meta.len());
        out.extend_from_slice(&self.root.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.meta);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < FIXED_LEN {
            return Err(StorageError::corrupted("catalog entry too short"));
        }
        let (root, rest) = bytes.split_at(8);
        let (len, meta) = rest.split_at(8);
        Ok(Self {
            root: u64::from_le_bytes(root.try_into().unwrap_or_default()),
            len: u64::from_le_bytes(len.try_into().unwrap_or_default()),
            meta: meta.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let info = TreeInfo {
            root: 42,
            len: 7,
            meta: b"u64->str".to_vec(),
        };
        assert_eq!(TreeInfo::decode(&info.encode()).unwrap(), info);
        assert!(TreeInfo::decode(&[1, 2, 3]).is_err());
    }
}
