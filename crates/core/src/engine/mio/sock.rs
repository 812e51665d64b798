//! Socket ops of the mio engine: each waits on its socket's readiness and
//! runs as non-blocking syscalls, completing like its io_uring opcode.

use super::{cqe, sys, timeout_of, Deadline, Sqe, State};
use crate::engine::buf_ring::BufRing;
use crate::op::{Op, Target, CQE_F_BUFFER, CQE_F_MORE};
use mio::{Interest, Token};
use std::time::Instant;

/// Readiness of one socket, as last learnt: set by an event (or assumed at
/// registration), cleared when a syscall says it would block. mio's
/// readiness is edge-triggered, so this is what remembers it in between.
pub(super) struct Sock {
    pub readable: bool,
    pub writable: bool,
    /// The peer closed or the socket failed: read on until the end shows.
    pub closed: bool,
    /// Pending ops on this socket, oldest first.
    pub ops: Vec<u64>,
}

/// A pending socket op and its progress.
pub(super) enum Pending {
    Accept,
    Recv {
        group: u16,
    },
    Connect {
        /// The linked timeout's user data.
        timeout: Option<u64>,
    },
    Send {
        ptr: *const u8,
        len: usize,
        done: usize,
    },
    SendMsg {
        msg: *const libc::msghdr,
        done: usize,
    },
    /// A read or write on a pipe or FIFO: completes with what one syscall
    /// moved once the stream is ready.
    Io {
        op: Op,
    },
}

pub(super) struct SockOp {
    pub fd: i32,
    pub what: Pending,
}

fn fd_of(t: Target) -> Result<i32, i32> {
    match t {
        Target::Fd(fd) => Ok(fd),
        // The engine has no registered file table.
        Target::Fixed(_) => Err(-libc::EBADF),
    }
}

/// Watches `fd` (made non-blocking) if it is not watched yet.
fn watch(st: &mut State, fd: i32) -> Result<(), i32> {
    if st.socks.contains_key(&fd) {
        return Ok(());
    }
    let r = sys::set_nonblocking(fd);
    if r < 0 {
        return Err(r);
    }
    st.poll
        .registry()
        .register(
            &mut mio::unix::SourceFd(&fd),
            Token(fd as usize),
            Interest::READABLE | Interest::WRITABLE,
        )
        .map_err(|e| -e.raw_os_error().unwrap_or(libc::EINVAL))?;
    // Assumed ready until a syscall says otherwise: readiness that came
    // before the registration produced no event.
    st.socks.insert(
        fd,
        Sock {
            readable: true,
            writable: true,
            closed: false,
            ops: Vec::new(),
        },
    );
    Ok(())
}

/// Adds a pending op on `fd` and has it tried.
fn add(st: &mut State, user_data: u64, fd: i32, what: Pending) {
    if let Err(e) = watch(st, fd) {
        st.cq.push(cqe(user_data, e, 0));
        return;
    }
    st.ops.insert(user_data, SockOp { fd, what });
    if let Some(s) = st.socks.get_mut(&fd) {
        s.ops.push(user_data);
    }
    st.touched.push(fd);
}

/// Starts a read or write on a stream (pipe, FIFO, socket).
pub(super) fn start_stream_io(st: &mut State, s: Sqe) {
    let fd = match s.op {
        Op::Read { target, .. }
        | Op::Write { target, .. }
        | Op::Readv { target, .. }
        | Op::Writev { target, .. } => fd_of(target),
        _ => Err(-libc::EINVAL),
    };
    match fd {
        Ok(fd) => add(st, s.user_data, fd, Pending::Io { op: s.op }),
        Err(e) => st.cq.push(cqe(s.user_data, e, 0)),
    }
}

