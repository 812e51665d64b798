//! `NativeRing`: the binding's one class. Each method turns JS values into
//! one driver call and returns `0` or `-errno`; results come back through
//! `onBatch(n)`, which reads `n` (token, result) pairs from the shared
//! `results` Float64Array. Extra values (stat records) and the user buffers
//! that bounced reads copy into live in the JS array `bufs`, by token.

use crate::args::*;
use crate::completion;
use crate::js;
use crate::js_only::JsOnly;
use crate::shared::*;
use napi::bindgen_prelude::{Buffer, Either, FromNapiValue, Unknown};
use napi::{sys, Env, JsValue, Result};
use napi_derive::napi;
use ringline_core::buffer::{AlignedBuf, Registration};
use ringline_core::driver::{Driver, DriverConfig, LoneSync, NetConfig};
use ringline_core::engine::{select, Backend, EngineConfig};
use ringline_core::SyncKind;
use std::ffi::c_void;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock, Weak};

/// How the constructor's error message starts when `backend: 'io_uring'`
/// was asked for and io_uring is not available (TypeScript turns it into
/// the error code `ERR_RINGLINE_IO_URING_UNAVAILABLE`).
const IO_URING_UNAVAILABLE: &str = "io_uring unavailable: ";

/// Options of a native ring (validated in TypeScript).
#[napi(object)]
pub struct NativeRingOptions {
    pub entries: u32,
    /// `"thread"`: completion thread + threadsafe function (DESIGN.md);
    /// `"loop"`: the JS thread's event loop polls the ring's eventfd.
    pub completion: String,
    pub sqpoll: bool,
    pub max_in_flight: u32,
    pub register_buffers: bool,
    pub register_files: bool,
    /// Bytes per provided receive buffer.
    pub recv_buffer_size: u32,
    /// Provided receive buffers (a power of two).
    pub recv_buffers: u16,
    /// Sends of at least this many bytes use SENDMSG_ZC; -1: only when asked.
    pub zero_copy_threshold: f64,
    /// `"auto"` (io_uring, else mio), `"io_uring"` or `"mio"`.
    pub backend: String,
    /// Most threads of the mio engine's file pool.
    pub file_threads: u32,
    /// The sim engine's seed (an integer below 2^53).
    pub seed: f64,
    /// Thread mode on io_uring: the event loop waits on the eventfd itself
    /// at low queue depth (see completion.rs); false where the runtime has
    /// no `uv_poll_init` (Bun aborts in it).
    pub poll_at_low_depth: bool,
    /// Longest spin of the loop before it blocks at low depth, in µs (0:
    /// never; see `ringline_core::busy_poll`).
    pub busy_poll: u32,
    /// How synced appends become durable (RINGLINE_SYNC_APPEND, for
    /// benchmarks; see [`sync_append`]): `""` the default.
    pub sync_append: String,
}

/// `(group_commit, lone_sync)` of a RINGLINE_SYNC_APPEND value: `linked`
/// or `dsync` (every synced append on its own: a write linked to an
/// fdatasync, or one write with RWF_DSYNC), `group+linked` or
/// `group+dsync` (appends in flight together share fsyncs; the lone one
/// goes as said); `""`: the default.
fn sync_append(v: &str) -> Option<(bool, LoneSync)> {
    let d = DriverConfig::default();
    Some(match v {
        "" => (d.group_commit, d.lone_sync),
        "linked" => (false, LoneSync::Linked),
        "dsync" => (false, LoneSync::WriteFlag),
        "group+linked" => (true, LoneSync::Linked),
        "group+dsync" => (true, LoneSync::WriteFlag),
        _ => return None,
    })
}

