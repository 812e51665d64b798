//! Settling ops early: cancel by token, closing a file, shutting down the
//! driver. Settled entries stay in the slab (orphaned) until the kernel
//! hands them back, so it never writes into freed memory.

use super::*;

impl Driver {
    /// Settles `token` with `ECANCELED` if it is still pending, and asks the
    /// kernel to cancel it. Returns whether it was pending.
    pub fn cancel(&mut self, token: u32, out: &mut Vec<Done>) -> bool {
        self.counting(out, |d, out| d.cancel_inner(token, out))
    }

    /// See [`Driver::cancel`]. Settles `token` with `ECANCELED` if it is still pending, and asks the
    /// kernel to cancel it. Returns whether it was pending.
    pub(super) fn cancel_inner(&mut self, token: u32, out: &mut Vec<Done>) -> bool {
        if token == NO_TOKEN {
            return false;
        }
        // Backlog first: never seen by the kernel, settled right here.
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
        for k in &keys {
            self.orphan(*k, out);
            let op = Op::Cancel {
                user_data: u64::from(*k),
            };
            self.submit_internal(op);
        }
        true
    }

    pub(super) fn chain_token(&self, e: &Entry) -> Option<u32> {
        match e.kind {
            Kind::Chain(c) => self.chains.get(c).map(|ch| ch.token),
            _ => None,
        }
    }

    /// Marks a slab entry settled: its token (or its chain's) rejects now
    /// with `ECANCELED`; the entry stays until the kernel is done with it.
    pub(super) fn orphan(&mut self, key: u32, out: &mut Vec<Done>) {
        let Some(e) = self.slab.get_mut(key) else {
            return;
        };
        if e.orphaned {
            return;
        }
        e.orphaned = true;
        let (token, kind, append, file) = (e.token, e.kind, e.append, e.file);
        if let Kind::Chain(c) = kind {
            if let Some(ch) = self.chains.get_mut(c) {
                if !ch.orphaned {
                    ch.orphaned = true;
                    out.push(Done::err(ch.token, libc::ECANCELED));
                    let f = ch.file;
                    self.append_settled(f);
                }
            }
        } else if token != NO_TOKEN {
            out.push(Done::err(token, libc::ECANCELED));
            if let (true, Some(f)) = (append, file) {
                self.append_settled(f);
            }
        }
    }

    pub(super) fn drop_unsubmitted(&mut self, group: Vec<Entry>, out: &mut Vec<Done>) {
        for e in group {
            if let Some(f) = e.file {
                if let Ok(fe) = self.files.entry_mut(f) {
                    fe.in_flight = fe.in_flight.saturating_sub(1);
                }
            }
            match e.kind {
                Kind::Chain(c) => {
                    if let Some(ch) = self.chains.get_mut(c) {
                        let first = !ch.orphaned;
                        if first {
                            ch.orphaned = true;
                            out.push(Done::err(ch.token, libc::ECANCELED));
                        }
                        let f = ch.file;
                        ch.pending = ch.pending.saturating_sub(1);
                        if ch.pending == 0 {
                            self.chains.remove(c);
                        }
                        if first {
                            self.append_settled(f);
                        }
                    }
                }
                _ if e.token != NO_TOKEN => {
                    out.push(Done::err(e.token, libc::ECANCELED));
                    if let (true, Some(f)) = (e.append, e.file) {
                        self.append_settled(f);
                    }
                }
                _ => {}
            }
            self.reclaim(e.mem);
        }
    }

    /// Closes a file: see [`Driver::close_file_inner`].
    pub fn close_file(&mut self, token: u32, id: FileId, out: &mut Vec<Done>) -> Result<(), i32> {
        self.counting(out, |d, out| d.close_file_inner(token, id, out))
    }

    /// Closes a file: its pending ops settle with `ECANCELED` now, the
    /// kernel is asked to cancel those in flight, and `token` settles when
    /// the descriptor is closed. The handle is refused from here on.
    pub(super) fn close_file_inner(
        &mut self,
        token: u32,
        id: FileId,
        out: &mut Vec<Done>,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        self.file(id)?;
        self.forget_socket(id, out);
        let (e, _) = self.file(id)?;
        e.closing = true;
        let (fd, fixed, busy) = (e.fd, e.fixed, e.in_flight > 0);
        if busy {
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
                .filter(|(_, e)| e.file == Some(id))
                .map(|(k, _)| k)
                .collect();
            for k in &keys {
                self.orphan(*k, out);
            }
            if !keys.is_empty() {
                // By the plain fd: it names the same open file as the fixed
                // slot the ops used, and the slot is released just below.
                let op = Op::CancelFile {
                    target: Target::Fd(fd),
                };
                self.submit_internal(op);
            }
        }
        if let Some(slot) = fixed {
            // In-flight ops hold their own reference to the file; the slot
            // can go now.
            self.engine.unregister_file(slot);
            self.stats.registered_files = self.stats.registered_files.saturating_sub(1);
            if let Ok(fe) = self.files.entry_mut(id) {
                fe.fixed = None;
            }
        }
        let op = Op::Close { fd };
        self.submit_op(token, Some(id), Kind::Close, op, Mem::None);
        Ok(())
    }

    /// Closes the driver: see [`Driver::shutdown_inner`].
    pub fn shutdown(&mut self, out: &mut Vec<Done>) {
        self.counting(out, |d, out| d.shutdown_inner(out))
    }

    /// Closes the driver: every pending op settles with `ECANCELED` now and
    /// the kernel is asked to cancel them all. Keep reaping and passing
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
        while let Some(g) = self.backlog.pop_front() {
            self.drop_unsubmitted(g, out);
        }
        let keys: Vec<u32> = self.slab.iter().map(|(k, _)| k).collect();
        for k in &keys {
            self.orphan(k.to_owned(), out);
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
        self.finish_net();
    }
}
