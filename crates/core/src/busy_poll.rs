//! Busy-polling before the event loop blocks, at low queue depth.
//!
//! When the event loop waits on the ring's eventfd itself (the node
//! binding's thread mode at low depth) and is about to block with only
//! O_DIRECT reads and writes in flight (`Driver::in_flight_only_direct_io`:
//! the device's interrupt completes them, no kernel worker), it spins for
//! a while first, watching the completion queue, instead of sleeping at
//! once. A sleeping thread is woken by an interrupt; where an idle CPU
//! halts (a virtual machine without halt-polling, such as the reference
//! machine), each such wake-up costs tens of µs. An O_DIRECT read at 1 in
//! flight went from 11.8-13.2k/s to 16.1-18.4k/s, for 10-20% more CPU
//! time per read (`benches/one-op.ts read-direct io_uring thread 1`, 4
//! alternating runs).
//!
//! It spins only while it pays: while the waits it has seen lately (from
//! the loop's prepare phase to the completions it took) were shorter than
//! the limit, so reads from a slow device do not spin at all. It stops as
//! soon as the completion queue holds anything, or the loop has anything
//! else to do (its epoll fd, looked at every [`LOOK_EVERY`]; that syscall
//! also runs the task work through which the kernel completes an O_DIRECT
//! read), or a timer is due.

use std::time::{Duration, Instant};

/// How often a spin looks at the loop's other file descriptors.
pub const LOOK_EVERY: Duration = Duration::from_micros(10);

/// The spin policy of one ring (JS thread only).
pub struct BusyPoll {
    /// Longest spin; zero: never spin.
    limit: Duration,
    /// A moving average of the loop's waits for completions.
    typical: Duration,
    /// When the loop began the wait now under way, if it did with ops in
    /// flight.
    began: Option<Instant>,
    /// Spins that ended because completions were ready (`stats()`).
    pub caught: u64,
}

impl BusyPoll {
    pub fn new(limit_us: u32) -> BusyPoll {
        BusyPoll {
            limit: Duration::from_micros(u64::from(limit_us)),
            typical: Duration::ZERO,
            began: None,
            caught: 0,
        }
    }

    /// The loop is about to wait for the ring's completions (ops in
    /// flight, no timer due): how long to spin first, if at all.
    pub fn begin(&mut self, now: Instant) -> Option<Duration> {
        self.began = Some(now);
        (!self.limit.is_zero() && self.typical < self.limit).then_some(self.limit)
    }

    /// The loop will not wait for completions itself (the completion
    /// thread does, or nothing is in flight): the wait under way, if any,
    /// is not one of its waits.
    pub fn forget(&mut self) {
        self.began = None;
    }

    /// The loop took completions: a wait that began ended now.
    pub fn end(&mut self, now: Instant) {
        if let Some(t) = self.began.take() {
            // An average over about the last 8 waits.
            let waited = now.saturating_duration_since(t);
            self.typical = (self.typical * 7 + waited) / 8;
        }
    }

    /// Spins until `ready()` (then counts it and returns true), `other()`
    /// (looked at every [`LOOK_EVERY`]), or `limit` is over.
    pub fn spin(
        &mut self,
        limit: Duration,
        mut ready: impl FnMut() -> bool,
        mut other: impl FnMut() -> bool,
    ) -> bool {
        let start = Instant::now();
        let mut looked = start;
        loop {
            if ready() {
                self.caught += 1;
                return true;
            }
            let now = Instant::now();
            if now.duration_since(start) >= limit {
                return false;
            }
            if now.duration_since(looked) >= LOOK_EVERY {
                looked = now;
                if other() {
                    return false;
                }
            }
            std::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait(b: &mut BusyPoll, t: &mut Instant, us: u64) -> Option<Duration> {
        let spin = b.begin(*t);
        *t += Duration::from_micros(us);
        b.end(*t);
        spin
    }

    #[test]
    fn spins_while_waits_are_short_and_stops_when_they_grow_long() {
        let mut b = BusyPoll::new(200);
        let mut t = Instant::now();
        for _ in 0..20 {
            assert_eq!(
                wait(&mut b, &mut t, 60),
                Some(Duration::from_micros(200)),
                "60 µs waits: spin"
            );
        }
        // Durable appends to a slow disk: after a few, no more spinning.
        let spins = (0..20)
            .filter(|_| wait(&mut b, &mut t, 400).is_some())
            .count();
        assert!(spins < 8, "400 µs waits spun {spins} times of 20");
        assert_eq!(wait(&mut b, &mut t, 400), None);
        // Fast again: it spins again, also measuring the waits it did not
        // spin for.
        let late = (0..30).map(|_| wait(&mut b, &mut t, 60)).last();
        assert_eq!(late, Some(Some(Duration::from_micros(200))));
    }

    #[test]
    fn zero_never_spins() {
        let mut b = BusyPoll::new(0);
        let mut t = Instant::now();
        for _ in 0..5 {
            assert_eq!(wait(&mut b, &mut t, 10), None);
        }
    }

    #[test]
    fn a_wait_counts_once_and_an_end_without_a_begin_changes_nothing() {
        let mut b = BusyPoll::new(200);
        let mut t = Instant::now();
        b.end(t);
        assert_eq!(b.typical, Duration::ZERO);
        b.begin(t);
        t += Duration::from_micros(800);
        b.end(t);
        assert_eq!(b.typical, Duration::from_micros(100));
        t += Duration::from_micros(800);
        b.end(t);
        assert_eq!(b.typical, Duration::from_micros(100), "no wait under way");
    }

    #[test]
    fn the_spin_ends_at_ready_at_other_or_at_the_limit() {
        let mut b = BusyPoll::new(200);
        let mut n = 0;
        assert!(b.spin(
            Duration::from_secs(5),
            || {
                n += 1;
                n == 1000
            },
            || false
        ));
        assert_eq!(b.caught, 1);
        assert!(!b.spin(Duration::from_secs(5), || false, || true));
        assert!(!b.spin(Duration::from_micros(50), || false, || false));
        assert_eq!(b.caught, 1);
    }
}
