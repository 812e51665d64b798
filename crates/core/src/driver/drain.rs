//! Settled ops nobody will read, and the last wait of a ring that is going
//! away: the memory a settled op still holds (a bounce block, a receive
//! buffer) goes back to its pool, and [`Driver::drain`] waits on the
//! calling thread until the kernel has handed back every op, so none
//! writes into memory that is about to be freed.

use super::*;

impl Driver {
    /// Gives back what settled ops in `dones` still hold: for results that
    /// will never be delivered (the ring's JavaScript side is gone, or its
    /// env is going away).
    pub fn discard(&mut self, dones: Vec<Done>) {
        for done in dones {
            match done.payload {
                Payload::Bounce { buf, .. } => self.recycle(buf),
                Payload::Received { bid, .. } => self.recycle_received(bid),
                _ => {}
            }
        }
    }

    /// Bytes of bounce memory that ops in flight and settled results not
    /// given back yet hold.
    pub fn bounce_held(&self) -> usize {
        self.bounce.outstanding()
    }

    /// Completes `cqes` and discards what they settle (see
    /// [`Driver::discard`]), then hands the kernel what that queued.
    pub fn complete_discarding(&mut self, cqes: &[Cqe]) {
        let mut dones = Vec::with_capacity(cqes.len());
        for c in cqes {
            self.complete(*c, &mut dones);
        }
        self.discard(dones);
        let mut more = Vec::new();
        self.after_batch(&mut more);
        self.discard(more);
        let _ = self.flush();
    }

    /// After [`Driver::shutdown`], with no other thread reaping: waits on
    /// this thread until nothing is pending, completing and discarding
    /// every op as it comes back. Returns early only if the engine cannot
    /// wait (its error), leaving the rest pending.
    pub fn drain(&mut self) -> io::Result<()> {
        let mut batch = Vec::new();
        let engine = self.engine.clone();
        while self.pending() > 0 {
            batch.clear();
            if self.instant.is_empty() {
                engine.wait(&mut batch)?;
            } else {
                batch.append(&mut self.instant);
            }
            self.complete_discarding(&batch);
        }
        Ok(())
    }
}
