//! The names a write transaction resolved or changed, with what each is
//! bound to: a table slot, or nothing.
//!
//! A transaction names a table or two, and every single-write commit opens
//! one: kept in a `BTreeMap`, each took a node and a copy of the name (two
//! of a no-sync commit's nine allocations), and clearing the map freed
//! both. [`NameMap`] keeps a short sorted list instead, whose entries and
//! name buffers stay when it is cleared, for the writer's next transaction
//! ([`WriteSet::recycle`](super::writeset::WriteSet::recycle)). Past
//! [`LIST_NAMES`] names (a transaction over many tables) it moves them to a
//! map, where an insert is not a shift of the list.

use std::collections::BTreeMap;

use super::writeset::TableSlot;

/// Names past this many are kept in the map.
const LIST_NAMES: usize = 32;

/// The longest name buffer a cleared list keeps.
const SPARE_NAME_BYTES: usize = 256;

/// Names in byte order, each bound to a table slot or to none.
#[derive(Default)]
pub(crate) struct NameMap {
    /// The names while there are at most [`LIST_NAMES`], sorted; the
    /// entries from `len` on are spares, buffers of names cleared.
    list: Vec<(Vec<u8>, Option<TableSlot>)>,
    len: usize,
    /// The names once there are more (the list then holds none).
    map: BTreeMap<Vec<u8>, Option<TableSlot>>,
}

impl NameMap {
    /// The binding of `name`, if it has one here.
    pub(crate) fn get(&self, name: &[u8]) -> Option<Option<TableSlot>> {
        if !self.map.is_empty() {
            return self.map.get(name).copied();
        }
        let at = self.search(name).ok()?;
        Some(self.list[at].1)
    }

    /// Binds `name` to `binding`, replacing any binding it has.
    pub(crate) fn insert(&mut self, name: &[u8], binding: Option<TableSlot>) {
        self.bind(name, binding, true);
    }

    /// Binds `name` to `binding` unless it has a binding here already.
    pub(crate) fn insert_if_absent(&mut self, name: &[u8], binding: Option<TableSlot>) {
        self.bind(name, binding, false);
    }

    /// Every name with its binding, in byte order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], Option<TableSlot>)> {
        // One of the two is empty.
        let list = self.list[..self.len].iter().map(|(name, binding)| (name.as_slice(), *binding));
        list.chain(self.map.iter().map(|(name, binding)| (name.as_slice(), *binding)))
    }

    /// Forgets every name. The list's entries stay as spares, but for the
    /// long names and any past [`LIST_NAMES`].
    pub(crate) fn clear(&mut self) {
        self.map.clear();
        self.len = 0;
        self.list.truncate(LIST_NAMES);
        for (name, _) in &mut self.list {
            if name.capacity() > SPARE_NAME_BYTES {
                *name = Vec::new();
            }
        }
    }

    /// Where `name` is in the list (`Err`: where it would go).
    fn search(&self, name: &[u8]) -> Result<usize, usize> {
        self.list[..self.len].binary_search_by(|(listed, _)| listed.as_slice().cmp(name))
    }

    fn bind(&mut self, name: &[u8], binding: Option<TableSlot>, replace: bool) {
        if !self.map.is_empty() {
            match self.map.get_mut(name) {
                Some(bound) if replace => *bound = binding,
                Some(_) => {}
                None => {
                    self.map.insert(name.to_vec(), binding);
                }
            }
            return;
        }
        let at = match self.search(name) {
            Ok(at) => {
                if replace {
                    self.list[at].1 = binding;
                }
                return;
            }
            Err(at) => at,
        };
        if self.len == LIST_NAMES {
            // One more than the list keeps: all move to the map.
            self.map.extend(self.list.drain(..self.len));
            self.len = 0;
            self.map.insert(name.to_vec(), binding);
            return;
        }
        if self.len == self.list.len() {
            self.list.push(Default::default());
        }
        // The first spare takes the name, then moves to its place.
        let spare = &mut self.list[self.len];
        spare.0.clear();
        spare.0.extend_from_slice(name);
        spare.1 = binding;
        self.list[at..=self.len].rotate_right(1);
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random names from a small alphabet (so that they repeat, and are
    /// prefixes of one another), bound, rebound and cleared, against a
    /// `BTreeMap`, across the move to the map and back after a clear.
    #[test]
    fn names_are_bound_as_a_map_binds_them() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut names = NameMap::default();
        for round in 0..60 {
            let mut model: BTreeMap<Vec<u8>, Option<TableSlot>> = BTreeMap::new();
            // Some rounds stay in the list, others pass LIST_NAMES.
            let distinct = if round % 3 == 0 { 120 } else { 12 };
            for step in 0..200 {
                let len = (next() % 4) as usize;
                let mut name: Vec<u8> = (0..len).map(|_| b'a' + (next() % 3) as u8).collect();
                name.push((next() % distinct) as u8);
                let binding = (next() % 3 != 0).then_some(step);
                match next() % 3 {
                    0 => {
                        names.insert_if_absent(&name, binding);
                        model.entry(name.clone()).or_insert(binding);
                    }
                    _ => {
                        names.insert(&name, binding);
                        model.insert(name.clone(), binding);
                    }
                }
                assert_eq!(names.get(&name), model.get(&name).copied(), "round {round} step {step}");
                let absent = [name.as_slice(), b"~"].concat();
                assert_eq!(names.get(&absent), model.get(&absent).copied(), "round {round} step {step}");
            }
            let listed: Vec<(Vec<u8>, Option<TableSlot>)> = names.iter().map(|(name, b)| (name.to_vec(), b)).collect();
            let expected: Vec<(Vec<u8>, Option<TableSlot>)> = model.into_iter().collect();
            assert_eq!(listed, expected, "round {round}");
            names.clear();
            assert_eq!(names.iter().count(), 0, "round {round}");
            assert!(names.list.len() <= LIST_NAMES, "round {round}");
        }
    }
}
