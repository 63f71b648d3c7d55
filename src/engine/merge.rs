//! Range reads across the layers of a snapshot: a transaction's own writes,
//! the memtables (newest first) and the tree, merged in key order, newest
//! layer winning, tombstones hiding what lies beneath.
//!
//! Each direction is its own k-way merge over its own source iterators (the
//! backward one is built on the first `next_back`), so a forward scan pays for
//! one seek per layer. The two meet in the middle: the front stops before the
//! last key the back returned, and vice versa.

use std::cmp::Ordering;
use std::ops::Bound;
use std::sync::Arc;

use super::memtable::{Edge, MemKey, MemValue, Memtable};
use super::skiplist::{Entry, Lookahead, Position, SeekStart};
use crate::btree::{Comparator, RangeIter, TreeEntry, ValueBytes, compare};
use crate::error::Result;

/// One layer's view of a key: a value, or a tombstone (`None`). The key is
/// a `ValueBytes` so that the tree's layer can hand out a slice of its page
/// (no allocation per entry, measured: a fifth of a short scan's
/// instructions went to copying keys into `Vec`s and freeing them).
pub(crate) type Item = (ValueBytes, Option<ValueBytes>);

/// A layer's entries in one direction, already deduplicated per key.
///
/// The tree's and the memtables' layers, which every range of a table
/// reads, are variants of their own: a merge calls them directly, and the
/// compiler can inline them into it, where an iterator behind a pointer is
/// an indirect call per entry and a move of the entry through memory.
pub(crate) enum Source<'a> {
    Tree(TreeSource<'a>),
    Memtable(MemSource),
    Other(Box<dyn Iterator<Item = Result<Item>> + Send + 'a>),
}

impl<'a> Source<'a> {
    /// Any other layer's entries (a transaction's writes, a pending run, an
    /// overlay).
    pub(crate) fn boxed(entries: impl Iterator<Item = Result<Item>> + Send + 'a) -> Self {
        Self::Other(Box::new(entries))
    }
}

impl Iterator for Source<'_> {
    type Item = Result<Item>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Tree(tree) => tree.next(),
            Self::Memtable(mem) => mem.next(),
            Self::Other(entries) => entries.next(),
        }
    }
}

/// The tree's layer of a range: its entries in one direction, none a
/// tombstone.
pub(crate) struct TreeSource<'a> {
    range: RangeIter<'a>,
    direction: Direction,
}

impl<'a> TreeSource<'a> {
    pub(crate) fn new(range: RangeIter<'a>, direction: Direction) -> Self {
        Self { range, direction }
    }

    /// The next entry in this source's direction, as the tree gives it.
    #[inline]
    fn next_entry(&mut self) -> Option<Result<TreeEntry>> {
        match self.direction {
            Direction::Forward => self.range.next(),
            Direction::Backward => self.range.next_back(),
        }
    }

    /// How many of this source's next entries, within the leaf it reads,
    /// are known to come before `key` in its direction
    /// ([`RangeIter::leaf_entries_before`]).
    #[inline]
    fn leaf_entries_before(&self, key: &[u8]) -> usize {
        self.range.leaf_entries_before(key, self.direction == Direction::Forward)
    }
}

impl Iterator for TreeSource<'_> {
    type Item = Result<Item>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let entry = self.next_entry()?;
        Some(entry.map(|entry| {
            let (key, value) = entry.into_key_value();
            (key, Some(value))
        }))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Forward,
    Backward,
}

/// Builds a direction's sources between two bounds (the range's own, or
/// narrower: a clone resumes where its original stands), highest priority
/// first.
pub(crate) type SourceFactory<'a> =
    Arc<dyn Fn(Direction, Bound<&[u8]>, Bound<&[u8]>) -> Result<Vec<Source<'a>>> + Send + Sync + 'a>;

