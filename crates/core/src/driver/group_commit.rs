//! Group commit: synced appends to one file that are in flight together
//! share their fsyncs.
//!
//! A synced append is a chain (see `submit.rs`): its write, then the sync
//! that makes it durable. When nothing else is syncing the file, the chain
//! goes as one linked submission, write then fsync, which is the fastest
//! way for a lone appender (one trip to the kernel). Appends that come
//! while a sync of the file is in flight go as their writes alone; each one
//! whose bytes are all written waits here, and one fsync then covers every
//! chain waiting: it starts as soon as no other fsync of the file is in
//! flight (that one's completion starts it otherwise).
//!
//! Why no promise resolves before its data is durable: a chain joins the
//! waiting list only after its write completed in full, and a group fsync
//! covers exactly the chains that were waiting when it was submitted, so
//! every write it covers finished before it started (fsync makes durable
//! what was written before it began). A chain settles with the result of
//! the fsync that covered it: a failed fsync fails every chain it covered,
//! and one cancelled (a close, the ring closing) is submitted again, since
//! the data is written and should neither be reported lost nor durable.
//!
//! The order gate (see `order.rs`) still runs the appends' writes one at a
//! time and in call order; a chain gives its place up once its write is
//! done, not once it is durable, so the next write runs while fsyncs are in
//! flight.

use super::*;

/// The synced appends of one file between their write and their fsync.
#[derive(Default)]
pub(super) struct SyncGroup {
    /// Linked chains (write and fsync in one submission) not settled yet.
    linked: u32,
    /// The chains the group fsync in flight covers (`None`: none in flight).
    running: Option<Vec<u32>>,
    /// Chains written in full and waiting for the next group fsync.
    waiting: Vec<u32>,
}

impl SyncGroup {
    fn busy(&self) -> bool {
        self.linked > 0 || self.running.is_some() || !self.waiting.is_empty()
    }
}

impl Driver {
    /// How a new synced append to `file` goes: linked (`true`: nothing else
    /// is syncing the file; counted until the chain settles) or as a write
    /// alone whose fsync a group shares.
    pub(super) fn sync_linked(&mut self, file: FileId) -> bool {
        if !self.group_commit {
            return true;
        }
        let g = self.sync_groups.entry(file).or_default();
        if g.busy() {
            return false;
        }
        g.linked += 1;
        true
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
    /// another fsync of the file is in flight (whose completion comes back
    /// here).
    fn start_group_sync(&mut self, file: FileId, out: &mut Vec<Done>) {
        let Some(g) = self.sync_groups.get_mut(&file) else {
            return;
        };
        if g.linked > 0 || g.running.is_some() || g.waiting.is_empty() {
            if !g.busy() {
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
        if let Some(g) = self.sync_groups.get_mut(&file) {
            g.running = Some(batch);
        }
        let kind = if full { SyncKind::Full } else { SyncKind::Data };
        let op = Op::Fsync {
            target: Target::Fd(fd),
            kind,
        };
        let e = Self::entry(NO_TOKEN, Some(file), Kind::GroupSync, op, Mem::None);
        self.enqueue(vec![e]);
    }

    /// The group fsync of `file` will never run (the ring closed first):
    /// the chains it covered settle `ECANCELED`, as ops the kernel never
    /// saw do.
    pub(super) fn drop_group_sync(&mut self, file: Option<FileId>, out: &mut Vec<Done>) {
        let Some(file) = file else {
            return;
        };
        let batch = self
            .sync_groups
            .get_mut(&file)
            .and_then(|g| g.running.take())
            .unwrap_or_default();
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
    pub(super) fn group_synced(&mut self, file: Option<FileId>, res: i32, out: &mut Vec<Done>) {
        let Some(file) = file else {
            return;
        };
        let batch = self
            .sync_groups
            .get_mut(&file)
            .and_then(|g| g.running.take())
            .unwrap_or_default();
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
