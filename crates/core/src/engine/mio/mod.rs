//! The mio engine: the same ops and completions as io_uring, made from
//! readiness and plain syscalls, for where io_uring is missing or blocked.
//!
//! - Sockets: non-blocking syscalls driven by mio readiness (epoll,
//!   kqueue). An op is tried at once when it is flushed (a send usually
//!   completes right there, as node:net's writes do); what would block
//!   waits for its socket's next readiness event, which the Ring's
//!   completion thread (or the event loop, in `completion: 'loop'`) turns
//!   into completions when it reaps. Multishot accept and receive keep
//!   producing completions flagged `F_MORE`; receives fill the driver's
//!   provided-buffer ring exactly as the kernel does.
//! - Files: a small thread pool ([`pool`]) running blocking syscalls.
//! - Link chains: a write linked to an fsync runs as one pool job (write,
//!   then sync); a connect linked to a timeout gets a deadline.
//!
//! What io_uring has and this engine has not is reported by
//! [`Engine::degradations`].

mod sock;
mod sys;
mod waiter;

use super::{Engine, EngineConfig, Feature};
use crate::engine::blocking::{self as pool, Job, Pool, Step};
use crate::engine::buf_ring::BufRing;
use crate::op::{Cqe, Link, Op, Target, Timespec};
#[cfg(target_os = "linux")]
use mio::Interest;
use mio::{Events, Poll, Token, Waker};
use sock::{Sock, SockOp};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Token of the engine's waker (pool completions, `wake`).
const WAKER: Token = Token(usize::MAX);
/// Token of the connect-timeout timer (Linux: a timerfd).
#[cfg(target_os = "linux")]
const TIMER: Token = Token(usize::MAX - 1);