/// A k-way merge in one direction.
struct Merge<'a> {
    sources: Vec<Source<'a>>,
    heads: Vec<Option<Item>>,
    direction: Direction,
    cmp: Comparator,
    /// The last source is the tree, below newer layers: a range's step
    /// may pass the tree's entries straight through while they come
    /// before the newer layers' next ([`MergedRange::step`]).
    streams_tree: bool,
    /// The tree's next entry is not in its head yet (the step that took
    /// the last one left it to the next step): its head means nothing
    /// until [`fill_tree_head`](Self::fill_tree_head), and its source stands
    /// just past the last entry the merge returned or dropped. Set only by
    /// a range's steps (`take_for_step`), which fill the head before any
    /// comparison of all heads (`step_merged`); `Merge::next` (a lone
    /// source, `first_visible`) never meets it.
    tree_pending: bool,
    /// How many of the tree's next entries are known to come before the
    /// newer layers' next key: a range's step passes them through without
    /// comparing. Counted when a comparison finds the tree's entry first
    /// and the tree's next is the first of a leaf whose bound lies before
    /// that key (all of the leaf, [`TreeSource::leaf_entries_before`]), or
    /// `usize::MAX` when the newer layers have nothing left. The newer
    /// layers' next key only moves on in the merge's direction, so the
    /// count stays true while the step streams the tree; it is zeroed
    /// whenever the tree's entries are read another way (`take_for_step`).
    ///
    /// Why: a full scan of 10M keys with 2% of them rewritten in the
    /// memtable compared every tree entry with the memtable's next key,
    /// and ran 15% below the same scan with nothing in the memtable. With
    /// the count, a third of the entries pass uncompared (the leaves
    /// holding no memtable key), and the scan ran 7-10% faster (probe,
    /// alternated runs, fifty-second session). Looking again whenever the
    /// memtable's key moves passed seven in ten, and ran no faster; a
    /// search of the leaf for the key passed nine in ten, and ran slower
    /// (its misses on the leaf's lines ahead of the scan).
    tree_clear: usize,
    /// How many of the tree's entries a range's steps passed through after
    /// comparing them, up to [`STREAMED_BEFORE_CLEARING`]: only then do
    /// they look for entries to pass uncompared (`tree_clear`).
    tree_streamed: u8,
}

/// How many of the tree's entries a range passes through, each compared
/// with the newer layers' next key, before it looks for runs of them it
/// need not compare (`Merge::tree_clear`): a short range would pay for the
/// looking (callgrind, a seek and ten entries over 1M keys with a fifth of
/// them in the memtable: 4% more instructions when every range looked).
const STREAMED_BEFORE_CLEARING: u8 = 32;

/// How many of the tree's entries after the one a step just passed through
/// are known to come before `newer`, the newer layers' next entry: the rest
/// of the tree's leaf if it lies wholly before it, all if the newer layers
/// have none left (`Merge::tree_clear`).
#[inline(never)]
fn known_before(tree: &TreeSource<'_>, newer: Option<&Item>) -> usize {
    match newer {
        Some((key, _)) => tree.leaf_entries_before(key),
        None => usize::MAX,
    }
}

impl<'a> Merge<'a> {
    fn new(mut sources: Vec<Source<'a>>, direction: Direction, cmp: Comparator) -> Result<Self> {
        // A lone source (a flushed table: the tree alone) has nothing to
        // merge with: `next` passes its entries through, holding no head.
        let heads = if sources.len() == 1 {
            Vec::new()
        } else {
            // The memtables' seeks first ask for the nodes they will read,
            // so that those misses overlap each other and the tree's seek.
            for source in &mut sources {
                if let Source::Memtable(mem) = source {
                    mem.prefetch_seek();
                }
            }
            // The tree (last) seeks first, while they arrive. Each entry
            // is read into its place: collected in reverse (through
            // `Result`) and then reversed, each was moved more times
            // (callgrind, a seek and ten entries over 1M keys with 50K of
            // them in the memtable: 12,545 -> 12,429 instructions).
            let mut heads: Vec<Option<Item>> = Vec::with_capacity(sources.len());
            heads.resize_with(sources.len(), || None);
            for (head, source) in heads.iter_mut().zip(sources.iter_mut()).rev() {
                *head = source.next().transpose()?;
            }
            heads
        };
        let streams_tree = sources.len() > 1 && matches!(sources.last(), Some(Source::Tree(_)));
        Ok(Self {
            sources,
            heads,
            direction,
            cmp,
            streams_tree,
            tree_pending: false,
            tree_clear: 0,
            tree_streamed: 0,
        })
    }

