//! The sim engine: ops run against an in-memory disk ([`disk`]) instead of
//! the kernel, in an order drawn from a seed, so a program's storage code
//! can be tested against power loss ([`SimEngine::crash`]) without touching
//! a real file. Nothing here reaches the kernel's files or sockets; the
//! one descriptor the engine has is the eventfd that wakes whoever waits
//! for its completions.
//!
//! Every op completes when it is flushed (a disk without latency); what the
//! seed decides is the order in which the completions of one flush are
//! posted (chains stay in order), and what a `Random` crash keeps. Virtual
//! time moves a microsecond per op; files carry it as their times.

pub mod disk;
pub mod fault;
mod net;

use super::buf_ring::BufRing;
use super::eventfd::EventFd;
use super::{Engine, EngineConfig, Feature, MAX_CHAIN};
use crate::file_table::DioAlign;
use crate::op::{
    BlockingCall, Cqe, Link, Op, Statx, SyncKind, Target, CURRENT_POSITION, END_OF_FILE,
};
use disk::{Chooser, CrashMode, Disk, Ino, Keep, Node, Time, SECTOR};
use fault::{Fault, FaultKind};
use std::collections::{HashMap, VecDeque};
use std::ffi::CStr;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;

/// The sim disk's default size: `ENOSPC` past it.
pub const DEFAULT_CAPACITY: u64 = 1 << 30;

/// The umask of whoever runs ops on the sim (the usual 022): what it
/// clears from the mode of a file or directory it creates, as the kernel
/// does with the process's umask.
pub const UMASK: u32 = 0o022;

/// An open file of the sim.
struct Open {
    ino: Ino,
    flags: i32,
    pos: u64,
    /// The path it was opened by (what fault rules match for fd ops).
    path: Vec<u8>,
}

struct State {
    disk: Disk,
    files: HashMap<i32, Open>,
    /// Descriptors are never reused, so a handle from before a crash
    /// stays stale (EBADF) forever.
    next_fd: i32,
    sq: Vec<(u64, Op, Link)>,
    cq: VecDeque<Cqe>,
    rng: u64,
    /// Virtual time, in nanoseconds.
    clock: u64,
    faults: Vec<Fault>,
    /// One line per op run: virtual time, op, path, result.
    trace: VecDeque<String>,
    /// Ops run so far: a point of the run (see [`SimEngine::point`]).
    ops: u64,
    /// While recording (see [`SimEngine::record`]): the disk after each op
    /// that may change it, with the point it was taken at.
    recording: Option<Vec<(u64, Disk)>>,
    /// The last recording, and the crash states built from it.
    recorded: Vec<(u64, Disk)>,
    states: Vec<(u64, Disk)>,
    /// Sockets and what travels between them (see [`net`]).
    net: net::Net,
    /// Virtual time the ops run so far in this chain were delayed by
    /// (fault rules), in nanoseconds.
    delay: u64,
}

// SAFETY: the pointers in queued ops point into the driver's slab entries,
// which stay allocated until the op's completion is reaped (Engine::push's
// contract); the state is only touched under its lock.
unsafe impl Send for State {}

