//! Completions of socket ops: the events of accept and receive streams
//! (re-arming a multishot op the kernel ended), sends (partial-send
//! resubmission, zero-copy notifications) and connects.

use super::*;
use crate::net::send_slab::SendProgress;
use crate::op::{CQE_F_BUFFER, CQE_F_MORE, CQE_F_NOTIF};

/// Where a completion belongs: its op's token and socket, whether the op was
/// settled early (orphaned), and its slab key while the entry stays (a
/// completion flagged `F_MORE`).
#[derive(Clone, Copy)]
struct Site {
    key: Option<u32>,
    token: u32,
    id: FileId,
    orphaned: bool,
}

impl Driver {
    /// A completion flagged `F_MORE`: the op goes on and its entry stays.
    pub(super) fn complete_more(&mut self, key: u32, cqe: Cqe, out: &mut Vec<Done>) {
        let Some(e) = self.slab.get(key) else {
            return;
        };
        let Some(id) = e.file else { return };
        let at = Site {
            key: Some(key),
            token: e.token,
            id,
            orphaned: e.orphaned,
        };
        let kind = e.kind;
        self.on_event(at, kind, cqe, out);
    }

    /// Completions of the ops that can have several: streams and sends.
    fn on_event(&mut self, at: Site, kind: Kind, cqe: Cqe, out: &mut Vec<Done>) {
        match kind {
            Kind::Recv => self.on_recv(at, cqe, out),
            Kind::Accept => self.on_accept(at, cqe, out),
            Kind::Send { key, zero_copy } => self.on_send(at, key, zero_copy, cqe, out),
            _ => {}
        }
    }

    /// The last completion of a socket op (its entry already removed).
    pub(super) fn complete_net(&mut self, e: Entry, cqe: Cqe, out: &mut Vec<Done>) {
        let Some(id) = e.file else { return };
        let res = cqe.result;
        match e.kind {
            Kind::Connect { timed } => {
                if e.orphaned {
                    self.drop_socket(id);
                } else if res >= 0 {
                    out.push(Done {
                        token: e.token,
                        result: id.pack() as i64,
                        payload: Payload::Opened(id),
                    });
                } else {
                    self.drop_socket(id);
                    // A connect ended by its linked timeout reports ECANCELED.
                    let errno = if res == -libc::ECANCELED && timed {
                        libc::ETIMEDOUT
                    } else {
                        -res
                    };
                    out.push(Done::err(e.token, errno));
                }
            }
            Kind::SentAtOnce => {
                if !e.orphaned {
                    out.push(Done {
                        token: e.token,
                        result: res.into(),
                        payload: Payload::None,
                    });
                }
                self.send_finished(id);
            }
            Kind::SockShutdown => {
                if !e.orphaned {
                    out.push(Done {
                        token: e.token,
                        result: res.min(0).into(),
                        payload: Payload::None,
                    });
                }
                self.send_finished(id);
            }
            kind => {
                let at = Site {
                    key: None,
                    token: e.token,
                    id,
                    orphaned: e.orphaned,
                };
                self.on_event(at, kind, cqe, out);
            }
        }
    }

    /// Unless more completions follow, the stream's multishot op is no
    /// longer in the kernel: forgets it. Returns whether it ended on a
    /// socket that is still open.
    fn stream_ended(&mut self, id: FileId, more: bool) -> bool {
        if more {
            return false;
        }
        match self.net.sock(id) {
            Some(s) => {
                s.armed = None;
                true
            }
            None => false,
        }
    }

    fn on_recv(&mut self, at: Site, cqe: Cqe, out: &mut Vec<Done>) {
        let Site {
            token,
            id,
            orphaned,
            ..
        } = at;
        let res = cqe.result;
        let more = cqe.flags & CQE_F_MORE != 0;
        if res > 0 && cqe.flags & CQE_F_BUFFER != 0 {
            let bid = (cqe.flags >> 16) as u16;
            let taken = self
                .net
                .pbuf
                .as_mut()
                .is_some_and(|p| p.take(bid, res as usize).is_ok());
            if taken {
                if orphaned {
                    self.recycle_received(bid);
                } else {
                    let data = self.received_ptr(bid, res as usize);
                    out.push(Done {
                        token,
                        result: res.into(),
                        payload: Payload::Received { bid, data },
                    });
                }
            }
        }
        if !self.stream_ended(id, more) || orphaned {
            return;
        }
        let Some(s) = self.net.sock(id) else { return };
        let cancelled = std::mem::take(&mut s.cancelling);
        match res {
            // The kernel ended the multishot after data (its completion
            // queue was full, say): go on.
            r if r > 0 => {
                if s.want {
                    self.net_rearm(id, out);
                }
            }
            0 => {
                s.stream = None;
                out.push(Done {
                    token,
                    result: 0,
                    payload: Payload::None,
                });
            }
            r if r == -libc::ENOBUFS => {
                // Every buffer is out: re-armed once some are back. The
                // data waits in the socket meanwhile.
                s.starved = true;
                self.net.starved_push(id);
            }
            r if r == -libc::ECANCELED && cancelled => {
                // Paused; resumed in the meantime?
                if s.want {
                    self.net_rearm(id, out);
                }
            }
            r => {
                s.stream = None;
                out.push(Done::err(token, -r));
            }
        }
    }

