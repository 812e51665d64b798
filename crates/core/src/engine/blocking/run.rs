//! The syscalls behind the ops the blocking lane runs (every op of the mio
//! engine's files, and the calls with no io_uring opcode on both engines),
//! each returning what io_uring would put in the completion: the result, or
//! `-errno`.

use crate::op::{Op, Statx, SyncKind, Target, CURRENT_POSITION, END_OF_FILE};

pub(crate) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `r` as a completion result: `-errno` when the syscall failed.
pub(crate) fn res(r: isize) -> i32 {
    if r < 0 {
        -errno()
    } else {
        r.min(i32::MAX as isize) as i32
    }
}

/// The descriptor an op names. The mio engine has no registered file
/// table, so the driver never hands it a fixed slot.
fn fd_of(t: Target) -> Option<i32> {
    match t {
        Target::Fd(fd) => Some(fd),
        Target::Fixed(_) => None,
    }
}

/// Retries a syscall interrupted by a signal.
pub(crate) fn retry(mut f: impl FnMut() -> isize) -> isize {
    loop {
        let r = f();
        if r < 0 && errno() == libc::EINTR {
            continue;
        }
        return r;
    }
}

/// Total length of an iovec array.
///
/// # Safety
/// `iov` must point at `count` valid iovecs.
pub(crate) unsafe fn iov_len(iov: *const libc::iovec, count: u32) -> usize {
    // SAFETY: the caller guarantees count iovecs at iov.
    let v = unsafe { std::slice::from_raw_parts(iov, count as usize) };
    v.iter().map(|i| i.iov_len).sum()
}

/// Runs `f` on the descriptor of `target` (retried on `EINTR`): the result,
/// and whether it did all it was asked (`want` bytes; `None`: no count).
fn on_fd(target: Target, want: Option<usize>, f: impl FnMut(i32) -> isize) -> (i32, bool) {
    let Some(fd) = fd_of(target) else {
        return (-libc::EBADF, false);
    };
    let mut f = f;
    let r = res(retry(|| f(fd)));
    (r, r >= 0 && want.is_none_or(|w| r as usize == w))
}

