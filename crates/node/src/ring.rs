//! `NativeRing`: the binding's one class. Each method turns JS values into
//! one driver call and returns `0` or `-errno`; results come back through
//! `onBatch(n)`, which reads `n` (token, result) pairs from the shared
//! `results` Float64Array. Extra values (stat records) and the user buffers
//! that bounced reads copy into live in the JS array `bufs`, by token.

use crate::completion::{self, Tsfn};
use crate::js;
use napi::bindgen_prelude::{Buffer, Either, FromNapiValue, Unknown};
use napi::{sys, Env, JsValue, Result};
use napi_derive::napi;
use ringline_core::buffer::{AlignedBuf, Registration};
use ringline_core::driver::{Done, Driver, DriverConfig, NetConfig, Payload, UserBuf};
use ringline_core::engine::{select, Backend, Engine, EngineConfig};
use ringline_core::op::{BlockingCall, Cqe, Statx};
use ringline_core::{FileId, PathOp, SyncKind, CURRENT_POSITION};
use std::ffi::{c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::thread::JoinHandle;

/// JS-thread-only state: references and the threadsafe function.
struct JsState {
    on_batch: sys::napi_ref,
    results: sys::napi_ref,
    bufs: sys::napi_ref,
    /// JS array: received chunks of a batch, by position in the batch
    /// (large ones); small ones are views of the pool Buffer, which sits at
    /// index `cap` with the batch's first offset at `cap + 1`.
    payloads: sys::napi_ref,
    /// The receive pool: a Buffer that small chunks are copied into back to
    /// back (as node:net does with its read pool), so a 64-byte message
    /// costs a view, not an allocation. Null until first used.
    pool: sys::napi_ref,
    pool_ptr: *mut u8,
    pool_used: usize,
    tsfn: Option<Tsfn>,
    thread: Option<JoinHandle<()>>,
    poll: Option<crate::loop_poll::LoopPoll>,
    /// Resumes delivery deferred past the time budget (thread mode).
    timer: Option<crate::loop_poll::LoopTimer>,
    /// Tells the engine when the loop is about to block (thread mode).
    prepare: Option<crate::loop_poll::LoopPrepare>,
    /// The loop iteration (its cached time) of the current run of
    /// threadsafe-function deliveries, and when that run started.
    chain_now: u64,
    chain_start: Option<std::time::Instant>,
    closing: bool,
    finalized: bool,
    hook: *const Shared,
    env: sys::napi_env,
}

// SAFETY: JsState is only touched on the JS thread that created it; the
// Mutex around it exists to satisfy Rust's Sync rules for Shared.
unsafe impl Send for JsState {}

/// What the Ring object, the completion thread, the threadsafe function and
/// the env cleanup hook share.
pub struct Shared {
    pub driver: Mutex<Driver>,
    /// The driver's engine, for the threads that reap without the driver's
    /// lock; replaced by a closed one when the ring is finalized, so its
    /// descriptors go then (see `finalize`).
    engine: RwLock<Arc<dyn Engine>>,
    /// The engine's name (`ring.backend`), also after it is released.
    backend: &'static str,
    /// Set when the completion thread must exit.
    pub stop: AtomicBool,
    /// Completions reaped and not yet settled, in the kernel's order. Every
    /// reap (completion thread, inline after a flush, event-loop poll) goes
    /// into it under its lock, and the JS thread settles from its front:
    /// the events of one stream (a socket's chunks, then its end) can never
    /// overtake each other between two reapers.
    inbox: Mutex<Vec<Cqe>>,
    /// A threadsafe-function call for the inbox is on its way.
    pub posted: AtomicBool,
    /// `onBatch` is running (JS thread). Settlements made meanwhile (a
    /// stream's sink closing a socket, say) wait in `deferred`, so the
    /// shared results array is never overwritten under the running batch.
    delivering: AtomicBool,
    deferred: Mutex<Deferred>,
    /// The threadsafe function is ref'd (ops are pending).
    refed: AtomicBool,
    js: Mutex<JsState>,
    sqpoll: bool,
    entries: u32,
    max_in_flight: u32,
    /// Why io_uring was not used (`backend: 'auto'` fell back to mio).
    fallback_reason: Option<String>,
}

/// How long threadsafe-function deliveries may run in one loop iteration.
const DELIVERY_BUDGET: std::time::Duration = std::time::Duration::from_millis(4);

/// Bytes of the receive pool, and the largest chunk copied into it.
const POOL_SIZE: usize = 64 * 1024;
const POOLED_MAX: usize = 8 * 1024;

/// Settlements waiting for the running `onBatch` to return.
struct Deferred(Vec<Done>);

// SAFETY: the raw pointers in a Done (received chunks) point into the
// driver's receive buffers, which live as long as the driver; Deferred is
// only touched on the JS thread.
unsafe impl Send for Deferred {}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// The ring's engine (a closed one once the ring is finalized).
    pub fn engine(&self) -> Arc<dyn Engine> {
        self.engine
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Reaps what is ready into the inbox; whether the inbox holds any.
    pub fn reap_into_inbox(&self) -> bool {
        let engine = self.engine();
        let mut ib = lock(&self.inbox);
        engine.reap(&mut ib);
        !ib.is_empty()
    }

    /// Takes everything in the inbox, oldest first.
    pub fn take_inbox(&self) -> Vec<Cqe> {
        std::mem::take(&mut *lock(&self.inbox))
    }

    /// Completes a batch in the driver and delivers it (JS thread).
    pub fn process(&self, env: Option<sys::napi_env>, cqes: &[Cqe]) {
        let mut dones = Vec::with_capacity(cqes.len());
        {
            let mut d = lock(&self.driver);
            for c in cqes {
                d.complete(*c, &mut dones);
            }
            let _ = d.flush();
        }
        match env {
            Some(env) => self.deliver(env, dones),
            None => self.discard(dones),
        }
    }

    fn discard(&self, dones: Vec<Done>) {
        let mut d = lock(&self.driver);
        for done in dones {
            match done.payload {
                Payload::Bounce { buf, .. } => d.recycle(buf),
                Payload::Received { bid, .. } => d.recycle_received(bid),
                _ => {}
            }
        }
        let mut more = Vec::new();
        d.after_batch(&mut more);
        let _ = d.flush();
    }

    /// Hands settled ops to JavaScript: copies bounced reads into the user's
    /// buffers, writes (token, result) pairs, calls `onBatch(n)`. A stream's
    /// event that keeps its token pending is written with the token as
    /// `-(token + 1)`; the chunks of receive events go into `payloads` at
    /// the event's position (consecutive chunks of one stream joined into
    /// one Buffer).
    fn deliver(&self, env: sys::napi_env, dones: Vec<Done>) {
        if self.delivering.load(Ordering::Relaxed) {
            lock(&self.deferred).0.extend(dones);
            return;
        }
        self.delivering.store(true, Ordering::Relaxed);
        self.deliver_now(env, dones);
        self.delivering.store(false, Ordering::Relaxed);
        let later = std::mem::take(&mut lock(&self.deferred).0);
        if !later.is_empty() {
            self.deliver(env, later);
        }
    }

    fn deliver_now(&self, env: sys::napi_env, dones: Vec<Done>) {
        let (on_batch, results, bufs, payloads, finalized) = {
            let s = lock(&self.js);
            (s.on_batch, s.results, s.bufs, s.payloads, s.finalized)
        };
        if finalized {
            return self.discard(dones);
        }
        let (Some(on_batch), Some(results), Some(bufs), Some(payloads)) = (
            js::deref(env, on_batch),
            js::deref(env, results),
            js::deref(env, bufs),
            js::deref(env, payloads),
        ) else {
            return self.discard(dones);
        };
        let Some((rptr, rlen)) = js::view_bytes(env, results) else {
            return self.discard(dones);
        };
        let cap = rlen / 16;
        let out = rptr.cast::<f64>();
        let mut n = 0usize;
        let mut spent: Vec<AlignedBuf> = Vec::new();
        let mut bids: Vec<u16> = Vec::new();
        // Whether this segment (events up to the next onBatch call) has
        // chunks in the pool, whose place JS was told.
        let mut pooled = false;
        let mut dones = dones.into_iter().peekable();
        while let Some(done) = dones.next() {
            let mut result = done.result as f64;
            let more = done.payload.more();
            match done.payload {
                Payload::Bounce { buf, user_offset } => {
                    if let Some(target) = js::element(env, bufs, done.token) {
                        copy_out(env, target, user_offset, buf.as_slice());
                    }
                    spent.push(buf);
                }
                Payload::Stat(s) => {
                    if let Some(arr) = js::f64_array(env, &stat_fields(&s)) {
                        js::set_element(env, bufs, done.token, arr);
                    }
                }
                Payload::Received { bid, data } => {
                    // This chunk and the stream's chunks right behind it.
                    let mut parts = vec![(data, done.result as usize)];
                    bids.push(bid);
                    while let Some(Done {
                        token,
                        payload: Payload::Received { .. },
                        ..
                    }) = dones.peek()
                    {
                        if *token != done.token {
                            break;
                        }
                        let Some(Done {
                            result,
                            payload: Payload::Received { bid, data },
                            ..
                        }) = dones.next()
                        else {
                            break;
                        };
                        parts.push((data, result as usize));
                        bids.push(bid);
                    }
                    let total: usize = parts.iter().map(|p| p.1).sum();
                    result = total as f64;
                    if total <= POOLED_MAX {
                        if !self.pool_fits(total) {
                            // The segment's views refer to the old pool:
                            // hand them over before starting a new one.
                            if pooled && n > 0 {
                                js::call(env, on_batch, &[js::number(env, n as f64)]);
                                n = 0;
                            }
                            pooled = false;
                            self.new_pool(env);
                        }
                        if !pooled {
                            pooled = self.announce_pool(env, payloads, cap);
                        }
                        if pooled {
                            self.pool_copy(&parts);
                            // A negative length marks a chunk in the pool
                            // (no other stream event is negative).
                            result = -result;
                        } else if let Some(b) = js::buffer_from_parts(env, &parts, total) {
                            js::set_element(env, payloads, n as u32, b);
                        }
                    } else if let Some(b) = js::buffer_from_parts(env, &parts, total) {
                        js::set_element(env, payloads, n as u32, b);
                    }
                }
                Payload::Call(c) => {
                    if let Some(bytes) = c.output() {
                        let part = [(bytes.as_ptr(), bytes.len())];
                        if let Some(b) = js::buffer_from_parts(env, &part, bytes.len()) {
                            js::set_element(env, bufs, done.token, b);
                        }
                    }
                }
                Payload::Accepted(_) | Payload::Opened(_) | Payload::None => {}
            }
            let token = if more {
                -(f64::from(done.token) + 1.0)
            } else {
                f64::from(done.token)
            };
            // SAFETY: n < cap pairs fit in the results array (rlen bytes);
            // the array is library-internal and never detached.
            unsafe {
                *out.add(2 * n) = token;
                *out.add(2 * n + 1) = result;
            }
            n += 1;
            if n == cap {
                js::call(env, on_batch, &[js::number(env, n as f64)]);
                n = 0;
                pooled = false;
            }
        }
        if n > 0 {
            js::call(env, on_batch, &[js::number(env, n as f64)]);
        }
        let mut extra = Vec::new();
        {
            // Also with nothing to recycle: a receive that ran out of
            // buffers is re-armed here.
            let mut d = lock(&self.driver);
            for b in spent {
                d.recycle(b);
            }
            for b in bids {
                d.recycle_received(b);
            }
            d.after_batch(&mut extra);
            let _ = d.flush();
        }
        if !extra.is_empty() {
            lock(&self.deferred).0.extend(extra);
        }
        self.settle_lifecycle(env);
    }

    /// Whether the threadsafe function's deliveries have run for longer
    /// than [`DELIVERY_BUDGET`] in this loop iteration (see `LoopTimer`).
    /// If so, the rest waits for the timer, which this arms.
    pub fn defer_delivery(&self, env: sys::napi_env) -> bool {
        let now = crate::loop_poll::loop_now(env);
        let mut s = lock(&self.js);
        if s.timer.is_none() || s.finalized {
            return false;
        }
        if now != s.chain_now {
            s.chain_now = now;
            s.chain_start = Some(std::time::Instant::now());
            return false;
        }
        if s.chain_start.is_some_and(|t| t.elapsed() < DELIVERY_BUDGET) {
            return false;
        }
        if let Some(t) = &s.timer {
            t.kick();
        }
        true
    }

    /// The timer of a deferred delivery fired (next loop iteration).
    pub fn on_deferred(&self) {
        let (env, scope) = {
            let mut s = lock(&self.js);
            if s.finalized {
                return;
            }
            let env = s.env;
            s.chain_now = crate::loop_poll::loop_now(env);
            s.chain_start = Some(std::time::Instant::now());
            match &s.timer {
                Some(t) => (env, (t.resource, t.context)),
                None => return,
            }
        };
        crate::loop_poll::in_callback_scope(env, scope.0, scope.1, || {
            self.posted.store(false, Ordering::Release);
            let batch = self.take_inbox();
            if !batch.is_empty() {
                self.process(Some(env), &batch);
            }
        });
    }

    /// Whether `len` more bytes fit in the receive pool.
    fn pool_fits(&self, len: usize) -> bool {
        let s = lock(&self.js);
        !s.pool.is_null() && s.pool_used + len <= POOL_SIZE
    }

    /// Replaces the receive pool with a fresh Buffer (views of the old one
    /// keep it alive as long as JS holds them).
    fn new_pool(&self, env: sys::napi_env) {
        let mut s = lock(&self.js);
        if !s.pool.is_null() {
            js::unreference(env, s.pool);
            s.pool = std::ptr::null_mut();
        }
        if let Some((v, ptr)) = js::new_buffer(env, POOL_SIZE) {
            if let Some(r) = js::reference(env, v) {
                s.pool = r;
                s.pool_ptr = ptr;
                s.pool_used = 0;
            }
        }
    }

    /// Tells JS (`payloads[cap]`, `payloads[cap + 1]`) which pool this
    /// segment's small chunks are in and where the first starts.
    fn announce_pool(&self, env: sys::napi_env, payloads: sys::napi_value, cap: usize) -> bool {
        let (pool, used) = {
            let s = lock(&self.js);
            (s.pool, s.pool_used)
        };
        let Some(v) = js::deref(env, pool) else {
            return false;
        };
        js::set_element(env, payloads, cap as u32, v);
        js::set_element(env, payloads, cap as u32 + 1, js::number(env, used as f64));
        true
    }

    /// Appends a chunk's parts to the pool (room was checked).
    fn pool_copy(&self, parts: &[(*const u8, usize)]) {
        let mut s = lock(&self.js);
        for &(p, len) in parts {
            if !p.is_null() {
                // SAFETY: the pool Buffer has POOL_SIZE bytes and pool_used +
                // the chunk's length fits (pool_fits); p is lent by the driver.
                unsafe { std::ptr::copy_nonoverlapping(p, s.pool_ptr.add(s.pool_used), len) };
            }
            s.pool_used += len;
        }
    }

    /// Refs the threadsafe function while ops are pending (so the process
    /// stays alive), unrefs it when none are, and finishes a requested close
    /// once everything has drained.
    fn settle_lifecycle(&self, env: sys::napi_env) {
        let pending = lock(&self.driver).pending();
        let s = lock(&self.js);
        if s.finalized {
            return;
        }
        let busy = pending > 0;
        if busy != self.refed.load(Ordering::Relaxed) {
            if let Some(p) = &s.poll {
                p.set_ref(busy);
            }
            if let Some(t) = s.tsfn {
                // SAFETY: JS thread; tsfn is live until finalized.
                unsafe {
                    if busy {
                        sys::napi_ref_threadsafe_function(env, t.0);
                    } else {
                        sys::napi_unref_threadsafe_function(env, t.0);
                    }
                }
            }
            self.refed.store(busy, Ordering::Relaxed);
        }
        if s.closing && !busy {
            drop(s);
            self.finalize(env, true);
        }
    }

    /// The ring's eventfd is readable (loop delivery mode): settle what is ready.
    pub fn on_loop_readable(&self) {
        let (env, scope) = {
            let s = lock(&self.js);
            match (&s.poll, s.finalized) {
                (Some(p), false) => (s.env, (p.resource, p.context)),
                _ => return,
            }
        };
        if let Some(fd) = self.engine().notify_fd() {
            crate::loop_poll::drain_eventfd(fd);
        }
        crate::loop_poll::in_callback_scope(env, scope.0, scope.1, || {
            self.reap_into_inbox();
            let batch = self.take_inbox();
            if !batch.is_empty() {
                self.process(Some(env), &batch);
            }
        });
    }

    /// After a submission: ref the threadsafe function on the first pending op.
    pub fn submitted(&self, env: sys::napi_env, r: std::result::Result<(), i32>) -> i32 {
        if r.is_ok() && !self.refed.load(Ordering::Relaxed) {
            self.settle_lifecycle(env);
        }
        status(r)
    }

    /// Like [`Shared::submitted`]; `Ok(true)` also submits at once (the
    /// driver asked for it: ops on O_DIRECT files, see `Driver::take_urgent`).
    pub fn submitted_maybe_now(
        &self,
        env: sys::napi_env,
        r: std::result::Result<bool, i32>,
    ) -> i32 {
        let now = r == Ok(true);
        let st = self.submitted(env, r.map(|_| ()));
        if now {
            self.flush(env);
        }
        st
    }

    /// Submits everything queued in one syscall, then settles whatever the
    /// kernel completed inline (page-cache hits) without a thread hop.
    pub fn flush(&self, env: sys::napi_env) -> i32 {
        if self.delivering.load(Ordering::Relaxed) {
            // Inside onBatch: submit only; completions come the usual way.
            return match lock(&self.driver).flush() {
                Ok(()) => 0,
                Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
            };
        }
        let (r, batch) = {
            let mut d = lock(&self.driver);
            let mut ib = lock(&self.inbox);
            let r = d.flush_and_reap(&mut ib);
            (r, std::mem::take(&mut *ib))
        };
        if !batch.is_empty() {
            self.process(Some(env), &batch);
        }
        match r {
            Ok(()) => 0,
            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// Stops the completion thread, closes remaining files, releases the
    /// threadsafe function and JS references. `notify` calls `onBatch(-1)`.
    fn finalize(&self, env: sys::napi_env, notify: bool) {
        let (thread, tsfn, refs, hook, poll) = {
            let mut s = lock(&self.js);
            if s.finalized {
                return;
            }
            s.finalized = true;
            (
                s.thread.take(),
                s.tsfn.take(),
                (s.on_batch, s.results, s.bufs, s.payloads, s.pool),
                std::mem::replace(&mut s.hook, std::ptr::null()),
                s.poll.take(),
            )
        };
        if let Some(p) = poll {
            p.stop(env);
        }
        let timer = lock(&self.js).timer.take();
        if let Some(t) = timer {
            t.stop(env);
        }
        let prepare = lock(&self.js).prepare.take();
        if let Some(p) = prepare {
            p.stop();
        }
        self.stop_thread(thread);
        lock(&self.driver).finish();
        // Nothing reaps any more (thread joined, poll stopped, notifier
        // cleared): let the engine go, with its descriptors and threads.
        *self.engine.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(ringline_core::engine::closed::ClosedEngine);
        if let Some(t) = tsfn {
            // SAFETY: JS thread; the completion thread is joined, so nothing
            // calls the function any more.
            unsafe {
                sys::napi_release_threadsafe_function(
                    t.0,
                    sys::ThreadsafeFunctionReleaseMode::release,
                )
            };
        }
        if !hook.is_null() {
            // SAFETY: the hook was registered with exactly this fn and arg.
            unsafe {
                sys::napi_remove_env_cleanup_hook(env, Some(env_cleanup), hook as *mut c_void)
            };
            // SAFETY: the hook's Arc, handed out at registration.
            drop(unsafe { Arc::from_raw(hook) });
        }
        if notify {
            if let Some(f) = js::deref(env, refs.0) {
                js::call(env, f, &[js::number(env, -1.0)]);
            }
        }
        for r in [refs.0, refs.1, refs.2, refs.3] {
            js::unreference(env, r);
        }
        if !refs.4.is_null() {
            js::unreference(env, refs.4);
        }
    }

    fn stop_thread(&self, thread: Option<JoinHandle<()>>) {
        self.stop.store(true, Ordering::Release);
        // Worker threads post no more (waits for one posting now).
        self.engine().set_notify(None);
        lock(&self.driver).wake();
        if let Some(t) = thread {
            let _ = t.join();
        }
    }

    /// The env is going away (worker terminated, process exiting) with ops
    /// possibly in flight: cancel them, and wait until the kernel has handed
    /// back every one, so none writes into freed memory. Nothing reaches JS.
    fn teardown(&self, env: sys::napi_env) {
        if lock(&self.js).finalized {
            return;
        }
        let mut dropped = Vec::new();
        lock(&self.driver).shutdown(&mut dropped);
        self.discard(dropped);
        let thread = lock(&self.js).thread.take();
        self.stop_thread(thread);
        let reaped = self.take_inbox();
        self.process(None, &reaped);
        let mut batch = Vec::new();
        let engine = self.engine();
        while lock(&self.driver).pending() > 0 {
            batch.clear();
            if engine.wait(&mut batch).is_err() {
                break;
            }
            self.process(None, &batch);
        }
        self.finalize(env, false);
    }
}

/// Copies a bounced read into the user's view (or, for `readv`, across an
/// array of views in order). A view detached or shrunk meanwhile gets what
/// still fits, which may be nothing: the op settles either way.
fn copy_out(env: sys::napi_env, target: sys::napi_value, user_offset: usize, data: &[u8]) {
    let mut is_array = false;
    // SAFETY: live handle of the current scope.
    unsafe { sys::napi_is_array(env, target, &mut is_array) };
    let write = |v: sys::napi_value, off: usize, src: &[u8]| -> usize {
        match js::view_bytes(env, v) {
            Some((p, len)) if off < len && !p.is_null() => {
                let n = src.len().min(len - off);
                // SAFETY: p is valid for len bytes now (checked this call);
                // [off, off + n) lies inside; src is library memory.
                unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), p.add(off), n) };
                n
            }
            _ => 0,
        }
    };
    if is_array {
        let mut at = 0;
        for i in 0..js::array_len(env, target) {
            if at >= data.len() {
                break;
            }
            let Some(v) = js::element(env, target, i) else {
                break;
            };
            let want = js::view_bytes(env, v).map(|(_, l)| l).unwrap_or(0);
            write(v, 0, &data[at..]);
            at += want;
        }
    } else {
        write(target, user_offset, data);
    }
}

