//! TCP in the sim: listeners, connections and the bytes between them, all
//! inside one sim engine (one sim world), nothing on the real network.
//!
//! The model is a host with loopback addresses only (127.0.0.0/8 and ::1;
//! binding anything else but the unspecified address is `EADDRNOTAVAIL`,
//! and a connect to an address nobody here has is never answered). What
//! travels between two sockets is an event with a virtual arrival time:
//! a connect's SYN, a send's bytes, an end of stream (FIN), a reset. Each
//! takes a latency drawn from the seed; a connection's events keep their
//! order. Receives deliver what arrived in chunks the seed may cut
//! short, and sends stop when the receiver holds a window's worth unread
//! (a send then completes short, as a non-blocking socket's would, and the
//! rest waits), so backpressure is real.
//!
//! Virtual time: after every flush the sim runs until nothing is left to
//! happen, jumping the clock to each next event in turn. A connect's
//! timeout therefore fires as soon as nothing that could come before it
//! is left, in no real time at all.
//!
//! A connect nobody answers (across a partition, to an address no socket
//! here has, or to a listener whose queue is full) waits until it is
//! answered, its timeout fires or it is cancelled. Linux would give up
//! after 127 s of SYN retries (`ETIMEDOUT`); the sim does not, so a test
//! can heal a partition or accept behind a connect that is waiting.
//!
//! Partitions ([`partition`]) hold every event between the sockets they
//! cut until [`heal`]: bytes wait (they are not lost: TCP retransmits).

mod wire;

use super::fault::{self, FaultKind};
use super::{fd_of, next, State};
use crate::engine::buf_ring::BufRing;
use crate::net::addr::{from_sockaddr, to_sockaddr};
use crate::op::{Cqe, Op, Timespec};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
pub(super) use wire::{heal, partition, settle};
use wire::{latency, schedule, send_event, send_event_late, Event};

/// Bytes a connection's receiver may hold unread (in flight and in its
/// inbox) before the sender's sends wait.
pub const WINDOW: usize = 256 * 1024;
/// The first port handed to a socket that did not ask for one.
const EPHEMERAL_FIRST: u16 = 32768;

/// The network state of a sim engine.
pub(super) struct Net {
    socks: BTreeMap<i32, Sock>,
    rings: BTreeMap<u16, BufRing>,
    /// Ops waiting for the network, by user data.
    parked: BTreeMap<u64, Parked>,
    /// Events to come, by (virtual arrival time, sequence).
    events: BTreeMap<(u64, u64), Event>,
    seq: u64,
    /// Events a partition holds back, in the order they were due.
    held: Vec<Event>,
    /// The partitions: each cuts every connection with an end on its port,
    /// or every connection when `None`.
    cuts: Vec<Option<u16>>,
    next_port: u16,
}

impl Default for Net {
    fn default() -> Self {
        Net {
            socks: BTreeMap::new(),
            rings: BTreeMap::new(),
            parked: BTreeMap::new(),
            events: BTreeMap::new(),
            seq: 0,
            held: Vec::new(),
            cuts: Vec::new(),
            next_port: EPHEMERAL_FIRST,
        }
    }
}

/// A waiting op: its socket, what it is, and when it began to wait (the
/// order waiting sends go in; what tells a give-up for this connect from
/// one for an earlier op of the same user data).
#[derive(Clone, Copy)]
struct Parked {
    fd: i32,
    what: Waiting,
    seq: u64,
}

#[derive(Clone, Copy)]
enum Waiting {
    Accept,
    Recv(u16),
    /// A connect, with its linked timeout's user data.
    Connect(Option<u64>),
    /// A send waiting for the window: its op, run again when there is room.
    Send(Op),
}

struct Sock {
    v6: bool,
    v6_only: bool,
    reuse_port: bool,
    local: Option<SocketAddr>,
    state: Conn,
}

