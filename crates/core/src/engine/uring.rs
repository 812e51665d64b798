//! The io_uring engine: ops become SQEs, CQEs become completions.
//!
//! The submission queue is filled only by the driver's thread; the
//! completion queue is shared by the completion thread and the driver's
//! thread (which reaps inline right after a flush, where buffered reads that
//! hit the page cache have usually completed already), under a lock. At
//! depth the driver's thread may hand submitting over to the completion
//! thread (`submit_queued`), which submits in parts while it goes on.

use super::blocking::{self as pool, Job, Pool, Step};
use super::eventfd::{self, EventFd};
use super::{Engine, EngineConfig, Feature, MAX_CHAIN};
use crate::net::send_slab::SEND_ZC_REPORT_USAGE;
use crate::op::{Cqe, Link, Op, SyncKind, Target, END_OF_FILE};
use io_uring::{opcode, squeue, types, IoUring, Probe};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// An io_uring instance.
pub struct UringEngine {
    ring: IoUring,
    /// Signalled by the kernel for every completion posted while it is
    /// enabled, and by `wake`. The completion thread sleeps on it.
    /// `flush_and_reap` mutes it around the submitting thread's own submit,
    /// whose inline completions that thread reaps itself: no wake-up of the
    /// completion thread per batch. (`IORING_REGISTER_EVENTFD_ASYNC` was
    /// tried first and lost wake-ups: it signals only io-wq completions, not
    /// task_work ones such as O_DIRECT or async buffered reads.)
    eventfd: EventFd,
    sq_lock: Mutex<SqSide>,
    /// Guards the CQ; holds the completions taken since overflowed ones
    /// were last moved back (see `drain`).
    cq_lock: Mutex<usize>,
    /// A `submit_queued` call is in `io_uring_enter` without `sq_lock`,
    /// for the count of ops it chose under it: no other submit may run
    /// meanwhile, or that count could end inside a link chain that was
    /// pushed behind the ops it was chosen for (see `submit`).
    part_busy: AtomicBool,
    sqpoll: bool,
    fixed_files: u32,
    fixed_buffers: u16,
    has_ftruncate: bool,
    has_send_zc: bool,
    has_fixed_install: bool,
    /// The blocking lane: calls with no opcode ([`Op::Blocking`]) run on
    /// these threads (the mio engine's file pool, started as needed). Their
    /// completions wait in `lane_done` and ring `eventfd`, so the thread
    /// sleeping on it wakes and drains them with the ring's.
    lane: Arc<Pool>,
    lane_done: Arc<pool::Done>,
    /// Lane calls not drained yet: `drain` skips the lane's lock at 0.
    lane_pending: AtomicUsize,
}

/// What the submitting thread keeps beside the SQ, under `sq_lock`.
///
/// A read that is alone in its flush is kept out of the SQ (`held`) until
/// the flush: if it is a page-cache read of a regular file, the flush does
/// it with one `preadv2(RWF_NOWAIT)` on the submitting thread, as the mio
/// engine does, and reports it as a completion. One `io_uring_enter` of one
/// buffered read cost more in the kernel than that (fio, 4 KiB page-cache
/// reads at 1 in flight: 2.1 us of CPU per read with io_uring, 1.5 with
/// psync and 1.6 with pvsync2). A read that would wait for the device
/// (`EAGAIN`), a short one, and any read that is not alone in its flush go
/// through the ring as before.
#[derive(Default)]
struct SqSide {
    held: Option<(u64, Op)>,
    /// The descriptor registered in each file slot (-1: none).
    slot_fds: Vec<i32>,
    /// By descriptor: whether it is a regular file without `O_DIRECT` (an
    /// `O_DIRECT` read would wait for the device even with `RWF_NOWAIT`):
    /// 0 not known yet, 1 yes, 2 no.
    cached: Vec<u8>,
    /// Ops put in the SQ so far (wrapping): the SQ holds the last `len`.
    pushed: u32,
    /// `pushed` right after the last link chain was put in the SQ.
    chain_end: u32,
}

impl SqSide {
    /// How many of the `len` ops in the SQ to submit for a part of `want`:
    /// `want`, or up to the end of the last chain if one would be cut.
    /// Chains go in in push order, so every chain ends at or before the
    /// last one's end.
    fn part(&self, len: usize, want: usize) -> usize {
        if want >= len {
            return len;
        }
        let start = self.pushed.wrapping_sub(len as u32);
        let end = self.chain_end.wrapping_sub(start) as usize;
        if end > want && end <= len {
            end
        } else {
            want
        }
    }

    /// The descriptor and offset of a read that may be tried inline.
    fn inline_target(&mut self, op: &Op) -> Option<i32> {
        let Op::Read { target, offset, .. } = *op else {
            return None;
        };
        // A read at the file position moves it: it could not be redone
        // through the ring after a short read here.
        if offset == crate::op::CURRENT_POSITION {
            return None;
        }
        let fd = match target {
            Target::Fd(fd) => fd,
            Target::Fixed(slot) => *self.slot_fds.get(slot as usize)?,
        };
        let i = usize::try_from(fd).ok()?;
        if i >= self.cached.len() {
            self.cached.resize(i + 1, 0);
        }
        if self.cached[i] == 0 {
            self.cached[i] = if is_cached_file(fd) { 1 } else { 2 };
        }
        (self.cached[i] == 1).then_some(fd)
    }

    /// Forgets what it knew of the descriptors and slots `op` closes.
    fn closing(&mut self, op: &Op) {
        match *op {
            Op::Close { fd } => {
                if let Some(c) = usize::try_from(fd)
                    .ok()
                    .and_then(|i| self.cached.get_mut(i))
                {
                    *c = 0;
                }
            }
            Op::OpenFixed { slot, .. } | Op::CloseFixed { slot } => self.set_slot(slot, -1),
            _ => {}
        }
    }

    fn set_slot(&mut self, slot: u32, fd: i32) {
        let i = slot as usize;
        if i >= self.slot_fds.len() {
            if fd < 0 {
                return;
            }
            self.slot_fds.resize(i + 1, -1);
        }
        self.slot_fds[i] = fd;
    }
}

