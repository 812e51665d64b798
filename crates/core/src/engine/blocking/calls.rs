//! The calls of the blocking lane ([`BlockingCall`]): the syscalls each one
//! makes, on a pool thread.

use super::run::{errno, res};
use crate::op::call::at_step;
use crate::op::BlockingCall;
use std::ffi::CStr;

/// Makes `call`, on the calling thread (it blocks): `>= 0` or `-errno`,
/// and what it produced in the call's `out`.
pub(crate) fn run(call: &mut BlockingCall) -> i32 {
    match call {
        BlockingCall::Access { path, mode } => {
            // SAFETY: path is NUL-terminated and owned by the call.
            ret(unsafe { libc::faccessat(libc::AT_FDCWD, path.as_ptr(), *mode, 0) })
        }
        BlockingCall::Readdir { path, out } => readdir(path, out),
        BlockingCall::Readlink { path, out } => {
            let mut buf = vec![0u8; libc::PATH_MAX as usize];
            // SAFETY: path is NUL-terminated; buf is writable for its length.
            let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
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
            Some(p) => {
                let m = *mode as libc::mode_t;
                // SAFETY: path is NUL-terminated and owned by the call.
                ret(unsafe { libc::fchmodat(libc::AT_FDCWD, p.as_ptr(), m, 0) })
            }
            // SAFETY: a plain syscall on a descriptor; a bad one fails.
            None => ret(unsafe { libc::fchmod(*fd, *mode as libc::mode_t) }),
        },
        BlockingCall::Chown {
            path,
            fd,
            uid,
            gid,
            nofollow,
        } => match path {
            Some(p) => {
                let flags = if *nofollow {
                    libc::AT_SYMLINK_NOFOLLOW
                } else {
                    0
                };
                // SAFETY: path is NUL-terminated and owned by the call.
                ret(unsafe { libc::fchownat(libc::AT_FDCWD, p.as_ptr(), *uid, *gid, flags) })
            }
            // SAFETY: a plain syscall on a descriptor.
            None => ret(unsafe { libc::fchown(*fd, *uid, *gid) }),
        },
        BlockingCall::Utimes {
            path,
            fd,
            atime,
            mtime,
            nofollow,
        } => {
            let ts = |(sec, nsec): (i64, i64)| libc::timespec {
                tv_sec: sec as libc::time_t,
                tv_nsec: nsec as _,
            };
            let times = [ts(*atime), ts(*mtime)];
            match path {
                Some(p) => {
                    let flags = if *nofollow {
                        libc::AT_SYMLINK_NOFOLLOW
                    } else {
                        0
                    };
                    // SAFETY: path is NUL-terminated; times holds two timespecs.
                    ret(unsafe {
                        libc::utimensat(libc::AT_FDCWD, p.as_ptr(), times.as_ptr(), flags)
                    })
                }
                // SAFETY: times holds two timespecs.
                None => ret(unsafe { libc::futimens(*fd, times.as_ptr()) }),
            }
        }
        BlockingCall::Mkdtemp { prefix, out } => {
            let mut template = prefix.clone();
            template.extend_from_slice(b"XXXXXX\0");
            // SAFETY: template is NUL-terminated and writable.
            let p = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
            if p.is_null() {
                return -errno();
            }
            template.pop();
            *out = template;
            out.len() as i32
        }
        BlockingCall::Statfs { path, out } => statfs(path, out),
        BlockingCall::ReadFile { path, flags, out } => read_file(path, *flags, out),
        BlockingCall::ReadRest { fd, out } => read_rest(Fd(*fd), out),
        BlockingCall::WriteFile {
            path,
            flags,
            mode,
            data,
            flush,
        } => write_file(path, *flags, *mode, data, *flush),
        BlockingCall::CopyFile {
            src,
            dest,
            excl,
            clone,
            clone_force,
        } => copy_file(src, dest, *excl, *clone, *clone_force),
    }
}

/// node:fs's limit on a whole-file read.
const READ_FILE_MAX: u64 = (1 << 31) - 1;

fn read_file(path: &CStr, flags: i32, out: &mut Vec<u8>) -> i32 {
    let step = |s: i32| -at_step(errno(), s);
    // SAFETY: path is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, 0o666) };
    if fd < 0 {
        return step(0);
    }
    out.clear();
    read_rest(Fd(fd), out)
}