/// The engine's maps are keyed by small integers it makes or the kernel
/// hands out (descriptors, slab keys, buffer groups), looked up several times
/// per op: a multiplicative hash instead of SipHash (which cost about 0.3 µs
/// per ping-pong round trip), since no key comes from outside.
type Map<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Fibonacci hashing of one integer key.
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b) ^ self.0.rotate_left(8));
        }
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_i32(&mut self, n: i32) {
        self.write_u64(u64::from(n as u32));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

/// An op pushed but not yet flushed.
#[derive(Clone, Copy)]
struct Sqe {
    user_data: u64,
    op: Op,
    link: Link,
}

/// A connect's linked timeout.
struct Deadline {
    at: Instant,
    connect: u64,
    timeout: u64,
}

struct State {
    poll: Poll,
    events: Events,
    sq: Vec<Sqe>,
    cq: Vec<Cqe>,
    socks: Map<i32, Sock>,
    ops: Map<u64, SockOp>,
    rings: Map<u16, BufRing>,
    deadlines: Vec<Deadline>,
    /// When the timerfd fires (the earliest deadline it was set to).
    timer_at: Option<Instant>,
    /// Closes waiting for pool jobs on their descriptor: `(user_data, fd)`.
    closes: Vec<(u64, i32)>,
    /// Sockets with new readiness (or new ops) to drive.
    touched: Vec<i32>,
    /// What each descriptor read or written is, learnt once per descriptor
    /// (see [`sys::FdKind`]).
    kinds: Map<i32, sys::FdKind>,
}

/// The mio engine. See the module documentation.
pub struct MioEngine {
    st: Mutex<State>,
    waker: Arc<Waker>,
    /// The waker was rung since the poll was last read: reading it is
    /// needed even with no socket watched (see `gather`).
    rung: Arc<AtomicBool>,
    pool: Arc<Pool>,
    done: Arc<pool::Done>,
    capacity: usize,
    #[cfg(unix)]
    poll_fd: i32,
    /// Where the completion thread sleeps (see [`waiter`]).
    #[cfg(unix)]
    waiter: waiter::Waiter,
    #[cfg(target_os = "linux")]
    timer: std::os::fd::OwnedFd,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MioEngine {
    pub fn new(cfg: &EngineConfig) -> io::Result<MioEngine> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let w = waker.clone();
        let rung = Arc::new(AtomicBool::new(false));
        let r = rung.clone();
        let done = Arc::new(pool::Done {
            cqes: Mutex::new(Vec::new()),
            wake: Box::new(move || {
                r.store(true, Ordering::Release);
                let _ = w.wake();
            }),
            notify: std::sync::RwLock::new(None),
        });
        let pool = Pool::new(cfg.file_threads.max(1), done.clone());
        #[cfg(unix)]
        let poll_fd = std::os::fd::AsRawFd::as_raw_fd(&poll);
        #[cfg(target_os = "linux")]
        let timer = {
            // SAFETY: plain syscall; the result is checked.
            let fd = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd is a fresh descriptor nobody else owns.
            let t = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            poll.registry()
                .register(&mut mio::unix::SourceFd(&fd), TIMER, Interest::READABLE)?;
            t
        };
        #[cfg(unix)]
        let waiter = waiter::Waiter::new(poll_fd)?;
        Ok(MioEngine {
            st: Mutex::new(State {
                poll,
                events: Events::with_capacity(1024),
                sq: Vec::new(),
                cq: Vec::new(),
                socks: Map::default(),
                ops: Map::default(),
                rings: Map::default(),
                deadlines: Vec::new(),
                closes: Vec::new(),
                timer_at: None,
                touched: Vec::new(),
                kinds: Map::default(),
            }),
            waker,
            rung,
            pool,
            done,
            // A whole link chain fits (see MAX_CHAIN).
            capacity: (cfg.entries as usize).max(super::MAX_CHAIN),
            #[cfg(unix)]
            poll_fd,
            #[cfg(unix)]
            waiter,
            #[cfg(target_os = "linux")]
            timer,
        })
    }

    /// Dispatches every pushed op; returns how many were taken.
    fn dispatch(&self, st: &mut State) -> usize {
        let sq = std::mem::take(&mut st.sq);
        let n = sq.len();
        let mut jobs: Vec<Job> = Vec::new();
        let mut i = 0;
        while i < n {
            // A link chain: this op and every one linked after it.
            let mut end = i;
            while sq[end].link != Link::None && end + 1 < n {
                end += 1;
            }
            let chain = &sq[i..=end];
            i = end + 1;
            let first = chain[0];
            match first.op {
                Op::Nop => {
                    st.cq.push(cqe(first.user_data, 0, 0));
                    cancel_rest(st, &chain[1..]);
                }
                Op::Read { target, .. }
                | Op::Write { target, .. }
                | Op::Readv { target, .. }
                | Op::Writev { target, .. }
                    if chain.len() == 1 =>
                {
                    let reads = matches!(first.op, Op::Read { .. } | Op::Readv { .. });
                    match kind(st, target) {
                        sys::FdKind::Stream => sock::start_stream_io(st, first),
                        // Data in the page cache is copied right here, as
                        // io_uring completes such reads inline; the rest
                        // goes to the pool.
                        sys::FdKind::Cached if reads => match sys::read_nowait(&first.op) {
                            Some(r) => st.cq.push(cqe(first.user_data, r, 0)),
                            None => jobs.push(file_job(chain)),
                        },
                        _ => jobs.push(file_job(chain)),
                    }
                }
                Op::Open { .. }
                | Op::Read { .. }
                | Op::Write { .. }
                | Op::Readv { .. }
                | Op::Writev { .. }
                | Op::Fsync { .. }
                | Op::Statx { .. }
                | Op::Ftruncate { .. }
                | Op::StatPath { .. }
                | Op::Unlink { .. }
                | Op::Rename { .. }
                | Op::Mkdir { .. }
                | Op::Symlink { .. }
                | Op::Link { .. }
                | Op::OpenFixed { .. }
                | Op::CloseFixed { .. }
                | Op::InstallFixed { .. }
                | Op::Blocking { .. } => jobs.push(file_job(chain)),
                Op::Close { fd } => {
                    // Earlier jobs on fd must run before it goes.
                    self.pool.submit(std::mem::take(&mut jobs));
                    self.close(st, first.user_data, fd);
                    cancel_rest(st, &chain[1..]);
                }
                Op::Cancel { user_data } => {
                    self.pool.submit(std::mem::take(&mut jobs));
                    let r = self.cancel(st, |ud, _| ud == user_data);
                    st.cq
                        .push(cqe(first.user_data, if r > 0 { 0 } else { r }, 0));
                    cancel_rest(st, &chain[1..]);
                }
                Op::CancelFile { target } => {
                    self.pool.submit(std::mem::take(&mut jobs));
                    let r = match target {
                        Target::Fd(fd) => self.cancel(st, |_, f| f == Some(fd)),
                        Target::Fixed(_) => -libc::ENOENT,
                    };
                    st.cq.push(cqe(first.user_data, r, 0));
                    cancel_rest(st, &chain[1..]);
                }
                Op::CancelAll => {
                    self.pool.submit(std::mem::take(&mut jobs));
                    let r = self.cancel(st, |_, _| true);
                    st.cq.push(cqe(first.user_data, r, 0));
                    cancel_rest(st, &chain[1..]);
                }
                Op::LinkTimeout { .. } => {
                    // A timeout linked to nothing.
                    st.cq.push(cqe(first.user_data, -libc::EINVAL, 0));
                    cancel_rest(st, &chain[1..]);
                }
                _ => sock::start(st, chain),
            }
        }
        self.pool.submit(jobs);
        drive_touched(st);
        #[cfg(target_os = "linux")]
        self.arm_timer(st);
        n
    }

    /// Closes `fd`: a socket at once (its pending ops cancelled), a file
    /// once no pool job uses it any more.
    fn close(&self, st: &mut State, user_data: u64, fd: i32) {
        st.kinds.remove(&fd);
        if st.socks.contains_key(&fd) {
            forget(st, fd);
            let r = sys::close(fd);
            st.cq.push(cqe(user_data, r, 0));
        } else if self.pool.uses(fd) {
            st.closes.push((user_data, fd));
        } else {
            let r = sys::close(fd);
            st.cq.push(cqe(user_data, r, 0));
        }
    }

    /// Cancels every pending op `hit(user_data, fd)` selects: socket ops
    /// waiting for readiness and file jobs not yet started. Returns how
    /// many, or `-ENOENT` for none (a running file op cannot be stopped; it
    /// completes normally).
    fn cancel(&self, st: &mut State, hit: impl Fn(u64, Option<i32>) -> bool) -> i32 {
        let mut n = 0;
        let uds: Vec<u64> = st
            .ops
            .iter()
            .filter(|(ud, op)| hit(**ud, Some(op.fd)))
            .map(|(ud, _)| *ud)
            .collect();
        for ud in uds {
            sock::cancel_op(st, ud);
            n += 1;
        }
        let jobs = self
            .pool
            .take_queued(|j| j.steps.iter().any(|s| hit(s.user_data, j.fd)));
        for j in jobs {
            for s in j.steps {
                st.cq.push(cqe(s.user_data, -libc::ECANCELED, 0));
                n += 1;
            }
        }
        if n == 0 {
            -libc::ENOENT
        } else {
            n
        }
    }

    /// Readiness events, expired deadlines, finished pool jobs and
    /// deferred closes, into completions.
    fn gather(&self, st: &mut State, out: &mut Vec<Cqe>) {
        let State {
            poll,
            events,
            socks,
            touched,
            ..
        } = st;
        // With no socket, pipe or timer watched, only the waker can have
        // events: the poll is read only when it was rung (a file-only ring
        // spends no syscall here).
        if socks.is_empty() && !self.rung.swap(false, Ordering::AcqRel) {
            events.clear();
        } else {
            self.rung.store(false, Ordering::Release);
            loop {
                match poll.poll(events, Some(Duration::ZERO)) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    _ => break,
                }
            }
        }
        #[cfg(target_os = "linux")]
        let mut timer_fired = false;
        for ev in events.iter() {
            match ev.token() {
                WAKER => {}
                #[cfg(target_os = "linux")]
                TIMER => timer_fired = true,
                Token(t) => {
                    let fd = t as i32;
                    if let Some(s) = socks.get_mut(&fd) {
                        let hup = ev.is_error() || ev.is_read_closed() || ev.is_write_closed();
                        if ev.is_error() || ev.is_read_closed() {
                            s.closed = true;
                        }
                        if ev.is_readable() || hup {
                            s.readable = true;
                        }
                        if ev.is_writable() || hup {
                            s.writable = true;
                        }
                        touched.push(fd);
                    }
                }
            }
        }
        #[cfg(target_os = "linux")]
        if timer_fired {
            self.drain_timer();
            // Spent: whatever deadline is left must set it again.
            st.timer_at = None;
        }
        drive_touched(st);
        if !st.deadlines.is_empty() || st.timer_at.is_some() {
            sock::expire(st, Instant::now());
            #[cfg(target_os = "linux")]
            self.arm_timer(st);
        }
        {
            let mut d = lock(&self.done.cqes);
            st.cq.append(&mut d);
        }
        if !st.closes.is_empty() {
            let closes = std::mem::take(&mut st.closes);
            for (ud, fd) in closes {
                if self.pool.uses(fd) {
                    st.closes.push((ud, fd));
                } else {
                    let r = sys::close(fd);
                    st.cq.push(cqe(ud, r, 0));
                }
            }
        }
        out.append(&mut st.cq);
    }

    /// Sets the timerfd to the earliest connect deadline (or disarms it),
    /// when that changed.
    #[cfg(target_os = "linux")]
    fn arm_timer(&self, st: &mut State) {
        let next = st.deadlines.iter().map(|d| d.at).min();
        if next == st.timer_at {
            return;
        }
        st.timer_at = next;
        let wait = next.map(|at| at.saturating_duration_since(Instant::now()));
        let mut spec: libc::itimerspec = {
            // SAFETY: all-zero is a valid itimerspec (disarmed).
            unsafe { std::mem::zeroed() }
        };
        if let Some(w) = wait {
            // A zero it_value disarms: fire in 1 ns instead.
            let w = w.max(Duration::from_nanos(1));
            spec.it_value.tv_sec = w.as_secs() as libc::time_t;
            spec.it_value.tv_nsec = w.subsec_nanos() as libc::c_long;
        }
        // SAFETY: the timerfd is ours; spec is a live local.
        unsafe {
            libc::timerfd_settime(
                std::os::fd::AsRawFd::as_raw_fd(&self.timer),
                0,
                &spec,
                std::ptr::null_mut(),
            )
        };
    }

    #[cfg(target_os = "linux")]
    fn drain_timer(&self) {
        let mut n = 0u64;
        // SAFETY: reads 8 bytes into a local u64 from our non-blocking timerfd.
        unsafe {
            libc::read(
                std::os::fd::AsRawFd::as_raw_fd(&self.timer),
                (&mut n as *mut u64).cast(),
                8,
            )
        };
    }

    fn flush_inner(&self, wake: bool) -> usize {
        let mut st = lock(&self.st);
        if st.sq.is_empty() {
            return 0;
        }
        let n = self.dispatch(&mut st);
        if wake && !st.cq.is_empty() {
            // Completions made right here: whoever waits must reap them.
            self.rung.store(true, Ordering::Release);
            let _ = self.waker.wake();
        }
        n
    }
}