/// The sim engine; see the module documentation.
pub struct SimEngine {
    st: Mutex<State>,
    eventfd: EventFd,
    capacity: usize,
    seed: u64,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// splitmix64: the seed's sequence.
fn next(rng: &mut u64) -> u64 {
    *rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *rng;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SimEngine {
    pub fn new(cfg: &EngineConfig) -> io::Result<SimEngine> {
        let eventfd = EventFd::new()?;
        Ok(SimEngine {
            st: Mutex::new(State {
                disk: Disk::new(DEFAULT_CAPACITY, (0, 0)),
                files: HashMap::new(),
                next_fd: 3,
                sq: Vec::new(),
                cq: VecDeque::new(),
                rng: cfg.seed,
                clock: 0,
                faults: Vec::new(),
                trace: VecDeque::new(),
                ops: 0,
                recording: None,
                recorded: Vec::new(),
                states: Vec::new(),
                net: net::Net::default(),
                delay: 0,
            }),
            eventfd,
            capacity: (cfg.entries as usize).max(MAX_CHAIN),
            seed: cfg.seed,
        })
    }

    /// The seed the engine was made with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Power loss: every open file of the engine is gone (its descriptor
    /// answers EBADF from now on), and the disk becomes what `mode` says
    /// survived. Completions posted before stay to be reaped.
    pub fn crash(&self, mode: CrashMode) {
        let mut st = lock(&self.st);
        st.files.clear();
        net::crash(&mut st);
        let State { disk, rng, .. } = &mut *st;
        disk.crash(mode, &mut |n| next(rng) % n.max(1));
        let settled = !st.cq.is_empty();
        drop(st);
        if settled {
            self.signal();
        }
    }

    /// Cuts the sim's network: every connection with an end on `port`
    /// (every connection when `None`) carries nothing until [`SimEngine::heal`],
    /// and a connect across the cut is never answered.
    pub fn partition(&self, port: Option<u16>) {
        net::partition(&mut lock(&self.st), port);
    }

    /// Moves virtual time on by `ns`; what falls due meanwhile happens.
    /// (ringline's own waits on a sim ring, such as `rm`'s retry delay,
    /// pass this way instead of in real time.)
    pub fn advance(&self, ns: u64) {
        let mut st = lock(&self.st);
        st.clock = st.clock.saturating_add(ns);
        net::settle(&mut st);
        let posted = !st.cq.is_empty();
        drop(st);
        if posted {
            self.signal();
        }
    }

    /// Removes every partition: what they held back travels on.
    pub fn heal(&self) {
        let mut st = lock(&self.st);
        net::heal(&mut st);
        net::settle(&mut st);
        let posted = !st.cq.is_empty();
        drop(st);
        if posted {
            self.signal();
        }
    }

    /// Where the run is: how many ops ran so far. A workload notes it when
    /// it is told something is durable, and compares it with a crash
    /// state's point.
    pub fn point(&self) -> u64 {
        lock(&self.st).ops
    }

    /// Starts (`true`) or stops recording the disk after every op that may
    /// change it, for [`SimEngine::build_states`].
    pub fn record(&self, on: bool) {
        let mut st = lock(&self.st);
        if on {
            let first = (st.ops, st.disk.clone());
            st.recording = Some(vec![first]);
        } else if let Some(r) = st.recording.take() {
            st.recorded = r;
        }
    }

    /// Builds the distinct crash states of the last recording, at most
    /// `limit` (each distinct disk at the first and the last point it is
    /// found at): at every recorded point, the disk with nothing unsynced
    /// kept and with everything kept; with `reorder`, every single
    /// unsynced write or name change lost while the rest is kept; with
    /// `torn`, every unsynced write torn (its first half of sectors kept,
    /// or each prefix of its sectors, the later writes to its file lost).
    /// Returns how many, and whether `limit` cut the list short.
    pub fn build_states(&self, torn: Torn, reorder: bool, limit: usize) -> (usize, bool) {
        let mut st = lock(&self.st);
        let recorded = std::mem::take(&mut st.recorded);
        // Each distinct disk is checked at the first point and at the last
        // point it can be found at: a check of what must have survived is
        // strictest at the last, one of what must not be there yet at the
        // first.
        let mut seen: HashMap<u64, usize> = HashMap::new();
        let mut last: HashMap<u64, (u64, Disk)> = HashMap::new();
        let mut states: Vec<(u64, Disk)> = Vec::new();
        let mut cut = false;
        'points: for (point, disk) in &recorded {
            let (writes, names) = disk.pending();
            let mut plans: Vec<Plan> = vec![Plan::All(false), Plan::All(true)];
            if reorder {
                plans.extend(writes.iter().map(|w| Plan::OmitWrite(*w)));
                plans.extend(names.iter().map(|n| Plan::OmitName(n.clone())));
            }
            match torn {
                Torn::No => {}
                Torn::Half => plans.extend(writes.iter().map(|w| Plan::Tear(*w, None))),
                Torn::EverySector => {
                    for w in &writes {
                        let sectors = disk.write_sectors(*w).min(MAX_TEAR_SECTORS);
                        plans.extend((1..sectors).map(|k| Plan::Tear(*w, Some(k))));
                    }
                }
            }
            for mut plan in plans {
                let mut image = disk.clone();
                image.crash_with(&mut plan);
                let digest = image.digest();
                if let Some(&first) = seen.get(&digest) {
                    if states[first].0 < *point {
                        last.insert(digest, (*point, image));
                    }
                    continue;
                }
                if states.len() == limit {
                    cut = true;
                    break 'points;
                }
                seen.insert(digest, states.len());
                states.push((*point, image));
            }
        }
        let mut later: Vec<(u64, Disk)> = last.into_values().collect();
        later.sort_by_key(|(point, _)| *point);
        for state in later {
            if states.len() == limit {
                cut = true;
                break;
            }
            states.push(state);
        }
        st.recorded = recorded;
        st.states = states;
        (st.states.len(), cut)
    }

    /// Puts crash state `i` of [`SimEngine::build_states`] on the disk, as
    /// a reboot finds it (no file open); returns its point.
    pub fn load_state(&self, i: usize) -> Option<u64> {
        let mut st = lock(&self.st);
        let (point, disk) = st.states.get(i)?.clone();
        st.disk = disk;
        st.files.clear();
        Some(point)
    }

    /// Adds a fault rule (see [`fault::Fault`]); rules are tried in the
    /// order they were added.
    pub fn add_fault(&self, f: Fault) {
        lock(&self.st).faults.push(f);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        lock(&self.st).faults.clear();
    }

    /// Every op run so far, one line each: virtual time in microseconds,
    /// the op, its path, its result (and the fault that hit it); the last
    /// [`TRACE_LINES`] of them. The same program on the same seed gives the
    /// same lines.
    pub fn trace(&self) -> Vec<String> {
        lock(&self.st).trace.iter().cloned().collect()
    }

    /// Runs every pushed op (chains in order, an op after a broken link
    /// cancelled), then posts their completions, chain by chain, in an
    /// order drawn from the seed. Returns how many ops ran.
    fn dispatch(&self) -> usize {
        let mut st = lock(&self.st);
        let sq = std::mem::take(&mut st.sq);
        let n = sq.len();
        if n == 0 {
            return 0;
        }
        // Chains run in order; then the seed orders their completions, and
        // delayed ones come after the others.
        let mut groups: Vec<(u64, Vec<Cqe>)> = Vec::new();
        let mut i = 0;
        while i < n {
            let (user_data, op, link) = sq[i];
            if net::is_net(&op) {
                // A connect may carry a linked timeout; nothing else links.
                let timeout = match (op, link, sq.get(i + 1)) {
                    (Op::Connect { .. }, Link::Next, Some((t, Op::LinkTimeout { ts }, _))) => {
                        i += 1;
                        // SAFETY: the timespec lives in the op's slab entry
                        // until it completes.
                        Some((*t, unsafe { **ts }))
                    }
                    _ => None,
                };
                net::start(&mut st, user_data, op, timeout);
                i += 1;
                continue;
            }
            let mut group = Vec::new();
            let mut broken = false;
            loop {
                let (user_data, op, link) = sq[i];
                let result = if broken {
                    -libc::ECANCELED
                } else {
                    let (r, whole) = run(&mut st, &op);
                    broken = !whole && link != Link::Always;
                    r
                };
                group.push(Cqe {
                    user_data,
                    result,
                    flags: 0,
                });
                i += 1;
                if link == Link::None || i == n {
                    break;
                }
            }
            groups.push((std::mem::take(&mut st.delay), group));
        }
        for k in (1..groups.len()).rev() {
            let j = (next(&mut st.rng) % (k as u64 + 1)) as usize;
            groups.swap(k, j);
        }
        groups.sort_by_key(|(delay, _)| *delay);
        if let Some((delay, _)) = groups.last() {
            st.clock += delay;
        }
        for (_, g) in groups {
            st.cq.extend(g);
        }
        net::settle(&mut st);
        n
    }

    fn signal(&self) {
        self.eventfd.signal();
    }
}

/// The most trace lines a sim keeps: past it, the oldest go (a long run's
/// trace would otherwise grow without bound).
pub const TRACE_LINES: usize = 1 << 20;

/// Adds a line to the trace.
fn trace(st: &mut State, line: String) {
    if st.trace.len() == TRACE_LINES {
        st.trace.pop_front();
    }
    st.trace.push_back(line);
}

fn now(st: &State) -> Time {
    (
        (st.clock / 1_000_000_000) as i64 + 1_700_000_000,
        (st.clock % 1_000_000_000) as u32,
    )
}

/// The paths an op names, as bytes: its path (a symlink's new name, a
/// rename's or link's source), and a second one (a rename's or link's
/// target, a symlink's target); empty where it names none.
fn paths_of(op: &Op) -> (&[u8], &[u8]) {
    let none = std::ptr::null();
    let (a, b) = match *op {
        Op::Open { path, .. }
        | Op::StatPath { path, .. }
        | Op::Unlink { path, .. }
        | Op::Mkdir { path, .. } => (path, none),
        Op::Rename { from, to } | Op::Link { from, to } => (from, to),
        Op::Symlink { target, path } => (path, target),
        _ => (none, none),
    };
    let bytes = |p: *const libc::c_char| -> &[u8] {
        if p.is_null() {
            return &[];
        }
        // SAFETY: an op's paths are NUL-terminated strings its slab entry
        // owns until its completion is reaped (Engine::push's contract);
        // the sim reads them while it runs the op, before that.
        unsafe { CStr::from_ptr(p) }.to_bytes()
    };
    (bytes(a), bytes(b))
}

/// The name fault rules and the trace give an op.
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Nop => "nop",
        Op::Open { .. } | Op::OpenFixed { .. } => "open",
        Op::Close { .. } | Op::CloseFixed { .. } => "close",
        Op::Read { .. } | Op::Readv { .. } => "read",
        Op::Write { .. } | Op::Writev { .. } => "write",
        Op::Fsync { .. } => "fsync",
        Op::Statx { .. } | Op::StatPath { .. } => "stat",
        Op::Ftruncate { .. } => "truncate",
        Op::Unlink { .. } => "unlink",
        Op::Rename { .. } => "rename",
        Op::Mkdir { .. } => "mkdir",
        Op::Symlink { .. } => "symlink",
        Op::Link { .. } => "link",
        // SAFETY: the call lives in the op's slab entry until it completes.
        Op::Blocking { call } => call_name(unsafe { &**call }),
        Op::Cancel { .. } | Op::CancelFile { .. } | Op::CancelAll => "cancel",
        Op::InstallFixed { .. } => "install",
        _ => net::net_op_name(op),
    }
}

