//! What a driver holds once its ring is closed: an engine with nothing
//! behind it, so the real one (its io_uring or epoll descriptors, its
//! threads) is released when the ring closes, not when JavaScript's
//! garbage collector gets to the Ring object.

use super::{Engine, Feature};
use crate::op::{Cqe, Link, Op};
use std::io;

/// An engine that takes nothing and completes nothing.
pub struct ClosedEngine;

fn closed() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

impl Engine for ClosedEngine {
    fn name(&self) -> &'static str {
        "closed"
    }

    /// Refuses by reporting success and dropping the op: a closed driver
    /// pushes nothing (it refuses new ops and had none pending when it
    /// closed), and `false` would make a caller flush and retry forever.
    unsafe fn push(&self, _user_data: u64, _op: &Op, _link: Link) -> bool {
        true
    }

    fn sq_space(&self) -> usize {
        0
    }

    fn flush(&self) -> io::Result<usize> {
        Ok(0)
    }

    fn reap(&self, _out: &mut Vec<Cqe>) {}

    fn wait(&self, _out: &mut Vec<Cqe>) -> io::Result<()> {
        Err(closed())
    }

    fn wait_ready(&self) -> io::Result<()> {
        Err(closed())
    }

    fn wake(&self) {}

    unsafe fn register_buffer(&self, _slot: u16, _ptr: *mut u8, _len: usize) -> io::Result<()> {
        Err(closed())
    }

    fn unregister_buffer(&self, _slot: u16) {}

    fn register_file(&self, _slot: u32, _fd: i32) -> io::Result<()> {
        Err(closed())
    }

    fn unregister_file(&self, _slot: u32) {}

    fn fixed_file_slots(&self) -> u32 {
        0
    }

    fn fixed_buffer_slots(&self) -> u16 {
        0
    }

    fn supports(&self, _feature: Feature) -> bool {
        false
    }
}
