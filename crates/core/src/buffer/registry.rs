//! Library-owned buffers of one Ring, found by address.
//!
//! `allocAligned` memory is recorded here. An op whose buffer lies inside a
//! recorded block uses it in place (zero-copy) and keeps the block alive
//! with an `Arc` until the op completes, even if JavaScript detaches or
//! collects its ArrayBuffer meanwhile. Blocks get a slot in the kernel's
//! registered-buffer table when the kernel allows it (`read_fixed`/
//! `write_fixed`); when registration fails (e.g. `ENOMEM` under the memlock
//! limit) the block stays usable, unregistered, and the failure is counted.

use super::AlignedBuf;
use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;

/// A block kept alive for an op, with its registered slot if it has one.
#[derive(Debug, Clone)]
pub struct Pinned {
    pub buf: Arc<AlignedBuf>,
    pub fixed: Option<u16>,
}

/// The outcome of recording a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    /// Registered with the kernel at this slot.
    Fixed(u16),
    /// Usable, but the kernel refused registration with this errno.
    Failed(i32),
    /// Usable; registration was not attempted (no slots left or disabled).
    Unregistered,
}

#[derive(Debug)]
struct Block {
    buf: Arc<AlignedBuf>,
    fixed: Option<u16>,
}

/// Address-indexed set of library-owned blocks.
#[derive(Debug)]
pub struct BufferRegistry {
    blocks: BTreeMap<usize, Block>,
    free_fixed: Vec<u16>,
    registered: usize,
    failures: usize,
    last_error: Option<i32>,
}

impl BufferRegistry {
    /// A registry with `fixed_slots` kernel slots to hand out (0: none).
    pub fn new(fixed_slots: u16) -> Self {
        BufferRegistry {
            blocks: BTreeMap::new(),
            free_fixed: (0..fixed_slots).rev().collect(),
            registered: 0,
            failures: 0,
            last_error: None,
        }
    }

    /// Records `buf`, trying `register(slot, buf)` for a kernel slot.
    pub fn add(
        &mut self,
        buf: Arc<AlignedBuf>,
        register: impl FnOnce(u16, &AlignedBuf) -> io::Result<()>,
    ) -> Registration {
        let addr = buf.as_ptr() as usize;
        let (fixed, outcome) = match self.free_fixed.pop() {
            Some(slot) => match register(slot, &buf) {
                Ok(()) => {
                    self.registered += 1;
                    (Some(slot), Registration::Fixed(slot))
                }
                Err(e) => {
                    self.free_fixed.push(slot);
                    self.failures += 1;
                    let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
                    self.last_error = Some(errno);
                    (None, Registration::Failed(errno))
                }
            },
            None => (None, Registration::Unregistered),
        };
        self.blocks.insert(addr, Block { buf, fixed });
        outcome
    }

    /// Forgets the block starting at `addr`, calling `unregister(slot)` if it
    /// held a kernel slot. Ops still holding a `Pinned` keep the memory.
    pub fn remove(&mut self, addr: usize, unregister: impl FnOnce(u16)) -> bool {
        match self.blocks.remove(&addr) {
            Some(b) => {
                if let Some(slot) = b.fixed {
                    unregister(slot);
                    self.registered -= 1;
                    self.free_fixed.push(slot);
                }
                true
            }
            None => false,
        }
    }

    /// The block that wholly contains `[ptr, ptr + len)`, if any.
    pub fn lookup(&self, ptr: *const u8, len: usize) -> Option<Pinned> {
        let start = ptr as usize;
        let (&base, block) = self.blocks.range(..=start).next_back()?;
        let end = start.checked_add(len)?;
        if end <= base + block.buf.capacity() {
            Some(Pinned {
                buf: block.buf.clone(),
                fixed: block.fixed,
            })
        } else {
            None
        }
    }

    /// Blocks holding a kernel slot.
    pub fn registered(&self) -> usize {
        self.registered
    }

    /// Blocks recorded in all.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Registrations the kernel refused, and the last errno it gave.
    pub fn failures(&self) -> (usize, Option<i32>) {
        (self.failures, self.last_error)
    }

    /// Drops every block (the Ring is closing); `unregister` is not called,
    /// since the kernel's table goes with the ring.
    pub fn clear(&mut self) {
        self.blocks.clear();
        self.registered = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(len: usize) -> Arc<AlignedBuf> {
        Arc::new(AlignedBuf::new(len, 4096).unwrap())
    }

    #[test]
    fn lookup_finds_interior_ranges_only() {
        let mut r = BufferRegistry::new(4);
        let b = block(8192);
        let p = b.as_ptr();
        assert_eq!(r.add(b.clone(), |_, _| Ok(())), Registration::Fixed(0));
        // SAFETY: offsets stay within the 8192-byte block.
        let (mid, end) = unsafe { (p.add(100), p.add(8192)) };
        assert_eq!(r.lookup(p, 8192).unwrap().fixed, Some(0));
        assert!(r.lookup(mid, 4000).is_some());
        assert!(r.lookup(mid, 8192).is_none(), "runs past the end");
        assert!(r.lookup(end, 1).is_none());
        assert!(r.lookup(std::ptr::null(), 1).is_none());
    }

    #[test]
    fn failed_registration_keeps_block_usable_and_counts() {
        let mut r = BufferRegistry::new(2);
        let b = block(4096);
        let out = r.add(b.clone(), |_, _| {
            Err(io::Error::from_raw_os_error(libc::ENOMEM))
        });
        assert_eq!(out, Registration::Failed(libc::ENOMEM));
        let pin = r.lookup(b.as_ptr(), 4096).unwrap();
        assert_eq!(pin.fixed, None);
        assert_eq!(r.failures(), (1, Some(libc::ENOMEM)));
        assert_eq!(r.registered(), 0);
    }

    #[test]
    fn slots_run_out_then_come_back() {
        let mut r = BufferRegistry::new(1);
        let a = block(4096);
        let b = block(4096);
        assert_eq!(r.add(a.clone(), |_, _| Ok(())), Registration::Fixed(0));
        assert_eq!(r.add(b.clone(), |_, _| Ok(())), Registration::Unregistered);
        let mut released = None;
        assert!(r.remove(a.as_ptr() as usize, |s| released = Some(s)));
        assert_eq!(released, Some(0));
        assert!(!r.remove(a.as_ptr() as usize, |_| panic!("twice")));
        let c = block(4096);
        assert_eq!(r.add(c, |_, _| Ok(())), Registration::Fixed(0));
    }

    #[test]
    fn pin_outlives_removal() {
        let mut r = BufferRegistry::new(0);
        let b = block(4096);
        let addr = b.as_ptr();
        r.add(b, |_, _| Ok(()));
        let pin = r.lookup(addr, 16).unwrap();
        r.remove(addr as usize, |_| {});
        assert_eq!(pin.buf.as_ptr(), addr, "memory still owned by the pin");
        assert!(r.lookup(addr, 16).is_none());
    }
}
