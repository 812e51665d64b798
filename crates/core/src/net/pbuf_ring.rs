//! The provided-buffer ring (`IORING_REGISTER_PBUF_RING`) that multishot
//! recv draws from.
//!
//! A multishot recv (`IORING_OP_RECV` + `IORING_RECV_MULTISHOT` +
//! `IOSQE_BUFFER_SELECT`) does not name a buffer: each time data arrives the
//! kernel takes the next buffer published in this ring, fills it and posts a
//! CQE carrying the buffer id. A buffer stays with the user until it is
//! recycled; when every buffer is out, the next arrival ends the multishot
//! with `-ENOBUFS` and the data stays in the socket. That is the
//! backpressure: a peer that JavaScript does not read from fills the socket
//! buffer and then its TCP window, never our memory. The driver re-arms the
//! recv once enough buffers are back ([`PbufRing::available`]).
//!
//! Layout shared with the kernel (`io_uring_buf_ring(7)`): `entries` slots of
//! `struct io_uring_buf { u64 addr; u32 len; u16 bid; u16 resv; }`, where the
//! `resv` field of slot 0 is the ring's tail. Only user space writes the ring
//! (without `IOU_PBUF_RING_INC`, which this ring does not use): the kernel
//! keeps its head privately and reads slots `head..tail` after an acquire
//! load of the tail. Head and tail are free-running `u16`s that wrap at
//! 65536; the slot is `index & (entries - 1)`, which is why `entries` is a
//! power of two (65536 is a multiple of every such `entries`).
//!
//! Accounting: every buffer is either the kernel's (published, or staged to
//! be published) or out with the user. Only buffers that are out can be
//! recycled, and each is written back into the ring exactly once, so the
//! ring never holds more than `entries` buffers and never holds a buffer
//! twice, whatever order the user recycles in.

use crate::buffer::AlignedBuf;
#[cfg(target_os = "linux")]
use io_uring::Submitter;
use std::fmt;
use std::io;
use std::mem::ManuallyDrop;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU16, Ordering};

/// The most entries the kernel accepts in one buffer ring (2^15).
pub const MAX_ENTRIES: u16 = 32768;

/// The kernel's `struct io_uring_buf`. Written field by field, never as a
/// whole: `resv` of slot 0 is the tail, which the kernel may be reading.
#[repr(C)]
struct RingSlot {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

const _: () = assert!(std::mem::size_of::<RingSlot>() == 16);

/// A buffer id the ring cannot accept in the state it is in. These are
/// checked errors so that a confused caller (a stale or repeated id) gets an
/// error instead of publishing a buffer the kernel or the user still holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PbufError {
    /// The id is not below `entries`.
    OutOfRange { bid: u16 },
    /// `recycle`/`get` of a buffer that is not out with the user (a double
    /// recycle, or an id that never came from a CQE).
    NotOutstanding { bid: u16 },
    /// `take` of a buffer that is already out: the kernel cannot have
    /// filled it, so the id does not come from a live CQE.
    AlreadyOutstanding { bid: u16 },
    /// More bytes than one buffer holds.
    TooLong { bid: u16, len: usize },
}

impl fmt::Display for PbufError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PbufError::OutOfRange { bid } => write!(f, "buffer id {bid} is out of range"),
            PbufError::NotOutstanding { bid } => {
                write!(f, "buffer {bid} is not held by the user (double recycle?)")
            }
            PbufError::AlreadyOutstanding { bid } => {
                write!(f, "buffer {bid} is already held by the user")
            }
            PbufError::TooLong { bid, len } => {
                write!(f, "{len} bytes do not fit in buffer {bid}")
            }
        }
    }
}

impl std::error::Error for PbufError {}

impl From<PbufError> for io::Error {
    fn from(e: PbufError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidInput, e)
    }
}

/// A ring of `entries` buffers of `buf_size` bytes each, for buffer group
/// `bgid`.
///
/// The ring must be unregistered ([`PbufRing::unregister`]) before it is
/// dropped, after every recv that uses its group has completed for the last
/// time (a CQE without `IORING_CQE_F_MORE`); if the io_uring itself was
/// closed instead, say so with [`PbufRing::forget_registration`]. A ring
/// dropped while still marked registered leaks its memory rather than free
/// memory the kernel may still write. A ring that was never registered
/// frees everything on drop.
pub struct PbufRing {
    /// `entries` slots in their own page-aligned anonymous mapping (the
    /// kernel requires a page-aligned ring address).
    ring: NonNull<RingSlot>,
    ring_bytes: usize,
    /// Buffer `bid` is `bufs[bid * buf_size..][..buf_size]`.
    bufs: ManuallyDrop<AlignedBuf>,
    entries: u16,
    buf_size: u32,
    bgid: u16,
    /// Where the next recycled buffer goes (free-running, wraps at 2^16).
    tail: u16,
    /// The tail the kernel can see; `tail - published` buffers are staged.
    published: u16,
    /// `out[bid]`: handed to the user and not recycled yet.
    out: Vec<bool>,
    outstanding: usize,
    registered: bool,
}

