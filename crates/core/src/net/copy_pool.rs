//! The send-copy pool: small sends are copied into library memory, so the
//! kernel never reads a JavaScript Buffer (invariant 2) and the user's
//! promise can settle as soon as the send completes.
//!
//! The pool is ONE aligned block cut into equal slots, so the whole pool can
//! be registered with the kernel as a single fixed buffer (one entry of the
//! registered-buffer table, whatever the number of slots). A slot is handed
//! out as a [`CopySlot`] token that is neither `Clone` nor `Copy`: the only
//! way to give a slot back is to move the token into [`CopyPool::free`], so a
//! slot cannot be freed twice, and each token carries its pool's id, so a
//! token from another pool is refused rather than corrupting this one.
//!
//! When the pool is exhausted `alloc` returns `None` and the caller falls
//! back to a plain allocation (a bounce block); nothing waits on the pool.

use crate::buffer::AlignedBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// Slots in a pool made with the defaults.
pub const DEFAULT_SLOTS: usize = 64;
/// Bytes per slot in a pool made with the defaults: a send at least this
/// large is a candidate for zero-copy instead.
pub const DEFAULT_SLOT_SIZE: usize = 16 * 1024;
/// Alignment of the block (a page: registration pins whole pages anyway).
const BLOCK_ALIGN: usize = 4096;

/// Ids of pools, unique for the life of the process (a `u64` never wraps).
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// One slot of one pool, owned by whoever holds the token. Dropping the
/// token without [`CopyPool::free`] leaks the slot (safe, but the pool
/// shrinks), hence `must_use`.
#[must_use = "a CopySlot must be given back with CopyPool::free"]
#[derive(Debug, PartialEq, Eq)]
pub struct CopySlot {
    pool: u64,
    index: u32,
}

impl CopySlot {
    /// The slot's position in its pool (0-based).
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// A fixed number of fixed-size slots in one aligned, never-moving block.
///
/// The block lives as long as the pool: the driver must keep the pool alive
/// while any send that reads a slot is in flight (it drains its ring before
/// dropping its pools).
#[derive(Debug)]
pub struct CopyPool {
    block: AlignedBuf,
    id: u64,
    slot_size: usize,
    slots: usize,
    /// Free slot indexes; popped from the end, so slot 0 goes out first and
    /// a just-freed (cache-warm) slot is reused next.
    free: Vec<u32>,
    /// The block's index in the kernel's registered-buffer table, set by
    /// the driver once registration succeeded (`None`: unregistered; the
    /// pool works the same, the kernel just maps pages per send).
    pub fixed_index: Option<u16>,
}

impl CopyPool {
    /// A pool of `slots` slots of `slot_size` bytes each. `None` when either
    /// is zero, `slots` exceeds `u32::MAX`, the size overflows, or the
    /// allocator fails.
    pub fn new(slots: usize, slot_size: usize) -> Option<CopyPool> {
        if slots == 0 || slot_size == 0 || u32::try_from(slots).is_err() {
            return None;
        }
        let len = slots.checked_mul(slot_size)?;
        let block = AlignedBuf::new(len, BLOCK_ALIGN)?;
        Some(CopyPool {
            block,
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            slot_size,
            slots,
            free: (0..slots as u32).rev().collect(),
            fixed_index: None,
        })
    }

    /// A pool of [`DEFAULT_SLOTS`] × [`DEFAULT_SLOT_SIZE`].
    pub fn with_defaults() -> Option<CopyPool> {
        CopyPool::new(DEFAULT_SLOTS, DEFAULT_SLOT_SIZE)
    }

    /// A free slot, or `None` when every slot is taken.
    pub fn alloc(&mut self) -> Option<CopySlot> {
        let index = self.free.pop()?;
        Some(CopySlot {
            pool: self.id,
            index,
        })
    }

    /// Gives `slot` back. A slot of another pool is refused and handed back
    /// untouched (the caller gives it to its own pool).
    pub fn free(&mut self, slot: CopySlot) -> Result<(), CopySlot> {
        if !self.owns(&slot) {
            return Err(slot);
        }
        debug_assert!(self.free.len() < self.slots);
        debug_assert!(!self.free.contains(&slot.index));
        self.free.push(slot.index);
        Ok(())
    }

    /// Whether `slot` was handed out by this pool.
    pub fn owns(&self, slot: &CopySlot) -> bool {
        slot.pool == self.id && (slot.index as usize) < self.slots
    }

    /// The slot's bytes, to copy a send into; `None` for another pool's slot.
    /// Call it only before the send is submitted: once the send owns the
    /// token, the kernel may be reading these bytes.
    pub fn slot_mut(&mut self, slot: &CopySlot) -> Option<&mut [u8]> {
        let range = self.range(slot)?;
        Some(&mut self.block.as_mut_slice()[range])
    }

    /// The slot's first byte, for building an SQE; `None` for another
    /// pool's slot.
    pub fn slot_ptr(&self, slot: &CopySlot) -> Option<*mut u8> {
        let range = self.range(slot)?;
        Some(self.block.as_ptr().wrapping_add(range.start))
    }

    /// An iovec over the first `len` bytes of `slot`; `None` for another
    /// pool's slot or a `len` larger than a slot.
    pub fn iovec(&self, slot: &CopySlot, len: usize) -> Option<libc::iovec> {
        if len > self.slot_size {
            return None;
        }
        Some(libc::iovec {
            iov_base: self.slot_ptr(slot)?.cast(),
            iov_len: len,
        })
    }

    fn range(&self, slot: &CopySlot) -> Option<std::ops::Range<usize>> {
        if !self.owns(slot) {
            return None;
        }
        let start = slot.index as usize * self.slot_size;
        Some(start..start + self.slot_size)
    }