/// Writes `len` bytes at `ptr` at the end of the file as it is now,
/// leaving the file position alone (see [`append_v`]).
fn append(fd: i32, ptr: *const u8, len: usize) -> isize {
    let iov = libc::iovec {
        iov_base: ptr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: iov describes len readable bytes at ptr (the op's memory).
    unsafe { append_v(fd, &iov, 1) }
}

/// Writes the `count` buffers of `iov` at the end of the file as it is
/// now, leaving the file position alone: `pwritev2(RWF_APPEND)`, as
/// io_uring's `RWF_APPEND` write does.
///
/// # Safety
/// `iov` must point at `count` iovecs of readable memory.
#[cfg(target_os = "linux")]
unsafe fn append_v(fd: i32, iov: *const libc::iovec, count: u32) -> isize {
    // SAFETY: the caller's guarantee.
    unsafe { crate::engine::glibc_compat::pwritev2(fd, iov, iovs(count), 0, libc::RWF_APPEND) }
}

/// Writes at the end of the file as it is now. Without `RWF_APPEND` the end
/// is read first; the pool runs a file's writes one at a time, so no write
/// of this ring comes in between (another process's may).
///
/// # Safety
/// `iov` must point at `count` iovecs of readable memory.
#[cfg(not(target_os = "linux"))]
unsafe fn append_v(fd: i32, iov: *const libc::iovec, count: u32) -> isize {
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is the op's descriptor; st is a valid out pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return -1;
    }
    // SAFETY: the caller's guarantee.
    unsafe { libc::pwritev(fd, iov, iovs(count), st.st_size) }
}

/// `AT_EMPTY_PATH` (Linux's value elsewhere, where only [`statx_at`] reads it).
#[cfg(target_os = "linux")]
const AT_EMPTY_PATH: i32 = libc::AT_EMPTY_PATH;
#[cfg(not(target_os = "linux"))]
const AT_EMPTY_PATH: i32 = 0x1000;

/// An iovec count as the syscalls take it.
fn iovs(count: u32) -> libc::c_int {
    count.min(libc::c_int::MAX as u32) as libc::c_int
}

/// A syscall's `-1`/errno result as an op's result, and whether it did it.
fn done(r: libc::c_int) -> (i32, bool) {
    let r = res(r as isize);
    (r, r >= 0)
}

/// Runs a file op (blocking). Returns its result and whether it did all it
/// was asked (a short read or write, or an error, breaks a link chain).
/// Offset [`CURRENT_POSITION`] uses (and moves) the file position.
pub(crate) fn file_op(op: &Op) -> (i32, bool) {
    let here = |offset: u64| offset == CURRENT_POSITION;
    match *op {
        Op::Nop => (0, true),
        Op::Open { path, flags, mode } => {
            let open = || {
                // SAFETY: path is a NUL-terminated string owned by the op's
                // slab entry (Engine::push's contract).
                unsafe { libc::open(path, flags | libc::O_CLOEXEC, mode) as isize }
            };
            let r = res(retry(open));
            (r, r >= 0)
        }
        // No registered file table here (Feature::FixedOpen is off).
        Op::OpenFixed { .. } | Op::CloseFixed { .. } | Op::InstallFixed { .. } => {
            (-libc::EOPNOTSUPP, false)
        }
        Op::Close { fd } => {
            // SAFETY: the driver hands over an fd it owns and no longer uses;
            // close is not retried on EINTR (the fd is gone either way).
            let r = res(unsafe { libc::close(fd) } as isize);
            (r, r >= 0)
        }
        Op::Read {
            target,
            ptr,
            len,
            offset,
            ..
        } => on_fd(target, Some(len as usize), |fd| match here(offset) {
            // SAFETY: ptr is writable for len bytes (the op's memory).
            true => unsafe { libc::read(fd, ptr.cast(), len as usize) },
            // SAFETY: as above.
            false => unsafe { libc::pread(fd, ptr.cast(), len as usize, offset as libc::off_t) },
        }),
        Op::Write {
            target,
            ptr,
            len,
            offset,
            sync: Some(kind),
            ..
        } => durable_write(target, ptr, len as usize, offset, kind),
        Op::Write {
            target,
            ptr,
            len,
            offset,
            ..
        } => on_fd(target, Some(len as usize), |fd| {
            if offset == END_OF_FILE {
                return append(fd, ptr, len as usize);
            }
            match here(offset) {
                // SAFETY: ptr is readable for len bytes (the op's memory).
                true => unsafe { libc::write(fd, ptr.cast(), len as usize) },
                // SAFETY: as above.
                false => unsafe {
                    libc::pwrite(fd, ptr.cast(), len as usize, offset as libc::off_t)
                },
            }
        }),
        Op::Readv {
            target,
            iov,
            count,
            offset,
        } => {
            // SAFETY: iov points at count iovecs (the op's memory).
            let want = unsafe { iov_len(iov, count) };
            on_fd(target, Some(want), |fd| match here(offset) {
                // SAFETY: iov points at count iovecs of writable memory.
                true => unsafe { libc::readv(fd, iov, iovs(count)) },
                // SAFETY: as above.
                false => unsafe { libc::preadv(fd, iov, iovs(count), offset as libc::off_t) },
            })
        }
        Op::Writev {
            target,
            iov,
            count,
            offset,
        } => {
            // SAFETY: iov points at count iovecs (the op's memory).
            let want = unsafe { iov_len(iov, count) };
            on_fd(target, Some(want), |fd| match here(offset) {
                // SAFETY: iov points at count iovecs of readable memory.
                _ if offset == END_OF_FILE => unsafe { append_v(fd, iov, count) },
                // SAFETY: as above.
                true => unsafe { libc::writev(fd, iov, iovs(count)) },
                // SAFETY: as above.
                false => unsafe { libc::pwritev(fd, iov, iovs(count), offset as libc::off_t) },
            })
        }
        Op::Fsync { target, kind } => on_fd(target, None, |fd| match kind {
            // SAFETY: plain syscall on the op's fd.
            SyncKind::Full => unsafe { libc::fsync(fd) as isize },
            // SAFETY: as above.
            SyncKind::Data => unsafe { fdatasync(fd) as isize },
        }),
        Op::Statx { fd, out } => {
            let r = statx_at(fd, c"".as_ptr(), AT_EMPTY_PATH, out);
            (r, r >= 0)
        }
        Op::StatPath { path, flags, out } => {
            let r = statx_at(libc::AT_FDCWD, path, flags, out);
            (r, r >= 0)
        }
        // SAFETY (the path ops below): every path is a NUL-terminated string
        // owned by the op's slab entry (Engine::push's contract).
        Op::Unlink { path, flags } => done(unsafe { libc::unlinkat(libc::AT_FDCWD, path, flags) }),
        Op::Rename { from, to } => {
            // SAFETY: as above.
            done(unsafe { libc::renameat(libc::AT_FDCWD, from, libc::AT_FDCWD, to) })
        }
        Op::Mkdir { path, mode } => {
            let mode = mode as libc::mode_t;
            // SAFETY: as above.
            done(unsafe { libc::mkdirat(libc::AT_FDCWD, path, mode) })
        }
        Op::Symlink { target, path } => {
            // SAFETY: as above.
            done(unsafe { libc::symlinkat(target, libc::AT_FDCWD, path) })
        }
        Op::Blocking { call } => {
            // SAFETY: the call is owned by the op's slab entry, which nothing
            // else touches until this op's completion is reaped.
            let r = super::calls::run(unsafe { &mut *call });
            (r, r >= 0)
        }
        Op::Link { from, to } => {
            // SAFETY: as above.
            done(unsafe { libc::linkat(libc::AT_FDCWD, from, libc::AT_FDCWD, to, 0) })
        }
        Op::Ftruncate { target, len } => on_fd(target, None, |fd| {
            // SAFETY: plain syscall on the op's fd.
            unsafe { libc::ftruncate(fd, len as libc::off_t) as isize }
        }),
        // Socket and cancel ops never reach the pool.
        _ => (-libc::EINVAL, false),
    }
}

/// `statx` of `path` under `fd` (`AT_EMPTY_PATH` with an empty path: of
/// `fd` itself), as io_uring's STATX op makes it.
#[cfg(target_os = "linux")]
fn statx_at(fd: i32, path: *const libc::c_char, flags: i32, out: *mut Statx) -> i32 {
    // SAFETY: path is NUL-terminated and out points at a statx buffer, both
    // owned by the op's slab entry.
    let r = unsafe {
        crate::engine::glibc_compat::statx(
            fd,
            std::ffi::CStr::from_ptr(path),
            flags,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            out,
        )
    };
    res(r as isize)
}

/// `statx` where there is none: [`Statx`] filled from `fstat` (of `fd`,
/// for `AT_EMPTY_PATH`) or `fstatat` (of `path`), with the birth time where
/// the platform records one.
#[cfg(not(target_os = "linux"))]
// Field types differ between platforms; some casts are no-ops on some.
#[allow(clippy::unnecessary_cast)]
fn statx_at(fd: i32, path: *const libc::c_char, flags: i32, out: *mut Statx) -> i32 {
    use crate::op::StatxTimestamp;
    // Linux's STATX_BASIC_STATS and STATX_BTIME.
    const BASIC_STATS: u32 = 0x7ff;
    #[cfg(any(target_vendor = "apple", target_os = "freebsd", target_os = "openbsd"))]
    const BTIME: u32 = 0x800;
    let ts = |sec: libc::time_t, nsec: libc::c_long| StatxTimestamp {
        tv_sec: sec as i64,
        tv_nsec: nsec as u32,
    };
    // SAFETY: stat is plain old data; all-zero is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let r = if flags & AT_EMPTY_PATH != 0 {
        // SAFETY: st is a valid out pointer; a bad fd just fails.
        res(retry(|| unsafe { libc::fstat(fd, &mut st) } as isize))
    } else {
        res(retry(|| {
            // SAFETY: path is NUL-terminated (the op's memory); st is valid.
            unsafe { libc::fstatat(fd, path, &mut st, flags) as isize }
        }))
    };
    if r < 0 {
        return r;
    }
    #[cfg(any(target_vendor = "apple", target_os = "freebsd", target_os = "openbsd"))]
    let (mask, btime) = (
        BASIC_STATS | BTIME,
        ts(st.st_birthtime, st.st_birthtime_nsec),
    );
    #[cfg(not(any(target_vendor = "apple", target_os = "freebsd", target_os = "openbsd")))]
    let (mask, btime) = (BASIC_STATS, StatxTimestamp::default());
    let (dev, rdev) = (st.st_dev as u32, st.st_rdev as u32);
    let x = Statx {
        stx_mask: mask,
        stx_blksize: st.st_blksize as u32,
        stx_attributes: 0,
        stx_nlink: st.st_nlink as u32,
        stx_uid: st.st_uid as u32,
        stx_gid: st.st_gid as u32,
        stx_mode: st.st_mode as u16,
        stx_ino: st.st_ino as u64,
        stx_size: st.st_size as u64,
        stx_blocks: st.st_blocks as u64,
        stx_atime: ts(st.st_atime, st.st_atime_nsec),
        stx_btime: btime,
        stx_ctime: ts(st.st_ctime, st.st_ctime_nsec),
        stx_mtime: ts(st.st_mtime, st.st_mtime_nsec),
        // BSD dev_t: major in the top 8 bits, minor in the low 24.
        stx_rdev_major: rdev >> 24,
        stx_rdev_minor: rdev & 0x00ff_ffff,
        stx_dev_major: dev >> 24,
        stx_dev_minor: dev & 0x00ff_ffff,
    };
    // SAFETY: out points at a Statx owned by the op's slab entry.
    unsafe { out.write(x) };
    0
}

