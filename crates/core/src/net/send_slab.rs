//! The in-flight send slab: everything a TCP send needs while the kernel
//! works on it, and the bookkeeping that decides when that memory may go.
//!
//! A send can take several trips to the kernel. A stream socket may accept
//! only part of the bytes; the entry then advances its iovecs past what was
//! sent and the driver resubmits the rest with the entry's refreshed
//! `msghdr`. With zero-copy (`IORING_OP_SENDMSG_ZC`) the kernel keeps
//! reading the user's pages after the send's own completion: every
//! completion flagged `IORING_CQE_F_MORE` announces one later notification
//! (`IORING_CQE_F_NOTIF`), and the pages are free only when all of them have
//! arrived. So an entry keeps its guards (which keep the JavaScript memory
//! alive, invariant 2) and its copy-pool slot until the send has finished —
//! completed or failed — AND every announced notification has arrived; then
//! it is removed and its guards and slot are handed back exactly once, by
//! move, in a [`Released`].
//!
//! Settling the user's promise is reported separately from releasing: a
//! copy send (`zero_copy: false`) settles as soon as its bytes are sent,
//! since the user's memory was never in the kernel's hands; a zero-copy send
//! settles only when its memory is released, so "resolves only after the
//! kernel's notification" holds. See [`SendProgress`].
//!
//! Counting is order-agnostic: the entry counts `F_MORE` completions and
//! notifications separately and compares them only once the final
//! completion has arrived (no `F_MORE` can follow it), so a notification
//! that overtakes its own completion cannot release anything early.
//!
//! Keys carry a generation: a key whose entry was released no longer
//! matches even after its slot is reused, so a stray CQE can never touch
//! another send's entry.

use super::copy_pool::CopySlot;
use crate::slab::Slab;
use std::fmt;

/// `IORING_CQE_F_MORE` (for a zero-copy send: one notification follows)
/// and `IORING_CQE_F_NOTIF` (this CQE is a notification; its `user_data` is
/// the send's, its `res` 0 plus the usage bit below).
pub use crate::op::{CQE_F_MORE, CQE_F_NOTIF};
/// `IORING_NOTIF_USAGE_ZC_COPIED`: set in a notification's `res` when the
/// kernel copied the data after all (asked for with
/// [`SEND_ZC_REPORT_USAGE`]).
pub const NOTIF_USAGE_ZC_COPIED: u32 = 1 << 31;
/// `IORING_SEND_ZC_REPORT_USAGE`, a flag for a zero-copy send SQE's
/// `ioprio`: have notifications say whether the data was copied.
pub const SEND_ZC_REPORT_USAGE: u16 = 1 << 3;

/// Most iovecs one `sendmsg` takes (`IOV_MAX`; more fail with `EINVAL`). An
/// entry with more points its `msghdr` at the first `IOV_MAX` not yet sent:
/// the kernel sends those, the completion falls short of the rest, and the
/// entry resubmits the next ones, so a send of any number of iovecs is
/// still one message, in order (the driver keeps one send per socket in the
/// kernel at a time).
pub const IOV_MAX: usize = 1024;

/// A live entry of a [`SendSlab`]: its index and the generation of that
/// index when the entry went in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SendKey {
    index: u32,
    generation: u32,
}

impl SendKey {
    pub fn new(index: u32, generation: u32) -> SendKey {
        SendKey { index, generation }
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn generation(self) -> u32 {
        self.generation
    }

    /// Index in the low 32 bits, generation in the high 32 (for `user_data`).
    pub fn to_u64(self) -> u64 {
        u64::from(self.generation) << 32 | u64::from(self.index)
    }

    pub fn from_u64(v: u64) -> SendKey {
        SendKey {
            index: v as u32,
            generation: (v >> 32) as u32,
        }
    }
}

/// What a send's memory was, handed back exactly once when the kernel can
/// no longer touch it: the caller drops the guards and frees the slot to its
/// pool.
pub struct Released<G> {
    pub guards: Vec<G>,
    pub copy_slot: Option<CopySlot>,
    /// Bytes the kernel accepted (less than `total` after a failure).
    pub sent: usize,
    pub total: usize,
    /// A notification said the kernel copied the data rather than sending
    /// it zero-copy (only reported with [`SEND_ZC_REPORT_USAGE`]; loopback
    /// and devices without scatter-gather do this).
    pub zc_copied: bool,
}

impl<G> fmt::Debug for Released<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Released")
            .field("guards", &self.guards.len())
            .field("copy_slot", &self.copy_slot)
            .field("sent", &self.sent)
            .field("total", &self.total)
            .field("zc_copied", &self.zc_copied)
            .finish()
    }
}

/// What the driver does after feeding a CQE to the slab. `result` is the
/// send's outcome for the user: the total bytes sent, or `-errno`.
///
/// Over an entry's life the driver sees any number of `Resubmit` and `Wait`,
/// then either `Settle` followed later by `Release`, or one
/// `SettleAndRelease`: settling and releasing each happen exactly once.
#[must_use]
pub enum SendProgress<G> {
    /// Bytes remain: submit the send again with the entry's refreshed
    /// `msghdr` (`SendSlab::msghdr`).
    Resubmit,
    /// Nothing to do now: notifications (or the final completion) are
    /// still to come.
    Wait,
    /// Settle the user's promise; the memory stays held for the kernel's
    /// notifications (a copy send that used a zero-copy opcode).
    Settle(i64),
    /// Settle the user's promise and release the memory; the key is gone.
    SettleAndRelease(i64, Released<G>),
    /// Release the memory of a send settled earlier; the key is gone.
    Release(Released<G>),
}

impl<G> SendProgress<G> {
    /// The result to settle the user's promise with, if this step settles.
    pub fn settled(&self) -> Option<i64> {
        match self {
            SendProgress::Settle(r) | SendProgress::SettleAndRelease(r, _) => Some(*r),
            _ => None,
        }
    }