/// A device number from its parts, as `fstat` reports it.
#[cfg(target_os = "linux")]
fn makedev(major: u32, minor: u32) -> f64 {
    libc::makedev(major, minor) as f64
}

/// A device number from its parts, as `fstat` reports it: BSD `dev_t`
/// keeps the major in the top 8 bits and the minor in the low 24.
#[cfg(not(target_os = "linux"))]
fn makedev(major: u32, minor: u32) -> f64 {
    f64::from((major << 24) | (minor & 0x00ff_ffff))
}

fn stat_fields(s: &Statx) -> [f64; 18] {
    let dev = makedev(s.stx_dev_major, s.stx_dev_minor);
    let rdev = makedev(s.stx_rdev_major, s.stx_rdev_minor);
    [
        dev,
        s.stx_ino as f64,
        f64::from(s.stx_mode),
        f64::from(s.stx_nlink),
        f64::from(s.stx_uid),
        f64::from(s.stx_gid),
        rdev,
        s.stx_size as f64,
        f64::from(s.stx_blksize),
        s.stx_blocks as f64,
        s.stx_atime.tv_sec as f64,
        f64::from(s.stx_atime.tv_nsec),
        s.stx_mtime.tv_sec as f64,
        f64::from(s.stx_mtime.tv_nsec),
        s.stx_ctime.tv_sec as f64,
        f64::from(s.stx_ctime.tv_nsec),
        s.stx_btime.tv_sec as f64,
        f64::from(s.stx_btime.tv_nsec),
    ]
}