// SAFETY: PbufRing owns its mapping and buffers exclusively; they are plain
// process memory with no thread affinity.
unsafe impl Send for PbufRing {}
// SAFETY: every mutation takes &mut self; through &self only buffers held by
// the user (which the kernel does not write) are read.
unsafe impl Sync for PbufRing {}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as usize
    } else {
        4096
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

impl PbufRing {
    /// Allocates the ring and its buffers and puts every buffer in the ring
    /// (tail = `entries`), ready to register. `entries` must be a power of
    /// two no larger than [`MAX_ENTRIES`]; `buf_size` must be non-zero.
    pub fn new(entries: u16, buf_size: u32, bgid: u16) -> io::Result<PbufRing> {
        if entries == 0 || !entries.is_power_of_two() || entries > MAX_ENTRIES {
            return Err(invalid(
                "provided-buffer ring entries must be a power of two from 1 to 32768",
            ));
        }
        if buf_size == 0 {
            return Err(invalid("provided buffers must not be empty"));
        }
        let page = page_size();
        let ring_bytes =
            (usize::from(entries) * std::mem::size_of::<RingSlot>()).next_multiple_of(page);
        let total = usize::from(entries)
            .checked_mul(buf_size as usize)
            .ok_or_else(|| invalid("provided-buffer ring is too large"))?;
        let bufs = AlignedBuf::new(total, page).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::OutOfMemory,
                "provided buffers: out of memory",
            )
        })?;
        // SAFETY: anonymous private mapping of ring_bytes > 0 bytes; the result
        // is checked against MAP_FAILED before use.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = NonNull::new(p.cast::<RingSlot>()).ok_or_else(io::Error::last_os_error)?;
        let mut r = PbufRing {
            ring,
            ring_bytes,
            bufs: ManuallyDrop::new(bufs),
            entries,
            buf_size,
            bgid,
            tail: 0,
            published: 0,
            out: vec![false; usize::from(entries)],
            outstanding: 0,
            registered: false,
        };
        r.fill(0);
        Ok(r)
    }

    /// Rebuilds the ring from `start` (where the kernel's head will be)
    /// with every buffer not out with the user, and publishes it.
    fn fill(&mut self, start: u16) {
        self.tail = start;
        for bid in 0..self.entries {
            if !self.out[usize::from(bid)] {
                self.write_slot(bid);
            }
        }
        self.publish();
    }

    /// Writes buffer `bid` into the slot at the tail and advances the tail
    /// (not yet visible to the kernel).
    fn write_slot(&mut self, bid: u16) {
        let slot = usize::from(self.tail & (self.entries - 1));
        let addr = self.buf_ptr(bid) as u64;
        // slot < entries, inside the mapping. The slot is free: the ring
        // holds only the buffers not out with the user, at most entries - 1
        // of them before this one, so slot `tail` is not in the kernel's
        // head..tail window. Only addr, len and bid are written; resv (the
        // tail, in slot 0) is left to `publish`.
        // SAFETY: in-bounds write to a slot the kernel does not read (above).
        unsafe {
            let s = self.ring.as_ptr().add(slot);
            ptr::addr_of_mut!((*s).addr).write(addr);
            ptr::addr_of_mut!((*s).len).write(self.buf_size);
            ptr::addr_of_mut!((*s).bid).write(bid);
        }
        self.tail = self.tail.wrapping_add(1);
    }

    fn tail_atomic(&self) -> &AtomicU16 {
        // SAFETY: slot 0 is inside the mapping, resv is 2-byte aligned, the
        // mapping lives as long as &self, and it is only ever accessed
        // atomically (by us and by the kernel's smp_load_acquire).
        unsafe { AtomicU16::from_ptr(ptr::addr_of_mut!((*self.ring.as_ptr()).resv)) }
    }

    fn buf_ptr(&self, bid: u16) -> *mut u8 {
        // bid < entries, so the offset stays inside the allocation.
        self.bufs
            .as_ptr()
            .wrapping_add(usize::from(bid) * self.buf_size as usize)
    }

    fn check(&self, bid: u16) -> Result<(), PbufError> {
        if bid < self.entries {
            Ok(())
        } else {
            Err(PbufError::OutOfRange { bid })
        }
    }

    /// Registers the ring as buffer group `bgid` of the io_uring that
    /// `submitter` belongs to. Fails with the kernel's error (`EINVAL` on
    /// kernels before 5.19, `EEXIST` if the group is taken) and leaves the
    /// ring unregistered.
    ///
    /// # Safety
    ///
    /// The ring must later be unregistered through that same io_uring (or
    /// that io_uring closed and [`PbufRing::forget_registration`] called);
    /// `unregister` through another io_uring could remove a different ring
    /// that happens to use the same group id.
    #[cfg(target_os = "linux")]
    pub unsafe fn register(&mut self, submitter: &Submitter<'_>) -> io::Result<()> {
        let register = |addr, entries, bgid| {
            // SAFETY: register_with keeps the ring allocated while registered.
            unsafe { submitter.register_buf_ring_with_flags(addr, entries, bgid, 0) }
        };
        // SAFETY: forwarded from the caller.
        unsafe { self.register_with(register) }
    }

    /// [`PbufRing::register`] through `register(ring_addr, entries, bgid)`,
    /// for callers that reach the io_uring through an engine.
    ///
    /// # Safety
    ///
    /// As for [`PbufRing::register`]: `register` must register with one
    /// io_uring, and the ring must be unregistered through that io_uring.
    pub unsafe fn register_with(
        &mut self,
        register: impl FnOnce(u64, u16, u16) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.registered {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "provided-buffer ring is already registered",
            ));
        }
        // The ring mapping and buffers stay allocated while `registered` is
        // set: drop leaks them instead of freeing them.
        register(self.ring.as_ptr() as u64, self.entries, self.bgid)?;
        self.registered = true;
        Ok(())
    }

    /// Unregisters the buffer group. Every recv using the group must have
    /// finished first (its last CQE, without `IORING_CQE_F_MORE`, reaped).
    /// Afterwards the ring is rebuilt from slot 0, so it can be registered
    /// again (a new registration starts the kernel's head at 0). Does
    /// nothing if the ring is not registered.
    #[cfg(target_os = "linux")]
    pub fn unregister(&mut self, submitter: &Submitter<'_>) -> io::Result<()> {
        self.unregister_with(|bgid| submitter.unregister_buf_ring(bgid))
    }

    /// [`PbufRing::unregister`] through `unregister(bgid)`.
    pub fn unregister_with(
        &mut self,
        unregister: impl FnOnce(u16) -> io::Result<()>,
    ) -> io::Result<()> {
        if !self.registered {
            return Ok(());
        }
        unregister(self.bgid)?;
        self.registered = false;
        self.fill(0);
        Ok(())
    }

    /// Marks the ring unregistered without telling the kernel, so that drop
    /// frees its memory.
    ///
    /// # Safety
    ///
    /// The io_uring it was registered with must be closed, with no op of
    /// its still able to write the buffers.
    pub unsafe fn forget_registration(&mut self) {
        self.registered = false;
        self.fill(0);
    }

    /// Takes buffer `bid` from a CQE (`io_uring::cqueue::buffer_select`)
    /// whose result was `len` bytes, and returns those bytes. The buffer is
    /// out with the user until [`recycle`](Self::recycle)d.
    pub fn take(&mut self, bid: u16, len: usize) -> Result<&[u8], PbufError> {
        self.check(bid)?;
        if self.out[usize::from(bid)] {
            return Err(PbufError::AlreadyOutstanding { bid });
        }
        if len > self.buf_size as usize {
            return Err(PbufError::TooLong { bid, len });
        }
        self.out[usize::from(bid)] = true;
        self.outstanding += 1;
        self.get(bid, len)
    }

    /// The first `len` bytes of buffer `bid`, which must be out with the
    /// user (the kernel does not write it then).
    pub fn get(&self, bid: u16, len: usize) -> Result<&[u8], PbufError> {
        self.check(bid)?;
        if !self.out[usize::from(bid)] {
            return Err(PbufError::NotOutstanding { bid });
        }
        if len > self.buf_size as usize {
            return Err(PbufError::TooLong { bid, len });
        }
        // SAFETY: the buffer is inside the allocation and out with the user,
        // so no kernel write to it is possible until it is recycled, which
        // takes &mut self and so ends this borrow first.
        Ok(unsafe { std::slice::from_raw_parts(self.buf_ptr(bid), len) })
    }

    /// Gives buffer `bid` back to the kernel and publishes it at once.
    pub fn recycle(&mut self, bid: u16) -> Result<(), PbufError> {
        self.stage(bid)?;
        self.publish();
        Ok(())
    }

    /// Puts buffer `bid` back in the ring without publishing it yet; a
    /// batch of `stage` calls is made visible by one [`publish`](Self::publish).
    pub fn stage(&mut self, bid: u16) -> Result<(), PbufError> {
        self.check(bid)?;
        if !self.out[usize::from(bid)] {
            return Err(PbufError::NotOutstanding { bid });
        }
        self.write_slot(bid);
        self.out[usize::from(bid)] = false;
        self.outstanding -= 1;
        Ok(())
    }

    /// Makes every staged buffer visible to the kernel: one release store of
    /// the tail, ordered after the slot writes.
    pub fn publish(&mut self) {
        self.tail_atomic().store(self.tail, Ordering::Release);
        self.published = self.tail;
    }

    /// Buffers the kernel can fill now (published and not out).
    pub fn available(&self) -> usize {
        usize::from(self.entries) - self.outstanding - self.staged()
    }

    /// Buffers out with the user, taken and not recycled.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Buffers recycled but not yet published.
    pub fn staged(&self) -> usize {
        usize::from(self.tail.wrapping_sub(self.published))
    }

    pub fn entries(&self) -> u16 {
        self.entries
    }

    pub fn buf_size(&self) -> u32 {
        self.buf_size
    }

    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    pub fn is_registered(&self) -> bool {
        self.registered
    }
}

