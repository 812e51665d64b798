//! The driver: one per Ring, living on the thread that submits (the JS
//! thread). It owns the command slab, the backlog, the file table, the
//! buffer registry and the bounce pool; the engine below only moves ops to
//! the kernel and completions back.
//!
//! Every op gets a slab entry that owns all memory the kernel may touch for
//! it (paths, iovecs, statx buffers, pinned or bounce data). The entry is
//! freed only when the op's completion arrives, also for ops that were
//! settled early (cancelled by a close or an abort: "orphaned"), so the
//! kernel never writes into freed memory (invariant 2). Each token given by
//! the caller is settled exactly once (invariant 1).

use crate::buffer::{AlignedBuf, BouncePool, BufferRegistry, Pinned, Registration};
use crate::engine::{Engine, Feature};
use crate::file_table::{DioAlign, FileEntry, FileError, FileId, FileTable};
use crate::op::{Cqe, Op, SyncKind, Target, CURRENT_POSITION};
use crate::slab::Slab;
use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::sync::Arc;

/// User data of wake-up NOPs: completions the driver ignores.
pub const WAKE: u64 = u64::MAX;
/// Token of internal ops that settle nothing.
const NO_TOKEN: u32 = u32::MAX;
/// Alignment of bounce and `allocAligned` memory: covers every `O_DIRECT`
/// device with 4 KiB or smaller logical blocks.
pub const BUFFER_ALIGN: usize = 4096;
/// Slab slots beyond `max_in_flight` kept for internal ops (cancels,
/// closes), so a full slab can always be cancelled and drained.
const RESERVE: usize = 64;
/// Largest single read or write the kernel performs (Linux `MAX_RW_COUNT`).
pub const MAX_IO: usize = 0x7fff_f000;

/// Options of a driver.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Ops in the kernel at once; more wait in the backlog.
    pub max_in_flight: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            max_in_flight: 1024,
        }
    }
}

/// Memory a caller lends for the duration of one submit call.
#[derive(Clone, Copy, Debug)]
pub struct UserBuf {
    pub ptr: *mut u8,
    pub len: usize,
}

/// What a settled op hands back besides its result.
#[derive(Debug)]
pub enum Payload {
    None,
    /// A read went through library memory: copy `buf` (its `len` is the
    /// byte count) to the caller's buffer at `user_offset`, then give the
    /// block back with [`Driver::recycle`].
    Bounce {
        buf: AlignedBuf,
        user_offset: usize,
    },
    Stat(Box<libc::statx>),
    Opened(FileId),
}

/// A settled op: its token, its result (`>= 0`, or `-errno`) and payload.
#[derive(Debug)]
pub struct Done {
    pub token: u32,
    pub result: i64,
    pub payload: Payload,
}

impl Done {
    fn err(token: u32, errno: i32) -> Done {
        Done {
            token,
            result: -i64::from(errno),
            payload: Payload::None,
        }
    }
}

/// Counters reported by `ring.stats()`.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub submitted: u64,
    pub completed: u64,
    pub in_flight: usize,
    pub queued: usize,
    pub open_files: usize,
    pub registered_files: usize,
    pub registered_buffers: usize,
    pub unregistered_buffers: usize,
    pub buffer_registration_failures: usize,
    pub buffer_registration_errno: Option<i32>,
    pub bounced: u64,
    pub fixed_buffer_ops: u64,
}

/// Owned memory of an op.
enum Mem {
    None,
    Path(#[allow(dead_code)] CString),
    Pinned(#[allow(dead_code)] Pinned),
    Bounce(AlignedBuf),
    Vectored(
        #[allow(dead_code)] Box<[libc::iovec]>,
        #[allow(dead_code)] Vec<Pinned>,
    ),
    Statx(Box<libc::statx>),
}

/// How a completion's result is interpreted.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Open {
        direct: bool,
        append: bool,
    },
    Close,
    /// Read into a bounce block, to be copied to `user_offset` of the caller's buffer.
    BouncedRead {
        user_offset: usize,
    },
    Plain,
    Stat,
    /// A member of an append chain.
    Chain(u32),
    Internal,
}

struct Entry {
    token: u32,
    file: Option<FileId>,
    kind: Kind,
    op: Op,
    mem: Mem,
    link: bool,
    orphaned: bool,
    /// A plain (unsynced) append: settling it ends one of the file's
    /// appends in flight.
    append: bool,
}

/// A write linked to an fsync/fdatasync, settling one token.
struct Chain {
    token: u32,
    file: FileId,
    data: Mem,
    ptr: *const u8,
    fixed: Option<u16>,
    total: usize,
    written: usize,
    offset: u64,
    sync: SyncKind,
    pending: u8,
    write_res: Option<i32>,
    sync_res: Option<i32>,
    orphaned: bool,
}

/// Per-Ring op table over one engine.
pub struct Driver {
    engine: Arc<dyn Engine>,
    slab: Slab<Entry>,
    backlog: VecDeque<Vec<Entry>>,
    chains: Slab<Chain>,
    files: FileTable,
    buffers: BufferRegistry,
    bounce: BouncePool,
    stats: Stats,
    unflushed: usize,
    closed: bool,
    max_in_flight: usize,
    /// An op on an O_DIRECT file was queued: submit it now rather than
    /// with the batch (see [`Driver::take_urgent`]).
    urgent: bool,
}