/// Whether `fd` is a regular file opened without `O_DIRECT`.
fn is_cached_file(fd: i32) -> bool {
    // SAFETY: stat is plain old data; all-zero is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out pointer; a bad fd just fails.
    if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return false;
    }
    // SAFETY: plain fcntl on a descriptor the driver owns.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl >= 0 && fl & libc::O_DIRECT == 0
}

/// The read `op` on `fd`, done now if the page cache holds all of it (or
/// it is past the end of the file): its result, else `None`.
fn read_nowait(fd: i32, op: &Op) -> Option<i32> {
    let Op::Read {
        ptr, len, offset, ..
    } = *op
    else {
        return None;
    };
    let iov = libc::iovec {
        iov_base: ptr.cast(),
        iov_len: len as usize,
    };
    // SAFETY: the op's memory is writable for len bytes until its
    // completion is reaped (Engine::push's contract); iov lives for the call.
    let r = unsafe {
        crate::engine::glibc_compat::preadv2(fd, &iov, 1, offset as i64, libc::RWF_NOWAIT)
    };
    // A full read, or the end of the file. A short one may be a read that
    // found only part of its data cached: the ring reads it all again.
    (r == len as isize || r == 0).then_some(r as i32)
}

/// Opcodes the engine issues; a kernel missing any of them is not used.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::Nop::CODE, "NOP"),
    (opcode::OpenAt::CODE, "OPENAT"),
    (opcode::Close::CODE, "CLOSE"),
    (opcode::Read::CODE, "READ"),
    (opcode::Write::CODE, "WRITE"),
    (opcode::Readv::CODE, "READV"),
    (opcode::Writev::CODE, "WRITEV"),
    (opcode::ReadFixed::CODE, "READ_FIXED"),
    (opcode::WriteFixed::CODE, "WRITE_FIXED"),
    (opcode::Fsync::CODE, "FSYNC"),
    (opcode::Statx::CODE, "STATX"),
    (opcode::UnlinkAt::CODE, "UNLINKAT"),
    (opcode::RenameAt::CODE, "RENAMEAT"),
    (opcode::MkDirAt::CODE, "MKDIRAT"),
    (opcode::SymlinkAt::CODE, "SYMLINKAT"),
    (opcode::LinkAt::CODE, "LINKAT"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Connect::CODE, "CONNECT"),
    (opcode::LinkTimeout::CODE, "LINK_TIMEOUT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Shutdown::CODE, "SHUTDOWN"),
];

/// `io_uring_enter` flag: wait for (and flush overflowed) completions
/// (`include/uapi/linux/io_uring.h`; the io-uring crate keeps it private).
const IORING_ENTER_GETEVENTS: u32 = 1;

/// Flags of every send: no SIGPIPE on a closed peer, and the kernel keeps
/// going until every byte is sent (the driver still handles short sends).
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL | libc::MSG_WAITALL;

/// Why io_uring could not be set up: the syscall's errno and a sentence.
#[derive(Debug)]
pub struct SetupError {
    pub errno: i32,
    pub reason: String,
}

