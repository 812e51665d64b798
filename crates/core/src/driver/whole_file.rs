//! readFile by path in one submission, on engines that open into fixed
//! slots (io_uring): `open` into a slot of the registered file table kept
//! for this, linked to a read at the file position into a first buffer,
//! hard-linked to a second read. A file that fits in the first buffer
//! costs one submission and no thread: its first read returns the bytes
//! and the second returns 0, the end of the file. The second read is what
//! makes a short first read safe to trust: a short read ends a regular
//! file, but not a pipe, a character device or a procfs file (which return
//! what they have), and the second read tells them apart without knowing
//! the file's type: 0 is the end, anything else means read on. A larger
//! file is handed to the blocking lane after its first round (its slot's
//! file installed as a process descriptor, which the lane reads on from
//! where the round stopped: a pipe's bytes are never read twice or
//! skipped): the copies of a large file then run on a pool thread, not on
//! the submitting (JS) thread, where io_uring runs page-cache reads inline.
//! Measured on 256 KiB files: inline rounds 5.4k-8k/s, the lane 13.7k/s.
//! Kernels without `FIXED_FD_INSTALL` (before 6.8) go on inline, in rounds
//! of two reads of eight times the size, each at the file position.
//!
//! The slot is closed by its own op after the token settles (nothing else
//! can see a direct descriptor: no process descriptor is used). Engines
//! without fixed opens (mio), and a ring whose reserved slots are all in
//! use, make the same call in the blocking lane ([`BlockingCall::ReadFile`]),
//! with the same result and errors: `-(errno + READ_FILE_STEP * step)`,
//! step 0 for the open and 2 for a read; `-EFBIG` past 2 GiB.

use super::*;
use crate::op::call::at_step;
use crate::op::BlockingCall;

/// Slots at the top of the registered file table kept for whole-file reads
/// (more reads at once than this go to the blocking lane).
pub(super) const WHOLE_SLOTS: u32 = 128;
/// Bytes each read of the first round asks for: 64 KiB in all, which holds
/// most files read whole (configuration, templates, small assets).
const FIRST_CHUNK: usize = 32 << 10;
/// Most bytes one read of a later round asks for.
const MAX_CHUNK: usize = 8 << 20;
/// node:fs's limit on a whole-file read.
const READ_FILE_MAX: usize = (1 << 31) - 1;

/// Which op of a round an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WholeStep {
    Open,
    First,
    Second,
    /// The slot's file installed as a process descriptor, for the lane.
    Install,
}

/// A whole-file read in progress.
pub(super) struct WholeRead {
    token: u32,
    /// The `BlockingCall::ReadFile` it answers: its path, flags, and `out`,
    /// which the reads fill and the settled op hands back.
    call: Box<BlockingCall>,
    slot: u32,
    /// The slot holds the file: it must be closed.
    opened: bool,
    /// Ops of the current round not completed yet.
    pending: u8,
    open_res: i32,
    reads: [i32; 2],
    /// The result of the `Install` step, once it ran.
    installed: Option<i32>,
    /// Bytes each read of the current round asks for.
    chunk: usize,
    /// Its token settled already (dropped before it reached the kernel).
    settled: bool,
}

impl WholeRead {
    fn out(&mut self) -> &mut Vec<u8> {
        match &mut *self.call {
            BlockingCall::ReadFile { out, .. } => out,
            _ => unreachable!("a whole-file read answers a ReadFile call"),
        }
    }
}

/// `-(errno + READ_FILE_STEP * step)`: which call failed, as the lane says it.
fn step_error(res: i32, step: i32) -> i64 {
    -i64::from(at_step(-res, step))
}

impl Driver {
    /// The first slots of the registered file table, for open files; the
    /// rest are kept for whole-file reads.
    pub(super) fn file_slots(&self) -> u32 {
        self.engine.fixed_file_slots() - self.whole_slots_total
    }