/// Where a socket is in its life.
enum Conn {
    Fresh,
    Listening {
        /// Connections made and not yet accepted.
        queue: VecDeque<i32>,
        /// `listen`'s backlog: the queue holds one more than this, as
        /// Linux's does; a connect arriving at a full queue waits in
        /// `syns` until an accept makes room.
        backlog: usize,
        syns: VecDeque<i32>,
    },
    Connecting {
        to: SocketAddr,
    },
    Open(Stream),
}

/// One end of a connection.
struct Stream {
    peer: SocketAddr,
    peer_fd: i32,
    /// Bytes arrived and not yet received.
    inbox: VecDeque<u8>,
    /// Bytes this end sent that the peer has not received yet.
    unread_by_peer: usize,
    /// The peer's end of stream arrived (after the inbox's bytes).
    fin: bool,
    /// The connection was reset: what its ops fail with.
    error: Option<i32>,
    /// This end shut its writing side (or closed).
    shut: bool,
    /// Arrival time of this end's last event toward the peer: later ones
    /// never overtake it.
    last_arrival: u64,
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => a.is_loopback(),
        IpAddr::V6(a) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|a| a.is_loopback()),
    }
}

/// Whether `op` is one the network runs.
pub(super) fn is_net(op: &Op) -> bool {
    matches!(
        op,
        Op::AcceptMulti { .. }
            | Op::Connect { .. }
            | Op::RecvMulti { .. }
            | Op::Send { .. }
            | Op::SendMsg { .. }
            | Op::SendZc { .. }
            | Op::Shutdown { .. }
            | Op::LinkTimeout { .. }
    )
}

/// Whether `fd` is one of the sim's sockets.
pub(super) fn is_socket(st: &State, fd: i32) -> bool {
    st.net.socks.contains_key(&fd)
}

/// A new socket of `addr`'s family.
pub(super) fn socket(st: &mut State, addr: &SocketAddr) -> i32 {
    let fd = st.next_fd;
    st.next_fd += 1;
    st.net.socks.insert(
        fd,
        Sock {
            v6: addr.is_ipv6(),
            v6_only: false,
            reuse_port: false,
            local: None,
            state: Conn::Fresh,
        },
    );
    fd
}

fn sock_mut(st: &mut State, fd: i32) -> Result<&mut Sock, i32> {
    match st.net.socks.get_mut(&fd) {
        Some(s) => Ok(s),
        None if st.files.contains_key(&fd) => Err(libc::ENOTSOCK),
        None => Err(libc::EBADF),
    }
}

/// `setsockopt` of an `int` option: the ones the sim models are kept,
/// the others (no delay, keep-alive) accepted.
pub(super) fn set_int(
    st: &mut State,
    fd: i32,
    level: i32,
    name: i32,
    value: i32,
) -> Result<(), i32> {
    let s = sock_mut(st, fd)?;
    match (level, name) {
        (libc::SOL_SOCKET, libc::SO_REUSEPORT) => s.reuse_port = value != 0,
        (libc::IPPROTO_IPV6, libc::IPV6_V6ONLY) if s.v6 => s.v6_only = value != 0,
        (libc::IPPROTO_IPV6, _) if !s.v6 => return Err(libc::ENOPROTOOPT),
        _ => {}
    }
    Ok(())
}

/// Whether two bound sockets may not share a port: same address, or
/// either unspecified (in a family both take), unless both reuse it.
fn clash(a: &Sock, a_addr: SocketAddr, b: &Sock, b_addr: SocketAddr) -> bool {
    if a_addr.port() != b_addr.port() || (a.reuse_port && b.reuse_port) {
        return false;
    }
    let takes_v4 = |s: &Sock, ad: SocketAddr| !s.v6 || (ad.ip().is_unspecified() && !s.v6_only);
    let same_family = a.v6 == b.v6 || (takes_v4(a, a_addr) && takes_v4(b, b_addr));
    same_family
        && (a_addr.ip() == b_addr.ip()
            || a_addr.ip().is_unspecified()
            || b_addr.ip().is_unspecified())
}