/// Ops whose effects show up as readiness events of the engine's own poll
/// (a send to a loopback peer makes that socket readable).
fn wakes_poll(op: &Op) -> bool {
    matches!(
        op,
        Op::AcceptMulti { .. }
            | Op::RecvMulti { .. }
            | Op::Send { .. }
            | Op::SendMsg { .. }
            | Op::Connect { .. }
            | Op::Shutdown { .. }
            | Op::Close { .. }
    )
}

fn cqe(user_data: u64, result: i32, flags: u32) -> Cqe {
    Cqe {
        user_data,
        result,
        flags,
    }
}

/// Ops linked after one that does not chain: cancelled, as io_uring does
/// when a link breaks.
fn cancel_rest(st: &mut State, rest: &[Sqe]) {
    for s in rest {
        st.cq.push(cqe(s.user_data, -libc::ECANCELED, 0));
    }
}

/// A chain of file ops as one pool job.
fn file_job(chain: &[Sqe]) -> Job {
    let fd = chain.iter().find_map(|s| match s.op {
        Op::Read { target, .. }
        | Op::Write { target, .. }
        | Op::Readv { target, .. }
        | Op::Writev { target, .. }
        | Op::Fsync { target, .. }
        | Op::Ftruncate { target, .. } => match target {
            Target::Fd(fd) => Some(fd),
            Target::Fixed(_) => None,
        },
        Op::Statx { fd, .. } => Some(fd),
        _ => None,
    });
    let serial = chain.iter().any(|s| {
        matches!(
            s.op,
            Op::Write { .. } | Op::Writev { .. } | Op::Fsync { .. } | Op::Ftruncate { .. }
        )
    });
    Job {
        serial: serial && fd.is_some(),
        steps: chain
            .iter()
            .map(|s| Step {
                user_data: s.user_data,
                op: s.op,
                always: s.link == Link::Always,
            })
            .collect(),
        fd,
    }
}