unsafe extern "C" fn env_cleanup(arg: *mut c_void) {
    // SAFETY: arg is the Arc<Shared> registered with the hook; it is
    // reclaimed here or in finalize (which first removes the hook), once.
    let shared = unsafe { Arc::from_raw(arg as *const Shared) };
    let env = {
        let mut s = lock(&shared.js);
        s.hook = std::ptr::null();
        s.env
    };
    shared.teardown(env);
}

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
    pub zero_copy_sends: f64,
    pub zero_copy_copied: f64,
    pub zero_copy_supported: bool,
    pub recv_buffers_in_use: u32,
    pub recv_rearms: f64,
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
fn blocking_call(
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
        _ => return Err(libc::EINVAL),
    })
}

/// The PathOp of `code` (lib/native.ts `PATH_OPS`), or `-EINVAL`.
fn path_op(
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

fn status(r: std::result::Result<(), i32>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => -e,
    }
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
        };
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
            },
        );
        let refs = (
            js::reference(raw, on_batch.raw()),
            js::reference(raw, results.raw()),
            js::reference(raw, bufs.raw()),
            js::reference(raw, payloads.raw()),
        );
        let (Some(on_batch), Some(results), Some(bufs), Some(payloads)) = refs else {
            return Err(napi::Error::from_reason("cannot reference ring callbacks"));
        };
        let shared = Arc::new(Shared {
            driver: Mutex::new(driver),
            backend: engine.name(),
            engine: RwLock::new(engine.clone()),
            stop: AtomicBool::new(false),
            inbox: Mutex::new(Vec::new()),
            posted: AtomicBool::new(false),
            delivering: AtomicBool::new(false),
            deferred: Mutex::new(Deferred(Vec::new())),
            refed: AtomicBool::new(false),
            js: Mutex::new(JsState {
                on_batch,
                results,
                bufs,
                payloads,
                pool: std::ptr::null_mut(),
                pool_ptr: std::ptr::null_mut(),
                pool_used: 0,
                tsfn: None,
                thread: None,
                poll: None,
                timer: None,
                prepare: None,
                chain_now: u64::MAX,
                chain_start: None,
                closing: false,
                finalized: false,
                hook: std::ptr::null(),
                env: raw,
            }),
            sqpoll: options.sqpoll,
            entries,
            max_in_flight,
            fallback_reason: selected.fallback_reason,
        });
        let loop_mode = options.completion == "loop";
        let hook = Arc::into_raw(shared.clone());
        // SAFETY: JS thread; the hook and its arg stay valid until removed
        // in finalize or run at env teardown.
        unsafe { sys::napi_add_env_cleanup_hook(raw, Some(env_cleanup), hook as *mut c_void) };
        lock(&shared.js).hook = hook;
        if loop_mode {
            let fd = engine
                .notify_fd()
                .ok_or_else(|| napi::Error::from_reason("engine has no notify fd"))?;
            let poll = crate::loop_poll::LoopPoll::start(raw, Arc::as_ptr(&shared), fd)
                .ok_or_else(|| napi::Error::from_reason("uv_poll_init failed"))?;
            lock(&shared.js).poll = Some(poll);
        } else {
            let tsfn = completion::create_tsfn(raw, &shared)?;
            let thread = completion::spawn(shared.clone(), tsfn).map_err(|e| {
                napi::Error::from_reason(format!("cannot start completion thread: {e}"))
            })?;
            engine.set_notify(Some(completion::notifier(&shared, tsfn)));
            let timer = crate::loop_poll::LoopTimer::new(raw, Arc::as_ptr(&shared));
            let prepare = crate::loop_poll::LoopPrepare::start(raw, Arc::as_ptr(&shared));
            let mut s = lock(&shared.js);
            s.tsfn = Some(tsfn);
            s.thread = Some(thread);
            s.timer = timer;
            s.prepare = prepare;
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

    /// The per-op hot path as plain functions bound to this ring:
    /// `{ read, write, readMany, flush }` (see fast.rs).
    #[napi(ts_return_type = "unknown")]
    pub fn fast_path(&self, env: Env) -> Result<Unknown<'_>> {
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
    /// for `code`): `b` the second path (copyFile's destination), `n` the
    /// numbers the call takes (a mode, ids, times, flags). Settles with the
    /// call's bytes, if it made any, in `bufs[token]`.
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
        let num = |i: usize| n.get(i).copied().unwrap_or(0.0);
        let r = file(fid).and_then(|f| {
            let make = |fd: i32| -> std::result::Result<BlockingCall, i32> {
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
            };
            make(-1)?;
            lock(&self.shared.driver)
                .file_call(token, f, |fd| make(fd).expect("code checked above"))
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
            zero_copy_sends: s.zero_copy_sends as f64,
            zero_copy_copied: s.zero_copy_copied as f64,
            zero_copy_supported: s.zero_copy_supported,
            recv_buffers_in_use: s.recv_buffers_in_use as u32,
            recv_rearms: s.recv_rearms as f64,
            degradations: s.degradations,
            sqpoll: self.shared.sqpoll,
            entries: self.shared.entries,
            max_in_flight: self.shared.max_in_flight,
        }
    }

    /// Closes the ring: pending ops settle with ECANCELED now; `onBatch(-1)`
    /// follows once the kernel has handed back every op.
    #[napi]
    pub fn close(&self, env: Env) {
        let mut out = Vec::new();
        {
            let mut s = lock(&self.shared.js);
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
