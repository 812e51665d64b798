//! Group commit: synced appends to one file that are in flight together
//! share their fsyncs.
//!
//! A synced append is a chain (see `submit.rs`): its write, then the sync
//! that makes it durable. When nothing else is syncing the file, the chain
//! goes on its own, as one write with `RWF_DSYNC` (`RWF_SYNC`), or as a
//! linked submission, write then fsync ([`LoneSync`]): one trip to the
//! kernel either way, the fastest for a lone appender. Appends that come
//! while a sync of the file is in flight go as their writes alone; each one
//! whose bytes are all written waits here, and one fsync then covers every
//! chain waiting: it starts at once unless [`MAX_SYNCS`] fsyncs of the file
//! are in flight (a completion starts it then).
//!
//! Why no promise resolves before its data is durable: a chain joins the
//! waiting list only after its write completed in full, and a group fsync
//! covers exactly the chains that were waiting when it was submitted (up
//! to [`MAX_SYNCS`] group fsyncs of a file run at once, each with its own
//! chains), so
//! every write it covers finished before it started (fsync makes durable
//! what was written before it began). A chain settles with the result of
//! the fsync that covered it: a failed fsync fails every chain it covered,
//! and one cancelled (a close, the ring closing) is submitted again, since
//! the data is written and should neither be reported lost nor durable.
//!
//! The order gate (see `order.rs`) still runs the appends' writes one at a
//! time and in call order; a chain gives its place up once its write is
//! done, not once it is durable, so the next write runs while fsyncs are in
//! flight. Grouped appends that wait at the gate together go as one
//! `writev` at the end of the file (a [`Batch`]): a chain joins the batch
//! held last for its file, so call order holds; a short `writev` goes on
//! with the rest in another round, still holding the gate.

use super::*;

/// The synced appends of one file between their write and their fsync.
#[derive(Default)]
pub(super) struct SyncGroup {
    /// Linked chains (write and fsync in one submission) not settled yet.
    linked: u32,
    /// The group fsyncs in flight, each with the chains it covers.
    running: Vec<(u32, Vec<u32>)>,
    /// The number the next group fsync gets.
    next: u32,
    /// Chains written in full and waiting for the next group fsync.
    waiting: Vec<u32>,
    /// An append came while the file was syncing, since its last lone
    /// append began: the file has more than one appender (see
    /// [`LoneSync`]).
    crowded: bool,
}

/// Fsyncs of one file in flight at once (a linked chain's counts too):
/// past that, the next batches gather until one completes. Measured with
/// 32 appenders of 4 KiB on ext4 (/tmp/gc/wal.ts, two runs each): 1 in
/// flight 34k-41k/s, 2: 41k-48k, 4: 52k-54k, 8: 42k-44k, 64: 48k-53k.
const MAX_SYNCS: usize = 4;

/// The most appends one batch writes (`IOV_MAX`).
const MAX_BATCH: usize = 1024;

/// Grouped appends of one file written by one `writev` (see the module
/// documentation).
pub(super) struct Batch {
    file: FileId,
    /// The chains of the round in flight (or held), in call order.
    chains: Vec<u32>,
    /// Their buffers: the op points here, so it is allocated once with room
    /// for [`MAX_BATCH`] and never grows past it.
    iov: Vec<libc::iovec>,
    bytes: usize,
    /// Past the order gate: nothing joins any more.
    sealed: bool,
}

/// How a synced append goes (see `Driver::sync_alone`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Alone {
    Grouped,
    Linked,
    DurableWrite,
}

impl SyncGroup {
    fn busy(&self) -> bool {
        self.linked > 0 || !self.running.is_empty() || !self.waiting.is_empty()
    }
}

impl Driver {
    /// How a new synced append to `file` goes: on its own (nothing else is
    /// syncing the file; counted until the chain settles), as one durable
    /// write (`Alone::DurableWrite`) or a linked pair (`Alone::Linked`),
    /// see [`LoneSync`]; or as a write alone whose fsync a group shares
    /// (`Alone::Grouped`).
    pub(super) fn sync_alone(&mut self, file: FileId) -> Alone {
        let flag = self.lone_sync == LoneSync::WriteFlag;
        if !self.group_commit {
            return if flag {
                Alone::DurableWrite
            } else {
                Alone::Linked
            };
        }
        let g = self.sync_groups.entry(file).or_default();
        if g.busy() {
            g.crowded = true;
            return Alone::Grouped;
        }
        g.linked += 1;
        if flag && !std::mem::take(&mut g.crowded) {
            Alone::DurableWrite
        } else {
            Alone::Linked
        }
    }