impl UringEngine {
    /// Sets up a ring, probes the opcodes it needs, and prepares sparse
    /// registered file and buffer tables.
    pub fn new(cfg: &EngineConfig) -> Result<UringEngine, SetupError> {
        // A whole link chain goes in one submission (MAX_CHAIN ops); the
        // kernel rounds the queue up to a power of two, and refuses a
        // completion queue smaller than it.
        let entries = cfg.entries.max(MAX_CHAIN as u32).next_power_of_two();
        let builder = |coop: bool| {
            let mut b = IoUring::builder();
            b.setup_cqsize(cfg.cq_entries.max(entries)).setup_clamp();
            if cfg.sqpoll {
                b.setup_sqpoll(2000);
            }
            // Without COOP_TASKRUN, the kernel interrupts the submitting
            // thread (the JS thread) with an IPI for every completion that
            // needs its task work (a socket's receive, a send's retry, an
            // O_DIRECT read's end), while it runs JavaScript. With it, the
            // work waits for that thread's next syscall; a thread asleep in
            // one (epoll_wait in the loop) is still woken for it. Nothing
            // here spins on the completion queue without a syscall, so
            // nothing waits longer than the JS thread's next trip into the
            // kernel, which it makes anyway before it can take a completion.
            // Measured: node:http's small JSON response on ringline sockets
            // went from 27 to 16 µs of server CPU per request (README).
            if coop {
                b.setup_coop_taskrun();
            }
            b
        };
        // COOP_TASKRUN is Linux 5.19; an older kernel refuses the flag.
        let ring = match builder(true).build(entries) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => builder(false).build(entries),
            r => r,
        };
        let ring = ring.map_err(|e| {
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            SetupError {
                errno,
                reason: format!("io_uring_setup: {}", describe_setup_errno(errno)),
            }
        })?;
        let mut probe = Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| SetupError {
                errno: e.raw_os_error().unwrap_or(libc::EINVAL),
                reason: format!("IORING_REGISTER_PROBE: {e}"),
            })?;
        for (code, name) in REQUIRED {
            if !probe.is_supported(*code) {
                return Err(SetupError {
                    errno: libc::EINVAL,
                    reason: format!(
                        "io_uring opcode IORING_OP_{name} is not supported by this kernel"
                    ),
                });
            }
        }
        let has_ftruncate = probe.is_supported(opcode::Ftruncate::CODE);
        let has_send_zc = probe.is_supported(opcode::SendMsgZc::CODE);
        let has_fixed_install = probe.is_supported(opcode::FixedFdInstall::CODE);
        let eventfd = EventFd::new().map_err(|e| SetupError {
            errno: e.raw_os_error().unwrap_or(libc::EINVAL),
            reason: format!("eventfd: {e}"),
        })?;
        let efd = eventfd.fd();
        ring.submitter()
            .register_eventfd(efd)
            .map_err(|e| SetupError {
                errno: e.raw_os_error().unwrap_or(libc::EINVAL),
                reason: format!("IORING_REGISTER_EVENTFD: {e}"),
            })?;
        let fixed_files = if cfg.fixed_files > 0
            && ring
                .submitter()
                .register_files_sparse(cfg.fixed_files)
                .is_ok()
        {
            cfg.fixed_files
        } else {
            0
        };
        let fixed_buffers = if cfg.fixed_buffers > 0
            && ring
                .submitter()
                .register_buffers_sparse(u32::from(cfg.fixed_buffers))
                .is_ok()
        {
            cfg.fixed_buffers
        } else {
            0
        };
        // The lane rings a descriptor of its own for the same eventfd, which
        // lives as long as the lane does (its threads may outlast the engine
        // by one call).
        let lane_fd: OwnedFd = eventfd.try_clone().map_err(|e| SetupError {
            errno: e.raw_os_error().unwrap_or(libc::EINVAL),
            reason: format!("eventfd dup: {e}"),
        })?;
        let lane_done = Arc::new(pool::Done {
            cqes: Mutex::new(Vec::new()),
            wake: Box::new(move || eventfd::signal(lane_fd.as_raw_fd())),
            notify: RwLock::new(None),
        });
        let lane = Pool::new(cfg.file_threads.max(1), lane_done.clone());
        Ok(UringEngine {
            lane,
            lane_done,
            lane_pending: AtomicUsize::new(0),
            ring,
            eventfd,
            sq_lock: Mutex::new(SqSide::default()),
            cq_lock: Mutex::new(0),
            part_busy: AtomicBool::new(false),
            sqpoll: cfg.sqpoll,
            fixed_files,
            fixed_buffers,
            has_ftruncate,
            has_send_zc,
            has_fixed_install,
        })
    }

    /// Queues the held read (see [`SqSide`]) for the next `submit`. The
    /// caller holds `sq_lock` (`g`).
    fn submit_held(&self, g: &mut SqSide) {
        // SAFETY: the only live SubmissionQueue view (sq_lock); the held
        // op's pointers outlive it (push's contract). The SQ was empty when
        // it was held, and every push since queued it first.
        let mut sq = unsafe { self.ring.submission_shared() };
        // SAFETY: as above.
        let _ = unsafe { push_held(g, &mut sq) };
    }

    /// `io_uring_enter` for what the SQ holds, again on `EINTR`. The caller
    /// holds `sq_lock`. Waits for a part being submitted by `submit_queued`
    /// to be in first (a part's enter is short: the ops it chose).
    ///
    /// The kernel stops taking entries at one that fails its preparation
    /// (it completes that one with the error) and leaves the rest in the
    /// SQ; they would wait for the next `io_uring_enter`, which may never
    /// come (a ring at rest, or a teardown draining what is in flight), so
    /// this enters again while entries are left and the last enter took
    /// some.
    fn submit(&self) -> io::Result<usize> {
        while self.part_busy.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        let mut total = 0;
        loop {
            match self.ring.submitter().submit() {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if total == 0 => return Err(e),
                Err(_) => return Ok(total),
                Ok(n) => {
                    total += n;
                    // With SQPOLL the kernel's thread takes them, in its own time.
                    // SAFETY: the caller holds sq_lock; only the length is read.
                    if n == 0 || self.sqpoll || unsafe { self.ring.submission_shared() }.is_empty()
                    {
                        return Ok(total);
                    }
                }
            }
        }
    }

    /// Mutes (`true`) or unmutes the eventfd: completions posted while
    /// muted ring none, so whoever mutes reaps after unmuting (a flush's
    /// enter drains at once; a send done at once is followed by the
    /// driver's next flush, which drains), before anyone waits on it.
    fn mute(&self, on: bool) -> io::Result<()> {
        let _c = self
            .cq_lock
            .lock()
            .map_err(|_| io::Error::other("cq lock poisoned"))?;
        // SAFETY: CQ view under cq_lock; only the flags word is touched.
        let cq = unsafe { self.ring.completion_shared() };
        if on {
            cq.disable_eventfd();
        } else {
            cq.enable_eventfd();
        }
        Ok(())
    }

    /// `io_uring_enter(to_submit, 0, flags)` with no argument, again on
    /// `EINTR` (an interrupted enter may have done nothing).
    ///
    /// # Safety
    /// At least `to_submit` entries are in the SQ and no other thread
    /// submits them meanwhile.
    unsafe fn enter(&self, to_submit: u32, flags: u32) -> io::Result<usize> {
        loop {
            // SAFETY: no argument; the entries are the caller's promise.
            match unsafe {
                self.ring
                    .submitter()
                    .enter::<libc::sigset_t>(to_submit, 0, flags, None)
            } {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                r => return r,
            }
        }
    }

    /// Takes every completion ready, also those the kernel had to keep
    /// aside because the completion queue was full (`IORING_FEAT_NODROP`
    /// keeps them on an overflow list, and posts later ones there too,
    /// until an `io_uring_enter` with `GETEVENTS` moves them back). Without
    /// that, they waited for the next submission, which might never come:
    /// a burst of closes hung with its completions on the list.
    ///
    /// Nothing announces the list: entries put there move no CQ tail and
    /// ring no eventfd. The kernel only uses it when the CQ holds a whole
    /// queue's worth past its head, so once `capacity` completions have
    /// been taken since the last move (`cq_lock` counts them), one may be
    /// there, and this moves them. Waiting to see the queue full is not
    /// enough: a drain that reads the tail just before the kernel fills
    /// the queue takes less than a queue's worth, and the next sees the
    /// rest, also less (a terminated worker's teardown, whose cancels came
    /// back in a burst, waited forever so). Reading `IORING_SQ_CQ_OVERFLOW`
    /// instead needs a submission-queue view, whose drop stores the tail it
    /// read: made here without `sq_lock`, it lost the pushes another thread
    /// made meanwhile, and taking `sq_lock` in every drain would hold the
    /// completion thread behind the JS thread's submits. At most one extra
    /// `io_uring_enter` per `capacity` completions.
    fn drain(&self, out: &mut Vec<Cqe>) {
        if self.lane_pending.load(Ordering::Acquire) > 0 {
            let mut done = self
                .lane_done
                .cqes
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            self.lane_pending.fetch_sub(done.len(), Ordering::AcqRel);
            out.append(&mut done);
        }
        loop {
            let Ok(mut taken) = self.cq_lock.lock() else {
                return;
            };
            // SAFETY: the CQ is only ever accessed under cq_lock, so
            // this is the only live CompletionQueue view.
            let cq = unsafe { self.ring.completion_shared() };
            let capacity = cq.capacity();
            #[cfg(test)]
            overflow_tests::widen_the_window();
            let before = out.len();
            out.extend(cq.map(|c| Cqe {
                user_data: c.user_data(),
                result: c.result(),
                flags: c.flags(),
            }));
            *taken += out.len() - before;
            if *taken < capacity {
                return;
            }
            // Moves overflowed completions into the CQ (`enter` goes again
            // when interrupted: they would wait for the next queue's worth).
            // SAFETY: to_submit 0: no entry of the SQ is taken.
            let r = unsafe { self.enter(0, IORING_ENTER_GETEVENTS) };
            if r.is_err() {
                return;
            }
            // Whatever it left on the list (the CQ filled again) is behind
            // a queue's worth that the next rounds count.
            *taken = 0;
        }
    }
}