    /// The next key and its newest layer's entry (possibly a tombstone).
    /// `Option<Result<_>>`, as the sources give it: a lone source's entry
    /// passes through unchanged (turning each entry into a
    /// `Result<Option<_>>` and back moved it through memory twice more,
    /// with loads wider than the stores that wrote it).
    #[inline(always)]
    fn next(&mut self) -> Option<Result<Item>> {
        if let [only] = self.sources.as_mut_slice() {
            return only.next();
        }
        match self.winner() {
            Ok(Some(winner)) => Some(self.take(winner)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Which head of two or more sources comes next, once the lower layers'
    /// versions of its key are skipped; `None` at the end. The entry stays
    /// in its head: a caller looks at it in place ([`head`](Self::head))
    /// and then takes it or skips it, so an entry is moved once, out of its
    /// head, and not handed through every step of the merge (each move of
    /// an entry just written stalled on loads wider than its stores).
    #[inline(never)]
    fn winner(&mut self) -> Result<Option<usize>> {
        self.winner_among(self.heads.len())
    }

    /// [`winner`](Self::winner) among the first `n` heads only, the lower
    /// layers' versions of its key among them skipped. One head (a range's
    /// step over one memtable and the tree asks once per entry) is
    /// answered inline: a call of the general search per entry cost a
    /// seek and ten entries over 1M keys with 50K of them in the memtable
    /// 2% of its instructions (callgrind: 12,811 -> 12,545 a range).
    #[inline(always)]
    fn winner_among(&mut self, n: usize) -> Result<Option<usize>> {
        if n == 1 {
            return Ok(self.heads[0].is_some().then_some(0));
        }
        self.winner_among_many(n)
    }

    /// [`winner_among`](Self::winner_among) of two or more heads.
    fn winner_among_many(&mut self, n: usize) -> Result<Option<usize>> {
        if n == 2 {
            return self.winner_of_two();
        }
        let mut best: Option<usize> = None;
        for (i, head) in self.heads[..n].iter().enumerate() {
            let Some((key, _)) = head else { continue };
            let better = match best.and_then(|b| self.heads[b].as_ref()) {
                None => true,
                Some((best_key, _)) => {
                    let order = compare(self.cmp, key, best_key);
                    if self.direction == Direction::Forward {
                        order.is_lt()
                    } else {
                        order.is_gt()
                    }
                }
            };
            if better {
                best = Some(i);
            }
        }
        let Some(best) = best else { return Ok(None) };
        // Lower layers' versions of the same key are shadowed: advance them
        // first, comparing against the winner in place (no copy of its key).
        for i in 0..n {
            if i == best {
                continue;
            }
            let same = match (&self.heads[i], &self.heads[best]) {
                (Some((k, _)), Some((winner, _))) => compare(self.cmp, k, winner).is_eq(),
                _ => false,
            };
            if same {
                self.skip(i)?;
            }
        }
        Ok(Some(best))
    }

    /// [`winner`](Self::winner) of two sources (a memtable and the tree,
    /// the common case): one comparison of the two heads decides both
    /// which comes first and whether the lower layer's is shadowed (the
    /// k-way loop compares twice).
    fn winner_of_two(&mut self) -> Result<Option<usize>> {
        let order = match (&self.heads[0], &self.heads[1]) {
            (Some((a, _)), Some((b, _))) => {
                let order = compare(self.cmp, a, b);
                if self.direction == Direction::Forward { order } else { order.reverse() }
            }
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => return Ok(None),
        };
        // The first source is the newer layer: it wins a tie, and the
        // second's version of that key is shadowed.
        if order.is_eq() {
            self.skip(1)?;
        }
        Ok(Some(usize::from(order.is_gt())))
    }

    /// Head `i`'s entry. REQUIRES: `i` from [`winner`](Self::winner), not
    /// taken or skipped since.
    fn head(&self, i: usize) -> &Item {
        self.heads[i].as_ref().expect("a winner's head holds an entry")
    }

    /// Drops head `i`'s entry for its source's next.
    fn skip(&mut self, i: usize) -> Result<()> {
        self.heads[i] = self.sources[i].next().transpose()?;
        Ok(())
    }

    /// Head `i`'s entry, replaced by its source's next. REQUIRES: as
    /// [`head`](Self::head).
    fn take(&mut self, i: usize) -> Result<Item> {
        let taken = match self.sources[i].next() {
            Some(Ok(next)) => self.heads[i].replace(next),
            Some(Err(e)) => return Err(e),
            None => self.heads[i].take(),
        };
        Ok(taken.expect("a winner's head holds an entry"))
    }

    /// Whether it merges two or more sources (a lone one holds no heads).
    fn is_merging(&self) -> bool {
        self.sources.len() > 1
    }

    /// Puts the tree's next entry in its head, if a step left it pending.
    fn fill_tree_head(&mut self) -> Result<()> {
        if self.tree_pending {
            self.tree_pending = false;
            self.skip(self.sources.len() - 1)?;
        }
        Ok(())
    }

    /// Head `i`'s entry, for a step that returns it: the tree's head is
    /// left pending (its next entry is read by the next step, which may
    /// pass it straight through), any other's is refilled at once.
    fn take_for_step(&mut self, i: usize) -> Result<Item> {
        if self.streams_tree && i == self.sources.len() - 1 {
            self.tree_pending = true;
            self.tree_clear = 0;
            return Ok(self.heads[i].take().expect("a winner's head holds an entry"));
        }
        self.take(i)
    }

    /// Returns head `i`, a value (not a tombstone), as the step's entry,
    /// its key noted as this end's last.
    #[inline]
    fn yield_head(&mut self, i: usize, last: &mut Option<ValueBytes>) -> Option<Result<(ValueBytes, ValueBytes)>> {
        last.get_or_insert_with(|| ValueBytes::copy_of(&[])).assign(&self.head(i).0);
        Some(match self.take_for_step(i) {
            Ok((key, Some(value))) => Ok((key, value)),
            Ok((_, None)) => unreachable!("a tombstone is skipped before"),
            Err(e) => Err(e),
        })
    }
}

/// The first entry in `direction` that `sources` (highest priority first)
/// show, tombstones skipped: one step of a merge, for a caller that wants
/// an edge of a range and not the range (`WriteTxn::edge`).
pub(crate) fn first_visible(
    sources: Vec<Source<'_>>,
    direction: Direction,
    cmp: Comparator,
) -> Result<Option<(ValueBytes, ValueBytes)>> {
    let mut merge = Merge::new(sources, direction, cmp)?;
    while let Some((key, value)) = merge.next().transpose()? {
        if let Some(value) = value {
            return Ok(Some((key, value)));
        }
    }
    Ok(None)
}

/// A double-ended iterator over one table's entries between two bounds,
/// merged across a transaction's writes, the memtables and the tree.
pub struct MergedRange<'a> {
    factory: SourceFactory<'a>,
    cmp: Comparator,
    /// The bounds, inline when short (`ValueBytes::copy_of`).
    lower: Bound<ValueBytes>,
    upper: Bound<ValueBytes>,
    front: Option<Merge<'a>>,
    back: Option<Merge<'a>>,
    /// The last key each direction returned (see [`ValueBytes::assign`]).
    front_last: Option<ValueBytes>,
    back_last: Option<ValueBytes>,
    done: bool,
}

impl<'a> MergedRange<'a> {
    /// The key order it merges in.
    pub(crate) fn order(&self) -> Comparator {
        self.cmp
    }

    pub(crate) fn new(factory: SourceFactory<'a>, cmp: Comparator, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Self {
        Self {
            factory,
            cmp,
            lower: lower.map(ValueBytes::copy_of),
            upper: upper.map(ValueBytes::copy_of),
            front: None,
            back: None,
            front_last: None,
            back_last: None,
            done: false,
        }
    }

    /// The next visible entry in `direction`, `None` at the end. The
    /// iterator's own `Option<Result<_>>` all the way from the sources: an
    /// entry is moved once per layer, not repacked at each.
    fn step(&mut self, direction: Direction) -> Option<Result<(ValueBytes, ValueBytes)>> {
        let slot = if direction == Direction::Forward {
            &mut self.front
        } else {
            &mut self.back
        };
        if slot.is_none() {
            let lower = self.lower.as_ref().map(ValueBytes::as_bytes);
            let upper = self.upper.as_ref().map(ValueBytes::as_bytes);
            match (self.factory)(direction, lower, upper).and_then(|sources| Merge::new(sources, direction, self.cmp)) {
                Ok(merge) => *slot = Some(merge),
                Err(e) => return Some(Err(e)),
            }
        }
        // A lone tree (a flushed table) read from one end: its entries pass
        // straight through, none a tombstone, no other end to meet. Relies
        // on: an end's last key is set only by its own merge's steps, so
        // while the other end's merge does not exist there is nothing to
        // stop at; this end's last key is still kept, for the other end's
        // first step and for a clone.
        let (merge, other, last) = if direction == Direction::Forward {
            (self.front.as_mut(), &self.back, &mut self.front_last)
        } else {
            (self.back.as_mut(), &self.front, &mut self.back_last)
        };
        if other.is_none()
            && let Some(merge) = merge
            && let [Source::Tree(tree)] = merge.sources.as_mut_slice()
        {
            return hand_out(tree.next_entry()?, last);
        }
        // The tree under newer layers, read from one end: while its next
        // entry comes before the newer layers' next key, it passes straight
        // through as a lone tree's does. Most steps of a range are such
        // (the tree holds most keys); an entry held in the merge's head
        // instead was stored there and moved out again at its turn, each
        // move stalled on loads of the stores just before it. One the newer
        // layers shadow is dropped where it was read, and their entry
        // returned from here, the tree's next still to read: only an entry
        // after the newer layers' next key is held back in its head.
        let (cmp, alone) = (self.cmp, other.is_none());
        let merge = if direction == Direction::Forward {
            self.front.as_mut()
        } else {
            self.back.as_mut()
        };
        if alone
            && let Some(merge) = merge
            && merge.tree_pending
        {
            let tree = merge.sources.len() - 1;
            // Entries known to come first pass through uncompared, as a
            // lone tree's do (`Merge::tree_clear`).
            if merge.tree_clear > 0 {
                let Some(Source::Tree(source)) = merge.sources.last_mut() else {
                    unreachable!("a merge streams only a tree")
                };
                match source.next_entry() {
                    Some(entry) => {
                        merge.tree_clear -= 1;
                        return hand_out(entry, last);
                    }
                    // Only when the newer layers have nothing left either
                    // (`usize::MAX`): a leaf's count never runs past the
                    // tree's end, nor past the range's far bound, since its
                    // entries come before a newer key inside the bounds.
                    // The merge finds its end as it would.
                    None => {
                        merge.tree_clear = 0;
                        merge.heads[tree] = None;
                        merge.tree_pending = false;
                        return self.step_merged(direction);
                    }
                }
            }
            loop {
                let upper = match merge.winner_among(tree) {
                    Ok(upper) => upper,
                    Err(e) => return Some(Err(e)),
                };
                let Merge {
                    sources,
                    heads,
                    tree_clear,
                    tree_streamed,
                    ..
                } = &mut *merge;
                let Some(Source::Tree(source)) = sources.last_mut() else {
                    unreachable!("a merge streams only a tree")
                };
                let next = source.next_entry();
                // Looked at in place: the entry that comes first leaves as
                // the lone tree's does, mapped where it was read (each
                // move of it through a local stalled on loads wider than
                // the stores that wrote it).
                let order = match &next {
                    Some(Ok(entry)) => upper.map_or(Ordering::Less, |upper| {
                        let (key, _) = heads[upper].as_ref().expect("a winner's head holds an entry");
                        let order = compare(cmp, entry.key_bytes(), key);
                        if direction == Direction::Forward { order } else { order.reverse() }
                    }),
                    // An error is returned as the tree's entry would be.
                    Some(Err(_)) => Ordering::Less,
                    None => Ordering::Greater,
                };
                if order.is_lt() {
                    // A range that has passed enough of the tree's entries
                    // through is a scan: it looks for more to pass
                    // uncompared. A short one would only pay for looking.
                    if *tree_streamed < STREAMED_BEFORE_CLEARING {
                        *tree_streamed += 1;
                    } else if matches!(next, Some(Ok(_))) {
                        *tree_clear = known_before(source, upper.and_then(|upper| heads[upper].as_ref()));
                    }
                    return hand_out(next?, last);
                }
                match next {
                    // Held back until the newer layers pass its key.
                    Some(Ok(entry)) if order.is_gt() => {
                        let (key, value) = entry.into_key_value();
                        heads[tree] = Some((key, Some(value)));
                    }
                    // The tree is done.
                    None => heads[tree] = None,
                    // A newer layer's version of its key shadows it:
                    // dropped, and the tree's next is still to read.
                    _ => {}
                }
                if order.is_gt() {
                    merge.tree_pending = false;
                    break;
                }
                // The newer layers' entry at the key the tree had: a
                // tombstone hides both, a value is the step's.
                let upper = upper.expect("an equal key is a newer layer's");
                if merge.head(upper).1.is_none() {
                    if let Err(e) = merge.skip(upper) {
                        return Some(Err(e));
                    }
                    continue;
                }
                return merge.yield_head(upper, last);
            }
        }
        self.step_merged(direction)
    }

    /// [`step`](Self::step) through the merge: tombstones skipped, stopping
    /// where the other end has been. A call of its own, so that the lone
    /// tree's path stays small.
    #[inline(never)]
    fn step_merged(&mut self, direction: Direction) -> Option<Result<(ValueBytes, ValueBytes)>> {
        let forward = direction == Direction::Forward;
        let (merge, other, last) = if forward {
            (self.front.as_mut()?, &self.back_last, &mut self.front_last)
        } else {
            (self.back.as_mut()?, &self.front_last, &mut self.back_last)
        };
        // Stop where the other direction has already been.
        let crossed = |key: &ValueBytes| {
            other.as_ref().is_some_and(|other| {
                let order = compare(self.cmp, key, other);
                if forward { !order.is_lt() } else { !order.is_gt() }
            })
        };
        if !merge.is_merging() {
            // A lone source read from both ends.
            loop {
                let (key, value) = match merge.next()? {
                    Ok(item) => item,
                    Err(e) => return Some(Err(e)),
                };
                if crossed(&key) {
                    return None;
                }
                let Some(value) = value else { continue };
                last.get_or_insert_with(|| ValueBytes::copy_of(&[])).assign(&key);
                return Some(Ok((key, value)));
            }
        }
        if let Err(e) = merge.fill_tree_head() {
            return Some(Err(e));
        }
        loop {
            let winner = match merge.winner() {
                Ok(winner) => winner?,
                Err(e) => return Some(Err(e)),
            };
            let (key, value) = merge.head(winner);
            if crossed(key) {
                return None;
            }
            if value.is_none() {
                if let Err(e) = merge.skip(winner) {
                    return Some(Err(e));
                }
                continue;
            }
            return merge.yield_head(winner, last);
        }
    }

    /// [`step`](Self::step), and the end for good after `None` or an error.
    #[inline]
    fn advance(&mut self, direction: Direction) -> Option<Result<(ValueBytes, ValueBytes)>> {
        if self.done {
            return None;
        }
        let item = self.step(direction);
        if !matches!(item, Some(Ok(_))) {
            self.done = true;
        }
        item
    }
}

/// The tree's `entry` as a step's, its key noted as this end's `last`: for
/// each place a step passes a tree entry straight through, inlined into it
/// as the closure it replaces was.
#[inline(always)]
fn hand_out(entry: Result<TreeEntry>, last: &mut Option<ValueBytes>) -> Option<Result<(ValueBytes, ValueBytes)>> {
    Some(entry.map(|entry| {
        last.get_or_insert_with(|| ValueBytes::copy_of(&[])).assign(entry.key_bytes());
        entry.into_key_value()
    }))
}

impl Clone for MergedRange<'_> {
    /// A range at this one's position: it yields what this one would yield
    /// next, from either end. It reads the same snapshot through sources of
    /// its own, from bounds narrowed to the keys not yet returned.
    fn clone(&self) -> Self {
        let resume = |last: &Option<ValueBytes>, bound: &Bound<ValueBytes>| match last {
            Some(key) => Bound::Excluded(ValueBytes::copy_of(key)),
            None => bound.clone(),
        };
        Self {
            factory: self.factory.clone(),
            cmp: self.cmp,
            lower: resume(&self.front_last, &self.lower),
            upper: resume(&self.back_last, &self.upper),
            front: None,
            back: None,
            front_last: None,
            back_last: None,
            done: self.done,
        }
    }
}

impl Iterator for MergedRange<'_> {
    type Item = Result<(ValueBytes, ValueBytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.advance(Direction::Forward)
    }
}