fn call_name(call: &BlockingCall) -> &'static str {
    match call {
        BlockingCall::Access { .. } => "access",
        BlockingCall::Readdir { .. } => "readdir",
        BlockingCall::Readlink { .. } => "readlink",
        BlockingCall::Realpath { .. } => "realpath",
        BlockingCall::Chmod { .. } => "chmod",
        BlockingCall::Chown { .. } => "chown",
        BlockingCall::Utimes { .. } => "utimes",
        BlockingCall::Mkdtemp { .. } => "mkdtemp",
        BlockingCall::Statfs { .. } => "statfs",
        BlockingCall::ReadFile { .. } | BlockingCall::ReadRest { .. } => "readFile",
        BlockingCall::WriteFile { .. } => "writeFile",
        BlockingCall::CopyFile { .. } => "copyFile",
    }
}

/// The path an op names (an fd op: the path its file was opened by).
fn op_path(st: &State, op: &Op) -> Vec<u8> {
    let of_fd = |fd: i32| {
        st.files
            .get(&fd)
            .map(|o| o.path.clone())
            .unwrap_or_default()
    };
    match *op {
        Op::Open { .. }
        | Op::StatPath { .. }
        | Op::Unlink { .. }
        | Op::Mkdir { .. }
        | Op::Rename { .. }
        | Op::Link { .. }
        | Op::Symlink { .. } => paths_of(op).0.to_vec(),
        Op::Close { fd } | Op::Statx { fd, .. } => of_fd(fd),
        Op::Read { target, .. }
        | Op::Write { target, .. }
        | Op::Readv { target, .. }
        | Op::Writev { target, .. }
        | Op::Fsync { target, .. }
        | Op::Ftruncate { target, .. } => fd_of(target).map(of_fd).unwrap_or_default(),
        // SAFETY: the call lives in the op's slab entry until it completes.
        Op::Blocking { call } => match unsafe { &*call } {
            BlockingCall::Access { path: p, .. }
            | BlockingCall::Readdir { path: p, .. }
            | BlockingCall::Readlink { path: p, .. }
            | BlockingCall::Realpath { path: p, .. }
            | BlockingCall::Statfs { path: p, .. }
            | BlockingCall::ReadFile { path: p, .. }
            | BlockingCall::WriteFile { path: p, .. } => p.to_bytes().to_vec(),
            BlockingCall::CopyFile { src, .. } => src.to_bytes().to_vec(),
            BlockingCall::Mkdtemp { prefix, .. } => prefix.clone(),
            BlockingCall::Chmod { path: p, fd, .. }
            | BlockingCall::Chown { path: p, fd, .. }
            | BlockingCall::Utimes { path: p, fd, .. } => match p {
                Some(p) => p.to_bytes().to_vec(),
                None => of_fd(*fd),
            },
            BlockingCall::ReadRest { .. } => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Runs one op as [`exec`] does, after the fault rules had their say, and
/// writes its trace line.
fn run(st: &mut State, op: &Op) -> (i32, bool) {
    st.clock += 1_000;
    let name = op_name(op);
    let p = op_path(st, op);
    let fault = {
        let State { faults, rng, .. } = &mut *st;
        fault::pick(faults, name, &p, &mut || (next(rng) % 1_000_000) as u32)
    };
    // A durable write (RWF_DSYNC, RWF_SYNC) is a write, then a sync of it:
    // the rules on fsync meet its sync (when its write met none), so a
    // fault on a log's fsyncs hits its synced appends however they go.
    let sync_fault = match (fault, op) {
        (None, Op::Write { sync: Some(_), .. }) => {
            let State { faults, rng, .. } = &mut *st;
            fault::pick(faults, "fsync", &p, &mut || (next(rng) % 1_000_000) as u32)
        }
        _ => None,
    };
    let mut op = *op;
    let out = match (fault, sync_fault, &mut op) {
        (None, Some(FaultKind::Error(e)), Op::Write { target, sync, .. }) => {
            // Written, and its sync fails as a failed fsync does: the
            // error, and the file's dirty pages dropped.
            *sync = None;
            let target = *target;
            match exec(st, &op) {
                (r, _) if r < 0 => (r, false),
                _ => {
                    if let Some(ino) = fd_of(target)
                        .ok()
                        .and_then(|fd| st.files.get(&fd))
                        .map(|o| o.ino)
                    {
                        st.disk.drop_dirty(ino);
                    }
                    (-e, false)
                }
            }
        }
        (None, Some(FaultKind::Delay(ns)), _) => {
            st.delay += ns;
            exec(st, &op)
        }
        (_, Some(_), _) => exec(st, &op),
        (Some(FaultKind::Error(e)), _, Op::Fsync { target, .. }) => {
            // Linux drops the dirty pages of a failed writeback.
            if let Some(ino) = fd_of(*target)
                .ok()
                .and_then(|fd| st.files.get(&fd))
                .map(|o| o.ino)
            {
                st.disk.drop_dirty(ino);
            }
            (-e, false)
        }
        (Some(FaultKind::Error(e)), _, _) => (-e, false),
        (
            Some(k @ (FaultKind::Lost | FaultKind::Torn | FaultKind::Misdirected)),
            _,
            Op::Write {
                target,
                ptr,
                len,
                offset,
                sync,
                ..
            },
        ) => {
            // SAFETY: the op's buffer holds len bytes until it completes.
            let buf = unsafe { std::slice::from_raw_parts(*ptr, *len as usize) };
            let sync = sync.is_some();
            match fd_of(*target).and_then(|fd| tampered_write(st, fd, buf, *offset, k, sync)) {
                Ok(n) => (n, true),
                Err(e) => (-e, false),
            }
        }
        (
            Some(k @ (FaultKind::Torn | FaultKind::Misdirected | FaultKind::Short)),
            _,
            Op::Writev {
                target,
                iov,
                count,
                offset,
            },
        ) => {
            // The buffers as one write, which the fault tampers with.
            // SAFETY: the op's iovec array (count entries) lives until it
            // completes, each naming bytes the op owns.
            let iovs = unsafe { std::slice::from_raw_parts(*iov, *count as usize) };
            let mut buf = Vec::new();
            for v in iovs {
                // SAFETY: as above.
                buf.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(v.iov_base.cast::<u8>(), v.iov_len)
                });
            }
            let r = fd_of(*target).and_then(|fd| match k {
                FaultKind::Short => write(
                    st,
                    fd,
                    &buf[..(buf.len() / 2).max(1).min(buf.len())],
                    *offset,
                    false,
                ),
                _ => tampered_write(st, fd, &buf, *offset, k, false),
            });
            match r {
                Ok(n) => (n, k != FaultKind::Short),
                Err(e) => (-e, false),
            }
        }
        (Some(FaultKind::Lost), _, Op::Writev { iov, count, .. }) => {
            // SAFETY: the op's iovec array lives until it completes.
            let iovs = unsafe { std::slice::from_raw_parts(*iov, *count as usize) };
            (iovs.iter().map(|v| v.iov_len).sum::<usize>() as i32, true)
        }
        (Some(FaultKind::Short), _, Op::Read { len, .. } | Op::Write { len, .. }) => {
            *len = (*len / 2).max(1);
            let (r, _) = exec(st, &op);
            (r, false)
        }
        (Some(FaultKind::Bitflip), _, Op::Read { ptr, .. }) => {
            let ptr = *ptr;
            let (r, whole) = exec(st, &op);
            if r > 0 {
                let bit = next(&mut st.rng) % (r as u64 * 8);
                // SAFETY: the read filled r bytes of the op's buffer.
                unsafe { *ptr.add((bit / 8) as usize) ^= 1 << (bit % 8) };
            }
            (r, whole)
        }
        (Some(FaultKind::Delay(ns)), _, _) => {
            st.delay += ns;
            exec(st, &op)
        }
        _ => exec(st, &op),
    };
    let hit = match (fault, sync_fault) {
        (Some(k), _) => format!(" [fault {k:?}]"),
        (None, Some(k)) => format!(" [fsync fault {k:?}]"),
        (None, None) => String::new(),
    };
    let line = format!(
        "{} {} {} -> {}{}",
        st.clock / 1_000,
        name,
        String::from_utf8_lossy(&p),
        out.0,
        hit
    );
    trace(st, line);
    st.ops += 1;
    let reads_only = matches!(
        name,
        "read" | "stat" | "readdir" | "readlink" | "access" | "statfs" | "nop" | "cancel"
    );
    if !reads_only {
        let ops = st.ops;
        let disk = st.recording.is_some().then(|| st.disk.clone());
        if let (Some(r), Some(d)) = (st.recording.as_mut(), disk) {
            r.push((ops, d));
        }
    }
    out
}

/// One crash state to build from a recorded disk.
enum Plan {
    /// Everything unsynced kept (`true`) or lost.
    All(bool),
    /// Everything kept but this write.
    OmitWrite((Ino, usize)),
    /// Everything kept but this name change.
    OmitName((Ino, Vec<u8>)),
    /// The writes to this file before this one kept, this one torn (the
    /// first this many of its sectors; `None`: the first half), the later
    /// ones lost; everything else kept.
    Tear((Ino, usize), Option<usize>),
}

/// Which torn writes [`SimEngine::build_states`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Torn {
    No,
    /// Each unsynced write with the first half of its sectors kept.
    Half,
    /// Each unsynced write with each prefix of its sectors kept (a disk
    /// writes a request's sectors in order; up to [`MAX_TEAR_SECTORS`]).
    EverySector,
}

