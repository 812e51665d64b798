//! Where the completion thread sleeps: until the engine's poll has events
//! (sockets, the pool's waker, the timer) or `wake()` is called.
//!
//! `wake()` has its own pipe, drained only here, so a reap on another thread
//! can never take a wake-up (it can take the poll's events, which is fine:
//! that thread handles them).
//!
//! On Linux the thread waits in an epoll set of its own holding the poll's
//! descriptor, which the submitting thread mutes when it flushes socket ops
//! (`flush_and_reap`): completions it makes and reaps itself (a loopback
//! send that makes the peer socket readable, say) then wake nobody, as
//! io_uring's muted eventfd does. It unmutes when its event loop is about
//! to block (`Engine::idle`): that re-arms the poll's descriptor, and if
//! anything is still ready then, the thread wakes at once, so nothing is
//! lost. Elsewhere the thread `poll`s the descriptors (muting does nothing).

use super::sys;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

pub(super) struct Waiter {
    /// The engine's poll descriptor (epoll/kqueue).
    poll_fd: i32,
    /// `[read, write]` ends of the wake pipe.
    pipe: [OwnedFd; 2],
    #[cfg(target_os = "linux")]
    set: OwnedFd,
    /// A thread sleeps in `wait`: only then is muting worth its syscalls
    /// (an awake completion thread reaps anyway before it sleeps again).
    sleeping: AtomicBool,
    /// The poll's descriptor is muted in the set.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    muted: AtomicBool,
}

#[cfg(target_os = "linux")]
const POLL_KEY: u64 = 0;
#[cfg(target_os = "linux")]
const PIPE_KEY: u64 = 1;

impl Waiter {
    pub fn new(poll_fd: i32) -> io::Result<Waiter> {
        let pipe = sys::nonblocking_pipe()?;
        #[cfg(target_os = "linux")]
        {
            // SAFETY: plain syscall; the result is checked.
            let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: fd is a fresh descriptor nobody else owns.
            let set = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let w = Waiter {
                poll_fd,
                pipe,
                set,
                sleeping: AtomicBool::new(false),
                muted: AtomicBool::new(false),
            };
            w.ctl(libc::EPOLL_CTL_ADD, poll_fd, libc::EPOLLIN as u32, POLL_KEY)?;
            w.ctl(
                libc::EPOLL_CTL_ADD,
                w.pipe[0].as_raw_fd(),
                libc::EPOLLIN as u32,
                PIPE_KEY,
            )?;
            Ok(w)
        }
        #[cfg(not(target_os = "linux"))]
        Ok(Waiter {
            poll_fd,
            pipe,
            sleeping: AtomicBool::new(false),
            muted: AtomicBool::new(false),
        })
    }

