//! What a ring's JS object, its completion thread, its threadsafe function
//! and the env cleanup hook share (`Shared`): the driver, the inbox of
//! reaped completions, and the JS-thread state that delivers them to
//! `onBatch` (the receive pool, deferred settlements, the time budget), and
//! the ring's end (finalize, teardown).

use crate::args::status;
use crate::js;
use crate::js::Tsfn;
use crate::js_only::JsOnly;
use crate::payload::{copy_out, stat_fields};
use napi::sys;
use ringline_core::buffer::AlignedBuf;
use ringline_core::driver::{Done, Driver, Payload};
use ringline_core::engine::Engine;
use ringline_core::op::Cqe;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

/// JS-thread-only state: references and the threadsafe function.
pub(crate) struct JsState {
    pub(crate) on_batch: sys::napi_ref,
    pub(crate) results: sys::napi_ref,
    pub(crate) bufs: sys::napi_ref,
    /// JS array: received chunks of a batch, by position in the batch
    /// (large ones); small ones are views of the pool Buffer, which sits at
    /// index `cap` (the batch's first offset is the results array's
    /// [`POOL_OFFSET`] flag).
    pub(crate) payloads: sys::napi_ref,
    /// The receive pool: a Buffer that small chunks are copied into back to
    /// back (as node:net does with its read pool), so a 64-byte message
    /// costs a view, not an allocation. Null until first used.
    pub(crate) pool: sys::napi_ref,
    /// The `args` Float64Array of the fast path (see `Shared::args_ptr`);
    /// null until `fastPath(args)`.
    pub(crate) args: sys::napi_ref,
    pub(crate) pool_ptr: *mut u8,
    pub(crate) pool_used: usize,
    /// `payloads[cap]` holds the current pool (set once per pool, not per
    /// batch: two `napi_set_element`s cost 3,000 instructions per
    /// ping-pong round trip).
    pub(crate) pool_announced: bool,
    pub(crate) tsfn: Option<Tsfn>,
    pub(crate) thread: Option<JoinHandle<()>>,
    pub(crate) poll: Option<crate::loop_poll::LoopPoll>,
    /// Resumes delivery deferred past the time budget (thread mode).
    pub(crate) timer: Option<crate::loop_poll::LoopTimer>,
    /// Tells the engine when the loop is about to block (thread mode).
    pub(crate) prepare: Option<crate::loop_poll::LoopPrepare>,
    /// The loop iteration (its cached time) of the current run of
    /// threadsafe-function deliveries, and when that run started.
    pub(crate) chain_now: u64,
    pub(crate) chain_start: Option<std::time::Instant>,
    /// Spinning before the loop blocks (`Shared::busy_poll`).
    pub(crate) busy: ringline_core::busy_poll::BusyPoll,
    pub(crate) closing: bool,
    pub(crate) finalized: bool,
    pub(crate) hook: *const Shared,
    pub(crate) env: sys::napi_env,
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
    pub(crate) engine: RwLock<Arc<dyn Engine>>,
    /// The engine's name (`ring.backend`), also after it is released.
    pub(crate) backend: &'static str,
    /// Set when the completion thread must exit.
    pub stop: AtomicBool,
    /// Completions reaped and not yet settled, in the kernel's order. Every
    /// reap (completion thread, inline after a flush, event-loop poll) goes
    /// into it under its lock, and the JS thread settles from its front:
    /// the events of one stream (a socket's chunks, then its end) can never
    /// overtake each other between two reapers.
    pub(crate) inbox: Mutex<Vec<Cqe>>,
    /// A threadsafe-function call for the inbox is on its way.
    pub posted: AtomicBool,
    /// `onBatch` is running (JS thread). Settlements made meanwhile (a
    /// stream's sink closing a socket, say) wait in `deferred`, so the
    /// shared results array is never overwritten under the running batch.
    pub(crate) delivering: AtomicBool,
    /// Inside the loop timer's delivery (`on_deferred`, microtasks
    /// included): a quiet flush must not restart that timer (see
    /// `flush_quiet`).
    pub(crate) in_timer: AtomicBool,
    pub(crate) deferred: JsOnly<Deferred>,
    /// Vectors a delivery reuses (see [`Scratch`]).
    pub(crate) scratch: JsOnly<Scratch>,
    /// The threadsafe function is ref'd (ops are pending).
    pub(crate) refed: AtomicBool,
    /// Tokens of pending streams that must not keep the process alive
    /// (an unref'd socket's receive stream). JS thread only.
    pub(crate) weak: JsOnly<std::collections::HashSet<u32>>,
    pub(crate) js: JsOnly<JsState>,
    /// The `results` Float64Array's memory, looked up once: its ArrayBuffer
    /// is library-internal (never detached or transferred), kept alive by
    /// `JsState::results` until `finalize` (which nulls this), and its
    /// backing store never moves (16 KiB: V8 keeps typed arrays over 64
    /// bytes off its heap). `results_cap` (token, result) pairs, then
    /// [`FLAGS`] flags: [`JS_BUSY`], [`JS_DEFERRED`], [`FLUSH_PENDING`] and
    /// [`POOL_OFFSET`].
    pub(crate) results_ptr: AtomicPtr<f64>,
    pub(crate) results_cap: usize,
    /// The fast path's `args` memory (5 f64s that JavaScript writes before
    /// `read` and `write`): library-internal, never detached, kept alive by
    /// `JsState::args` until `finalize` (which nulls this).
    pub(crate) args_ptr: AtomicPtr<f64>,
    /// Thread mode on io_uring: at low queue depth the JS thread's loop
    /// waits on the eventfd itself and the completion thread is parked
    /// (see `completion.rs`).
    pub(crate) hybrid: bool,
    /// The JS thread's loop is the one waiting (its poll runs); the
    /// completion thread leaves the eventfd alone.
    pub(crate) js_waits: AtomicBool,
    /// Thread mode: a completion thread runs (it may take submitting over
    /// at depth, see `hand_off`).
    pub(crate) threaded: bool,
    pub(crate) hand_off: crate::completion::HandOff,
    pub(crate) sqpoll: bool,
    pub(crate) entries: u32,
    pub(crate) max_in_flight: u32,
    /// Why io_uring was not used (`backend: 'auto'` fell back to mio).
    pub(crate) fallback_reason: Option<String>,
}

