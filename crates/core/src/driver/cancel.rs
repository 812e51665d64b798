//! Cancelling: by token (an AbortSignal), closing a socket, closing the
//! driver; and closing a file, which waits for its ops instead.
//!
//! What never reached the kernel (the backlog, a file's order gate) settles
//! with `ECANCELED` right here. A file op the kernel has is asked to stop,
//! and settles with what the kernel then reports: `ECANCELED` only if it
//! did not run, its result if it did (a write that landed is never reported
//! as failed, so a caller that retries failures duplicates nothing). Opens
//! and socket ops are settled at once ("orphaned": an open that completes
//! anyway is closed again, with no effect left); their entries stay in the
//! slab until the kernel hands them back, so it never writes into freed
//! memory.

use super::*;

impl Driver {
    /// Cancels `token` if it is still pending: see the module
    /// documentation. Returns whether it was pending.
    pub fn cancel(&mut self, token: u32, out: &mut Vec<Done>) -> bool {
        self.counting(out, |d, out| d.cancel_inner(token, out))
    }

    pub(super) fn cancel_inner(&mut self, token: u32, out: &mut Vec<Done>) -> bool {
        if token == NO_TOKEN {
            return false;
        }
        if let Some(g) = self.take_held_token(token) {
            self.drop_unsubmitted(g, out);
            return true;
        }
        // Backlog next: never seen by the kernel, settled right here.
        for gi in 0..self.backlog.len() {
            let hit = self.backlog[gi]
                .iter()
                .any(|e| e.token == token || self.chain_token(e) == Some(token));
            if hit {
                let g = self.backlog.remove(gi).expect("index valid");
                self.drop_unsubmitted(g, out);
                return true;
            }
        }
        let keys: Vec<u32> = self
            .slab
            .iter()
            .filter(|(_, e)| {
                !e.orphaned && (e.token == token || self.chain_token(e) == Some(token))
            })
            .map(|(k, _)| k)
            .collect();
        if keys.is_empty() {
            return false;
        }
        for k in keys {
            self.cancel_key(k, out);
        }
        true
    }

    /// Asks the kernel to stop the op in slab slot `k`: orphaned at once if
    /// it is an open or a socket op; otherwise it settles on its completion.
    /// Only the write of an append chain is cancelled: once it has run, the
    /// sync that makes it durable is left to finish.
    fn cancel_key(&mut self, k: u32, out: &mut Vec<Done>) {
        let Some(e) = self.slab.get_mut(k) else {
            return;
        };
        if e.cancel_sent || e.orphaned {
            return;
        }
        if matches!(e.kind, Kind::Chain(_)) && !matches!(e.op, Op::Write { .. }) {
            return;
        }
        e.cancel_sent = true;
        if Self::settles_early(e.kind) {
            self.orphan(k, out);
        }
        self.submit_internal(Op::Cancel {
            user_data: u64::from(k),
        });
    }

    /// Ops settled as soon as they are cancelled: opens (one that completes
    /// anyway is closed again) and socket ops.
    fn settles_early(kind: Kind) -> bool {
        matches!(
            kind,
            Kind::Open { .. }
                | Kind::Accept
                | Kind::Recv
                | Kind::Connect { .. }
                | Kind::Send { .. }
                | Kind::SockShutdown
        )
    }

    fn is_socket(&mut self, id: FileId) -> bool {
        self.net.sock(id).is_some()
    }

    pub(super) fn chain_token(&self, e: &Entry) -> Option<u32> {
        match e.kind {
            Kind::Chain(c) => self.chains.get(c).map(|ch| ch.token),
            Kind::Whole(w, _) => self.whole_token(w),
            _ => None,
        }
    }

    /// Marks a slab entry settled: its token rejects now with `ECANCELED`;
    /// the entry stays until the kernel is done with it.
    pub(super) fn orphan(&mut self, key: u32, out: &mut Vec<Done>) {
        let Some(e) = self.slab.get_mut(key) else {
            return;
        };
        if e.orphaned {
            return;
        }
        e.orphaned = true;
        let token = e.token;
        if token != NO_TOKEN {
            out.push(Done::err(token, libc::ECANCELED));
        }
    }

    /// Settles a group that never reached the kernel with `ECANCELED`.
    pub(super) fn drop_unsubmitted(&mut self, group: Vec<Entry>, out: &mut Vec<Done>) {
        for e in group {
            match e.kind {
                Kind::Chain(c) => {
                    if let Some(ch) = self.chains.get_mut(c) {
                        ch.pending = ch.pending.saturating_sub(1);
                        let first = !ch.orphaned;
                        ch.orphaned = true;
                        if first {
                            out.push(Done::err(ch.token, libc::ECANCELED));
                        }
                        if ch.pending == 0 {
                            self.end_chain(c, None, out);
                        }
                    }
                }
                Kind::Whole(w, step) => self.drop_whole(w, step, out),
                // Only the ring's close drops a group fsync (it has no
                // token): the data is written but never made durable.
                Kind::GroupSync(n) => self.drop_group_sync(e.file, n, out),
                Kind::BatchWrite(b) => self.drop_batch(b, e.gated, out),
                _ => {
                    if e.token != NO_TOKEN {
                        out.push(Done::err(e.token, libc::ECANCELED));
                    }
                    if let (true, Some(f)) = (e.gated, e.file) {
                        self.order_done(f, e.order == order::Order::Append);
                    }
                }
            }
            self.reclaim(e.mem);
            if let Some(f) = e.file {
                self.file_op_gone(f);
            }
        }
    }