/// Queues the held read, if any, in `sq`; `false` if the SQ has no room
/// (it stays held).
///
/// # Safety
/// `sq` is the only live SubmissionQueue view (the caller holds `sq_lock`,
/// which guards `g`); the held op's pointers outlive it.
unsafe fn push_held(g: &mut SqSide, sq: &mut io_uring::squeue::SubmissionQueue<'_>) -> bool {
    let Some((user_data, op)) = g.held else {
        return true;
    };
    let sqe = sqe_for(&op).user_data(user_data);
    // SAFETY: the caller's guarantee.
    if unsafe { sq.push(&sqe) }.is_err() {
        return false;
    }
    g.held = None;
    g.pushed = g.pushed.wrapping_add(1);
    true
}

fn describe_setup_errno(errno: i32) -> String {
    match errno {
        libc::ENOSYS => "ENOSYS (the kernel has no io_uring)".into(),
        libc::EPERM => "EPERM (blocked by seccomp or kernel.io_uring_disabled)".into(),
        libc::EACCES => "EACCES (blocked by a security policy)".into(),
        libc::ENOMEM => "ENOMEM (memlock limit too low for the rings)".into(),
        libc::EINVAL => "EINVAL (a setup flag is not supported by this kernel)".into(),
        e => format!("{}", io::Error::from_raw_os_error(e)),
    }
}

fn target(t: Target) -> (types::Fd, Option<types::Fixed>) {
    match t {
        Target::Fd(fd) => (types::Fd(fd), None),
        Target::Fixed(slot) => (types::Fd(-1), Some(types::Fixed(slot))),
    }
}

/// Builds an SQE from either a plain fd or a fixed slot.
macro_rules! with_target {
    ($t:expr, |$f:ident| $build:expr) => {
        match target($t) {
            (_, Some($f)) => $build,
            ($f, None) => $build,
        }
    };
}

