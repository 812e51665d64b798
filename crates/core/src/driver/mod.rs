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

mod cancel;
mod complete;
mod drain;
mod group_commit;
mod net;
mod net_complete;
mod order;
mod path;
mod queue;
mod submit;
mod whole_file;

pub use net::{NetConfig, SockOption};
pub use path::PathOp;
use whole_file::{WholeRead, WholeStep, WHOLE_SLOTS};

use crate::buffer::{AlignedBuf, BouncePool, BufferRegistry, Pinned, Registration};
use crate::engine::{Engine, Feature};
use crate::file_table::{DioAlign, FileEntry, FileError, FileId, FileTable};
use crate::op::{Cqe, Link, Op, Statx, SyncKind, Target, Timespec, CURRENT_POSITION, END_OF_FILE};
use crate::slab::Slab;
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::io;
use std::sync::Arc;

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
/// Most iovecs in one vectored op: Linux's `UIO_MAXIOV` (macOS's
/// `IOV_MAX` is the same 1024).
const MAX_IOV: usize = 1024;
/// Bytes of bounce memory the ops of one driver may hold at once. An op
/// whose bounce block would go past it is refused with [`WAIT_FOR_MEMORY`]
/// (unless no other op holds any, so one op of any size can always run):
/// the caller submits it again once earlier ops gave memory back. Without
/// it, 1,000 writes of one 1 MiB Buffer held 1 GB of copies at once.
pub const BOUNCE_BUDGET: usize = 32 << 20;
/// Not an errno: "no bounce memory now, submit again after a completion"
/// (see [`BOUNCE_BUDGET`]). Below 4096, so it fits readMany's encoding.
pub const WAIT_FOR_MEMORY: i32 = 4000;

/// Options of a driver.
#[derive(Clone, Debug)]
pub struct DriverConfig {
    /// Ops in the kernel at once; more wait in the backlog. Long-lived
    /// multishot ops (accept, recv) do not count.
    pub max_in_flight: usize,
    pub net: NetConfig,
    /// A whole-file read larger than its first round goes on in the
    /// blocking lane where the engine can hand it over
    /// ([`Feature::FixedInstall`]); `false` reads it on in rounds on the
    /// ring, as kernels without that feature do.
    pub whole_rest_in_lane: bool,
    /// Synced appends to one file in flight together share fsyncs (see
    /// `group_commit.rs`); `false` makes each durable on its own, as
    /// [`DriverConfig::lone_sync`] says.
    pub group_commit: bool,
    /// How a synced append that does not share a group fsync becomes
    /// durable.
    pub lone_sync: LoneSync,
}

/// How a synced append becomes durable on its own (the one append syncing
/// its file, or every append without group commit).
///
/// The default is [`LoneSync::WriteFlag`]: one op instead of two (one
/// io-wq hand-off on io_uring, one syscall on mio), less CPU per append on
/// both engines, and as fast or a little faster: with one appender of
/// 4 KiB on ext4 (benches/wal-ab.ts --appenders=1 --rounds=80 --slice=0.3,
/// two runs on a loaded machine), the `RWF_DSYNC` write made 1.05x and
/// 1.02x the appends/s of the linked pair on io_uring (faster in 42 and 42
/// of 80 rounds) and 1.20x and 1.04x on mio (55 and 45 of 80), at 173 and
/// 234 CPU µs per append against 182 and 246 on io_uring, 146 and 219
/// against 170 and 229 on mio; a third run, after merging main: 1.04x
/// (44 of 80) on io_uring, 1.10x (50 of 80) on mio, CPU 152 against 170
/// and 147 against 163. `strace -f -c` of 1,000 appends on mio: 7,448
/// syscalls against 8,456 (no fdatasync). Device latency dominates the
/// rest.
///
/// With group commit, a lone append goes as one durable write only when
/// its file has one appender: a durable write holds the file's order gate
/// until the data is durable (the write and the sync are one op), so the
/// appends that come behind it wait a whole device flush before their own
/// write starts, where a linked pair lets them go as soon as its write is
/// done. With 32 appenders of 4 KiB on one handle
/// (`benches/wal-ab.ts --appenders=32`), the lone append as a durable
/// write made 55.0k appends/s against 63.1k linked (and 56.1k against
/// 68.0k, 23.5k against 27.1k in other runs). So a file whose last lone
/// append saw another append come while it was in flight sends its next
/// lone append linked (see `Driver::sync_alone`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoneSync {
    /// Its write linked to an `fdatasync`/`fsync`: two ops in one
    /// submission.
    Linked,
    /// One write with `RWF_DSYNC`/`RWF_SYNC` (see [`Op::Write`]).
    WriteFlag,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            max_in_flight: 1024,
            net: NetConfig::default(),
            whole_rest_in_lane: true,
            group_commit: true,
            lone_sync: LoneSync::WriteFlag,
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
    Stat(Box<Statx>),
    /// A blocking-lane call that succeeded, with what it produced.
    Call(Box<crate::op::BlockingCall>),
    Opened(FileId),
    /// One event of a receive stream: `result` bytes arrived in provided
    /// buffer `bid`. Read them with [`Driver::received`], then give the
    /// buffer back with [`Driver::recycle_received`]. The token stays
    /// pending (more events follow).
    Received {
        bid: u16,
        /// The bytes: `result` of them, valid until the buffer is recycled.
        data: *const u8,
    },
    /// One event of an accept stream: a connection, now the socket `result`
    /// (a packed [`FileId`]). The token stays pending.
    Accepted(FileId),
}

