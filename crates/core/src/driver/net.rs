//! Sockets: listen, connect, the accept and receive streams, sends (queued
//! per socket, so their bytes never interleave) and half-close. What the
//! kernel reports back is handled in `net_complete.rs`.
//!
//! Sockets live in the file table like files (generation-checked handles,
//! fixed-file slots); `Net` adds what only sockets have.
//!
//! Streams: an accept or receive stream is one token that settles many
//! times (`Payload::more`), fed by one multishot op. The op is re-armed when
//! the kernel ends it (`ENOBUFS`, a full completion queue) for as long as
//! the stream is wanted. Receiving pauses (the op is cancelled) when
//! JavaScript stops reading, so unread data stays in the socket and then in
//! the peer, never in our memory: that is the backpressure.

use super::*;
use crate::buffer::Pinned;
use crate::id_hash::IdHash;
use crate::net::addr::{from_sockaddr, to_sockaddr};
use crate::net::copy_pool::CopyPool;
use crate::net::pbuf_ring::PbufRing;
use crate::net::send_slab::{Released, SendKey, SendSlab};
use std::collections::HashMap;
use std::net::SocketAddr;

/// Slab room kept for streams beyond `max_in_flight` (two per socket at
/// most: a listener's accept, a connection's receive).
pub const MAX_STREAMS: usize = 1 << 20;
/// Sends queued or in flight at once, over all sockets.
const MAX_SENDS: usize = 1 << 20;
/// Largest bounce block of a copied send (the bounce pool keeps blocks up
/// to this size).
const SEND_BLOCK: usize = 1 << 20;
/// Sends larger than this (they would not fit a copy-pool slot) go to the
/// socket at once when it has nothing else to send (`send_at_once`): one
/// syscall per send, but no copy into library memory. Smaller ones stay
/// copied and batched, many sends in one `io_uring_enter`, unless the send
/// is alone (`Driver::lone_send`).
const SEND_NOW_MIN: usize = crate::net::copy_pool::DEFAULT_SLOT_SIZE;
/// A small send is alone (`Driver::lone_send`) only while the ring has at
/// most this many streams (a connection's receive, a listener's accept).
const LONE_SEND_STREAMS: usize = 8;
/// The buffer group of the receive buffers.
const RECV_GROUP: u16 = 0;

/// Network settings of a driver.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Bytes per provided receive buffer (one completion carries at most
    /// this much).
    pub recv_buffer_size: u32,
    /// Provided receive buffers, shared by the ring's sockets (a power of
    /// two).
    pub recv_buffers: u16,
    /// Sends of at least this many bytes use `SENDMSG_ZC` even when not
    /// asked to (`usize::MAX`: only when asked).
    pub zero_copy_threshold: usize,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            recv_buffer_size: 16 * 1024,
            recv_buffers: 512,
            zero_copy_threshold: usize::MAX,
        }
    }
}

/// A socket option set with [`Driver::set_sock_option`].
#[derive(Clone, Copy, Debug)]
pub enum SockOption {
    NoDelay(bool),
    /// Keep-alive on or off; with the idle time before the first probe, in
    /// seconds (0: the system's). A time beyond what the kernel takes is
    /// clamped to its longest (32767 s on Linux).
    KeepAlive(bool, u32),
}

