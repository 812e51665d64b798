//! Completions: turning a CQE into the settled op (`Done`), opening files
//! into the table, and finishing append chains (retrying short writes).

use super::*;
use crate::op::CQE_F_MORE;

impl Driver {
    /// Settles the op behind `cqe` into `out`, then admits waiting ops.
    pub fn complete(&mut self, cqe: Cqe, out: &mut Vec<Done>) {
        self.counting(out, |d, out| d.complete_one(cqe, out));
        self.admit_backlog();
    }

    pub(super) fn complete_one(&mut self, cqe: Cqe, out: &mut Vec<Done>) {
        let key = cqe.user_data as u32;
        if cqe.flags & CQE_F_MORE != 0 {
            // More completions of this op follow: its entry stays.
            self.complete_more(key, cqe, out);
            return;
        }
        let Some(e) = self.slab.remove(key) else {
            return;
        };
        if let Some(f) = e.file {
            if let Ok(fe) = self.files.entry_mut(f) {
                fe.in_flight = fe.in_flight.saturating_sub(1);
            }
        }
        if e.kind.is_stream() {
            self.streams -= 1;
        }
        let res = cqe.result;
        match e.kind {
            Kind::Chain(c) => self.complete_chain(c, &e, res, out),
            Kind::Accept
            | Kind::Recv
            | Kind::Send { .. }
            | Kind::Connect { .. }
            | Kind::SockShutdown => self.complete_net(e, cqe, out),
            _ if e.orphaned => {
                if let Kind::Open { .. } = e.kind {
                    if res >= 0 {
                        self.close_fd(res);
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

    pub(super) fn opened(&mut self, token: u32, res: i32, direct: bool, append: bool) -> Done {
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
                self.close_fd(fd);
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

    pub(super) fn complete_chain(&mut self, c: u32, e: &Entry, res: i32, out: &mut Vec<Done>) {
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