impl DoubleEndedIterator for MergedRange<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.advance(Direction::Backward)
    }
}

/// One memtable's visible entries of one table between two bounds, at a
/// snapshot sequence, in one direction. Yields one key at a time from a
/// remembered skip-list position (no re-seek, no batch of copies): a short
/// scan over a memtable full of tombstones reads only what it yields.
pub(crate) struct MemSource {
    mem: Arc<Memtable>,
    cmp: Comparator,
    seq: u64,
    lower: Bound<MemKey>,
    upper: Bound<MemKey>,
    direction: Direction,
    /// The last skip-list entry consumed (the last version of the last key
    /// group read); `None` before the first.
    at: Option<Position<MemKey, MemValue>>,
    /// Where its first step's seek starts, once
    /// [`prefetch_seek`](Self::prefetch_seek) has searched the seek index
    /// for it.
    start: Option<SeekStart<MemKey, MemValue>>,
    /// A long forward read's place in the seek index
    /// (`SkipList::look_ahead`).
    ahead: Lookahead,
    exhausted: bool,
    /// What the long values this source hands out hold: given by its
    /// reader, or made at the first such value.
    owner: Option<MemOwner>,
}

/// What the long values a memtable source hands out hold: the memtable,
/// through a reference count of their reader's own. They share the arena's
/// bytes instead of copying them (a copy was an allocation, a copy and a
/// free per value), and their counting stays on the reader's core (one
/// count shared by every reader's values, the memtable's own, would bounce
/// between cores). A read table makes one per memtable for all its ranges
/// (`State::mem_owners`): one made per range was an allocation and a free
/// per range (callgrind, a seek and ten entries over a 1M-key table with a
/// fifth of its keys in the memtable: 13,818 instructions a range, 13,614
/// with the owners shared).
#[derive(Clone)]
#[expect(clippy::redundant_allocation, reason = "the outer count is the reader's own, the point of an owner")]
pub(crate) struct MemOwner(Arc<Arc<Memtable>>);