/// What keeps a send's bytes alive while the kernel may read them.
pub(super) enum SendMem {
    /// Library memory (`allocAligned`), sent in place.
    Pinned(#[allow(dead_code)] Pinned),
    /// A copy of the caller's bytes.
    Bounce(AlignedBuf),
}

/// A send or half-close waiting for the socket's previous send.
enum Queued {
    Send {
        token: u32,
        key: SendKey,
        zero_copy: bool,
    },
    Shutdown {
        token: u32,
    },
}

/// What only sockets have.
#[derive(Default)]
pub(super) struct Sock {
    pub(super) id: Option<FileId>,
    pub(super) listener: bool,
    /// The token of the accept or receive stream.
    pub(super) stream: Option<u32>,
    /// Slab key of the stream's multishot op in the kernel.
    pub(super) armed: Option<u32>,
    /// The stream wants events (not paused).
    pub(super) want: bool,
    /// A cancel of the armed op (a pause) is on its way.
    pub(super) cancelling: bool,
    /// The receive ended with `ENOBUFS`; re-armed once buffers are back.
    pub(super) starved: bool,
    sends: VecDeque<Queued>,
    /// A send (or half-close) is in the kernel and has not completed.
    pub(super) sending: bool,
}

/// Network state of a driver.
pub(super) struct Net {
    cfg: NetConfig,
    socks: HashMap<u32, Sock, IdHash>,
    pub(super) pbuf: Option<PbufRing>,
    pool: Option<CopyPool>,
    pub(super) sends: SendSlab<SendMem>,
    starved: Vec<FileId>,
    /// `SENDMSG_ZC` was refused at run time: copy from now on.
    zc_broken: bool,
    stat_sends: u64,
    /// Sends the socket took whole during their call (`send_at_once`).
    stat_sent_at_once: u64,
    /// A send finished during its call since the last reap (see
    /// [`Driver::send_or_now`]): the next small send is not alone.
    pub(super) sent_now: bool,
    /// Room for the iovecs of a send tried at once (`send_at_once`),
    /// empty between sends: no allocation per send.
    at_once_iov: Vec<libc::iovec>,
    stat_zc_sends: u64,
    stat_zc_copied: u64,
    stat_rearms: u64,
}

impl Net {
    pub(super) fn new(cfg: NetConfig) -> Net {
        Net {
            cfg,
            socks: HashMap::default(),
            pbuf: None,
            pool: None,
            sends: SendSlab::with_capacity(MAX_SENDS),
            starved: Vec::new(),
            zc_broken: false,
            stat_sends: 0,
            stat_sent_at_once: 0,
            sent_now: false,
            at_once_iov: Vec::new(),
            stat_zc_sends: 0,
            stat_zc_copied: 0,
            stat_rearms: 0,
        }
    }

    pub(super) fn stats(&self, s: &mut Stats, engine: &dyn Engine) {
        s.sockets = self.socks.len();
        s.sends = self.stat_sends;
        s.sent_at_once = self.stat_sent_at_once;
        s.zero_copy_sends = self.stat_zc_sends;
        s.zero_copy_copied = self.stat_zc_copied;
        s.zero_copy_supported = engine.supports(Feature::SendZc) && !self.zc_broken;
        s.recv_buffers_in_use = self.pbuf.as_ref().map_or(0, PbufRing::outstanding);
        s.recv_rearms = self.stat_rearms;
    }

    pub(super) fn starved_push(&mut self, id: FileId) {
        self.starved.push(id);
    }

    pub(super) fn count_rearm(&mut self) {
        self.stat_rearms += 1;
    }

    pub(super) fn refuse_zero_copy(&mut self) {
        self.zc_broken = true;
    }

    /// Every socket's id.
    pub(super) fn ids(&self) -> Vec<FileId> {
        // In table order, not the hash map's (a sim run must not depend on
        // a random hash seed).
        let mut ids: Vec<FileId> = self.socks.values().filter_map(|s| s.id).collect();
        ids.sort_unstable_by_key(|id| id.index);
        ids
    }

    pub(super) fn sock(&mut self, id: FileId) -> Option<&mut Sock> {
        self.socks.get_mut(&id.index).filter(|s| s.id == Some(id))
    }
}

impl Driver {
    /// The socket `id`, open and not closing.
    fn sock_checked(&mut self, id: FileId) -> Result<&mut Sock, i32> {
        self.files.usable(id).map_err(file_errno)?;
        self.net.sock(id).ok_or(libc::ENOTSOCK)
    }

    /// Puts a new socket descriptor into the file table (and a fixed-file
    /// slot). Closes `fd` on failure.
    pub(super) fn add_socket(&mut self, fd: i32, listener: bool) -> Result<FileId, i32> {
        let id = match self.files.insert(FileEntry::new(fd)) {
            Ok(id) => id,
            Err(e) => {
                self.close_fd(fd);
                return Err(file_errno(e));
            }
        };
        if id.index < self.file_slots() && self.engine.register_file(id.index, fd).is_ok() {
            if let Ok(fe) = self.files.entry_mut(id) {
                fe.fixed = Some(id.index);
                self.stats.registered_files += 1;
            }
        }
        self.net.socks.insert(
            id.index,
            Sock {
                id: Some(id),
                listener,
                ..Sock::default()
            },
        );
        Ok(id)
    }

    /// Forgets a socket that never became the user's (a failed or abandoned
    /// connect) and closes it.
    pub(super) fn drop_socket(&mut self, id: FileId) {
        if self.net.sock(id).is_some() {
            self.net.socks.remove(&id.index);
        }
        if let Ok(e) = self.files.remove(id) {
            if let Some(slot) = e.fixed {
                self.engine.unregister_file(slot);
                self.stats.registered_files = self.stats.registered_files.saturating_sub(1);
            }
            self.close_fd(e.fd);
        }
    }