    fn net_rearm(&mut self, id: FileId, out: &mut Vec<Done>) {
        self.net.count_rearm();
        self.rearm_or_fail(id, out);
    }

    fn on_accept(&mut self, at: Site, cqe: Cqe, out: &mut Vec<Done>) {
        let Site {
            token,
            id,
            orphaned,
            ..
        } = at;
        let res = cqe.result;
        let more = cqe.flags & CQE_F_MORE != 0;
        if res >= 0 {
            if orphaned {
                self.close_fd(res);
            } else if let Ok(sock) = self.add_socket(res, false) {
                out.push(Done {
                    token,
                    result: sock.pack() as i64,
                    payload: Payload::Accepted(sock),
                });
            }
            // (A full file table closed the connection: the peer sees a
            // reset, the listener goes on.)
        }
        if !self.stream_ended(id, more) || orphaned {
            return;
        }
        let Some(s) = self.net.sock(id) else { return };
        let transient = res >= 0
            || res == -libc::ECONNABORTED
            || res == -libc::EINTR
            || res == -libc::EAGAIN
            || (res == -libc::ECANCELED && s.cancelling);
        s.cancelling = false;
        if transient {
            if s.want {
                self.net_rearm(id, out);
            }
        } else {
            s.stream = None;
            out.push(Done::err(token, -res));
        }
    }

    fn on_send(
        &mut self,
        at: Site,
        sk: crate::net::send_slab::SendKey,
        zero_copy: bool,
        cqe: Cqe,
        out: &mut Vec<Done>,
    ) {
        let Site {
            key,
            token,
            id,
            orphaned,
        } = at;
        let (res, flags) = (cqe.result, cqe.flags);
        let more = flags & CQE_F_MORE != 0;
        let notif = flags & CQE_F_NOTIF != 0;
        if zero_copy
            && !notif
            && !more
            && !orphaned
            && (res == -libc::EOPNOTSUPP || res == -libc::EINVAL)
            && self.net.sends.get(sk).is_some_and(|e| e.sent() == 0)
        {
            // This socket (or kernel) refuses zero-copy: copy from now on.
            self.net.refuse_zero_copy();
            if let Ok((_, target)) = self.file(id) {
                self.stats.submitted = self.stats.submitted.saturating_sub(1);
                self.submit_send(token, id, target, sk, false);
                return;
            }
        }
        let Some(mut p) = self.net.sends.on_cqe(sk, res, flags) else {
            return;
        };
        if let SendProgress::Resubmit = p {
            // This submission's entry (if it stays for a notification)
            // no longer carries the token: the resubmission does.
            if let Some(e) = key.and_then(|k| self.slab.get_mut(k)) {
                e.token = NO_TOKEN;
            }
            match self.file(id) {
                Ok((_, target)) if !orphaned => {
                    self.stats.submitted = self.stats.submitted.saturating_sub(1);
                    self.submit_send(token, id, target, sk, zero_copy);
                    return;
                }
                _ => {
                    // Closed meanwhile: the rest is never sent.
                    match self.net.sends.on_completion(sk, -libc::ECANCELED, false) {
                        Some(q) => p = q,
                        None => return,
                    }
                }
            }
        }
        if let Some(r) = p.settled() {
            if !orphaned && token != NO_TOKEN {
                out.push(Done {
                    token,
                    result: r,
                    payload: Payload::None,
                });
                if let Some(e) = key.and_then(|k| self.slab.get_mut(k)) {
                    e.token = NO_TOKEN;
                }
            }
        }
        if let Some(rel) = p.into_released() {
            self.release_send(rel);
        }
        if !notif {
            // The send's final completion: the socket's next send may go.
            self.send_finished(id);
        }
    }
}
