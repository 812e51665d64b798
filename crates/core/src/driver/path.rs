//! Ops on names rather than open files: stat and lstat, unlink and rmdir,
//! rename, mkdir, symlink and link. Each is one op of the engine (an
//! io_uring opcode, or a syscall in the mio engine's pool) that owns its
//! paths until the kernel is done with them. Results: 0 or `-errno`; a
//! stat settles with `Payload::Stat`. And the calls with no opcode
//! ([`BlockingCall`]: readdir, access, readlink, ...), made in the engine's
//! blocking lane; they settle with `Payload::Call`.

use super::*;
use crate::op::BlockingCall;

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

    /// Makes `call` in the engine's blocking lane for `token`; it settles
    /// with the call back (`Payload::Call`) when it succeeded.
    pub fn call(&mut self, token: u32, call: BlockingCall) -> Result<(), i32> {
        self.refuse_if_closed()?;
        // A readFile goes through fixed opens where the engine has them.
        if let Err(call) = self.read_whole(token, Box::new(call)) {
            self.submit_call(token, None, call);
        }
        Ok(())
    }

    /// Makes the call `make` returns for the descriptor of file `id` (an
    /// fchmod, ...) in the blocking lane; `make`'s error refuses it. It
    /// counts as an op of the file, so the file's close waits for it.
    pub fn file_call(
        &mut self,
        token: u32,
        id: FileId,
        make: impl FnOnce(i32) -> Result<BlockingCall, i32>,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let (e, _) = self.file(id)?;
        let call = Box::new(make(e.fd)?);
        self.submit_call(token, Some(id), call);
        Ok(())
    }

    pub(super) fn submit_call(
        &mut self,
        token: u32,
        file: Option<FileId>,
        mut call: Box<BlockingCall>,
    ) {
        let op = Op::Blocking {
            call: &mut *call as *mut BlockingCall,
        };
        self.submit_op(token, file, Kind::Call, op, Mem::Call(call));
    }
}