/// Counters of `ring.stats()`.
#[napi(object)]
pub struct NativeStats {
    pub backend: String,
    pub submitted: f64,
    pub completed: f64,
    pub in_flight: u32,
    pub queued: u32,
    pub open_files: u32,
    pub registered_files: u32,
    pub registered_buffers: u32,
    pub unregistered_buffers: u32,
    pub buffer_registration_failures: u32,
    pub buffer_registration_error: Option<String>,
    pub bounced: f64,
    pub fixed_buffer_ops: f64,
    pub sockets: u32,
    pub sends: f64,
    pub sent_at_once: f64,
    pub zero_copy_sends: f64,
    pub zero_copy_copied: f64,
    pub zero_copy_supported: bool,
    pub recv_buffers_in_use: u32,
    pub recv_rearms: f64,
    /// Ops the completion thread submitted, handed over by the JS thread
    /// at depth (io_uring, thread mode).
    pub handed_off: f64,
    /// Spins of the loop before it blocked that ended with completions
    /// ready (io_uring, thread mode, `busyPoll`).
    pub busy_polls: f64,
    /// What the engine does differently from io_uring (empty on io_uring).
    pub degradations: Vec<String>,
    pub sqpoll: bool,
    pub entries: u32,
    pub max_in_flight: u32,
}

/// One io_uring instance, its driver and its completion thread.
#[napi]
pub struct NativeRing {
    pub(crate) shared: Arc<Shared>,
}

