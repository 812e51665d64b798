//! What travels on the sim's network and when: events (SYN, bytes, end
//! of stream, reset, a connect's timeout) with their virtual arrival
//! times, partitions that hold them back, and the loop that runs the
//! network until nothing is left to happen (see the parent module).

use super::super::fault::FaultKind;
use super::super::{next, State};
use super::{
    abort, end, fault_of, post, reset, resets, send, Conn, Parked, Sock, Stream, Waiting, WINDOW,
};
use crate::engine::buf_ring::BufRing;
use crate::op::{Op, CQE_F_BUFFER, CQE_F_MORE};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Something travelling between two sockets.
#[derive(Clone)]
pub(super) enum Event {
    /// A connect arrives at `to`.
    Syn { client: i32, to: SocketAddr },
    /// The listener's answer reaches the connecting socket.
    Accepted { client: i32, server: i32 },
    /// Nobody listens at the address: the connect fails.
    Refused { client: i32 },
    /// Bytes from `from` arrive at `to`.
    Data { from: i32, to: i32, bytes: Vec<u8> },
    /// `from` ended its stream toward `to`.
    Fin { from: i32, to: i32 },
    /// `to`'s connection is reset.
    Reset { to: i32 },
    /// The linked timeout of a connect (the one parked as `seq`) fires.
    GiveUp { connect: u64, seq: u64 },
}

/// The latency of one event: 10 to 100 µs, from the seed.
pub(super) fn latency(st: &mut State) -> u64 {
    (10 + next(&mut st.rng) % 91) * 1_000
}

pub(super) fn schedule(st: &mut State, at: u64, ev: Event) {
    st.net.seq += 1;
    st.net.events.insert((at, st.net.seq), ev);
}

/// Schedules `ev` from stream end `from` after a latency, behind that
/// end's earlier events.
pub(super) fn send_event(st: &mut State, from: i32, ev: Event) {
    send_event_late(st, from, ev, 0);
}

/// [`send_event`], `extra` nanoseconds later.
pub(super) fn send_event_late(st: &mut State, from: i32, ev: Event, extra: u64) {
    let lat = latency(st) + extra;
    let mut at = st.clock + lat;
    if let Some(Sock {
        state: Conn::Open(c),
        ..
    }) = st.net.socks.get_mut(&from)
    {
        at = at.max(c.last_arrival + 1);
        c.last_arrival = at;
    }
    schedule(st, at, ev);
}

/// The ports of the two ends an event travels between, if it does.
fn ends(st: &State, ev: &Event) -> Option<(u16, u16)> {
    let port = |fd: i32| {
        st.net
            .socks
            .get(&fd)
            .and_then(|s| s.local)
            .map_or(0, |a| a.port())
    };
    match ev {
        Event::Syn { client, to } => Some((port(*client), to.port())),
        Event::Accepted { client, server } => Some((port(*server), port(*client))),
        Event::Refused { .. } | Event::GiveUp { .. } => None,
        Event::Data { from, to, .. } | Event::Fin { from, to } => Some((port(*from), port(*to))),
        Event::Reset { to } => {
            let peer = match st.net.socks.get(to).map(|s| &s.state) {
                Some(Conn::Open(c)) => c.peer.port(),
                _ => 0,
            };
            Some((peer, port(*to)))
        }
    }
}

fn cut(st: &State, ev: &Event) -> bool {
    match ends(st, ev) {
        None => false,
        Some((a, b)) => st
            .net
            .cuts
            .iter()
            .any(|c| c.is_none_or(|p| p == a || p == b)),
    }
}

/// Cuts the network: every connection with an end on `port` (every one
/// when `None`) stops carrying anything until [`heal`].
pub(in super::super) fn partition(st: &mut State, port: Option<u16>) {
    st.net.cuts.push(port);
}

/// Removes every partition: what they held back travels on.
pub(in super::super) fn heal(st: &mut State) {
    st.net.cuts.clear();
    let held = std::mem::take(&mut st.net.held);
    for ev in held {
        let at = st.clock + latency(st);
        schedule(st, at, ev);
    }
}