    /// A listening TCP socket bound to `addr`. Synchronous: none of these
    /// calls blocks.
    pub fn listen(
        &mut self,
        addr: SocketAddr,
        backlog: i32,
        ipv6_only: bool,
        reuse_port: bool,
    ) -> Result<FileId, i32> {
        self.refuse_if_closed()?;
        let engine = self.engine.clone();
        let fd = engine.socket(&addr)?;
        let setup = || -> Result<(), i32> {
            engine.set_sock_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
            if reuse_port {
                engine.set_sock_int(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
            }
            if addr.is_ipv6() {
                engine.set_sock_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, ipv6_only.into())?;
            }
            let (sa, len) = to_sockaddr(&addr);
            engine.bind_listen(fd, &sa, len, backlog)
        };
        if let Err(e) = setup() {
            self.close_fd(fd);
            return Err(e);
        }
        self.add_socket(fd, true)
    }

    /// Connects a new socket to `addr`, failing with `ETIMEDOUT` after
    /// `timeout_ms` if given. Settles with the socket's packed [`FileId`]
    /// (`Payload::Opened`).
    pub fn connect(
        &mut self,
        token: u32,
        addr: SocketAddr,
        timeout_ms: Option<u64>,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let fd = self.engine.socket(&addr)?;
        let id = self.add_socket(fd, false)?;
        let (sa, len) = to_sockaddr(&addr);
        let sa = Box::new(sa);
        let op = Op::Connect {
            fd,
            addr: (&*sa as *const libc::sockaddr_storage).cast(),
            len,
        };
        let kind = Kind::Connect {
            timed: timeout_ms.is_some(),
        };
        let mut c = Self::entry(token, Some(id), kind, op, Mem::Addr(sa));
        match timeout_ms {
            None => self.enqueue_one(c),
            Some(ms) => {
                let ts = Box::new(Timespec {
                    tv_sec: (ms / 1000) as i64,
                    tv_nsec: ((ms % 1000) * 1_000_000) as i64,
                });
                let op = Op::LinkTimeout { ts: &*ts };
                let t = Self::entry(NO_TOKEN, None, Kind::Internal, op, Mem::Timeout(ts));
                c.link = Link::Next;
                self.enqueue(vec![c, t]);
            }
        }
        Ok(())
    }

    /// Starts the accept stream of listener `id`: `token` settles once per
    /// connection (`Payload::Accepted`) until an error ends it.
    pub fn accept_start(&mut self, token: u32, id: FileId) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let s = self.sock_checked(id)?;
        if !s.listener {
            return Err(libc::EINVAL);
        }
        if s.stream.is_some() {
            return Err(libc::EBUSY);
        }
        self.start_stream(token, id)
    }

