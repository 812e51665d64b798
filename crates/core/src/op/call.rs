//! Calls with no io_uring opcode, run in the blocking lane every engine has
//! (a pool thread; `engine/blocking/calls.rs` makes them): each owns its
//! arguments and its result's bytes, so the driver keeps it, like any op's
//! memory, until its completion is reaped.

use std::ffi::CString;

/// One call of the blocking lane (`engine/blocking/calls.rs` makes it); the
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
    /// `fchownat(AT_FDCWD, path, uid, gid, nofollow ? AT_SYMLINK_NOFOLLOW : 0)`,
    /// or `fchown(fd, ...)` without a path. `u32::MAX` leaves an id alone.
    Chown {
        path: Option<CString>,
        fd: i32,
        uid: u32,
        gid: u32,
        nofollow: bool,
    },
    /// `utimensat(AT_FDCWD, path, times, ...)`, or `futimens(fd, times)`
    /// without a path. Times: (seconds, nanoseconds) of access, modification.
    Utimes {
        path: Option<CString>,
        fd: i32,
        atime: (i64, i64),
        mtime: (i64, i64),
        nofollow: bool,
    },
    /// `mkdtemp(prefix + "XXXXXX")`; `out`: the directory made.
    Mkdtemp { prefix: Vec<u8>, out: Vec<u8> },
    /// `statfs(path)`; `out`: type, bsize, blocks, bfree, bavail, files,
    /// ffree as seven little-endian f64s.
    Statfs { path: CString, out: Vec<u8> },
    /// A whole file in one call, as node:fs's readFile reads it: `open`
    /// (`flags`), `fstat`, then reads to its size if it is a regular file,
    /// or 64 KiB at a time to the end otherwise, then `close`; `out`: the
    /// bytes. An error says which call failed: `-(errno + READ_FILE_STEP *
    /// step)` with step 0 open, 1 fstat, 2 read; `-EFBIG` past 2 GiB.
    ReadFile {
        path: CString,
        flags: i32,
        out: Vec<u8>,
    },
    /// The rest of a whole-file read begun by the driver's first round
    /// (see `driver/whole_file.rs`): `fd`'s file read on from its position
    /// to its end as `ReadFile` reads it, after the bytes already in `out`.
    /// `fd` is the call's, closed when it ends. Errors as `ReadFile`'s.
    ReadRest { fd: i32, out: Vec<u8> },
    /// A whole file written in one call, as node:fs's writeFile writes it:
    /// `open` (`flags`, `mode`), writes of all of `data` at the file
    /// position, `fsync` with `flush`, `close`. An error says which call
    /// failed, as for ReadFile: step 0 open, 1 write, 2 fsync, 3 close.
    WriteFile {
        path: CString,
        flags: i32,
        mode: u32,
        data: Vec<u8>,
        flush: bool,
    },
    /// libuv's copyfile: `dest` created (or, with `excl`, refused if it
    /// exists) with the source's mode, emptied, then filled with
    /// copy_file_range (a reflink first when `clone`; only a reflink with
    /// `clone_force`). The same file as source and destination is a no-op.
    CopyFile {
        src: CString,
        dest: CString,
        excl: bool,
        clone: bool,
        clone_force: bool,
    },
}

impl BlockingCall {
    /// The bytes the call produced (entries, a link's target, a path), if
    /// it produces any.
    pub fn output(&self) -> Option<&[u8]> {
        match self {
            BlockingCall::Readdir { out, .. }
            | BlockingCall::Readlink { out, .. }
            | BlockingCall::Realpath { out, .. }
            | BlockingCall::Mkdtemp { out, .. }
            | BlockingCall::Statfs { out, .. }
            | BlockingCall::ReadFile { out, .. }
            | BlockingCall::ReadRest { out, .. } => Some(out),
            BlockingCall::Access { .. }
            | BlockingCall::Chmod { .. }
            | BlockingCall::Chown { .. }
            | BlockingCall::Utimes { .. }
            | BlockingCall::CopyFile { .. }
            | BlockingCall::WriteFile { .. } => None,
        }
    }
}

/// See [`BlockingCall::ReadFile`]: how an error says which call failed.
pub const READ_FILE_STEP: i32 = 4096;

/// Errno `errno` of the `step`-th call of a whole-file call, encoded as
/// [`BlockingCall::ReadFile`] says (positive: negate it for a result).
pub const fn at_step(errno: i32, step: i32) -> i32 {
    errno + READ_FILE_STEP * step
}