/// Starts a chain whose first op is a socket op.
pub(super) fn start(st: &mut State, chain: &[Sqe]) {
    let first = chain[0];
    let ud = first.user_data;
    let mut rest = &chain[1..];
    let target = match first.op {
        Op::AcceptMulti { target }
        | Op::RecvMulti { target, .. }
        | Op::Send { target, .. }
        | Op::SendMsg { target, .. }
        | Op::SendZc { target, .. }
        | Op::Shutdown { target, .. } => fd_of(target),
        Op::Connect { fd, .. } => Ok(fd),
        _ => Err(-libc::EINVAL),
    };
    match (first.op, target) {
        (_, Err(e)) => st.cq.push(cqe(ud, e, 0)),
        (Op::AcceptMulti { .. }, Ok(fd)) => add(st, ud, fd, Pending::Accept),
        (Op::RecvMulti { group, .. }, Ok(fd)) => add(st, ud, fd, Pending::Recv { group }),
        (Op::Send { ptr, len, .. }, Ok(fd)) => add(
            st,
            ud,
            fd,
            Pending::Send {
                ptr,
                len: len as usize,
                done: 0,
            },
        ),
        (
            Op::SendMsg {
                msg,
                zero_copy: false,
                ..
            },
            Ok(fd),
        ) => add(st, ud, fd, Pending::SendMsg { msg, done: 0 }),
        (Op::SendMsg { .. } | Op::SendZc { .. }, Ok(_)) => {
            st.cq.push(cqe(ud, -libc::EOPNOTSUPP, 0));
        }
        (Op::Shutdown { how, .. }, Ok(fd)) => {
            let r = sys::shutdown(fd, how);
            st.cq.push(cqe(ud, r, 0));
        }
        (Op::Connect { addr, len, .. }, Ok(fd)) => {
            let timeout = match rest.first().map(|s| s.op) {
                Some(Op::LinkTimeout { ts }) => {
                    let t = rest[0].user_data;
                    rest = &rest[1..];
                    Some((t, timeout_of(ts)))
                }
                _ => None,
            };
            connect(st, ud, fd, addr, len, timeout);
        }
        _ => st.cq.push(cqe(ud, -libc::EINVAL, 0)),
    }
    super::cancel_rest(st, rest);
}

fn connect(
    st: &mut State,
    ud: u64,
    fd: i32,
    addr: *const libc::sockaddr,
    len: u32,
    timeout: Option<(u64, std::time::Duration)>,
) {
    let r = match watch(st, fd) {
        Ok(()) => sys::connect(fd, addr, len),
        Err(e) => e,
    };
    if r == -libc::EINPROGRESS {
        st.ops.insert(
            ud,
            SockOp {
                fd,
                what: Pending::Connect {
                    timeout: timeout.map(|t| t.0),
                },
            },
        );
        if let Some(s) = st.socks.get_mut(&fd) {
            s.writable = false;
            s.ops.push(ud);
        }
        if let Some((t, d)) = timeout {
            st.deadlines.push(Deadline {
                at: Instant::now() + d,
                connect: ud,
                timeout: t,
            });
        }
        return;
    }
    st.cq.push(cqe(ud, r, 0));
    if let Some((t, _)) = timeout {
        st.cq.push(cqe(t, -libc::ECANCELED, 0));
    }
}

/// Ends pending op `ud` with `result` (its linked timeout, if any, is
/// cancelled).
pub(super) fn end_op(st: &mut State, ud: u64, result: i32) {
    let Some(op) = st.ops.remove(&ud) else { return };
    if let Some(s) = st.socks.get_mut(&op.fd) {
        s.ops.retain(|u| *u != ud);
    }
    st.cq.push(cqe(ud, result, 0));
    if let Pending::Connect { timeout: Some(t) } = op.what {
        st.deadlines.retain(|d| d.connect != ud);
        st.cq.push(cqe(t, -libc::ECANCELED, 0));
    }
}

pub(super) fn cancel_op(st: &mut State, ud: u64) {
    end_op(st, ud, -libc::ECANCELED);
}

/// Connects whose timeout passed: the connect ends with `-ECANCELED` and
/// the timeout with `-ETIME`, as a fired `LINK_TIMEOUT` does.
pub(super) fn expire(st: &mut State, now: Instant) {
    let (due, keep): (Vec<Deadline>, Vec<Deadline>) = std::mem::take(&mut st.deadlines)
        .into_iter()
        .partition(|d| d.at <= now);
    st.deadlines = keep;
    for d in due {
        if let Some(op) = st.ops.remove(&d.connect) {
            if let Some(s) = st.socks.get_mut(&op.fd) {
                s.ops.retain(|u| *u != d.connect);
            }
            st.cq.push(cqe(d.timeout, -libc::ETIME, 0));
            st.cq.push(cqe(d.connect, -libc::ECANCELED, 0));
        }
    }
}