impl MemOwner {
    /// A new owner of `mem`.
    pub(crate) fn of(mem: &Arc<Memtable>) -> Self {
        Self(Arc::new(mem.clone()))
    }

    /// Whether it holds `mem`.
    fn owns(&self, mem: &Arc<Memtable>) -> bool {
        Arc::ptr_eq(&*self.0, mem)
    }

    /// A count of it, for a value to hold.
    fn share(&self) -> Arc<dyn Send + Sync> {
        self.0.clone()
    }
}

impl MemSource {
    /// `owner`: what its long values hold, if its reader has one for
    /// `mem` (see [`MemOwner`]; `None`: made at the first such value).
    /// REQUIRES: `owner` owns `mem` (checked in debug builds): a value
    /// holding another memtable would outlive its bytes.
    #[expect(clippy::too_many_arguments, reason = "a source's bounds, snapshot and order")]
    pub(crate) fn new(
        mem: Arc<Memtable>,
        owner: Option<MemOwner>,
        table: u64,
        cmp: Comparator,
        seq: u64,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        direction: Direction,
    ) -> Self {
        debug_assert!(owner.as_ref().is_none_or(|owner| owner.owns(&mem)), "an owner of another memtable");
        // Included(k) from below starts at k's newest version (seq MAX);
        // Excluded(k) starts after its oldest (seq 0 is never used).
        let lower = match lower {
            Bound::Included(k) => Bound::Included(MemKey::probe(table, cmp, k, u64::MAX)),
            Bound::Excluded(k) => Bound::Excluded(MemKey::probe(table, cmp, k, 0)),
            Bound::Unbounded => Bound::Excluded(MemKey::edge(table, cmp, Edge::Start)),
        };
        let upper = match upper {
            Bound::Included(k) => Bound::Included(MemKey::probe(table, cmp, k, 0)),
            Bound::Excluded(k) => Bound::Excluded(MemKey::probe(table, cmp, k, u64::MAX)),
            Bound::Unbounded => Bound::Excluded(MemKey::edge(table, cmp, Edge::End)),
        };
        Self {
            mem,
            cmp,
            seq,
            lower,
            upper,
            direction,
            at: None,
            start: None,
            ahead: Lookahead::default(),
            exhausted: false,
            owner,
        }
    }