    /// The released memory, if this step releases.
    pub fn into_released(self) -> Option<Released<G>> {
        match self {
            SendProgress::SettleAndRelease(_, r) | SendProgress::Release(r) => Some(r),
            _ => None,
        }
    }
}

impl<G> fmt::Debug for SendProgress<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendProgress::Resubmit => f.write_str("Resubmit"),
            SendProgress::Wait => f.write_str("Wait"),
            SendProgress::Settle(r) => f.debug_tuple("Settle").field(r).finish(),
            SendProgress::SettleAndRelease(r, rel) => f
                .debug_tuple("SettleAndRelease")
                .field(r)
                .field(rel)
                .finish(),
            SendProgress::Release(rel) => f.debug_tuple("Release").field(rel).finish(),
        }
    }
}

/// What the kernel reads for one send, kept in one heap block (reused by
/// later sends once released, see [`SendSlab::entry`]).
struct Msg {
    hdr: libc::msghdr,
    /// Fixed while the send is live (filled before, never pushed to or
    /// reallocated after): sent iovecs are skipped by `first`, never
    /// removed.
    iovecs: Vec<libc::iovec>,
    /// Index of the first iovec with bytes left to send.
    first: usize,
}

/// One send in flight.
///
/// Address stability: the kernel reads the `msghdr` and, through it, the
/// iovec array. Both live in heap storage owned by the entry that never
/// moves or reallocates: the `msghdr` in a `Box`, the iovecs in a vector
/// filled before the entry is made and never grown after (sent iovecs are
/// skipped by an index, never removed).
/// Moving the entry (into the slab, say) moves only the pointers to them.
/// They are mutated only by `on_completion`, i.e. after the kernel has
/// finished with the submission that read them, and freed only on release,
/// after the final completion. So the pointer from [`SendEntry::msghdr`] is
/// valid, and its contents stable, until the next completion of this send.
pub struct SendEntry<G> {
    msg: Box<Msg>,
    copy_slot: Option<CopySlot>,
    guards: Vec<G>,
    total: usize,
    sent: usize,
    zero_copy: bool,
    /// The send's outcome once its final completion arrived.
    outcome: Option<i64>,
    /// The outcome was reported with `Settle` already.
    settled: bool,
    /// Completions flagged `F_MORE`, i.e. notifications announced.
    announced: u32,
    /// Notifications received.
    notified: u32,
    zc_copied: bool,
}

// SAFETY: the raw pointers in an entry (msg -> iovecs, iovecs -> data) point
// into heap memory the entry owns or keeps alive through its guards and copy
// slot; nothing in it is tied to a thread, so it may move with its guards.
unsafe impl<G: Send> Send for SendEntry<G> {}

impl<G> SendEntry<G> {
    /// A send of the bytes `iovecs` describe, whose memory `guards` keep
    /// alive. `zero_copy` chooses when the user's promise settles (see
    /// [`SendProgress`]); it does not change how notifications are counted.
    ///
    /// Any number of iovecs: each submission carries at most [`IOV_MAX`].
    pub fn new(iovecs: Vec<libc::iovec>, guards: Vec<G>, zero_copy: bool) -> SendEntry<G> {
        let msg = Box::new(Msg {
            hdr: empty_msghdr(),
            iovecs,
            first: 0,
        });
        SendEntry::with_msg(msg, guards, zero_copy)
    }

    /// [`SendEntry::new`] with `msg` (its iovecs filled, `first` 0).
    fn with_msg(msg: Box<Msg>, guards: Vec<G>, zero_copy: bool) -> SendEntry<G> {
        let total = msg
            .iovecs
            .iter()
            .fold(0usize, |sum, v| sum.saturating_add(v.iov_len));
        let mut e = SendEntry {
            msg,
            copy_slot: None,
            guards,
            total,
            sent: 0,
            zero_copy,
            outcome: None,
            settled: false,
            announced: 0,
            notified: 0,
            zc_copied: false,
        };
        e.advance(0);
        e
    }

    /// The send's bytes live in this copy-pool slot, handed back on release.
    pub fn with_copy_slot(mut self, slot: CopySlot) -> SendEntry<G> {
        self.copy_slot = Some(slot);
        self
    }

    /// `n` bytes before the ones `iovecs` describe went out already (sent
    /// at once, before the entry was made): they count in `total` and in
    /// the result, and only the rest is submitted.
    pub fn with_sent_before(mut self, n: usize) -> SendEntry<G> {
        self.total += n;
        self.sent += n;
        self
    }

    /// The `msghdr` to submit: the first [`IOV_MAX`] iovecs not yet sent;
    /// valid until this send's next completion is fed to the slab (see the
    /// type's docs).
    pub fn msghdr(&self) -> *const libc::msghdr {
        &self.msg.hdr
    }

    /// The iovecs not yet sent (the first possibly advanced into).
    pub fn iovecs(&self) -> &[libc::iovec] {
        &self.msg.iovecs[self.msg.first..]
    }

    pub fn total(&self) -> usize {
        self.total
    }

    pub fn sent(&self) -> usize {
        self.sent
    }