/// Runs the network until nothing is left to happen: what waits is
/// served, and the clock jumps to each next event in turn.
pub(in super::super) fn settle(st: &mut State) {
    loop {
        serve(st);
        let Some((&key, _)) = st.net.events.first_key_value() else {
            return;
        };
        let Some(ev) = st.net.events.remove(&key) else {
            return;
        };
        if stale(st, &ev) {
            // A give-up for a connect that is done: no time passes for it.
            continue;
        }
        st.clock = st.clock.max(key.0);
        if cut(st, &ev) {
            st.net.held.push(ev);
            continue;
        }
        arrive(st, ev);
    }
}

fn stale(st: &State, ev: &Event) -> bool {
    match ev {
        Event::GiveUp { connect, seq, .. } => st
            .net
            .parked
            .get(connect)
            .is_none_or(|p| p.seq != *seq || !matches!(p.what, Waiting::Connect(_))),
        _ => false,
    }
}

/// One event arrives.
fn arrive(st: &mut State, ev: Event) {
    match ev {
        Event::Syn { client, to } => match listener_at(st, to) {
            Some(l) => {
                if let Some(Sock {
                    state:
                        Conn::Listening {
                            queue,
                            backlog,
                            syns,
                        },
                    ..
                }) = st.net.socks.get_mut(&l)
                {
                    if queue.len() > *backlog || !syns.is_empty() {
                        syns.push_back(client);
                        return;
                    }
                }
                admit(st, l, client);
            }
            None => {
                let at = st.clock + latency(st);
                schedule(st, at, Event::Refused { client });
            }
        },
        Event::Accepted { client, server } => {
            let Some(ud) = connect_of(st, client) else {
                // The connect was given up meanwhile: the server's end is
                // reset.
                if let Some(Sock {
                    state: Conn::Open(c),
                    ..
                }) = st.net.socks.get_mut(&server)
                {
                    c.error = Some(libc::ECONNRESET);
                }
                return;
            };
            let Some(s) = st.net.socks.get_mut(&client) else {
                return;
            };
            // The peer as the client named it (an unspecified address
            // reaches its own loopback address).
            let peer = match (&s.state, s.local) {
                (Conn::Connecting { to }, Some(local)) if to.ip().is_unspecified() => {
                    Some(SocketAddr::new(local.ip(), to.port()))
                }
                (Conn::Connecting { to }, _) => Some(*to),
                _ => None,
            };
            let server_open = st.net.socks.contains_key(&server);
            let Some(s) = st.net.socks.get_mut(&client) else {
                return;
            };
            match peer.filter(|_| server_open) {
                Some(peer) => {
                    s.state = Conn::Open(Stream::new(peer, server));
                    end(st, ud, 0);
                }
                // The listener closed before it was accepted: reset.
                None => {
                    s.state = Conn::Fresh;
                    end(st, ud, -libc::ECONNREFUSED);
                }
            }
        }
        Event::Refused { client } => {
            if let Some(ud) = connect_of(st, client) {
                if let Some(s) = st.net.socks.get_mut(&client) {
                    s.state = Conn::Fresh;
                }
                end(st, ud, -libc::ECONNREFUSED);
            }
        }
        Event::GiveUp { connect, .. } => {
            let Some(p) = st.net.parked.remove(&connect) else {
                return;
            };
            if let Some(s) = st.net.socks.get_mut(&p.fd) {
                s.state = Conn::Fresh;
            }
            // As a fired LINK_TIMEOUT reports it.
            if let Waiting::Connect(Some(t)) = p.what {
                post(st, t, -libc::ETIME, 0, "timeout", p.fd);
            }
            post(st, connect, -libc::ECANCELED, 0, "connect", p.fd);
        }
        Event::Data { from, to, bytes } => match st.net.socks.get_mut(&to) {
            Some(Sock {
                state: Conn::Open(c),
                ..
            }) if c.error.is_none() => c.inbox.extend(bytes),
            Some(_) => {}
            // Bytes for a closed socket: the sender is reset.
            None => {
                if let Some(Sock {
                    state: Conn::Open(c),
                    ..
                }) = st.net.socks.get_mut(&from)
                {
                    c.unread_by_peer = 0;
                }
                reset(st, from);
            }
        },
        Event::Fin { to, .. } => {
            if let Some(Sock {
                state: Conn::Open(c),
                ..
            }) = st.net.socks.get_mut(&to)
            {
                c.fin = true;
            }
        }
        Event::Reset { to } => reset(st, to),
    }
}

