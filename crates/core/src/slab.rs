//! A bounded slab: the command slab of the driver.
//!
//! Keys are small dense integers, reused after removal (LIFO, so hot entries
//! stay in cache). The slab never grows past its capacity: `insert` hands the
//! value back when full, and the driver queues the op until a slot frees.

/// Bounded slab with O(1) insert, lookup and removal.
#[derive(Debug)]
pub struct Slab<T> {
    entries: Vec<Option<T>>,
    free: Vec<u32>,
    len: usize,
    capacity: usize,
}

impl<T> Slab<T> {
    /// A slab holding at most `capacity` values (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, u32::MAX as usize);
        Slab {
            entries: Vec::new(),
            free: Vec::new(),
            len: 0,
            capacity,
        }
    }

    /// Stores `value` and returns its key, or gives the value back when full.
    pub fn insert(&mut self, value: T) -> Result<u32, T> {
        if let Some(key) = self.free.pop() {
            debug_assert!(self.entries[key as usize].is_none());
            self.entries[key as usize] = Some(value);
            self.len += 1;
            return Ok(key);
        }
        if self.entries.len() >= self.capacity {
            return Err(value);
        }
        let key = self.entries.len() as u32;
        self.entries.push(Some(value));
        self.len += 1;
        Ok(key)
    }

    pub fn get(&self, key: u32) -> Option<&T> {
        self.entries.get(key as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, key: u32) -> Option<&mut T> {
        self.entries.get_mut(key as usize).and_then(Option::as_mut)
    }

    /// Removes and returns the value at `key`; `None` if the slot is vacant.
    pub fn remove(&mut self, key: u32) -> Option<T> {
        let value = self.entries.get_mut(key as usize)?.take()?;
        self.free.push(key);
        self.len -= 1;
        Some(value)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.len >= self.capacity
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys and values of every occupied slot.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(k, v)| v.as_ref().map(|v| (k as u32, v)))
    }

    /// Keys and mutable values of every occupied slot.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut T)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(k, v)| v.as_mut().map(|v| (k as u32, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    #[test]
    fn fills_to_capacity_then_refuses() {
        let mut s = Slab::with_capacity(3);
        let a = s.insert('a').unwrap();
        let b = s.insert('b').unwrap();
        let c = s.insert('c').unwrap();
        assert!(s.is_full());
        assert_eq!(s.insert('d'), Err('d'));
        assert_eq!(s.remove(b), Some('b'));
        let d = s.insert('d').unwrap();
        assert_eq!(d, b, "a freed key is reused");
        assert_eq!(s.get(a), Some(&'a'));
        assert_eq!(s.get(c), Some(&'c'));
        assert_eq!(s.get(d), Some(&'d'));
    }

    #[test]
    fn remove_twice_and_out_of_range_are_none() {
        let mut s = Slab::with_capacity(2);
        let k = s.insert(1).unwrap();
        assert_eq!(s.remove(k), Some(1));
        assert_eq!(s.remove(k), None);
        assert_eq!(s.remove(99), None);
        assert!(s.get(99).is_none());
        assert!(s.is_empty());
    }

    proptest! {
        /// Against a model: the slab never exceeds capacity, never loses or
        /// duplicates a value, and every live key maps to its own value.
        #[test]
        fn behaves_like_a_bounded_map(cap in 1usize..16, ops in proptest::collection::vec((any::<bool>(), 0u32..20), 0..200)) {
            let mut s = Slab::with_capacity(cap);
            let mut model: HashMap<u32, u32> = HashMap::new();
            let mut next = 0u32;
            for (insert, k) in ops {
                if insert {
                    match s.insert(next) {
                        Ok(key) => {
                            prop_assert!(model.len() < cap);
                            prop_assert!(model.insert(key, next).is_none(), "key handed out twice");
                        }
                        Err(v) => {
                            prop_assert_eq!(v, next);
                            prop_assert_eq!(model.len(), cap);
                        }
                    }
                    next += 1;
                } else {
                    prop_assert_eq!(s.remove(k), model.remove(&k));
                }
                prop_assert_eq!(s.len(), model.len());
                prop_assert!(s.len() <= cap);
            }
            for (k, v) in &model {
                prop_assert_eq!(s.get(*k), Some(v));
            }
            prop_assert_eq!(s.iter().count(), model.len());
        }
    }
}