/// The most sectors of one write [`Torn::EverySector`] tears at.
pub const MAX_TEAR_SECTORS: usize = 256;

impl Chooser for Plan {
    fn write(&mut self, ino: Ino, idx: usize) -> Keep {
        match self {
            Plan::All(false) => Keep::Lost,
            Plan::All(true) | Plan::OmitName(_) => Keep::Whole,
            Plan::OmitWrite(w) if *w == (ino, idx) => Keep::Lost,
            Plan::OmitWrite(_) => Keep::Whole,
            Plan::Tear((f, k), _) if *f == ino => match idx.cmp(k) {
                std::cmp::Ordering::Less => Keep::Whole,
                std::cmp::Ordering::Equal => Keep::Torn,
                std::cmp::Ordering::Greater => Keep::Lost,
            },
            Plan::Tear(..) => Keep::Whole,
        }
    }

    fn sector(&mut self, _: Ino, _: usize, s: usize, sectors: usize) -> bool {
        match self {
            Plan::Tear(_, Some(keep)) => s < *keep,
            _ => s < sectors / 2,
        }
    }

    fn name(&mut self, dir: Ino, name: &[u8]) -> bool {
        match self {
            Plan::All(keep) => *keep,
            Plan::OmitName((d, n)) => !(*d == dir && n.as_slice() == name),
            _ => true,
        }
    }

    fn truncate(&mut self, _: Ino) -> bool {
        !matches!(self, Plan::All(false))
    }
}

/// What one op did, and whether it did all it was asked (a link breaks
/// after an op that did not).
fn exec(st: &mut State, op: &Op) -> (i32, bool) {
    let (p1, p2) = paths_of(op);
    let r = match *op {
        Op::Nop => Ok(0),
        Op::Open { flags, mode, .. } => open(st, p1, flags, mode),
        Op::Close { fd } => close(st, fd),
        Op::Read {
            target,
            ptr,
            len,
            offset,
            ..
        } => fd_of(target).and_then(|fd| {
            // SAFETY: the op's buffer holds len bytes until it completes.
            let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len as usize) };
            read(st, fd, buf, offset)
        }),
        Op::Write {
            target,
            ptr,
            len,
            offset,
            sync,
            ..
        } => fd_of(target).and_then(|fd| {
            // SAFETY: as for a read.
            let buf = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
            write(st, fd, buf, offset, sync.is_some())
        }),
        Op::Readv {
            target,
            iov,
            count,
            offset,
        } => vectored(st, target, iov, count, offset, false),
        Op::Writev {
            target,
            iov,
            count,
            offset,
        } => vectored(st, target, iov, count, offset, true),
        Op::Fsync { target, kind } => fd_of(target).and_then(|fd| {
            let _: SyncKind = kind;
            let ino = st.files.get(&fd).ok_or(libc::EBADF)?.ino;
            st.disk.sync(ino).map(|()| 0)
        }),
        Op::Statx { fd, out } => {
            let ino = st.files.get(&fd).map(|o| o.ino).ok_or(libc::EBADF);
            // SAFETY: out points at the op's statx buffer.
            ino.map(|ino| fill_statx(st, ino, unsafe { &mut *out }))
        }
        Op::Ftruncate { target, len } => fd_of(target).and_then(|fd| truncate_fd(st, fd, len)),
        Op::StatPath { flags, out, .. } => {
            let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
            st.disk.resolve(p1, follow).and_then(|r| {
                let ino = r.ino.ok_or(libc::ENOENT)?;
                // SAFETY: out is the op's statx buffer, unaliased until it completes.
                Ok(fill_statx(st, ino, unsafe { &mut *out }))
            })
        }
        Op::Unlink { flags, .. } => unlink(st, p1, flags & libc::AT_REMOVEDIR != 0),
        Op::Rename { .. } => rename(st, p1, p2),
        Op::Mkdir { mode, .. } => mkdir(st, p1, mode),
        Op::Symlink { .. } => symlink(st, p2, p1),
        Op::Link { .. } => hard_link(st, p1, p2),
        // SAFETY: the call lives in the op's slab entry until it completes,
        // and nothing else touches it meanwhile.
        Op::Blocking { call } => blocking(st, unsafe { &mut *call }),
        Op::Cancel { user_data } => net::cancel(st, user_data),
        Op::CancelFile { target } => Ok(net::cancel_all(st, fd_of(target).ok())),
        Op::CancelAll => Ok(net::cancel_all(st, None)),
        Op::OpenFixed { .. } | Op::CloseFixed { .. } | Op::InstallFixed { .. } => {
            Err(libc::EOPNOTSUPP)
        }
        // Run by the network (dispatch gives them to net::start).
        Op::AcceptMulti { .. }
        | Op::Connect { .. }
        | Op::LinkTimeout { .. }
        | Op::RecvMulti { .. }
        | Op::Send { .. }
        | Op::SendMsg { .. }
        | Op::SendZc { .. }
        | Op::Shutdown { .. } => Err(libc::EINVAL),
    };
    match r {
        Ok(n) => {
            let whole = match *op {
                Op::Read { len, .. } | Op::Write { len, .. } => n as u32 == len,
                _ => true,
            };
            (n, whole)
        }
        Err(e) => (-e, false),
    }
}

