//! The op table's flow: admission into the command slab (user ops up to
//! `max_in_flight`, internal ops into a reserve), the backlog, and flushing
//! to the engine.

use super::*;

/// Most ops in one link chain (a whole-file read's open and two reads).
const MAX_GROUP: usize = crate::engine::MAX_CHAIN;

impl Driver {
    /// Queues one op owning `mem` for `token`.
    pub(super) fn submit_op(
        &mut self,
        token: u32,
        file: Option<FileId>,
        kind: Kind,
        op: Op,
        mem: Mem,
    ) {
        self.enqueue_one(Self::entry(token, file, kind, op, mem));
    }

    /// Queues an internal op (a cancel) that settles no token.
    pub(super) fn submit_internal(&mut self, op: Op) {
        self.enqueue_one(Self::entry(NO_TOKEN, None, Kind::Internal, op, Mem::None));
    }

    /// Counts a group in as submitted and pending on its file.
    pub(super) fn count_in(&mut self, group: &[Entry]) {
        for e in group {
            if let Some(f) = e.file {
                if let Ok(fe) = self.files.entry_mut(f) {
                    fe.in_flight += 1;
                }
            }
            if e.token != NO_TOKEN {
                self.stats.submitted += 1;
            }
        }
    }

    /// Queues one op: through its file's order gate (see `order.rs`), then
    /// into the kernel, or into the backlog when the slab has no room.
    pub(super) fn enqueue_one(&mut self, mut e: Entry) {
        self.count_in(std::slice::from_ref(&e));
        if e.order != order::Order::Free {
            let file = e.file.expect("ordered ops have a file");
            if !self.pass_gate(file, e.order) {
                self.held.push((file, vec![e]));
                return;
            }
            e.gated = true;
        }
        if !self.room_for(std::slice::from_ref(&e)) {
            self.backlog.push_back(vec![e]);
            return;
        }
        match self.slab.insert(e) {
            Ok(k) => self.push_slot(k, Link::None),
            Err(e) => self.backlog.push_back(vec![e]),
        }
    }

    /// Queues a link chain (single ops go through `enqueue_one`), through
    /// the order gate when its first op is ordered.
    pub(super) fn enqueue(&mut self, mut group: Vec<Entry>) {
        self.count_in(&group);
        let order = group[0].order;
        if order != order::Order::Free {
            let file = group[0].file.expect("ordered ops have a file");
            if !self.pass_gate(file, order) {
                self.held.push((file, group));
                return;
            }
            self.mark_gated(&mut group);
        }
        self.place(group);
    }

    /// Puts a group that may go into the kernel, or into the backlog.
    pub(super) fn place(&mut self, group: Vec<Entry>) {
        if self.room_for(&group) {
            self.admit(group);
        } else {
            self.backlog.push_back(group);
        }
    }

    /// One op of file `f` is gone (completed, or settled unsubmitted): a
    /// close waiting for the file's ops goes to the kernel after the last.
    pub(super) fn file_op_gone(&mut self, f: FileId) {
        let Ok(fe) = self.files.entry_mut(f) else {
            return;
        };
        fe.in_flight = fe.in_flight.saturating_sub(1);
        if fe.in_flight == 0 {
            if let Some(token) = fe.close_token.take() {
                self.submit_close(token, f);
            }
        }
    }

    pub(super) fn push_slot(&mut self, k: u32, link: Link) {
        let op = self.slab.get(k).expect("live slot").op;
        // SAFETY: every pointer in `op` points into memory owned by the
        // slab entry (or its chain), which lives until this op's
        // completion is reaped in `complete`.
        while !unsafe { self.engine.push(u64::from(k), &op, link) } {
            // Queue full: hand what is queued to the kernel first.
            if self.engine.flush().is_err() {
                std::thread::yield_now();
            }
            self.flushed();
        }
        self.unflushed += 1;
        self.count_read(&op);
    }