/// A free port for `fd`'s address `ip`.
fn ephemeral(st: &mut State, ip: IpAddr) -> Result<u16, i32> {
    for _ in 0..(u16::MAX - EPHEMERAL_FIRST) {
        let port = st.net.next_port;
        st.net.next_port = if port == u16::MAX {
            EPHEMERAL_FIRST
        } else {
            port + 1
        };
        let taken = st.net.socks.values().filter_map(|s| s.local).any(|a| {
            a.port() == port && (a.ip() == ip || a.ip().is_unspecified() || ip.is_unspecified())
        });
        if !taken {
            return Ok(port);
        }
    }
    Err(libc::EADDRINUSE)
}

/// Binds `fd` to `sa` and listens.
pub(super) fn bind_listen(
    st: &mut State,
    fd: i32,
    sa: &libc::sockaddr_storage,
    backlog: i32,
) -> Result<(), i32> {
    let mut addr = from_sockaddr(sa).ok_or(libc::EINVAL)?;
    let s = sock_mut(st, fd)?;
    if !matches!(s.state, Conn::Fresh) || s.local.is_some() {
        return Err(libc::EINVAL);
    }
    if s.v6 != addr.is_ipv6() {
        return Err(libc::EAFNOSUPPORT);
    }
    if !addr.ip().is_unspecified() && !is_loopback(addr.ip()) {
        return Err(libc::EADDRNOTAVAIL);
    }
    if addr.port() == 0 {
        addr.set_port(ephemeral(st, addr.ip())?);
    }
    let me = &st.net.socks[&fd];
    let used = st
        .net
        .socks
        .iter()
        .filter(|(f, _)| **f != fd)
        .filter_map(|(_, o)| o.local.map(|a| (o, a)))
        .any(|(o, a)| clash(me, addr, o, a));
    if used {
        return Err(libc::EADDRINUSE);
    }
    let s = st.net.socks.get_mut(&fd).ok_or(libc::EBADF)?;
    s.local = Some(addr);
    s.state = Conn::Listening {
        queue: VecDeque::new(),
        backlog: backlog.clamp(0, 4096) as usize,
        syns: VecDeque::new(),
    };
    Ok(())
}

/// The local or the peer's address of socket `fd`.
pub(super) fn name(st: &State, fd: i32, peer: bool) -> Result<libc::sockaddr_storage, i32> {
    let s = match st.net.socks.get(&fd) {
        Some(s) => s,
        None if st.files.contains_key(&fd) => return Err(libc::ENOTSOCK),
        None => return Err(libc::EBADF),
    };
    let addr = if peer {
        match &s.state {
            Conn::Open(c) => c.peer,
            _ => return Err(libc::ENOTCONN),
        }
    } else {
        s.local.unwrap_or(if s.v6 {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
        } else {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        })
    };
    Ok(to_sockaddr(&addr).0)
}

/// Registers a provided-buffer ring for receives.
pub(super) fn add_ring(st: &mut State, bgid: u16, ring: BufRing) -> Result<(), i32> {
    if st.net.rings.contains_key(&bgid) {
        return Err(libc::EEXIST);
    }
    st.net.rings.insert(bgid, ring);
    Ok(())
}

pub(super) fn remove_ring(st: &mut State, bgid: u16) -> Result<(), i32> {
    st.net.rings.remove(&bgid).map(|_| ()).ok_or(libc::EINVAL)
}

/// How socket `fd` names itself and its peer in the trace and to fault
/// rules: `local>peer`.
fn describe(st: &State, fd: i32) -> String {
    match st.net.socks.get(&fd) {
        Some(s) => {
            let local = s.local.map(|a| a.to_string()).unwrap_or_default();
            match &s.state {
                Conn::Open(c) => format!("{local}>{}", c.peer),
                Conn::Connecting { to } => format!("{local}>{to}"),
                _ => local,
            }
        }
        None => String::new(),
    }
}

/// Posts a completion of a network op and traces it.
fn post(st: &mut State, user_data: u64, result: i32, flags: u32, name: &str, fd: i32) {
    st.cq.push_back(Cqe {
        user_data,
        result,
        flags,
    });
    let line = format!(
        "{} {} {} -> {}",
        st.clock / 1_000,
        name,
        describe(st, fd),
        result
    );
    super::trace(st, line);
}

