//! The eventfd an engine rings when completions may be ready: the
//! completion thread sleeps on it (`Engine::wait_ready`), and with
//! `completion: 'loop'` the event loop polls it (`Engine::notify_fd`).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// An eventfd (close-on-exec, blocking reads).
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> io::Result<EventFd> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor nobody else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub fn fd(&self) -> i32 {
        self.0.as_raw_fd()
    }

    /// A second descriptor for the same eventfd (for a thread that may
    /// outlive this one's owner).
    pub fn try_clone(&self) -> io::Result<OwnedFd> {
        self.0.try_clone()
    }

    /// Wakes a thread blocked in [`EventFd::wait`].
    pub fn signal(&self) {
        signal(self.fd());
    }

    /// Blocks until the eventfd was signalled (an interrupted wait returns
    /// too), and resets it. Also when the descriptor was made non-blocking
    /// (an event loop polls it too): then it waits in `poll` first.
    pub fn wait(&self) -> io::Result<()> {
        let mut count = 0u64;
        loop {
            // SAFETY: reads 8 bytes into a local u64 from an eventfd we own.
            let r = unsafe { libc::read(self.fd(), (&mut count as *mut u64).cast(), 8) };
            if r >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => return Ok(()),
                Some(libc::EAGAIN) => {
                    let mut p = libc::pollfd {
                        fd: self.fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    };
                    // SAFETY: one valid pollfd for our own descriptor.
                    if unsafe { libc::poll(&mut p, 1, -1) } < 0 {
                        let e = io::Error::last_os_error();
                        if e.raw_os_error() != Some(libc::EINTR) {
                            return Err(e);
                        }
                        return Ok(());
                    }
                }
                _ => return Err(e),
            }
        }
    }
}

/// Signals the eventfd `fd` (adds 1 to its counter).
pub fn signal(fd: i32) {
    let one = 1u64;
    // SAFETY: writes 8 bytes from a local u64; an invalid fd only fails.
    unsafe { libc::write(fd, (&one as *const u64).cast(), 8) };
}
