//! JS arguments as the driver takes them: views as user buffers, paths as
//! C strings, packed file ids, positions, and the codes of path ops and
//! blocking-lane calls; and a driver result as the `0`/`-errno` JS gets.

use crate::js;
use napi::bindgen_prelude::{Buffer, Either};
use napi::sys;
use ringline_core::driver::UserBuf;
use ringline_core::op::BlockingCall;
use ringline_core::{FileId, PathOp, CURRENT_POSITION};
use std::ffi::CString;

pub fn view(
    env: sys::napi_env,
    v: sys::napi_value,
    off: f64,
    len: f64,
) -> std::result::Result<UserBuf, i32> {
    let (p, n) = js::view_bytes(env, v).ok_or(libc::EINVAL)?;
    if !(off >= 0.0 && len >= 0.0 && off + len <= n as f64) {
        return Err(libc::EINVAL);
    }
    let ptr = if p.is_null() {
        p
    } else {
        // SAFETY: off <= n, so the result stays within (or one past) the view.
        unsafe { p.add(off as usize) }
    };
    Ok(UserBuf {
        ptr,
        len: len as usize,
    })
}

/// The views of a JS array, each whole.
pub fn views(env: sys::napi_env, arr: sys::napi_value) -> std::result::Result<Vec<UserBuf>, i32> {
    let n = js::array_len(env, arr);
    let mut v = Vec::with_capacity(n as usize);
    for i in 0..n {
        let el = js::element(env, arr, i).ok_or(libc::EINVAL)?;
        let (p, len) = js::view_bytes(env, el).ok_or(libc::EINVAL)?;
        v.push(UserBuf { ptr: p, len });
    }
    Ok(v)
}

/// A path from JS as the kernel takes it: a string's UTF-8, or a Buffer's
/// bytes as they are (a name need not be valid UTF-8). None if it holds a
/// NUL byte (JS refuses those first).
pub fn c_path(path: Either<String, Buffer>) -> Option<CString> {
    match path {
        Either::A(s) => CString::new(s).ok(),
        Either::B(b) => CString::new(b.to_vec()).ok(),
    }
}

/// The BlockingCall of `code` (lib/native.ts `CALLS`) on `a` (and `b`),
/// with the numbers `n`, or `-EINVAL`.
pub(crate) fn blocking_call(
    code: u32,
    a: Either<String, Buffer>,
    b: Option<Either<String, Buffer>>,
    n: &[f64],
) -> std::result::Result<BlockingCall, i32> {
    let path = c_path(a).ok_or(libc::EINVAL)?;
    let num = |i: usize| n.get(i).copied().unwrap_or(0.0);
    let out = Vec::new();
    Ok(match code {
        0 => BlockingCall::Access {
            path,
            mode: num(0) as i32,
        },
        1 => BlockingCall::Readdir { path, out },
        2 => BlockingCall::Readlink { path, out },
        3 => BlockingCall::Realpath { path, out },
        4 => BlockingCall::Chmod {
            path: Some(path),
            fd: -1,
            mode: num(0) as u32,
        },
        5 | 6 => BlockingCall::Chown {
            path: Some(path),
            fd: -1,
            uid: num(0) as u32,
            gid: num(1) as u32,
            nofollow: code == 6,
        },
        7 | 8 => BlockingCall::Utimes {
            path: Some(path),
            fd: -1,
            atime: (num(0) as i64, num(1) as i64),
            mtime: (num(2) as i64, num(3) as i64),
            nofollow: code == 8,
        },
        9 => BlockingCall::Mkdtemp {
            prefix: path.into_bytes(),
            out,
        },
        10 => BlockingCall::Statfs { path, out },
        11 => {
            let flags = num(0) as u32;
            BlockingCall::CopyFile {
                src: path,
                dest: b.and_then(c_path).ok_or(libc::EINVAL)?,
                excl: flags & 1 != 0,
                clone: flags & 2 != 0,
                clone_force: flags & 4 != 0,
            }
        }
        12 => BlockingCall::ReadFile {
            path,
            flags: num(0) as i32,
            out,
        },
        13 => BlockingCall::WriteFile {
            path,
            flags: num(0) as i32,
            mode: num(1) as u32,
            data: match b {
                Some(Either::B(bytes)) => bytes.to_vec(),
                _ => return Err(libc::EINVAL),
            },
            flush: num(2) != 0.0,
        },
        _ => return Err(libc::EINVAL),
    })
}

/// The BlockingCall of `code` (lib/native.ts `FILE_CALLS`) on the open
/// file `fd`, with the numbers `n`, or `-EINVAL`.
pub(crate) fn file_blocking_call(
    code: u32,
    fd: i32,
    n: &[f64],
) -> std::result::Result<BlockingCall, i32> {
    let num = |i: usize| n.get(i).copied().unwrap_or(0.0);
    Ok(match code {
        0 => BlockingCall::Chmod {
            path: None,
            fd,
            mode: num(0) as u32,
        },
        1 => BlockingCall::Chown {
            path: None,
            fd,
            uid: num(0) as u32,
            gid: num(1) as u32,
            nofollow: false,
        },
        2 => BlockingCall::Utimes {
            path: None,
            fd,
            atime: (num(0) as i64, num(1) as i64),
            mtime: (num(2) as i64, num(3) as i64),
            nofollow: false,
        },
        _ => return Err(libc::EINVAL),
    })
}

/// The PathOp of `code` (lib/native.ts `PATH_OPS`), or `-EINVAL`.
pub(crate) fn path_op(
    code: u32,
    a: Either<String, Buffer>,
    b: Option<Either<String, Buffer>>,
    mode: u32,
) -> std::result::Result<PathOp, i32> {
    let a = c_path(a).ok_or(libc::EINVAL)?;
    let b = || b.and_then(c_path).ok_or(libc::EINVAL);
    Ok(match code {
        0 => PathOp::Stat {
            path: a,
            follow: true,
        },
        1 => PathOp::Stat {
            path: a,
            follow: false,
        },
        2 => PathOp::Unlink {
            path: a,
            dir: false,
        },
        3 => PathOp::Unlink { path: a, dir: true },
        4 => PathOp::Rename { from: a, to: b()? },
        5 => PathOp::Mkdir { path: a, mode },
        6 => PathOp::Symlink {
            target: a,
            path: b()?,
        },
        7 => PathOp::Link { from: a, to: b()? },
        _ => return Err(libc::EINVAL),
    })
}

pub fn position(pos: f64) -> u64 {
    if pos < 0.0 {
        CURRENT_POSITION
    } else {
        pos as u64
    }
}

pub fn file(id: f64) -> std::result::Result<FileId, i32> {
    if !(id >= 0.0 && id.fract() == 0.0 && id < 9007199254740992.0) {
        return Err(libc::EBADF);
    }
    FileId::unpack(id as u64).ok_or(libc::EBADF)
}

pub(crate) fn status(r: std::result::Result<(), i32>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => -e,
    }
}