/// The fault rules' say on network op `name` of socket `fd`.
fn fault_of(st: &mut State, name: &str, fd: i32) -> Option<FaultKind> {
    let path = describe(st, fd).into_bytes();
    let State { faults, rng, .. } = &mut *st;
    fault::pick(faults, name, &path, &mut || (next(rng) % 1_000_000) as u32)
}

/// Whether an error a fault injects on a stream resets it.
fn resets(e: i32) -> bool {
    matches!(e, libc::ECONNRESET | libc::EPIPE | libc::ECONNABORTED)
}

/// Starts a network op (`timeout`: the linked timeout of a connect, with
/// its user data). Its completions are posted now or when the network
/// gets to it.
pub(super) fn start(st: &mut State, user_data: u64, op: Op, timeout: Option<(u64, Timespec)>) {
    st.clock += 1_000;
    st.ops += 1;
    let name = net_op_name(&op);
    // The op's socket, found once (-1: none; its error is the op's).
    let fd = match op {
        Op::Connect { fd, .. } => Ok(fd),
        Op::AcceptMulti { target }
        | Op::RecvMulti { target, .. }
        | Op::Send { target, .. }
        | Op::SendMsg { target, .. }
        | Op::SendZc { target, .. }
        | Op::Shutdown { target, .. } => fd_of(target),
        // A timeout not linked to a connect: nothing to time.
        _ => Err(libc::EINVAL),
    };
    let r = fd.and_then(|fd| match op {
        Op::AcceptMulti { .. } => accept(st, user_data, fd),
        Op::RecvMulti { group, .. } => recv(st, user_data, fd, group),
        Op::Connect { addr, len, .. } => {
            // SAFETY: addr holds len bytes of a socket address, in the op's
            // slab entry until it completes.
            let sa = unsafe { read_addr(addr, len) };
            match sa {
                Some(to) => connect(st, user_data, fd, to, timeout),
                None => Err(libc::EINVAL),
            }
        }
        Op::Shutdown { how, .. } => shutdown(st, fd, how),
        // A send behind a waiting one waits too: sends never interleave.
        _ if sending(st, fd) => {
            park(st, user_data, fd, Waiting::Send(op));
            Ok(None)
        }
        _ => send(st, user_data, fd, &op),
    });
    let fd = fd.unwrap_or(-1);
    match r {
        Ok(None) => {}
        Ok(Some(n)) => post(st, user_data, n, 0, name, fd),
        Err(e) => {
            post(st, user_data, -e, 0, name, fd);
            if let Some((t, _)) = timeout {
                post(st, t, -libc::ECANCELED, 0, "timeout", fd);
            }
        }
    }
}

/// Whether a send of socket `fd` waits for the window.
fn sending(st: &State, fd: i32) -> bool {
    st.net
        .parked
        .values()
        .any(|p| p.fd == fd && matches!(p.what, Waiting::Send(_)))
}

/// The name fault rules and the trace give a network op.
pub(super) fn net_op_name(op: &Op) -> &'static str {
    match op {
        Op::AcceptMulti { .. } => "accept",
        Op::Connect { .. } => "connect",
        Op::RecvMulti { .. } => "recv",
        Op::Send { .. } | Op::SendMsg { .. } | Op::SendZc { .. } => "send",
        Op::Shutdown { .. } => "shutdown",
        _ => "timeout",
    }
}

/// # Safety
/// `addr` must point at `len` readable bytes.
unsafe fn read_addr(addr: *const libc::sockaddr, len: u32) -> Option<SocketAddr> {
    if addr.is_null() || len as usize > std::mem::size_of::<libc::sockaddr_storage>() {
        return None;
    }
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    // SAFETY: the caller's guarantee for the source; the storage is larger.
    unsafe {
        std::ptr::copy_nonoverlapping(
            addr.cast::<u8>(),
            (&mut ss as *mut libc::sockaddr_storage).cast::<u8>(),
            len as usize,
        )
    };
    from_sockaddr(&ss)
}