fn sqe_for(op: &Op) -> squeue::Entry {
    match *op {
        Op::Nop => opcode::Nop::new().build(),
        Op::Open { path, flags, mode } => opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path)
            .flags(flags)
            .mode(mode)
            .build(),
        Op::Close { fd } => opcode::Close::new(types::Fd(fd)).build(),
        Op::OpenFixed {
            path,
            flags,
            mode,
            slot,
        } => match types::DestinationSlot::try_from_slot_target(slot) {
            // A direct descriptor is in no process's table: O_CLOEXEC
            // means nothing to it, and the kernel refuses it.
            Ok(dest) => opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path)
                .flags(flags & !libc::O_CLOEXEC)
                .mode(mode)
                .file_index(Some(dest))
                .build(),
            // A slot past what the kernel can name: an open that fails.
            Err(_) => opcode::OpenAt::new(types::Fd(libc::AT_FDCWD), path)
                .flags(-1)
                .build(),
        },
        Op::CloseFixed { slot } => opcode::Close::new(types::Fixed(slot)).build(),
        Op::InstallFixed { slot } => opcode::FixedFdInstall::new(types::Fixed(slot), 0).build(),
        Op::Read {
            target: t,
            ptr,
            len,
            offset,
            fixed,
        } => match fixed {
            Some(idx) => with_target!(t, |f| opcode::ReadFixed::new(f, ptr, len, idx)
                .offset(offset)
                .build()),
            None => with_target!(t, |f| opcode::Read::new(f, ptr, len).offset(offset).build()),
        },
        Op::Write {
            target: t,
            ptr,
            len,
            offset,
            fixed,
            sync,
        } => {
            // An append: RWF_APPEND writes at the end of file as the kernel
            // sees it when the write runs (the offset is then ignored, and
            // the file position is left alone).
            let (offset, flags) = match offset {
                END_OF_FILE => (0, libc::RWF_APPEND),
                o => (o, 0),
            };
            let flags = flags | sync.map_or(0, SyncKind::write_flag);
            match fixed {
                Some(idx) => with_target!(t, |f| opcode::WriteFixed::new(f, ptr, len, idx)
                    .offset(offset)
                    .rw_flags(flags)
                    .build()),
                None => with_target!(t, |f| opcode::Write::new(f, ptr, len)
                    .offset(offset)
                    .rw_flags(flags)
                    .build()),
            }
        }
        Op::Readv {
            target: t,
            iov,
            count,
            offset,
        } => with_target!(t, |f| opcode::Readv::new(f, iov, count)
            .offset(offset)
            .build()),
        Op::Writev {
            target: t,
            iov,
            count,
            offset,
        } => {
            // An append, as for Write.
            let (offset, flags) = match offset {
                END_OF_FILE => (0, libc::RWF_APPEND),
                o => (o, 0),
            };
            with_target!(t, |f| opcode::Writev::new(f, iov, count)
                .offset(offset)
                .rw_flags(flags)
                .build())
        }
        Op::Fsync { target: t, kind } => {
            let flags = match kind {
                SyncKind::Full => types::FsyncFlags::empty(),
                SyncKind::Data => types::FsyncFlags::DATASYNC,
            };
            with_target!(t, |f| opcode::Fsync::new(f).flags(flags).build())
        }
        Op::Statx { fd, out } => opcode::Statx::new(types::Fd(fd), c"".as_ptr(), out.cast())
            .flags(libc::AT_EMPTY_PATH)
            .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
            .build(),
        Op::Ftruncate { target: t, len } => {
            with_target!(t, |f| opcode::Ftruncate::new(f, len).build())
        }
        Op::StatPath { path, flags, out } => {
            opcode::Statx::new(types::Fd(libc::AT_FDCWD), path, out.cast())
                .flags(flags)
                .mask(libc::STATX_BASIC_STATS | libc::STATX_BTIME)
                .build()
        }
        Op::Unlink { path, flags } => opcode::UnlinkAt::new(types::Fd(libc::AT_FDCWD), path)
            .flags(flags)
            .build(),
        Op::Rename { from, to } => opcode::RenameAt::new(
            types::Fd(libc::AT_FDCWD),
            from,
            types::Fd(libc::AT_FDCWD),
            to,
        )
        .build(),
        Op::Mkdir { path, mode } => opcode::MkDirAt::new(types::Fd(libc::AT_FDCWD), path)
            .mode(mode)
            .build(),
        Op::Symlink { target, path } => {
            opcode::SymlinkAt::new(types::Fd(libc::AT_FDCWD), target, path).build()
        }
        Op::Link { from, to } => opcode::LinkAt::new(
            types::Fd(libc::AT_FDCWD),
            from,
            types::Fd(libc::AT_FDCWD),
            to,
        )
        .build(),
        Op::Cancel { user_data } => opcode::AsyncCancel::new(user_data).build(),
        Op::CancelFile { target: t } => {
            let b = match t {
                Target::Fd(fd) => types::CancelBuilder::fd(types::Fd(fd)),
                Target::Fixed(s) => types::CancelBuilder::fd(types::Fixed(s)),
            };
            opcode::AsyncCancel2::new(b.all()).build()
        }
        Op::CancelAll => opcode::AsyncCancel2::new(types::CancelBuilder::any()).build(),
        Op::AcceptMulti { target: t } => with_target!(t, |f| opcode::AcceptMulti::new(f)
            .flags(libc::SOCK_CLOEXEC)
            .build()),
        Op::Connect { fd, addr, len } => opcode::Connect::new(types::Fd(fd), addr, len).build(),
        // op::Timespec has the layout of __kernel_timespec, which
        // types::Timespec wraps transparently.
        Op::LinkTimeout { ts } => opcode::LinkTimeout::new(ts.cast()).build(),
        Op::RecvMulti { target: t, group } => {
            with_target!(t, |f| opcode::RecvMulti::new(f, group).build())
        }
        Op::Send {
            target: t,
            ptr,
            len,
        } => with_target!(t, |f| opcode::Send::new(f, ptr, len)
            .flags(SEND_FLAGS)
            .build()),
        Op::SendMsg {
            target: t,
            msg,
            zero_copy: false,
        } => with_target!(t, |f| opcode::SendMsg::new(f, msg)
            .flags(SEND_FLAGS as u32)
            .build()),
        Op::SendMsg {
            target: t,
            msg,
            zero_copy: true,
        } => with_target!(t, |f| opcode::SendMsgZc::new(f, msg)
            .flags(SEND_FLAGS as u32)
            .ioprio(SEND_ZC_REPORT_USAGE)
            .build()),
        Op::SendZc {
            target: t,
            ptr,
            len,
            fixed,
        } => with_target!(t, |f| opcode::SendZc::new(f, ptr, len)
            .buf_index(Some(fixed))
            .flags(SEND_FLAGS)
            .zc_flags(SEND_ZC_REPORT_USAGE)
            .build()),
        Op::Shutdown { target: t, how } => {
            with_target!(t, |f| opcode::Shutdown::new(f, how).build())
        }
        // Run by the lane (see `push`); never an SQE.
        Op::Blocking { .. } => opcode::Nop::new().build(),
    }
}

fn with_link(sqe: squeue::Entry, link: Link) -> squeue::Entry {
    match link {
        Link::None => sqe,
        Link::Next => sqe.flags(squeue::Flags::IO_LINK),
        Link::Always => sqe.flags(squeue::Flags::IO_HARDLINK),
    }
}

impl Drop for UringEngine {
    fn drop(&mut self) {
        // The lane's idle threads hold it: let them go.
        self.lane.stop();
    }
}

impl Engine for UringEngine {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    unsafe fn push(&self, user_data: u64, op: &Op, link: Link) -> bool {
        if let Op::Blocking { .. } = op {
            // Never linked: the driver makes lane calls alone.
            debug_assert_eq!(link, Link::None);
            self.lane_pending.fetch_add(1, Ordering::AcqRel);
            self.lane.submit(vec![Job {
                steps: vec![Step {
                    user_data,
                    op: *op,
                    always: false,
                }],
                fd: None,
                serial: false,
            }]);
            return true;
        }
        let Ok(mut g) = self.sq_lock.lock() else {
            return false;
        };
        // SAFETY: the SQ is only accessed under sq_lock, so this is the only
        // live SubmissionQueue view; the caller guarantees the pointers in
        // `op` (and in a held op) outlive the op.
        let mut sq = unsafe { self.ring.submission_shared() };
        // A held read goes in first: it is no longer alone.
        // SAFETY: as above (the held op's pointers were guaranteed when it
        // was pushed and held).
        if !unsafe { push_held(&mut g, &mut sq) } {
            return false;
        }
        g.closing(op);
        if link == Link::None && !self.sqpoll && sq.is_empty() && g.inline_target(op).is_some() {
            g.held = Some((user_data, *op));
            return true;
        }
        // Chains come through push_group only (see SqSide::part).
        debug_assert_eq!(link, Link::None);
        let sqe = with_link(sqe_for(op).user_data(user_data), link);
        // SAFETY: as above.
        let pushed = unsafe { sq.push(&sqe).is_ok() };
        if pushed {
            g.pushed = g.pushed.wrapping_add(1);
        }
        pushed
    }