#[napi]
impl NativeRing {
    /// `onBatch(n)` receives results; `results` is a Float64Array of
    /// (token, result) pairs; `bufs` is the JS array indexed by token.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        options: NativeRingOptions,
        on_batch: Unknown,
        results: Unknown,
        bufs: Unknown,
        payloads: Unknown,
    ) -> Result<Self> {
        let raw = env.raw();
        let entries = options.entries.clamp(1, 32768);
        let max_in_flight = options.max_in_flight.max(2);
        let cfg = EngineConfig {
            entries,
            cq_entries: (entries * 2).max(max_in_flight.next_power_of_two()),
            sqpoll: options.sqpoll,
            fixed_files: if options.register_files { 1024 } else { 0 },
            fixed_buffers: if options.register_buffers { 1024 } else { 0 },
            file_threads: options.file_threads.max(1) as usize,
            seed: options.seed as u64,
        };
        let (group_commit, lone_sync) = sync_append(&options.sync_append).ok_or_else(|| {
            napi::Error::from_reason(format!("unknown sync append {:?}", options.sync_append))
        })?;
        let backend = Backend::parse(&options.backend).ok_or_else(|| {
            napi::Error::from_reason(format!("unknown backend {:?}", options.backend))
        })?;
        let selected = select(&cfg, backend).map_err(|e| {
            let prefix = match e.system {
                // lib/errors.ts (backendError) makes this a system error.
                Some((errno, syscall)) => format!("system error {errno} {syscall}: "),
                None if e.io_uring_unavailable => IO_URING_UNAVAILABLE.to_owned(),
                None => String::new(),
            };
            napi::Error::new(
                napi::Status::GenericFailure,
                format!("{prefix}{}", e.reason),
            )
        })?;
        let engine = selected.engine;
        let driver = Driver::new(
            engine.clone(),
            DriverConfig {
                max_in_flight: max_in_flight as usize,
                net: NetConfig {
                    recv_buffer_size: options.recv_buffer_size,
                    recv_buffers: options.recv_buffers,
                    zero_copy_threshold: if options.zero_copy_threshold < 0.0 {
                        usize::MAX
                    } else {
                        options.zero_copy_threshold as usize
                    },
                },
                group_commit,
                lone_sync,
                ..DriverConfig::default()
            },
        );
        let (results_ptr, results_len) = js::view_bytes(raw, results.raw())
            .ok_or_else(|| napi::Error::from_reason("results must be a Float64Array"))?;
        let refs = (
            js::reference(raw, on_batch.raw()),
            js::reference(raw, results.raw()),
            js::reference(raw, bufs.raw()),
            js::reference(raw, payloads.raw()),
        );
        let (Some(on_batch), Some(results), Some(bufs), Some(payloads)) = refs else {
            return Err(napi::Error::from_reason("cannot reference ring callbacks"));
        };
        let loop_mode = options.completion == "loop";
        let shared = Arc::new(Shared {
            driver: Mutex::new(driver),
            backend: engine.name(),
            engine: RwLock::new(engine.clone()),
            stop: AtomicBool::new(false),
            inbox: Mutex::new(Vec::new()),
            posted: AtomicBool::new(false),
            delivering: AtomicBool::new(false),
            in_timer: AtomicBool::new(false),
            deferred: JsOnly::new(Deferred(Vec::new())),
            scratch: JsOnly::new(Default::default()),
            refed: AtomicBool::new(false),
            weak: JsOnly::new(std::collections::HashSet::new()),
            js: JsOnly::new(JsState {
                on_batch,
                results,
                bufs,
                payloads,
                pool: std::ptr::null_mut(),
                args: std::ptr::null_mut(),
                pool_ptr: std::ptr::null_mut(),
                pool_used: 0,
                pool_announced: false,
                tsfn: None,
                thread: None,
                poll: None,
                timer: None,
                prepare: None,
                chain_now: u64::MAX,
                chain_start: None,
                busy: ringline_core::busy_poll::BusyPoll::new(options.busy_poll),
                closing: false,
                finalized: false,
                hook: std::ptr::null(),
                env: raw,
            }),
            results_ptr: std::sync::atomic::AtomicPtr::new(results_ptr.cast()),
            args_ptr: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            // The pairs, then the flags (see `Shared::results_ptr`).
            results_cap: (results_len / 8).saturating_sub(crate::shared::FLAGS) / 2,
            // io_uring's completions ring only its eventfd (mio's thread
            // also drives sockets and timers in its wait).
            hybrid: !loop_mode && engine.name() == "io_uring" && options.poll_at_low_depth,
            js_waits: AtomicBool::new(false),
            threaded: !loop_mode,
            hand_off: Default::default(),
            sqpoll: options.sqpoll,
            entries,
            max_in_flight,
            fallback_reason: selected.fallback_reason,
        });
        let hook = Arc::into_raw(shared.clone());
        // SAFETY: JS thread; the hook and its arg stay valid until removed
        // in finalize or run at env teardown.
        unsafe { sys::napi_add_env_cleanup_hook(raw, Some(env_cleanup), hook as *mut c_void) };
        shared.js.get().hook = hook;
        if loop_mode {
            let fd = engine
                .notify_fd()
                .ok_or_else(|| napi::Error::from_reason("engine has no notify fd"))?;
            let poll = crate::loop_poll::LoopPoll::start(raw, Arc::as_ptr(&shared), fd, false)
                .ok_or_else(|| napi::Error::from_reason("uv_poll_init failed"))?;
            // The timer delivers what a quiet flush reaped (flush_quiet).
            let timer = crate::loop_poll::LoopTimer::new(raw, Arc::as_ptr(&shared));
            let mut s = shared.js.get();
            s.poll = Some(poll);
            s.timer = timer;
        } else {
            let tsfn = completion::create_tsfn(raw, &shared)?;
            let thread = completion::spawn(shared.clone(), tsfn).map_err(|e| {
                napi::Error::from_reason(format!("cannot start completion thread: {e}"))
            })?;
            engine.set_notify(Some(completion::notifier(&shared, tsfn)));
            let timer = crate::loop_poll::LoopTimer::new(raw, Arc::as_ptr(&shared));
            let prepare = crate::loop_poll::LoopPrepare::start(raw, Arc::as_ptr(&shared));
            // At low queue depth the loop waits on the eventfd itself (see
            // completion.rs); paused until the loop first decides so.
            let poll = if shared.hybrid {
                engine.notify_fd().and_then(|fd| {
                    crate::loop_poll::LoopPoll::start(raw, Arc::as_ptr(&shared), fd, true)
                })
            } else {
                None
            };
            let mut s = shared.js.get();
            s.tsfn = Some(tsfn);
            s.thread = Some(thread);
            s.timer = timer;
            s.prepare = prepare;
            s.poll = poll;
        }
        Ok(NativeRing { shared })
    }

    #[napi(getter)]
    pub fn backend(&self) -> String {
        self.shared.backend.to_string()
    }

    /// Why io_uring was not used, or null.
    #[napi(getter)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.shared.fallback_reason.clone()
    }

    fn submitted(&self, env: &Env, r: std::result::Result<(), i32>) -> i32 {
        self.shared.submitted(env.raw(), r)
    }

    /// The per-op hot path as plain functions bound to this ring (see
    /// fast.rs); `args`, a Float64Array of at least 5 (and over 64 bytes,
    /// so that V8 keeps it off its heap: its memory never moves), carries
    /// the numbers of `read` and `write`.
    #[napi(ts_return_type = "unknown")]
    pub fn fast_path(&self, env: Env, args: Unknown) -> Result<Unknown<'_>> {
        let raw = env.raw();
        let (p, _) = js::view_bytes(raw, args.raw())
            .filter(|(p, len)| !p.is_null() && *len > 64 && (*p as usize).is_multiple_of(8))
            .ok_or_else(|| napi::Error::from_reason("args must be a Float64Array over 64 bytes"))?;
        let r = js::reference(raw, args.raw())
            .ok_or_else(|| napi::Error::from_reason("cannot reference args"))?;
        {
            let mut s = self.shared.js.get();
            if s.finalized {
                js::unreference(raw, r);
                return Err(napi::Error::from_reason("ring is closed"));
            }
            if !s.args.is_null() {
                js::unreference(raw, s.args);
            }
            s.args = r;
            self.shared
                .args_ptr
                .store(p.cast(), std::sync::atomic::Ordering::Relaxed);
        }
        let obj = crate::fast::functions(env.raw(), &self.shared)?;
        // SAFETY: obj is a live value of this env.
        unsafe { Unknown::from_napi_value(env.raw(), obj) }
    }

    #[napi]
    pub fn open(
        &self,
        env: Env,
        token: u32,
        path: Either<String, Buffer>,
        flags: i32,
        mode: u32,
    ) -> i32 {
        let Some(path) = c_path(path) else {
            return -libc::EINVAL;
        };
        let r = lock(&self.shared.driver).open(token, path, flags, mode);
        self.submitted(&env, r)
    }

    /// `bufs` is a JS array of views, each used whole.
    #[napi]
    pub fn vectored(
        &self,
        env: Env,
        token: u32,
        fid: f64,
        bufs: Unknown,
        pos: f64,
        write: bool,
    ) -> i32 {
        let r = views(env.raw(), bufs.raw()).and_then(|v| {
            lock(&self.shared.driver).vectored(token, file(fid)?, &v, position(pos), write)
        });
        self.submitted(&env, r)
    }

    /// Appends the whole view. `sync`: 0 none, 1 fdatasync, 2 fsync.
    #[napi]
    pub fn append(&self, env: Env, token: u32, fid: f64, buf: Unknown, sync: u32) -> i32 {
        let r = (|| {
            let len = js::view_bytes(env.raw(), buf.raw()).ok_or(libc::EINVAL)?.1;
            let ub = view(env.raw(), buf.raw(), 0.0, len as f64)?;
            let kind = match sync {
                0 => None,
                1 => Some(SyncKind::Data),
                _ => Some(SyncKind::Full),
            };
            lock(&self.shared.driver).append(token, file(fid)?, ub, kind)
        })();
        self.submitted(&env, r)
    }

    #[napi]
    pub fn sync(&self, env: Env, token: u32, fid: f64, datasync: bool) -> i32 {
        let kind = if datasync {
            SyncKind::Data
        } else {
            SyncKind::Full
        };
        let r = file(fid).and_then(|f| lock(&self.shared.driver).sync(token, f, kind));
        self.submitted(&env, r)
    }

    /// An op on names (see `PATH_OPS` in lib/native.ts for `code`): `a` the
    /// path (or a rename's, link's source, a symlink's target), `b` the
    /// second path where there is one, `mode` for mkdir.
    #[napi]
    pub fn path_op(
        &self,
        env: Env,
        token: u32,
        code: u32,
        a: Either<String, Buffer>,
        b: Option<Either<String, Buffer>>,
        mode: u32,
    ) -> i32 {
        let r =
            path_op(code, a, b, mode).and_then(|op| lock(&self.shared.driver).path_op(token, op));
        self.submitted(&env, r)
    }

    /// A call of the blocking lane on a path (see `CALLS` in lib/native.ts
    /// for `code`): `b` the second path (copyFile's destination) or the
    /// bytes writeFile writes, `n` the numbers the call takes (a mode, ids,
    /// times, flags). Settles with the call's bytes, if it made any, in
    /// `bufs[token]`.
    #[napi]
    pub fn call(
        &self,
        env: Env,
        token: u32,
        code: u32,
        a: Either<String, Buffer>,
        b: Option<Either<String, Buffer>>,
        n: Vec<f64>,
    ) -> i32 {
        let r =
            blocking_call(code, a, b, &n).and_then(|c| lock(&self.shared.driver).call(token, c));
        self.submitted(&env, r)
    }

    /// A call of the blocking lane on an open file: `code` 0 fchmod(mode),
    /// 1 fchown(uid, gid), 2 futimens(atime s, ns, mtime s, ns).
    #[napi]
    pub fn file_call(&self, env: Env, token: u32, code: u32, fid: f64, n: Vec<f64>) -> i32 {
        let r = file(fid).and_then(|f| {
            lock(&self.shared.driver).file_call(token, f, |fd| file_blocking_call(code, fd, &n))
        });
        self.submitted(&env, r)
    }

    #[napi]
    pub fn stat(&self, env: Env, token: u32, fid: f64) -> i32 {
        let r = file(fid).and_then(|f| lock(&self.shared.driver).stat(token, f));
        self.submitted(&env, r)
    }

    #[napi]
    pub fn truncate(&self, env: Env, token: u32, fid: f64, len: f64) -> i32 {
        let mut out = Vec::new();
        let r = file(fid)
            .and_then(|f| lock(&self.shared.driver).truncate(token, f, len as u64, &mut out));
        if !out.is_empty() {
            self.shared.deliver(env.raw(), out);
        }
        self.submitted(&env, r)
    }

    /// Closes a file; its pending ops settle with ECANCELED right away
    /// (through `onBatch`), the close itself when the fd is closed.
    #[napi]
    pub fn close_file(&self, env: Env, token: u32, fid: f64) -> i32 {
        let mut out = Vec::new();
        let r = file(fid).and_then(|f| lock(&self.shared.driver).close_file(token, f, &mut out));
        if !out.is_empty() {
            self.shared.deliver(env.raw(), out);
        }
        self.submitted(&env, r)
    }

    /// Settles `token` with ECANCELED if it is pending; returns whether it was.
    #[napi]
    pub fn cancel(&self, env: Env, token: u32) -> bool {
        let mut out = Vec::new();
        let hit = lock(&self.shared.driver).cancel(token, &mut out);
        if !out.is_empty() {
            self.shared.deliver(env.raw(), out);
        }
        if hit {
            // The cancel must reach the kernel now: a cancelled read left
            // there would take data meant for later reads.
            self.shared.flush(env.raw());
        }
        hit
    }

    /// `[fd, dioMemAlign, dioOffsetAlign, appendMode]`, or `null` for a
    /// closed or stale handle.
    #[napi]
    pub fn file_info(&self, fid: f64) -> Option<Vec<f64>> {
        let f = file(fid).ok()?;
        let (fd, dio, append) = lock(&self.shared.driver).file_info(f).ok()?;
        let (m, o) = dio
            .map(|a| (f64::from(a.mem), f64::from(a.offset)))
            .unwrap_or((0.0, 0.0));
        Some(vec![f64::from(fd), m, o, if append { 1.0 } else { 0.0 }])
    }

    /// `size` zeroed bytes, 4096-aligned, owned by the library and
    /// registered with the kernel where possible: ops on it are zero-copy.
    #[napi(ts_return_type = "Buffer")]
    pub fn alloc_aligned(&self, env: Env, size: f64) -> Result<Unknown<'_>> {
        let size = size as usize;
        let (buf, _reg): (Arc<AlignedBuf>, Registration) = lock(&self.shared.driver)
            .alloc_aligned(size)
            .map_err(|e| napi::Error::from_reason(format!("allocAligned({size}): {e}")))?;
        let ptr = buf.as_ptr();
        let hint = Box::into_raw(Box::new(AlignedHint {
            buf,
            ring: Arc::downgrade(&self.shared),
        }));
        let mut out = std::ptr::null_mut();
        // SAFETY: ptr is valid for `size` bytes as long as the hint (which
        // holds the Arc) lives; the finalizer frees the hint exactly once.
        let st = unsafe {
            sys::napi_create_external_buffer(
                env.raw(),
                size,
                ptr.cast(),
                Some(free_aligned),
                hint.cast(),
                &mut out,
            )
        };
        if st != sys::Status::napi_ok {
            // SAFETY: the buffer was not created, so the hint is still ours.
            let h = unsafe { Box::from_raw(hint) };
            if let Some(r) = h.ring.upgrade() {
                lock(&r.driver).release_aligned(ptr as usize);
            }
            return Err(napi::Error::from_reason(
                "napi_create_external_buffer failed",
            ));
        }
        let _ = env.adjust_external_memory(size as i64);
        // SAFETY: out is a live value of this env.
        unsafe { Unknown::from_napi_value(env.raw(), out) }
    }

    #[napi]
    pub fn stats(&self) -> NativeStats {
        let s = lock(&self.shared.driver).stats();
        NativeStats {
            backend: self.shared.backend.to_string(),
            submitted: s.submitted as f64,
            completed: s.completed as f64,
            in_flight: s.in_flight as u32,
            queued: s.queued as u32,
            open_files: s.open_files as u32,
            registered_files: s.registered_files as u32,
            registered_buffers: s.registered_buffers as u32,
            unregistered_buffers: s.unregistered_buffers as u32,
            buffer_registration_failures: s.buffer_registration_failures as u32,
            buffer_registration_error: s.buffer_registration_errno.map(errno_name),
            bounced: s.bounced as f64,
            fixed_buffer_ops: s.fixed_buffer_ops as f64,
            sockets: s.sockets as u32,
            sends: s.sends as f64,
            sent_at_once: s.sent_at_once as f64,
            zero_copy_sends: s.zero_copy_sends as f64,
            zero_copy_copied: s.zero_copy_copied as f64,
            zero_copy_supported: s.zero_copy_supported,
            recv_buffers_in_use: s.recv_buffers_in_use as u32,
            recv_rearms: s.recv_rearms as f64,
            handed_off: self.shared.hand_off.submitted() as f64,
            busy_polls: self.shared.js.get().busy.caught as f64,
            degradations: s.degradations,
            sqpoll: self.shared.sqpoll,
            entries: self.shared.entries,
            max_in_flight: self.shared.max_in_flight,
        }
    }

    fn sim_engine(&self) -> napi::Result<SimRef> {
        let engine = self.shared.engine();
        if engine.sim().is_none() {
            return Err(napi::Error::from_reason("not a sim ring"));
        }
        Ok(SimRef(engine))
    }

    /// Power loss on a sim ring: `mode` 0 loses everything unsynced, 1
    /// keeps it all, 2 draws what survives from the seed. Every open file of
    /// the ring answers EBADF from now on. Throws on other engines.
    #[napi]
    pub fn sim_crash(&self, mode: u32) -> napi::Result<()> {
        use ringline_core::engine::sim::disk::CrashMode;
        let engine = self.shared.engine();
        let sim = engine
            .sim()
            .ok_or_else(|| napi::Error::from_reason("not a sim ring"))?;
        let mode = match mode {
            0 => CrashMode::Pessimistic,
            1 => CrashMode::Optimistic,
            _ => CrashMode::Random,
        };
        // Ops queued in the driver go to the disk before the power does.
        let _ = lock(&self.shared.driver).flush();
        sim.crash(mode);
        Ok(())
    }

    /// Adds a fault rule to a sim ring (validated in TypeScript): `kind` 0
    /// fails with `errno`, 1 loses a write, 2 makes a read or write short,
    /// 3 flips a bit of a read, 4 tears a write, 5 misdirects a write, 6
    /// delays the op by `delay_us` of virtual time; `op` and `path` (a
    /// substring) select, or match anything when null.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn sim_fault(
        &self,
        op: Option<String>,
        path: Option<napi::bindgen_prelude::Buffer>,
        kind: u32,
        errno: i32,
        after: f64,
        times: f64,
        per_million: u32,
        delay_us: f64,
    ) -> napi::Result<()> {
        use ringline_core::engine::sim::fault::{Fault, FaultKind};
        let engine = self.shared.engine();
        let sim = engine
            .sim()
            .ok_or_else(|| napi::Error::from_reason("not a sim ring"))?;
        let kind = match kind {
            0 => FaultKind::Error(errno),
            1 => FaultKind::Lost,
            2 => FaultKind::Short,
            3 => FaultKind::Bitflip,
            4 => FaultKind::Torn,
            5 => FaultKind::Misdirected,
            _ => FaultKind::Delay((delay_us.max(0.0) * 1000.0) as u64),
        };
        sim.add_fault(Fault {
            op,
            path: path.map(|b| b.to_vec()),
            kind,
            after: after as u64,
            times: if times.is_finite() {
                times as u64
            } else {
                u64::MAX
            },
            per_million,
            seen: 0,
            hits: 0,
        });
        Ok(())
    }

    /// Removes a sim ring's fault rules.
    #[napi]
    pub fn sim_clear_faults(&self) -> napi::Result<()> {
        let engine = self.shared.engine();
        let sim = engine
            .sim()
            .ok_or_else(|| napi::Error::from_reason("not a sim ring"))?;
        sim.clear_faults();
        Ok(())
    }

    /// A sim ring's point: ops run so far.
    #[napi]
    pub fn sim_point(&self) -> napi::Result<f64> {
        Ok(self.sim_engine()?.point() as f64)
    }

    /// Starts or stops recording a sim ring's disk after each op.
    #[napi]
    pub fn sim_record(&self, on: bool) -> napi::Result<()> {
        // What the workload queued reaches the disk while recording.
        let _ = lock(&self.shared.driver).flush();
        self.sim_engine()?.record(on);
        Ok(())
    }

    /// Builds the crash states of the last recording; returns how many,
    /// negative when `limit` cut the list short.
    #[napi]
    /// `torn`: 0 none, 1 each write's first half, 2 each prefix of sectors.
    pub fn sim_build_states(&self, torn: u32, reorder: bool, limit: u32) -> napi::Result<f64> {
        use ringline_core::engine::sim::Torn;
        let torn = match torn {
            0 => Torn::No,
            1 => Torn::Half,
            _ => Torn::EverySector,
        };
        let (n, cut) = self
            .sim_engine()?
            .build_states(torn, reorder, limit as usize);
        Ok(if cut { -(n as f64) } else { n as f64 })
    }

    /// Puts crash state `i` on a sim ring's disk (no file open); returns
    /// its point, or -1 if there is no such state.
    #[napi]
    pub fn sim_load_state(&self, i: u32) -> napi::Result<f64> {
        Ok(self
            .sim_engine()?
            .load_state(i as usize)
            .map_or(-1.0, |p| p as f64))
    }

    /// Cuts a sim ring's network: every connection with an end on `port`
    /// (every connection when null) carries nothing until `sim_heal`.
    #[napi]
    pub fn sim_partition(&self, port: Option<u32>) -> napi::Result<()> {
        let sim = self.sim_engine()?;
        // What was queued before the cut goes out before it.
        let _ = lock(&self.shared.driver).flush();
        sim.partition(port.map(|p| p as u16));
        Ok(())
    }

    /// Moves a sim ring's virtual time on by `ms` milliseconds.
    #[napi]
    pub fn sim_advance(&self, ms: f64) -> napi::Result<()> {
        let sim = self.sim_engine()?;
        let _ = lock(&self.shared.driver).flush();
        sim.advance((ms.max(0.0) * 1e6) as u64);
        Ok(())
    }

    /// Removes a sim ring's partitions: what they held back travels on.
    #[napi]
    pub fn sim_heal(&self) -> napi::Result<()> {
        let sim = self.sim_engine()?;
        let _ = lock(&self.shared.driver).flush();
        sim.heal();
        Ok(())
    }

    /// A sim ring's trace: one line per op run.
    #[napi]
    pub fn sim_trace(&self) -> napi::Result<Vec<String>> {
        let engine = self.shared.engine();
        let sim = engine
            .sim()
            .ok_or_else(|| napi::Error::from_reason("not a sim ring"))?;
        Ok(sim.trace())
    }

    /// Closes the ring: pending ops settle with ECANCELED now; `onBatch(-1)`
    /// follows once the kernel has handed back every op.
    #[napi]
    pub fn close(&self, env: Env) {
        let mut out = Vec::new();
        {
            let mut s = self.shared.js.get();
            if s.closing || s.finalized {
                return;
            }
            s.closing = true;
        }
        lock(&self.shared.driver).shutdown(&mut out);
        self.shared.deliver(env.raw(), out);
        // deliver() finalizes when nothing is pending; else the last
        // completion does.
        self.shared.settle_lifecycle(env.raw());
    }
}

