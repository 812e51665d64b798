//! Engines turn ops into kernel work and report completions. The driver
//! above them owns everything else (DESIGN.md: one driver, thin engines).

use crate::file_table::DioAlign;
use crate::op::{Cqe, Link, Op};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

#[cfg(unix)]
pub mod blocking;
#[cfg(unix)]
pub mod buf_ring;
pub mod closed;
pub mod control;
#[cfg(target_os = "linux")]
pub mod eventfd;
#[cfg(target_os = "linux")]
pub mod glibc_compat;
#[cfg(unix)]
pub mod mio;
mod select;
#[cfg(target_os = "linux")]
pub mod sim;
#[cfg(target_os = "linux")]
pub mod uring;

pub use select::{select, Backend, SelectError, Selected};

/// Options an engine is created with.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Submission queue entries.
    pub entries: u32,
    /// Completion queue entries (at least `entries`).
    pub cq_entries: u32,
    /// Kernel-side submission polling thread.
    pub sqpoll: bool,
    /// Slots of the registered file table (0: none).
    pub fixed_files: u32,
    /// Slots of the registered buffer table (0: none).
    pub fixed_buffers: u16,
    /// Most threads of the mio engine's file pool (started as needed).
    /// libuv has 4; more keep more reads in flight on a device that serves
    /// them in parallel (O_DIRECT at 32 in flight: 64k/s with 16 threads,
    /// 51k/s with 8, 34k/s with 4 on the development machine).
    pub file_threads: usize,
    /// The sim engine's seed: its completion order and the crashes it
    /// draws follow from it.
    pub seed: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            entries: 256,
            cq_entries: 1024,
            sqpoll: false,
            fixed_files: 1024,
            fixed_buffers: 1024,
            file_threads: 16,
            seed: 0,
        }
    }
}

/// The longest link chain the driver pushes (a whole-file read's open and
/// two reads): every engine's queue holds at least this many ops, however
/// small `EngineConfig::entries` is, or [`Engine::push_group`] could never
/// take such a chain.
pub const MAX_CHAIN: usize = 3;

/// See [`Engine::set_notify`].
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Optional kernel features an engine may or may not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Ftruncate,
    /// Linked ops (`IOSQE_IO_LINK`): the next op starts only if this one
    /// completed fully.
    Link,
    /// Zero-copy `sendmsg` (`IORING_OP_SENDMSG_ZC`, Linux 6.1).
    SendZc,
    /// Opens into a slot of the registered file table ([`Op::OpenFixed`],
    /// [`Op::CloseFixed`]), so ops linked after an open can use its file.
    FixedOpen,
    /// [`Op::InstallFixed`] (`IORING_OP_FIXED_FD_INSTALL`, Linux 6.8).
    FixedInstall,
}

