//! The mio engine's own syscalls: what a descriptor is, the inline
//! page-cache read, and sockets and other streams driven by readiness. The
//! file ops it hands to the blocking lane run in `engine/blocking/run.rs`.

use crate::engine::blocking::run::{errno, iov_len, res, retry};
use crate::op::{Op, Target, CURRENT_POSITION};

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
    let sp = (&mut ss as *mut libc::sockaddr_storage).cast();
    // SAFETY: ss/sl are live locals of the sizes passed.
    let r = unsafe { libc::getpeername(fd, sp, &mut sl) };
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