    /// Reads a whole file for `call` (a `BlockingCall::ReadFile`) through
    /// fixed opens when the engine has them and a slot is free; `Err(call)`
    /// hands it back for the lane otherwise.
    pub(super) fn read_whole(
        &mut self,
        token: u32,
        mut call: Box<BlockingCall>,
    ) -> Result<(), Box<BlockingCall>> {
        if !matches!(*call, BlockingCall::ReadFile { .. }) {
            return Err(call);
        }
        let Some(slot) = self.whole_slots.pop() else {
            return Err(call);
        };
        let BlockingCall::ReadFile { path, flags, out } = &mut *call else {
            unreachable!("checked above")
        };
        out.clear();
        if out.try_reserve_exact(2 * FIRST_CHUNK).is_err() {
            self.whole_slots.push(slot);
            return Err(call);
        }
        let open = Op::OpenFixed {
            path: path.as_ptr(),
            flags: *flags,
            mode: 0o666,
            slot,
        };
        let w = WholeRead {
            token,
            call,
            slot,
            opened: false,
            pending: 0,
            open_res: 0,
            reads: [0; 2],
            installed: None,
            chunk: FIRST_CHUNK,
            settled: false,
        };
        let Ok(w) = self.wholes.insert(w) else {
            unreachable!("the whole-read slab is unbounded")
        };
        let mut open = Self::entry(
            NO_TOKEN,
            None,
            Kind::Whole(w, WholeStep::Open),
            open,
            Mem::None,
        );
        open.link = Link::Next;
        self.submit_round(w, Some(open));
        // The read's token counts once as submitted.
        self.stats.submitted += 1;
        Ok(())
    }

    /// Queues a round of two reads (after `open` in the first round), into
    /// `out`'s room past what it holds.
    fn submit_round(&mut self, w: u32, open: Option<Entry>) {
        let wr = self.wholes.get_mut(w).expect("live whole read");
        let chunk = wr.chunk;
        let slot = wr.slot;
        wr.pending = if open.is_some() { 3 } else { 2 };
        wr.reads = [0; 2];
        let out = wr.out();
        debug_assert!(out.capacity() - out.len() >= 2 * chunk);
        // SAFETY: out has room for 2 * chunk bytes past its length
        // (reserved by the caller), and is not touched until both reads
        // complete (the WholeRead owns it).
        let first = unsafe { out.as_mut_ptr().add(out.len()) };
        // SAFETY: as above: first + chunk is within the reserved room.
        let second = unsafe { first.add(chunk) };
        let read = |ptr: *mut u8| Op::Read {
            target: Target::Fixed(slot),
            ptr,
            len: chunk as u32,
            offset: CURRENT_POSITION,
            fixed: None,
        };
        let mut a = Self::entry(
            NO_TOKEN,
            None,
            Kind::Whole(w, WholeStep::First),
            read(first),
            Mem::None,
        );
        a.link = Link::Always;
        let b = Self::entry(
            NO_TOKEN,
            None,
            Kind::Whole(w, WholeStep::Second),
            read(second),
            Mem::None,
        );
        let mut group = Vec::with_capacity(3);
        group.extend(open);
        group.push(a);
        group.push(b);
        self.enqueue(group);
    }

    /// One op of whole-file read `w` completed with `res` (or was dropped
    /// unsubmitted: `-ECANCELED`); at the end of its round, the read goes
    /// on or settles.
    pub(super) fn complete_whole(
        &mut self,
        w: u32,
        step: WholeStep,
        res: i32,
        out: &mut Vec<Done>,
    ) {
        let Some(wr) = self.wholes.get_mut(w) else {
            return;
        };
        match step {
            WholeStep::Open => {
                wr.open_res = res;
                wr.opened = res >= 0;
            }
            WholeStep::First => wr.reads[0] = res,
            WholeStep::Second => wr.reads[1] = res,
            WholeStep::Install => wr.installed = Some(res),
        }
        wr.pending -= 1;
        if wr.pending == 0 {
            self.end_round(w, out);
        }
    }