    unsafe fn push_group(&self, group: &[(u64, Op, Link)]) -> bool {
        debug_assert!(group
            .iter()
            .all(|(_, op, _)| !matches!(op, Op::Blocking { .. })));
        let Ok(mut g) = self.sq_lock.lock() else {
            return false;
        };
        // SAFETY: the only live SubmissionQueue view (sq_lock); its tail
        // is published once, when it drops, with the whole chain in it.
        let mut sq = unsafe { self.ring.submission_shared() };
        // SAFETY: a held op's pointers outlive it (push's contract).
        if !unsafe { push_held(&mut g, &mut sq) } || sq.capacity() - sq.len() < group.len() {
            return false;
        }
        for (user_data, op, link) in group {
            g.closing(op);
            let sqe = with_link(sqe_for(op).user_data(*user_data), *link);
            // SAFETY: room was checked above; the caller guarantees the
            // pointers in `op` outlive the op.
            if unsafe { sq.push(&sqe) }.is_err() {
                unreachable!("room for the whole group was checked");
            }
        }
        g.pushed = g.pushed.wrapping_add(group.len() as u32);
        if group.iter().any(|(_, _, link)| *link != Link::None) {
            g.chain_end = g.pushed;
        }
        true
    }

    fn read_now(&self, op: &Op) -> Option<i32> {
        if self.sqpoll {
            return None;
        }
        let mut g = self.sq_lock.lock().ok()?;
        // SAFETY: SQ accessed under sq_lock only.
        if g.held.is_some() || !unsafe { self.ring.submission_shared() }.is_empty() {
            return None;
        }
        let fd = g.inline_target(op)?;
        read_nowait(fd, op)
    }

    fn sq_space(&self) -> usize {
        let Ok(g) = self.sq_lock.lock() else {
            return 0;
        };
        // SAFETY: SQ accessed under sq_lock only.
        let sq = unsafe { self.ring.submission_shared() };
        (sq.capacity() - sq.len()).saturating_sub(usize::from(g.held.is_some()))
    }

    fn flush(&self) -> io::Result<usize> {
        let mut g = self
            .sq_lock
            .lock()
            .map_err(|_| io::Error::other("sq lock poisoned"))?;
        self.submit_held(&mut g);
        self.submit()
    }

    fn flush_and_reap(&self, out: &mut Vec<Cqe>) -> io::Result<usize> {
        let r = {
            let mut g = self
                .sq_lock
                .lock()
                .map_err(|_| io::Error::other("sq lock poisoned"))?;
            if let Some((user_data, op)) = g.held {
                let done = g.inline_target(&op).and_then(|fd| read_nowait(fd, &op));
                if let Some(result) = done {
                    // Nothing else is queued (a push would have queued the
                    // held read first): no io_uring_enter at all.
                    g.held = None;
                    drop(g);
                    self.drain(out);
                    out.push(Cqe {
                        user_data,
                        result,
                        flags: 0,
                    });
                    return Ok(1);
                }
                self.submit_held(&mut g);
            }
            // SAFETY: SQ accessed under sq_lock only.
            if unsafe { self.ring.submission_shared() }.is_empty() {
                // Nothing to submit: an io_uring_enter would only cost a
                // syscall (a flush from JS after a quiet flush submitted
                // its ops, say: half the enters of a ping-pong). What is
                // ready is in the CQ.
                drop(g);
                self.drain(out);
                return Ok(0);
            }
            self.mute(true)?;
            let r = self.submit();
            self.mute(false)?;
            r
        };
        // Everything posted while muted is in the CQ now; what is posted
        // from here on signals the completion thread.
        self.drain(out);
        r
    }

    fn prepare_hand_off(&self) -> bool {
        // The kernel's own thread takes what is queued already.
        if self.sqpoll {
            return false;
        }
        let Ok(mut g) = self.sq_lock.lock() else {
            return false;
        };
        self.submit_held(&mut g);
        true
    }

    fn submit_queued(&self, part: fn(usize) -> usize) -> io::Result<(usize, bool)> {
        let (n, len) = {
            let g = self
                .sq_lock
                .lock()
                .map_err(|_| io::Error::other("sq lock poisoned"))?;
            // SAFETY: SQ accessed under sq_lock only; only its length is read.
            let len = unsafe { self.ring.submission_shared() }.len();
            if len == 0 {
                return Ok((0, false));
            }
            self.part_busy.store(true, Ordering::Release);
            (g.part(len, part(len).max(1)), len)
        };
        // Without sq_lock: the driver's thread goes on pushing behind these
        // `n` ops (the kernel takes from the SQ's head, pushes go at its
        // tail), and any submit of its own waits for part_busy.
        // SAFETY: `n` ops are in the SQ (it only grows until the kernel
        // takes them, and only a submit takes them, which part_busy holds
        // off).
        let r = unsafe { self.enter(n as u32, 0) };
        self.part_busy.store(false, Ordering::Release);
        let done = r?;
        Ok((done, done < len))
    }

    fn has_ready(&self) -> bool {
        if self.lane_pending.load(Ordering::Acquire) > 0 {
            return true;
        }
        // Someone draining now takes what is there.
        let Ok(_c) = self.cq_lock.try_lock() else {
            return false;
        };
        // SAFETY: CQ view under cq_lock; only its head and tail are read.
        !unsafe { self.ring.completion_shared() }.is_empty()
    }

    fn reap(&self, out: &mut Vec<Cqe>) {
        self.drain(out);
    }

    fn wait(&self, out: &mut Vec<Cqe>) -> io::Result<()> {
        // A held read reaches the kernel before anyone waits for it.
        if let Ok(mut g) = self.sq_lock.lock() {
            if g.held.is_some() {
                self.submit_held(&mut g);
                let _ = self.submit();
            }
        }
        self.drain(out);
        if !out.is_empty() {
            return Ok(());
        }
        self.wait_ready()?;
        self.drain(out);
        Ok(())
    }

    fn wait_ready(&self) -> io::Result<()> {
        self.eventfd.wait()
    }

