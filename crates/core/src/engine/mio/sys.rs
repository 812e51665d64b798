//! The syscalls behind the mio engine's ops, each returning what io_uring
//! would put in the completion: the result, or `-errno`.

use crate::op::{Op, SyncKind, Target, CURRENT_POSITION};

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

/// Runs a file op (blocking). Returns its result and whether it did all it
/// was asked (a short read or write, or an error, breaks a link chain).
pub(super) fn file_op(op: &Op) -> (i32, bool) {
    match *op {
        Op::Nop => (0, true),
        Op::Open { path, flags, mode } => {
            // SAFETY: path is a NUL-terminated string owned by the op's slab
            // entry (Engine::push's contract).
            let r = retry(|| unsafe { libc::open(path, flags | libc::O_CLOEXEC, mode) } as isize);
            let r = res(r);
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
        } => {
            let Some(fd) = fd_of(target) else {
                return (-libc::EBADF, false);
            };
            let r = retry(|| {
                if offset == CURRENT_POSITION {
                    // SAFETY: ptr is writable for len bytes (the op's memory).
                    unsafe { libc::read(fd, ptr.cast(), len as usize) }
                } else {
                    // SAFETY: as above.
                    unsafe { libc::pread(fd, ptr.cast(), len as usize, offset as libc::off_t) }
                }
            });
            let r = res(r);
            (r, r >= 0 && r as u32 == len)
        }
        Op::Write {
            target,
            ptr,
            len,
            offset,
            ..
        } => {
            let Some(fd) = fd_of(target) else {
                return (-libc::EBADF, false);
            };
            let r = retry(|| {
                if offset == CURRENT_POSITION {
                    // SAFETY: ptr is readable for len bytes (the op's memory).
                    unsafe { libc::write(fd, ptr.cast(), len as usize) }
                } else {
                    // SAFETY: as above.
                    unsafe { libc::pwrite(fd, ptr.cast(), len as usize, offset as libc::off_t) }
                }
            });
            let r = res(r);
            (r, r >= 0 && r as u32 == len)
        }
        Op::Readv {
            target,
            iov,
            count,
            offset,
        } => {
            let Some(fd) = fd_of(target) else {
                return (-libc::EBADF, false);
            };
            let n = count.min(libc::c_int::MAX as u32) as libc::c_int;
            let r = retry(|| {
                if offset == CURRENT_POSITION {
                    // SAFETY: iov points at count iovecs of writable memory.
                    unsafe { libc::readv(fd, iov, n) }
                } else {
                    // SAFETY: as above.
                    unsafe { libc::preadv(fd, iov, n, offset as libc::off_t) }
                }
            });
            let r = res(r);
            // SAFETY: iov points at count iovecs.
            let want = unsafe { iov_len(iov, count) };
            (r, r >= 0 && r as usize == want)
        }
        Op::Writev {
            target,
            iov,
            count,
            offset,
        } => {
            let Some(fd) = fd_of(target) else {
                return (-libc::EBADF, false);
            };
            let n = count.min(libc::c_int::MAX as u32) as libc::c_int;
            let r = retry(|| {
                if offset == CURRENT_POSITION {
                    // SAFETY: iov points at count iovecs of readable memory.
                    unsafe { libc::writev(fd, iov, n) }
                } else {
                    // SAFETY: as above.
                    unsafe { libc::pwritev(fd, iov, n, offset as libc::off_t) }
                }
            });
            let r = res(r);
            // SAFETY: iov points at count iovecs.
            let want = unsafe { iov_len(iov, count) };
            (r, r >= 0 && r as usize == want)
        }
        Op::Fsync { target, kind } => {
            let Some(fd) = fd_of(target) else {
                return (-libc::EBADF, false);
            };
            let r = retry(|| match kind {
                // SAFETY: plain syscall on the op's fd.
                SyncKind::Full => unsafe { libc::fsync(fd) as isize },
                // SAFETY: as above.
                SyncKind::Data => unsafe { fdatasync(fd) as isize },
            });
            let r = res(r);
            (r, r >= 0)
        }
        Op::Statx { fd, out } => {
            let r = statx(fd, out);
            (r, r >= 0)
        }
        Op::Ftruncate { target, len } => {
            let Some(fd) = fd_of(target) else {
                return (-libc::EBADF, false);
            };
            // SAFETY: plain syscall on the op's fd.
            let r = retry(|| unsafe { libc::ftruncate(fd, len as libc::off_t) } as isize);
            let r = res(r);
            (r, r >= 0)
        }
        // Socket and cancel ops never reach the pool.
        _ => (-libc::EINVAL, false),
    }
}

#[cfg(target_os = "linux")]
fn statx(fd: i32, out: *mut libc::statx) -> i32 {
    // SAFETY: out points at a statx buffer owned by the op's slab entry;
    // the path is an empty C string with AT_EMPTY_PATH.
    let r = unsafe {
        libc::statx(
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            out,
        )
    };
    res(r as isize)
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

/// Whether `fd` is a pipe, FIFO or socket (waits are readiness-driven).
pub(super) fn is_stream(fd: i32) -> bool {
    // SAFETY: stat is plain old data; all-zero is valid.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: st is a valid out pointer; a bad fd just fails.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    matches!(st.st_mode & libc::S_IFMT, libc::S_IFIFO | libc::S_IFSOCK)
}

/// A read or write on a stream, non-blocking, offsets ignored (as io_uring
/// ignores them on streams). `-EAGAIN` when it would block.
pub(super) fn stream_io(fd: i32, op: &Op) -> isize {
    let n = |c: u32| c.min(libc::c_int::MAX as u32) as libc::c_int;
    let r = match *op {
        // SAFETY: ptr is writable for len bytes (the op's memory).
        Op::Read { ptr, len, .. } => retry(|| unsafe { libc::read(fd, ptr.cast(), len as usize) }),
        // SAFETY: ptr is readable for len bytes (the op's memory).
        Op::Write { ptr, len, .. } => retry(|| unsafe { libc::write(fd, ptr.cast(), len as usize) }),
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
        }
        r
    }
}

/// Flags of every send: no SIGPIPE where the platform has the flag.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_FLAGS: i32 = 0;

pub(super) fn recv(fd: i32, buf: *mut u8, len: usize) -> isize {
    // SAFETY: buf is a provided buffer of len bytes the engine owns until it
    // reports it in a completion.
    res(retry(|| unsafe { libc::recv(fd, buf.cast(), len, 0) })) as isize
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