    /// Sends grouped chain `c` (just made, nothing written): it joins the
    /// batch its file holds last at the gate, or starts a batch of its own.
    pub(super) fn batch_append(&mut self, c: u32, target: Target) {
        let Some(ch) = self.chains.get(c) else {
            return;
        };
        let (file, ptr, len) = (ch.file, ch.ptr, ch.total);
        let iov = libc::iovec {
            iov_base: ptr as *mut libc::c_void,
            iov_len: len,
        };
        let last_held = self
            .held
            .iter()
            .rev()
            .find(|(f, _)| *f == file)
            .and_then(|(_, g)| match g.first().map(|e| e.kind) {
                Some(Kind::BatchWrite(b)) => Some(b),
                _ => None,
            });
        if let Some(b) = last_held {
            let joined = match self.batches.get_mut(b) {
                Some(bt) if !bt.sealed && bt.iov.len() < MAX_BATCH && bt.bytes + len <= MAX_IO => {
                    bt.iov.push(iov);
                    bt.chains.push(c);
                    bt.bytes += len;
                    Some(bt.iov.len() as u32)
                }
                _ => None,
            };
            if let Some(n) = joined {
                for (_, g) in self.held.iter_mut().filter(|(f, _)| *f == file) {
                    for e in g.iter_mut() {
                        if let (Kind::BatchWrite(x), Op::Writev { count, .. }) = (e.kind, &mut e.op)
                        {
                            if x == b {
                                *count = n;
                            }
                        }
                    }
                }
                return;
            }
        }
        let mut v = Vec::with_capacity(MAX_BATCH);
        v.push(iov);
        let batch = Batch {
            file,
            chains: vec![c],
            iov: v,
            bytes: len,
            sealed: false,
        };
        let Ok(b) = self.batches.insert(batch) else {
            unreachable!("the batch slab is unbounded")
        };
        self.submit_batch(b, target, order::Order::Append);
    }

    /// Queues the write of batch `b` (its iovecs as they are now).
    fn submit_batch(&mut self, b: u32, target: Target, order: order::Order) {
        let Some(bt) = self.batches.get(b) else {
            return;
        };
        let op = Op::Writev {
            target,
            iov: bt.iov.as_ptr(),
            count: bt.iov.len() as u32,
            offset: END_OF_FILE,
        };
        let mut e = Self::entry(NO_TOKEN, Some(bt.file), Kind::BatchWrite(b), op, Mem::None);
        e.order = order;
        if order == order::Order::Free {
            // A later round: it holds the gate the first one passed.
            self.enqueue(vec![e]);
        } else {
            self.enqueue_one(e);
        }
    }

    /// Batch `b` passed its file's order gate: nothing joins it now.
    pub(super) fn seal_batch(&mut self, b: u32) {
        if let Some(bt) = self.batches.get_mut(b) {
            bt.sealed = true;
        }
    }

    /// A round of batch `b` wrote `res` bytes (or failed): the chains
    /// written in full wait for their group fsync; the rest go on in
    /// another round, or fail with the error. The gate is given up when
    /// the batch is done.
    pub(super) fn batch_written(&mut self, b: u32, res: i32, out: &mut Vec<Done>) {
        let Some(bt) = self.batches.get_mut(b) else {
            return;
        };
        let file = bt.file;
        let chains = std::mem::take(&mut bt.chains);
        let mut left = res.max(0) as usize;
        let mut written = Vec::new();
        let mut rest = Vec::new();
        for c in chains {
            let Some(ch) = self.chains.get_mut(c) else {
                continue;
            };
            let take = left.min(ch.total - ch.written);
            ch.written += take;
            left -= take;
            if ch.written == ch.total {
                written.push(c);
            } else {
                rest.push(c);
            }
        }
        let fail = match res {
            r if r < 0 => Some(i64::from(r)),
            0 if !rest.is_empty() => Some(-i64::from(libc::ENOSPC)),
            _ => None,
        };
        if rest.is_empty() || fail.is_some() {
            self.batches.remove(b);
            self.order_done(file, true);
            for c in rest {
                self.end_chain(c, fail, out);
            }
        } else {
            // A short writev: the rest, from where it stopped, still
            // holding the gate.
            let iov: Vec<libc::iovec> = rest
                .iter()
                .filter_map(|c| self.chains.get(*c))
                .map(|ch| libc::iovec {
                    // SAFETY: written < total: inside the chain's memory.
                    iov_base: unsafe { ch.ptr.add(ch.written) } as *mut libc::c_void,
                    iov_len: ch.total - ch.written,
                })
                .collect();
            let target = self.files.entry(file).map(|fe| Target::Fd(fe.fd));
            match (self.batches.get_mut(b), target) {
                (Some(bt), Ok(target)) => {
                    bt.iov.clear();
                    bt.iov.extend(iov);
                    bt.chains = rest;
                    self.submit_batch(b, target, order::Order::Free);
                }
                (_, Err(e)) => {
                    self.batches.remove(b);
                    self.order_done(file, true);
                    for c in rest {
                        self.end_chain(c, Some(-i64::from(file_errno(e))), out);
                    }
                }
                (None, _) => {}
            }
        }
        if !written.is_empty() {
            let g = self.sync_groups.entry(file).or_default();
            g.waiting.extend(written);
            self.start_group_sync(file, out);
        }
    }