    fn wake(&self) {
        self.eventfd.signal();
    }

    unsafe fn register_buffer(&self, slot: u16, ptr: *mut u8, len: usize) -> io::Result<()> {
        let iov = libc::iovec {
            iov_base: ptr.cast(),
            iov_len: len,
        };
        // SAFETY: the caller keeps the memory allocated until unregistered.
        unsafe {
            self.ring
                .submitter()
                .register_buffers_update(u32::from(slot), &[iov], None)
        }
    }

    fn unregister_buffer(&self, slot: u16) {
        let iov = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        // SAFETY: an empty iovec clears the slot; no memory is referenced.
        let _ = unsafe {
            self.ring
                .submitter()
                .register_buffers_update(u32::from(slot), &[iov], None)
        };
    }

    fn register_file(&self, slot: u32, fd: i32) -> io::Result<()> {
        self.ring.submitter().register_files_update(slot, &[fd])?;
        if let Ok(mut g) = self.sq_lock.lock() {
            g.set_slot(slot, fd);
        }
        Ok(())
    }

    fn unregister_file(&self, slot: u32) {
        if let Ok(mut g) = self.sq_lock.lock() {
            g.set_slot(slot, -1);
        }
        let _ = self.ring.submitter().register_files_update(slot, &[-1]);
    }

    fn fixed_file_slots(&self) -> u32 {
        self.fixed_files
    }

    fn fixed_buffer_slots(&self) -> u16 {
        self.fixed_buffers
    }

    fn notify_fd(&self) -> Option<i32> {
        Some(self.eventfd.fd())
    }

    fn send_now(&self, fd: i32, iov: &[libc::iovec]) -> Result<usize, i32> {
        // Muted as a flush's enter is: the peer's receive (on this ring,
        // over loopback) completes in this syscall's task work, and its
        // eventfd signal would wake no one (the caller reaps next), at ~3%
        // of a 64 B round trip's CPU (perf, benches/pingpong-count.ts).
        if self.mute(true).is_err() {
            return Err(libc::EAGAIN);
        }
        let r = crate::engine::control::send_now(fd, iov);
        // (Unmuting takes the lock muting took; it cannot be poisoned
        // between: nothing here panics while holding it.)
        let _ = self.mute(false);
        r
    }

    fn supports(&self, feature: Feature) -> bool {
        match feature {
            Feature::Ftruncate => self.has_ftruncate,
            Feature::Link => true,
            // OPENAT's file_index came with Linux 5.15, as did MKDIRAT,
            // which `REQUIRED` holds every kernel used here to.
            Feature::FixedOpen => self.fixed_files > 0,
            Feature::FixedInstall => self.fixed_files > 0 && self.has_fixed_install,
            Feature::SendZc => self.has_send_zc,
        }
    }

    unsafe fn register_buf_ring(&self, ring_addr: u64, entries: u16, bgid: u16) -> io::Result<()> {
        // SAFETY: the caller keeps the ring allocated until unregistered.
        unsafe {
            self.ring
                .submitter()
                .register_buf_ring_with_flags(ring_addr, entries, bgid, 0)
        }
    }

    fn unregister_buf_ring(&self, bgid: u16) -> io::Result<()> {
        self.ring.submitter().unregister_buf_ring(bgid)
    }
}

// The io-uring crate's IoUring holds raw pointers to the mapped rings; the
// locks above serialise every access to each queue.
// SAFETY: the ring's memory is process-wide mmap'd memory, valid on any thread.
unsafe impl Send for UringEngine {}
// SAFETY: all shared access goes through sq_lock / cq_lock or through
// syscalls the kernel serialises.
unsafe impl Sync for UringEngine {}

#[cfg(test)]
mod tests {
    use super::SqSide;

    fn side(pushed: u32, chain_end: u32) -> SqSide {
        SqSide {
            pushed,
            chain_end,
            ..SqSide::default()
        }
    }

    #[test]
    fn a_part_without_chains_is_what_was_asked() {
        let g = side(100, 0);
        assert_eq!(g.part(40, 10), 10);
        assert_eq!(g.part(40, 40), 40);
        assert_eq!(g.part(40, 64), 40);
    }

    #[test]
    fn a_part_never_ends_inside_a_chain() {
        // The SQ holds ops 60..100; the last chain ended at 75.
        let g = side(100, 75);
        assert_eq!(g.part(40, 10), 15);
        assert_eq!(g.part(40, 15), 15);
        assert_eq!(g.part(40, 20), 20);
        // A chain already submitted (it ended at 50, before the SQ's head).
        assert_eq!(side(100, 50).part(40, 10), 10);
    }

    #[test]
    fn a_part_is_cut_right_across_the_counters_wrapping() {
        let g = side(5, u32::MAX - 2);
        // The SQ holds ops u32::MAX-14 ..= 4; the chain ended 12 ops in.
        assert_eq!(g.part(20, 4), 12);
        assert_eq!(g.part(20, 13), 13);
    }
}

/// An engine for a test, or None where io_uring is unavailable (then the
/// test has nothing to test, and says so).
#[cfg(test)]
fn test_engine(cfg: &EngineConfig) -> Option<Arc<UringEngine>> {
    match UringEngine::new(cfg) {
        Ok(e) => Some(Arc::new(e)),
        Err(e) => {
            eprintln!("io_uring unavailable, nothing to test: {e:?}");
            None
        }
    }
}

#[cfg(test)]
mod overflow_tests {
    use crate::engine::{Engine, EngineConfig, Link};
    use crate::op::Op;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// Set by the test: a drain lingers between reading the CQ's tail and
    /// handing its head back, where the kernel may fill the queue.
    static LINGER: AtomicBool = AtomicBool::new(false);

    pub(super) fn widen_the_window() {
        if LINGER.load(Ordering::Relaxed) {
            let t = Instant::now();
            while t.elapsed() < Duration::from_micros(20) {
                std::hint::spin_loop();
            }
        }
    }

