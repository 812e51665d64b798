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
        let Some((e, cqe)) = self.continue_read(e, cqe) else {
            return;
        };
        let file = e.file;
        self.settle_entry(e, cqe, out);
        if let Some(f) = file {
            self.file_op_gone(f);
        }
    }

    /// A positional read that came back short, with more asked for, is
    /// read on from where it stopped: io_uring may end a buffered read at a
    /// page boundary (a read waiting for a page that a write to the same
    /// file holds), where `pread` and node:fs return every byte up to the
    /// end of the file. The next round's 0 means the end of the file. The
    /// entry goes back into the kernel (into the slab slot it just left),
    /// still counted pending; `None` then. Otherwise returns the entry with
    /// the completion that settles it, its result the bytes of every round.
    ///
    /// A positional read that was being cancelled (an abort, a close) and
    /// stopped short settles as cancelled: it changed nothing but the
    /// caller's buffer, and a short count mid-file would read as the end of
    /// the file (the fuzzer found one: 2,201 of 5,176 bytes at a close).
    /// A read at the file position reports what it read: the position
    /// moved, and a pipe's bytes are gone.
    fn continue_read(&mut self, mut e: Entry, mut cqe: Cqe) -> Option<(Entry, Cqe)> {
        let Op::Read {
            target,
            ptr,
            len,
            offset,
            fixed,
        } = e.op
        else {
            return Some((e, cqe));
        };
        let positional = offset != CURRENT_POSITION && !matches!(e.kind, Kind::Chain(_));
        let short = cqe.result > 0 && (cqe.result as u32) < len;
        let cancelled = e.cancel_sent || e.orphaned;
        if positional && short && !cancelled {
            let n = cqe.result as u32;
            e.partial += n;
            e.op = Op::Read {
                target,
                // SAFETY: n < len: still inside the op's memory.
                ptr: unsafe { ptr.add(n as usize) },
                len: len - n,
                offset: offset + u64::from(n),
                fixed,
            };
            match self.slab.insert(e) {
                Ok(k) => self.push_slot(k, Link::None),
                Err(_) => unreachable!("the slot was just freed"),
            }
            return None;
        }
        if positional && cancelled && (short || (cqe.result < 0 && e.partial > 0)) {
            cqe.result = -libc::ECANCELED;
        } else if e.partial > 0 {
            cqe.result = e.partial as i32 + cqe.result.max(0);
        }
        Some((e, cqe))
    }

    fn settle_entry(&mut self, e: Entry, cqe: Cqe, out: &mut Vec<Done>) {
        if e.kind.is_stream() {
            self.streams -= 1;
        }
        let res = cqe.result;
        match e.kind {
            Kind::Chain(c) => self.complete_chain(c, &e, res, out),
            Kind::GroupSync(n) => self.group_synced(e.file, n, res, out),
            Kind::BatchWrite(b) => self.batch_written(b, res, out),
            Kind::Whole(w, step) => self.complete_whole(w, step, res, out),
            Kind::SlotClose(slot) => self.slot_closed(slot),
            Kind::Accept
            | Kind::Recv
            | Kind::Send { .. }
            | Kind::Connect { .. }
            | Kind::SockShutdown
            | Kind::SentAtOnce => self.complete_net(e, cqe, out),
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
                // A close the kernel did not run (cancelled) leaves the fd
                // to `finish`; any other result means it is not ours now.
                if let (Some(f), true) = (e.file, res != -libc::ECANCELED) {
                    let _ = self.files.remove(f);
                    self.sync_groups.remove(&f);
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
                if let (true, Some(f)) = (e.gated, e.file) {
                    self.order_done(f, e.order == order::Order::Append);
                }
                self.reclaim(e.mem);
                out.push(Done {
                    token: e.token,
                    result: res.into(),
                    payload: Payload::None,
                });
            }
            Kind::Call => {
                let payload = match e.mem {
                    Mem::Call(c) if res >= 0 => Payload::Call(c),
                    _ => Payload::None,
                };
                out.push(Done {
                    token: e.token,
                    result: res.into(),
                    payload,
                });
            }
            Kind::Stat => {
                let payload = match e.mem {
                    Mem::Statx(s) | Mem::PathStat(_, s) if res >= 0 => Payload::Stat(s),
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
            fe.direct = Some(self.engine.dio_align(fd));
        }
        let id = match self.files.insert(fe) {
            Ok(id) => id,
            Err(e) => {
                self.close_fd(fd);
                return Done::err(token, file_errno(e));
            }
        };
        if id.index < self.file_slots() && self.engine.register_file(id.index, fd).is_ok() {
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
        // A write done in full gives the chain's place in the file's order
        // up at once: the next append's write runs while this one's sync
        // is in flight.
        let done_writing = is_write && res >= 0 && ch.written + res as usize == ch.total;
        if done_writing && ch.gated {
            ch.gated = false;
            let file = ch.file;
            self.order_done(file, true);
        }
        let Some(ch) = self.chains.get_mut(c) else {
            return;
        };
        if ch.pending > 0 {
            return;
        }
        if ch.orphaned {
            self.end_chain(c, None, out);
            return;
        }
        if let Some(w) = ch.write_res {
            if w == -libc::ECANCELED && ch.written > 0 {
                // A retry round cancelled (the ring is closing): part of
                // the data is in the file already, so finish it.
                return self.continue_chain(c, true, out);
            }
            if w < 0 {
                // Nothing of this round was written (a cancelled write
                // wrote nothing; a failed one reports why).
                return self.end_chain(c, Some(w.into()), out);
            }
            ch.written += w as usize;
            if ch.written < ch.total {
                if w == 0 {
                    return self.end_chain(c, Some((-libc::ENOSPC).into()), out);
                }
                // Short write: the kernel cancelled the linked sync; write
                // the rest and sync again.
                return self.continue_chain(c, true, out);
            }
            if ch.grouped() {
                let file = ch.file;
                return self.join_group(file, c, out);
            }
        }
        match ch.sync_res {
            // The data is written but the sync was cancelled (a close or a
            // ring close cancelling the file's ops): the append is not
            // durable yet, so sync again rather than report either a
            // failure (the data is there) or success (it may not last).
            Some(s) if s == -libc::ECANCELED => self.continue_chain(c, false, out),
            Some(s) if s < 0 => self.end_chain(c, Some(s.into()), out),
            _ => {
                let n = ch.written as i64;
                self.end_chain(c, Some(n), out)
            }
        }
    }

    /// Submits the rest of chain `c` (see [`Driver::submit_chain`]) on its
    /// file's descriptor, also while the file is closing (its close waits).
    fn continue_chain(&mut self, c: u32, write: bool, out: &mut Vec<Done>) {
        let file = self.chains.get(c).expect("live chain").file;
        match self.files.entry(file) {
            Ok(fe) => {
                let target = Target::Fd(fe.fd);
                self.submit_chain(c, target, write);
            }
            Err(e) => self.end_chain(c, Some(-i64::from(file_errno(e))), out),
        }
    }

    /// Removes chain `c`, settling its token with `result` (none when it
    /// was settled already), and gives its place in the file's order up.
    pub(super) fn end_chain(&mut self, c: u32, result: Option<i64>, out: &mut Vec<Done>) {
        let Some(ch) = self.chains.remove(c) else {
            return;
        };
        if let Some(result) = result {
            out.push(Done {
                token: ch.token,
                result,
                payload: Payload::None,
            });
        }
        if ch.gated {
            self.order_done(ch.file, true);
        }
        let grouped = ch.grouped();
        self.reclaim(ch.data);
        if !grouped && self.group_commit {
            self.linked_done(ch.file, out);
        }
    }
}