/// The interface between the driver and a backend.
///
/// Threading: `push`, `flush` and the register calls are made by the
/// driver's thread only (the JS thread). `reap` and `wait` may run on any
/// thread (the completion thread, and the JS thread reaping inline), and
/// so may `submit_queued`, for ops the driver's thread handed over with
/// `prepare_hand_off`.
pub trait Engine: Send + Sync + 'static {
    /// `"io_uring"`, `"mio"`, `"sim"`.
    fn name(&self) -> &'static str;

    /// Queues `op` under `user_data`; `link` says how the next pushed op is
    /// tied to it.
    /// Returns `false` if the queue is full (flush, then push again).
    ///
    /// # Safety
    /// Every pointer in `op` must stay valid, and unaliased by Rust
    /// references, until this op's completion has been reaped.
    unsafe fn push(&self, user_data: u64, op: &Op, link: Link) -> bool;

    /// Queues a link chain (`(user_data, op, link)` each) all at once, or
    /// none of it: `false` if the queue has no room for all of it (flush,
    /// then push again). The kernel never sees part of a chain, also when
    /// it takes entries as soon as they are queued (`SQPOLL`): a chain cut
    /// there runs its ops unlinked.
    ///
    /// # Safety
    /// As for [`Engine::push`], for every op.
    unsafe fn push_group(&self, group: &[(u64, Op, Link)]) -> bool {
        if self.sq_space() < group.len() {
            return false;
        }
        for (user_data, op, link) in group {
            // SAFETY: the caller's guarantee, op by op.
            if !unsafe { self.push(*user_data, op, *link) } {
                return false;
            }
        }
        true
    }

    /// Free entries in the submission queue.
    fn sq_space(&self) -> usize;

    /// A read (`Op::Read`) done at once on the calling thread, if this
    /// engine can: nothing is waiting to be submitted, and the page cache
    /// holds all of it (or it is past the end of the file). Its result
    /// (bytes read), or `None`: the read goes through [`Engine::push`].
    /// The op's memory need only live for the call.
    fn read_now(&self, _op: &Op) -> Option<i32> {
        None
    }

    /// Hands queued ops to the kernel. Returns how many were taken.
    fn flush(&self) -> io::Result<usize>;

    /// Flushes like [`Engine::flush`], then reaps like [`Engine::reap`],
    /// without waking a thread blocked in [`Engine::wait`] for completions
    /// that happen during the flush itself (the caller takes those).
    fn flush_and_reap(&self, out: &mut Vec<Cqe>) -> io::Result<usize> {
        let r = self.flush();
        self.reap(out);
        r
    }

    /// Makes what is queued ready for [`Engine::submit_queued`] from
    /// another thread instead of a flush on this one; `false` if this
    /// engine cannot (then flush as usual).
    fn prepare_hand_off(&self) -> bool {
        false
    }

    /// Submits a part of what is queued: `part(queued)` ops, or more so
    /// that no link chain is cut. Callable from any thread, beside pushes
    /// and flushes on the driver's. Returns how many ops the kernel took
    /// and whether more were queued than that.
    fn submit_queued(&self, _part: fn(usize) -> usize) -> io::Result<(usize, bool)> {
        Ok((0, false))
    }

    /// Whether completions wait to be reaped, seen without a syscall: for
    /// a thread that spins between the parts of a hand-off. An engine that
    /// cannot hand off (see [`Engine::prepare_hand_off`]) need not tell.
    fn has_ready(&self) -> bool {
        false
    }

    /// Moves every ready completion into `out` without blocking.
    fn reap(&self, out: &mut Vec<Cqe>);

    /// Blocks until at least one completion is ready (or [`Engine::wake`]
    /// is called), then reaps like [`Engine::reap`]. May return with `out`
    /// empty if another thread reaped first.
    fn wait(&self, out: &mut Vec<Cqe>) -> io::Result<()>;

    /// Blocks until completions may be ready (or [`Engine::wake`] is
    /// called), without reaping them: for callers that reap under a lock
    /// of their own so that completions keep their order.
    fn wait_ready(&self) -> io::Result<()> {
        Ok(())
    }

    /// Makes a thread blocked in [`Engine::wait`] return (possibly with no
    /// completions). Callable from any thread.
    fn wake(&self);

    /// Registers `len` bytes at `ptr` as fixed buffer `slot`.
    ///
    /// # Safety
    /// The memory must stay allocated until `unregister_buffer(slot)`.
    unsafe fn register_buffer(&self, slot: u16, ptr: *mut u8, len: usize) -> io::Result<()> {
        let _ = (slot, ptr, len);
        Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }
    fn unregister_buffer(&self, slot: u16) {
        let _ = slot;
    }

    /// Installs `fd` in fixed file `slot`.
    fn register_file(&self, slot: u32, fd: i32) -> io::Result<()> {
        let _ = (slot, fd);
        Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }
    fn unregister_file(&self, slot: u32) {
        let _ = slot;
    }

    /// Slots of the registered file table (0, the default: fixed files
    /// unsupported).
    fn fixed_file_slots(&self) -> u32 {
        0
    }
    /// Slots of the registered buffer table (0, the default: fixed buffers
    /// unsupported).
    fn fixed_buffer_slots(&self) -> u16 {
        0
    }

    fn supports(&self, feature: Feature) -> bool;

    /// Registers the provided-buffer ring at `ring_addr` (`entries` slots)
    /// as buffer group `bgid`, for [`crate::op::Op::RecvMulti`].
    ///
    /// # Safety
    /// The ring and its buffers must stay allocated until
    /// `unregister_buf_ring(bgid)` or the engine is dropped.
    unsafe fn register_buf_ring(&self, ring_addr: u64, entries: u16, bgid: u16) -> io::Result<()> {
        let _ = (ring_addr, entries, bgid);
        Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }

    fn unregister_buf_ring(&self, bgid: u16) -> io::Result<()> {
        let _ = bgid;
        Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP))
    }

    /// A descriptor that becomes readable when completions may be ready
    /// (an eventfd), for callers that poll instead of calling `wait`.
    fn notify_fd(&self) -> Option<i32> {
        None
    }

    /// The driver is about to close `fd` itself (not through an op): the
    /// engine stops watching it.
    fn forget_fd(&self, fd: i32) {
        let _ = fd;
    }

    /// The submitting thread is about to sleep (its event loop blocks): it
    /// reaps nothing inline until its next flush. Engines that spare the
    /// completion thread wake-ups during the thread's bursts of flushes
    /// (mio) make sure here that it sees every event from now on.
    fn idle(&self) {}

    /// Sets (or clears) the function the engine's own worker threads call
    /// when they have made completions, instead of waking the thread blocked
    /// in [`Engine::wait_ready`]: that function reaps them on the worker
    /// thread and hands them on, one thread switch less. Engines without
    /// worker threads ignore it. Clearing waits for calls in progress.
    fn set_notify(&self, notify: Option<Notify>) {
        let _ = notify;
    }

    /// What this engine does differently from io_uring, one sentence each
    /// (empty for io_uring itself). `ring.stats()` reports them.
    fn degradations(&self) -> Vec<String> {
        Vec::new()
    }

    // The driver's calls outside ops (see [`control`]): the kernel's by
    // default; an engine that is no kernel answers them from its model.

    /// Closes a descriptor the driver owns and no op uses, after forgetting
    /// it ([`Engine::forget_fd`]), so no engine keeps watching a number the
    /// next open may reuse.
    fn close_fd(&self, fd: i32) {
        self.forget_fd(fd);
        control::close(fd);
    }

    /// The `O_DIRECT` alignment of the open file `fd`.
    fn dio_align(&self, fd: i32) -> DioAlign {
        control::dio_align(fd)
    }

    /// `ftruncate`, done at once, where the engine has no truncate op
    /// ([`Feature::Ftruncate`]).
    fn ftruncate_now(&self, fd: i32, len: u64) -> Result<(), i32> {
        control::ftruncate(fd, len)
    }

    /// A new close-on-exec TCP socket for `addr`'s family.
    fn socket(&self, addr: &SocketAddr) -> Result<i32, i32> {
        control::socket(addr)
    }

    /// `setsockopt` of an `int` option.
    fn set_sock_int(&self, fd: i32, level: i32, name: i32, value: i32) -> Result<(), i32> {
        control::set_int(fd, level, name, value)
    }

    /// Binds `fd` to `sa` (`len` bytes) and listens.
    fn bind_listen(
        &self,
        fd: i32,
        sa: &libc::sockaddr_storage,
        len: libc::socklen_t,
        backlog: i32,
    ) -> Result<(), i32> {
        control::bind_listen(fd, sa, len, backlog)
    }

    /// One non-blocking send of `iov` on socket `fd` from the calling
    /// thread (the submitting one), done before this returns: the bytes the
    /// socket took, or `Err(errno)` (`EAGAIN`: none). The driver tries it
    /// for a large send to a socket with nothing else to send, so the
    /// kernel copies the caller's bytes at once instead of the driver
    /// copying them into library memory first (a node:net write does the
    /// same, `uv_try_write`). An engine that does not offer it answers
    /// `EAGAIN` (the default: the sim and the closed engine), and every send
    /// goes through its ops. Completions the kernel posts during the call
    /// may wake no waiter (io_uring mutes its eventfd for it): the caller
    /// reaps after it, before anything waits.
    fn send_now(&self, fd: i32, iov: &[libc::iovec]) -> Result<usize, i32> {
        let _ = (fd, iov);
        Err(libc::EAGAIN)
    }

    /// The local (`peer == false`) or remote address of socket `fd`.
    fn sock_name(&self, fd: i32, peer: bool) -> Result<libc::sockaddr_storage, i32> {
        control::sock_name(fd, peer)
    }

    /// The sim engine's own controls (crash, ...), if this is it.
    #[cfg(target_os = "linux")]
    fn sim(&self) -> Option<&sim::SimEngine> {
        None
    }
}