    fn end_round(&mut self, w: u32, out: &mut Vec<Done>) {
        let closed = self.closed;
        let wr = self.wholes.get_mut(w).expect("live whole read");
        if wr.settled {
            return self.end_whole(w, None, out);
        }
        if wr.open_res < 0 {
            let r = step_error(wr.open_res, 0);
            return self.end_whole(w, Some(r), out);
        }
        if let Some(fd) = wr.installed.take() {
            if fd >= 0 && closed {
                self.close_fd(fd);
                return self.end_whole(w, Some(-i64::from(libc::ECANCELED)), out);
            }
            if fd >= 0 {
                return self.hand_to_lane(w, fd, out);
            }
            // Not installed: read on here.
            return self.next_round(w, out);
        }
        let [a, b] = wr.reads;
        if a < 0 || b < 0 {
            let e = if a < 0 { a } else { b };
            let r = if e == -libc::ECANCELED {
                -i64::from(libc::ECANCELED)
            } else {
                step_error(e, 2)
            };
            return self.end_whole(w, Some(r), out);
        }
        let (a, b, chunk) = (a as usize, b as usize, wr.chunk);
        let buf = wr.out();
        let len = buf.len();
        // SAFETY: the kernel wrote a bytes at len and b bytes at len +
        // chunk, all inside the capacity; moving the second read's bytes
        // down to follow the first's (a <= chunk) stays inside too.
        unsafe {
            let p = buf.as_mut_ptr().add(len);
            if a < chunk && b > 0 {
                std::ptr::copy(p.add(chunk), p.add(a), b);
            }
            buf.set_len(len + a + b);
        }
        let total = buf.len();
        if b == 0 {
            // The second read met the end: the file is all in `out`.
            return self.end_whole(w, Some(total as i64), out);
        }
        if total > READ_FILE_MAX {
            return self.end_whole(w, Some(-i64::from(libc::EFBIG)), out);
        }
        if closed {
            // The ring is closing: no more rounds.
            return self.end_whole(w, Some(-i64::from(libc::ECANCELED)), out);
        }
        if chunk == FIRST_CHUNK && self.whole_rest_in_lane {
            // A larger file: the lane reads the rest.
            wr.pending = 1;
            let slot = wr.slot;
            let install = Self::entry(
                NO_TOKEN,
                None,
                Kind::Whole(w, WholeStep::Install),
                Op::InstallFixed { slot },
                Mem::None,
            );
            return self.enqueue_one(install);
        }
        self.next_round(w, out)
    }

    /// Queues the next inline round, of reads eight times the size.
    fn next_round(&mut self, w: u32, out: &mut Vec<Done>) {
        let wr = self.wholes.get_mut(w).expect("live whole read");
        let next = (wr.chunk * 8).min(MAX_CHUNK);
        wr.chunk = next;
        if wr.out().try_reserve_exact(2 * next).is_err() {
            return self.end_whole(w, Some(-i64::from(libc::ENOMEM)), out);
        }
        self.submit_round(w, None);
    }

    /// Gives the rest of whole-file read `w` to the lane, as a
    /// `ReadRest` call on `fd` (the slot's file, installed) that settles
    /// its token; the slot closes.
    fn hand_to_lane(&mut self, w: u32, fd: i32, out: &mut Vec<Done>) {
        let wr = self.wholes.get_mut(w).expect("live whole read");
        let token = wr.token;
        let bytes = std::mem::take(wr.out());
        let call = Box::new(BlockingCall::ReadRest { fd, out: bytes });
        self.submit_call(token, None, call);
        self.end_whole(w, None, out);
    }

    /// Removes whole-file read `w`, settling its token with `result` (none
    /// when it settled already): with the bytes when `result >= 0`. Its
    /// slot is closed, or given back if it never held the file.
    fn end_whole(&mut self, w: u32, result: Option<i64>, out: &mut Vec<Done>) {
        let Some(wr) = self.wholes.remove(w) else {
            return;
        };
        if let Some(result) = result {
            let payload = if result >= 0 {
                Payload::Call(wr.call)
            } else {
                Payload::None
            };
            out.push(Done {
                token: wr.token,
                result,
                payload,
            });
        }
        if wr.opened {
            let close = Self::entry(
                NO_TOKEN,
                None,
                Kind::SlotClose(wr.slot),
                Op::CloseFixed { slot: wr.slot },
                Mem::None,
            );
            self.enqueue_one(close);
        } else {
            self.whole_slots.push(wr.slot);
        }
    }

    /// A whole-file read's slot was closed: it serves the next one.
    pub(super) fn slot_closed(&mut self, slot: u32) {
        self.whole_slots.push(slot);
    }

    /// A whole-file read dropped before the kernel saw its round (the
    /// ring is closing, or the token was cancelled): settled now, once.
    pub(super) fn drop_whole(&mut self, w: u32, step: WholeStep, out: &mut Vec<Done>) {
        if let Some(wr) = self.wholes.get_mut(w) {
            if !wr.settled {
                wr.settled = true;
                out.push(Done::err(wr.token, libc::ECANCELED));
            }
        }
        self.complete_whole(w, step, -libc::ECANCELED, out);
    }

    /// The token of the whole-file read an entry belongs to.
    pub(super) fn whole_token(&self, w: u32) -> Option<u32> {
        self.wholes.get(w).map(|wr| wr.token)
    }
}