    /// Starts loading what this source's first step reads (forward only:
    /// a backward seek walks from the top of the list).
    fn prefetch_seek(&mut self) {
        if self.direction == Direction::Forward && self.at.is_none() {
            self.start = self.mem.map().prefetch_seek(bound_ref(&self.lower));
        }
    }

    /// The next key group: `None` when the range is done, `Some(None)` for
    /// a key with no version visible at the snapshot (the caller moves on),
    /// else its visible version (a value or a tombstone).
    fn next_group(&mut self) -> Option<Option<Item>> {
        let list = self.mem.map();
        let forward = self.direction == Direction::Forward;
        let first = match self.at {
            None => {
                let first = if let Some(start) = self.start.filter(|_| forward) {
                    #[expect(unsafe_code, reason = "the start's list is kept alive by self.mem")]
                    // SAFETY: `start` came from this memtable's list, which
                    // `self.mem` has kept alive since.
                    unsafe {
                        list.lower_bound_from(bound_ref(&self.lower), start)
                    }
                } else if forward {
                    list.lower_bound(bound_ref(&self.lower))
                } else {
                    list.upper_bound(bound_ref(&self.upper))
                };
                // The seek asked for the list's seek index: build one if it
                // is due. Builds follow searches, not inserts, so a list
                // that grew under batch commits alone, with no index, gets
                // one from its first range reads (`SkipList::claim_seek_build`).
                self.mem.maintain();
                first
            }
            Some(at) => {
                #[expect(unsafe_code, reason = "the position's list is kept alive by self.mem")]
                // SAFETY: `at` came from this memtable's list, which
                // `self.mem` has kept alive since.
                let entry = unsafe { list.resume(at) };
                let step = |e| if forward { list.after(e) } else { list.before(e) };
                // A newer version of the key just read may have been
                // inserted since (the inserter thread runs beside readers).
                // Newer versions sort first, so only a backward walk meets
                // it, right where it resumes: it belongs to the group
                // already yielded, skip it (the test that found this:
                // engine_pending_commits).
                let mut next = step(entry);
                let same_key = |e: &Entry<'_, MemKey, MemValue>| {
                    e.key().table == entry.key().table && compare(self.cmp, &e.key().key, &entry.key().key).is_eq()
                };
                while let Some(newer) = next.filter(same_key) {
                    next = step(newer);
                }
                next
            }
        };
        let within = |e: &Entry<'_, MemKey, MemValue>| {
            if forward {
                match &self.upper {
                    Bound::Included(k) => e.key() <= k,
                    Bound::Excluded(k) => e.key() < k,
                    Bound::Unbounded => true,
                }
            } else {
                match &self.lower {
                    Bound::Included(k) => e.key() >= k,
                    Bound::Excluded(k) => e.key() > k,
                    Bound::Unbounded => true,
                }
            }
        };
        let first = first.filter(within)?;
        // The group: every version of this key. Forward meets them newest
        // first (the first visible one wins), backward oldest first (each
        // later visible one replaces). A comparator may call different
        // bytes equal: the reader sees the bytes of the version it sees.
        // The versions after `first` need no bounds check: a bound's probe
        // sorts before or after every version of its key, so they lie
        // within the bounds with it.
        let mut visible: Option<Entry<'_, MemKey, MemValue>> = None;
        let mut entry = first;
        let next = loop {
            if entry.key().seq() <= self.seq && (visible.is_none() || !forward) {
                visible = Some(entry);
            }
            let next = if forward { list.after(entry) } else { list.before(entry) };
            match next {
                Some(version) if version.key().same_key_as(first.key()) => entry = version,
                _ => break next,
            }
        };
        let last = entry;
        self.at = Some(list.position(last));
        // The next group's first node is `next`, just read; the one after it
        // and `next`'s value (in the arena, not beside the node) are what
        // that call waits for: start loading them now.
        if let Some(next) = next.filter(|_| forward) {
            list.prefetch_after(next);
            next.prefetch_bytes();
            list.look_ahead(next, &mut self.ahead, |e| e.prefetch_bytes());
        }
        let (mem, owner) = (&self.mem, &mut self.owner);
        Some(visible.map(|e| {
            (
                ValueBytes::copy_of(&e.key().key),
                e.bytes().map(|bytes| {
                    let owner = || owner.get_or_insert_with(|| MemOwner::of(mem)).share();
                    #[expect(unsafe_code, reason = "a value shared with the arena that holds it")]
                    // SAFETY: a memtable's arena bytes stay valid and
                    // unchanged while the memtable lives, and the owner
                    // holds the memtable.
                    unsafe {
                        ValueBytes::shared(owner, bytes)
                    }
                }),
            )
        }))
    }
}