    /// One thread submits 10 then 16 no-ops, more than the 16-entry CQ
    /// holds, so the kernel puts the rest on its overflow list, while a
    /// second thread takes completions as the completion thread does
    /// (`wait`, then a drain). Between rounds nothing is submitted: a
    /// completion left on the list is never taken, and the round never
    /// ends. (Before `drain` counted what it took, one drain in a few
    /// thousand read the tail just before the kernel filled the queue and
    /// missed the list: a terminated worker's teardown hung so.)
    #[test]
    fn completions_put_aside_while_a_drain_reads_the_queue_are_all_taken() {
        let cfg = EngineConfig {
            entries: 16,
            cq_entries: 16,
            fixed_files: 0,
            fixed_buffers: 0,
            ..EngineConfig::default()
        };
        let Some(engine) = super::test_engine(&cfg) else {
            return;
        };
        LINGER.store(true, Ordering::Relaxed);
        const ROUNDS: usize = 8_000;
        const BURST: usize = 26;
        let taken = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let consumer = {
            let (engine, taken, done) = (engine.clone(), taken.clone(), done.clone());
            std::thread::spawn(move || {
                let mut out = Vec::new();
                while !done.load(Ordering::Acquire) {
                    out.clear();
                    engine.wait(&mut out).expect("wait");
                    taken.fetch_add(out.len(), Ordering::AcqRel);
                }
            })
        };
        for round in 1..=ROUNDS {
            // Less than a queue's worth, then a queue's worth: a drain that
            // read the first burst's tail sees less than a full queue.
            for n in [BURST - 16, 16] {
                for i in 0..n {
                    // SAFETY: a no-op points at no memory.
                    assert!(unsafe { engine.push(i as u64, &Op::Nop, Link::None) });
                }
                engine.flush().expect("flush");
            }
            // Not a time limit: a watchdog that turns a hang into a failure.
            let mut last = (taken.load(Ordering::Acquire), Instant::now());
            while taken.load(Ordering::Acquire) < round * BURST {
                let now = taken.load(Ordering::Acquire);
                if now != last.0 {
                    last = (now, Instant::now());
                }
                assert!(
                    last.1.elapsed() < Duration::from_secs(30),
                    "round {round}: {} of {} completions taken, nothing more for 30 s: the rest are on the overflow list",
                    now,
                    round * BURST
                );
                std::thread::yield_now();
            }
        }
        done.store(true, Ordering::Release);
        engine.wake();
        consumer.join().expect("consumer");
    }
}

#[cfg(test)]
mod send_now_tests {
    use crate::engine::{Engine, EngineConfig, Link};
    use crate::op::{Op, Target};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    /// A send done at once mutes the eventfd: a receive of this ring that
    /// its bytes complete (over loopback, in the sendmsg's own task work)
    /// may ring none. The completion must still reach whoever waits next:
    /// `wait` takes what is in the queue before it blocks.
    #[test]
    fn a_receive_a_send_done_at_once_completes_is_taken_by_the_next_wait() {
        let Some(engine) = super::test_engine(&EngineConfig::default()) else {
            return;
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let a = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (b, _) = listener.accept().expect("accept");
        for round in 0..200u64 {
            let mut buf = [0u8; 64];
            let read = Op::Read {
                target: Target::Fd(b.as_raw_fd()),
                ptr: buf.as_mut_ptr(),
                len: buf.len() as u32,
                offset: u64::MAX,
                fixed: None,
            };
            // SAFETY: `buf` outlives the op: the round waits for its completion.
            assert!(unsafe { engine.push(round, &read, Link::None) });
            engine.flush().expect("flush");
            let msg = round.to_le_bytes();
            let iov = [libc::iovec {
                iov_base: msg.as_ptr() as *mut libc::c_void,
                iov_len: msg.len(),
            }];
            assert_eq!(engine.send_now(a.as_raw_fd(), &iov), Ok(msg.len()));
            // Not a time limit: a watchdog that turns a hang into a failure
            // (it wakes the waiter and says so).
            let (done, woke) = (
                Arc::new(AtomicBool::new(false)),
                Arc::new(AtomicBool::new(false)),
            );
            let watchdog = {
                let (engine, done, woke) = (engine.clone(), done.clone(), woke.clone());
                std::thread::spawn(move || {
                    let t = Instant::now();
                    while !done.load(Ordering::Acquire) {
                        if t.elapsed() > Duration::from_secs(30) {
                            woke.store(true, Ordering::Release);
                            engine.wake();
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            };
            let mut out = Vec::new();
            while out.is_empty() {
                engine.wait(&mut out).expect("wait");
            }
            done.store(true, Ordering::Release);
            watchdog.join().expect("watchdog");
            assert!(
                !woke.load(Ordering::Acquire),
                "round {round}: the receive's completion did not wake the waiter in 30 s"
            );
            assert_eq!(out.len(), 1, "round {round}");
            assert_eq!(out[0].user_data, round);
            assert_eq!(out[0].result, msg.len() as i32);
            assert_eq!(buf[..msg.len()], msg);
        }
    }
}

#[cfg(test)]
mod has_ready_tests {
    use crate::engine::{Engine, EngineConfig, Link};
    use crate::op::Op;

    /// `has_ready` tells a spinning completion thread that completions wait:
    /// true from the moment one is in the queue until it is reaped, false
    /// with nothing there. (A spin that missed it would hold completions
    /// back for the whole spin.)
    #[test]
    fn has_ready_sees_a_completion_until_it_is_reaped() {
        let Some(engine) = super::test_engine(&EngineConfig::default()) else {
            return;
        };
        assert!(!engine.has_ready(), "nothing submitted yet");
        for round in 0..100u64 {
            // SAFETY: a no-op points at no memory.
            assert!(unsafe { engine.push(round, &Op::Nop, Link::None) });
            engine.flush().expect("flush");
            // A no-op completes inside the enter that submits it.
            assert!(
                engine.has_ready(),
                "round {round}: a completion is in the queue"
            );
            assert!(
                engine.has_ready(),
                "round {round}: looking does not take it"
            );
            let mut out = Vec::new();
            engine.reap(&mut out);
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].user_data, round);
            assert!(!engine.has_ready(), "round {round}: reaped, nothing waits");
        }
    }
}
