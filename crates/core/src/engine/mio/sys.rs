//! The syscalls behind the mio engine's ops, each returning what io_uring
//! would put in the completion: the result, or `-errno`.

use crate::op::{Op, Statx, SyncKind, Target, CURRENT_POSITION, END_OF_FILE};

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// `r` as a completion result: `-errno` when the syscall failed.
fn res(r: isize) -> i32 {
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
fn retry(mut f: impl FnMut() -> isize) -> isize {
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
unsafe fn iov_len(iov: *const libc::iovec, count: u32) -> usize {
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
/// leaving the file position alone: `pwritev2(RWF_APPEND)`, as io_uring's
/// `RWF_APPEND` write does.
#[cfg(target_os = "linux")]
fn append(fd: i32, ptr: *const u8, len: usize) -> isize {
    let iov = libc::iovec {
        iov_base: ptr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: iov describes len readable bytes at ptr (the op's memory).
    unsafe { crate::engine::glibc_compat::pwritev2(fd, &iov, 1, 0, libc::RWF_APPEND) }
}

/// Writes at the end of the file as it is now. Without `RWF_APPEND` the end
/// is read first; the pool runs a file's writes one at a time, so no write
/// of this ring comes in between (another process's may).
#[cfg(not(target_os = "linux"))]
fn append(fd: i32, ptr: *const u8, len: usize) -> isize {
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is the op's descriptor; st is a valid out pointer.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return -1;
    }
    // SAFETY: ptr is readable for len bytes (the op's memory).
    unsafe { libc::pwrite(fd, ptr.cast(), len, st.st_size) }
}

/// `AT_EMPTY_PATH` (Linux's value elsewhere, where only [`statx_at`] reads it).
#[cfg(target_os = "linux")]
const AT_EMPTY_PATH: i32 = libc::AT_EMPTY_PATH;
#[cfg(not(target_os = "linux"))]
const AT_EMPTY_PATH: i32 = 0x1000;

/// A syscall's `-1`/errno result as an op's result, and whether it did it.
fn done(r: libc::c_int) -> (i32, bool) {
    let r = res(r as isize);
    (r, r >= 0)
}

/// Runs a file op (blocking). Returns its result and whether it did all it
/// was asked (a short read or write, or an error, breaks a link chain).
/// Offset [`CURRENT_POSITION`] uses (and moves) the file position.
pub(super) fn file_op(op: &Op) -> (i32, bool) {
    let here = |offset: u64| offset == CURRENT_POSITION;
    let iovs = |count: u32| count.min(libc::c_int::MAX as u32) as libc::c_int;
    match *op {
        Op::Nop => (0, true),
        Op::Open { path, flags, mode } => {
            // SAFETY: path is a NUL-terminated string owned by the op's slab
            // entry (Engine::push's contract).
            let r = res(retry(
                || unsafe { libc::open(path, flags | libc::O_CLOEXEC, mode) } as isize,
            ));
            (r, r >= 0)
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
        // SAFETY: as above.
        Op::Mkdir { path, mode } => {
            done(unsafe { libc::mkdirat(libc::AT_FDCWD, path, mode as libc::mode_t) })
        }
        Op::Symlink { target, path } => {
            // SAFETY: as above.
            done(unsafe { libc::symlinkat(target, libc::AT_FDCWD, path) })
        }
        Op::Blocking { call } => {
            // SAFETY: the call is owned by the op's slab entry, which nothing
            // else touches until this op's completion is reaped.
            let r = unsafe { (*call).run() };
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
        // SAFETY: path is NUL-terminated (the op's memory); st is valid.
        res(retry(
            || unsafe { libc::fstatat(fd, path, &mut st, flags) } as isize
        ))
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

// ----- sockets and other streams ----------------------------------------

/// What a descriptor is, for how its reads and writes run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FdKind {
    /// A pipe, FIFO or socket: driven by readiness, so a read that waits
    /// for data holds no pool thread and can be cancelled.
    Stream,
    /// A regular file without `O_DIRECT`: reads are tried in the page cache
    /// first, without blocking (Linux `RWF_NOWAIT`).
    Cached,
    /// Anything else: the pool.
    Other,
}

pub(super) fn fd_kind(fd: i32) -> FdKind {
    // SAFETY: stat is plain old data; all-zero is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out pointer; a bad fd just fails.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return FdKind::Other;
    }
    match st.st_mode & libc::S_IFMT {
        libc::S_IFIFO | libc::S_IFSOCK => FdKind::Stream,
        libc::S_IFREG if cfg!(target_os = "linux") && !is_direct(fd) => FdKind::Cached,
        _ => FdKind::Other,
    }
}

#[cfg(target_os = "linux")]
fn is_direct(fd: i32) -> bool {
    // SAFETY: plain fcntl on a descriptor the driver owns.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    fl < 0 || fl & libc::O_DIRECT != 0
}

#[cfg(not(target_os = "linux"))]
fn is_direct(_fd: i32) -> bool {
    true
}

/// A read served from the page cache without blocking: `Some(result)`, or
/// `None` when it would have to wait for the device (the pool does it).
#[cfg(target_os = "linux")]
pub(super) fn read_nowait(op: &Op) -> Option<i32> {
    let one;
    let (fd, iov, count, offset) = match *op {
        Op::Read {
            target: Target::Fd(fd),
            ptr,
            len,
            offset,
            ..
        } => {
            one = libc::iovec {
                iov_base: ptr.cast(),
                iov_len: len as usize,
            };
            (fd, &one as *const libc::iovec, 1, offset)
        }
        Op::Readv {
            target: Target::Fd(fd),
            iov,
            count,
            offset,
        } => (
            fd,
            iov,
            count.min(libc::c_int::MAX as u32) as libc::c_int,
            offset,
        ),
        _ => return None,
    };
    if offset == CURRENT_POSITION {
        // A read at the file position moves it: it could not be redone in
        // the pool after a partial read here.
        return None;
    }
    let pos = offset as libc::off_t;
    // SAFETY: iov names count writable buffers (the op's memory, or `one`,
    // alive for this call).
    let r = res(retry(|| unsafe {
        crate::engine::glibc_compat::preadv2(fd, iov, count, pos, libc::RWF_NOWAIT)
    }));
    // SAFETY: iov points at count iovecs.
    let want = unsafe { iov_len(iov, count as u32) };
    match -r {
        // Not cached, or the kernel cannot tell without blocking.
        libc::EAGAIN | libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS => None,
        // Partly cached (or the end of the file): the pool reads it all
        // again, so a short count means the end of the file, as on io_uring.
        _ if r > 0 && (r as usize) < want => None,
        _ => Some(r),
    }
}

#[cfg(not(target_os = "linux"))]
pub(super) fn read_nowait(_op: &Op) -> Option<i32> {
    None
}

/// A read or write on a stream, non-blocking, offsets ignored (as io_uring
/// ignores them on streams). `-EAGAIN` when it would block.
pub(super) fn stream_io(fd: i32, op: &Op) -> isize {
    let n = |c: u32| c.min(libc::c_int::MAX as u32) as libc::c_int;
    let r = match *op {
        // SAFETY: ptr is writable for len bytes (the op's memory).
        Op::Read { ptr, len, .. } => retry(|| unsafe { libc::read(fd, ptr.cast(), len as usize) }),
        Op::Write { ptr, len, .. } => {
            // SAFETY: ptr is readable for len bytes (the op's memory).
            retry(|| unsafe { libc::write(fd, ptr.cast(), len as usize) })
        }
        // SAFETY: iov points at count iovecs of writable memory.
        Op::Readv { iov, count, .. } => retry(|| unsafe { libc::readv(fd, iov, n(count)) }),
        // SAFETY: iov points at count iovecs of readable memory.
        Op::Writev { iov, count, .. } => retry(|| unsafe { libc::writev(fd, iov, n(count)) }),
        _ => return -(libc::EINVAL as isize),
    };
    res(r) as isize
}

/// A pipe whose two ends are non-blocking and close-on-exec.
pub(super) fn nonblocking_pipe() -> std::io::Result<[std::os::fd::OwnedFd; 2]> {
    let mut fds = [0i32; 2];
    // SAFETY: fds is a live array of two ints.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let owned = unsafe {
        [
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[0]),
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fds[1]),
        ]
    };
    for fd in fds {
        let r = set_nonblocking(fd);
        if r < 0 {
            return Err(std::io::Error::from_raw_os_error(-r));
        }
        // SAFETY: plain fcntl on a descriptor we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
    Ok(owned)
}

/// Makes `fd` non-blocking (readiness-driven syscalls must never block).
pub(super) fn set_nonblocking(fd: i32) -> i32 {
    // SAFETY: plain fcntl on a descriptor the driver owns.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return -errno();
    }
    if fl & libc::O_NONBLOCK != 0 {
        return 0;
    }
    // SAFETY: as above.
    res(unsafe { libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK) } as isize)
}

/// `accept` of one connection, non-blocking and close-on-exec.
pub(super) fn accept(fd: i32) -> i32 {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    {
        // SAFETY: null address pointers are allowed; fd is a listener.
        let r = retry(|| unsafe {
            libc::accept4(
                fd,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            ) as isize
        });
        res(r)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    {
        // SAFETY: null address pointers are allowed; fd is a listener.
        let r = retry(|| unsafe {
            libc::accept(fd, std::ptr::null_mut(), std::ptr::null_mut()) as isize
        });
        let r = res(r);
        if r >= 0 {
            set_nonblocking(r);
            // SAFETY: plain fcntl on the descriptor just accepted.
            unsafe { libc::fcntl(r, libc::F_SETFD, libc::FD_CLOEXEC) };
            // SEND_FLAGS has no MSG_NOSIGNAL here: SO_NOSIGPIPE makes a
            // send to a reset peer fail with EPIPE instead of raising SIGPIPE.
            #[cfg(target_vendor = "apple")]
            {
                let on: i32 = 1;
                // SAFETY: on is a live i32 of the size passed.
                unsafe {
                    libc::setsockopt(
                        r,
                        libc::SOL_SOCKET,
                        libc::SO_NOSIGPIPE,
                        (&on as *const i32).cast(),
                        std::mem::size_of::<i32>() as libc::socklen_t,
                    )
                };
            }
        }
        r
    }
}

/// Flags of every send: no SIGPIPE where the platform has the flag.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_FLAGS: i32 = 0;

/// One receive into `iov` (provided buffers the engine owns until it
/// reports them in completions).
pub(super) fn recv_into(fd: i32, iov: &[libc::iovec]) -> isize {
    if let [one] = iov {
        // SAFETY: one writable buffer of iov_len bytes.
        return res(retry(|| unsafe {
            libc::recv(fd, one.iov_base, one.iov_len, 0)
        })) as isize;
    }
    // SAFETY: iov names writable buffers; readv does not keep them.
    res(retry(|| unsafe {
        libc::readv(fd, iov.as_ptr(), iov.len() as libc::c_int)
    })) as isize
}

pub(super) fn send(fd: i32, buf: *const u8, len: usize) -> isize {
    // SAFETY: buf is readable for len bytes (the op's memory).
    res(retry(|| unsafe {
        libc::send(fd, buf.cast(), len, SEND_FLAGS)
    })) as isize
}

/// `sendmsg` of `count` iovecs at `iov` (already advanced past what was
/// sent).
pub(super) fn sendmsg(fd: i32, iov: *const libc::iovec, count: usize) -> isize {
    // SAFETY: all-zero is a valid msghdr.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.cast_mut();
    msg.msg_iovlen = count as _;
    // SAFETY: msg names count iovecs of readable memory (the op's).
    res(retry(|| unsafe { libc::sendmsg(fd, &msg, SEND_FLAGS) })) as isize
}

/// Starts a connect: 0 when connected, `-EINPROGRESS` while pending.
pub(super) fn connect(fd: i32, addr: *const libc::sockaddr, len: u32) -> i32 {
    // SAFETY: addr points at len bytes of socket address (the op's memory).
    let r = retry(|| unsafe { libc::connect(fd, addr, len as libc::socklen_t) } as isize);
    res(r)
}

/// Where a pending connect stands once the socket is writable: `Some(0)`
/// connected, `Some(-errno)` failed, `None` still in progress.
pub(super) fn connect_result(fd: i32) -> Option<i32> {
    let mut err: i32 = 0;
    let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
    // SAFETY: err and len are live locals of the sizes passed.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&mut err as *mut i32).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Some(-errno());
    }
    if err != 0 {
        return Some(-err);
    }
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut sl = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: ss/sl are live locals of the sizes passed.
    let r =
        unsafe { libc::getpeername(fd, (&mut ss as *mut libc::sockaddr_storage).cast(), &mut sl) };
    if r == 0 {
        return Some(0);
    }
    match errno() {
        libc::ENOTCONN => None,
        e => Some(-e),
    }
}

pub(super) fn shutdown(fd: i32, how: i32) -> i32 {
    // SAFETY: plain syscall on the op's fd.
    res(unsafe { libc::shutdown(fd, how) } as isize)
}

pub(super) fn close(fd: i32) -> i32 {
    // SAFETY: the driver hands over an fd it owns and no longer uses.
    res(unsafe { libc::close(fd) } as isize)
}