/// What `target` is (see [`sys::FdKind`]); sockets the engine watches are
/// streams.
fn kind(st: &mut State, target: Target) -> sys::FdKind {
    let Target::Fd(fd) = target else {
        return sys::FdKind::Other;
    };
    if st.socks.contains_key(&fd) {
        return sys::FdKind::Stream;
    }
    *st.kinds.entry(fd).or_insert_with(|| sys::fd_kind(fd))
}

fn drive_touched(st: &mut State) {
    while let Some(fd) = st.touched.pop() {
        sock::drive(st, fd);
    }
}

/// Stops watching `fd` and cancels its pending ops (it is being closed).
fn forget(st: &mut State, fd: i32) {
    st.kinds.remove(&fd);
    if let Some(s) = st.socks.remove(&fd) {
        let _ = st.poll.registry().deregister(&mut mio::unix::SourceFd(&fd));
        for ud in s.ops {
            sock::end_op(st, ud, -libc::ECANCELED);
        }
    }
}

/// The duration of a linked timeout.
fn timeout_of(ts: *const Timespec) -> Duration {
    // SAFETY: ts points at the Timespec owned by the op's slab entry.
    let t = unsafe { *ts };
    Duration::new(
        t.tv_sec.max(0) as u64,
        t.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

impl Engine for MioEngine {
    fn name(&self) -> &'static str {
        "mio"
    }

    unsafe fn push(&self, user_data: u64, op: &Op, link: Link) -> bool {
        let mut st = lock(&self.st);
        if st.sq.len() >= self.capacity {
            return false;
        }
        st.sq.push(Sqe {
            user_data,
            op: *op,
            link,
        });
        true
    }

    fn sq_space(&self) -> usize {
        self.capacity.saturating_sub(lock(&self.st).sq.len())
    }

    fn flush(&self) -> io::Result<usize> {
        Ok(self.flush_inner(true))
    }

    fn flush_and_reap(&self, out: &mut Vec<Cqe>) -> io::Result<usize> {
        let mut st = lock(&self.st);
        // What socket ops of this flush make ready (a loopback peer's data),
        // this thread reaps: no wake-up of the completion thread for it.
        // File ops complete on the pool, which posts them itself.
        // It stays muted until this thread goes idle (`idle`).
        #[cfg(unix)]
        if st.sq.iter().any(|s| wakes_poll(&s.op)) {
            self.waiter.mute();
        }
        let n = if st.sq.is_empty() {
            0
        } else {
            self.dispatch(&mut st)
        };
        self.gather(&mut st, out);
        Ok(n)
    }

    fn reap(&self, out: &mut Vec<Cqe>) {
        let mut st = lock(&self.st);
        self.gather(&mut st, out);
    }

    fn wait(&self, out: &mut Vec<Cqe>) -> io::Result<()> {
        // The caller sleeps for completions itself: it must see every event.
        #[cfg(unix)]
        self.waiter.unmute();
        self.reap(out);
        if !out.is_empty() {
            return Ok(());
        }
        self.wait_ready()?;
        self.reap(out);
        Ok(())
    }

    #[cfg(unix)]
    fn wait_ready(&self) -> io::Result<()> {
        // The deadline bounds the wait where no timerfd rings for it.
        let timeout = {
            let st = lock(&self.st);
            st.deadlines.iter().map(|d| d.at).min()
        }
        .map(|at| {
            let ms = at.saturating_duration_since(Instant::now()).as_millis();
            ms.min(i32::MAX as u128) as i32 + 1
        })
        .unwrap_or(-1);
        self.waiter.wait(timeout)
    }

    #[cfg(unix)]
    fn wake(&self) {
        self.waiter.wake();
        // Completion mode 'loop' has no thread in `wait`: the event loop
        // watches the poll itself (`notify_fd`), which the waker rings. A
        // ring that reaped into its inbox and cannot use its timer (see
        // flush_quiet in the node crate) counts on this.
        self.rung.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }

    fn send_now(&self, fd: i32, iov: &[libc::iovec]) -> Result<usize, i32> {
        crate::engine::control::send_now(fd, iov)
    }

    fn supports(&self, feature: Feature) -> bool {
        match feature {
            Feature::Ftruncate | Feature::Link => true,
            Feature::SendZc | Feature::FixedOpen | Feature::FixedInstall => false,
        }
    }

    unsafe fn register_buf_ring(&self, ring_addr: u64, entries: u16, bgid: u16) -> io::Result<()> {
        let ring = BufRing::new(ring_addr, entries).map_err(io::Error::from_raw_os_error)?;
        let mut st = lock(&self.st);
        if st.rings.contains_key(&bgid) {
            return Err(io::Error::from_raw_os_error(libc::EEXIST));
        }
        st.rings.insert(bgid, ring);
        Ok(())
    }

    fn unregister_buf_ring(&self, bgid: u16) -> io::Result<()> {
        match lock(&self.st).rings.remove(&bgid) {
            Some(_) => Ok(()),
            None => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }

    #[cfg(unix)]
    fn notify_fd(&self) -> Option<i32> {
        Some(self.poll_fd)
    }

    fn forget_fd(&self, fd: i32) {
        let mut st = lock(&self.st);
        forget(&mut st, fd);
    }

    #[cfg(unix)]
    fn idle(&self) {
        self.waiter.unmute();
    }

    fn set_notify(&self, notify: Option<super::Notify>) {
        *self.done.notify.write().unwrap_or_else(|p| p.into_inner()) = notify;
    }

    fn degradations(&self) -> Vec<String> {
        vec![
            "zero-copy sends copy (no SENDMSG_ZC)".into(),
            "registered buffers are plain aligned memory".into(),
            "linked ops run one after another on one pool thread (no linked SQEs)".into(),
            "files are plain descriptors (no registered file table)".into(),
            format!(
                "file I/O that misses the page cache runs on a pool of up to {} threads",
                self.pool.threads()
            ),
        ]
    }
}

impl Drop for MioEngine {
    fn drop(&mut self) {
        self.pool.stop();
    }
}

// SAFETY: the raw pointers held in pending ops point into the driver's slab
// entries (Engine::push's contract); every access to them is serialised by
// the state lock or owned by the one pool thread running the job.
unsafe impl Send for MioEngine {}
// SAFETY: as above; all shared state is behind `st`, the pool's locks or
// mio's thread-safe Waker.
unsafe impl Sync for MioEngine {}