/// Reads `f` on from its position to its end, after the `out.len()` bytes
/// read before (none for [`read_file`]; the first round of a whole-file
/// read otherwise): to its size if it is a regular file, 64 KiB at a time
/// to the end if not. Closes `f`.
fn read_rest(f: Fd, out: &mut Vec<u8>) -> i32 {
    let step = |s: i32| -at_step(errno(), s);
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and out pointer.
    if unsafe { libc::fstat(f.0, &mut st) } < 0 {
        return step(1);
    }
    let regular = st.st_mode & libc::S_IFMT == libc::S_IFREG;
    let size = if regular { st.st_size as u64 } else { 0 };
    if size > READ_FILE_MAX {
        return -libc::EFBIG;
    }
    let mut buf = std::mem::take(out);
    if size > buf.len() as u64 {
        buf.reserve_exact(size as usize - buf.len());
    }
    // A regular file shorter than what was read already: read to its end.
    let size = if size >= buf.len() as u64 { size } else { 0 };
    loop {
        if size > 0 && buf.len() as u64 == size {
            break;
        }
        let want = if size > 0 {
            size as usize - buf.len()
        } else {
            64 << 10
        };
        buf.reserve(want);
        // SAFETY: buf has room for `want` bytes past its length.
        let n = unsafe { libc::read(f.0, buf.as_mut_ptr().add(buf.len()).cast(), want) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return step(2);
        }
        if n == 0 {
            break;
        }
        // SAFETY: read initialised the n bytes past the length.
        unsafe { buf.set_len(buf.len() + n as usize) };
        if buf.len() as u64 > READ_FILE_MAX {
            return -libc::EFBIG;
        }
    }
    *out = buf;
    out.len().min(i32::MAX as usize) as i32
}

/// `flags` asks for the file emptied at open (node's 'w'): the open leaves
/// it alone and an ftruncate to the bytes written follows the writes
/// instead, with the same bytes in the file at the end (Bun's way).
/// Emptying a file that holds data and writing it again makes ext4
/// (`auto_da_alloc`) start writeback at close: one disk write per
/// overwrite, 8.7k-9.1k overwrites/s against 70k-95k/s this way
/// (benches/FS-FINDINGS.md). While the call runs, a reader sees the new
/// bytes over the old ones rather than an empty file, and a write that
/// fails half-way leaves old bytes after the new ones.
fn truncates_after(flags: i32) -> bool {
    flags & libc::O_TRUNC != 0
        && flags & libc::O_APPEND == 0
        && flags & libc::O_ACCMODE != libc::O_RDONLY
}

fn write_file(path: &CStr, flags: i32, mode: u32, data: &[u8], flush: bool) -> i32 {
    let step = |s: i32| -at_step(errno(), s);
    let trunc_after = truncates_after(flags);
    let flags = if trunc_after {
        flags & !libc::O_TRUNC
    } else {
        flags
    };
    // SAFETY: path is NUL-terminated.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
    if fd < 0 {
        return step(0);
    }
    let mut at = 0usize;
    while at < data.len() {
        // SAFETY: data[at..] is readable.
        let n = unsafe { libc::write(fd, data[at..].as_ptr().cast(), data.len() - at) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            let r = step(1);
            // SAFETY: fd is ours; closed once.
            unsafe { libc::close(fd) };
            return r;
        }
        at += n as usize;
    }
    if trunc_after {
        // SAFETY: fd is ours.
        let cut = unsafe { libc::ftruncate(fd, at as libc::off_t) };
        // EINVAL: not a regular file (a pipe, a device), which O_TRUNC
        // leaves alone too.
        if cut < 0 && errno() != libc::EINVAL {
            let r = step(1);
            // SAFETY: fd is ours; closed once.
            unsafe { libc::close(fd) };
            return r;
        }
    }
    // SAFETY: fd is ours.
    if flush && unsafe { libc::fsync(fd) } < 0 {
        let r = step(2);
        // SAFETY: as above.
        unsafe { libc::close(fd) };
        return r;
    }
    // SAFETY: fd is ours; closed once.
    if unsafe { libc::close(fd) } < 0 {
        return step(3);
    }
    0
}