fn file_errno(e: FileError) -> i32 {
    match e {
        FileError::BadHandle => libc::EBADF,
        FileError::TableFull => libc::EMFILE,
    }
}

impl Driver {
    pub fn new(engine: Arc<dyn Engine>, cfg: DriverConfig) -> Driver {
        let fixed_buffers = engine.fixed_buffer_slots();
        Driver {
            engine,
            slab: Slab::with_capacity(cfg.max_in_flight.max(2) + RESERVE),
            backlog: VecDeque::new(),
            chains: Slab::with_capacity(usize::MAX),
            files: FileTable::new(),
            buffers: BufferRegistry::new(fixed_buffers),
            bounce: BouncePool::new(BUFFER_ALIGN),
            stats: Stats::default(),
            unflushed: 0,
            closed: false,
            max_in_flight: cfg.max_in_flight.max(2),
            urgent: false,
        }
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Ops in the kernel plus ops waiting in the backlog.
    pub fn pending(&self) -> usize {
        self.slab.len() + self.backlog.iter().map(Vec::len).sum::<usize>()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.in_flight = self.slab.len();
        s.queued = self.backlog.iter().map(Vec::len).sum();
        s.open_files = self.files.len();
        s.registered_buffers = self.buffers.registered();
        s.unregistered_buffers = self.buffers.len() - self.buffers.registered();
        let (failures, errno) = self.buffers.failures();
        s.buffer_registration_failures = failures;
        s.buffer_registration_errno = errno;
        s
    }

    // ----- buffers ---------------------------------------------------------

    /// Allocates `len` zeroed bytes aligned to [`BUFFER_ALIGN`], recorded so
    /// ops on it run zero-copy, and registered with the kernel if it allows.
    pub fn alloc_aligned(&mut self, len: usize) -> io::Result<(Arc<AlignedBuf>, Registration)> {
        let buf = Arc::new(
            AlignedBuf::new(len, BUFFER_ALIGN)
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?,
        );
        let engine = self.engine.clone();
        let reg = self.buffers.add(buf.clone(), |slot, b| {
            // SAFETY: the registry keeps `b` alive until it calls
            // unregister_buffer(slot) in `release_aligned` (or the ring goes).
            unsafe { engine.register_buffer(slot, b.as_ptr(), b.capacity()) }
        });
        Ok((buf, reg))
    }

    /// Forgets a block from [`Driver::alloc_aligned`] (its JS owner is gone).
    /// In-flight ops still hold it; it is freed after the last of them.
    pub fn release_aligned(&mut self, addr: usize) {
        let engine = self.engine.clone();
        self.buffers
            .remove(addr, |slot| engine.unregister_buffer(slot));
    }

    /// Hands a bounce block back after its data was copied out.
    pub fn recycle(&mut self, buf: AlignedBuf) {
        self.bounce.give(buf);
    }

    /// Library memory in place when `buf` lies in a recorded block with the
    /// alignment `need`; otherwise a bounce block (filled from `buf` when
    /// `copy_in`).
    fn data_for(
        &mut self,
        buf: UserBuf,
        need: usize,
        copy_in: bool,
    ) -> io::Result<(Mem, *mut u8, Option<u16>)> {
        if let Some(pin) = self.buffers.lookup(buf.ptr, buf.len) {
            if (buf.ptr as usize).is_multiple_of(need) {
                let fixed = pin.fixed;
                if fixed.is_some() {
                    self.stats.fixed_buffer_ops += 1;
                }
                return Ok((Mem::Pinned(pin), buf.ptr, fixed));
            }
        }
        let mut b = self
            .bounce
            .take(buf.len)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        if copy_in && buf.len > 0 {
            // SAFETY: the caller lends buf.ptr for buf.len bytes during this call;
            // b holds at least buf.len bytes; the two never overlap.
            unsafe { std::ptr::copy_nonoverlapping(buf.ptr, b.as_ptr(), buf.len) };
        }
        self.stats.bounced += 1;
        let p = b.as_mut_slice().as_mut_ptr();
        Ok((Mem::Bounce(b), p, None))
    }

    // ----- files -----------------------------------------------------------

    fn file(&mut self, id: FileId) -> Result<(&mut FileEntry, Target), i32> {
        let e = self.files.usable(id).map_err(file_errno)?;
        let t = match e.fixed {
            Some(s) => Target::Fixed(s),
            None => Target::Fd(e.fd),
        };
        Ok((e, t))
    }

    /// `(fd, O_DIRECT alignment, O_APPEND)` of an open file.
    pub fn file_info(&self, id: FileId) -> Result<(i32, Option<DioAlign>, bool), i32> {
        let e = self.files.entry(id).map_err(file_errno)?;
        if e.closing {
            return Err(libc::EBADF);
        }
        Ok((e.fd, e.direct, e.append_mode))
    }

    fn check_direct(e: &FileEntry, offset: u64, len: usize) -> Result<usize, i32> {
        match e.direct {
            Some(a) => {
                let o = u64::from(a.offset.max(1));
                if (offset != CURRENT_POSITION && !offset.is_multiple_of(o))
                    || !(len as u64).is_multiple_of(o)
                {
                    return Err(libc::EINVAL);
                }
                Ok(a.mem.max(1) as usize)
            }
            None => Ok(1),
        }
    }

    // ----- submission ------------------------------------------------------

    fn entry(token: u32, file: Option<FileId>, kind: Kind, op: Op, mem: Mem) -> Entry {
        Entry {
            token,
            file,
            kind,
            op,
            mem,
            link: false,
            orphaned: false,
            append: false,
        }
    }

    fn append_settled(&mut self, f: FileId) {
        if let Ok(fe) = self.files.entry_mut(f) {
            fe.appends_in_flight = fe.appends_in_flight.saturating_sub(1);
        }
    }

    /// Puts a group of entries (a link chain, or one op) into the kernel, or
    /// into the backlog when the slab has no room. Never fails.
    fn enqueue_one(&mut self, e: Entry) {
        if let Some(f) = e.file {
            if let Ok(fe) = self.files.entry_mut(f) {
                fe.in_flight += 1;
            }
        }
        if e.token != NO_TOKEN {
            self.stats.submitted += 1;
        }
        if !self.room_for(std::slice::from_ref(&e)) {
            self.backlog.push_back(vec![e]);
            return;
        }
        match self.slab.insert(e) {
            Ok(k) => self.push_slot(k, false),
            Err(e) => self.backlog.push_back(vec![e]),
        }
    }

    fn push_slot(&mut self, k: u32, link: bool) {
        let op = self.slab.get(k).expect("live slot").op;
        // SAFETY: every pointer in `op` points into memory owned by the
        // slab entry (or its chain), which lives until this op's
        // completion is reaped in `complete`.
        while !unsafe { self.engine.push(u64::from(k), &op, link) } {
            // Queue full: hand what is queued to the kernel first.
            if self.engine.flush().is_err() {
                std::thread::yield_now();
            }
            self.unflushed = 0;
        }
        self.unflushed += 1;
    }

    fn enqueue(&mut self, mut group: Vec<Entry>) {
        if group.len() == 1 {
            return self.enqueue_one(group.pop().expect("one entry"));
        }
        for e in &group {
            if let Some(f) = e.file {
                if let Ok(fe) = self.files.entry_mut(f) {
                    fe.in_flight += 1;
                }
            }
        }
        self.stats.submitted += group.iter().filter(|e| e.token != NO_TOKEN).count() as u64;
        if self.room_for(&group) {
            self.admit(group);
        } else {
            self.backlog.push_back(group);
        }
    }

    fn admit(&mut self, group: Vec<Entry>) {
        let n = group.len();
        let mut keys = [0u32; 2];
        assert!(n <= keys.len(), "groups are one op or a two-op chain");
        for (i, e) in group.into_iter().enumerate() {
            match self.slab.insert(e) {
                Ok(k) => keys[i] = k,
                Err(_) => unreachable!("admit is called only with room for the whole group"),
            }
        }
        if n == 2 && self.engine.sq_space() < 2 {
            // A link chain must not be split across two submissions.
            let _ = self.engine.flush();
            self.unflushed = 0;
        }
        for (i, k) in keys[..n].iter().enumerate() {
            let link = self.slab.get(*k).expect("just inserted").link && i + 1 < n;
            self.push_slot(*k, link);
        }
    }

    /// Whether `group` may enter the kernel now: user ops up to
    /// `max_in_flight` and behind any backlog; internal ops (cancel, close)
    /// also into the reserve, ahead of the backlog they may be cancelling.
    fn room_for(&self, group: &[Entry]) -> bool {
        let internal = group
            .iter()
            .all(|e| matches!(e.kind, Kind::Internal | Kind::Close));
        let free = self.slab.capacity() - self.slab.len();
        if internal {
            free >= group.len()
        } else {
            self.backlog.is_empty()
                && self.slab.len() + group.len() <= self.max_in_flight
                && free >= group.len()
        }
    }

    fn admit_backlog(&mut self) {
        while let Some(g) = self.backlog.front() {
            let internal = g
                .iter()
                .all(|e| matches!(e.kind, Kind::Internal | Kind::Close));
            let limit = if internal {
                self.slab.capacity()
            } else {
                self.max_in_flight
            };
            if self.slab.len() + g.len() > limit {
                break;
            }
            let g = self.backlog.pop_front().expect("front exists");
            self.admit(g);
        }
    }

    /// Hands queued ops to the kernel: one syscall for everything submitted
    /// since the last flush.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.unflushed == 0 {
            return Ok(());
        }
        self.engine.flush()?;
        self.unflushed = 0;
        Ok(())
    }

    fn refuse_if_closed(&self) -> Result<(), i32> {
        if self.closed {
            Err(libc::ECANCELED)
        } else {
            Ok(())
        }
    }

    /// Opens `path`. Settles with the packed [`FileId`] (`Payload::Opened`).
    pub fn open(&mut self, token: u32, path: CString, flags: i32, mode: u32) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let op = Op::Open {
            path: path.as_ptr(),
            flags: flags | libc::O_CLOEXEC,
            mode,
        };
        let kind = Kind::Open {
            direct: flags & libc::O_DIRECT != 0,
            append: flags & libc::O_APPEND != 0,
        };
        self.enqueue(vec![Self::entry(token, None, kind, op, Mem::Path(path))]);
        Ok(())
    }

    /// Reads up to `buf.len` bytes at `offset` (or the file position, with
    /// [`CURRENT_POSITION`]). `user_offset` comes back in a bounce payload.
    pub fn read(
        &mut self,
        token: u32,
        id: FileId,
        buf: UserBuf,
        user_offset: usize,
        offset: u64,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let len = buf.len.min(MAX_IO);
        let (e, target) = self.file(id)?;
        let need = Self::check_direct(e, offset, len)?;
        self.urgent |= e.direct.is_some();
        let (mem, ptr, fixed) = self
            .data_for(UserBuf { ptr: buf.ptr, len }, need, false)
            .map_err(errno)?;
        let kind = match mem {
            Mem::Bounce(_) => Kind::BouncedRead { user_offset },
            _ => Kind::Plain,
        };
        let op = Op::Read {
            target,
            ptr,
            len: len as u32,
            offset,
            fixed,
        };
        self.enqueue(vec![Self::entry(token, Some(id), kind, op, mem)]);
        Ok(())
    }

    /// Writes `buf` at `offset` (or the file position).
    pub fn write(&mut self, token: u32, id: FileId, buf: UserBuf, offset: u64) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let len = buf.len.min(MAX_IO);
        let (e, target) = self.file(id)?;
        let need = Self::check_direct(e, offset, len)?;
        self.urgent |= e.direct.is_some();
        let (mem, ptr, fixed) = self
            .data_for(UserBuf { ptr: buf.ptr, len }, need, true)
            .map_err(errno)?;
        let op = Op::Write {
            target,
            ptr,
            len: len as u32,
            offset,
            fixed,
        };
        self.enqueue(vec![Self::entry(token, Some(id), Kind::Plain, op, mem)]);
        Ok(())
    }

    /// Scatter read (`write == false`) or gather write over `bufs`. Library
    /// buffers go to the kernel as they are; any user buffer makes the whole
    /// op go through one bounce block (a read then settles with a
    /// `Bounce` payload whose data the caller scatters in order).
    pub fn vectored(
        &mut self,
        token: u32,
        id: FileId,
        bufs: &[UserBuf],
        offset: u64,
        write: bool,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        if bufs.is_empty() || bufs.len() > libc::UIO_MAXIOV as usize {
            return Err(libc::EINVAL);
        }
        let total = bufs
            .iter()
            .try_fold(0usize, |a, b| a.checked_add(b.len))
            .ok_or(libc::EINVAL)?;
        if total > MAX_IO {
            return Err(libc::EINVAL);
        }
        let (e, target) = self.file(id)?;
        let need = Self::check_direct(e, offset, total)?;
        // Each segment of an O_DIRECT vector must itself be aligned; where one
        // is not, a bounce block joins them into one aligned segment.
        let pins: Option<Vec<Pinned>> = bufs
            .iter()
            .map(|b| {
                self.buffers.lookup(b.ptr, b.len).filter(|_| {
                    (b.ptr as usize).is_multiple_of(need) && (need == 1 || b.len % need == 0)
                })
            })
            .collect();
        let (op, mem, kind) = match pins {
            Some(pins) => {
                let iov: Box<[libc::iovec]> = bufs
                    .iter()
                    .map(|b| libc::iovec {
                        iov_base: b.ptr.cast(),
                        iov_len: b.len,
                    })
                    .collect();
                let (p, count) = (iov.as_ptr(), iov.len() as u32);
                let op = if write {
                    Op::Writev {
                        target,
                        iov: p,
                        count,
                        offset,
                    }
                } else {
                    Op::Readv {
                        target,
                        iov: p,
                        count,
                        offset,
                    }
                };
                (op, Mem::Vectored(iov, pins), Kind::Plain)
            }
            None => {
                let b = self.bounce.take(total).ok_or(libc::ENOMEM)?;
                self.stats.bounced += 1;
                if write {
                    let mut at = 0;
                    for u in bufs {
                        // SAFETY: u is lent for this call; b has `total` bytes.
                        unsafe { std::ptr::copy_nonoverlapping(u.ptr, b.as_ptr().add(at), u.len) };
                        at += u.len;
                    }
                }
                let p = b.as_ptr();
                let op = if write {
                    Op::Write {
                        target,
                        ptr: p,
                        len: total as u32,
                        offset,
                        fixed: None,
                    }
                } else {
                    Op::Read {
                        target,
                        ptr: p,
                        len: total as u32,
                        offset,
                        fixed: None,
                    }
                };
                let kind = if write {
                    Kind::Plain
                } else {
                    Kind::BouncedRead { user_offset: 0 }
                };
                (op, Mem::Bounce(b), kind)
            }
        };
        self.enqueue(vec![Self::entry(token, Some(id), kind, op, mem)]);
        Ok(())
    }

    /// `fsync` or `fdatasync`.
    pub fn sync(&mut self, token: u32, id: FileId, kind: SyncKind) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let (_, target) = self.file(id)?;
        let op = Op::Fsync { target, kind };
        self.enqueue(vec![Self::entry(
            token,
            Some(id),
            Kind::Plain,
            op,
            Mem::None,
        )]);
        Ok(())
    }

    /// `statx` of an open file; settles with `Payload::Stat`.
    pub fn stat(&mut self, token: u32, id: FileId) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let (e, _) = self.file(id)?;
        let fd = e.fd;
        // SAFETY: statx is plain old data; all-zero is a valid value.
        let mut out: Box<libc::statx> = Box::new(unsafe { std::mem::zeroed() });
        let op = Op::Statx {
            fd,
            out: &mut *out as *mut libc::statx,
        };
        self.enqueue(vec![Self::entry(
            token,
            Some(id),
            Kind::Stat,
            op,
            Mem::Statx(out),
        )]);
        Ok(())
    }

    /// Truncates (or extends) the file to `len` bytes. Where the engine
    /// lacks `ftruncate`, it is done right here and settles into `out`.
    pub fn truncate(
        &mut self,
        token: u32,
        id: FileId,
        len: u64,
        out: &mut Vec<Done>,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let native = self.engine.supports(Feature::Ftruncate);
        let (e, target) = self.file(id)?;
        e.append_pos = None;
        if !native {
            // The kernel lacks IORING_OP_FTRUNCATE (< 6.9): a metadata
            // update, short on every filesystem we know.
            // SAFETY: plain syscall on an fd the table owns.
            let r = unsafe { libc::ftruncate(e.fd, len as libc::off_t) };
            self.stats.submitted += 1;
            self.stats.completed += 1;
            out.push(if r == 0 {
                Done {
                    token,
                    result: 0,
                    payload: Payload::None,
                }
            } else {
                Done::err(token, last_errno())
            });
            return Ok(());
        }
        let op = Op::Ftruncate { target, len };
        self.enqueue(vec![Self::entry(
            token,
            Some(id),
            Kind::Plain,
            op,
            Mem::None,
        )]);
        Ok(())
    }

    /// Appends `buf` at the end of the file; with `sync`, a linked
    /// fsync/fdatasync follows in the same submission, and the token settles
    /// with the byte count only once the data is durable.
    pub fn append(
        &mut self,
        token: u32,
        id: FileId,
        buf: UserBuf,
        sync: Option<SyncKind>,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let len = buf.len.min(MAX_IO);
        let (e, target) = self.file(id)?;
        let offset = if e.append_mode {
            CURRENT_POSITION
        } else {
            // The end of the file as it is now (other writers, positional
            // writes and truncates included), or past our own appends still
            // in flight, which the size does not show yet.
            let size = file_size(e.fd)?;
            let pos = match e.append_pos {
                Some(p) if e.appends_in_flight > 0 => p.max(size),
                _ => size,
            };
            e.append_pos = Some(pos + len as u64);
            pos
        };
        e.appends_in_flight += 1;
        let need = Self::check_direct(e, if e.append_mode { 0 } else { offset }, len)?;
        let (mem, ptr, fixed) = self
            .data_for(UserBuf { ptr: buf.ptr, len }, need, true)
            .map_err(errno)?;
        let Some(kind) = sync else {
            let op = Op::Write {
                target,
                ptr,
                len: len as u32,
                offset,
                fixed,
            };
            let mut entry = Self::entry(token, Some(id), Kind::Plain, op, mem);
            entry.append = true;
            self.enqueue_one(entry);
            return Ok(());
        };
        let chain = Chain {
            token,
            file: id,
            data: mem,
            ptr,
            fixed,
            total: len,
            written: 0,
            offset,
            sync: kind,
            pending: 0,
            write_res: None,
            sync_res: None,
            orphaned: false,
        };
        let c = self.chains.insert(chain).map_err(|_| libc::ENOMEM)?;
        self.submit_chain(c, target);
        Ok(())
    }

    fn submit_chain(&mut self, c: u32, target: Target) {
        let ch = self.chains.get_mut(c).expect("live chain");
        ch.pending = 2;
        ch.write_res = None;
        ch.sync_res = None;
        let rest = ch.total - ch.written;
        let offset = if ch.offset == CURRENT_POSITION {
            CURRENT_POSITION
        } else {
            ch.offset + ch.written as u64
        };
        // SAFETY: ch.ptr points at ch.total bytes owned by ch.data.
        let ptr = unsafe { ch.ptr.add(ch.written) };
        let write = Op::Write {
            target,
            ptr,
            len: rest as u32,
            offset,
            fixed: ch.fixed,
        };
        let sync = Op::Fsync {
            target,
            kind: ch.sync,
        };
        let file = Some(ch.file);
        let mut w = Self::entry(NO_TOKEN, file, Kind::Chain(c), write, Mem::None);
        w.link = true;
        let s = Self::entry(NO_TOKEN, file, Kind::Chain(c), sync, Mem::None);
        self.enqueue(vec![w, s]);
        // The chain's token counts once as submitted.
        self.stats.submitted += 1;
    }

    // ----- cancellation ----------------------------------------------------

    /// Settles `token` with `ECANCELED` if it is still pending, and asks the
    /// kernel to cancel it. Returns whether it was pending.
    pub fn cancel(&mut self, token: u32, out: &mut Vec<Done>) -> bool {
        let before = out.len();
        let hit = self.cancel_inner(token, out);
        self.stats.completed += (out.len() - before) as u64;
        hit
    }

    /// See [`Driver::cancel`]. Settles `token` with `ECANCELED` if it is still pending, and asks the
    /// kernel to cancel it. Returns whether it was pending.
    fn cancel_inner(&mut self, token: u32, out: &mut Vec<Done>) -> bool {
        if token == NO_TOKEN {
            return false;
        }
        // Backlog first: never seen by the kernel, settled right here.
        for gi in 0..self.backlog.len() {
            let hit = self.backlog[gi]
                .iter()
                .any(|e| e.token == token || self.chain_token(e) == Some(token));
            if hit {
                let g = self.backlog.remove(gi).expect("index valid");
                self.drop_unsubmitted(g, out);
                return true;
            }
        }
        let keys: Vec<u32> = self
            .slab
            .iter()
            .filter(|(_, e)| {
                !e.orphaned && (e.token == token || self.chain_token(e) == Some(token))
            })
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return false;
        }
        for k in &keys {
            self.orphan(*k, out);
            let op = Op::Cancel {
                user_data: u64::from(*k),
            };
            self.enqueue(vec![Self::entry(
                NO_TOKEN,
                None,
                Kind::Internal,
                op,
                Mem::None,
            )]);
        }
        true
    }

    fn chain_token(&self, e: &Entry) -> Option<u32> {
        match e.kind {
            Kind::Chain(c) => self.chains.get(c).map(|ch| ch.token),
            _ => None,
        }
    }

    /// Marks a slab entry settled: its token (or its chain's) rejects now
    /// with `ECANCELED`; the entry stays until the kernel is done with it.
    fn orphan(&mut self, key: u32, out: &mut Vec<Done>) {
        let Some(e) = self.slab.get_mut(key) else {
            return;
        };
        if e.orphaned {
            return;
        }
        e.orphaned = true;
        let (token, kind, append, file) = (e.token, e.kind, e.append, e.file);
        if let Kind::Chain(c) = kind {
            if let Some(ch) = self.chains.get_mut(c) {
                if !ch.orphaned {
                    ch.orphaned = true;
                    out.push(Done::err(ch.token, libc::ECANCELED));
                    let f = ch.file;
                    self.append_settled(f);
                }
            }
        } else if token != NO_TOKEN {
            out.push(Done::err(token, libc::ECANCELED));
            if let (true, Some(f)) = (append, file) {
                self.append_settled(f);
            }
        }
    }

    fn drop_unsubmitted(&mut self, group: Vec<Entry>, out: &mut Vec<Done>) {
        for e in group {
            if let Some(f) = e.file {
                if let Ok(fe) = self.files.entry_mut(f) {
                    fe.in_flight = fe.in_flight.saturating_sub(1);
                }
            }
            match e.kind {
                Kind::Chain(c) => {
                    if let Some(ch) = self.chains.get_mut(c) {
                        let first = !ch.orphaned;
                        if first {
                            ch.orphaned = true;
                            out.push(Done::err(ch.token, libc::ECANCELED));
                        }
                        let f = ch.file;
                        ch.pending = ch.pending.saturating_sub(1);
                        if ch.pending == 0 {
                            self.chains.remove(c);
                        }
                        if first {
                            self.append_settled(f);
                        }
                    }
                }
                _ if e.token != NO_TOKEN => {
                    out.push(Done::err(e.token, libc::ECANCELED));
                    if let (true, Some(f)) = (e.append, e.file) {
                        self.append_settled(f);
                    }
                }
                _ => {}
            }
            self.reclaim(e.mem);
        }
    }

    fn reclaim(&mut self, mem: Mem) {
        if let Mem::Bounce(b) = mem {
            self.bounce.give(b);
        }
    }

    /// Closes a file: see [`Driver::close_file_inner`].
    pub fn close_file(&mut self, token: u32, id: FileId, out: &mut Vec<Done>) -> Result<(), i32> {
        let before = out.len();
        let r = self.close_file_inner(token, id, out);
        self.stats.completed += (out.len() - before) as u64;
        r
    }

    /// Closes a file: its pending ops settle with `ECANCELED` now, the
    /// kernel is asked to cancel those in flight, and `token` settles when
    /// the descriptor is closed. The handle is refused from here on.
    fn close_file_inner(&mut self, token: u32, id: FileId, out: &mut Vec<Done>) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let (e, _) = self.file(id)?;
        e.closing = true;
        let (fd, fixed, busy) = (e.fd, e.fixed, e.in_flight > 0);
        if busy {
            let mut i = 0;
            while i < self.backlog.len() {
                if self.backlog[i].iter().any(|e| e.file == Some(id)) {
                    let g = self.backlog.remove(i).expect("index valid");
                    self.drop_unsubmitted(g, out);
                } else {
                    i += 1;
                }
            }
            let keys: Vec<u32> = self
                .slab
                .iter()
                .filter(|(_, e)| e.file == Some(id))
                .map(|(k, _)| k)
                .collect();
            for k in &keys {
                self.orphan(*k, out);
            }
            if !keys.is_empty() {
                // By the plain fd: it names the same open file as the fixed
                // slot the ops used, and the slot is released just below.
                let op = Op::CancelFile {
                    target: Target::Fd(fd),
                };
                self.enqueue(vec![Self::entry(
                    NO_TOKEN,
                    None,
                    Kind::Internal,
                    op,
                    Mem::None,
                )]);
            }
        }
        if let Some(slot) = fixed {
            // In-flight ops hold their own reference to the file; the slot
            // can go now.
            self.engine.unregister_file(slot);
            self.stats.registered_files = self.stats.registered_files.saturating_sub(1);
            if let Ok(fe) = self.files.entry_mut(id) {
                fe.fixed = None;
            }
        }
        let op = Op::Close { fd };
        self.enqueue(vec![Self::entry(
            token,
            Some(id),
            Kind::Close,
            op,
            Mem::None,
        )]);
        Ok(())
    }

    /// Closes the driver: see [`Driver::shutdown_inner`].
    pub fn shutdown(&mut self, out: &mut Vec<Done>) {
        let before = out.len();
        self.shutdown_inner(out);
        self.stats.completed += (out.len() - before) as u64;
    }

    /// Closes the driver: every pending op settles with `ECANCELED` now and
    /// the kernel is asked to cancel them all. Keep reaping and passing
    /// completions to [`Driver::complete`] until [`Driver::pending`] is 0,
    /// then call [`Driver::finish`].
    fn shutdown_inner(&mut self, out: &mut Vec<Done>) {
        if self.closed {
            return;
        }
        self.closed = true;
        while let Some(g) = self.backlog.pop_front() {
            self.drop_unsubmitted(g, out);
        }
        let keys: Vec<u32> = self.slab.iter().map(|(k, _)| k).collect();
        for k in &keys {
            self.orphan(k.to_owned(), out);
        }
        if !keys.is_empty() {
            self.enqueue(vec![Self::entry(
                NO_TOKEN,
                None,
                Kind::Internal,
                Op::CancelAll,
                Mem::None,
            )]);
        }
        let _ = self.flush();
    }

    /// Closes every file still open and forgets library buffers. Call once
    /// nothing is pending.
    pub fn finish(&mut self) {
        for id in self.files.ids() {
            if let Ok(e) = self.files.remove(id) {
                // SAFETY: the table owned this fd; nothing uses it any more.
                unsafe { libc::close(e.fd) };
            }
        }
        self.buffers.clear();
    }

    /// Flushes, and reaps into `out` what completed meanwhile (see
    /// [`Engine::flush_and_reap`]). Pass the completions to `complete`.
    pub fn flush_and_reap(&mut self, out: &mut Vec<Cqe>) -> io::Result<()> {
        self.engine.flush_and_reap(out)?;
        self.unflushed = 0;
        Ok(())
    }

    /// Whether an op queued since the last call wants submitting at once.
    ///
    /// Ops on O_DIRECT files do: on a single-queue virtio disk, batching
    /// them per JS run lowered 4 KiB reads at 32 in flight from ~85k to
    /// ~66-69k/s (fio showed the same), while page-cache reads gain from
    /// batching. Measured numbers are in the foundation issue's note.
    pub fn take_urgent(&mut self) -> bool {
        std::mem::take(&mut self.urgent)
    }

    /// Makes a thread blocked in [`Engine::wait`] return.
    pub fn wake(&self) {
        self.engine.wake();
    }

    // ----- completion ------------------------------------------------------

    /// Settles the op behind `cqe` into `out`, then admits waiting ops.
    pub fn complete(&mut self, cqe: Cqe, out: &mut Vec<Done>) {
        let before = out.len();
        self.complete_one(cqe, out);
        self.stats.completed += (out.len() - before) as u64;
        self.admit_backlog();
    }

    fn complete_one(&mut self, cqe: Cqe, out: &mut Vec<Done>) {
        if cqe.user_data == WAKE {
            return;
        }
        let Some(e) = self.slab.remove(cqe.user_data as u32) else {
            return;
        };
        if let Some(f) = e.file {
            if let Ok(fe) = self.files.entry_mut(f) {
                fe.in_flight = fe.in_flight.saturating_sub(1);
            }
        }
        let res = cqe.result;
        match e.kind {
            Kind::Chain(c) => self.complete_chain(c, &e, res, out),
            _ if e.orphaned => {
                if let Kind::Open { .. } = e.kind {
                    if res >= 0 {
                        // SAFETY: the kernel just gave us this fd; nobody else has it.
                        unsafe { libc::close(res) };
                    }
                }
                self.reclaim(e.mem);
            }
            Kind::Internal => {}
            Kind::Open { direct, append } => out.push(self.opened(e.token, res, direct, append)),
            Kind::Close => {
                if let Some(f) = e.file {
                    let _ = self.files.remove(f);
                }
                out.push(Done {
                    token: e.token,
                    result: res.min(0).into(),
                    payload: Payload::None,
                });
            }
            Kind::BouncedRead { user_offset } => {
                let payload = match e.mem {
                    Mem::Bounce(mut b) if res > 0 => {
                        b.set_len(res as usize);
                        Payload::Bounce {
                            buf: b,
                            user_offset,
                        }
                    }
                    mem => {
                        self.reclaim(mem);
                        Payload::None
                    }
                };
                out.push(Done {
                    token: e.token,
                    result: res.into(),
                    payload,
                });
            }
            Kind::Plain => {
                if let (true, Some(f)) = (e.append, e.file) {
                    self.append_settled(f);
                    if res < 0 {
                        // The cursor may now run past the file: relearn it.
                        if let Ok(fe) = self.files.entry_mut(f) {
                            fe.append_pos = None;
                        }
                    }
                }
                self.reclaim(e.mem);
                out.push(Done {
                    token: e.token,
                    result: res.into(),
                    payload: Payload::None,
                });
            }
            Kind::Stat => {
                let payload = match e.mem {
                    Mem::Statx(s) if res >= 0 => Payload::Stat(s),
                    _ => Payload::None,
                };
                out.push(Done {
                    token: e.token,
                    result: res.into(),
                    payload,
                });
            }
        }
    }

    fn opened(&mut self, token: u32, res: i32, direct: bool, append: bool) -> Done {
        if res < 0 {
            return Done::err(token, -res);
        }
        let fd = res;
        let mut fe = FileEntry::new(fd);
        fe.append_mode = append;
        if direct {
            fe.direct = Some(dio_align(fd));
        }
        let id = match self.files.insert(fe) {
            Ok(id) => id,
            Err(e) => {
                // SAFETY: we own the fd the kernel just opened.
                unsafe { libc::close(fd) };
                return Done::err(token, file_errno(e));
            }
        };
        if id.index < self.engine.fixed_file_slots()
            && self.engine.register_file(id.index, fd).is_ok()
        {
            if let Ok(fe) = self.files.entry_mut(id) {
                fe.fixed = Some(id.index);
                self.stats.registered_files += 1;
            }
        }
        Done {
            token,
            result: id.pack() as i64,
            payload: Payload::Opened(id),
        }
    }

    fn complete_chain(&mut self, c: u32, e: &Entry, res: i32, out: &mut Vec<Done>) {
        let is_write = matches!(e.op, Op::Write { .. });
        let Some(ch) = self.chains.get_mut(c) else {
            return;
        };
        if is_write {
            ch.write_res = Some(res);
        } else {
            ch.sync_res = Some(res);
        }
        ch.pending -= 1;
        if ch.pending > 0 {
            return;
        }
        if ch.orphaned {
            let ch = self.chains.remove(c).expect("live chain");
            self.reclaim(ch.data);
            return;
        }
        let w = ch.write_res.unwrap_or(-libc::ECANCELED);
        let rest = ch.total - ch.written;
        let outcome: Option<i64> = if w < 0 {
            Some(w.into())
        } else if (w as usize) < rest {
            if w == 0 {
                Some((-libc::ENOSPC).into())
            } else {
                ch.written += w as usize;
                None
            }
        } else {
            ch.written += w as usize;
            match ch.sync_res {
                Some(s) if s < 0 => Some(s.into()),
                _ => Some(ch.written as i64),
            }
        };
        match outcome {
            Some(result) => {
                let ch = self.chains.remove(c).expect("live chain");
                self.append_settled(ch.file);
                if result < 0 {
                    // The append cursor no longer matches the file: relearn it.
                    if let Ok(fe) = self.files.entry_mut(ch.file) {
                        fe.append_pos = None;
                    }
                }
                out.push(Done {
                    token: ch.token,
                    result,
                    payload: Payload::None,
                });
                self.reclaim(ch.data);
            }
            None => {
                // Short write: the kernel cancelled the linked sync; write the
                // rest and sync again.
                let file = ch.file;
                match self.file(file) {
                    Ok((_, target)) => {
                        self.stats.submitted = self.stats.submitted.saturating_sub(1);
                        self.submit_chain(c, target);
                    }
                    Err(errno) => {
                        let ch = self.chains.remove(c).expect("live chain");
                        self.append_settled(ch.file);
                        out.push(Done::err(ch.token, errno));
                        self.reclaim(ch.data);
                    }
                }
            }
        }
    }
}

fn last_errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn file_size(fd: i32) -> Result<u64, i32> {
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is owned by the file table; st is a valid out pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(last_errno());
    }
    Ok(st.st_size as u64)
}

/// `O_DIRECT` alignment from `statx(STATX_DIOALIGN)`, or 512/512 (the
/// smallest logical block) where the filesystem does not say.
fn dio_align(fd: i32) -> DioAlign {
    // SAFETY: statx is plain old data; all-zero is valid.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd, NUL-terminated empty path with AT_EMPTY_PATH, valid out pointer.
    let r = unsafe {
        libc::statx(
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_DIOALIGN,
            &mut stx,
        )
    };
    if r == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_offset_align != 0 {
        DioAlign {
            mem: stx.stx_dio_mem_align.max(1),
            offset: stx.stx_dio_offset_align,
        }
    } else {
        DioAlign {
            mem: 512,
            offset: 512,
        }
    }
}

// The driver holds raw pointers (in Chain) into memory it owns; it is used
// from one thread at a time behind the node binding's lock.
// SAFETY: every raw pointer in the driver points into heap memory owned by
// the driver itself (slab entries, chains), never into thread-local data.
unsafe impl Send for Driver {}