impl Payload {
    /// Whether the token stays pending after this event (a stream's
    /// events); every other settlement is final.
    pub fn more(&self) -> bool {
        matches!(self, Payload::Received { .. } | Payload::Accepted(_))
    }
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
    pub sockets: usize,
    pub sends: u64,
    /// Of `sends`, those the socket took whole during their call, with no
    /// kernel op (a large one, or a lone one: see `Driver::send`).
    pub sent_at_once: u64,
    pub zero_copy_sends: u64,
    pub zero_copy_copied: u64,
    pub zero_copy_supported: bool,
    pub recv_buffers_in_use: usize,
    pub recv_rearms: u64,
    /// What the engine does differently from io_uring (empty on io_uring).
    pub degradations: Vec<String>,
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
    Statx(Box<Statx>),
    /// The paths of an op on names (the CStrings own the bytes it points at).
    Paths(#[allow(dead_code)] Vec<CString>),
    /// A stat by path: the path and the statx buffer.
    PathStat(#[allow(dead_code)] CString, Box<Statx>),
    /// A call of the blocking lane, with its arguments and result.
    Call(Box<crate::op::BlockingCall>),
    /// A socket address for connect.
    Addr(#[allow(dead_code)] Box<libc::sockaddr_storage>),
    /// A linked timeout's duration.
    Timeout(#[allow(dead_code)] Box<Timespec>),
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
    /// A call of the blocking lane: settles with the call back.
    Call,
    /// A member of an append chain.
    Chain(u32),
    /// The fsync a group of synced appends shares (see `group_commit.rs`).
    GroupSync(u32),
    /// One round of the `writev` of a batch of grouped appends.
    BatchWrite(u32),
    /// An op of a whole-file read (see `whole_file.rs`).
    Whole(u32, WholeStep),
    /// The close of a whole-file read's fixed slot.
    SlotClose(u32),
    Internal,
    /// The multishot accept of a listening socket (a stream).
    Accept,
    /// The multishot receive of a socket (a stream).
    Recv,
    /// A connect; `timed` when a linked timeout follows it.
    Connect {
        timed: bool,
    },
    /// One submission of the send `key` (of the net send slab).
    Send {
        key: crate::net::send_slab::SendKey,
        zero_copy: bool,
    },
    /// A `shutdown(SHUT_WR)` queued behind a socket's sends.
    SockShutdown,
    /// A send the socket took whole before its submit call returned (no
    /// kernel op: its completion is made up, see `Driver::instant`).
    SentAtOnce,
}

impl Kind {
    /// Multishot ops that live as long as their stream, outside the
    /// `max_in_flight` budget.
    fn is_stream(self) -> bool {
        matches!(self, Kind::Accept | Kind::Recv)
    }
}

struct Entry {
    token: u32,
    file: Option<FileId>,
    kind: Kind,
    op: Op,
    mem: Mem,
    /// How the op queued after it in its group is tied to it.
    link: Link,
    /// Settled early (a socket's op at close, an open at ring close): the
    /// completion only frees the entry.
    orphaned: bool,
    /// Where the op stands in its file's order (see `order.rs`).
    order: order::Order,
    /// It passed its file's order gate (and counts in `mutating`).
    gated: bool,
    /// A cancel for it was sent to the engine already.
    cancel_sent: bool,
    /// Bytes a positional read got in earlier rounds (see
    /// `Driver::continue_read`).
    partial: u32,
}

/// A synced append (its write, and what makes it durable), settling one token.
struct Chain {
    token: u32,
    file: FileId,
    data: Mem,
    ptr: *const u8,
    fixed: Option<u16>,
    total: usize,
    written: usize,
    sync: SyncKind,
    pending: u8,
    write_res: Option<i32>,
    sync_res: Option<i32>,
    orphaned: bool,
    /// The chain passed its file's order gate (it holds the barrier until
    /// its write is done).
    gated: bool,
    /// How it becomes durable: its write alone with a group fsync, or on
    /// its own (see `Driver::sync_alone`).
    how: group_commit::Alone,
}

impl Chain {
    /// Its write goes alone and a group fsync makes it durable.
    fn grouped(&self) -> bool {
        self.how == group_commit::Alone::Grouped
    }
}

/// Per-Ring op table over one engine.
pub struct Driver {
    engine: Arc<dyn Engine>,
    slab: Slab<Entry>,
    backlog: VecDeque<Vec<Entry>>,
    /// Groups waiting at their file's order gate, oldest first.
    held: Vec<(FileId, Vec<Entry>)>,
    chains: Slab<Chain>,
    /// Whole-file reads in progress, and the free fixed slots kept for them.
    wholes: Slab<WholeRead>,
    whole_slots: Vec<u32>,
    /// Fixed slots kept for whole-file reads (0: the engine has no fixed opens).
    whole_slots_total: u32,
    /// The rest of a larger whole-file read goes to the lane.
    whole_rest_in_lane: bool,
    group_commit: bool,
    lone_sync: LoneSync,
    /// Per file, its synced appends between write and fsync.
    sync_groups: HashMap<FileId, group_commit::SyncGroup>,
    batches: Slab<group_commit::Batch>,
    files: FileTable,
    buffers: BufferRegistry,
    bounce: BouncePool,
    stats: Stats,
    unflushed: usize,
    /// Of `unflushed`, the file reads (see `Driver::reads_to_hand_off`).
    unflushed_reads: usize,
    /// Of `unflushed`, those queued by a call that queues many at once
    /// (see `Driver::queued_as_group`).
    grouped: usize,
    closed: bool,
    max_in_flight: usize,
    /// An op on an O_DIRECT file was queued: submit it now rather than
    /// with the batch (see [`Driver::take_urgent`]).
    urgent: bool,
    /// Slab entries of streams (multishot accept and recv).
    streams: usize,
    net: net::Net,
    /// Completions of ops done before their submit call returned (a send
    /// the socket took whole at once, see `Driver::send`), handed out with
    /// the next [`Driver::flush_and_reap`].
    instant: Vec<Cqe>,
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
        let slots = engine.fixed_file_slots();
        let whole_slots_total = if engine.supports(Feature::FixedOpen) && slots >= 2 * WHOLE_SLOTS {
            WHOLE_SLOTS
        } else {
            0
        };
        Driver {
            wholes: Slab::with_capacity(usize::MAX),
            whole_slots: (slots - whole_slots_total..slots).rev().collect(),
            whole_slots_total,
            whole_rest_in_lane: cfg.whole_rest_in_lane && engine.supports(Feature::FixedInstall),
            group_commit: cfg.group_commit,
            lone_sync: cfg.lone_sync,
            sync_groups: HashMap::new(),
            batches: Slab::with_capacity(usize::MAX),
            engine,
            slab: Slab::with_capacity(cfg.max_in_flight.max(2) + RESERVE + net::MAX_STREAMS),
            backlog: VecDeque::new(),
            held: Vec::new(),
            chains: Slab::with_capacity(usize::MAX),
            files: FileTable::new(),
            buffers: BufferRegistry::new(fixed_buffers),
            bounce: BouncePool::new(BUFFER_ALIGN),
            stats: Stats::default(),
            unflushed: 0,
            unflushed_reads: 0,
            grouped: 0,
            closed: false,
            max_in_flight: cfg.max_in_flight.max(2),
            urgent: false,
            streams: 0,
            net: net::Net::new(cfg.net),
            instant: Vec::new(),
        }
    }

    pub fn engine(&self) -> &Arc<dyn Engine> {
        &self.engine
    }

    /// Ops in the kernel plus ops waiting in the backlog or at a gate.
    pub fn pending(&self) -> usize {
        self.slab.len() + self.queued()
    }

    /// Whether an op is pending whose token is not in `weak` (ops of the
    /// driver's own, such as a cancel, count as pending). The tokens of
    /// unref'd streams (`socket.unref()`) are weak: they alone must not
    /// keep the process alive.
    pub fn pending_besides(&self, weak: &std::collections::HashSet<u32>) -> bool {
        self.slab.iter().any(|(_, e)| !weak.contains(&e.token))
            || self
                .backlog
                .iter()
                .flatten()
                .any(|e| !weak.contains(&e.token))
            || self
                .held
                .iter()
                .flat_map(|(_, g)| g)
                .any(|e| !weak.contains(&e.token))
    }

    /// Ops waiting in the backlog or at a file's order gate.
    fn queued(&self) -> usize {
        self.backlog.iter().map(Vec::len).sum::<usize>()
            + self.held.iter().map(|(_, g)| g.len()).sum::<usize>()
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats.clone();
        s.in_flight = self.slab.len();
        s.queued = self.queued();
        s.open_files = self.files.len();
        s.registered_buffers = self.buffers.registered();
        s.unregistered_buffers = self.buffers.len() - self.buffers.registered();
        let (failures, errno) = self.buffers.failures();
        s.buffer_registration_failures = failures;
        s.buffer_registration_errno = errno;
        self.net.stats(&mut s, self.engine.as_ref());
        s.degradations = self.engine.degradations();
        s
    }

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
    ) -> Result<(Mem, *mut u8, Option<u16>), i32> {
        if let Some(pin) = self.buffers.lookup(buf.ptr, buf.len) {
            if (buf.ptr as usize).is_multiple_of(need) {
                let fixed = pin.fixed;
                if fixed.is_some() {
                    self.stats.fixed_buffer_ops += 1;
                }
                return Ok((Mem::Pinned(pin), buf.ptr, fixed));
            }
        }
        let mut b = self.take_bounce(buf.len)?;
        if copy_in && buf.len > 0 {
            // SAFETY: the caller lends buf.ptr for buf.len bytes during this call;
            // b holds at least buf.len bytes; the two never overlap.
            unsafe { std::ptr::copy_nonoverlapping(buf.ptr, b.as_ptr(), buf.len) };
        }
        self.stats.bounced += 1;
        let p = b.as_mut_slice().as_mut_ptr();
        Ok((Mem::Bounce(b), p, None))
    }

    /// A bounce block of `len` bytes within [`BOUNCE_BUDGET`], or
    /// [`WAIT_FOR_MEMORY`] while other ops hold too much.
    fn take_bounce(&mut self, len: usize) -> Result<AlignedBuf, i32> {
        let out = self.bounce.outstanding();
        if out > 0 && out + len > BOUNCE_BUDGET {
            return Err(WAIT_FOR_MEMORY);
        }
        self.bounce.take(len).ok_or(libc::ENOMEM)
    }

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
                let known = offset != CURRENT_POSITION && offset != END_OF_FILE;
                if (known && !offset.is_multiple_of(o)) || !(len as u64).is_multiple_of(o) {
                    return Err(libc::EINVAL);
                }
                Ok(a.mem.max(1) as usize)
            }
            None => Ok(1),
        }
    }

    fn entry(token: u32, file: Option<FileId>, kind: Kind, op: Op, mem: Mem) -> Entry {
        Entry {
            token,
            file,
            kind,
            op,
            mem,
            link: Link::None,
            orphaned: false,
            order: order::Order::Free,
            gated: false,
            cancel_sent: false,
            partial: 0,
        }
    }

    fn refuse_if_closed(&self) -> Result<(), i32> {
        if self.closed {
            Err(libc::ECANCELED)
        } else {
            Ok(())
        }
    }

    /// Runs `f`, counting every op it settles into `out` as completed (the
    /// one place `stats().completed` moves, so it always matches settled ops).
    fn counting<R>(
        &mut self,
        out: &mut Vec<Done>,
        f: impl FnOnce(&mut Self, &mut Vec<Done>) -> R,
    ) -> R {
        let before = out.len();
        let r = f(self, out);
        self.stats.completed += (out.len() - before) as u64;
        r
    }

    /// Closes a descriptor the driver owns and no op uses, directly (not
    /// through an op), through the engine (which forgets it first): the one
    /// place the driver closes descriptors itself.
    fn close_fd(&self, fd: i32) {
        self.engine.close_fd(fd);
    }

    fn reclaim(&mut self, mem: Mem) {
        if let Mem::Bounce(b) = mem {
            self.bounce.give(b);
        }
    }
}

fn errno(e: io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

// The driver holds raw pointers (in Chain) into memory it owns; it is used
// from one thread at a time behind the node binding's lock.
// SAFETY: every raw pointer in the driver points into heap memory owned by
// the driver itself (slab entries, chains), never into thread-local data.
unsafe impl Send for Driver {}