fn statfs(path: &CStr, out: &mut Vec<u8>) -> i32 {
    // SAFETY: statfs is plain old data; all-zero is valid.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: path is NUL-terminated; st is a valid out pointer.
    let r = unsafe { libc::statfs(path.as_ptr(), &mut st) };
    if r < 0 {
        return -errno();
    }
    // Field types differ between platforms; some casts are no-ops on some.
    #[allow(clippy::unnecessary_cast)]
    let fields = [
        st.f_type as f64,
        st.f_bsize as f64,
        st.f_blocks as f64,
        st.f_bfree as f64,
        st.f_bavail as f64,
        st.f_files as f64,
        st.f_ffree as f64,
    ];
    for f in fields {
        out.extend_from_slice(&f.to_le_bytes());
    }
    0
}

/// Closes its descriptor when dropped.
struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: self owns the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn copy_file(src: &CStr, dest: &CStr, excl: bool, clone: bool, clone_force: bool) -> i32 {
    // SAFETY: src is NUL-terminated.
    let s = unsafe { libc::open(src.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if s < 0 {
        return -errno();
    }
    let s = Fd(s);
    // SAFETY: stat is plain old data; fstat fills it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and out pointer.
    if unsafe { libc::fstat(s.0, &mut st) } < 0 {
        return -errno();
    }
    let mut flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC;
    if excl {
        flags |= libc::O_EXCL;
    }
    // SAFETY: dest is NUL-terminated.
    let d = unsafe { libc::open(dest.as_ptr(), flags, st.st_mode as libc::c_uint) };
    if d < 0 {
        return -errno();
    }
    let d = Fd(d);
    // SAFETY: as above.
    let mut dst: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and out pointer.
    if unsafe { libc::fstat(d.0, &mut dst) } < 0 {
        return -errno();
    }
    if dst.st_dev == st.st_dev && dst.st_ino == st.st_ino {
        return 0;
    }
    // SAFETY: plain syscalls on descriptors this function owns.
    if unsafe { libc::fchmod(d.0, st.st_mode) } < 0 || unsafe { libc::ftruncate(d.0, 0) } < 0 {
        return -errno();
    }
    if clone || clone_force {
        match reflink(s.0, d.0) {
            Ok(()) => return 0,
            Err(e) if clone_force => return -e,
            Err(_) => {}
        }
    }
    let mut left = st.st_size as i64;
    while left > 0 {
        let n = copy_chunk(s.0, d.0, left);
        if n < 0 {
            return n as i32;
        }
        if n == 0 {
            break;
        }
        left -= n;
    }
    0
}

/// `ioctl(FICLONE)`: `d` shares `s`'s blocks, where the filesystem can.
#[cfg(target_os = "linux")]
fn reflink(s: i32, d: i32) -> Result<(), i32> {
    const FICLONE: libc::c_ulong = 0x4004_9409;
    // SAFETY: FICLONE takes the source descriptor as its argument.
    if unsafe { libc::ioctl(d, FICLONE as _, s) } == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

#[cfg(not(target_os = "linux"))]
fn reflink(_s: i32, _d: i32) -> Result<(), i32> {
    Err(libc::ENOTSUP)
}

/// Copies up to `left` bytes from `s` to `d` at their file positions.
#[cfg(target_os = "linux")]
fn copy_chunk(s: i32, d: i32, left: i64) -> i64 {
    let want = left.min(1 << 30) as usize;
    let none = std::ptr::null_mut();
    // SAFETY: null offsets use and move the descriptors' positions.
    let n = unsafe { libc::copy_file_range(s, none, d, none, want, 0) };
    if n >= 0 {
        return n as i64;
    }
    let e = errno();
    if e != libc::EXDEV && e != libc::ENOSYS && e != libc::EINVAL && e != libc::EOPNOTSUPP {
        return -i64::from(e);
    }
    read_write(s, d, want)
}

#[cfg(not(target_os = "linux"))]
fn copy_chunk(s: i32, d: i32, left: i64) -> i64 {
    read_write(s, d, left.min(1 << 20) as usize)
}

/// One read, and the writes that put all of it down.
fn read_write(s: i32, d: i32, want: usize) -> i64 {
    let mut buf = vec![0u8; want.min(1 << 20)];
    // SAFETY: buf is writable for its length.
    let n = unsafe { libc::read(s, buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return if n < 0 { -i64::from(errno()) } else { 0 };
    }
    let mut at = 0usize;
    while at < n as usize {
        // SAFETY: buf[at..n] was filled by the read.
        let w = unsafe { libc::write(d, buf[at..].as_ptr().cast(), n as usize - at) };
        if w < 0 {
            return -i64::from(errno());
        }
        at += w as usize;
    }
    n as i64
}

fn ret(r: libc::c_int) -> i32 {
    res(r as isize)
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