fn bound_ref(b: &Bound<MemKey>) -> Bound<&MemKey> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Iterator for MemSource {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.exhausted {
            match self.next_group() {
                None => self.exhausted = true,
                Some(Some(item)) => return Some(Ok(item)),
                Some(None) => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btree::bytewise;

    #[test]
    fn long_memtable_values_hold_their_memtable_and_short_ones_are_copies() {
        let mem = Arc::new(Memtable::new(1 << 20));
        let long = [7u8; 100];
        mem.insert(1, bytewise, b"a", 1, Some(b"short"));
        mem.insert(1, bytewise, b"b", 2, Some(&long));
        mem.insert(1, bytewise, b"c", 3, None);
        let weak = Arc::downgrade(&mem);
        let source = MemSource::new(mem, None, 1, bytewise, 10, Bound::Unbounded, Bound::Unbounded, Direction::Forward);
        let items: Vec<Item> = source.map(|item| item.unwrap()).collect();
        let seen: Vec<(&[u8], Option<&[u8]>)> = items.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
        assert_eq!(seen, [(&b"a"[..], Some(&b"short"[..])), (b"b", Some(&long[..])), (b"c", None)]);
        // The source is gone: only the long value holds the memtable.
        assert!(weak.upgrade().is_some());
        let (short, long_value) = (items[0].1.clone().unwrap(), items[1].1.clone().unwrap());
        drop(items);
        assert!(weak.upgrade().is_some(), "a long value keeps its memtable");
        drop(long_value);
        assert!(weak.upgrade().is_none(), "a short value is a copy");
        assert_eq!(&short[..], b"short");
    }

    #[test]
    fn long_values_of_a_source_given_an_owner_hold_that_owner() {
        let mem = Arc::new(Memtable::new(1 << 20));
        mem.insert(1, bytewise, b"a", 1, Some(&[7u8; 100]));
        mem.insert(1, bytewise, b"b", 2, Some(&[8u8; 100]));
        let owner = MemOwner::of(&mem);
        let weak = Arc::downgrade(&mem);
        let given = Arc::downgrade(&owner.0);
        let source = MemSource::new(
            mem,
            Some(owner.clone()),
            1,
            bytewise,
            10,
            Bound::Unbounded,
            Bound::Unbounded,
            Direction::Forward,
        );
        let values: Vec<ValueBytes> = source.map(|item| item.unwrap().1.unwrap()).collect();
        // The source, gone, held one count of the owner; each value holds one.
        assert_eq!(Arc::strong_count(&owner.0), 1 + values.len(), "no owner of their own");
        drop(owner);
        assert!(weak.upgrade().is_some(), "the values hold the memtable through the owner");
        drop(values);
        assert!(given.upgrade().is_none() && weak.upgrade().is_none());
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "an owner of another memtable")]
    fn a_source_refuses_an_owner_of_another_memtable() {
        let (mem, other) = (Arc::new(Memtable::new(1 << 20)), Arc::new(Memtable::new(1 << 20)));
        let owner = Some(MemOwner::of(&other));
        MemSource::new(mem, owner, 1, bytewise, 10, Bound::Unbounded, Bound::Unbounded, Direction::Forward);
    }

    #[test]
    fn a_memtable_filled_by_batches_gets_its_seek_index_from_its_first_range_read() {
        let mem = Arc::new(Memtable::new(1 << 24));
        let keys: Vec<[u8; 8]> = (0..2_000u64).map(|i| (i * 7).to_be_bytes()).collect();
        for (seq, batch) in keys.chunks(500).enumerate() {
            let ops = batch.iter().map(|k| (&k[..], Some(&b"v"[..])));
            mem.inserter().insert_sorted(1, bytewise, seq as u64 + 1, ops);
            mem.maintain();
        }
        assert!(!mem.map().has_seek_index(), "batch inserts never search the index: none is built");
        let lower = 700u64.to_be_bytes();
        let source = MemSource::new(mem.clone(), None, 1, bytewise, 10, Bound::Included(&lower), Bound::Unbounded, Direction::Forward);
        let read: Vec<u64> = source
            .take(3)
            .map(|item| u64::from_be_bytes(item.unwrap().0[..].try_into().unwrap()))
            .collect();
        assert_eq!(read, [700, 707, 714]);
        // The read started a build on a thread of its own.
        let start = std::time::Instant::now();
        while !mem.map().has_seek_index() {
            assert!(start.elapsed() < std::time::Duration::from_secs(60), "no seek index after a range read");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
