//! Kernel calls that glibc wraps only from 2.26 (`preadv2`, `pwritev2`) or
//! 2.28 (`statx`), made as raw system calls. The prebuilt glibc binaries are
//! linked against glibc 2.17 (napi-rs's cross toolchain) so that they load
//! on old distributions; calling glibc's wrappers there leaves unversioned
//! undefined symbols that fail to bind on a glibc older than the wrapper.
//! Same arguments and results as the wrappers: -1 with `errno` set on error.

/// `preadv2(2)`.
///
/// # Safety
/// `iov` points at `count` iovecs naming writable memory.
pub unsafe fn preadv2(fd: i32, iov: *const libc::iovec, count: i32, pos: i64, flags: i32) -> isize {
    // SAFETY: the caller upholds preadv2's contract.
    unsafe { vectored(libc::SYS_preadv2, fd, iov, count, pos, flags) }
}

/// `pwritev2(2)`.
///
/// # Safety
/// `iov` points at `count` iovecs naming readable memory.
pub unsafe fn pwritev2(
    fd: i32,
    iov: *const libc::iovec,
    count: i32,
    pos: i64,
    flags: i32,
) -> isize {
    // SAFETY: the caller upholds pwritev2's contract.
    unsafe { vectored(libc::SYS_pwritev2, fd, iov, count, pos, flags) }
}

/// preadv2 or pwritev2 (`nr`). The offset goes in two halves (low, high),
/// as the kernel takes it; on 64-bit targets the low half holds all of it
/// and the high half is ignored.
///
/// # Safety
/// As the call's own: `iov` points at `count` iovecs naming memory the call
/// may write (preadv2) or read (pwritev2).
unsafe fn vectored(
    nr: libc::c_long,
    fd: i32,
    iov: *const libc::iovec,
    count: i32,
    pos: i64,
    flags: i32,
) -> isize {
    // SAFETY: the caller upholds the call's contract.
    unsafe {
        libc::syscall(
            nr,
            fd,
            iov,
            count,
            pos as u64 as libc::c_long,
            ((pos as u64) >> 32) as libc::c_long,
            flags,
        ) as isize
    }
}

/// `statx(2)`.
///
/// # Safety
/// `out` points at a writable `statx` buffer.
pub unsafe fn statx(
    fd: i32,
    path: &std::ffi::CStr,
    flags: i32,
    mask: u32,
    out: *mut libc::statx,
) -> i32 {
    // SAFETY: path is NUL-terminated; the caller upholds out's contract.
    unsafe { libc::syscall(libc::SYS_statx, fd, path.as_ptr(), flags, mask, out) as i32 }
}