/// A readv or writev: one read or write per buffer, in order, from
/// `offset` on (or at the file position, or the end), stopping after a
/// short one.
fn vectored(
    st: &mut State,
    target: Target,
    iov: *const libc::iovec,
    count: u32,
    offset: u64,
    write: bool,
) -> Result<i32, i32> {
    // SAFETY: the op's iovec array (count entries) lives until it completes.
    let iovs = unsafe { std::slice::from_raw_parts(iov, count as usize) };
    let mut total = 0u64;
    for v in iovs {
        let (ptr, len) = (v.iov_base.cast::<u8>(), v.iov_len as u32);
        let offset = match offset {
            CURRENT_POSITION | END_OF_FILE => offset,
            o => o + total,
        };
        let one = if write {
            Op::Write {
                target,
                ptr,
                len,
                offset,
                fixed: None,
                sync: None,
            }
        } else {
            Op::Read {
                target,
                ptr,
                len,
                offset,
                fixed: None,
            }
        };
        let (n, whole) = exec(st, &one);
        if n < 0 {
            return Err(-n);
        }
        total += n as u64;
        if !whole {
            break;
        }
    }
    Ok(total as i32)
}

/// The descriptor an op names (the sim has no registered file table).
fn fd_of(t: Target) -> Result<i32, i32> {
    match t {
        Target::Fd(fd) => Ok(fd),
        Target::Fixed(_) => Err(libc::EBADF),
    }
}

fn fill_statx(st: &State, ino: Ino, out: &mut Statx) -> i32 {
    let Some(i) = st.disk.get(ino) else {
        return -libc::ENOENT;
    };
    let ts = |t: Time| {
        // SAFETY: plain old data; all-zero is valid.
        let mut x: libc::statx_timestamp = unsafe { std::mem::zeroed() };
        x.tv_sec = t.0;
        x.tv_nsec = t.1;
        x
    };
    // SAFETY: statx is plain old data; all-zero is valid.
    *out = unsafe { std::mem::zeroed() };
    out.stx_mask = libc::STATX_BASIC_STATS | libc::STATX_BTIME;
    out.stx_blksize = 4096;
    out.stx_nlink = i.nlink;
    out.stx_uid = i.uid;
    out.stx_gid = i.gid;
    out.stx_mode = i.mode as u16;
    out.stx_ino = ino;
    out.stx_size = i.size();
    out.stx_blocks = i.size().div_ceil(SECTOR as u64);
    out.stx_atime = ts(i.atime);
    out.stx_mtime = ts(i.mtime);
    out.stx_ctime = ts(i.ctime);
    out.stx_btime = ts(i.btime);
    out.stx_dev_minor = 0x51; // the sim's device
    0
}

fn open(st: &mut State, p: &[u8], flags: i32, mode: u32) -> Result<i32, i32> {
    let t = now(st);
    let follow = flags & libc::O_NOFOLLOW == 0;
    let r = st.disk.resolve(p, follow)?;
    let creat = flags & libc::O_CREAT != 0;
    let ino = match r.ino {
        Some(_) if creat && flags & libc::O_EXCL != 0 => return Err(libc::EEXIST),
        Some(ino) => ino,
        None if creat => {
            if r.name.is_empty() {
                return Err(libc::EISDIR);
            }
            let ino = st.disk.new_file(mode & !UMASK, t);
            st.disk.link(r.parent, &r.name, ino, t);
            ino
        }
        None => return Err(libc::ENOENT),
    };
    let acc = flags & libc::O_ACCMODE;
    let node = &st.disk.get(ino).ok_or(libc::ENOENT)?.node;
    match node {
        Node::Dir { .. } if acc != libc::O_RDONLY => return Err(libc::EISDIR),
        Node::Symlink { .. } => return Err(libc::ELOOP),
        Node::File { .. } if flags & libc::O_DIRECTORY != 0 => return Err(libc::ENOTDIR),
        _ => {}
    }
    if flags & libc::O_TRUNC != 0 && acc != libc::O_RDONLY && matches!(node, Node::File { .. }) {
        st.disk.truncate(ino, 0, t)?;
    }
    let fd = st.next_fd;
    st.next_fd += 1;
    st.files.insert(
        fd,
        Open {
            ino,
            flags,
            pos: 0,
            path: p.to_vec(),
        },
    );
    Ok(fd)
}

fn close(st: &mut State, fd: i32) -> Result<i32, i32> {
    if net::is_socket(st, fd) {
        return net::close(st, fd);
    }
    let o = st.files.remove(&fd).ok_or(libc::EBADF)?;
    let open_elsewhere = st.files.values().any(|f| f.ino == o.ino);
    if !open_elsewhere && st.disk.get(o.ino).is_some_and(|i| i.nlink == 0) {
        st.disk.remove(o.ino);
    }
    Ok(0)
}

/// Whether an `O_DIRECT` transfer of `buf` at `at` breaks the sim's
/// alignment (a sector, for the position, the length and the memory), as
/// Linux refuses one with EINVAL.
fn misaligned(flags: i32, buf: &[u8], at: u64) -> bool {
    let s = SECTOR as u64;
    flags & libc::O_DIRECT != 0
        && [at, buf.len() as u64, buf.as_ptr() as u64]
            .iter()
            .any(|x| !x.is_multiple_of(s))
}

fn read(st: &mut State, fd: i32, buf: &mut [u8], offset: u64) -> Result<i32, i32> {
    let t = now(st);
    let o = st.files.get(&fd).ok_or(libc::EBADF)?;
    if o.flags & libc::O_ACCMODE == libc::O_WRONLY {
        return Err(libc::EBADF);
    }
    let (ino, at) = (
        o.ino,
        if offset == CURRENT_POSITION {
            o.pos
        } else {
            offset
        },
    );
    if misaligned(o.flags, buf, at) {
        return Err(libc::EINVAL);
    }
    let i = st.disk.get_mut(ino).ok_or(libc::EBADF)?;
    let Node::File { data, .. } = &i.node else {
        return Err(libc::EISDIR);
    };
    let start = (at as usize).min(data.len());
    let n = buf.len().min(data.len() - start);
    buf[..n].copy_from_slice(&data[start..start + n]);
    i.atime = t;
    if offset == CURRENT_POSITION {
        st.files.get_mut(&fd).expect("looked up").pos = at + n as u64;
    }
    Ok(n as i32)
}