/// `results[2 * cap + JS_BUSY]` is non-zero while JavaScript's `onBatch`
/// runs (it sets and clears it): a delivery then waits in `deferred`, and
/// sets `results[2 * cap + JS_DEFERRED]`, after which `onBatch` calls
/// `flush()` to take it. (`fast.flush` leaves its batch's last pairs for
/// JavaScript to settle, so `onBatch` also runs outside any native call.)
const JS_BUSY: usize = 0;
const JS_DEFERRED: usize = 1;
/// `results[2 * cap + FLUSH_PENDING]` is 1 while JavaScript has a flush of
/// its own scheduled (lib/core.ts sets it in `schedule` and clears it in
/// `flush`): what a quiet flush reaped is taken by it (see `flush_quiet`).
const FLUSH_PENDING: usize = 2;
/// `results[2 * cap + POOL_OFFSET]`: where in the pool (`payloads[cap]`)
/// the batch's first pooled chunk starts.
const POOL_OFFSET: usize = 3;
/// The f64s after the pairs (lib/core.ts sizes `results` to match).
pub(crate) const FLAGS: usize = 4;

/// How long threadsafe-function deliveries may run in one loop iteration.
const DELIVERY_BUDGET: std::time::Duration = std::time::Duration::from_millis(4);

/// Bytes of the receive pool, and the largest chunk copied into it.
const POOL_SIZE: usize = 64 * 1024;
const POOLED_MAX: usize = 8 * 1024;

/// A JS value behind a reference, looked up on first use.
struct LazyRef {
    r: sys::napi_ref,
    v: Option<sys::napi_value>,
}

