//! Calls with no io_uring opcode, run in the blocking lane every engine has
//! (a pool thread): each owns its arguments and its result's bytes, so the
//! driver keeps it, like any op's memory, until its completion is reaped.

use std::ffi::{CStr, CString};

/// One call of the blocking lane. [`BlockingCall::run`] makes it; the
/// result is `>= 0` or `-errno`; `out` holds what it produced.
#[derive(Debug)]
pub enum BlockingCall {
    /// `faccessat(AT_FDCWD, path, mode, 0)`.
    Access { path: CString, mode: i32 },
    /// The entries of a directory, as `out`: per entry one type byte
    /// (`DT_*`), the name, a NUL. Result: the number of entries.
    Readdir { path: CString, out: Vec<u8> },
    /// `readlink(path)`; `out`: the target's bytes. Result: their length.
    Readlink { path: CString, out: Vec<u8> },
    /// `realpath(path)`; `out`: the resolved path's bytes.
    Realpath { path: CString, out: Vec<u8> },
    /// `fchmodat(AT_FDCWD, path, mode, 0)`, or `fchmod(fd, mode)` with `fd`.
    Chmod {
        path: Option<CString>,
        fd: i32,
        mode: u32,
    },
}

impl BlockingCall {
    /// The bytes the call produced (entries, a link's target, a path), if
    /// it produces any.
    pub fn output(&self) -> Option<&[u8]> {
        match self {
            BlockingCall::Readdir { out, .. }
            | BlockingCall::Readlink { out, .. }
            | BlockingCall::Realpath { out, .. } => Some(out),
            BlockingCall::Access { .. } | BlockingCall::Chmod { .. } => None,
        }
    }

    /// Makes the call, on the calling thread (it blocks).
    pub fn run(&mut self) -> i32 {
        match self {
            BlockingCall::Access { path, mode } => {
                // SAFETY: path is NUL-terminated and owned by self.
                ret(unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), *mode, 0) })
            }
            BlockingCall::Readdir { path, out } => readdir(path, out),
            BlockingCall::Readlink { path, out } => {
                let mut buf = vec![0u8; libc::PATH_MAX as usize];
                // SAFETY: path is NUL-terminated; buf is writable for its length.
                let n =
                    unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    return -errno();
                }
                buf.truncate(n as usize);
                *out = buf;
                n as i32
            }
            BlockingCall::Realpath { path, out } => {
                // SAFETY: path is NUL-terminated; a null buffer makes realpath
                // allocate the result, which is freed below.
                let p = unsafe { libc::realpath(path.as_ptr(), std::ptr::null_mut()) };
                if p.is_null() {
                    return -errno();
                }
                // SAFETY: realpath returned a NUL-terminated string it allocated.
                *out = unsafe { CStr::from_ptr(p) }.to_bytes().to_vec();
                // SAFETY: p came from realpath's malloc.
                unsafe { libc::free(p.cast()) };
                out.len() as i32
            }
            BlockingCall::Chmod { path, fd, mode } => match path {
                // SAFETY: path is NUL-terminated and owned by self.
                Some(p) => ret(unsafe {
                    libc::fchmodat(libc::AT_FDCWD, p.as_ptr(), *mode as libc::mode_t, 0)
                }),
                // SAFETY: a plain syscall on a descriptor; a bad one fails.
                None => ret(unsafe { libc::fchmod(*fd, *mode as libc::mode_t) }),
            },
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn ret(r: libc::c_int) -> i32 {
    if r < 0 {
        -errno()
    } else {
        r
    }
}

/// Every entry of `path` but `.` and `..`, in the order the filesystem
/// gives them, into `out` (see [`BlockingCall::Readdir`]).
fn readdir(path: &CStr, out: &mut Vec<u8>) -> i32 {
    // SAFETY: path is NUL-terminated.
    let dir = unsafe { libc::opendir(path.as_ptr()) };
    if dir.is_null() {
        return -errno();
    }
    let mut n = 0i32;
    let r = loop {
        // readdir reports an error only through errno: clear it first.
        // SAFETY: errno is thread-local.
        unsafe { *errno_location() = 0 };
        // SAFETY: dir is an open DIR stream.
        let e = unsafe { libc::readdir(dir) };
        if e.is_null() {
            let err = errno();
            break if err == 0 { n } else { -err };
        }
        // SAFETY: e points at a dirent readdir filled; d_name is NUL-terminated.
        let (name, kind) = unsafe { (CStr::from_ptr((*e).d_name.as_ptr()), (*e).d_type) };
        let name = name.to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push(kind);
        out.extend_from_slice(name);
        out.push(0);
        n += 1;
    };
    // SAFETY: dir is open; closed once.
    unsafe { libc::closedir(dir) };
    r
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__errno_location() }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn errno_location() -> *mut libc::c_int {
    // SAFETY: always valid for the calling thread.
    unsafe { libc::__error() }
}