    /// Starts the receive stream of socket `id`: `token` settles once per
    /// chunk (`Payload::Received`), then with 0 at end of stream or with an
    /// error.
    pub fn recv_start(&mut self, token: u32, id: FileId) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let s = self.sock_checked(id)?;
        if s.listener {
            return Err(libc::EINVAL);
        }
        if s.stream.is_some() {
            return Err(libc::EBUSY);
        }
        self.ensure_recv_buffers()?;
        self.start_stream(token, id)
    }

    /// Gives socket `id`'s stream to `token` and arms it; on failure the
    /// socket has no stream again.
    fn start_stream(&mut self, token: u32, id: FileId) -> Result<(), i32> {
        let s = self.net.sock(id).ok_or(libc::EBADF)?;
        s.stream = Some(token);
        s.want = true;
        self.arm(id).inspect_err(|_| {
            if let Some(s) = self.net.sock(id) {
                s.stream = None;
            }
        })
    }

    /// Pauses (`paused`) or resumes the receive stream of socket `id`.
    /// Pausing cancels the kernel's receive; data then waits in the socket.
    pub fn recv_pause(&mut self, id: FileId, paused: bool) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let s = self.sock_checked(id)?;
        if s.stream.is_none() {
            return Ok(());
        }
        s.want = !paused;
        if paused {
            if let (Some(k), false) = (s.armed, s.cancelling) {
                s.cancelling = true;
                self.submit_internal(Op::Cancel {
                    user_data: u64::from(k),
                });
            }
        } else if s.armed.is_none() && !s.starved {
            return self.arm(id);
        }
        Ok(())
    }

    /// Submits the multishot op of socket `id`'s stream.
    pub(super) fn arm(&mut self, id: FileId) -> Result<(), i32> {
        let (_, target) = self.file(id)?;
        let s = self.net.sock(id).ok_or(libc::EBADF)?;
        let token = s.stream.ok_or(libc::EINVAL)?;
        let (kind, op) = if s.listener {
            (Kind::Accept, Op::AcceptMulti { target })
        } else {
            let group = self
                .net
                .pbuf
                .as_ref()
                .map(PbufRing::bgid)
                .ok_or(libc::EINVAL)?;
            (Kind::Recv, Op::RecvMulti { target, group })
        };
        let k = self.submit_stream(Self::entry(token, Some(id), kind, op, Mem::None))?;
        if let Some(s) = self.net.sock(id) {
            s.armed = Some(k);
        }
        Ok(())
    }

    /// The provided-buffer ring the receive streams draw from, registered
    /// on first use.
    fn ensure_recv_buffers(&mut self) -> Result<(), i32> {
        if self.net.pbuf.is_some() {
            return Ok(());
        }
        let mut p = PbufRing::new(
            self.net.cfg.recv_buffers,
            self.net.cfg.recv_buffer_size,
            RECV_GROUP,
        )
        .map_err(errno)?;
        let engine = self.engine.clone();
        // SAFETY: the ring is unregistered through this same engine in
        // `finish`, or leaked if the driver goes without it.
        unsafe { p.register_with(|addr, n, group| engine.register_buf_ring(addr, n, group)) }
            .map_err(errno)?;
        self.net.pbuf = Some(p);
        Ok(())
    }

    /// Where receive buffer `bid` starts, for a `Payload::Received` (the
    /// buffer stays put until recycled; the kernel does not write it then).
    pub(super) fn received_ptr(&self, bid: u16, len: usize) -> *const u8 {
        self.net
            .pbuf
            .as_ref()
            .and_then(|p| p.get(bid, len).ok())
            .map_or(std::ptr::null(), <[u8]>::as_ptr)
    }

    /// Gives receive buffer `bid` back (published by [`Driver::after_batch`]).
    pub fn recycle_received(&mut self, bid: u16) {
        if let Some(p) = self.net.pbuf.as_mut() {
            let _ = p.stage(bid);
        }
    }

    /// Call after a batch of settlements was handed over: publishes the
    /// receive buffers given back, and re-arms the receives that ran out of
    /// them (a stream that cannot be re-armed settles into `out`). Flush
    /// afterwards.
    pub fn after_batch(&mut self, out: &mut Vec<Done>) {
        let Some(p) = self.net.pbuf.as_mut() else {
            return;
        };
        if p.staged() > 0 {
            p.publish();
        }
        if self.net.starved.is_empty() || p.available() == 0 {
            return;
        }
        for id in std::mem::take(&mut self.net.starved) {
            let Some(s) = self.net.sock(id) else { continue };
            s.starved = false;
            if s.want && s.armed.is_none() && s.stream.is_some() {
                self.net.stat_rearms += 1;
                self.counting(out, |d, out| d.rearm_or_fail(id, out));
            }
        }
    }

    /// Re-arms socket `id`'s stream; if that fails, the stream ends with
    /// the error.
    pub(super) fn rearm_or_fail(&mut self, id: FileId, out: &mut Vec<Done>) {
        if let Err(errno) = self.arm(id) {
            if let Some(token) = self.net.sock(id).and_then(|s| s.stream.take()) {
                out.push(Done::err(token, errno));
            }
        }
    }

    /// Sends `bufs` (any number of them) in order as one message. Library
    /// memory is sent in place, [`IOV_MAX`](crate::net::send_slab::IOV_MAX)
    /// iovecs per `sendmsg` at most (the entry resubmits the rest); anything
    /// else is copied into library memory first (a copy-pool slot when
    /// small, else at most `MAX_IOV` bounce blocks), except what the socket
    /// takes at once (`send_at_once`, for a large send or a lone one), so
    /// JavaScript may reuse or free its buffers at once.
    /// `zero_copy` uses `SENDMSG_ZC` and settles only once the kernel's
    /// notification says it is done with the memory. Settles with the byte
    /// count.
    pub fn send(
        &mut self,
        token: u32,
        id: FileId,
        bufs: &[UserBuf],
        zero_copy: bool,
    ) -> Result<(), i32> {
        self.send_maybe_now(token, id, bufs, zero_copy, false)
            .map(drop)
    }

    /// [`Driver::send`] (copied, not zero-copy), except that a send the
    /// socket takes whole during the call (`send_at_once`) is done there
    /// and then: it returns the byte count, the token is never used and
    /// nothing completes later. The caller must have no earlier send of
    /// the socket unsettled, or it would settle before them.
    pub fn send_or_now(
        &mut self,
        token: u32,
        id: FileId,
        bufs: &[UserBuf],
    ) -> Result<Option<usize>, i32> {
        self.send_maybe_now(token, id, bufs, false, true)
    }

    /// [`Driver::send`], or with `now` [`Driver::send_or_now`].
    fn send_maybe_now(
        &mut self,
        token: u32,
        id: FileId,
        bufs: &[UserBuf],
        zero_copy: bool,
        now: bool,
    ) -> Result<Option<usize>, i32> {
        self.refuse_if_closed()?;
        if self.sock_checked(id)?.listener {
            return Err(libc::ENOTCONN);
        }
        if bufs.is_empty() {
            return Err(libc::EINVAL);
        }
        let mut total = bufs
            .iter()
            .try_fold(0usize, |a, b| a.checked_add(b.len))
            .filter(|t| *t <= MAX_IO)
            .ok_or(libc::EINVAL)?;
        let pins: Option<Vec<Pinned>> = bufs
            .iter()
            .map(|b| self.buffers.lookup(b.ptr, b.len))
            .collect();
        // A large or lone copied send first goes to the socket at once:
        // what it takes is not copied here.
        let mut bufs = bufs;
        let rest: Vec<UserBuf>;
        let mut early = 0;
        if pins.is_none() && !zero_copy && (total > SEND_NOW_MIN || self.lone_send()) {
            early = self.send_at_once(token, id, bufs, total, now);
            if early == total {
                return Ok(now.then_some(total));
            }
            if early > 0 {
                rest = skip_bytes(bufs, early);
                bufs = &rest;
                total -= early;
            }
        }
        let mut slot = None;
        // A copy-pool slot's one iovec needs no vector.
        let mut one = None;
        let (many, guards) = match pins {
            Some(pins) => (
                bufs.iter()
                    .map(|b| libc::iovec {
                        iov_base: b.ptr.cast(),
                        iov_len: b.len,
                    })
                    .collect(),
                pins.into_iter().map(SendMem::Pinned).collect(),
            ),
            None => {
                let pool = match self.net.pool.as_mut() {
                    Some(p) => Some(p),
                    None => {
                        self.net.pool = CopyPool::with_defaults();
                        self.net.pool.as_mut()
                    }
                };
                let s = pool
                    .filter(|p| total <= p.slot_size())
                    .and_then(|p| p.alloc().map(|s| (p.slot_ptr(&s), s)));
                match s {
                    Some((Some(ptr), s)) => {
                        slot = Some(s);
                        copy_gather(bufs, ptr, total);
                        one = Some(libc::iovec {
                            iov_base: ptr.cast(),
                            iov_len: total,
                        });
                        (Vec::new(), Vec::new())
                    }
                    _ => self.bounce_blocks(bufs, total)?,
                }
            }
        };
        let zc_op = !self.net.zc_broken
            && self.engine.supports(Feature::SendZc)
            && (zero_copy || total >= self.net.cfg.zero_copy_threshold);
        let iovecs = match &one {
            Some(iov) => std::slice::from_ref(iov),
            None => &many[..],
        };
        let mut entry = self
            .net
            .sends
            .entry(iovecs, guards, zero_copy && zc_op)
            .with_sent_before(early);
        if let Some(s) = slot {
            entry = entry.with_copy_slot(s);
        }
        let key = match self.net.sends.insert(entry) {
            Ok(k) => k,
            Err(entry) => {
                self.release_send(entry.into_released());
                return Err(libc::ENOBUFS);
            }
        };
        self.net.stat_sends += 1;
        if zc_op {
            self.net.stat_zc_sends += 1;
        }
        self.queue_send(
            id,
            Queued::Send {
                token,
                key,
                zero_copy: zc_op,
            },
        );
        Ok(None)
    }

    /// Whether a small send would be the only op of the next flush: nothing
    /// queued, no send done at once since the last reap, and few streams
    /// on the ring. Such a send goes to the socket at once, as a large one
    /// does: one `sendmsg` instead of one `io_uring_enter`, and no copy into
    /// library memory or kernel op to complete. The peer's receive on this
    /// ring is then usually in the completion queue by the time the
    /// `sendmsg` returns (its task work runs on the way out), so a 64 B
    /// ping-pong on one connection reaps with no syscall at all: 159.9k ->
    /// 167.0k round trips/s (`benches/net-child.ts`, callback API, means of
    /// six alternating runs of 3 s). With many connections the sends of one
    /// run of JavaScript share an `io_uring_enter`: on 50 connections a
    /// first send of each run done at once cost 5% (249k -> 237k), hence
    /// the bound on streams, with which 50 connections are unchanged.
    fn lone_send(&self) -> bool {
        self.unflushed == 0
            && self.instant.is_empty()
            && !self.net.sent_now
            && self.streams <= LONE_SEND_STREAMS
    }

    /// Offers a send of `bufs` (`total` bytes) to socket `id` at once,
    /// from the caller's memory, when nothing of the socket is queued or in
    /// the kernel (its bytes must follow theirs) and the op has room.
    /// Returns the bytes the socket took. All of them: the op is done, with
    /// no kernel op and no copy; with `now` the caller settles it, else its
    /// completion waits in `instant` for the next flush and the socket
    /// counts as sending until then. Fewer: the caller sends the rest as
    /// usual. The kernel copies
    /// the bytes before the call returns, so the caller's memory is free
    /// again at once, as when the driver copies it (DESIGN.md, invariant 2).
    fn send_at_once(
        &mut self,
        token: u32,
        id: FileId,
        bufs: &[UserBuf],
        total: usize,
        now: bool,
    ) -> usize {
        match self.net.sock(id) {
            Some(s) if !s.sending && s.sends.is_empty() => {}
            _ => return 0,
        }
        let Ok((fe, _)) = self.file(id) else {
            return 0;
        };
        let fd = fe.fd;
        let e = Self::entry(token, Some(id), Kind::SentAtOnce, Op::Nop, Mem::None);
        if !self.room_for(std::slice::from_ref(&e)) {
            return 0;
        }
        // Ops queued before this send (another socket's, a pause's cancel)
        // reach the kernel before it, as they would through the queue.
        if self.unflushed > 0 && self.flush().is_err() {
            return 0;
        }
        let mut iov = std::mem::take(&mut self.net.at_once_iov);
        iov.extend(bufs.iter().take(MAX_IOV).map(|b| libc::iovec {
            iov_base: b.ptr.cast(),
            iov_len: b.len,
        }));
        // (A failure is left to the send through the kernel, which gets
        // it again and reports it.)
        let n = self.engine.send_now(fd, &iov).unwrap_or(0).min(total);
        // Only the capacity is kept: no pointer into memory lent for this
        // call outlives it.
        iov.clear();
        self.net.at_once_iov = iov;
        if n < total {
            return n;
        }
        self.net.stat_sends += 1;
        self.net.stat_sent_at_once += 1;
        if now {
            self.net.sent_now = true;
            self.stats.submitted += 1;
            self.stats.completed += 1;
            return n;
        }
        self.count_in(std::slice::from_ref(&e));
        let Ok(k) = self.slab.insert(e) else {
            unreachable!("room_for checked the slab");
        };
        self.instant.push(Cqe {
            user_data: u64::from(k),
            result: n as i32,
            flags: 0,
        });
        // The socket's next send waits for this one's completion (as
        // behind a send in the kernel), so the two settle in order.
        if let Some(s) = self.net.sock(id) {
            s.sending = true;
        }
        n
    }

    /// Copies `bufs` (`total` bytes) into bounce blocks of at most
    /// [`SEND_BLOCK`] bytes (pooled sizes: a large send does not map fresh
    /// memory every time), one iovec each.
    fn bounce_blocks(
        &mut self,
        bufs: &[UserBuf],
        total: usize,
    ) -> Result<(Vec<libc::iovec>, Vec<SendMem>), i32> {
        let block = SEND_BLOCK.max(total.div_ceil(MAX_IOV));
        let mut iovecs = Vec::with_capacity(total.div_ceil(block));
        let mut guards = Vec::with_capacity(iovecs.capacity());
        let (mut i, mut off) = (0usize, 0usize);
        let mut rest = total;
        while rest > 0 {
            let n = rest.min(block);
            let Some(b) = self.bounce.take(n) else {
                for g in guards {
                    if let SendMem::Bounce(b) = g {
                        self.bounce.give(b);
                    }
                }
                return Err(libc::ENOMEM);
            };
            let mut filled = 0;
            while filled < n {
                let u = &bufs[i];
                let k = (u.len - off).min(n - filled);
                // SAFETY: u is lent for this call and off + k <= u.len; b has
                // n >= filled + k bytes; library memory never overlaps it.
                unsafe { std::ptr::copy_nonoverlapping(u.ptr.add(off), b.as_ptr().add(filled), k) };
                filled += k;
                off += k;
                if off == u.len {
                    i += 1;
                    off = 0;
                }
            }
            iovecs.push(libc::iovec {
                iov_base: b.as_ptr().cast(),
                iov_len: n,
            });
            guards.push(SendMem::Bounce(b));
            rest -= n;
        }
        Ok((iovecs, guards))
    }

    /// Half-closes socket `id` (`SHUT_WR`) once its queued sends are done.
    pub fn shutdown_write(&mut self, token: u32, id: FileId) -> Result<(), i32> {
        self.refuse_if_closed()?;
        if self.sock_checked(id)?.listener {
            return Err(libc::ENOTCONN);
        }
        self.queue_send(id, Queued::Shutdown { token });
        Ok(())
    }

    fn queue_send(&mut self, id: FileId, q: Queued) {
        let Some(s) = self.net.sock(id) else { return };
        s.sends.push_back(q);
        if !s.sending {
            self.start_send(id);
        }
    }

    /// Submits socket `id`'s next queued send, if any.
    pub(super) fn start_send(&mut self, id: FileId) {
        let Ok((_, target)) = self.file(id) else {
            return;
        };
        let Some(s) = self.net.sock(id) else { return };
        let Some(q) = s.sends.pop_front() else {
            return;
        };
        s.sending = true;
        match q {
            Queued::Send {
                token,
                key,
                zero_copy,
            } => self.submit_send(token, id, target, key, zero_copy),
            Queued::Shutdown { token } => {
                let op = Op::Shutdown {
                    target,
                    how: libc::SHUT_WR,
                };
                self.submit_op(token, Some(id), Kind::SockShutdown, op, Mem::None);
            }
        }
    }

    /// Submits (what is left of) the send `key`.
    pub(super) fn submit_send(
        &mut self,
        token: u32,
        id: FileId,
        target: Target,
        key: SendKey,
        zero_copy: bool,
    ) {
        let Some(e) = self.net.sends.get(key) else {
            return;
        };
        let op = match e.iovecs() {
            [v] if !zero_copy => Op::Send {
                target,
                ptr: v.iov_base.cast(),
                len: v.iov_len.min(MAX_IO) as u32,
            },
            // One registered block: SEND_ZC from the fixed buffer, whose
            // pages the kernel pinned once at registration.
            [v] => match self.buffers.lookup(v.iov_base.cast(), v.iov_len) {
                Some(Pinned {
                    fixed: Some(index), ..
                }) => Op::SendZc {
                    target,
                    ptr: v.iov_base.cast(),
                    len: v.iov_len.min(MAX_IO) as u32,
                    fixed: index,
                },
                _ => Op::SendMsg {
                    target,
                    msg: e.msghdr(),
                    zero_copy,
                },
            },
            _ => Op::SendMsg {
                target,
                msg: e.msghdr(),
                zero_copy,
            },
        };
        self.submit_op(
            token,
            Some(id),
            Kind::Send { key, zero_copy },
            op,
            Mem::None,
        );
    }

    /// Hands a finished send's memory back.
    pub(super) fn release_send(&mut self, r: Released<SendMem>) {
        if r.zc_copied {
            self.net.stat_zc_copied += 1;
        }
        for g in r.guards {
            if let SendMem::Bounce(b) = g {
                self.bounce.give(b);
            }
        }
        if let (Some(slot), Some(pool)) = (r.copy_slot, self.net.pool.as_mut()) {
            let _ = pool.free(slot);
        }
    }

    /// The socket's send in the kernel is done: the next may go.
    pub(super) fn send_finished(&mut self, id: FileId) {
        if let Some(s) = self.net.sock(id) {
            s.sending = false;
            self.start_send(id);
        }
    }

    /// Socket `id` is closing: settles what only the socket holds (a paused
    /// or starved stream's token, queued sends) with `ECANCELED`. Ops in the
    /// kernel are orphaned by the caller.
    pub(super) fn forget_socket(&mut self, id: FileId, out: &mut Vec<Done>) {
        if self.net.sock(id).is_none() {
            return;
        }
        let Some(mut s) = self.net.socks.remove(&id.index) else {
            return;
        };
        if let (Some(token), None) = (s.stream, s.armed) {
            out.push(Done::err(token, libc::ECANCELED));
        }
        for q in s.sends.drain(..) {
            match q {
                Queued::Send { token, key, .. } => {
                    out.push(Done::err(token, libc::ECANCELED));
                    // Never submitted: its memory can go now.
                    if let Some(p) = self.net.sends.on_completion(key, -libc::ECANCELED, false) {
                        if let Some(r) = p.into_released() {
                            self.release_send(r);
                        }
                    }
                }
                Queued::Shutdown { token } => out.push(Done::err(token, libc::ECANCELED)),
            }
        }
    }

    /// The local (`peer == false`) or remote address of socket `id`.
    pub fn sock_addr(&self, id: FileId, peer: bool) -> Result<SocketAddr, i32> {
        let e = self.files.entry(id).map_err(file_errno)?;
        let sa = self.engine.sock_name(e.fd, peer)?;
        from_sockaddr(&sa).ok_or(libc::EAFNOSUPPORT)
    }

    /// Sets a socket option on socket `id`.
    pub fn set_sock_option(&mut self, id: FileId, opt: SockOption) -> Result<(), i32> {
        self.sock_checked(id)?;
        let fd = self.files.entry(id).map_err(file_errno)?.fd;
        match opt {
            SockOption::NoDelay(on) => {
                self.engine
                    .set_sock_int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, on.into())
            }
            SockOption::KeepAlive(on, idle) => {
                self.engine
                    .set_sock_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, on.into())?;
                if on && idle > 0 {
                    let idle = idle.min(KEEPALIVE_IDLE_MAX) as i32;
                    self.engine
                        .set_sock_int(fd, libc::IPPROTO_TCP, KEEPALIVE_IDLE, idle)?;
                }
                Ok(())
            }
        }
    }

    /// Unregisters the receive buffers (nothing may be pending).
    pub(super) fn finish_net(&mut self) {
        let engine = self.engine.clone();
        if let Some(p) = self.net.pbuf.as_mut() {
            if p.unregister_with(|g| engine.unregister_buf_ring(g))
                .is_err()
            {
                // Still registered: dropping it leaks the memory (safe).
                return;
            }
        }
        self.net.pbuf = None;
        self.net.socks.clear();
    }
}