    /// Closes a file: see [`Driver::close_file_inner`].
    pub fn close_file(&mut self, token: u32, id: FileId, out: &mut Vec<Done>) -> Result<(), i32> {
        self.counting(out, |d, out| d.close_file_inner(token, id, out))
    }

    /// Closes a file. The handle is refused from here on. A file's ops
    /// called before the close all run, as `node:fs/promises` documents
    /// for `FileHandle.close()`: those still queued (the backlog, the
    /// order gate) go to the kernel as usual, and the descriptor is closed
    /// (and `token` settles) after the last of them has completed, so no op
    /// ever runs on a closed or reused descriptor. Cancelling them is what
    /// an AbortSignal or closing the ring does. A socket's ops are
    /// cancelled and settle at once, and it closes right away.
    pub(super) fn close_file_inner(
        &mut self,
        token: u32,
        id: FileId,
        out: &mut Vec<Done>,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        self.file(id)?;
        if !self.is_socket(id) {
            let (e, _) = self.file(id)?;
            e.closing = true;
            if e.in_flight > 0 {
                // Counted as submitted when it is sent (`file_op_gone`).
                e.close_token = Some(token);
            } else {
                self.submit_close(token, id);
            }
            return Ok(());
        }
        self.forget_socket(id, out);
        let (e, _) = self.file(id)?;
        e.closing = true;
        let fd = e.fd;
        for g in self.take_held(Some(id)) {
            self.drop_unsubmitted(g, out);
        }
        let mut i = 0;
        while i < self.backlog.len() {
            if self.backlog[i].iter().any(|e| e.file == Some(id)) {
                let g = self.backlog.remove(i).expect("index valid");
                self.drop_unsubmitted(g, out);
            } else {
                i += 1;
            }
        }
        let keys: Vec<u32> = self
            .slab
            .iter()
            // A send done at once has nothing to cancel: it settles with
            // its bytes at the next flush.
            .filter(|(_, e)| {
                e.file == Some(id) && !e.orphaned && !matches!(e.kind, Kind::SentAtOnce)
            })
            .map(|(k, _)| k)
            .collect();
        if !keys.is_empty() {
            for k in &keys {
                if let Some(e) = self.slab.get_mut(*k) {
                    e.cancel_sent = true;
                }
                self.orphan(*k, out);
            }
            // By the plain fd: it names the same open file as the fixed
            // slot the ops used.
            self.submit_internal(Op::CancelFile {
                target: Target::Fd(fd),
            });
        }
        self.submit_close(token, id);
        Ok(())
    }

    /// Closes the driver: see [`Driver::shutdown_inner`].
    pub fn shutdown(&mut self, out: &mut Vec<Done>) {
        self.counting(out, |d, out| d.shutdown_inner(out))
    }

    /// Closes the driver: ops that never reached the kernel settle with
    /// `ECANCELED` now, the kernel is asked to cancel the rest, which
    /// settle as the module documentation says. Keep reaping and passing
    /// completions to [`Driver::complete`] until [`Driver::pending`] is 0,
    /// then call [`Driver::finish`].
    pub(super) fn shutdown_inner(&mut self, out: &mut Vec<Done>) {
        if self.closed {
            return;
        }
        self.closed = true;
        for id in self.net.ids() {
            self.forget_socket(id, out);
        }
        for g in self.take_held(None) {
            self.drop_unsubmitted(g, out);
        }
        while let Some(g) = self.backlog.pop_front() {
            self.drop_unsubmitted(g, out);
        }
        let keys: Vec<u32> = self.slab.iter().map(|(k, _)| k).collect();
        for k in &keys {
            let Some(e) = self.slab.get_mut(*k) else {
                continue;
            };
            e.cancel_sent = true;
            if Self::settles_early(e.kind) {
                self.orphan(*k, out);
            }
        }
        if !keys.is_empty() {
            self.submit_internal(Op::CancelAll);
        }
        let _ = self.flush();
    }

    /// Closes every file still open and forgets library buffers. Call once
    /// nothing is pending.
    pub fn finish(&mut self) {
        for id in self.files.ids() {
            if let Ok(e) = self.files.remove(id) {
                self.close_fd(e.fd);
            }
        }
        self.buffers.clear();
        self.sync_groups.clear();
        self.finish_net();
        // The engine's descriptors and threads go now (once every other
        // holder of it, such as a completion thread, has let go too).
        self.engine = Arc::new(crate::engine::closed::ClosedEngine);
    }
}