/// Listener `l` takes connecting socket `client`: the server's end is
/// made and queued for accept, and the answer travels back.
fn admit(st: &mut State, l: i32, client: i32) {
    let (client_addr, to) = match st.net.socks.get(&client) {
        Some(Sock {
            local: Some(a),
            state: Conn::Connecting { to },
            ..
        }) => (*a, *to),
        // Given up meanwhile.
        _ => return,
    };
    // The address the client reached, as the server's own; a v6 listener
    // sees a v4 client's as v4-mapped.
    let mut local = to;
    if local.ip().is_unspecified() {
        local.set_ip(client_addr.ip());
    }
    let v6 = st.net.socks.get(&l).is_some_and(|s| s.v6);
    let mut seen = client_addr;
    if let (true, IpAddr::V4(a), IpAddr::V4(b)) = (v6, local.ip(), seen.ip()) {
        local.set_ip(IpAddr::V6(a.to_ipv6_mapped()));
        seen.set_ip(IpAddr::V6(b.to_ipv6_mapped()));
    }
    let server = st.next_fd;
    st.next_fd += 1;
    st.net.socks.insert(
        server,
        Sock {
            v6,
            v6_only: false,
            reuse_port: false,
            local: Some(local),
            state: Conn::Open(Stream::new(seen, client)),
        },
    );
    if let Some(Sock {
        state: Conn::Listening { queue, .. },
        ..
    }) = st.net.socks.get_mut(&l)
    {
        queue.push_back(server);
    }
    let at = st.clock + latency(st);
    schedule(st, at, Event::Accepted { client, server });
}

/// The parked connect of socket `fd`.
fn connect_of(st: &State, fd: i32) -> Option<u64> {
    st.net
        .parked
        .iter()
        .find(|(_, p)| p.fd == fd && matches!(p.what, Waiting::Connect(_)))
        .map(|(u, _)| *u)
}