/// What one attempt at an op did.
struct Step {
    ended: bool,
    /// The socket would block for reading / writing.
    read_blocked: bool,
    write_blocked: bool,
}

/// Tries every pending op of `fd` its readiness allows, oldest first; one
/// send at a time, so sends never interleave.
pub(super) fn drive(st: &mut State, fd: i32) {
    let mut i = 0;
    let mut send_seen = false;
    loop {
        let State {
            socks,
            ops,
            rings,
            cq,
            deadlines,
            ..
        } = &mut *st;
        let Some(sock) = socks.get_mut(&fd) else {
            return;
        };
        let Some(&ud) = sock.ops.get(i) else {
            return;
        };
        let Some(op) = ops.get_mut(&ud) else {
            sock.ops.remove(i);
            continue;
        };
        let mut step = Step {
            ended: false,
            read_blocked: false,
            write_blocked: false,
        };
        match &mut op.what {
            Pending::Accept if sock.readable => accept(fd, ud, cq, &mut step),
            Pending::Recv { group } if sock.readable => {
                recv(fd, ud, rings.get_mut(group), sock.closed, cq, &mut step)
            }
            Pending::Connect { timeout } if sock.writable => match sys::connect_result(fd) {
                None => step.write_blocked = true,
                Some(r) => {
                    cq.push(cqe(ud, r, 0));
                    if let Some(t) = *timeout {
                        deadlines.retain(|d| d.connect != ud);
                        cq.push(cqe(t, -libc::ECANCELED, 0));
                    }
                    step.ended = true;
                }
            },
            Pending::Send { ptr, len, done } if !send_seen => {
                send_seen = true;
                if sock.writable {
                    send(fd, ud, *ptr, *len, done, cq, &mut step);
                }
            }
            Pending::SendMsg { msg, done } if !send_seen => {
                send_seen = true;
                if sock.writable {
                    send_msg(fd, ud, *msg, done, cq, &mut step);
                }
            }
            Pending::Io { op } => {
                let reads = matches!(op, Op::Read { .. } | Op::Readv { .. });
                if (reads && sock.readable) || (!reads && sock.writable) {
                    let r = sys::stream_io(fd, op);
                    if r == -(libc::EAGAIN as isize) {
                        step.read_blocked = reads;
                        step.write_blocked = !reads;
                    } else {
                        cq.push(cqe(ud, r as i32, 0));
                        step.ended = true;
                    }
                }
            }
            _ => {}
        }
        if step.read_blocked {
            sock.readable = false;
        }
        if step.write_blocked {
            sock.writable = false;
        }
        if step.ended {
            sock.ops.remove(i);
            ops.remove(&ud);
        } else {
            i += 1;
        }
    }
}

fn accept(fd: i32, ud: u64, cq: &mut Vec<crate::op::Cqe>, step: &mut Step) {
    loop {
        let r = sys::accept(fd);
        if r >= 0 {
            cq.push(cqe(ud, r, CQE_F_MORE));
            continue;
        }
        match -r {
            libc::EAGAIN => step.read_blocked = true,
            // The connection went away before it was taken: the next one.
            libc::ECONNABORTED | libc::EPROTO => continue,
            _ => {
                cq.push(cqe(ud, r, 0));
                step.ended = true;
            }
        }
        return;
    }
}

/// Provided buffers one receive syscall fills at most (a `readv` over
/// them): fewer syscalls for bulk data, one completion per buffer as the
/// kernel's multishot receive makes.
const RECV_SPAN: usize = 4;