/// Copies `bufs` back to back to `dst`, which has room for `total` bytes.
/// `bufs` without their first `n` bytes.
fn skip_bytes(bufs: &[UserBuf], mut n: usize) -> Vec<UserBuf> {
    let mut out = Vec::with_capacity(bufs.len());
    for b in bufs {
        if n >= b.len {
            n -= b.len;
            continue;
        }
        out.push(UserBuf {
            ptr: b.ptr.wrapping_add(n),
            len: b.len - n,
        });
        n = 0;
    }
    out
}

fn copy_gather(bufs: &[UserBuf], dst: *mut u8, total: usize) {
    let mut at = 0;
    for b in bufs {
        debug_assert!(at + b.len <= total);
        // SAFETY: b is lent for this call; dst has room for `total` bytes,
        // the sum of the lengths; library memory never overlaps it.
        unsafe { std::ptr::copy_nonoverlapping(b.ptr, dst.add(at), b.len) };
        at += b.len;
    }
}

/// The TCP option for the idle time before keep-alive probes start.
#[cfg(not(target_vendor = "apple"))]
const KEEPALIVE_IDLE: i32 = libc::TCP_KEEPIDLE;
/// macOS spells `TCP_KEEPIDLE` as `TCP_KEEPALIVE` (also seconds).
#[cfg(target_vendor = "apple")]
const KEEPALIVE_IDLE: i32 = libc::TCP_KEEPALIVE;

/// The longest keep-alive idle time the kernel takes, in seconds: Linux
/// refuses more than `MAX_TCP_KEEPIDLE` (32767) with `EINVAL`. node:net
/// connects anyway there (it ignores the refusal and keeps the system's
/// idle time; libuv clamps only on Solaris, to ten days); ringline clamps,
/// so a long delay asked for gets the longest there is.
#[cfg(any(target_os = "linux", target_os = "android"))]
const KEEPALIVE_IDLE_MAX: u32 = 32767;
/// The longest keep-alive idle time, in seconds, elsewhere: macOS and the
/// BSDs keep it in ticks of an `int`-sized counter (macOS refuses more than
/// `u32::MAX / 1000`, FreeBSD more than `INT_MAX / hz`); this bound is
/// below both at `hz` up to 1000.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const KEEPALIVE_IDLE_MAX: u32 = i32::MAX as u32 / 1000;
