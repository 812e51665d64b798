//! What an engine is asked to do, and what it reports back.
//!
//! An `Op` carries raw pointers into memory owned by the driver's command
//! slab entry (paths, iovecs, statx buffers, data buffers). The driver keeps
//! that entry until the op's completion is reaped, which is what makes the
//! pointers valid for as long as the kernel may use them.

use std::os::fd::RawFd;

/// How an op names its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A plain file descriptor.
    Fd(RawFd),
    /// A slot of the engine's registered file table.
    Fixed(u32),
}

/// Which of `fsync`'s two flavours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// `fsync`: data and all metadata.
    Full,
    /// `fdatasync`: data, and the metadata needed to read it back.
    Data,
}

/// One unit of kernel work.
#[derive(Clone, Copy, Debug)]
pub enum Op {
    Nop,
    Open {
        path: *const libc::c_char,
        flags: i32,
        mode: u32,
    },
    Close {
        fd: RawFd,
    },
    Read {
        target: Target,
        ptr: *mut u8,
        len: u32,
        offset: u64,
        fixed: Option<u16>,
    },
    Write {
        target: Target,
        ptr: *const u8,
        len: u32,
        offset: u64,
        fixed: Option<u16>,
    },
    Readv {
        target: Target,
        iov: *const libc::iovec,
        count: u32,
        offset: u64,
    },
    Writev {
        target: Target,
        iov: *const libc::iovec,
        count: u32,
        offset: u64,
    },
    Fsync {
        target: Target,
        kind: SyncKind,
    },
    Statx {
        fd: RawFd,
        out: *mut libc::statx,
    },
    Ftruncate {
        target: Target,
        len: u64,
    },
    /// Cancel the op submitted with this user data.
    Cancel {
        user_data: u64,
    },
    /// Cancel every op on this file.
    CancelFile {
        target: Target,
    },
    /// Cancel every op of the engine.
    CancelAll,
}

/// Offset meaning "the file's current position" (read/write without pread).
pub const CURRENT_POSITION: u64 = u64::MAX;

/// A completion: the op's user data, its result (`>= 0`, or `-errno`) and
/// the engine's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}
