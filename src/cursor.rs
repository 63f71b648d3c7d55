//! [`Cursor`]: a read position between two entries of a table, from
//! [`ReadableTable::lower_bound`](crate::ReadableTable::lower_bound) and
//! [`upper_bound`](crate::ReadableTable::upper_bound), as redb's (and the
//! nightly `btree_map::Cursor`).
//!
//! It is built from two ranges of the table: the entries after the gap,
//! read forward, and those before it, read backward. Entries the cursor
//! steps over are kept, so it can step back over them; a cursor holds at
//! most the entries it has passed.

use crate::btree::ValueBytes;
use crate::error::StorageError;
use crate::table::{AccessGuard, Range};
use crate::types::{Key, Value};

/// One stored entry: the key's and the value's bytes.
type Raw = (ValueBytes, ValueBytes);

/// A position at a gap between two entries of a table.
pub struct Cursor<'a, K: Key + 'static, V: Value + 'static> {
    /// Entries after the gap not yet reached, in order.
    after: Option<Range<'a, K, V>>,
    /// Entries before the gap not yet reached, read from the back.
    before: Option<Range<'a, K, V>>,
    /// Entries stepped back over (after the gap), nearest last.
    ahead: Vec<Raw>,
    /// Entries stepped over (before the gap), nearest last.
    behind: Vec<Raw>,
}

type Entry<'a, K, V> = (AccessGuard<'a, K>, AccessGuard<'a, V>);

fn guards<'a, K: Key + 'static, V: Value + 'static>((key, value): Raw) -> Entry<'a, K, V> {
    (AccessGuard::new(key), AccessGuard::new(value))
}

impl<'a, K: Key + 'static, V: Value + 'static> Cursor<'a, K, V> {
    pub(crate) fn new(after: Option<Range<'a, K, V>>, before: Option<Range<'a, K, V>>) -> Self {
        Self {
            after,
            before,
            ahead: Vec::new(),
            behind: Vec::new(),
        }
    }

    fn pull_next(&mut self) -> Result<Option<Raw>, StorageError> {
        if let Some(raw) = self.ahead.pop() {
            return Ok(Some(raw));
        }
        self.after.as_mut().and_then(|r| r.next_raw()).transpose()
    }

    fn pull_prev(&mut self) -> Result<Option<Raw>, StorageError> {
        if let Some(raw) = self.behind.pop() {
            return Ok(Some(raw));
        }
        self.before.as_mut().and_then(|r| r.next_back_raw()).transpose()
    }

    /// Moves past the entry after the gap and returns it; `None` (not
    /// moving) at the end of the table. Not an [`Iterator`]: each step can
    /// fail (as redb's and the nightly `btree_map::Cursor`).
    #[expect(clippy::should_implement_trait, reason = "redb's name; a step returns a Result")]
    pub fn next(&mut self) -> Result<Option<Entry<'a, K, V>>, StorageError> {
        let Some(raw) = self.pull_next()? else {
            return Ok(None);
        };
        self.behind.push(raw.clone());
        Ok(Some(guards(raw)))
    }

    /// Moves before the entry preceding the gap and returns it; `None` (not
    /// moving) at the start of the table.
    pub fn prev(&mut self) -> Result<Option<Entry<'a, K, V>>, StorageError> {
        let Some(raw) = self.pull_prev()? else {
            return Ok(None);
        };
        self.ahead.push(raw.clone());
        Ok(Some(guards(raw)))
    }

    /// The entry after the gap, without moving.
    pub fn peek_next(&mut self) -> Result<Option<Entry<'a, K, V>>, StorageError> {
        let Some(raw) = self.pull_next()? else {
            return Ok(None);
        };
        self.ahead.push(raw.clone());
        Ok(Some(guards(raw)))
    }

    /// The entry before the gap, without moving.
    pub fn peek_prev(&mut self) -> Result<Option<Entry<'a, K, V>>, StorageError> {
        let Some(raw) = self.pull_prev()? else {
            return Ok(None);
        };
        self.behind.push(raw.clone());
        Ok(Some(guards(raw)))
    }
}
