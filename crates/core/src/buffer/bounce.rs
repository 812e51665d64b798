//! Bounce buffers: aligned library memory that stands in for a user's Buffer
//! while the kernel works, so the kernel never touches memory JavaScript can
//! free or detach (invariant 2). Freed blocks are kept per size class and
//! reused, up to a byte budget.

use super::AlignedBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const MIN_CLASS: usize = 4096;
const MAX_CLASS: usize = 1 << 20;
const CLASSES: usize = (MAX_CLASS.trailing_zeros() - MIN_CLASS.trailing_zeros() + 1) as usize;
/// Bytes of idle blocks the pool keeps for reuse.
const KEEP_BYTES: usize = 32 << 20;

/// Size-classed pool of aligned blocks.
#[derive(Debug)]
pub struct BouncePool {
    align: usize,
    classes: [Vec<AlignedBuf>; CLASSES],
    kept: usize,
    /// Bytes of the blocks handed out and not given back or dropped.
    out: Arc<AtomicUsize>,
}

fn class_of(len: usize) -> Option<usize> {
    if len > MAX_CLASS {
        return None;
    }
    let size = len.max(MIN_CLASS).next_power_of_two();
    Some((size.trailing_zeros() - MIN_CLASS.trailing_zeros()) as usize)
}

impl BouncePool {
    /// Blocks aligned to `align` (4096 covers every `O_DIRECT` device we know).
    pub fn new(align: usize) -> Self {
        BouncePool {
            align,
            classes: Default::default(),
            kept: 0,
            out: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Bytes of the blocks handed out by [`BouncePool::take`] that are
    /// still out (neither given back nor dropped).
    pub fn outstanding(&self) -> usize {
        self.out.load(Ordering::Relaxed)
    }

    /// A block of `len` bytes; `None` only when the allocator fails.
    pub fn take(&mut self, len: usize) -> Option<AlignedBuf> {
        let mut b = self.take_block(len)?;
        b.charge(&self.out);
        Some(b)
    }

    fn take_block(&mut self, len: usize) -> Option<AlignedBuf> {
        match class_of(len) {
            Some(c) => {
                if let Some(mut b) = self.classes[c].pop() {
                    self.kept -= b.capacity();
                    b.set_len(len);
                    return Some(b);
                }
                let mut b = AlignedBuf::new(MIN_CLASS << c, self.align)?;
                b.set_len(len);
                Some(b)
            }
            None => AlignedBuf::new(len, self.align),
        }
    }

    /// Returns a block for reuse (or frees it when the pool is full).
    pub fn give(&mut self, mut b: AlignedBuf) {
        b.discharge();
        if let Some(c) = class_of(b.capacity()) {
            if b.capacity() == MIN_CLASS << c && self.kept + b.capacity() <= KEEP_BYTES {
                self.kept += b.capacity();
                self.classes[c].push(b);
            }
        }
    }

    /// Bytes held idle for reuse.
    pub fn kept_bytes(&self) -> usize {
        self.kept
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_blocks_of_the_same_class() {
        let mut p = BouncePool::new(4096);
        let a = p.take(3000).unwrap();
        let addr = a.as_ptr();
        assert_eq!(a.len(), 3000);
        p.give(a);
        assert_eq!(p.kept_bytes(), 4096);
        let b = p.take(4096).unwrap();
        assert_eq!(b.as_ptr(), addr);
        assert_eq!(p.kept_bytes(), 0);
    }

    #[test]
    fn large_blocks_are_not_kept() {
        let mut p = BouncePool::new(4096);
        let a = p.take(3 << 20).unwrap();
        assert_eq!(a.as_ptr() as usize % 4096, 0);
        p.give(a);
        assert_eq!(p.kept_bytes(), 0);
    }

    #[test]
    fn counts_blocks_out_until_given_back_or_dropped() {
        let mut p = BouncePool::new(4096);
        let a = p.take(3000).unwrap();
        let b = p.take(2 << 20).unwrap();
        assert_eq!(p.outstanding(), 4096 + (2 << 20));
        p.give(a);
        assert_eq!(p.outstanding(), 2 << 20);
        drop(b);
        assert_eq!(p.outstanding(), 0);
    }

    #[test]
    fn keeps_at_most_its_budget() {
        let mut p = BouncePool::new(4096);
        let blocks: Vec<_> = (0..64).map(|_| p.take(1 << 20).unwrap()).collect();
        for b in blocks {
            p.give(b);
        }
        assert!(p.kept_bytes() <= KEEP_BYTES);
    }
}