impl LazyRef {
    fn new(r: sys::napi_ref) -> LazyRef {
        LazyRef { r, v: None }
    }

    fn get(&mut self, env: sys::napi_env) -> Option<sys::napi_value> {
        if self.v.is_none() {
            self.v = js::deref(env, self.r);
        }
        self.v
    }
}

/// Settlements waiting for the running `onBatch` to return.
pub(crate) struct Deferred(pub(crate) Vec<Done>);

/// The vectors of a flush and a delivery, kept with their capacity between
/// batches: each was allocated and freed per batch or per chunk before
/// (about 1,500 instructions of malloc and free per ping-pong round trip).
/// Taken while in use; a nested use finds empty ones and allocates.
#[derive(Default)]
pub(crate) struct Scratch {
    cqes: Vec<Cqe>,
    dones: Vec<Done>,
    parts: Vec<(*const u8, usize)>,
    bids: Vec<u16>,
    spent: Vec<AlignedBuf>,
}

// SAFETY: as for Deferred: the pointers are the driver's receive buffers,
// and Scratch holds none between uses (its vectors are cleared); it is only
// touched on the JS thread.
unsafe impl Send for Scratch {}

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

    /// Reaps what is ready into the inbox; how many it took, and whether
    /// the inbox holds any.
    pub fn reap_into_inbox(&self) -> (usize, bool) {
        let engine = self.engine();
        let mut ib = lock(&self.inbox);
        let before = ib.len();
        engine.reap(&mut ib);
        (ib.len() - before, !ib.is_empty())
    }

    /// Takes everything in the inbox, oldest first.
    pub fn take_inbox(&self) -> Vec<Cqe> {
        std::mem::take(&mut *lock(&self.inbox))
    }

    /// Submits what the driver queued on the JS thread while completions
    /// are being handled (re-armed receives, the rest of a short send, the
    /// sends JS queued inside `onBatch`), with the kernel's eventfd muted:
    /// what completes inline goes into the inbox, and the loop's timer
    /// delivers it on the next iteration, unless JS has a flush scheduled
    /// (it takes the inbox; a handler that wrote scheduled one). A plain
    /// submit here woke the completion thread for every such completion:
    /// in a 64 B ping-pong on
    /// one connection, a thread wake-up, a threadsafe-function call and a
    /// loop iteration per round trip.
    fn flush_quiet(&self, d: &mut Driver) {
        if !d.has_unflushed() {
            return;
        }
        let reaped = {
            let mut ib = lock(&self.inbox);
            // A failed submit is ignored here, as the plain flush here
            // always did: the ops stay queued for the next flush.
            let _ = self.submit_and_reap(d, &mut ib);
            !ib.is_empty()
        };
        if !reaped {
            return;
        }
        if self.flag_set(FLUSH_PENDING) {
            // The flush JS has scheduled takes the inbox.
            return;
        }
        let s = self.js.get();
        if self.in_timer.load(Ordering::Relaxed) {
            // The libuv of node 20 (1.46) runs a zero-delay timer restarted
            // by its own callback again in the same pass, with no end while
            // every pass completes more (a ping-pong would never leave the
            // timer phase): wake the usual way instead.
            drop(s);
            self.engine().wake();
        } else if let Some(t) = &s.timer {
            t.kick();
        }
    }

    /// Submits what is queued and reaps into `out` what is ready
    /// (`Driver::flush_and_reap`); at depth in thread mode, hands the
    /// submitting to the completion thread instead (see
    /// `completion::HandOff`) and only reaps.
    fn submit_and_reap(&self, d: &mut Driver, out: &mut Vec<Cqe>) -> std::io::Result<()> {
        if self.threaded
            && !self.js_waits.load(Ordering::Relaxed)
            && self
                .hand_off
                .wanted(d.reads_to_hand_off(), d.user_in_flight())
            && d.hand_off(out)
        {
            if self.hand_off.offer() {
                d.wake();
            }
            return Ok(());
        }
        d.flush_and_reap(out)
    }

    /// Completes a batch in the driver and delivers it (JS thread).
    pub fn process(&self, env: Option<sys::napi_env>, cqes: &[Cqe]) {
        self.process_to(env, cqes, false);
    }

    /// Like [`Shared::process`]; with `handoff`, the batch's last pairs are
    /// left in `results` for the caller's JavaScript to settle (the count is
    /// returned) instead of a call of `onBatch`. Settlements deferred while
    /// JavaScript's `onBatch` ran go first.
    fn process_to(&self, env: Option<sys::napi_env>, cqes: &[Cqe], handoff: bool) -> usize {
        let mut dones = {
            let mut deferred = self.deferred.get();
            if deferred.0.is_empty() {
                std::mem::take(&mut self.scratch.get().dones)
            } else {
                std::mem::take(&mut deferred.0)
            }
        };
        dones.reserve(cqes.len());
        {
            let mut d = lock(&self.driver);
            for c in cqes {
                d.complete(*c, &mut dones);
            }
            self.flush_quiet(&mut d);
        }
        if dones.is_empty() && cqes.is_empty() {
            return 0;
        }
        match env {
            Some(env) => self.deliver_to(env, dones, handoff),
            None => {
                self.discard(dones);
                0
            }
        }
    }

    /// The results array's flag `i` (after the pairs), if the array is live.
    fn flag(&self, i: usize) -> Option<*mut f64> {
        let p = self.results_ptr.load(Ordering::Relaxed);
        // SAFETY: the FLAGS flags follow the `results_cap` pairs (see
        // `results_ptr`); null once finalized.
        (!p.is_null()).then(|| unsafe { p.add(2 * self.results_cap + i) })
    }

    /// Whether JavaScript's `onBatch` is running (it owns `results` then).
    fn js_busy(&self) -> bool {
        self.flag_set(JS_BUSY)
    }

    /// Whether the results array's flag `i` is set (false once finalized).
    fn flag_set(&self, i: usize) -> bool {
        // SAFETY: a live f64 of the results array (JS thread only; see `flag`).
        self.flag(i).is_some_and(|p| unsafe { *p } != 0.0)
    }

    fn discard(&self, dones: Vec<Done>) {
        let mut d = lock(&self.driver);
        d.discard(dones);
        d.complete_discarding(&[]);
    }

    /// Hands settled ops to JavaScript: copies bounced reads into the user's
    /// buffers, writes (token, result) pairs, calls `onBatch(n)`. A stream's
    /// event that keeps its token pending is written with the token as
    /// `-(token + 1)`; the chunks of receive events go into `payloads` at
    /// the event's position (consecutive chunks of one stream joined into
    /// one Buffer).
    pub(crate) fn deliver(&self, env: sys::napi_env, dones: Vec<Done>) {
        self.deliver_to(env, dones, false);
    }

    /// [`Shared::deliver`]; with `handoff`, see [`Shared::process_to`].
    fn deliver_to(&self, env: sys::napi_env, dones: Vec<Done>, handoff: bool) -> usize {
        let native = self.delivering.load(Ordering::Relaxed);
        if native || self.js_busy() {
            self.deferred.get().0.extend(dones);
            if !native {
                if let Some(p) = self.flag(JS_DEFERRED) {
                    // SAFETY: as in js_busy.
                    unsafe { *p = 1.0 };
                }
            }
            return 0;
        }
        self.delivering.store(true, Ordering::Relaxed);
        let mut left = self.deliver_now(env, dones, handoff);
        self.delivering.store(false, Ordering::Relaxed);
        let later = std::mem::take(&mut self.deferred.get().0);
        if !later.is_empty() {
            if left > 0 {
                // The later ones reuse `results`: settle these first.
                self.call_on_batch(env, left);
                left = 0;
            }
            self.deliver_to(env, later, false);
        }
        left
    }

    /// Calls `onBatch(n)`.
    fn call_on_batch(&self, env: sys::napi_env, n: usize) {
        let f = self.js.get().on_batch;
        if let Some(f) = js::deref(env, f) {
            self.delivering.store(true, Ordering::Relaxed);
            js::call(env, f, &[js::number(env, n as f64)]);
            self.delivering.store(false, Ordering::Relaxed);
        }
    }

    /// Returns how many pairs it left for JavaScript (`handoff`).
    fn deliver_now(&self, env: sys::napi_env, mut dones: Vec<Done>, handoff: bool) -> usize {
        let (on_batch, bufs, payloads, finalized, closing) = {
            let s = self.js.get();
            (s.on_batch, s.bufs, s.payloads, s.finalized, s.closing)
        };
        let out = self.results_ptr.load(Ordering::Relaxed);
        let cap = self.results_cap;
        if finalized || out.is_null() {
            self.discard(dones);
            return 0;
        }
        // A closing ring may finalize below (and call onBatch(-1)): its
        // batch settles first, natively.
        let handoff = handoff && !closing;
        let mut on_batch = LazyRef::new(on_batch);
        // Most batches (plain reads and writes) need neither array.
        let mut bufs = LazyRef::new(bufs);
        let mut payloads = LazyRef::new(payloads);
        let mut n = 0usize;
        let (mut spent, mut bids, mut parts) = {
            let mut sc = self.scratch.get();
            (
                std::mem::take(&mut sc.spent),
                std::mem::take(&mut sc.bids),
                std::mem::take(&mut sc.parts),
            )
        };
        // Whether this segment (events up to the next onBatch call) has
        // chunks in the pool, whose place JS was told.
        let mut pooled = false;
        let mut it = dones.drain(..).peekable();
        while let Some(done) = it.next() {
            let mut result = done.result as f64;
            let more = done.payload.more();
            match done.payload {
                Payload::Bounce { buf, user_offset } => {
                    if let Some(target) =
                        bufs.get(env).and_then(|a| js::element(env, a, done.token))
                    {
                        copy_out(env, target, user_offset, buf.as_slice());
                    }
                    spent.push(buf);
                }
                Payload::Stat(s) => {
                    if let (Some(arr), Some(bufs)) =
                        (js::f64_array(env, &stat_fields(&s)), bufs.get(env))
                    {
                        js::set_element(env, bufs, done.token, arr);
                    }
                }
                Payload::Received { bid, data } => {
                    // This chunk and the stream's chunks right behind it.
                    parts.clear();
                    parts.push((data, done.result as usize));
                    bids.push(bid);
                    while let Some(Done {
                        token,
                        payload: Payload::Received { .. },
                        ..
                    }) = it.peek()
                    {
                        if *token != done.token {
                            break;
                        }
                        let Some(Done {
                            result,
                            payload: Payload::Received { bid, data },
                            ..
                        }) = it.next()
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
                                if let Some(f) = on_batch.get(env) {
                                    js::call(env, f, &[js::number(env, n as f64)]);
                                }
                                n = 0;
                            }
                            pooled = false;
                            self.new_pool(env);
                        }
                        if !pooled {
                            pooled = self.announce_pool(env, &mut payloads, cap);
                        }
                        if pooled {
                            self.pool_copy(&parts);
                            // A negative length marks a chunk in the pool
                            // (no other stream event is negative).
                            result = -result;
                        } else if let (Some(b), Some(payloads)) =
                            (js::buffer_from_parts(env, &parts, total), payloads.get(env))
                        {
                            js::set_element(env, payloads, n as u32, b);
                        }
                    } else if let (Some(b), Some(payloads)) =
                        (js::buffer_from_parts(env, &parts, total), payloads.get(env))
                    {
                        js::set_element(env, payloads, n as u32, b);
                    }
                }
                Payload::Call(c) => {
                    if let Some(bytes) = c.output() {
                        let part = [(bytes.as_ptr(), bytes.len())];
                        if let (Some(b), Some(bufs)) = (
                            js::buffer_from_parts(env, &part, bytes.len()),
                            bufs.get(env),
                        ) {
                            js::set_element(env, bufs, done.token, b);
                        }
                    }
                }
                Payload::Accepted(_) | Payload::Opened(_) | Payload::None => {}
            }
            let token = if more {
                -(f64::from(done.token) + 1.0)
            } else {
                let mut weak = self.weak.get();
                if !weak.is_empty() {
                    weak.remove(&done.token);
                }
                f64::from(done.token)
            };
            // SAFETY: n < cap pairs fit in the results array (see
            // `JsState::results_ptr`).
            unsafe {
                *out.add(2 * n) = token;
                *out.add(2 * n + 1) = result;
            }
            n += 1;
            if n == cap {
                if let Some(f) = on_batch.get(env) {
                    js::call(env, f, &[js::number(env, n as f64)]);
                }
                n = 0;
                pooled = false;
            }
        }
        drop(it);
        parts.clear();
        let left = if handoff { n } else { 0 };
        if n > 0 && !handoff {
            if let Some(f) = on_batch.get(env) {
                js::call(env, f, &[js::number(env, n as f64)]);
            }
        }
        let mut extra = Vec::new();
        {
            // Also with nothing to recycle: a receive that ran out of
            // buffers is re-armed here.
            let mut d = lock(&self.driver);
            for b in spent.drain(..) {
                d.recycle(b);
            }
            for b in bids.drain(..) {
                d.recycle_received(b);
            }
            d.after_batch(&mut extra);
            self.flush_quiet(&mut d);
        }
        if !extra.is_empty() {
            self.deferred.get().0.extend(extra);
        }
        {
            let mut sc = self.scratch.get();
            sc.spent = spent;
            sc.bids = bids;
            sc.parts = parts;
            sc.dones = dones;
        }
        self.settle_lifecycle(env);
        left
    }

    /// Whether the threadsafe function's deliveries have run for longer
    /// than [`DELIVERY_BUDGET`] in this loop iteration (see `LoopTimer`).
    /// If so, the rest waits for the timer, which this arms.
    pub fn defer_delivery(&self, env: sys::napi_env) -> bool {
        // A sim ring's run must not depend on real time.
        if self.backend == "sim" {
            return false;
        }
        let now = crate::loop_poll::loop_now(env);
        let mut s = self.js.get();
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
            let mut s = self.js.get();
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
        self.in_timer.store(true, Ordering::Relaxed);
        crate::loop_poll::in_callback_scope(env, scope.0, scope.1, || {
            self.posted.store(false, Ordering::Release);
            let batch = self.take_inbox();
            if !batch.is_empty() {
                self.process(Some(env), &batch);
            }
        });
        self.in_timer.store(false, Ordering::Relaxed);
    }

    /// Whether `len` more bytes fit in the receive pool.
    fn pool_fits(&self, len: usize) -> bool {
        let s = self.js.get();
        !s.pool.is_null() && s.pool_used + len <= POOL_SIZE
    }

    /// Replaces the receive pool with a fresh Buffer (views of the old one
    /// keep it alive as long as JS holds them).
    fn new_pool(&self, env: sys::napi_env) {
        let mut s = self.js.get();
        if !s.pool.is_null() {
            js::unreference(env, s.pool);
            s.pool = std::ptr::null_mut();
        }
        if let Some((v, ptr)) = js::new_buffer(env, POOL_SIZE) {
            if let Some(r) = js::reference(env, v) {
                s.pool = r;
                s.pool_ptr = ptr;
                s.pool_used = 0;
                s.pool_announced = false;
            }
        }
    }

    /// Tells JS which pool this segment's small chunks are in
    /// (`payloads[cap]`, when it changed) and where the first starts (the
    /// `POOL_OFFSET` flag).
    fn announce_pool(&self, env: sys::napi_env, payloads: &mut LazyRef, cap: usize) -> bool {
        let (pool, used, announced) = {
            let s = self.js.get();
            (s.pool, s.pool_used, s.pool_announced)
        };
        if !announced {
            let (Some(v), Some(payloads)) = (js::deref(env, pool), payloads.get(env)) else {
                return false;
            };
            js::set_element(env, payloads, cap as u32, v);
            self.js.get().pool_announced = true;
        }
        let Some(p) = self.flag(POOL_OFFSET) else {
            return false;
        };
        // SAFETY: a live f64 of the results array (JS thread only; see
        // `flag`).
        unsafe { *p = used as f64 };
        true
    }

    /// Appends a chunk's parts to the pool (room was checked).
    fn pool_copy(&self, parts: &[(*const u8, usize)]) {
        let mut s = self.js.get();
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
    pub(crate) fn settle_lifecycle(&self, env: sys::napi_env) {
        let busy = {
            let d = lock(&self.driver);
            let weak = self.weak.get();
            let pending = d.pending();
            // A weak stream has one op in the kernel (two while re-armed):
            // past that, something else is surely pending.
            pending > 0 && (weak.is_empty() || pending > 2 * weak.len() || d.pending_besides(&weak))
        };
        if busy && self.refed.load(Ordering::Relaxed) {
            // Already ref'd, and a close waits for nothing pending.
            return;
        }
        let s = self.js.get();
        if s.finalized {
            return;
        }
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

    /// Thread mode on io_uring, as the loop is about to block: with few ops
    /// in flight, the loop waits for their completions itself (one wake-up
    /// of this thread instead of the completion thread's, then a
    /// threadsafe-function call's); with many, the completion thread does.
    fn choose_waiter(&self) {
        let pending = lock(&self.driver).pending();
        let js = self.js_waits.load(Ordering::Relaxed);
        let want = if js {
            pending <= crate::completion::HANDBACK_DEPTH
        } else {
            pending > 0 && pending <= crate::completion::TAKEOVER_DEPTH
        };
        if want == js {
            return;
        }
        let s = self.js.get();
        let (Some(poll), false) = (&s.poll, s.finalized) else {
            return;
        };
        if want {
            // What the completion thread was handed is submitted before it
            // parks.
            let _ = self.engine().flush();
        }
        self.js_waits.store(want, Ordering::SeqCst);
        if want {
            poll.resume();
        } else {
            poll.pause();
            if let Some(t) = &s.thread {
                t.thread().unpark();
            }
        }
    }

    /// The loop is about to block on the eventfd (it waits itself, at low
    /// depth) with only O_DIRECT reads and writes in flight and no timer
    /// due: spins first, as `ringline_core::busy_poll` decides, until
    /// completions are ready or the loop has something else to do.
    fn busy_poll(&self, lp: *mut sys::uv_loop_s) {
        if !lock(&self.driver).in_flight_only_direct_io() {
            self.js.get().busy.forget();
            return;
        }
        // SAFETY: the env's live loop, on its own thread.
        if unsafe { crate::loop_poll::uv_backend_timeout(lp) } == 0 {
            // It will not block: something is due now.
            return;
        }
        let mut s = self.js.get();
        let Some(limit) = s.busy.begin(std::time::Instant::now()) else {
            return;
        };
        // SAFETY: as above.
        let fd = unsafe { crate::loop_poll::uv_backend_fd(lp) };
        let engine = self.engine();
        s.busy.spin(
            limit,
            || engine.has_ready(),
            || crate::loop_poll::readable(fd),
        );
    }

    /// The ring's eventfd is readable (loop delivery mode): settle what is ready.
    pub fn on_loop_readable(&self) {
        let (env, scope) = {
            let s = self.js.get();
            match (&s.poll, s.finalized) {
                (Some(p), false) => (s.env, (p.resource, p.context)),
                _ => return,
            }
        };
        self.js.get().busy.end(std::time::Instant::now());
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
        self.flush_to(env, false)
    }

    /// [`Shared::flush`]; with `handoff` (`fast.flush`), returns how many
    /// pairs it left in `results` for the caller to settle (see
    /// [`Shared::process_to`]), else `0` or `-errno`.
    pub fn flush_to(&self, env: sys::napi_env, handoff: bool) -> i32 {
        if self.delivering.load(Ordering::Relaxed) || self.js_busy() {
            // Inside onBatch: submit only; what completes at once waits
            // for the next flush (or the loop's timer).
            self.flush_quiet(&mut lock(&self.driver));
            return 0;
        }
        if let Some(p) = self.flag(JS_DEFERRED) {
            // SAFETY: as in js_busy; what it flagged is taken below.
            unsafe { *p = 0.0 };
        }
        let mut batch = std::mem::take(&mut self.scratch.get().cqes);
        let r = {
            let mut d = lock(&self.driver);
            let mut ib = lock(&self.inbox);
            let r = self.submit_and_reap(&mut d, &mut ib);
            // The inbox keeps the spare's capacity.
            std::mem::swap(&mut *ib, &mut batch);
            r
        };
        let left = self.process_to(Some(env), &batch, handoff);
        batch.clear();
        self.scratch.get().cqes = batch;
        match r {
            _ if left > 0 => left as i32,
            Ok(()) => 0,
            Err(e) => -e.raw_os_error().unwrap_or(libc::EIO),
        }
    }

    /// Stops the completion thread, closes remaining files, releases the
    /// threadsafe function and JS references. `notify` calls `onBatch(-1)`.
    fn finalize(&self, env: sys::napi_env, notify: bool) {
        let (thread, tsfn, refs, hook, poll) = {
            let mut s = self.js.get();
            if s.finalized {
                return;
            }
            s.finalized = true;
            self.results_ptr
                .store(std::ptr::null_mut(), Ordering::Relaxed);
            self.args_ptr.store(std::ptr::null_mut(), Ordering::Relaxed);
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
        let timer = self.js.get().timer.take();
        if let Some(t) = timer {
            t.stop(env);
        }
        let prepare = self.js.get().prepare.take();
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
        let args = std::mem::replace(&mut self.js.get().args, std::ptr::null_mut());
        if !args.is_null() {
            js::unreference(env, args);
        }
    }

    fn stop_thread(&self, thread: Option<JoinHandle<()>>) {
        self.stop.store(true, Ordering::Release);
        // Worker threads post no more (waits for one posting now).
        self.engine().set_notify(None);
        lock(&self.driver).wake();
        if let Some(t) = thread {
            // It may be parked while the loop waits (hybrid).
            t.thread().unpark();
            let _ = t.join();
        }
    }

    /// The env is going away (worker terminated, process exiting) with ops
    /// possibly in flight: cancel them, and wait until the kernel has handed
    /// back every one, so none writes into freed memory. Nothing reaches JS.
    fn teardown(&self, env: sys::napi_env) {
        if self.js.get().finalized {
            return;
        }
        let mut dropped = Vec::new();
        lock(&self.driver).shutdown(&mut dropped);
        self.discard(dropped);
        let thread = self.js.get().thread.take();
        self.stop_thread(thread);
        let reaped = self.take_inbox();
        {
            let mut d = lock(&self.driver);
            d.complete_discarding(&reaped);
            // Nothing else reaps now (the completion thread is stopped): an
            // error of the engine's wait leaves the rest to finalize.
            let _ = d.drain();
        }
        self.finalize(env, false);
    }
}

impl crate::loop_poll::LoopOwner for Shared {
    fn readable(&self) {
        self.on_loop_readable();
    }

    fn deferred(&self) {
        self.on_deferred();
    }

    fn preparing(&self, lp: *mut sys::uv_loop_s) {
        self.engine().idle();
        if self.hybrid {
            self.choose_waiter();
            if self.js_waits.load(Ordering::Relaxed) {
                self.busy_poll(lp);
            } else {
                self.js.get().busy.forget();
            }
        }
    }
}

pub(crate) unsafe extern "C" fn env_cleanup(arg: *mut c_void) {
    // SAFETY: arg is the Arc<Shared> registered with the hook; it is
    // reclaimed here or in finalize (which first removes the hook), once.
    let shared = unsafe { Arc::from_raw(arg as *const Shared) };
    let env = {
        let mut s = shared.js.get();
        s.hook = std::ptr::null();
        s.env
    };
    shared.teardown(env);
}