/// A write to `fd`; `sync` (`RWF_DSYNC`, `RWF_SYNC`) makes what it wrote
/// durable before it completes, as `O_SYNC` and `O_DSYNC` files do.
fn write(st: &mut State, fd: i32, buf: &[u8], offset: u64, sync: bool) -> Result<i32, i32> {
    let t = now(st);
    let o = st.files.get(&fd).ok_or(libc::EBADF)?;
    if o.flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(libc::EBADF);
    }
    let (ino, flags) = (o.ino, o.flags);
    let size = st.disk.get(ino).ok_or(libc::EBADF)?.size();
    // On an O_APPEND file every write goes to the end, positional ones too
    // (Linux's pwrite ignores the offset there).
    let append = offset == END_OF_FILE || flags & libc::O_APPEND != 0;
    let at = if append {
        size
    } else if offset == CURRENT_POSITION {
        o.pos
    } else {
        offset
    };
    if misaligned(flags, buf, at) {
        return Err(libc::EINVAL);
    }
    let n = st.disk.write(ino, at, buf, t)?;
    if offset == CURRENT_POSITION {
        st.files.get_mut(&fd).expect("looked up").pos = at + n as u64;
    }
    if sync || flags & (libc::O_SYNC | libc::O_DSYNC) != 0 {
        make_durable(st, ino, at, n)?;
    }
    Ok(n as i32)
}

/// Makes the `len` bytes at `at` of file `ino`, just written, durable (see
/// [`Disk::sync_range`]). A recording keeps the disk as it was in between
/// too (written, not yet durable: the power may go out while the write
/// syncs), at the point of the op before: the op has not completed there.
fn make_durable(st: &mut State, ino: Ino, at: u64, len: usize) -> Result<(), i32> {
    if st.recording.is_some() {
        let (ops, disk) = (st.ops, st.disk.clone());
        if let Some(r) = st.recording.as_mut() {
            r.push((ops, disk));
        }
    }
    st.disk.sync_range(ino, at, len)
}

/// A write a fault rule tampers with (`Lost`, `Torn`, `Misdirected`; see
/// [`FaultKind`]): it reports every byte written and moves the file
/// position as the write asked for would have, whatever it stored.
fn tampered_write(
    st: &mut State,
    fd: i32,
    buf: &[u8],
    offset: u64,
    kind: FaultKind,
    sync: bool,
) -> Result<i32, i32> {
    let t = now(st);
    let o = st.files.get(&fd).ok_or(libc::EBADF)?;
    if o.flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(libc::EBADF);
    }
    let (ino, flags, pos) = (o.ino, o.flags, o.pos);
    let size = st.disk.get(ino).ok_or(libc::EBADF)?.size();
    let at = if offset == END_OF_FILE || flags & libc::O_APPEND != 0 {
        size
    } else if offset == CURRENT_POSITION {
        pos
    } else {
        offset
    };
    let sector = SECTOR as u64;
    // What it stored, which a synced write (an O_DSYNC file's) makes
    // durable: the disk lied about the rest.
    let stored = match kind {
        FaultKind::Torn => {
            let end = (at + buf.len() as u64 / 2) / sector * sector;
            let keep = end.saturating_sub(at) as usize;
            if keep > 0 {
                st.disk.write(ino, at, &buf[..keep], t)?;
            }
            Some((at, keep))
        }
        FaultKind::Misdirected => {
            let r = next(&mut st.rng);
            let by = (1 + r % 8) * sector;
            let to = if r & 8 != 0 || at < by {
                at + by
            } else {
                at - by
            };
            st.disk.write(ino, to, buf, t)?;
            Some((to, buf.len()))
        }
        _ => None,
    };
    if let (Some((from, n)), true) = (stored, sync || flags & (libc::O_SYNC | libc::O_DSYNC) != 0) {
        make_durable(st, ino, from, n)?;
    }
    if offset == CURRENT_POSITION {
        st.files.get_mut(&fd).expect("looked up").pos = at + buf.len() as u64;
    }
    Ok(buf.len() as i32)
}

fn truncate_fd(st: &mut State, fd: i32, len: u64) -> Result<i32, i32> {
    let t = now(st);
    let o = st.files.get(&fd).ok_or(libc::EBADF)?;
    if o.flags & libc::O_ACCMODE == libc::O_RDONLY {
        return Err(libc::EINVAL);
    }
    let ino = o.ino;
    st.disk.truncate(ino, len, t).map(|()| 0)
}

fn unlink(st: &mut State, p: &[u8], dir: bool) -> Result<i32, i32> {
    let t = now(st);
    let r = st.disk.resolve(p, false)?;
    let ino = r.ino.ok_or(libc::ENOENT)?;
    if r.name.is_empty() {
        return Err(libc::EBUSY);
    }
    match (&st.disk.get(ino).ok_or(libc::ENOENT)?.node, dir) {
        (Node::Dir { entries, .. }, true) if !entries.is_empty() => return Err(libc::ENOTEMPTY),
        (Node::Dir { .. }, false) => return Err(libc::EISDIR),
        (Node::File { .. } | Node::Symlink { .. }, true) => return Err(libc::ENOTDIR),
        _ => {}
    }
    st.disk.unlink(r.parent, &r.name, t);
    st.disk.gone(ino);
    if !st.files.values().any(|f| f.ino == ino) && st.disk.get(ino).is_some_and(|i| i.nlink == 0) {
        st.disk.remove(ino);
    }
    Ok(0)
}

fn rename(st: &mut State, from: &[u8], to: &[u8]) -> Result<i32, i32> {
    let t = now(st);
    // As renameat looks: both parents first, then the names.
    let a = st.disk.resolve(from, false)?;
    let b = st.disk.resolve(to, false)?;
    let ino = a.ino.ok_or(libc::ENOENT)?;
    if a.name.is_empty() || b.name.is_empty() {
        return Err(libc::EBUSY);
    }
    if b.ino == Some(ino) {
        return Ok(0);
    }
    // As renameat checks before the types: a directory moved under itself
    // is EINVAL; a target that is an ancestor of the source, ENOTEMPTY.
    if ino == b.parent || st.disk.contains(ino, b.parent) {
        return Err(libc::EINVAL);
    }
    if let Some(t) = b.ino {
        if t == a.parent || st.disk.contains(t, a.parent) {
            return Err(libc::ENOTEMPTY);
        }
    }
    let is_dir =
        |st: &State, i: Ino| matches!(st.disk.get(i).map(|x| &x.node), Some(Node::Dir { .. }));
    if let Some(old) = b.ino {
        match (is_dir(st, ino), is_dir(st, old)) {
            (true, false) => return Err(libc::ENOTDIR),
            (false, true) => return Err(libc::EISDIR),
            (true, true) => {
                if let Some(Node::Dir { entries, .. }) = st.disk.get(old).map(|x| &x.node) {
                    if !entries.is_empty() {
                        return Err(libc::ENOTEMPTY);
                    }
                }
            }
            _ => {}
        }
        st.disk.unlink(b.parent, &b.name, t);
        st.disk.gone(old);
        if !st.files.values().any(|f| f.ino == old)
            && st.disk.get(old).is_some_and(|i| i.nlink == 0)
        {
            st.disk.remove(old);
        }
    }
    st.disk.unlink(a.parent, &a.name, t);
    st.disk.link(b.parent, &b.name, ino, t);
    Ok(0)
}

