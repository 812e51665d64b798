//! The order gate of a file: where an append waits for the changes
//! submitted before it.
//!
//! The kernel runs the ops of one submission in any order (a write that
//! blocks goes to a worker while the next one runs inline), which is fine
//! for writes at positions the caller chose, but not for an append: it must
//! land at the end of the file as it is once the ops before it are done,
//! and the appends of one handle must land in call order. So per file:
//!
//! - an append waits until no earlier change (write, truncate, append) of
//!   the file is in flight, then runs alone as the file's barrier, with
//!   `RWF_APPEND` (the kernel picks the end of file when it writes, so a
//!   second handle or process appending at once loses nothing);
//! - a change submitted while an append waits or runs waits behind it;
//! - everything else (reads, stat, sync) never waits here.
//!
//! Held groups count as pending ops: closing their file waits for them.
//! Cancelling one (its signal, closing a socket or the ring) settles it
//! with `ECANCELED`: it never reached the kernel.

use super::*;

/// Where an op stands in its file's order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Order {
    /// Never waits (reads, stat, sync, socket ops).
    Free,
    /// A write or truncate: waits only behind an append.
    Change,
    /// An append: waits for every earlier change.
    Append,
}

impl Driver {
    /// Whether a group of `file` with `order` may go now; if it may, it is
    /// counted in the file's changes in flight.
    pub(super) fn pass_gate(&mut self, file: FileId, order: Order) -> bool {
        let waiting = self.held.iter().any(|(f, _)| *f == file);
        let Ok(fe) = self.files.entry_mut(file) else {
            return true;
        };
        let go = match order {
            Order::Free => return true,
            Order::Change => !waiting && !fe.barrier,
            Order::Append => !waiting && fe.mutating == 0,
        };
        if go {
            fe.mutating += 1;
            fe.barrier |= order == Order::Append;
        }
        go
    }

    /// Marks a group that passed the gate (its entries, or its chain).
    pub(super) fn mark_gated(&mut self, group: &mut [Entry]) {
        match group.first().map(|e| e.kind) {
            Some(Kind::Chain(c)) => {
                if let Some(ch) = self.chains.get_mut(c) {
                    ch.gated = true;
                }
            }
            Some(Kind::BatchWrite(b)) => self.seal_batch(b),
            Some(_) => {
                for e in group.iter_mut() {
                    e.gated = e.order != Order::Free;
                }
            }
            None => {}
        }
    }

    /// A change of `file` that passed the gate has settled: lets the
    /// groups waiting behind it go, in order.
    pub(super) fn order_done(&mut self, file: FileId, append: bool) {
        if let Ok(fe) = self.files.entry_mut(file) {
            fe.mutating = fe.mutating.saturating_sub(1);
            if append {
                fe.barrier = false;
            }
        }
        self.release_held(file);
    }

    fn release_held(&mut self, file: FileId) {
        let mut i = 0;
        while i < self.held.len() {
            if self.held[i].0 != file {
                i += 1;
                continue;
            }
            let order = self.held[i].1[0].order;
            let Ok(fe) = self.files.entry_mut(file) else {
                return;
            };
            let go = match order {
                Order::Append => fe.mutating == 0,
                _ => !fe.barrier,
            };
            if !go {
                return;
            }
            fe.mutating += 1;
            fe.barrier |= order == Order::Append;
            let (_, mut group) = self.held.remove(i);
            self.mark_gated(&mut group);
            self.place(group);
        }
    }

    /// Takes every group of `file` still held (closing it), for the caller
    /// to settle as never submitted.
    pub(super) fn take_held(&mut self, file: Option<FileId>) -> Vec<Vec<Entry>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < self.held.len() {
            if file.is_none_or(|f| self.held[i].0 == f) {
                out.push(self.held.remove(i).1);
            } else {
                i += 1;
            }
        }
        out
    }

    /// Takes the held group of `token`, if one is held.
    pub(super) fn take_held_token(&mut self, token: u32) -> Option<Vec<Entry>> {
        let i = self.held.iter().position(|(_, g)| {
            g.iter()
                .any(|e| e.token == token || self.chain_token(e) == Some(token))
        })?;
        Some(self.held.remove(i).1)
    }
}
