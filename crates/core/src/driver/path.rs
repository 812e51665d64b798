//! Ops on names rather than open files: stat and lstat, unlink and rmdir,
//! rename, mkdir, symlink and link. Each is one op of the engine (an
//! io_uring opcode, or a syscall in the mio engine's pool) that owns its
//! paths until the kernel is done with them. Results: 0 or `-errno`; a
//! stat settles with `Payload::Stat`.

use super::*;

/// One op on names. Paths are relative to the working directory.
#[derive(Debug)]
pub enum PathOp {
    /// `statx`; `follow: false` is lstat (a symlink itself).
    Stat {
        path: CString,
        follow: bool,
    },
    /// `unlink`, or `rmdir` with `dir`.
    Unlink {
        path: CString,
        dir: bool,
    },
    Rename {
        from: CString,
        to: CString,
    },
    Mkdir {
        path: CString,
        mode: u32,
    },
    /// `path` becomes a symbolic link to `target`.
    Symlink {
        target: CString,
        path: CString,
    },
    /// A hard link `to` of `from`.
    Link {
        from: CString,
        to: CString,
    },
}

impl Driver {
    /// Submits `op` for `token`.
    pub fn path_op(&mut self, token: u32, op: PathOp) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let (op, kind, mem) = match op {
            PathOp::Stat { path, follow } => {
                // SAFETY: statx is plain old data; all-zero is a valid value.
                let mut out: Box<Statx> = Box::new(unsafe { std::mem::zeroed() });
                let op = Op::StatPath {
                    path: path.as_ptr(),
                    flags: if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW },
                    out: &mut *out as *mut Statx,
                };
                (op, Kind::Stat, Mem::PathStat(path, out))
            }
            PathOp::Unlink { path, dir } => {
                let flags = if dir { libc::AT_REMOVEDIR } else { 0 };
                let op = Op::Unlink {
                    path: path.as_ptr(),
                    flags,
                };
                (op, Kind::Plain, Mem::Paths(vec![path]))
            }
            PathOp::Rename { from, to } => {
                let op = Op::Rename {
                    from: from.as_ptr(),
                    to: to.as_ptr(),
                };
                (op, Kind::Plain, Mem::Paths(vec![from, to]))
            }
            PathOp::Mkdir { path, mode } => {
                let op = Op::Mkdir {
                    path: path.as_ptr(),
                    mode,
                };
                (op, Kind::Plain, Mem::Paths(vec![path]))
            }
            PathOp::Symlink { target, path } => {
                let op = Op::Symlink {
                    target: target.as_ptr(),
                    path: path.as_ptr(),
                };
                (op, Kind::Plain, Mem::Paths(vec![target, path]))
            }
            PathOp::Link { from, to } => {
                let op = Op::Link {
                    from: from.as_ptr(),
                    to: to.as_ptr(),
                };
                (op, Kind::Plain, Mem::Paths(vec![from, to]))
            }
        };
        self.submit_op(token, None, kind, op, mem);
        Ok(())
    }
}