fn mkdir(st: &mut State, p: &[u8], mode: u32) -> Result<i32, i32> {
    let t = now(st);
    let r = st.disk.resolve(p, false)?;
    if r.ino.is_some() {
        return Err(libc::EEXIST);
    }
    let ino = st.disk.make(
        Node::Dir {
            entries: Default::default(),
            durable: Default::default(),
        },
        libc::S_IFDIR | (mode & 0o7777 & !UMASK),
        t,
    );
    st.disk.link(r.parent, &r.name, ino, t);
    Ok(0)
}

fn symlink(st: &mut State, target: &[u8], p: &[u8]) -> Result<i32, i32> {
    let t = now(st);
    let r = st.disk.resolve(p, false)?;
    if r.ino.is_some() {
        return Err(libc::EEXIST);
    }
    let ino = st.disk.make(
        Node::Symlink {
            target: target.to_vec(),
        },
        libc::S_IFLNK | 0o777,
        t,
    );
    st.disk.link(r.parent, &r.name, ino, t);
    Ok(0)
}

fn hard_link(st: &mut State, from: &[u8], to: &[u8]) -> Result<i32, i32> {
    let t = now(st);
    let a = st.disk.resolve(from, false)?;
    let ino = a.ino.ok_or(libc::ENOENT)?;
    // As linkat checks: the new name first, then what may be linked.
    let b = st.disk.resolve(to, false)?;
    if b.ino.is_some() {
        return Err(libc::EEXIST);
    }
    if matches!(st.disk.get(ino).map(|x| &x.node), Some(Node::Dir { .. })) {
        return Err(libc::EPERM);
    }
    st.disk.link(b.parent, &b.name, ino, t);
    Ok(0)
}

/// `DT_*` of an inode, as readdir gives it.
fn dirent_type(n: &Node) -> u8 {
    match n {
        Node::File { .. } => libc::DT_REG,
        Node::Dir { .. } => libc::DT_DIR,
        Node::Symlink { .. } => libc::DT_LNK,
    }
}