fn park(st: &mut State, user_data: u64, fd: i32, what: Waiting) -> u64 {
    st.net.seq += 1;
    let seq = st.net.seq;
    st.net.parked.insert(user_data, Parked { fd, what, seq });
    seq
}

fn accept(st: &mut State, user_data: u64, fd: i32) -> Result<Option<i32>, i32> {
    match &sock_mut(st, fd)?.state {
        Conn::Listening { .. } => {}
        _ => return Err(libc::EINVAL),
    }
    if st
        .net
        .parked
        .values()
        .any(|p| p.fd == fd && matches!(p.what, Waiting::Accept))
    {
        return Err(libc::EBUSY);
    }
    park(st, user_data, fd, Waiting::Accept);
    Ok(None)
}

fn recv(st: &mut State, user_data: u64, fd: i32, group: u16) -> Result<Option<i32>, i32> {
    match &sock_mut(st, fd)?.state {
        Conn::Open(_) => {}
        _ => return Err(libc::ENOTCONN),
    }
    if !st.net.rings.contains_key(&group) {
        return Err(libc::ENOBUFS);
    }
    park(st, user_data, fd, Waiting::Recv(group));
    Ok(None)
}

fn connect(
    st: &mut State,
    user_data: u64,
    fd: i32,
    to: SocketAddr,
    timeout: Option<(u64, Timespec)>,
) -> Result<Option<i32>, i32> {
    let s = sock_mut(st, fd)?;
    match s.state {
        Conn::Fresh => {}
        Conn::Connecting { .. } => return Err(libc::EALREADY),
        Conn::Open(_) => return Err(libc::EISCONN),
        Conn::Listening { .. } => return Err(libc::EINVAL),
    }
    if s.v6 != to.is_ipv6() {
        return Err(libc::EAFNOSUPPORT);
    }
    if to.port() == 0 {
        return Err(libc::ECONNREFUSED);
    }
    if let Some(FaultKind::Error(e)) = fault_of(st, "connect", fd) {
        return Err(e);
    }
    // The source address: the loopback address asked for, else the first.
    let ip = match to.ip() {
        ip if is_loopback(ip) => ip,
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    };
    let port = ephemeral(st, ip)?;
    let s = st.net.socks.get_mut(&fd).ok_or(libc::EBADF)?;
    s.local = Some(SocketAddr::new(ip, port));
    s.state = Conn::Connecting { to };
    let t = timeout.map(|(t, _)| t);
    let seq = park(st, user_data, fd, Waiting::Connect(t));
    if let Some((_, ts)) = timeout {
        let ns = (ts.tv_sec.max(0) as u64)
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec.max(0) as u64);
        let at = st.clock.saturating_add(ns);
        schedule(
            st,
            at,
            Event::GiveUp {
                connect: user_data,
                seq,
            },
        );
    }
    if to.ip().is_unspecified() || is_loopback(to.ip()) {
        let at = st.clock + latency(st);
        schedule(st, at, Event::Syn { client: fd, to });
    }
    Ok(None)
}

/// The bytes of a send op, at most `room`.
fn gather(op: &Op, room: usize) -> Vec<u8> {
    match *op {
        Op::Send { ptr, len, .. } | Op::SendZc { ptr, len, .. } => {
            let n = (len as usize).min(room);
            // SAFETY: the op's buffer holds len bytes until it completes.
            unsafe { std::slice::from_raw_parts(ptr, n) }.to_vec()
        }
        Op::SendMsg { msg, .. } => {
            // SAFETY: msg and its iovecs live in the op's slab entry until
            // it completes.
            let iov = unsafe { msg_iovecs(msg) };
            let mut out = Vec::new();
            for v in iov {
                let n = v.iov_len.min(room - out.len());
                // SAFETY: each iovec names iov_len bytes the op owns.
                out.extend_from_slice(unsafe {
                    std::slice::from_raw_parts(v.iov_base.cast::<u8>(), n)
                });
                if out.len() == room {
                    break;
                }
            }
            out
        }
        _ => Vec::new(),
    }
}