    pub fn remaining(&self) -> usize {
        self.total - self.sent
    }

    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Notifications announced and not yet received (negative while one
    /// has overtaken its completion).
    pub fn pending_notifications(&self) -> i64 {
        i64::from(self.announced) - i64::from(self.notified)
    }

    /// The final completion has arrived (sent in full, or failed).
    pub fn is_finished(&self) -> bool {
        self.outcome.is_some()
    }

    /// Takes the entry apart (for an entry the slab refused, or on teardown
    /// once the kernel is gone).
    pub fn into_released(self) -> Released<G> {
        Released {
            guards: self.guards,
            copy_slot: self.copy_slot,
            sent: self.sent,
            total: self.total,
            zc_copied: self.zc_copied,
        }
    }

    /// Moves past `n` more sent bytes (at most `remaining()`): drops fully
    /// sent iovecs, shortens the first partly sent one, skips empty ones,
    /// and points the msghdr at what is left ([`IOV_MAX`] iovecs at most).
    fn advance(&mut self, n: usize) {
        debug_assert!(n <= self.remaining());
        self.sent += n;
        let m = &mut *self.msg;
        let mut n = n;
        while m.first < m.iovecs.len() {
            let iov = &mut m.iovecs[m.first];
            if iov.iov_len > n {
                iov.iov_base = iov.iov_base.cast::<u8>().wrapping_add(n).cast();
                iov.iov_len -= n;
                break;
            }
            n -= iov.iov_len;
            m.first += 1;
        }
        let rest = m.iovecs.len() - m.first;
        m.hdr.msg_iov = if rest == 0 {
            std::ptr::null_mut()
        } else {
            m.iovecs.as_mut_ptr().wrapping_add(m.first)
        };
        m.hdr.msg_iovlen = rest.min(IOV_MAX) as _;
    }
}

impl<G> fmt::Debug for SendEntry<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendEntry")
            .field("iovecs_left", &self.iovecs().len())
            .field("total", &self.total)
            .field("sent", &self.sent)
            .field("zero_copy", &self.zero_copy)
            .field("outcome", &self.outcome)
            .field("settled", &self.settled)
            .field("announced", &self.announced)
            .field("notified", &self.notified)
            .field("guards", &self.guards.len())
            .field("copy_slot", &self.copy_slot)
            .finish()
    }
}

fn empty_msghdr() -> libc::msghdr {
    // SAFETY: msghdr is plain C data for which all-zero bytes are a valid
    // value (no name, no iovecs, no control data, no flags); zeroing also
    // covers the padding fields some libcs add.
    unsafe { std::mem::zeroed::<libc::msghdr>() }
}

/// Released sends' `Msg` blocks kept for the next ones (see
/// [`SendSlab::entry`]): as many as the sends a busy ring has in flight.
const SPARE_MSGS: usize = 256;
/// A block whose iovecs hold more than this is freed, not kept.
const SPARE_IOVECS: usize = 8;

/// Bounded set of sends in flight, keyed by generation-checked [`SendKey`].
pub struct SendSlab<G> {
    entries: Slab<SendEntry<G>>,
    /// Current generation of each index; bumped when its entry is released.
    generations: Vec<u32>,
    /// `Msg` blocks of released sends, for [`SendSlab::entry`]: boxed, as
    /// an entry holds them (the kernel needs the block not to move).
    #[allow(clippy::vec_box)]
    spare: Vec<Box<Msg>>,
}