struct AlignedHint {
    buf: Arc<AlignedBuf>,
    ring: Weak<Shared>,
}

unsafe extern "C" fn free_aligned(env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: hint is the Box created in alloc_aligned, freed only here.
    let h = unsafe { Box::from_raw(hint as *mut AlignedHint) };
    if let Some(r) = h.ring.upgrade() {
        lock(&r.driver).release_aligned(h.buf.as_ptr() as usize);
    }
    let mut adjusted = 0;
    // SAFETY: finalizers run on the JS thread with a live env.
    unsafe { sys::napi_adjust_external_memory(env, -(h.buf.len() as i64), &mut adjusted) };
}

fn errno_name(e: i32) -> String {
    match e {
        libc::ENOMEM => "ENOMEM".into(),
        libc::EPERM => "EPERM".into(),
        libc::EFAULT => "EFAULT".into(),
        libc::EINVAL => "EINVAL".into(),
        libc::EOVERFLOW => "EOVERFLOW".into(),
        libc::EBUSY => "EBUSY".into(),
        e => format!("errno {e}"),
    }
}

/// A sim ring's engine, checked to be the sim (see `NativeRing::sim_engine`).
struct SimRef(std::sync::Arc<dyn ringline_core::engine::Engine>);

impl std::ops::Deref for SimRef {
    type Target = ringline_core::engine::sim::SimEngine;

    fn deref(&self) -> &Self::Target {
        self.0.sim().expect("checked in sim_engine")
    }
}