/// The listener a connect to `to` reaches.
fn listener_at(st: &State, to: SocketAddr) -> Option<i32> {
    let mut target = to;
    if target.ip().is_unspecified() {
        target.set_ip(match to {
            SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let listening = |s: &Sock| matches!(s.state, Conn::Listening { .. });
    let exact = st
        .net
        .socks
        .iter()
        .find(|(_, s)| listening(s) && s.local == Some(target));
    if let Some((fd, _)) = exact {
        return Some(*fd);
    }
    st.net
        .socks
        .iter()
        .find(|(_, s)| {
            listening(s)
                && s.local.is_some_and(|a| {
                    a.port() == target.port()
                        && a.ip().is_unspecified()
                        && (a.is_ipv6() == target.is_ipv6() || (a.is_ipv6() && !s.v6_only))
                })
        })
        .map(|(fd, _)| *fd)
}

/// Serves what waits until nothing more can be served: accepted
/// connections to accepts, arrived bytes and ends of stream to receives,
/// freed window to waiting sends.
fn serve(st: &mut State) {
    loop {
        let mut progress = false;
        let mut waiting: Vec<(u64, Parked)> = st.net.parked.iter().map(|(u, p)| (*u, *p)).collect();
        waiting.sort_by_key(|(_, p)| p.seq);
        for (ud, p) in waiting {
            if !st.net.parked.contains_key(&ud) {
                continue;
            }
            progress |= match p.what {
                Waiting::Accept => serve_accept(st, ud, p.fd),
                Waiting::Recv(group) => serve_recv(st, ud, p.fd, group),
                Waiting::Send(op) => serve_send(st, ud, p.fd, op),
                Waiting::Connect(_) => false,
            };
        }
        if !progress {
            return;
        }
    }
}

fn serve_accept(st: &mut State, ud: u64, fd: i32) -> bool {
    let Some(Sock {
        state: Conn::Listening { queue, syns, .. },
        ..
    }) = st.net.socks.get_mut(&fd)
    else {
        end(st, ud, -libc::EINVAL);
        return true;
    };
    let Some(conn) = queue.pop_front() else {
        return false;
    };
    // Room in the queue: the oldest connect waiting for it gets in.
    if let Some(client) = syns.pop_front() {
        admit(st, fd, client);
    }
    if let Some(FaultKind::Error(e)) = fault_of(st, "accept", fd) {
        let _ = abort(st, conn);
        end(st, ud, -e);
        return true;
    }
    post(st, ud, conn, CQE_F_MORE, "accept", fd);
    true
}

fn serve_recv(st: &mut State, ud: u64, fd: i32, group: u16) -> bool {
    let (avail, fin, error) = match st.net.socks.get(&fd) {
        Some(Sock {
            state: Conn::Open(c),
            ..
        }) => (c.inbox.len(), c.fin, c.error),
        _ => {
            end(st, ud, -libc::ENOTCONN);
            return true;
        }
    };
    if let Some(e) = error {
        end(st, ud, -e);
        return true;
    }
    if avail == 0 {
        if fin {
            end(st, ud, 0);
            return true;
        }
        return false;
    }
    let buffers = st.net.rings.get(&group).map_or(0, BufRing::available);
    if buffers == 0 {
        // Out of provided buffers: the multishot ends, as on io_uring.
        end(st, ud, -libc::ENOBUFS);
        return true;
    }
    let mut chunk = avail;
    match fault_of(st, "recv", fd) {
        Some(FaultKind::Error(e)) => {
            if resets(e) {
                let peer = match &st.net.socks[&fd].state {
                    Conn::Open(c) => c.peer_fd,
                    _ => -1,
                };
                reset(st, fd);
                send_event(st, fd, Event::Reset { to: peer });
            }
            end(st, ud, -e);
            return true;
        }
        Some(FaultKind::Short) => chunk = (chunk / 2).max(1),
        _ => {}
    }
    // The seed cuts one receive in four short: a stream has no message
    // boundaries, and code that assumes them should fail here.
    if next(&mut st.rng).is_multiple_of(4) {
        chunk = 1 + (next(&mut st.rng) as usize) % chunk;
    }
    let Some(ring) = st.net.rings.get_mut(&group) else {
        return false;
    };
    let (ptr, len, bid) = ring.at(0);
    let n = chunk.min(len);
    ring.consume();
    let Some(Sock {
        state: Conn::Open(c),
        ..
    }) = st.net.socks.get_mut(&fd)
    else {
        return false;
    };
    let (a, b) = c.inbox.as_slices();
    let from_a = n.min(a.len());
    // SAFETY: the provided buffer holds len >= n bytes, the driver's and
    // not read by it until this completion names it.
    unsafe {
        std::ptr::copy_nonoverlapping(a.as_ptr(), ptr, from_a);
        std::ptr::copy_nonoverlapping(b.as_ptr(), ptr.add(from_a), n - from_a);
    }
    c.inbox.drain(..n);
    let peer = c.peer_fd;
    if let Some(Sock {
        state: Conn::Open(p),
        ..
    }) = st.net.socks.get_mut(&peer)
    {
        p.unread_by_peer = p.unread_by_peer.saturating_sub(n);
    }
    let flags = CQE_F_BUFFER | (u32::from(bid) << 16) | CQE_F_MORE;
    post(st, ud, n as i32, flags, "recv", fd);
    true
}

fn serve_send(st: &mut State, ud: u64, fd: i32, op: Op) -> bool {
    // Only the oldest waiting send of a socket goes: sends never
    // interleave.
    let oldest = st
        .net
        .parked
        .iter()
        .filter(|(_, p)| p.fd == fd && matches!(p.what, Waiting::Send(_)))
        .min_by_key(|(_, p)| p.seq)
        .map(|(u, _)| *u);
    if oldest != Some(ud) {
        return false;
    }
    let room = match st.net.socks.get(&fd) {
        Some(Sock {
            state: Conn::Open(c),
            ..
        }) => c.error.is_some() || c.shut || c.unread_by_peer < WINDOW,
        _ => true,
    };
    if !room {
        return false;
    }
    st.net.parked.remove(&ud);
    match send(st, ud, fd, &op) {
        Ok(Some(n)) => post(st, ud, n, 0, "send", fd),
        Ok(None) => {}
        Err(e) => post(st, ud, -e, 0, "send", fd),
    }
    true
}