    #[cfg(target_os = "linux")]
    fn ctl(&self, op: i32, fd: i32, events: u32, key: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: key };
        // SAFETY: our epoll set, a descriptor the engine owns, a live event.
        if unsafe { libc::epoll_ctl(self.set.as_raw_fd(), op, fd, &mut ev) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stops poll events from waking a sleeping thread (see the module
    /// docs), until [`Waiter::unmute`]. Only while a thread sleeps is it
    /// worth its syscall (an awake completion thread reaps anyway before it
    /// sleeps again), and a muted set stays muted across flushes.
    pub fn mute(&self) {
        #[cfg(target_os = "linux")]
        if self.sleeping.load(Ordering::Acquire)
            && !self.muted.swap(true, Ordering::AcqRel)
            && self
                .ctl(libc::EPOLL_CTL_MOD, self.poll_fd, 0, POLL_KEY)
                .is_err()
        {
            self.muted.store(false, Ordering::Release);
        }
    }

    /// Lets poll events wake the thread again, at once if any are pending.
    pub fn unmute(&self) {
        #[cfg(target_os = "linux")]
        if self.muted.swap(false, Ordering::AcqRel) {
            let _ = self.ctl(
                libc::EPOLL_CTL_MOD,
                self.poll_fd,
                libc::EPOLLIN as u32,
                POLL_KEY,
            );
        }
    }

    /// Blocks until poll events, a wake-up, or `timeout_ms` (-1: none).
    pub fn wait(&self, timeout_ms: i32) -> io::Result<()> {
        self.sleeping.store(true, Ordering::Release);
        let woken = self.sleep(timeout_ms);
        self.sleeping.store(false, Ordering::Release);
        let woken = woken?;
        if woken {
            let mut buf = [0u8; 64];
            // SAFETY: reads into a live local buffer from our non-blocking pipe.
            unsafe { libc::read(self.pipe[0].as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        }
        Ok(())
    }

    /// Sleeps; returns whether the wake pipe is readable.
    #[cfg(target_os = "linux")]
    fn sleep(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // SAFETY: our epoll set and a live array of two events.
        let n = unsafe { libc::epoll_wait(self.set.as_raw_fd(), evs.as_mut_ptr(), 2, timeout_ms) };
        if n < 0 {
            return interrupted();
        }
        Ok(evs[..n as usize].iter().any(|e| e.u64 == PIPE_KEY))
    }

    #[cfg(not(target_os = "linux"))]
    fn sleep(&self, timeout_ms: i32) -> io::Result<bool> {
        let mut p = [
            libc::pollfd {
                fd: self.poll_fd,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: self.pipe[0].as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two live pollfds for descriptors the engine owns.
        let r = unsafe { libc::poll(p.as_mut_ptr(), 2, timeout_ms) };
        if r < 0 {
            return interrupted();
        }
        Ok(p[1].revents != 0)
    }

    /// Makes a waiting thread return. Callable from any thread.
    pub fn wake(&self) {
        let one = 1u8;
        // SAFETY: writes one byte from a local to our non-blocking pipe (a
        // full pipe already means "woken").
        unsafe { libc::write(self.pipe[1].as_raw_fd(), (&one as *const u8).cast(), 1) };
    }
}

/// A failed sleep: a signal only cut it short (no wake-up seen), anything
/// else is an error.
fn interrupted() -> io::Result<bool> {
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(false)
    } else {
        Err(e)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A poll with a waker registered, and a waiter on it.
    fn setup() -> (mio::Poll, Arc<mio::Waker>, Arc<Waiter>) {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let waiter = Arc::new(Waiter::new(poll.as_raw_fd()).unwrap());
        (poll, waker, waiter)
    }

    /// Starts a thread in `wait` and returns once it sleeps there.
    fn sleeper(w: &Arc<Waiter>) -> std::sync::mpsc::Receiver<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        let w2 = w.clone();
        std::thread::spawn(move || {
            w2.wait(-1).unwrap();
            let _ = tx.send(());
        });
        while !w.sleeping.load(Ordering::Acquire) {
            std::thread::yield_now();
        }
        rx
    }

    #[test]
    fn an_event_that_comes_while_muted_wakes_the_thread_at_unmute() {
        let (_poll, waker, w) = setup();
        let rx = sleeper(&w);
        w.mute();
        assert!(
            w.muted.load(Ordering::Acquire),
            "muted while a thread sleeps"
        );
        waker.wake().unwrap();
        // Muted: the event is pending in the poll, the thread sleeps on.
        assert!(rx.try_recv().is_err());
        w.unmute();
        // Hang guard only (the thread returns at once).
        rx.recv_timeout(Duration::from_secs(60))
            .expect("unmute wakes the thread for the pending event");
    }

    #[test]
    fn wake_reaches_a_muted_thread_and_mute_needs_a_sleeper() {
        let (_poll, _waker, w) = setup();
        w.mute();
        assert!(
            !w.muted.load(Ordering::Acquire),
            "nobody sleeps: no syscall, no mute"
        );
        let rx = sleeper(&w);
        w.mute();
        w.wake();
        rx.recv_timeout(Duration::from_secs(60))
            .expect("wake() goes through its own pipe, muted or not");
        w.unmute();
    }
}