/// The calls of the blocking lane, on the model. Errors in the encoding
/// `BlockingCall` documents (steps for ReadFile/WriteFile).
fn blocking(st: &mut State, call: &mut BlockingCall) -> Result<i32, i32> {
    use crate::op::call::at_step;
    let t = now(st);
    match call {
        BlockingCall::Access { path: p, mode } => {
            let r = st.disk.resolve(p.to_bytes(), true)?;
            let i = st
                .disk
                .get(r.ino.ok_or(libc::ENOENT)?)
                .ok_or(libc::ENOENT)?;
            // Whoever runs the sim's ops is root, as the owner (uid 0) of
            // what it creates says: it may read and write anything, and
            // execute what has an x bit (search any directory).
            let dir = matches!(i.node, Node::Dir { .. });
            if *mode & libc::X_OK != 0 && !dir && i.mode & 0o111 == 0 {
                return Err(libc::EACCES);
            }
            Ok(0)
        }
        BlockingCall::Readdir { path: p, out } => {
            let r = st.disk.resolve(p.to_bytes(), true)?;
            let ino = r.ino.ok_or(libc::ENOENT)?;
            let Node::Dir { entries, .. } = &st.disk.get(ino).ok_or(libc::ENOENT)?.node else {
                return Err(libc::ENOTDIR);
            };
            for (name, child) in entries {
                out.push(
                    st.disk
                        .get(*child)
                        .map(|i| dirent_type(&i.node))
                        .unwrap_or(0),
                );
                out.extend_from_slice(name);
                out.push(0);
            }
            Ok(entries.len() as i32)
        }
        BlockingCall::Readlink { path: p, out } => {
            let r = st.disk.resolve(p.to_bytes(), false)?;
            let ino = r.ino.ok_or(libc::ENOENT)?;
            match &st.disk.get(ino).ok_or(libc::ENOENT)?.node {
                Node::Symlink { target } => {
                    out.extend_from_slice(target);
                    Ok(target.len() as i32)
                }
                _ => Err(libc::EINVAL),
            }
        }
        BlockingCall::Chmod { path: p, fd, mode } => {
            let ino = lookup(st, p.as_deref(), *fd, true)?;
            let i = st.disk.get_mut(ino).ok_or(libc::ENOENT)?;
            i.mode = (i.mode & libc::S_IFMT) | (*mode & 0o7777);
            i.ctime = t;
            Ok(0)
        }
        BlockingCall::Chown {
            path: p,
            fd,
            uid,
            gid,
            nofollow,
        } => {
            let ino = lookup(st, p.as_deref(), *fd, !*nofollow)?;
            let i = st.disk.get_mut(ino).ok_or(libc::ENOENT)?;
            if *uid != u32::MAX {
                i.uid = *uid;
            }
            if *gid != u32::MAX {
                i.gid = *gid;
            }
            i.ctime = t;
            Ok(0)
        }
        BlockingCall::Utimes {
            path: p,
            fd,
            atime,
            mtime,
            nofollow,
        } => {
            let ino = lookup(st, p.as_deref(), *fd, !*nofollow)?;
            let i = st.disk.get_mut(ino).ok_or(libc::ENOENT)?;
            i.atime = (atime.0, atime.1 as u32);
            i.mtime = (mtime.0, mtime.1 as u32);
            i.ctime = t;
            Ok(0)
        }
        BlockingCall::Mkdtemp { prefix, out } => {
            const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            for _ in 0..100 {
                let mut name = prefix.clone();
                for _ in 0..6 {
                    name.push(CHARS[(next(&mut st.rng) % CHARS.len() as u64) as usize]);
                }
                match mkdir(st, &name, 0o700) {
                    Ok(_) => {
                        *out = name;
                        return Ok(0);
                    }
                    Err(libc::EEXIST) => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(libc::EEXIST)
        }
        BlockingCall::Statfs { path: p, out } => {
            st.disk
                .resolve(p.to_bytes(), true)?
                .ino
                .ok_or(libc::ENOENT)?;
            let blocks = st.disk.capacity / 4096;
            let free = blocks.saturating_sub(st.disk.used() / 4096);
            for f in [
                0x5349_4d00u64 as f64,
                4096.0,
                blocks as f64,
                free as f64,
                free as f64,
                1e6,
                1e6 - st.disk.inodes.len() as f64,
            ] {
                out.extend_from_slice(&f.to_le_bytes());
            }
            Ok(0)
        }
        // The whole-file calls are made of the ops they stand for, each run
        // (and faulted, and traced) as that op.
        BlockingCall::ReadFile {
            path: p,
            flags,
            out,
        } => {
            let (fd, _) = run(
                st,
                &Op::Open {
                    path: p.as_ptr(),
                    flags: *flags,
                    mode: 0o666,
                },
            );
            if fd < 0 {
                return Err(-fd);
            }
            let mut buf: Vec<u8> = Vec::new();
            let r = loop {
                buf.reserve(64 << 10);
                let len = (buf.capacity() - buf.len()).min(u32::MAX as usize) as u32;
                // SAFETY: the spare capacity is len bytes; the read fills what it reports.
                let ptr = unsafe { buf.as_mut_ptr().add(buf.len()) };
                let read = Op::Read {
                    target: Target::Fd(fd),
                    ptr,
                    len,
                    offset: CURRENT_POSITION,
                    fixed: None,
                };
                match run(st, &read).0 {
                    0 => break Ok(buf.len() as i32),
                    // SAFETY: the read initialised n bytes past the length.
                    n if n > 0 => unsafe { buf.set_len(buf.len() + n as usize) },
                    e => break Err(at_step(-e, 2)),
                }
            };
            run(st, &Op::Close { fd });
            *out = buf;
            r
        }
        BlockingCall::ReadRest { .. } => Err(libc::EOPNOTSUPP),
        BlockingCall::WriteFile {
            path: p,
            flags,
            mode,
            data,
            flush,
        } => {
            let (fd, _) = run(
                st,
                &Op::Open {
                    path: p.as_ptr(),
                    flags: *flags,
                    mode: *mode,
                },
            );
            if fd < 0 {
                return Err(-fd);
            }
            let mut at = 0usize;
            let mut r = Ok(0);
            while at < data.len() {
                let write = Op::Write {
                    target: Target::Fd(fd),
                    // SAFETY: data[at..] is in bounds.
                    ptr: unsafe { data.as_ptr().add(at) },
                    len: (data.len() - at).min(u32::MAX as usize) as u32,
                    offset: CURRENT_POSITION,
                    fixed: None,
                    sync: None,
                };
                match run(st, &write).0 {
                    n if n > 0 => at += n as usize,
                    0 => {
                        r = Err(at_step(libc::ENOSPC, 1));
                        break;
                    }
                    e => {
                        r = Err(at_step(-e, 1));
                        break;
                    }
                }
            }
            if r.is_ok() && *flush {
                let sync = Op::Fsync {
                    target: Target::Fd(fd),
                    kind: SyncKind::Full,
                };
                let e = run(st, &sync).0;
                if e < 0 {
                    r = Err(at_step(-e, 2));
                }
            }
            run(st, &Op::Close { fd });
            r
        }
        BlockingCall::CopyFile {
            src, dest, excl, ..
        } => {
            let from = open(st, src.to_bytes(), libc::O_RDONLY, 0)?;
            let size = st
                .disk
                .get(st.files[&from].ino)
                .map(|i| i.size())
                .unwrap_or(0);
            let mut buf = vec![0u8; size as usize];
            let r = read(st, from, &mut buf, CURRENT_POSITION);
            let _ = close(st, from);
            r?;
            let flags = libc::O_WRONLY
                | libc::O_CREAT
                | libc::O_TRUNC
                | if *excl { libc::O_EXCL } else { 0 };
            let to = open(st, dest.to_bytes(), flags, 0o644)?;
            let r = write(st, to, &buf, CURRENT_POSITION, false);
            let _ = close(st, to);
            r.map(|_| 0)
        }
        BlockingCall::Realpath { path: p, out } => {
            *out = st.disk.realpath(p.to_bytes())?;
            Ok(out.len() as i32)
        }
    }
}

/// The inode of a call's path (followed with `follow`), or of its fd.
fn lookup(st: &State, p: Option<&CStr>, fd: i32, follow: bool) -> Result<Ino, i32> {
    match p {
        Some(p) => st
            .disk
            .resolve(p.to_bytes(), follow)?
            .ino
            .ok_or(libc::ENOENT),
        None => st.files.get(&fd).map(|o| o.ino).ok_or(libc::EBADF),
    }
}

impl Engine for SimEngine {
    fn name(&self) -> &'static str {
        "sim"
    }

    unsafe fn push(&self, user_data: u64, op: &Op, link: Link) -> bool {
        let mut st = lock(&self.st);
        if st.sq.len() >= self.capacity {
            return false;
        }
        st.sq.push((user_data, *op, link));
        true
    }

    fn sq_space(&self) -> usize {
        self.capacity.saturating_sub(lock(&self.st).sq.len())
    }

    fn flush(&self) -> io::Result<usize> {
        let n = self.dispatch();
        if n > 0 {
            self.signal();
        }
        Ok(n)
    }

    /// Runs what was pushed and reaps it on this thread: no wake-up of a
    /// thread waiting for completions, which this caller takes itself.
    fn flush_and_reap(&self, out: &mut Vec<Cqe>) -> io::Result<usize> {
        let n = self.dispatch();
        self.reap(out);
        Ok(n)
    }

    fn reap(&self, out: &mut Vec<Cqe>) {
        out.extend(lock(&self.st).cq.drain(..));
    }

    fn wait(&self, out: &mut Vec<Cqe>) -> io::Result<()> {
        self.reap(out);
        if !out.is_empty() {
            return Ok(());
        }
        self.wait_ready()?;
        self.reap(out);
        Ok(())
    }

    fn wait_ready(&self) -> io::Result<()> {
        self.eventfd.wait()
    }

    fn wake(&self) {
        self.signal();
    }

    fn supports(&self, feature: Feature) -> bool {
        matches!(feature, Feature::Ftruncate | Feature::Link)
    }

    fn notify_fd(&self) -> Option<i32> {
        Some(self.eventfd.fd())
    }

    fn degradations(&self) -> Vec<String> {
        vec![
            format!(
                "sim (seed {}): files live on an in-memory disk; nothing real is touched",
                self.seed
            ),
            "sim: TCP runs on the sim's own loopback network; nothing real is reached".into(),
            "sim: no zero-copy sends: every send is copied, and no notification follows".into(),
        ]
    }

    fn close_fd(&self, fd: i32) {
        let _ = close(&mut lock(&self.st), fd);
    }

    fn dio_align(&self, _fd: i32) -> DioAlign {
        DioAlign {
            mem: SECTOR as u32,
            offset: SECTOR as u32,
        }
    }

    fn ftruncate_now(&self, fd: i32, len: u64) -> Result<(), i32> {
        truncate_fd(&mut lock(&self.st), fd, len).map(|_| ())
    }

    fn socket(&self, addr: &SocketAddr) -> Result<i32, i32> {
        Ok(net::socket(&mut lock(&self.st), addr))
    }

    fn set_sock_int(&self, fd: i32, level: i32, name: i32, value: i32) -> Result<(), i32> {
        net::set_int(&mut lock(&self.st), fd, level, name, value)
    }

    fn bind_listen(
        &self,
        fd: i32,
        sa: &libc::sockaddr_storage,
        _len: libc::socklen_t,
        backlog: i32,
    ) -> Result<(), i32> {
        net::bind_listen(&mut lock(&self.st), fd, sa, backlog)
    }

    fn sock_name(&self, fd: i32, peer: bool) -> Result<libc::sockaddr_storage, i32> {
        net::name(&lock(&self.st), fd, peer)
    }

    unsafe fn register_buf_ring(&self, ring_addr: u64, entries: u16, bgid: u16) -> io::Result<()> {
        let ring = BufRing::new(ring_addr, entries).map_err(io::Error::from_raw_os_error)?;
        net::add_ring(&mut lock(&self.st), bgid, ring).map_err(io::Error::from_raw_os_error)
    }

    fn unregister_buf_ring(&self, bgid: u16) -> io::Result<()> {
        net::remove_ring(&mut lock(&self.st), bgid).map_err(io::Error::from_raw_os_error)
    }

    fn sim(&self) -> Option<&SimEngine> {
        Some(self)
    }
}
