//! The kernel calls the driver needs outside ops: closing a descriptor it
//! owns, asking a file's `O_DIRECT` alignment, the inline `ftruncate` where
//! io_uring lacks one, and socket set-up (socket, options, bind, listen,
//! addresses). Short, synchronous calls that io_uring has no opcode for or
//! that must finish before the driver answers. They are reached only
//! through [`super::Engine`]'s methods (whose default implementations call
//! these), so the driver makes no syscall of its own and an engine that is
//! no kernel (sim) answers them from its model instead.

use crate::file_table::DioAlign;
use std::io;
use std::net::SocketAddr;

fn last_errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Closes `fd`, which the caller owns and nothing refers to any more.
pub fn close(fd: i32) {
    // SAFETY: the caller owns fd and nothing refers to it any more.
    unsafe { libc::close(fd) };
}

/// `O_DIRECT` alignment from `statx(STATX_DIOALIGN)`, or 512/512 (the
/// smallest logical block) where the filesystem does not say.
#[cfg(target_os = "linux")]
pub fn dio_align(fd: i32) -> DioAlign {
    // SAFETY: statx is plain old data; all-zero is valid.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: stx is a valid out buffer.
    let r = unsafe {
        super::glibc_compat::statx(fd, c"", libc::AT_EMPTY_PATH, libc::STATX_DIOALIGN, &mut stx)
    };
    if r == 0 && stx.stx_mask & libc::STATX_DIOALIGN != 0 && stx.stx_dio_offset_align != 0 {
        DioAlign {
            mem: stx.stx_dio_mem_align.max(1),
            offset: stx.stx_dio_offset_align,
        }
    } else {
        DioAlign {
            mem: 512,
            offset: 512,
        }
    }
}

/// Without `statx` there is no way to ask: 512/512 (the smallest logical
/// block).
#[cfg(not(target_os = "linux"))]
pub fn dio_align(_fd: i32) -> DioAlign {
    DioAlign {
        mem: 512,
        offset: 512,
    }
}

/// `ftruncate(2)`: `Err(errno)` on failure.
pub fn ftruncate(fd: i32, len: u64) -> Result<(), i32> {
    // SAFETY: plain syscall on an fd the caller owns.
    if unsafe { libc::ftruncate(fd, len as libc::off_t) } != 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// A close-on-exec TCP socket for `addr`'s family.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub fn socket(addr: &SocketAddr) -> Result<i32, i32> {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::socket(domain(addr), libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_errno());
    }
    Ok(fd)
}

/// A close-on-exec TCP socket for `addr`'s family, where `socket` takes no
/// `SOCK_CLOEXEC` (macOS): the flag is set right after, and on Apple
/// platforms `SO_NOSIGPIPE` too (a send to a reset peer fails with `EPIPE`
/// instead of raising `SIGPIPE`: the mio engine sends without `MSG_NOSIGNAL`
/// there).
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
pub fn socket(addr: &SocketAddr) -> Result<i32, i32> {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::socket(domain(addr), libc::SOCK_STREAM, 0) };
    if fd < 0 {
        return Err(last_errno());
    }
    let setup = || {
        // SAFETY: plain fcntl on the descriptor just created, which we own.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
            return Err(last_errno());
        }
        #[cfg(target_vendor = "apple")]
        set_int(fd, libc::SOL_SOCKET, libc::SO_NOSIGPIPE, 1)?;
        Ok(())
    };
    if let Err(e) = setup() {
        close(fd);
        return Err(e);
    }
    Ok(fd)
}

fn domain(addr: &SocketAddr) -> i32 {
    if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    }
}

/// `setsockopt` of an `int` option.
pub fn set_int(fd: i32, level: i32, name: i32, value: i32) -> Result<(), i32> {
    // SAFETY: value is a live i32 of the size passed.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// `bind` to the address `sa` (`len` bytes of it), then `listen`.
pub fn bind_listen(
    fd: i32,
    sa: &libc::sockaddr_storage,
    len: libc::socklen_t,
    backlog: i32,
) -> Result<(), i32> {
    // SAFETY: sa is a valid sockaddr of len bytes.
    if unsafe { libc::bind(fd, (sa as *const libc::sockaddr_storage).cast(), len) } != 0 {
        return Err(last_errno());
    }
    // SAFETY: plain syscall on the caller's fd.
    if unsafe { libc::listen(fd, backlog) } != 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// The local (`peer == false`) or remote address of socket `fd`.
pub fn sock_name(fd: i32, peer: bool) -> Result<libc::sockaddr_storage, i32> {
    // SAFETY: all-zero is a valid sockaddr_storage.
    let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let p = (&mut sa as *mut libc::sockaddr_storage).cast();
    // SAFETY: sa has room for len bytes; fd is the caller's.
    let r = unsafe {
        if peer {
            libc::getpeername(fd, p, &mut len)
        } else {
            libc::getsockname(fd, p, &mut len)
        }
    };
    if r != 0 {
        return Err(last_errno());
    }
    Ok(sa)
}

/// Flags of an inline send: never block, and no `SIGPIPE` where the flag
/// exists (Apple platforms set `SO_NOSIGPIPE` on the socket instead).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const SEND_NOW_FLAGS: i32 = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const SEND_NOW_FLAGS: i32 = libc::MSG_DONTWAIT;

/// One `sendmsg` of `iov` (at most `IOV_MAX` of them are taken) on socket
/// `fd`, without blocking: the bytes the socket took (`Ok(0)` or
/// `Err(EAGAIN)` when it took none), or `Err(errno)`.
pub fn send_now(fd: i32, iov: &[libc::iovec]) -> Result<usize, i32> {
    // SAFETY: all-zero is a valid msghdr (no name, no control data).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr().cast_mut();
    msg.msg_iovlen = iov.len().min(1024) as _;
    loop {
        // SAFETY: msg names iovecs of memory the caller lends, readable
        // for the whole call; the kernel only reads it.
        let r = unsafe { libc::sendmsg(fd, &msg, SEND_NOW_FLAGS) };
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = last_errno();
        if e != libc::EINTR {
            return Err(e);
        }
    }
}