    pub(super) fn admit(&mut self, group: Vec<Entry>) {
        let n = group.len();
        let mut keys = [0u32; MAX_GROUP];
        assert!(
            n <= keys.len(),
            "groups are one op or a chain of up to three"
        );
        for (i, e) in group.into_iter().enumerate() {
            match self.slab.insert(e) {
                Ok(k) => keys[i] = k,
                Err(_) => unreachable!("admit is called only with room for the whole group"),
            }
        }
        if n == 1 {
            return self.push_slot(keys[0], Link::None);
        }
        // A link chain goes in whole: never split across two submissions.
        let mut group = [(0u64, Op::Nop, Link::None); MAX_GROUP];
        for (i, k) in keys[..n].iter().enumerate() {
            let e = self.slab.get(*k).expect("just inserted");
            let link = if i + 1 < n { e.link } else { Link::None };
            group[i] = (u64::from(*k), e.op, link);
        }
        // SAFETY: as in push_slot, for every op of the group.
        while !unsafe { self.engine.push_group(&group[..n]) } {
            if self.engine.flush().is_err() {
                std::thread::yield_now();
            }
            self.flushed();
        }
        self.unflushed += n;
        for (_, op, _) in &group[..n] {
            self.count_read(op);
        }
    }

    /// Whether `group` may enter the kernel now: user ops up to
    /// `max_in_flight` and behind any backlog; internal ops (cancel, close)
    /// also into the reserve, ahead of the backlog they may be cancelling.
    pub(super) fn room_for(&self, group: &[Entry]) -> bool {
        let internal = group
            .iter()
            .all(|e| matches!(e.kind, Kind::Internal | Kind::Close | Kind::SlotClose(_)));
        let free = self.slab.capacity() - self.slab.len();
        if internal {
            free >= group.len()
        } else {
            self.backlog.is_empty()
                && self.user_in_flight() + group.len() <= self.max_in_flight
                && free >= group.len()
        }
    }

    /// Whether ops are in flight besides streams, all reads and writes of
    /// O_DIRECT files (no durable ones): the device's interrupt completes
    /// them, no kernel worker thread (the loop's busy-polling is for
    /// these). Where an io-wq worker does the work (fsyncs, buffered and
    /// durable writes), the worker's own wake-ups remain whatever the JS
    /// thread does: durable appends one at a time with the loop spinning
    /// up to 2 ms made 0.85-1.06x writeSync+fdatasyncSync against
    /// 0.60-0.94x without (3 alternating pairs), no gain for the CPU it
    /// burns. Linear in the ops in flight: for low depth.
    pub fn in_flight_only_direct_io(&self) -> bool {
        let mut any = false;
        for (_, e) in self.slab.iter() {
            if e.kind.is_stream() {
                continue;
            }
            let rw = matches!(
                e.op,
                Op::Read { .. }
                    | Op::Readv { .. }
                    | Op::Write { sync: None, .. }
                    | Op::Writev { .. }
            );
            let direct = e
                .file
                .and_then(|f| self.files.entry(f).ok())
                .is_some_and(|f| f.direct.is_some());
            if !(rw && direct) {
                return false;
            }
            any = true;
        }
        any
    }

    /// Slab entries that count against `max_in_flight`.
    pub fn user_in_flight(&self) -> usize {
        self.slab.len() - self.streams
    }

    /// Puts a stream's multishot op straight into the kernel (streams are
    /// outside the `max_in_flight` budget and never wait in the backlog).
    /// Returns its slab key.
    pub(super) fn submit_stream(&mut self, e: Entry) -> Result<u32, i32> {
        debug_assert!(e.kind.is_stream());
        let file = e.file;
        let k = self.slab.insert(e).map_err(|_| libc::EMFILE)?;
        if let Some(f) = file {
            if let Ok(fe) = self.files.entry_mut(f) {
                fe.in_flight += 1;
            }
        }
        self.streams += 1;
        self.push_slot(k, Link::None);
        Ok(k)
    }

