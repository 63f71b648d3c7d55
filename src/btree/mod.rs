//! Copy-on-write B+trees: node layouts, bulk apply, cursors, the catalog of
//! named trees, and the store that commits and pins them.

mod apply;
mod catalog;
mod check;
mod cmp;
mod cursor;
mod node;
mod shape;
mod store;
mod value;

pub(crate) use crate::page::fresh_db_id;
pub use apply::Op;
pub(crate) use apply::{check_key, check_op};
pub use catalog::TreeInfo;
pub use check::Report;
pub(crate) use cmp::{byte_order, compare, prefix_word};
pub use cmp::{Comparator, bytewise, is_bytewise};
pub(crate) use cursor::PinnedNode;
pub use cursor::{RangeIter, TreeEntry};
pub use node::MAX_KEY_LEN;
pub(crate) use node::SEARCH_GROUP;
pub use shape::{Census, TreeShape};
pub use store::{PINS_TREE, PinnedCommit, Relocation, Snapshot, TreeStore, TreeStoreOptions, TreeWriter};
pub use value::{MAX_VALUE_LEN, ValueBytes};