fn send_len(op: &Op) -> usize {
    match *op {
        Op::Send { len, .. } | Op::SendZc { len, .. } => len as usize,
        Op::SendMsg { msg, .. } => {
            // SAFETY: as in gather.
            let iov = unsafe { msg_iovecs(msg) };
            iov.iter().map(|v| v.iov_len).sum()
        }
        _ => 0,
    }
}

/// The iovecs of a `sendmsg`'s message.
///
/// # Safety
/// `msg` must point at a message whose iovec array stays valid for `'a`.
unsafe fn msg_iovecs<'a>(msg: *const libc::msghdr) -> &'a [libc::iovec] {
    // msg_iovlen is a usize on glibc, an int on musl.
    #[allow(clippy::unnecessary_cast)]
    // SAFETY: the caller's guarantee.
    let n = unsafe { (*msg).msg_iovlen } as usize;
    // SAFETY: the caller's guarantee.
    unsafe { std::slice::from_raw_parts((*msg).msg_iov, n) }
}

/// Runs a send: as much as the window takes now (`None`: nothing fits,
/// the send waits).
fn send(st: &mut State, user_data: u64, fd: i32, op: &Op) -> Result<Option<i32>, i32> {
    let (peer, room) = match &sock_mut(st, fd)?.state {
        Conn::Open(c) => {
            if let Some(e) = c.error {
                return Err(e);
            }
            if c.shut {
                return Err(libc::EPIPE);
            }
            (c.peer_fd, WINDOW.saturating_sub(c.unread_by_peer))
        }
        _ => return Err(libc::ENOTCONN),
    };
    let want = send_len(op);
    if want == 0 {
        return Ok(Some(0));
    }
    let mut room = room;
    let mut late = 0;
    match fault_of(st, "send", fd) {
        Some(FaultKind::Error(e)) => {
            if resets(e) {
                reset(st, fd);
                send_event(st, fd, Event::Reset { to: peer });
            }
            return Err(e);
        }
        Some(FaultKind::Short) => room = room.min((want / 2).max(1)),
        Some(FaultKind::Delay(ns)) => late = ns,
        _ => {}
    }
    if room == 0 {
        park(st, user_data, fd, Waiting::Send(*op));
        return Ok(None);
    }
    let bytes = gather(op, room);
    let n = bytes.len();
    if let Some(Sock {
        state: Conn::Open(c),
        ..
    }) = st.net.socks.get_mut(&fd)
    {
        c.unread_by_peer += n;
    }
    let data = Event::Data {
        from: fd,
        to: peer,
        bytes,
    };
    send_event_late(st, fd, data, late);
    Ok(Some(n as i32))
}

fn shutdown(st: &mut State, fd: i32, how: i32) -> Result<Option<i32>, i32> {
    sock_mut(st, fd)?;
    if let Some(FaultKind::Error(e)) = fault_of(st, "shutdown", fd) {
        return Err(e);
    }
    let peer = match &mut sock_mut(st, fd)?.state {
        Conn::Open(c) => {
            if how == libc::SHUT_RD || c.shut {
                return Ok(Some(0));
            }
            c.shut = true;
            c.peer_fd
        }
        _ => return Err(libc::ENOTCONN),
    };
    send_event(st, fd, Event::Fin { from: fd, to: peer });
    Ok(Some(0))
}

/// Ends parked op `user_data` with `result` (a connect's timeout is
/// cancelled with it).
fn end(st: &mut State, user_data: u64, result: i32) {
    let Some(p) = st.net.parked.remove(&user_data) else {
        return;
    };
    let name = match p.what {
        Waiting::Accept => "accept",
        Waiting::Recv(_) => "recv",
        Waiting::Connect(_) => "connect",
        Waiting::Send(_) => "send",
    };
    post(st, user_data, result, 0, name, p.fd);
    if let Waiting::Connect(Some(t)) = p.what {
        post(st, t, -libc::ECANCELED, 0, "timeout", p.fd);
    }
}