    pub(super) fn admit_backlog(&mut self) {
        while let Some(g) = self.backlog.front() {
            let internal = g
                .iter()
                .all(|e| matches!(e.kind, Kind::Internal | Kind::Close | Kind::SlotClose(_)));
            let fits = if internal {
                self.slab.len() + g.len() <= self.slab.capacity()
            } else {
                self.user_in_flight() + g.len() <= self.max_in_flight
            };
            if !fits {
                break;
            }
            let g = self.backlog.pop_front().expect("front exists");
            self.admit(g);
        }
    }

    /// Hands queued ops to the kernel: one syscall for everything submitted
    /// since the last flush.
    pub fn flush(&mut self) -> io::Result<()> {
        if self.unflushed == 0 {
            return Ok(());
        }
        self.engine.flush()?;
        self.flushed();
        Ok(())
    }

    /// Everything queued is with the kernel (or handed over).
    fn flushed(&mut self) {
        self.unflushed = 0;
        self.unflushed_reads = 0;
        self.grouped = 0;
    }

    fn count_read(&mut self, op: &Op) {
        if matches!(op, Op::Read { .. } | Op::Readv { .. }) {
            self.unflushed_reads += 1;
        }
    }

    /// File reads queued since the last flush one at a time, not by a call
    /// that queued many at once (see [`Driver::queued_as_group`]): what is
    /// worth handing over ([`Driver::hand_off`]). A page-cache read is
    /// copied by the thread that submits it; a send or a receive is little
    /// work there, and handing 50 sockets' sends over halved a ping-pong's
    /// round trips.
    pub fn reads_to_hand_off(&self) -> usize {
        self.unflushed_reads.saturating_sub(self.grouped)
    }

    /// Counts the last `n` ops queued as queued by one call that queues
    /// many (`readMany`): those are not handed over (see
    /// [`Driver::hand_off`]); their caller flushes them at once.
    pub fn queued_as_group(&mut self, n: usize) {
        self.grouped += n;
    }

    /// Hands what is queued to another thread, which submits it with
    /// [`Engine::submit_queued`], instead of flushing it here; reaps into
    /// `out` what is ready, then the completions of ops done at once (as
    /// [`Driver::flush_and_reap`] does). `false`, with nothing done, if
    /// nothing is queued or the engine cannot: flush as usual then.
    pub fn hand_off(&mut self, out: &mut Vec<Cqe>) -> bool {
        if self.unflushed == 0 || !self.engine.prepare_hand_off() {
            return false;
        }
        self.flushed();
        self.engine.reap(out);
        self.take_instant(out);
        true
    }

    /// Hands out the completions of ops done at once (after a reap): a new
    /// run of sends begins (see `Driver::lone_send`).
    fn take_instant(&mut self, out: &mut Vec<Cqe>) {
        out.append(&mut self.instant);
        self.net.sent_now = false;
    }

    /// Whether ops were queued since the last flush (or completions of ops
    /// done at once wait for it: see `Driver::instant`).
    pub fn has_unflushed(&self) -> bool {
        self.unflushed > 0 || !self.instant.is_empty()
    }

    /// Flushes, and reaps into `out` what completed meanwhile (see
    /// [`Engine::flush_and_reap`]), then the completions of ops done at
    /// once. Pass the completions to `complete`.
    pub fn flush_and_reap(&mut self, out: &mut Vec<Cqe>) -> io::Result<()> {
        self.engine.flush_and_reap(out)?;
        self.flushed();
        self.take_instant(out);
        Ok(())
    }

    /// Whether an op queued since the last call wants submitting at once.
    ///
    /// Ops on O_DIRECT files do: on a single-queue virtio disk, batching
    /// them per JS run lowered 4 KiB reads at 32 in flight from ~85k to
    /// ~66-69k/s (fio showed the same), while page-cache reads gain from
    /// batching. Measured numbers are in the foundation issue's note.
    pub fn take_urgent(&mut self) -> bool {
        std::mem::take(&mut self.urgent)
    }

    /// Makes a thread blocked in [`Engine::wait`] return.
    pub fn wake(&self) {
        self.engine.wake();
    }
}