fn recv(
    fd: i32,
    ud: u64,
    mut ring: Option<&mut BufRing>,
    closed: bool,
    cq: &mut Vec<crate::op::Cqe>,
    step: &mut Step,
) {
    let mut span_next = 1;
    loop {
        let avail = ring.as_ref().map_or(0, |r| r.available());
        let Some(r) = ring.as_mut().filter(|_| avail > 0) else {
            // Out of provided buffers: the multishot ends, as on io_uring.
            cq.push(cqe(ud, -libc::ENOBUFS, 0));
            step.ended = true;
            return;
        };
        // One buffer first (one recv, like a small message needs); more
        // only after a read filled all it was given (bulk data).
        let span = usize::from(avail).min(span_next);
        let mut iov = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; RECV_SPAN];
        let mut bids = [0u16; RECV_SPAN];
        let mut room = 0;
        for (i, (v, b)) in iov.iter_mut().zip(bids.iter_mut()).take(span).enumerate() {
            let (ptr, len, bid) = r.at(i as u16);
            *v = libc::iovec {
                iov_base: ptr.cast(),
                iov_len: len,
            };
            *b = bid;
            room += len;
        }
        let n = sys::recv_into(fd, &iov[..span]);
        if n > 0 {
            let mut left = n as usize;
            for (v, bid) in iov.iter().zip(bids.iter()).take(span) {
                if left == 0 {
                    break;
                }
                let take = left.min(v.iov_len);
                r.consume();
                let flags = CQE_F_BUFFER | (u32::from(*bid) << 16) | CQE_F_MORE;
                cq.push(cqe(ud, take as i32, flags));
                left -= take;
            }
            span_next = RECV_SPAN;
            if (n as usize) < room && !closed {
                // A stream socket hands over all it holds: it is drained,
                // and new data will raise a new readiness event.
                step.read_blocked = true;
                return;
            }
            continue;
        }
        if n == -(libc::EAGAIN as isize) {
            step.read_blocked = true;
        } else {
            // 0: the peer's end of stream; < 0: the error. Either ends it.
            cq.push(cqe(ud, n as i32, 0));
            step.ended = true;
        }
        return;
    }
}

fn send(
    fd: i32,
    ud: u64,
    ptr: *const u8,
    len: usize,
    done: &mut usize,
    cq: &mut Vec<crate::op::Cqe>,
    step: &mut Step,
) {
    send_all(ud, len, done, cq, step, |sent| {
        // SAFETY: sent < len (send_all stops at len); ptr holds len bytes.
        sys::send(fd, unsafe { ptr.add(sent) }, len - sent)
    });
}

fn send_msg(
    fd: i32,
    ud: u64,
    msg: *const libc::msghdr,
    done: &mut usize,
    cq: &mut Vec<crate::op::Cqe>,
    step: &mut Step,
) {
    // msg_iovlen is a usize on glibc, an int on musl and macOS.
    #[allow(clippy::unnecessary_cast)]
    // SAFETY: msg and its iovecs live in the op's slab entry (Engine::push).
    let iov = unsafe { std::slice::from_raw_parts((*msg).msg_iov, (*msg).msg_iovlen as usize) };
    let total: usize = iov.iter().map(|v| v.iov_len).sum();
    send_all(ud, total, done, cq, step, |sent| {
        if sent == 0 {
            sys::sendmsg(fd, iov.as_ptr(), iov.len())
        } else {
            let rest = advance(iov, sent);
            sys::sendmsg(fd, rest.as_ptr(), rest.len())
        }
    });
}

/// Sends until `total` bytes are out (`done` counts them across readiness
/// events), the socket would block, or an error. `attempt(sent)` sends
/// what follows the first `sent` bytes. The send ends with all of it, or
/// with an error after `done` bytes, reported as the bytes sent (as
/// io_uring does; the driver then sends the rest and meets the error).
fn send_all(
    ud: u64,
    total: usize,
    done: &mut usize,
    cq: &mut Vec<crate::op::Cqe>,
    step: &mut Step,
    mut attempt: impl FnMut(usize) -> isize,
) {
    let n = loop {
        let n = attempt(*done);
        if n <= 0 {
            break n;
        }
        *done += n as usize;
        if *done >= total {
            break 0;
        }
    };
    if n == -(libc::EAGAIN as isize) {
        step.write_blocked = true;
        return;
    }
    let r = if n < 0 && *done == 0 {
        n as i32
    } else {
        (*done).min(i32::MAX as usize) as i32
    };
    cq.push(cqe(ud, r, 0));
    step.ended = true;
}

/// The iovecs that remain after `skip` bytes were sent.
fn advance(iov: &[libc::iovec], mut skip: usize) -> Vec<libc::iovec> {
    let mut out = Vec::with_capacity(iov.len());
    for v in iov {
        if skip >= v.iov_len {
            skip -= v.iov_len;
            continue;
        }
        out.push(libc::iovec {
            // SAFETY: skip < iov_len, so the result stays inside the block.
            iov_base: unsafe { v.iov_base.cast::<u8>().add(skip) }.cast(),
            iov_len: v.iov_len - skip,
        });
        skip = 0;
    }
    out
}
