//! Submitting ops: open, read, write, readv/writev, sync, stat, truncate,
//! and append (synced: a write made durable, as one chain).

use super::*;

impl Driver {
    /// Opens `path`. Settles with the packed [`FileId`] (`Payload::Opened`).
    pub fn open(&mut self, token: u32, path: CString, flags: i32, mode: u32) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let op = Op::Open {
            path: path.as_ptr(),
            flags: flags | libc::O_CLOEXEC,
            mode,
        };
        let kind = Kind::Open {
            direct: is_direct(flags),
            append: flags & libc::O_APPEND != 0,
        };
        self.submit_op(token, None, kind, op, Mem::Path(path));
        Ok(())
    }

    /// Everything fallible a read, write or append needs, done before any
    /// state changes: the file's target, the memory the kernel will use
    /// (library memory in place, or a bounce block filled from `buf` when
    /// `copy_in`), and the length (capped at [`MAX_IO`]). Checks O_DIRECT
    /// alignment of `offset` and the length.
    fn prepare_rw(
        &mut self,
        id: FileId,
        buf: UserBuf,
        offset: u64,
        copy_in: bool,
    ) -> Result<Prepared, i32> {
        self.refuse_if_closed()?;
        let len = buf.len.min(MAX_IO);
        let (e, target) = self.file(id)?;
        let need = Self::check_direct(e, offset, len)?;
        let direct = e.direct.is_some();
        let (mem, ptr, fixed) = self.data_for(UserBuf { ptr: buf.ptr, len }, need, copy_in)?;
        Ok(Prepared {
            target,
            mem,
            ptr,
            fixed,
            len,
            direct,
        })
    }

    /// Reads up to `buf.len` bytes at `offset` (or the file position, with
    /// [`CURRENT_POSITION`]). `user_offset` comes back in a bounce payload.
    pub fn read(
        &mut self,
        token: u32,
        id: FileId,
        buf: UserBuf,
        user_offset: usize,
        offset: u64,
    ) -> Result<(), i32> {
        let Prepared {
            target,
            mem,
            ptr,
            fixed,
            len,
            direct,
        } = self.prepare_rw(id, buf, offset, false)?;
        self.urgent |= direct;
        let kind = match mem {
            Mem::Bounce(_) => Kind::BouncedRead { user_offset },
            _ => Kind::Plain,
        };
        let op = Op::Read {
            target,
            ptr,
            len: len as u32,
            offset,
            fixed,
        };
        self.submit_op(token, Some(id), kind, op, mem);
        Ok(())
    }

    /// [`Driver::read`], except that a lone read the engine can do at once
    /// (no other op of its file under way, nothing waiting to be submitted,
    /// its data in the page cache: see [`Engine::read_now`]) is done here,
    /// straight into `buf` (no bounce block: the caller's memory is valid
    /// during the call), and its result returned: the token is then never
    /// used, and nothing completes later. Only a lone one: with reads of
    /// the file in flight, one `io_uring_enter` for many costs less.
    pub fn read_or_now(
        &mut self,
        token: u32,
        id: FileId,
        buf: UserBuf,
        user_offset: usize,
        offset: u64,
    ) -> Result<Option<i32>, i32> {
        let lone = self.files.entry(id).is_ok_and(|e| e.in_flight == 0);
        if lone && self.unflushed == 0 && self.backlog.is_empty() {
            self.refuse_if_closed()?;
            let (e, target) = self.file(id)?;
            if e.direct.is_none() {
                let op = Op::Read {
                    target,
                    ptr: buf.ptr,
                    len: buf.len.min(MAX_IO) as u32,
                    offset,
                    fixed: None,
                };
                if let Some(r) = self.engine.read_now(&op) {
                    self.stats.submitted += 1;
                    self.stats.completed += 1;
                    return Ok(Some(r));
                }
            }
        }
        self.read(token, id, buf, user_offset, offset)
            .map(|()| None)
    }

    /// Writes `buf` at `offset` (or the file position).
    pub fn write(&mut self, token: u32, id: FileId, buf: UserBuf, offset: u64) -> Result<(), i32> {
        let Prepared {
            target,
            mem,
            ptr,
            fixed,
            len,
            direct,
        } = self.prepare_rw(id, buf, offset, true)?;
        self.urgent |= direct;
        let op = Op::Write {
            target,
            ptr,
            len: len as u32,
            offset,
            fixed,
            sync: None,
        };
        let mut e = Self::entry(token, Some(id), Kind::Plain, op, mem);
        e.order = order::Order::Change;
        self.enqueue_one(e);
        Ok(())
    }

    /// Scatter read (`write == false`) or gather write over `bufs`. Library
    /// buffers go to the kernel as they are; any user buffer makes the whole
    /// op go through one bounce block (a read then settles with a
    /// `Bounce` payload whose data the caller scatters in order).
    pub fn vectored(
        &mut self,
        token: u32,
        id: FileId,
        bufs: &[UserBuf],
        offset: u64,
        write: bool,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        if bufs.is_empty() || bufs.len() > MAX_IOV {
            return Err(libc::EINVAL);
        }
        let total = bufs
            .iter()
            .try_fold(0usize, |a, b| a.checked_add(b.len))
            .ok_or(libc::EINVAL)?;
        if total > MAX_IO {
            return Err(libc::EINVAL);
        }
        let (e, target) = self.file(id)?;
        let need = Self::check_direct(e, offset, total)?;
        // Each segment of an O_DIRECT vector must itself be aligned; where one
        // is not, a bounce block joins them into one aligned segment.
        let pins: Option<Vec<Pinned>> = bufs
            .iter()
            .map(|b| {
                self.buffers.lookup(b.ptr, b.len).filter(|_| {
                    (b.ptr as usize).is_multiple_of(need) && (need == 1 || b.len % need == 0)
                })
            })
            .collect();
        let (op, mem, kind) = match pins {
            Some(pins) => {
                let iov: Box<[libc::iovec]> = bufs
                    .iter()
                    .map(|b| libc::iovec {
                        iov_base: b.ptr.cast(),
                        iov_len: b.len,
                    })
                    .collect();
                let (p, count) = (iov.as_ptr(), iov.len() as u32);
                let op = if write {
                    Op::Writev {
                        target,
                        iov: p,
                        count,
                        offset,
                    }
                } else {
                    Op::Readv {
                        target,
                        iov: p,
                        count,
                        offset,
                    }
                };
                (op, Mem::Vectored(iov, pins), Kind::Plain)
            }
            None => {
                let b = self.take_bounce(total)?;
                self.stats.bounced += 1;
                if write {
                    let mut at = 0;
                    for u in bufs {
                        // SAFETY: u is lent for this call; b has `total` bytes.
                        unsafe { std::ptr::copy_nonoverlapping(u.ptr, b.as_ptr().add(at), u.len) };
                        at += u.len;
                    }
                }
                let p = b.as_ptr();
                let op = if write {
                    Op::Write {
                        target,
                        ptr: p,
                        len: total as u32,
                        offset,
                        fixed: None,
                        sync: None,
                    }
                } else {
                    Op::Read {
                        target,
                        ptr: p,
                        len: total as u32,
                        offset,
                        fixed: None,
                    }
                };
                let kind = if write {
                    Kind::Plain
                } else {
                    Kind::BouncedRead { user_offset: 0 }
                };
                (op, Mem::Bounce(b), kind)
            }
        };
        let mut e = Self::entry(token, Some(id), kind, op, mem);
        if write {
            e.order = order::Order::Change;
        }
        self.enqueue_one(e);
        Ok(())
    }

    /// `fsync` or `fdatasync`.
    pub fn sync(&mut self, token: u32, id: FileId, kind: SyncKind) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let (_, target) = self.file(id)?;
        let op = Op::Fsync { target, kind };
        self.submit_op(token, Some(id), Kind::Plain, op, Mem::None);
        Ok(())
    }

    /// `statx` of an open file; settles with `Payload::Stat`.
    pub fn stat(&mut self, token: u32, id: FileId) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let (e, _) = self.file(id)?;
        let fd = e.fd;
        // SAFETY: statx is plain old data; all-zero is a valid value.
        let mut out: Box<Statx> = Box::new(unsafe { std::mem::zeroed() });
        let op = Op::Statx {
            fd,
            out: &mut *out as *mut Statx,
        };
        self.submit_op(token, Some(id), Kind::Stat, op, Mem::Statx(out));
        Ok(())
    }

    /// Truncates (or extends) the file to `len` bytes. Where the engine
    /// lacks `ftruncate`, it is done right here and settles into `out`.
    pub fn truncate(
        &mut self,
        token: u32,
        id: FileId,
        len: u64,
        out: &mut Vec<Done>,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let native = self.engine.supports(Feature::Ftruncate);
        let (e, target) = self.file(id)?;
        if !native {
            // The kernel lacks IORING_OP_FTRUNCATE (< 6.9): a metadata
            // update, short on every filesystem we know.
            let fd = e.fd;
            let done = match self.engine.ftruncate_now(fd, len) {
                Ok(()) => Done {
                    token,
                    result: 0,
                    payload: Payload::None,
                },
                Err(errno) => Done::err(token, errno),
            };
            self.stats.submitted += 1;
            self.counting(out, |_, out| out.push(done));
            return Ok(());
        }
        let op = Op::Ftruncate { target, len };
        let mut e = Self::entry(token, Some(id), Kind::Plain, op, Mem::None);
        e.order = order::Order::Change;
        self.enqueue_one(e);
        Ok(())
    }

    /// Appends `buf` at the end of the file (see `order.rs`: after the
    /// changes submitted before it, at the end of file the kernel sees when
    /// it writes); with `sync`, the write is made durable (on its own: one
    /// write with `RWF_DSYNC`/`RWF_SYNC` or one linked to an
    /// fsync/fdatasync, see [`LoneSync`]; or by an fsync shared with the
    /// other synced appends in flight: see `group_commit.rs`), and the token
    /// settles with the byte count only once the data is durable.
    pub fn append(
        &mut self,
        token: u32,
        id: FileId,
        buf: UserBuf,
        sync: Option<SyncKind>,
    ) -> Result<(), i32> {
        self.refuse_if_closed()?;
        let len = buf.len.min(MAX_IO);
        let Prepared {
            target,
            mem,
            ptr,
            fixed,
            len,
            ..
        } = self.prepare_rw(id, UserBuf { ptr: buf.ptr, len }, END_OF_FILE, true)?;
        let Some(kind) = sync else {
            let op = Op::Write {
                target,
                ptr,
                len: len as u32,
                offset: END_OF_FILE,
                fixed,
                sync: None,
            };
            let mut entry = Self::entry(token, Some(id), Kind::Plain, op, mem);
            entry.order = order::Order::Append;
            self.enqueue_one(entry);
            return Ok(());
        };
        let how = self.sync_alone(id);
        let chain = Chain {
            token,
            file: id,
            data: mem,
            ptr,
            fixed,
            total: len,
            written: 0,
            sync: kind,
            pending: 0,
            write_res: None,
            sync_res: None,
            orphaned: false,
            gated: false,
            how,
        };
        let grouped = chain.grouped();
        let Ok(c) = self.chains.insert(chain) else {
            unreachable!("the chain slab is unbounded")
        };
        if grouped {
            self.batch_append(c, target);
        } else {
            self.submit_chain(c, target, true);
        }
        // The chain's token counts once as submitted.
        self.stats.submitted += 1;
        Ok(())
    }

    /// Submits what is left of chain `c`: the rest of its write linked to
    /// the sync, or as one durable write ([`LoneSync::WriteFlag`]; a
    /// grouped chain: the write alone), or (`write == false`, the data is
    /// all written) the sync alone. The first submission goes through the
    /// file's order gate; the chain holds its place there until its write
    /// is done.
    pub(super) fn submit_chain(&mut self, c: u32, target: Target, write: bool) {
        let ch = self.chains.get_mut(c).expect("live chain");
        let flagged = ch.how == group_commit::Alone::DurableWrite;
        ch.write_res = None;
        ch.sync_res = None;
        let first = !ch.gated;
        let file = Some(ch.file);
        let sync = Self::entry(
            NO_TOKEN,
            file,
            Kind::Chain(c),
            Op::Fsync {
                target,
                kind: ch.sync,
            },
            Mem::None,
        );
        if !write {
            ch.pending = 1;
            self.enqueue(vec![sync]);
            return;
        }
        ch.pending = if ch.grouped() || flagged { 1 } else { 2 };
        // SAFETY: ch.ptr points at ch.total bytes owned by ch.data.
        let ptr = unsafe { ch.ptr.add(ch.written) };
        let op = Op::Write {
            target,
            ptr,
            len: (ch.total - ch.written) as u32,
            offset: END_OF_FILE,
            fixed: ch.fixed,
            // Durable when it completes: no sync follows.
            sync: flagged.then_some(ch.sync),
        };
        let mut w = Self::entry(NO_TOKEN, file, Kind::Chain(c), op, Mem::None);
        if first {
            w.order = order::Order::Append;
        }
        if ch.grouped() || flagged {
            self.enqueue(vec![w]);
            return;
        }
        w.link = Link::Next;
        self.enqueue(vec![w, sync]);
    }

    /// Sends the close of file `id` (settling `token`) to the kernel: its
    /// registered slot goes first (ops in flight held their own reference
    /// to the file; there are none left now).
    pub(super) fn submit_close(&mut self, token: u32, id: FileId) {
        let Ok(e) = self.files.entry_mut(id) else {
            return;
        };
        let (fd, fixed) = (e.fd, e.fixed.take());
        if let Some(slot) = fixed {
            self.engine.unregister_file(slot);
            self.stats.registered_files = self.stats.registered_files.saturating_sub(1);
        }
        self.submit_op(token, Some(id), Kind::Close, Op::Close { fd }, Mem::None);
    }
}

/// Whether open `flags` ask for `O_DIRECT`.
#[cfg(target_os = "linux")]
fn is_direct(flags: i32) -> bool {
    flags & libc::O_DIRECT != 0
}

/// macOS has no `O_DIRECT` flag (its `F_NOCACHE` is an fcntl, and Node's
/// `fs.constants.O_DIRECT` is undefined there), so no open is direct.
#[cfg(not(target_os = "linux"))]
fn is_direct(_flags: i32) -> bool {
    false
}

/// What [`Driver::prepare_rw`] hands back.
struct Prepared {
    target: Target,
    mem: Mem,
    ptr: *mut u8,
    fixed: Option<u16>,
    len: usize,
    direct: bool,
}