/// A write that is durable when it returns: one `pwritev2` with
/// `RWF_DSYNC` or `RWF_SYNC` (and `RWF_APPEND` for an append), as
/// io_uring's write with those `rw_flags`.
#[cfg(target_os = "linux")]
fn durable_write(
    target: Target,
    ptr: *const u8,
    len: usize,
    offset: u64,
    kind: SyncKind,
) -> (i32, bool) {
    let iov = libc::iovec {
        iov_base: ptr as *mut libc::c_void,
        iov_len: len,
    };
    let (pos, flags) = match offset {
        END_OF_FILE => (0, libc::RWF_APPEND),
        // -1: at the file position, which it moves.
        CURRENT_POSITION => (-1, 0),
        o => (o as i64, 0),
    };
    let flags = flags | kind.write_flag();
    on_fd(target, Some(len), |fd| {
        // SAFETY: iov describes len readable bytes at ptr (the op's memory).
        unsafe { crate::engine::glibc_compat::pwritev2(fd, &iov, 1, pos, flags) }
    })
}

/// A write that is durable when it returns, where there is no `RWF_DSYNC`:
/// the write, then `fsync` (of what it wrote; a failed sync fails it).
#[cfg(not(target_os = "linux"))]
fn durable_write(
    target: Target,
    ptr: *const u8,
    len: usize,
    offset: u64,
    kind: SyncKind,
) -> (i32, bool) {
    let write = Op::Write {
        target,
        ptr,
        len: len as u32,
        offset,
        fixed: None,
        sync: None,
    };
    let (r, whole) = file_op(&write);
    if r <= 0 {
        return (r, whole);
    }
    match file_op(&Op::Fsync { target, kind }) {
        (s, _) if s < 0 => (s, false),
        _ => (r, whole),
    }
}

#[cfg(target_os = "linux")]
unsafe fn fdatasync(fd: i32) -> i32 {
    // SAFETY: plain syscall; the caller passes the op's fd.
    unsafe { libc::fdatasync(fd) }
}

#[cfg(not(target_os = "linux"))]
unsafe fn fdatasync(fd: i32) -> i32 {
    // macOS has no fdatasync; fsync is the stronger guarantee.
    // SAFETY: plain syscall; the caller passes the op's fd.
    unsafe { libc::fsync(fd) }
}