    /// Start of the block, for registering it with the kernel.
    pub fn as_ptr(&self) -> *mut u8 {
        self.block.as_ptr()
    }

    /// Bytes in the block (`slots × slot_size`), for registration.
    pub fn len(&self) -> usize {
        self.block.len()
    }

    /// Never true (a pool has at least one non-empty slot); here because
    /// `len` is.
    pub fn is_empty(&self) -> bool {
        self.block.is_empty()
    }

    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    /// Slots in all.
    pub fn slots(&self) -> usize {
        self.slots
    }

    /// Slots free right now.
    pub fn available(&self) -> usize {
        self.free.len()
    }

    /// Slots handed out and not yet freed.
    pub fn in_use(&self) -> usize {
        self.slots - self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    #[test]
    fn allocates_until_exhausted_then_reuses() {
        let mut p = CopyPool::new(4, 1024).unwrap();
        let slots: Vec<CopySlot> = (0..4).map(|_| p.alloc().unwrap()).collect();
        assert!(p.alloc().is_none(), "exhausted");
        assert_eq!(p.available(), 0);
        assert_eq!(p.in_use(), 4);
        let mut it = slots.into_iter();
        let first = it.next().unwrap();
        let index = first.index();
        p.free(first).unwrap();
        let again = p.alloc().unwrap();
        assert_eq!(again.index(), index, "a freed slot is reused");
        assert!(p.alloc().is_none());
        p.free(again).unwrap();
        for s in it {
            p.free(s).unwrap();
        }
        assert_eq!(p.available(), 4);
    }

    #[test]
    fn slots_are_disjoint_and_inside_the_block() {
        let mut p = CopyPool::new(16, 3000).unwrap();
        assert_eq!(p.len(), 16 * 3000);
        assert_eq!(p.as_ptr() as usize % BLOCK_ALIGN, 0);
        let base = p.as_ptr() as usize;
        let slots: Vec<CopySlot> = std::iter::from_fn(|| p.alloc()).collect();
        assert_eq!(slots.len(), 16);
        let mut ranges: Vec<(usize, usize)> = slots
            .iter()
            .map(|s| {
                let start = p.slot_ptr(s).unwrap() as usize;
                (start, start + p.slot_size())
            })
            .collect();
        ranges.sort();
        for (start, end) in &ranges {
            assert!(*start >= base && *end <= base + p.len());
        }
        for w in ranges.windows(2) {
            assert!(w[0].1 <= w[1].0, "slots overlap: {w:?}");
        }
        // Writing one slot leaves the others untouched.
        for (i, s) in slots.iter().enumerate() {
            p.slot_mut(s).unwrap().fill(i as u8 + 1);
        }
        for (i, s) in slots.iter().enumerate() {
            let bytes = p.slot_mut(s).unwrap();
            assert_eq!(bytes.len(), 3000);
            assert!(bytes.iter().all(|&b| b == i as u8 + 1));
        }
        let iov = p.iovec(&slots[3], 100).unwrap();
        assert_eq!(
            iov.iov_base as usize,
            p.slot_ptr(&slots[3]).unwrap() as usize
        );
        assert_eq!(iov.iov_len, 100);
        assert!(p.iovec(&slots[3], 3001).is_none());
        for s in slots {
            p.free(s).unwrap();
        }
    }

    #[test]
    fn foreign_slot_is_refused() {
        let mut a = CopyPool::new(2, 64).unwrap();
        let mut b = CopyPool::new(2, 64).unwrap();
        let sa = a.alloc().unwrap();
        assert!(!b.owns(&sa));
        assert!(b.slot_mut(&sa).is_none());
        assert!(b.slot_ptr(&sa).is_none());
        let back = b.free(sa).unwrap_err();
        assert_eq!(b.available(), 2, "b unchanged");
        assert_eq!(a.in_use(), 1);
        a.free(back).unwrap();
        assert_eq!(a.in_use(), 0);
    }

    #[test]
    fn rejects_degenerate_sizes() {
        assert!(CopyPool::new(0, 16).is_none());
        assert!(CopyPool::new(16, 0).is_none());
        assert!(CopyPool::new(usize::MAX, 2).is_none());
        let d = CopyPool::with_defaults().unwrap();
        assert_eq!(d.len(), DEFAULT_SLOTS * DEFAULT_SLOT_SIZE);
        assert!(!d.is_empty());
        assert_eq!(d.fixed_index, None);
    }

    proptest! {
        /// Against a model (the set of slots handed out): never more than
        /// `slots` out, never the same slot twice, `None` exactly when full.
        #[test]
        fn behaves_like_a_set_of_slots(
            n in 1usize..12,
            size in 1usize..64,
            ops in proptest::collection::vec((any::<bool>(), any::<prop::sample::Index>()), 0..200),
        ) {
            let mut p = CopyPool::new(n, size).unwrap();
            let mut held: Vec<CopySlot> = Vec::new();
            let mut model: BTreeSet<u32> = BTreeSet::new();
            for (alloc, pick) in ops {
                if alloc {
                    match p.alloc() {
                        Some(s) => {
                            prop_assert!((s.index() as usize) < n);
                            prop_assert!(model.insert(s.index()), "slot handed out twice");
                            held.push(s);
                        }
                        None => prop_assert_eq!(model.len(), n),
                    }
                } else if !held.is_empty() {
                    let s = held.swap_remove(pick.index(held.len()));
                    prop_assert!(model.remove(&s.index()));
                    prop_assert!(p.free(s).is_ok());
                }
                prop_assert_eq!(p.in_use(), model.len());
                prop_assert_eq!(p.available(), n - model.len());
            }
            for s in held {
                prop_assert!(p.free(s).is_ok());
            }
            prop_assert_eq!(p.available(), n);
        }
    }
}