impl<G> SendSlab<G> {
    /// A slab holding at most `capacity` sends (at least 1).
    pub fn with_capacity(capacity: usize) -> SendSlab<G> {
        SendSlab {
            entries: Slab::with_capacity(capacity),
            generations: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// [`SendEntry::new`] for a copy of `iovecs`, in the heap block of a
    /// released send when one is spare: a small send allocates nothing (a
    /// block was two allocations and two frees per send, ~3% of the CPU
    /// of a 64 B ping-pong on 50 connections). A block is reused only once
    /// its send was released, when the kernel no longer reads it.
    pub fn entry(
        &mut self,
        iovecs: &[libc::iovec],
        guards: Vec<G>,
        zero_copy: bool,
    ) -> SendEntry<G> {
        let msg = match self.spare.pop() {
            Some(mut m) => {
                m.hdr = empty_msghdr();
                m.iovecs.clear();
                m.iovecs.extend_from_slice(iovecs);
                m.first = 0;
                m
            }
            None => Box::new(Msg {
                hdr: empty_msghdr(),
                iovecs: iovecs.to_vec(),
                first: 0,
            }),
        };
        SendEntry::with_msg(msg, guards, zero_copy)
    }

    /// Takes a removed entry apart, keeping its `Msg` block for a later
    /// send.
    fn release(&mut self, e: SendEntry<G>) -> Released<G> {
        let SendEntry {
            msg,
            copy_slot,
            guards,
            total,
            sent,
            zc_copied,
            ..
        } = e;
        if self.spare.len() < SPARE_MSGS && msg.iovecs.capacity() <= SPARE_IOVECS {
            self.spare.push(msg);
        }
        Released {
            guards,
            copy_slot,
            sent,
            total,
            zc_copied,
        }
    }

    /// Stores `entry`, or hands it back when the slab is full (the driver
    /// queues the send until a slot frees).
    pub fn insert(&mut self, entry: SendEntry<G>) -> Result<SendKey, SendEntry<G>> {
        let index = self.entries.insert(entry)?;
        let i = index as usize;
        if i >= self.generations.len() {
            self.generations.resize(i + 1, 0);
        }
        Ok(SendKey {
            index,
            generation: self.generations[i],
        })
    }

    pub fn get(&self, key: SendKey) -> Option<&SendEntry<G>> {
        if self.generations.get(key.index as usize) != Some(&key.generation) {
            return None;
        }
        self.entries.get(key.index)
    }

    fn get_mut(&mut self, key: SendKey) -> Option<&mut SendEntry<G>> {
        if self.generations.get(key.index as usize) != Some(&key.generation) {
            return None;
        }
        self.entries.get_mut(key.index)
    }

    /// The entry's `msghdr`, to (re)submit the send.
    pub fn msghdr(&self, key: SendKey) -> Option<*const libc::msghdr> {
        self.get(key).map(SendEntry::msghdr)
    }

    /// Feeds any CQE of the send at `key`, telling notifications from
    /// completions by `flags`. `None` for a key with no live entry.
    #[must_use]
    pub fn on_cqe(&mut self, key: SendKey, res: i32, flags: u32) -> Option<SendProgress<G>> {
        if flags & CQE_F_NOTIF != 0 {
            if res as u32 & NOTIF_USAGE_ZC_COPIED != 0 {
                self.get_mut(key)?.zc_copied = true;
            }
            self.on_notification(key)
        } else {
            self.on_completion(key, res, flags & CQE_F_MORE != 0)
        }
    }

    /// The completion of one submission of the send at `key`: `res` bytes
    /// sent or `-errno`; `more` when flagged `F_MORE` (a notification will
    /// follow). `None` for a key with no live entry.
    ///
    /// A result short of what remains (0 included) advances the entry and
    /// asks for a resubmission; a result beyond it (which no kernel gives)
    /// counts as all sent. A completion after the final one is ignored.
    #[must_use]
    pub fn on_completion(&mut self, key: SendKey, res: i32, more: bool) -> Option<SendProgress<G>> {
        let e = self.get_mut(key)?;
        if e.outcome.is_some() {
            debug_assert!(false, "completion after the final one: {e:?}");
            return Some(SendProgress::Wait);
        }
        if more {
            e.announced += 1;
        }
        if res < 0 {
            e.outcome = Some(i64::from(res));
        } else {
            let n = (res as usize).min(e.remaining());
            e.advance(n);
            if e.remaining() > 0 {
                return Some(SendProgress::Resubmit);
            }
            e.outcome = Some(e.total as i64);
        }
        Some(self.step(key))
    }

    /// A notification (`F_NOTIF` CQE) of the send at `key`. `None` for a key
    /// with no live entry.
    #[must_use]
    pub fn on_notification(&mut self, key: SendKey) -> Option<SendProgress<G>> {
        let e = self.get_mut(key)?;
        e.notified += 1;
        Some(self.step(key))
    }

    /// Settles and releases as far as the entry at `key` (live) allows.
    fn step(&mut self, key: SendKey) -> SendProgress<G> {
        let Some(e) = self.get_mut(key) else {
            return SendProgress::Wait;
        };
        let Some(result) = e.outcome else {
            return SendProgress::Wait;
        };
        // After the final completion no F_MORE can come, so `announced` is
        // final: nothing pending (or, against the ABI, more notifications
        // than announced) means the kernel is done with the memory.
        if e.pending_notifications() > 0 {
            if !e.zero_copy && !e.settled {
                e.settled = true;
                return SendProgress::Settle(result);
            }
            return SendProgress::Wait;
        }
        let settled = e.settled;
        let Some(e) = self.remove(key) else {
            return SendProgress::Wait;
        };
        let released = self.release(e);
        if settled {
            SendProgress::Release(released)
        } else {
            SendProgress::SettleAndRelease(result, released)
        }
    }

    fn remove(&mut self, key: SendKey) -> Option<SendEntry<G>> {
        let e = self.entries.remove(key.index)?;
        let g = &mut self.generations[key.index as usize];
        *g = g.wrapping_add(1);
        Some(e)
    }

    /// Sends in flight.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }
}

impl<G> fmt::Debug for SendSlab<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendSlab")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::copy_pool::CopyPool;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// A guard whose drop is counted, so "released exactly once" is visible.
    struct Guard(Rc<Cell<u32>>);

    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    fn guards(n: usize) -> (Vec<Guard>, Rc<Cell<u32>>) {
        let drops = Rc::new(Cell::new(0));
        ((0..n).map(|_| Guard(drops.clone())).collect(), drops)
    }

    /// Fake iovecs at distinct made-up addresses (never dereferenced).
    fn iovs(sizes: &[usize]) -> Vec<libc::iovec> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| libc::iovec {
                iov_base: (0x10_0000 * (i + 1)) as *mut libc::c_void,
                iov_len: len,
            })
            .collect()
    }

    /// Every byte address the iovecs cover, in order.
    fn flatten(v: &[libc::iovec]) -> Vec<usize> {
        v.iter()
            .flat_map(|iov| {
                let b = iov.iov_base as usize;
                b..b + iov.iov_len
            })
            .collect()
    }

    fn state(e: &SendEntry<Guard>) -> Vec<(usize, usize)> {
        e.iovecs()
            .iter()
            .map(|v| (v.iov_base as usize, v.iov_len))
            .collect()
    }

    /// The msghdr points at the remaining iovecs (the first IOV_MAX of them).
    fn assert_msghdr_consistent<G>(e: &SendEntry<G>) {
        // SAFETY: msghdr() points into the entry's boxed msghdr, alive and
        // not mutated while `e` is borrowed.
        let m = unsafe { &*e.msghdr() };
        assert_eq!(m.msg_iovlen as u64, e.iovecs().len().min(IOV_MAX) as u64);
        if e.iovecs().is_empty() {
            assert!(m.msg_iov.is_null());
        } else {
            assert_eq!(m.msg_iov.cast_const(), e.iovecs().as_ptr());
        }
        assert!(m.msg_name.is_null() && m.msg_control.is_null());
    }

    #[test]
    fn bytes_sent_before_the_entry_count_in_its_result() {
        let (g, _drops) = guards(1);
        let mut s = SendSlab::with_capacity(2);
        let k = s
            .insert(SendEntry::new(iovs(&[10]), g, false).with_sent_before(90))
            .unwrap();
        let e = s.get(k).unwrap();
        assert_eq!((e.total(), e.sent(), e.remaining()), (100, 90, 10));
        assert_eq!(state(e), [(0x10_0000, 10)], "only the rest is submitted");
        assert_msghdr_consistent(e);
        assert!(matches!(
            s.on_completion(k, 4, false),
            Some(SendProgress::Resubmit)
        ));
        match s.on_completion(k, 6, false) {
            Some(SendProgress::SettleAndRelease(100, r)) => {
                assert_eq!((r.sent, r.total), (100, 100))
            }
            p => panic!("{p:?}"),
        }
    }

    #[test]
    fn partial_sends_advance_over_several_iovecs() {
        let (g, drops) = guards(2);
        let mut s = SendSlab::with_capacity(4);
        let k = s
            .insert(SendEntry::new(iovs(&[3, 5, 7]), g, false))
            .unwrap();
        let (a, b, c) = (0x10_0000, 0x20_0000, 0x30_0000);
        let e = s.get(k).unwrap();
        assert_eq!((e.total(), e.sent()), (15, 0));
        assert_eq!(state(e), [(a, 3), (b, 5), (c, 7)]);
        assert_msghdr_consistent(e);
        let iov_storage = e.iovecs().as_ptr();

        assert!(matches!(
            s.on_completion(k, 2, false),
            Some(SendProgress::Resubmit)
        ));
        let e = s.get(k).unwrap();
        assert_eq!(state(e), [(a + 2, 1), (b, 5), (c, 7)]);
        assert_eq!(e.sent(), 2);
        assert_msghdr_consistent(e);

        assert!(matches!(
            s.on_completion(k, 4, false),
            Some(SendProgress::Resubmit)
        ));
        let e = s.get(k).unwrap();
        assert_eq!(state(e), [(b + 3, 2), (c, 7)]);
        assert_eq!(e.sent(), 6);
        assert_msghdr_consistent(e);
        assert_eq!(
            e.iovecs().as_ptr(),
            iov_storage.wrapping_add(1),
            "storage never moves"
        );
        assert_eq!(drops.get(), 0);

        match s.on_completion(k, 9, false) {
            Some(SendProgress::SettleAndRelease(15, r)) => {
                assert_eq!((r.sent, r.total), (15, 15));
                assert_eq!(drops.get(), 0, "held until the caller drops them");
                drop(r);
            }
            p => panic!("{p:?}"),
        }
        assert_eq!(drops.get(), 2);
        assert!(s.is_empty());
        assert!(s.get(k).is_none());
    }

    #[test]
    fn more_iovecs_than_iov_max_go_in_submissions_of_iov_max() {
        let (g, drops) = guards(1);
        let mut s = SendSlab::with_capacity(1);
        let n = 2 * IOV_MAX + 500;
        let k = s
            .insert(SendEntry::new(iovs(&vec![2; n]), g, false))
            .unwrap();
        let submitted = |s: &SendSlab<Guard>| {
            let e = s.get(k).unwrap();
            assert_msghdr_consistent(e);
            // SAFETY: as in assert_msghdr_consistent.
            let m = unsafe { &*e.msghdr() };
            m.msg_iovlen as usize
        };
        assert_eq!(submitted(&s), IOV_MAX);
        // The kernel sends what the msghdr names: short of the whole send.
        assert!(matches!(
            s.on_completion(k, (2 * IOV_MAX) as i32, false),
            Some(SendProgress::Resubmit)
        ));
        assert_eq!(s.get(k).unwrap().iovecs().len(), IOV_MAX + 500);
        assert_eq!(submitted(&s), IOV_MAX);
        // A short send inside the second batch: the next starts mid-iovec.
        assert!(matches!(
            s.on_completion(k, 3, false),
            Some(SendProgress::Resubmit)
        ));
        assert_eq!(s.get(k).unwrap().iovecs()[0].iov_len, 1);
        assert_eq!(s.get(k).unwrap().iovecs().len(), IOV_MAX + 499);
        assert_eq!(submitted(&s), IOV_MAX);
        // All of the third batch: 1 + 2 * 1023 bytes.
        assert!(matches!(
            s.on_completion(k, (2 * IOV_MAX - 1) as i32, false),
            Some(SendProgress::Resubmit)
        ));
        assert_eq!(submitted(&s), 499);
        assert_eq!(s.get(k).unwrap().remaining(), 998);
        let p = s.on_completion(k, 998, false).unwrap();
        assert_eq!(p.settled(), Some(2 * n as i64));
        drop(p);
        assert_eq!(drops.get(), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn partial_send_ending_on_an_iovec_boundary() {
        let (g, _) = guards(0);
        let mut s = SendSlab::with_capacity(1);
        let k = s
            .insert(SendEntry::new(iovs(&[3, 0, 5]), g, false))
            .unwrap();
        assert!(matches!(
            s.on_completion(k, 3, false),
            Some(SendProgress::Resubmit)
        ));
        let e = s.get(k).unwrap();
        assert_eq!(state(e), [(0x30_0000, 5)], "empty iovec skipped too");
        assert_msghdr_consistent(e);
        assert!(matches!(
            s.on_completion(k, 0, false),
            Some(SendProgress::Resubmit)
        ));
        assert_eq!(s.get(k).unwrap().sent(), 3);
        let p = s.on_completion(k, 5, false).unwrap();
        assert_eq!(p.settled(), Some(8));
    }

    #[test]
    fn zero_copy_counts_every_notification() {
        let (g, drops) = guards(3);
        let mut s = SendSlab::with_capacity(4);
        let k = s.insert(SendEntry::new(iovs(&[10, 10]), g, true)).unwrap();
        assert!(matches!(
            s.on_completion(k, 4, true),
            Some(SendProgress::Resubmit)
        ));
        assert!(matches!(
            s.on_completion(k, 4, true),
            Some(SendProgress::Resubmit)
        ));
        assert_eq!(s.get(k).unwrap().pending_notifications(), 2);
        assert!(matches!(s.on_notification(k), Some(SendProgress::Wait)));
        assert_eq!(s.get(k).unwrap().pending_notifications(), 1);
        // The final completion: all sent, but two notifications outstanding.
        assert!(matches!(
            s.on_completion(k, 12, true),
            Some(SendProgress::Wait)
        ));
        assert!(s.get(k).unwrap().is_finished());
        assert_eq!(s.get(k).unwrap().pending_notifications(), 2);
        assert!(matches!(s.on_notification(k), Some(SendProgress::Wait)));
        assert_eq!(drops.get(), 0, "not before the last notification");
        match s.on_notification(k) {
            Some(SendProgress::SettleAndRelease(20, r)) => assert_eq!(r.guards.len(), 3),
            p => panic!("{p:?}"),
        }
        assert_eq!(drops.get(), 3);
        assert!(s.on_notification(k).is_none(), "key is gone");
        assert_eq!(drops.get(), 3);
    }

    #[test]
    fn notifications_before_the_final_completion() {
        let (g, drops) = guards(1);
        let mut s = SendSlab::with_capacity(1);
        let k = s.insert(SendEntry::new(iovs(&[8]), g, true)).unwrap();
        assert!(matches!(
            s.on_completion(k, 5, true),
            Some(SendProgress::Resubmit)
        ));
        assert!(matches!(s.on_notification(k), Some(SendProgress::Wait)));
        assert_eq!(s.get(k).unwrap().pending_notifications(), 0);
        assert_eq!(drops.get(), 0, "still sending");
        // A final completion without F_MORE (nothing of it went zero-copy).
        let p = s.on_completion(k, 3, false).unwrap();
        assert!(matches!(p, SendProgress::SettleAndRelease(8, _)));
        drop(p);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn notification_overtaking_its_completion() {
        let (g, drops) = guards(1);
        let mut s = SendSlab::with_capacity(1);
        let k = s.insert(SendEntry::new(iovs(&[8]), g, true)).unwrap();
        assert!(matches!(s.on_notification(k), Some(SendProgress::Wait)));
        assert_eq!(s.get(k).unwrap().pending_notifications(), -1);
        let p = s.on_completion(k, 8, true).unwrap();
        assert!(matches!(p, SendProgress::SettleAndRelease(8, _)));
        drop(p);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn copy_send_settles_at_completion_but_holds_memory_for_notifications() {
        let (g, drops) = guards(1);
        let mut s = SendSlab::with_capacity(1);
        let k = s.insert(SendEntry::new(iovs(&[8]), g, false)).unwrap();
        assert!(matches!(
            s.on_completion(k, 8, true),
            Some(SendProgress::Settle(8))
        ));
        assert_eq!(drops.get(), 0);
        match s.on_notification(k) {
            Some(SendProgress::Release(r)) => assert_eq!(r.sent, 8),
            p => panic!("{p:?}"),
        }
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn failure_midway_releases_once() {
        // Zero-copy: the failure waits for the earlier notification.
        let (g, drops) = guards(2);
        let mut s = SendSlab::with_capacity(2);
        let k = s.insert(SendEntry::new(iovs(&[4, 4]), g, true)).unwrap();
        assert!(matches!(
            s.on_completion(k, 5, true),
            Some(SendProgress::Resubmit)
        ));
        let err = -libc::ECONNRESET;
        assert!(matches!(
            s.on_completion(k, err, false),
            Some(SendProgress::Wait)
        ));
        assert_eq!(drops.get(), 0);
        match s.on_notification(k) {
            Some(SendProgress::SettleAndRelease(r, rel)) => {
                assert_eq!(r, i64::from(err));
                assert_eq!((rel.sent, rel.total), (5, 8));
            }
            p => panic!("{p:?}"),
        }
        assert_eq!(drops.get(), 2);
        assert!(s.on_completion(k, 3, false).is_none());
        assert_eq!(drops.get(), 2);

        // Copy: released at the failing completion.
        let (g, drops) = guards(1);
        let k = s.insert(SendEntry::new(iovs(&[4, 4]), g, false)).unwrap();
        assert!(matches!(
            s.on_completion(k, 1, false),
            Some(SendProgress::Resubmit)
        ));
        let p = s.on_completion(k, -libc::EPIPE, false).unwrap();
        assert_eq!(p.settled(), Some(-i64::from(libc::EPIPE)));
        assert!(p.into_released().is_some());
        assert_eq!(drops.get(), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn a_released_sends_block_carries_the_next_send_with_its_own_iovecs() {
        let mut s: SendSlab<Guard> = SendSlab::with_capacity(4);
        let (g, drops) = guards(1);
        let e = s.entry(&iovs(&[3, 5]), g, false);
        let k = s.insert(e).unwrap();
        let first = s.msghdr(k).unwrap();
        // Not released yet: a second send gets a block of its own.
        let e = s.entry(&iovs(&[1]), Vec::new(), false);
        let k2 = s.insert(e).unwrap();
        assert_ne!(s.msghdr(k2).unwrap(), first);
        let p = s.on_completion(k, 8, false).unwrap();
        assert_eq!(p.settled(), Some(8));
        assert!(p.into_released().is_some());
        assert_eq!(drops.get(), 1);
        // Released: the next send reuses its block, emptied and refilled.
        let e = s.entry(&iovs(&[7]), Vec::new(), false);
        assert_eq!(e.msghdr(), first);
        assert_eq!(e.total(), 7);
        assert_eq!(e.iovecs().len(), 1);
        assert_eq!(e.iovecs()[0].iov_len, 7);
        // SAFETY: the block is the entry's own; nothing else reads it.
        let hdr = unsafe { &*e.msghdr() };
        assert_eq!(hdr.msg_iovlen, 1);
        assert_eq!(hdr.msg_iov as *const libc::iovec, e.iovecs().as_ptr());
        assert!(hdr.msg_name.is_null() && hdr.msg_control.is_null());
        let k3 = s.insert(e).unwrap();
        let p = s.on_completion(k3, 4, false).unwrap();
        assert!(matches!(p, SendProgress::Resubmit));
        assert_eq!(s.get(k3).unwrap().remaining(), 3);
    }

    #[test]
    fn exhaustion_hands_the_entry_back() {
        let mut s = SendSlab::with_capacity(2);
        let (g1, _) = guards(1);
        let (g2, _) = guards(1);
        let (g3, d3) = guards(1);
        let k1 = s.insert(SendEntry::new(iovs(&[1]), g1, false)).unwrap();
        let _k2 = s.insert(SendEntry::new(iovs(&[1]), g2, false)).unwrap();
        assert!(s.is_full());
        let back = s.insert(SendEntry::new(iovs(&[7]), g3, false)).unwrap_err();
        assert_eq!(back.total(), 7);
        assert_eq!(d3.get(), 0, "refused entry keeps its guards");
        drop(s.on_completion(k1, 1, false).unwrap().into_released());
        let k3 = s.insert(back).unwrap();
        assert_eq!(k3.index(), k1.index(), "slot reused");
        assert_ne!(k3, k1, "with a new generation");
        assert!(s.get(k1).is_none(), "stale key finds nothing");
        assert!(s.on_completion(k1, 1, false).is_none());
        assert_eq!(s.get(k3).unwrap().total(), 7);
        assert_eq!(SendKey::from_u64(k3.to_u64()), k3);
        assert_eq!(d3.get(), 0);
    }

    #[test]
    fn copy_slot_comes_back_on_release() {
        let mut pool = CopyPool::new(2, 64).unwrap();
        let slot = pool.alloc().unwrap();
        let iov = pool.iovec(&slot, 20).unwrap();
        let mut s: SendSlab<()> = SendSlab::with_capacity(1);
        let k = s
            .insert(SendEntry::new(vec![iov], vec![], false).with_copy_slot(slot))
            .unwrap();
        assert_eq!(pool.in_use(), 1);
        let rel = s
            .on_completion(k, 20, false)
            .unwrap()
            .into_released()
            .unwrap();
        pool.free(rel.copy_slot.unwrap()).unwrap();
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn on_cqe_dispatches_by_flags() {
        let (g, drops) = guards(1);
        let mut s = SendSlab::with_capacity(1);
        let k = s.insert(SendEntry::new(iovs(&[6]), g, true)).unwrap();
        assert!(matches!(
            s.on_cqe(k, 6, CQE_F_MORE),
            Some(SendProgress::Wait)
        ));
        let res = NOTIF_USAGE_ZC_COPIED as i32;
        match s.on_cqe(k, res, CQE_F_NOTIF) {
            Some(SendProgress::SettleAndRelease(6, r)) => assert!(r.zc_copied),
            p => panic!("{p:?}"),
        }
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn empty_send_completes_with_zero() {
        let mut s: SendSlab<()> = SendSlab::with_capacity(1);
        let k = s.insert(SendEntry::new(vec![], vec![], false)).unwrap();
        assert_msghdr_consistent(s.get(k).unwrap());
        assert_eq!(s.on_completion(k, 0, false).unwrap().settled(), Some(0));
        assert!(s.is_empty());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn flag_constants_match_the_kernel_abi() {
        assert!(io_uring::cqueue::more(CQE_F_MORE));
        assert!(io_uring::cqueue::notif(CQE_F_NOTIF));
        assert!(!io_uring::cqueue::notif(CQE_F_MORE));
    }

    /// A real zero-copy send over loopback TCP: ~1 MiB in three iovecs
    /// through `IORING_OP_SENDMSG_ZC`, every CQE fed to the slab, partial
    /// sends resubmitted with the entry's msghdr, until the memory is
    /// released. Bounded: each wait times out, the whole loop has a deadline.
    #[cfg(target_os = "linux")]
    #[test]
    fn sendmsg_zc_over_loopback() {
        use io_uring::{opcode, types, IoUring};
        use std::io::Read;
        use std::net::{Shutdown, TcpListener, TcpStream};
        use std::os::fd::AsRawFd;
        use std::sync::Arc;
        use std::time::{Duration, Instant};

        let mut ring = match IoUring::new(8) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("skipped: io_uring unavailable: {e}");
                return;
            }
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        // Small socket buffers, so the kernel is likely to take the message
        // in several partial sends (each resubmitted), not in one.
        let small: libc::c_int = 64 * 1024;
        for (fd, opt) in [
            (client.as_raw_fd(), libc::SO_SNDBUF),
            (server.as_raw_fd(), libc::SO_RCVBUF),
        ] {
            // SAFETY: a valid socket and a c_int option value of the right size.
            let r = unsafe {
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    opt,
                    (&small as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            assert_eq!(r, 0);
        }

        let sizes = [300_000usize, 500_001, 248_575];
        let parts: Vec<Arc<Vec<u8>>> = sizes
            .iter()
            .enumerate()
            .map(|(p, &n)| Arc::new((0..n).map(|i| (i * 7 + p * 13) as u8).collect()))
            .collect();
        let expected: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        let want = expected.len();
        let reader = std::thread::spawn(move || {
            server
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let mut got = Vec::with_capacity(want);
            let mut buf = vec![0u8; 64 * 1024];
            while got.len() < want {
                match server.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
            got
        });

        let iovecs: Vec<libc::iovec> = parts
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            })
            .collect();
        let mut slab: SendSlab<Arc<Vec<u8>>> = SendSlab::with_capacity(4);
        let key = slab
            .insert(SendEntry::new(iovecs, parts.clone(), true))
            .unwrap();
        let fd = types::Fd(client.as_raw_fd());
        let submit = |ring: &mut IoUring, slab: &SendSlab<Arc<Vec<u8>>>| {
            let sqe = opcode::SendMsgZc::new(fd, slab.msghdr(key).unwrap())
                .ioprio(SEND_ZC_REPORT_USAGE)
                .build()
                .user_data(key.to_u64());
            // SAFETY: the msghdr, its iovecs and the bytes they describe are
            // owned by the slab entry and its guards, which stay alive until
            // the slab releases them after the last CQE of this send.
            unsafe { ring.submission().push(&sqe) }.unwrap();
        };
        submit(&mut ring, &slab);

        let mut events: Vec<String> = Vec::new();
        let (mut settled, mut released) = (None, None);
        let mut resubmits = 0;
        let deadline = Instant::now() + Duration::from_secs(30);
        let ts = types::Timespec::new().nsec(100_000_000);
        while released.is_none() && Instant::now() < deadline {
            let args = types::SubmitArgs::new().timespec(&ts);
            match ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(e) => panic!("io_uring_enter: {e}"),
            }
            let cqes: Vec<(u64, i32, u32)> = ring
                .completion()
                .map(|c| (c.user_data(), c.result(), c.flags()))
                .collect();
            for (ud, res, flags) in cqes {
                let kind = if flags & CQE_F_NOTIF != 0 {
                    "NOTIF"
                } else {
                    "CQE"
                };
                events.push(format!("{kind}(res={res:#x}, flags={flags:#x})"));
                let p = slab.on_cqe(SendKey::from_u64(ud), res, flags).unwrap();
                if let Some(r) = p.settled() {
                    assert!(settled.is_none(), "settled twice");
                    settled = Some(r);
                }
                match p {
                    SendProgress::Resubmit => {
                        resubmits += 1;
                        submit(&mut ring, &slab);
                    }
                    p => {
                        if let Some(rel) = p.into_released() {
                            assert!(released.is_none(), "released twice");
                            released = Some(rel);
                        }
                    }
                }
            }
        }
        eprintln!("SENDMSG_ZC loopback: {resubmits} resubmits, events: {events:?}");
        let rel = released.expect("released before the deadline");
        let result = settled.expect("settled");
        if result == -i64::from(libc::EINVAL) || result == -i64::from(libc::EOPNOTSUPP) {
            eprintln!("SENDMSG_ZC unsupported here ({result}): the driver must copy");
            client.shutdown(Shutdown::Both).unwrap();
            reader.join().unwrap();
            return;
        }
        assert_eq!(result, want as i64);
        assert_eq!((rel.sent, rel.total), (want, want));
        eprintln!("zc_copied (kernel copied instead): {}", rel.zc_copied);
        for p in &parts {
            assert_eq!(Arc::strong_count(p), 2, "held until the caller drops them");
        }
        drop(rel);
        for p in &parts {
            assert_eq!(Arc::strong_count(p), 1);
        }
        assert!(slab.is_empty());
        let got = reader.join().unwrap();
        assert_eq!(got.len(), want);
        assert!(got == expected, "bytes differ");
    }

    /// One step of a generated send: deliver a notification first if one is
    /// owed and `notify`; then a completion that fails (when `fail`) or
    /// sends `pick` of the remaining bytes (0..=remaining), with F_MORE when
    /// `more`.
    #[derive(Debug, Clone)]
    struct Step {
        notify: bool,
        fail: bool,
        pick: prop::sample::Index,
        more: bool,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            any::<bool>(),
            prop::bool::weighted(0.05),
            any::<prop::sample::Index>(),
            any::<bool>(),
        )
            .prop_map(|(notify, fail, pick, more)| Step {
                notify,
                fail,
                pick,
                more,
            })
    }

    #[derive(Default)]
    struct Seen {
        settled: Vec<i64>,
        released: u32,
        released_sent: usize,
    }

    fn record(p: SendProgress<Guard>, seen: &mut Seen, drops: &Cell<u32>) {
        if let Some(r) = p.settled() {
            seen.settled.push(r);
        }
        if let Some(rel) = p.into_released() {
            assert_eq!(drops.get(), 0, "guards dropped before release");
            seen.released += 1;
            seen.released_sent = rel.sent;
        }
    }

    proptest! {
        /// Random partial sends, failures and notification timings: the
        /// iovecs always describe exactly the unsent suffix, accepted bytes
        /// add up to the total, the promise settles once (at completion for
        /// copy sends, at release for zero-copy ones), and the guards go
        /// exactly once, only when the send is finished and every announced
        /// notification has arrived.
        #[test]
        fn random_partial_sends_release_exactly_once(
            sizes in proptest::collection::vec(0usize..20, 0..6),
            zero_copy in any::<bool>(),
            nguards in 0usize..4,
            steps in proptest::collection::vec(step(), 0..40),
            final_more in any::<bool>(),
        ) {
            let (g, drops) = guards(nguards);
            let original = flatten(&iovs(&sizes));
            let total = original.len();
            let mut s = SendSlab::with_capacity(1);
            let k = s.insert(SendEntry::new(iovs(&sizes), g, zero_copy)).unwrap();
            let mut sent = 0usize;
            let mut owed = 0u32;
            let mut failed = None;
            let mut seen = Seen::default();
            let mut finished = false;
            for st in steps {
                if st.notify && owed > 0 {
                    owed -= 1;
                    record(s.on_notification(k).unwrap(), &mut seen, &drops);
                }
                let remaining = total - sent;
                let res = if st.fail { -libc::EPIPE } else { st.pick.index(remaining + 1) as i32 };
                let p = s.on_completion(k, res, st.more).unwrap();
                if st.more {
                    owed += 1;
                }
                if res >= 0 && (res as usize) < remaining {
                    prop_assert!(matches!(p, SendProgress::Resubmit));
                    sent += res as usize;
                    let e = s.get(k).unwrap();
                    prop_assert_eq!(e.sent(), sent);
                    prop_assert_eq!(flatten(e.iovecs()), original[sent..].to_vec());
                    assert_msghdr_consistent(e);
                    continue;
                }
                if res < 0 {
                    failed = Some(i64::from(res));
                } else {
                    sent += res as usize;
                }
                let expect_release = owed == 0;
                let expect_settle = expect_release || !zero_copy;
                prop_assert_eq!(p.settled().is_some(), expect_settle);
                record(p, &mut seen, &drops);
                prop_assert_eq!(seen.released, u32::from(expect_release));
                finished = true;
                break;
            }
            if !finished {
                // Finish the send in one last completion.
                let p = s.on_completion(k, (total - sent) as i32, final_more).unwrap();
                if final_more {
                    owed += 1;
                }
                sent = total;
                prop_assert_eq!(p.settled().is_some(), owed == 0 || !zero_copy);
                record(p, &mut seen, &drops);
            }
            while owed > 0 {
                prop_assert_eq!(seen.released, 0);
                owed -= 1;
                record(s.on_notification(k).unwrap(), &mut seen, &drops);
            }
            prop_assert_eq!(seen.released, 1, "released exactly once");
            prop_assert_eq!(drops.get(), nguards as u32);
            prop_assert_eq!(seen.settled.len(), 1, "settled exactly once");
            prop_assert_eq!(seen.settled[0], failed.unwrap_or(total as i64));
            prop_assert_eq!(seen.released_sent, sent);
            if failed.is_none() {
                prop_assert_eq!(sent, total, "bytes accounted");
            }
            prop_assert!(s.is_empty());
            prop_assert!(s.on_notification(k).is_none());
        }
    }
}
