//! What an engine is asked to do, and what it reports back.
//!
//! An `Op` carries raw pointers into memory owned by the driver's command
//! slab entry (paths, iovecs, statx buffers, data buffers). The driver keeps
//! that entry until the op's completion is reaped, which is what makes the
//! pointers valid for as long as the kernel may use them.

use std::os::fd::RawFd;

pub mod call;
pub use call::BlockingCall;

/// What [`Op::Statx`] fills in: the kernel's `struct statx` on Linux.
#[cfg(target_os = "linux")]
pub use libc::statx as Statx;

/// What [`Op::Statx`] fills in. Linux's `struct statx` does not exist
/// elsewhere, so this mirrors the fields of it that ringline reads (same
/// names and types); the mio engine fills them from `fstat`.
#[cfg(not(target_os = "linux"))]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Statx {
    /// Which fields are filled (`STATX_*` bits, as on Linux).
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub stx_blocks: u64,
    pub stx_atime: StatxTimestamp,
    /// Birth time; zero where the platform does not record it.
    pub stx_btime: StatxTimestamp,
    pub stx_ctime: StatxTimestamp,
    pub stx_mtime: StatxTimestamp,
    pub stx_rdev_major: u32,
    pub stx_rdev_minor: u32,
    pub stx_dev_major: u32,
    pub stx_dev_minor: u32,
}

/// Linux's `struct statx_timestamp`, for [`Statx`] where libc has none.
#[cfg(not(target_os = "linux"))]
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct StatxTimestamp {
    pub tv_sec: i64,
    pub tv_nsec: u32,
}

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

impl SyncKind {
    /// The flag of a write (`pwritev2`, io_uring's `rw_flags`) that makes
    /// it durable as this sync would: `RWF_SYNC` or `RWF_DSYNC`.
    #[cfg(target_os = "linux")]
    pub fn write_flag(self) -> i32 {
        match self {
            SyncKind::Full => libc::RWF_SYNC,
            SyncKind::Data => libc::RWF_DSYNC,
        }
    }
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
    /// `openat(AT_FDCWD, path, flags, mode)` into slot `slot` of the
    /// engine's registered file table rather than the process's (a direct
    /// descriptor: ops linked after it name it by the slot). Result: 0.
    OpenFixed {
        path: *const libc::c_char,
        flags: i32,
        mode: u32,
        slot: u32,
    },
    /// Closes slot `slot` of the registered file table.
    CloseFixed {
        slot: u32,
    },
    /// A process descriptor (close-on-exec) for the file in slot `slot` of
    /// the registered file table, which keeps it too. Result: the fd.
    InstallFixed {
        slot: u32,
    },
    Read {
        target: Target,
        ptr: *mut u8,
        len: u32,
        offset: u64,
        fixed: Option<u16>,
    },
    /// A write; with `sync`, a durable one (`RWF_DSYNC` for
    /// [`SyncKind::Data`], `RWF_SYNC` for [`SyncKind::Full`]): its bytes
    /// are on stable storage when it completes, as if an `fdatasync` or
    /// `fsync` of their range followed it (a short write: the bytes it
    /// wrote).
    Write {
        target: Target,
        ptr: *const u8,
        len: u32,
        offset: u64,
        fixed: Option<u16>,
        sync: Option<SyncKind>,
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
        out: *mut Statx,
    },
    Ftruncate {
        target: Target,
        len: u64,
    },
    /// `statx` of a path (relative to the working directory);
    /// `AT_SYMLINK_NOFOLLOW` in `flags` for lstat.
    StatPath {
        path: *const libc::c_char,
        flags: i32,
        out: *mut Statx,
    },
    /// `unlinkat(AT_FDCWD, path, flags)`: `AT_REMOVEDIR` removes a directory.
    Unlink {
        path: *const libc::c_char,
        flags: i32,
    },
    /// `renameat(AT_FDCWD, from, AT_FDCWD, to)`.
    Rename {
        from: *const libc::c_char,
        to: *const libc::c_char,
    },
    /// `mkdirat(AT_FDCWD, path, mode)`.
    Mkdir {
        path: *const libc::c_char,
        mode: u32,
    },
    /// `symlinkat(target, AT_FDCWD, path)`: `path` becomes a link to `target`.
    Symlink {
        target: *const libc::c_char,
        path: *const libc::c_char,
    },
    /// `linkat(AT_FDCWD, from, AT_FDCWD, to, 0)`: a hard link.
    Link {
        from: *const libc::c_char,
        to: *const libc::c_char,
    },
    /// A call with no opcode, made in the blocking lane (a pool thread).
    Blocking {
        call: *mut BlockingCall,
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
    /// Multishot accept: one completion per accepted connection (its fd).
    AcceptMulti {
        target: Target,
    },
    /// Connect the socket `fd` to the address at `addr`.
    Connect {
        fd: RawFd,
        addr: *const libc::sockaddr,
        len: u32,
    },
    /// Ends the op linked before it with `-ECANCELED` unless it completes
    /// within `ts`.
    LinkTimeout {
        ts: *const Timespec,
    },
    /// Multishot receive into buffers of the provided-buffer group `group`.
    RecvMulti {
        target: Target,
        group: u16,
    },
    /// `send(2)` of one buffer.
    Send {
        target: Target,
        ptr: *const u8,
        len: u32,
    },
    /// `sendmsg(2)`; `zero_copy` uses `SENDMSG_ZC`, whose completion may be
    /// followed by a notification (same user data) once the kernel is done
    /// with the memory.
    SendMsg {
        target: Target,
        msg: *const libc::msghdr,
        zero_copy: bool,
    },
    /// Zero-copy `send` from registered buffer `fixed` (`SEND_ZC`); a
    /// notification follows like with `SendMsg { zero_copy: true }`.
    SendZc {
        target: Target,
        ptr: *const u8,
        len: u32,
        fixed: u16,
    },
    /// `shutdown(2)`.
    Shutdown {
        target: Target,
        how: i32,
    },
}

/// How a pushed op ties the op pushed after it to its own result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    /// Not linked: the next op is independent.
    None,
    /// `IOSQE_IO_LINK`: the next op runs only if this one did all it was
    /// asked (an error or a short read or write cancels the rest).
    Next,
    /// `IOSQE_IO_HARDLINK`: the next op runs whatever this one's result,
    /// unless this one was itself cancelled by a broken link.
    Always,
}

/// The kernel's `struct __kernel_timespec` (64-bit seconds on every target).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Timespec {
    pub tv_sec: i64,
    pub tv_nsec: i64,
}

/// Completion flags, kernel ABI (`include/uapi/linux/io_uring.h`).
/// `IORING_CQE_F_MORE`: more completions of this op will follow.
pub const CQE_F_MORE: u32 = 1 << 1;
/// Completion flag: the completion names a provided buffer (`flags >> 16`).
pub const CQE_F_BUFFER: u32 = 1 << 0;
/// Completion flag: a zero-copy send's notification.
pub const CQE_F_NOTIF: u32 = 1 << 3;

/// Offset meaning "the file's current position" (read/write without pread).
pub const CURRENT_POSITION: u64 = u64::MAX;

/// Offset of a write meaning "at the end of the file as it is when the
/// write runs" (`RWF_APPEND`, as `O_APPEND` does for every write of a file),
/// without moving the file position.
pub const END_OF_FILE: u64 = u64::MAX - 1;

/// A completion: the op's user data, its result (`>= 0`, or `-errno`) and
/// the engine's flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cqe {
    pub user_data: u64,
    pub result: i32,
    pub flags: u32,
}