    /// Batch `b` never reached the kernel (its file or the ring closed, or
    /// its round was dropped): its chains settle `ECANCELED`.
    pub(super) fn drop_batch(&mut self, b: u32, gated: bool, out: &mut Vec<Done>) {
        let Some(bt) = self.batches.remove(b) else {
            return;
        };
        if gated || bt.sealed {
            self.order_done(bt.file, true);
        }
        for c in bt.chains {
            self.end_chain(c, Some(-i64::from(libc::ECANCELED)), out);
        }
    }

    /// A linked chain of `file` settled: the chains waiting may get their
    /// fsync now.
    pub(super) fn linked_done(&mut self, file: FileId, out: &mut Vec<Done>) {
        if let Some(g) = self.sync_groups.get_mut(&file) {
            g.linked = g.linked.saturating_sub(1);
        }
        self.start_group_sync(file, out);
    }

    /// Grouped chain `c` of `file` has all its bytes written: it waits for
    /// the next group fsync.
    pub(super) fn join_group(&mut self, file: FileId, c: u32, out: &mut Vec<Done>) {
        self.sync_groups.entry(file).or_default().waiting.push(c);
        self.start_group_sync(file, out);
    }

    /// Submits one fsync covering every chain waiting on `file`, unless
    /// [`MAX_SYNCS`] fsyncs of the file are in flight (whose completions
    /// come back here).
    fn start_group_sync(&mut self, file: FileId, out: &mut Vec<Done>) {
        let Some(g) = self.sync_groups.get_mut(&file) else {
            return;
        };
        let syncing = g.linked as usize + g.running.len();
        if syncing >= MAX_SYNCS || g.waiting.is_empty() {
            // An idle file's entry goes, unless it remembers that the file
            // has more than one appender (until the file is closed).
            if !g.busy() && !g.crowded {
                self.sync_groups.remove(&file);
            }
            return;
        }
        let batch = std::mem::take(&mut g.waiting);
        let full = batch.iter().any(|c| {
            self.chains
                .get(*c)
                .is_some_and(|ch| ch.sync == SyncKind::Full)
        });
        let fd = match self.files.entry(file) {
            Ok(fe) => fe.fd,
            Err(e) => {
                // The file is gone: nothing can make the data durable now.
                self.sync_groups.remove(&file);
                for c in batch {
                    self.end_chain(c, Some(-i64::from(file_errno(e))), out);
                }
                return;
            }
        };
        let mut n = 0;
        if let Some(g) = self.sync_groups.get_mut(&file) {
            g.next = g.next.wrapping_add(1);
            n = g.next;
            g.running.push((n, batch));
        }
        let kind = if full { SyncKind::Full } else { SyncKind::Data };
        let op = Op::Fsync {
            target: Target::Fd(fd),
            kind,
        };
        let e = Self::entry(NO_TOKEN, Some(file), Kind::GroupSync(n), op, Mem::None);
        self.enqueue(vec![e]);
    }

    /// The chains group fsync `n` of `file` covered (it is done, or will
    /// never run).
    fn take_running(&mut self, file: FileId, n: u32) -> Vec<u32> {
        let Some(g) = self.sync_groups.get_mut(&file) else {
            return Vec::new();
        };
        match g.running.iter().position(|(k, _)| *k == n) {
            Some(i) => g.running.remove(i).1,
            None => Vec::new(),
        }
    }

    /// The group fsync of `file` will never run (the ring closed first):
    /// the chains it covered settle `ECANCELED`, as ops the kernel never
    /// saw do.
    pub(super) fn drop_group_sync(&mut self, file: Option<FileId>, n: u32, out: &mut Vec<Done>) {
        let Some(file) = file else {
            return;
        };
        let batch = self.take_running(file, n);
        for c in batch {
            let result = match self.chains.get(c) {
                Some(ch) if ch.orphaned => None,
                Some(_) => Some(-i64::from(libc::ECANCELED)),
                None => continue,
            };
            self.end_chain(c, result, out);
        }
        self.start_group_sync(file, out);
    }

    /// The group fsync of `file` completed with `res`: the chains it
    /// covered settle with it (their byte counts, or its error), or wait
    /// again if it was cancelled; then the next group may go.
    pub(super) fn group_synced(
        &mut self,
        file: Option<FileId>,
        n: u32,
        res: i32,
        out: &mut Vec<Done>,
    ) {
        let Some(file) = file else {
            return;
        };
        let batch = self.take_running(file, n);
        if res == -libc::ECANCELED {
            // Written but not yet durable: sync again, ahead of later ones.
            let g = self.sync_groups.entry(file).or_default();
            let later = std::mem::replace(&mut g.waiting, batch);
            g.waiting.extend(later);
        } else {
            for c in batch {
                let result = match self.chains.get(c) {
                    Some(ch) if ch.orphaned => None,
                    Some(ch) if res >= 0 => Some(ch.written as i64),
                    Some(_) => Some(i64::from(res)),
                    None => continue,
                };
                self.end_chain(c, result, out);
            }
        }
        self.start_group_sync(file, out);
    }
}