impl Drop for PbufRing {
    fn drop(&mut self) {
        if self.registered {
            // The kernel may still use both: leaking is the only safe choice.
            return;
        }
        // SAFETY: not registered, so the kernel holds neither address; the
        // buffers are dropped exactly once, here.
        unsafe { ManuallyDrop::drop(&mut self.bufs) };
        // SAFETY: the mapping came from mmap with exactly ring_bytes.
        unsafe { libc::munmap(self.ring.as_ptr().cast(), self.ring_bytes) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    /// What the kernel reads from slot `index & mask`.
    fn slot(r: &PbufRing, index: u16) -> (u64, u32, u16) {
        let i = usize::from(index & (r.entries - 1));
        // SAFETY: i < entries, inside the mapping; no kernel is attached.
        unsafe {
            let s = r.ring.as_ptr().add(i);
            (
                ptr::addr_of!((*s).addr).read(),
                ptr::addr_of!((*s).len).read(),
                ptr::addr_of!((*s).bid).read(),
            )
        }
    }

    fn kernel_tail(r: &PbufRing) -> u16 {
        r.tail_atomic().load(Ordering::Acquire)
    }

    /// A stand-in for the kernel: consumes the slot at its head if the
    /// published tail is ahead, checks the slot describes a whole buffer,
    /// writes `fill` into it and returns its id.
    fn kernel_consume(r: &PbufRing, head: &mut u16, fill: u8) -> Option<u16> {
        if *head == kernel_tail(r) {
            return None;
        }
        let (addr, len, bid) = slot(r, *head);
        assert!(bid < r.entries, "slot holds a bid out of range");
        assert_eq!(addr, r.buf_ptr(bid) as u64, "slot addr does not match bid");
        assert_eq!(len, r.buf_size);
        // SAFETY: the fake kernel owns this buffer now, as the real one would.
        unsafe { ptr::write_bytes(r.buf_ptr(bid), fill, len as usize) };
        *head = head.wrapping_add(1);
        Some(bid)
    }

    #[test]
    fn rejects_bad_geometry() {
        assert!(PbufRing::new(0, 64, 0).is_err());
        assert!(PbufRing::new(3, 64, 0).is_err());
        assert!(PbufRing::new(4, 0, 0).is_err());
        assert!(PbufRing::new(65535, 64, 0).is_err());
        assert!(PbufRing::new(MAX_ENTRIES, 1, 0).is_ok());
    }

    #[test]
    fn every_buffer_is_published_at_start() {
        let r = PbufRing::new(8, 100, 3).unwrap();
        assert_eq!(r.ring.as_ptr() as usize % page_size(), 0);
        assert_eq!(kernel_tail(&r), 8);
        for i in 0..8u16 {
            let (addr, len, bid) = slot(&r, i);
            assert_eq!(bid, i);
            assert_eq!(len, 100);
            assert_eq!(addr, r.bufs.as_ptr() as u64 + u64::from(i) * 100);
        }
        assert_eq!(r.available(), 8);
        assert_eq!(r.outstanding(), 0);
        assert_eq!(r.staged(), 0);
    }

    #[test]
    fn recycle_writes_the_slot_at_tail_and_wraps_past_65535() {
        let mut r = PbufRing::new(4, 16, 0).unwrap();
        // Start the ring just before the u16 wrap, as if 65534 buffers had
        // already gone round.
        r.fill(65534);
        assert_eq!(kernel_tail(&r), 2, "65534 + 4 wraps to 2");
        for (k, idx) in [65534u16, 65535, 0, 1].into_iter().enumerate() {
            assert_eq!(slot(&r, idx).2, k as u16);
        }
        let mut head = 65534u16;
        // Many trips round the ring, recycling in reverse order each time.
        for round in 0..20_000u32 {
            let mut got = Vec::new();
            while let Some(bid) = kernel_consume(&r, &mut head, round as u8) {
                got.push(bid);
            }
            assert_eq!(got.len(), 4);
            for &bid in &got {
                assert_eq!(r.take(bid, 16).unwrap(), &[round as u8; 16]);
            }
            assert_eq!(r.available(), 0);
            for &bid in got.iter().rev() {
                let at = r.tail;
                r.recycle(bid).unwrap();
                assert_eq!(slot(&r, at).2, bid, "written at tail & mask");
                assert_eq!(kernel_tail(&r), at.wrapping_add(1));
            }
        }
        assert_eq!(head, kernel_tail(&r).wrapping_sub(4));
    }

    #[test]
    fn accounting_and_checked_errors() {
        let mut r = PbufRing::new(4, 8, 0).unwrap();
        assert_eq!(r.take(4, 1), Err(PbufError::OutOfRange { bid: 4 }));
        assert_eq!(r.take(1, 9), Err(PbufError::TooLong { bid: 1, len: 9 }));
        assert_eq!(r.recycle(1), Err(PbufError::NotOutstanding { bid: 1 }));
        assert_eq!(r.get(1, 1), Err(PbufError::NotOutstanding { bid: 1 }));
        assert_eq!(r.outstanding(), 0, "rejected calls change nothing");
        assert_eq!(r.take(1, 8).unwrap().len(), 8);
        assert_eq!(r.take(1, 8), Err(PbufError::AlreadyOutstanding { bid: 1 }));
        r.take(2, 0).unwrap();
        assert_eq!((r.outstanding(), r.available()), (2, 2));
        let tail = r.tail;
        r.stage(2).unwrap();
        assert_eq!((r.outstanding(), r.staged(), r.available()), (1, 1, 2));
        assert_eq!(kernel_tail(&r), tail, "staged is not visible yet");
        assert_eq!(r.stage(2), Err(PbufError::NotOutstanding { bid: 2 }));
        assert_eq!(r.recycle(9), Err(PbufError::OutOfRange { bid: 9 }));
        assert_eq!(
            r.tail,
            tail.wrapping_add(1),
            "rejected recycles write nothing"
        );
        r.publish();
        assert_eq!(kernel_tail(&r), tail.wrapping_add(1));
        assert_eq!((r.outstanding(), r.staged(), r.available()), (1, 0, 3));
        r.recycle(1).unwrap();
        assert_eq!(r.recycle(1), Err(PbufError::NotOutstanding { bid: 1 }));
        assert_eq!((r.outstanding(), r.available()), (0, 4));
        let e: io::Error = PbufError::NotOutstanding { bid: 1 }.into();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[derive(Debug, Clone)]
    enum Step {
        /// The kernel fills the next published buffer; the driver takes it.
        Recv,
        /// The driver recycles the n-th outstanding buffer (mod count).
        Recycle(usize),
        /// Like Recycle but only staged.
        Stage(usize),
        /// A bogus recycle of an arbitrary id.
        BadRecycle(u16),
        /// A bogus take of an arbitrary id not just filled by the kernel.
        BadTake(u16),
        Publish,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => Just(Step::Recv),
            3 => any::<usize>().prop_map(Step::Recycle),
            2 => any::<usize>().prop_map(Step::Stage),
            1 => (0u16..20).prop_map(Step::BadRecycle),
            1 => (0u16..20).prop_map(Step::BadTake),
            1 => Just(Step::Publish),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_model(
            log2 in 0u32..5,
            start in any::<u16>(),
            steps in proptest::collection::vec(step(), 0..400),
        ) {
            let entries = 1u16 << log2;
            let mut r = PbufRing::new(entries, 4, 1).unwrap();
            r.fill(start);
            let mut head = start;
            let mut out: Vec<u16> = Vec::new();
            let mut staged = 0usize;
            for (n, s) in steps.into_iter().enumerate() {
                match s {
                    Step::Recv => {
                        if let Some(bid) = kernel_consume(&r, &mut head, n as u8) {
                            prop_assert!(!out.contains(&bid), "bid {} published while out", bid);
                            prop_assert_eq!(r.take(bid, 4).unwrap(), &[n as u8; 4]);
                            out.push(bid);
                        } else {
                            prop_assert_eq!(r.available(), 0);
                        }
                    }
                    Step::Recycle(i) | Step::Stage(i) if !out.is_empty() => {
                        let bid = out.remove(i % out.len());
                        if matches!(s, Step::Recycle(_)) {
                            r.recycle(bid).unwrap();
                            staged = 0;
                        } else {
                            r.stage(bid).unwrap();
                            staged += 1;
                        }
                    }
                    Step::Recycle(_) | Step::Stage(_) => {}
                    Step::BadRecycle(bid) => {
                        let tail = r.tail;
                        let res = r.recycle(bid);
                        if let Some(i) = out.iter().position(|&b| b == bid) {
                            prop_assert!(res.is_ok());
                            out.remove(i);
                            staged = 0;
                        } else {
                            prop_assert!(res.is_err());
                            prop_assert_eq!(r.tail, tail);
                        }
                    }
                    Step::BadTake(bid) => {
                        // Only ids already out can be rejected for sure;
                        // others are indistinguishable from a real CQE.
                        if bid >= entries || out.contains(&bid) {
                            prop_assert!(r.take(bid, 1).is_err());
                        }
                    }
                    Step::Publish => {
                        r.publish();
                        staged = 0;
                    }
                }
                let visible = usize::from(kernel_tail(&r).wrapping_sub(head));
                prop_assert_eq!(r.outstanding(), out.len());
                prop_assert_eq!(r.staged(), staged);
                prop_assert_eq!(r.available(), visible);
                prop_assert_eq!(visible + staged + out.len(), usize::from(entries));
                // The kernel's window head..tail never holds a bid twice or
                // a bid that is out.
                let mut seen = HashSet::new();
                for k in 0..(visible + staged) as u16 {
                    let bid = slot(&r, head.wrapping_add(k)).2;
                    prop_assert!(seen.insert(bid), "bid {} in the ring twice", bid);
                    prop_assert!(!out.contains(&bid));
                }
            }
        }
    }

    /// Against the real kernel: multishot recv over a registered ring.
    #[cfg(target_os = "linux")]
    mod kernel {
        use super::super::*;
        use io_uring::{cqueue, opcode, types, IoUring};
        use std::collections::VecDeque;
        use std::io::Write;
        use std::os::fd::{AsRawFd, RawFd};

        const BGID: u16 = 7;
        const RECV: u64 = 1;

        struct Cqe {
            user_data: u64,
            result: i32,
            flags: u32,
        }

        /// Completions in arrival order; every wait is bounded so that a
        /// missing completion fails the test instead of hanging it.
        struct Uring {
            ring: IoUring,
            pending: VecDeque<Cqe>,
        }

        impl Uring {
            fn new() -> Uring {
                Uring {
                    ring: IoUring::new(8).unwrap(),
                    pending: VecDeque::new(),
                }
            }

            fn push(&mut self, sqe: io_uring::squeue::Entry) {
                // SAFETY: the SQEs pushed here point at no memory of ours
                // (recv buffers come from the registered ring).
                unsafe { self.ring.submission().push(&sqe).unwrap() };
                self.ring.submit().unwrap();
            }

            fn arm(&mut self, fd: RawFd) {
                self.push(
                    opcode::RecvMulti::new(types::Fd(fd), BGID)
                        .build()
                        .user_data(RECV),
                );
            }

            fn next(&mut self) -> Cqe {
                for _ in 0..20 {
                    self.pending.extend(self.ring.completion().map(|c| Cqe {
                        user_data: c.user_data(),
                        result: c.result(),
                        flags: c.flags(),
                    }));
                    if let Some(c) = self.pending.pop_front() {
                        return c;
                    }
                    let ts = types::Timespec::new().nsec(250_000_000);
                    let args = types::SubmitArgs::new().timespec(&ts);
                    match self.ring.submitter().submit_with_args(1, &args) {
                        Ok(_) => {}
                        Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                        Err(e) => panic!("io_uring_enter: {e}"),
                    }
                }
                panic!("no completion arrived");
            }
        }

        /// One multishot CQE carrying data: checks it and takes its buffer.
        fn data_cqe(p: &mut PbufRing, c: &Cqe) -> (u16, Vec<u8>) {
            assert_eq!(c.user_data, RECV);
            assert!(c.result > 0, "recv failed: {}", c.result);
            assert!(cqueue::more(c.flags), "multishot still armed");
            let bid = cqueue::buffer_select(c.flags).expect("CQE names its buffer");
            let bytes = p.take(bid, c.result as usize).unwrap().to_vec();
            (bid, bytes)
        }

        fn chunk(seed: u8, len: usize) -> Vec<u8> {
            (0..len)
                .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
                .collect()
        }

        /// The full cycle on one connected pair: `rx` is read through the
        /// ring, `tx` is its peer.
        fn recv_cycle(rx: RawFd, tx: &mut impl Write) {
            let mut u = Uring::new();
            let mut p = PbufRing::new(4, 64, BGID).unwrap();
            // SAFETY: unregistered below through the same ring.
            unsafe { p.register(&u.ring.submitter()) }.unwrap();
            u.arm(rx);

            // 1. One chunk per buffer, in ring order 0..3.
            for (i, len) in [10usize, 64, 1, 33].into_iter().enumerate() {
                let data = chunk(i as u8, len);
                tx.write_all(&data).unwrap();
                let c = u.next();
                let (bid, bytes) = data_cqe(&mut p, &c);
                assert_eq!(bid, i as u16);
                assert_eq!(bytes, data);
            }
            assert_eq!((p.outstanding(), p.available()), (4, 0));

            // 2. Nothing left to fill: the next arrival ends the multishot
            // with -ENOBUFS and stays in the socket.
            let mut rest = chunk(10, 50);
            tx.write_all(&rest).unwrap();
            let c = u.next();
            assert_eq!(c.user_data, RECV);
            assert_eq!(c.result, -libc::ENOBUFS);
            assert!(!cqueue::more(c.flags), "ENOBUFS ends the multishot");
            assert_eq!(cqueue::buffer_select(c.flags), None);
            let more = chunk(11, 100);
            tx.write_all(&more).unwrap();
            rest.extend_from_slice(&more);

            // 3. Recycle out of order and re-arm: the kernel uses buffers in
            // the order they were recycled, and gets all the data.
            let order = [2u16, 0, 3, 1];
            for bid in order {
                p.recycle(bid).unwrap();
            }
            assert_eq!(p.recycle(0), Err(PbufError::NotOutstanding { bid: 0 }));
            assert_eq!((p.outstanding(), p.available()), (0, 4));
            u.arm(rx);
            let mut got = Vec::new();
            let mut k = 0;
            while got.len() < rest.len() {
                let c = u.next();
                let (bid, bytes) = data_cqe(&mut p, &c);
                assert_eq!(bid, order[k % 4]);
                assert!(bytes.len() <= 64);
                got.extend_from_slice(&bytes);
                p.recycle(bid).unwrap();
                k += 1;
            }
            assert_eq!(got, rest);

            // 4. Cancel: the last CQE of the recv has no F_MORE.
            u.push(opcode::AsyncCancel::new(RECV).build().user_data(2));
            let mut recv_done = false;
            let mut cancel_done = false;
            while !(recv_done && cancel_done) {
                let c = u.next();
                match c.user_data {
                    RECV => {
                        assert_eq!(c.result, -libc::ECANCELED);
                        assert!(!cqueue::more(c.flags));
                        recv_done = true;
                    }
                    _ => {
                        assert_eq!(c.result, 0);
                        cancel_done = true;
                    }
                }
            }
            p.unregister(&u.ring.submitter()).unwrap();
            assert!(!p.is_registered());
        }

        #[test]
        fn multishot_recv_unix_stream() {
            let (rx, mut tx) = std::os::unix::net::UnixStream::pair().unwrap();
            recv_cycle(rx.as_raw_fd(), &mut tx);
        }

        #[test]
        fn multishot_recv_tcp_loopback() {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut tx = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            tx.set_nodelay(true).unwrap();
            let (rx, _) = l.accept().unwrap();
            recv_cycle(rx.as_raw_fd(), &mut tx);
        }

        /// Exactly filling the last buffer does not end the multishot: it
        /// stays armed with no buffers and resumes, without a re-arm, once a
        /// buffer is recycled. End of stream is a 0 result that takes no
        /// buffer and ends the multishot.
        fn exact_fill_then_eof(rx: RawFd, tx: &mut impl Write, shutdown: impl FnOnce()) {
            let mut u = Uring::new();
            let mut p = PbufRing::new(2, 8, BGID).unwrap();
            // SAFETY: unregistered below through the same ring.
            unsafe { p.register(&u.ring.submitter()) }.unwrap();
            u.arm(rx);
            for (i, data) in [&b"abc"[..], b"01234567"].into_iter().enumerate() {
                tx.write_all(data).unwrap();
                let c = u.next();
                assert_eq!(data_cqe(&mut p, &c), (i as u16, data.to_vec()));
            }
            assert_eq!(p.available(), 0);
            p.recycle(1).unwrap();
            tx.write_all(b"hi").unwrap();
            let c = u.next();
            assert_eq!(data_cqe(&mut p, &c), (1, b"hi".to_vec()));
            p.recycle(0).unwrap();
            shutdown();
            let c = u.next();
            assert_eq!((c.user_data, c.result), (RECV, 0));
            assert!(!cqueue::more(c.flags), "EOF ends the multishot");
            assert_eq!(cqueue::buffer_select(c.flags), None, "EOF takes no buffer");
            assert_eq!((p.outstanding(), p.available()), (1, 1));
            p.unregister(&u.ring.submitter()).unwrap();
        }

        #[test]
        fn exact_fill_stays_armed_unix_stream() {
            let (rx, mut tx) = std::os::unix::net::UnixStream::pair().unwrap();
            let tx2 = tx.try_clone().unwrap();
            exact_fill_then_eof(rx.as_raw_fd(), &mut tx, || {
                tx2.shutdown(std::net::Shutdown::Write).unwrap()
            });
        }

        #[test]
        fn exact_fill_stays_armed_tcp_loopback() {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let mut tx = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
            tx.set_nodelay(true).unwrap();
            let (rx, _) = l.accept().unwrap();
            let tx2 = tx.try_clone().unwrap();
            exact_fill_then_eof(rx.as_raw_fd(), &mut tx, || {
                tx2.shutdown(std::net::Shutdown::Write).unwrap()
            });
        }

        #[test]
        fn registration_errors_are_reported() {
            let u = Uring::new();
            let mut a = PbufRing::new(4, 64, BGID).unwrap();
            let mut b = PbufRing::new(4, 64, BGID).unwrap();
            // SAFETY: unregistered below through the same ring.
            unsafe { a.register(&u.ring.submitter()) }.unwrap();
            // SAFETY: as above.
            let e = unsafe { a.register(&u.ring.submitter()) }.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
            // SAFETY: fails, so nothing is registered.
            let e = unsafe { b.register(&u.ring.submitter()) }.unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
            assert!(!b.is_registered());
            drop(b);
            a.unregister(&u.ring.submitter()).unwrap();
            assert_eq!(
                u.ring
                    .submitter()
                    .unregister_buf_ring(BGID)
                    .unwrap_err()
                    .raw_os_error(),
                Some(libc::ENOENT)
            );
        }

        #[test]
        fn reregistration_starts_over_and_keeps_outstanding_buffers_out() {
            let (rx, mut tx) = std::os::unix::net::UnixStream::pair().unwrap();
            let mut u = Uring::new();
            let mut p = PbufRing::new(4, 64, BGID).unwrap();
            // SAFETY: unregistered below through the same ring.
            unsafe { p.register(&u.ring.submitter()) }.unwrap();
            u.arm(rx.as_raw_fd());
            tx.write_all(b"first").unwrap();
            let c = u.next();
            assert_eq!(data_cqe(&mut p, &c), (0, b"first".to_vec()));
            u.push(opcode::AsyncCancel::new(RECV).build().user_data(2));
            let _ = (u.next(), u.next());
            p.unregister(&u.ring.submitter()).unwrap();

            // SAFETY: as above.
            unsafe { p.register(&u.ring.submitter()) }.unwrap();
            u.arm(rx.as_raw_fd());
            let mut seen = Vec::new();
            for i in 0..4u8 {
                tx.write_all(&[i]).unwrap();
                let c = u.next();
                let (bid, bytes) = data_cqe(&mut p, &c);
                assert_eq!(bytes, [i]);
                seen.push(bid);
                if i == 0 {
                    p.recycle(0).unwrap();
                }
            }
            // Buffer 0 stayed out across the re-registration, so the new
            // ring held 1, 2, 3 and then the recycled 0.
            assert_eq!(seen, [1, 2, 3, 0]);
            u.push(opcode::AsyncCancel::new(RECV).build().user_data(2));
            let _ = (u.next(), u.next());
            p.unregister(&u.ring.submitter()).unwrap();
        }
    }
}