/// Ends every parked op of socket `fd` (of every socket: `None`) with
/// `result`; returns how many.
fn end_all(st: &mut State, fd: Option<i32>, result: i32) -> i32 {
    let uds: Vec<u64> = st
        .net
        .parked
        .iter()
        .filter(|(_, p)| fd.is_none_or(|fd| p.fd == fd))
        .map(|(u, _)| *u)
        .collect();
    for u in &uds {
        end(st, *u, result);
    }
    uds.len() as i32
}

/// Resets `fd`'s connection on this end: unread bytes are gone, and what
/// waits on it fails.
fn reset(st: &mut State, fd: i32) {
    if let Some(Sock {
        state: Conn::Open(c),
        ..
    }) = st.net.socks.get_mut(&fd)
    {
        c.error = Some(libc::ECONNRESET);
        c.inbox.clear();
        end_all(st, Some(fd), -libc::ECONNRESET);
    }
}

/// Cancels parked op `user_data` (`Op::Cancel`): 0, or `ENOENT` when it
/// is not waiting.
pub(super) fn cancel(st: &mut State, user_data: u64) -> Result<i32, i32> {
    if !st.net.parked.contains_key(&user_data) {
        return Err(libc::ENOENT);
    }
    end(st, user_data, -libc::ECANCELED);
    Ok(0)
}

/// Cancels every parked op of `fd` (or every one, `None`): how many.
pub(super) fn cancel_all(st: &mut State, fd: Option<i32>) -> i32 {
    end_all(st, fd, -libc::ECANCELED)
}

/// Closes socket `fd`: a listener's unaccepted connections are reset; a
/// connection ends its stream toward the peer, or resets it if bytes it
/// never read were left (as Linux does).
pub(super) fn close(st: &mut State, fd: i32) -> Result<i32, i32> {
    if !st.net.socks.contains_key(&fd) {
        return Err(libc::EBADF);
    }
    // Its ops end (the driver cancels them first; this is for the rest).
    end_all(st, Some(fd), -libc::ECANCELED);
    let s = st.net.socks.remove(&fd).ok_or(libc::EBADF)?;
    match s.state {
        Conn::Listening { queue, syns, .. } => {
            for c in queue {
                let _ = abort(st, c);
            }
            for client in syns {
                let at = st.clock + latency(st);
                schedule(st, at, Event::Refused { client });
            }
        }
        Conn::Open(c) if c.error.is_none() => {
            let ev = if c.inbox.is_empty() {
                Event::Fin {
                    from: fd,
                    to: c.peer_fd,
                }
            } else {
                Event::Reset { to: c.peer_fd }
            };
            let at = (st.clock + 10_000).max(c.last_arrival + 1);
            if !c.shut || !c.inbox.is_empty() {
                schedule(st, at, ev);
            }
        }
        _ => {}
    }
    Ok(0)
}

/// Closes connection `fd` with a reset toward its peer.
fn abort(st: &mut State, fd: i32) -> Result<(), i32> {
    if let Some(Sock {
        state: Conn::Open(c),
        ..
    }) = st.net.socks.get(&fd)
    {
        let peer = c.peer_fd;
        send_event(st, fd, Event::Reset { to: peer });
    }
    st.net.socks.remove(&fd);
    Ok(())
}

/// Power loss: every socket and waiting op is gone; the ops settle with
/// `ECANCELED`.
pub(super) fn crash(st: &mut State) {
    cancel_all(st, None);
    let rings = std::mem::take(&mut st.net.rings);
    st.net = Net {
        rings,
        next_port: st.net.next_port,
        ..Net::default()
    };
}

impl Stream {
    fn new(peer: SocketAddr, peer_fd: i32) -> Stream {
        Stream {
            peer,
            peer_fd,
            inbox: VecDeque::new(),
            unread_by_peer: 0,
            fin: false,
            error: None,
            shut: false,
            last_arrival: 0,
        }
    }
}
