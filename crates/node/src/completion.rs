//! The completion path (DESIGN.md): one completion thread per Ring waits
//! for completions, takes every one that is ready, and makes ONE
//! threadsafe-function call for the batch. On the JS thread, the batch goes
//! through the driver and out to JavaScript in one `onBatch(n)` call.

use crate::js::Tsfn;
use crate::shared::Shared;
use napi::sys;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Creates the Ring's threadsafe function. `shared` is kept alive (one Arc)
/// until the function is finalized.
pub fn create_tsfn(env: sys::napi_env, shared: &Arc<Shared>) -> napi::Result<Tsfn> {
    let mut name = ptr::null_mut();
    let mut tsfn = ptr::null_mut();
    let ctx = Arc::into_raw(shared.clone()) as *mut c_void;
    // SAFETY: valid env; name bytes are static; out pointers are valid locals.
    let st = unsafe {
        sys::napi_create_string_utf8(
            env,
            c"ringline completions".as_ptr(),
            usize::MAX as isize as _,
            &mut name,
        );
        sys::napi_create_threadsafe_function(
            env,
            ptr::null_mut(),
            ptr::null_mut(),
            name,
            0,
            1,
            ptr::null_mut(),
            Some(finalize_tsfn),
            ctx,
            Some(call_js),
            &mut tsfn,
        )
    };
    if st != sys::Status::napi_ok {
        // SAFETY: ctx came from Arc::into_raw above and was not handed out.
        drop(unsafe { Arc::from_raw(ctx as *const Shared) });
        return Err(napi::Error::from_reason(
            "napi_create_threadsafe_function failed",
        ));
    }
    // An idle Ring must not keep the process alive (DESIGN.md).
    // SAFETY: tsfn was just created on this (the JS) thread.
    unsafe { sys::napi_unref_threadsafe_function(env, tsfn) };
    Ok(Tsfn(tsfn))
}

unsafe extern "C" fn finalize_tsfn(_env: sys::napi_env, _data: *mut c_void, ctx: *mut c_void) {
    // SAFETY: ctx is the Arc handed to napi_create_threadsafe_function.
    drop(unsafe { Arc::from_raw(ctx as *const Shared) });
}

/// Runs on the JS thread when the completion thread posted: settles every
/// completion in the inbox, in order. With `env == null` (the env is going
/// away) completions still free their slab entries, but nothing is
/// delivered to JavaScript.
unsafe extern "C" fn call_js(
    env: sys::napi_env,
    _f: sys::napi_value,
    ctx: *mut c_void,
    _data: *mut c_void,
) {
    // SAFETY: ctx is kept alive by the Arc the TSFN holds until finalize.
    let shared = unsafe { &*(ctx as *const Shared) };
    if !env.is_null() && shared.defer_delivery(env) {
        // Over the budget of this loop iteration: `posted` stays set (the
        // completion thread keeps reaping into the inbox without posting)
        // and the timer delivers everything on the next iteration.
        return;
    }
    shared.posted.store(false, Ordering::Release);
    let batch = shared.take_inbox();
    if !batch.is_empty() {
        shared.process(if env.is_null() { None } else { Some(env) }, &batch);
    }
}

/// Starts the completion thread.
pub fn spawn(shared: Arc<Shared>, tsfn: Tsfn) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringline-cq".into())
        .spawn(move || run(&shared, tsfn))
}

/// The loop takes over waiting from the completion thread when it is about
/// to block with at most this many ops pending, and hands it back above
/// [`HANDBACK_DEPTH`] (see `Shared::choose_waiter`).
///
/// The thread hop: a completion that the completion thread takes reaches
/// JavaScript after two wake-ups, the thread's (eventfd) and then the JS
/// thread's (the threadsafe function's uv_async), and costs more
/// instructions and syscalls (the tsfn's queue and async handle). The
/// loop's own poll of the eventfd needs one wake-up. That matters when an
/// op waits for its own completion (1 in flight: O_DIRECT reads, durable
/// appends one at a time); at depth, one hop carries a whole batch.
pub const TAKEOVER_DEPTH: usize = 4;
pub const HANDBACK_DEPTH: usize = 8;

/// The JS thread hands submitting to the completion thread (see
/// [`HandOff`]) when a flush has at least this many file reads queued one
/// at a time (`Driver::reads_to_hand_off`)...
pub const HAND_OFF_MIN: usize = 8;
/// ...and at least this many ops are in flight. Below that, the two
/// threads took turns more than they worked side by side: 4 KiB page-cache
/// reads at 8 in flight went from 471k/s to 122k/s handed off at every
/// flush (`benches/one-op.ts read io_uring thread 8`).
pub const HAND_OFF_DEPTH: usize = 32;

/// How long the completion thread spins for the next hand-off after a
/// part that completed inline (see [`HandOff::linger`]). In a first
/// trial, 100 µs and 300 µs gained less than 1 ms; with 1 ms, 99.9% of
/// the spins in `benches/one-op.ts read io_uring thread 32` (page-cache
/// reads, 32 in flight) ended with the next hand-off, half the
/// context switches were gone (29-38k -> 15-24k per 10^6 reads, `perf
/// stat`), and the CPU per read went down, not up (3.66 -> 3.61 µs, medians
/// of 8 alternating runs; 455k -> 481k reads/s).
pub const LINGER: Duration = Duration::from_millis(1);
/// How many of `queued` ops the completion thread submits in one part: a
/// quarter (at least 4, at most 32), so the JS thread gets the first
/// completions while the kernel copies the rest. A quarter beat a half and
/// a fixed 16 at 32 and 128 reads in flight.
fn hand_off_part(queued: usize) -> usize {
    (queued / 4).clamp(4, 32)
}

/// Submitting at depth, moved off the JS thread. A page-cache read is done
/// by the kernel inside the `io_uring_enter` that submits it: the thread
/// that submits 32 reads copies their 128 KiB. On the JS thread that was
/// half its time at 128 reads in flight, while the completion thread
/// idled. Handed over, the completion thread submits them in parts (see
/// [`hand_off_part`]) and posts each part's completions, which the JS
/// thread settles, and queues new reads for, while the next part is
/// copied.
#[derive(Default)]
pub struct HandOff {
    /// The JS thread left queued ops for the completion thread.
    handed: AtomicBool,
    /// The completion thread is about to block, or blocked: a hand-off
    /// must wake it.
    sleeping: AtomicBool,
    /// The completion thread is submitting a part.
    submitting: AtomicBool,
    /// The completion thread spins for the next hand-off (see
    /// [`HandOff::linger`]).
    lingering: AtomicBool,
    /// Ops the completion thread submitted (`ring.stats().handedOff`).
    submitted: AtomicU64,
}

impl HandOff {
    /// Whether a flush with `reads` file reads queued (one at a time)
    /// and `in_flight` ops pending should hand what is queued over. While
    /// a hand-off is being served, later flushes join it: a flush of its
    /// own would wait for the part in the kernel, and could overtake the
    /// ops handed.
    pub fn wanted(&self, reads: usize, in_flight: usize) -> bool {
        in_flight >= HAND_OFF_DEPTH
            && (reads >= HAND_OFF_MIN
                || self.handed.load(Ordering::SeqCst)
                || self.submitting.load(Ordering::SeqCst)
                || self.lingering.load(Ordering::SeqCst))
    }

    /// Marks ops handed over (after `Driver::hand_off`); whether the
    /// completion thread may be asleep and needs waking.
    pub fn offer(&self) -> bool {
        self.handed.store(true, Ordering::SeqCst);
        self.sleeping.load(Ordering::SeqCst)
    }

    /// Completion thread: submits one part of what was handed over; how
    /// many ops it submitted, and whether it did anything (then it posts,
    /// and comes back for more).
    fn submit(&self, shared: &Shared) -> (usize, bool) {
        if !self.handed.load(Ordering::SeqCst) {
            return (0, false);
        }
        self.submitting.store(true, Ordering::SeqCst);
        self.handed.store(false, Ordering::SeqCst);
        // On an error the ops stay queued: the JS thread's next flush
        // takes them (submitting is cleared below, so it flushes itself).
        let (done, more) = shared
            .engine()
            .submit_queued(hand_off_part)
            .unwrap_or_default();
        if more {
            self.handed.store(true, Ordering::SeqCst);
        }
        self.submitting.store(false, Ordering::SeqCst);
        self.submitted.fetch_add(done as u64, Ordering::Relaxed);
        (done, done > 0 || more)
    }

    /// Completion thread, after a part that the kernel did wholly inside
    /// its `io_uring_enter` (page-cache reads; `reaped`, what the post
    /// after it took, covers all `part` ops): spins for the JS thread's
    /// next hand-off, for at most [`LINGER`], and returns whether one came.
    ///
    /// Between two parts the JS thread settles the last one and queues
    /// its reads again, some tens of µs. Asleep meanwhile, the completion
    /// thread has to be woken for each part (an eventfd write on the JS
    /// thread and a wake-up here), and the copies wait for it: at 32
    /// page-cache reads in flight the two threads took turns more than
    /// they ran side by side. A part that did not complete inline (O_DIRECT
    /// reads, a device's work) has nothing for a spin to wait for, so it
    /// sleeps at once. It stops spinning as soon as other completions are
    /// ready (`Engine::has_ready`), so they wait no longer for it.
    fn linger(&self, shared: &Shared, part: usize, reaped: usize) -> bool {
        if part == 0 || reaped < part {
            return false;
        }
        let engine = shared.engine();
        self.lingering.store(true, Ordering::SeqCst);
        let came = self.spin(shared, &*engine);
        self.lingering.store(false, Ordering::SeqCst);
        came
    }

    /// [`HandOff::linger`]'s spin: until a hand-off comes (`true`), or the
    /// ring stops, the loop takes over waiting, other completions are
    /// ready, or [`LINGER`] is over.
    fn spin(&self, shared: &Shared, engine: &dyn ringline_core::engine::Engine) -> bool {
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if self.handed.load(Ordering::SeqCst) {
                    return true;
                }
                std::hint::spin_loop();
            }
            if shared.stop.load(Ordering::Acquire) {
                return false;
            }
            if shared.js_waits.load(Ordering::Acquire)
                || engine.has_ready()
                || start.elapsed() >= LINGER
            {
                return false;
            }
        }
    }

    /// Completion thread, before it blocks: `false` if ops were handed
    /// over meanwhile (submit them instead). A hand-off after this sees
    /// `sleeping` and wakes the thread.
    fn may_sleep(&self) -> bool {
        self.sleeping.store(true, Ordering::SeqCst);
        if self.handed.load(Ordering::SeqCst) {
            self.sleeping.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    fn awake(&self) {
        self.sleeping.store(false, Ordering::SeqCst);
    }

    /// Ops submitted by the completion thread so far.
    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }
}

/// The completion thread: reaps into the Ring's inbox (under its lock, so
/// the inbox keeps the kernel's order even when the JS thread reaps too)
/// and makes one threadsafe-function call per batch, none while one is
/// still on its way.
fn run(shared: &Shared, tsfn: Tsfn) {
    let engine = shared.engine();
    if shared.hybrid {
        if let Some(fd) = engine.notify_fd() {
            return run_hybrid(shared, tsfn, fd);
        }
    }
    let hand_off = &shared.hand_off;
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let (part, _) = hand_off.submit(shared);
        let reaped = post(shared, tsfn);
        if hand_off.linger(shared, part, reaped) {
            continue;
        }
        if !hand_off.may_sleep() {
            continue;
        }
        let r = engine.wait_ready();
        hand_off.awake();
        if let Err(e) = r {
            // Not expected from an eventfd read; back off rather than spin,
            // and keep serving.
            eprintln!("ringline: completion wait failed: {e}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The completion thread beside a loop that may wait itself
/// (`Shared::js_waits`): while the loop waits, this thread is parked and
/// leaves the eventfd (non-blocking: the loop's poll set it so) to the
/// loop; otherwise it waits for it to be readable, empties it and posts.
/// Whoever empties the eventfd reaps what it announced, so nothing is left
/// behind when the two hand over.
fn run_hybrid(shared: &Shared, tsfn: Tsfn, fd: i32) {
    let hand_off = &shared.hand_off;
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        let (part, did) = hand_off.submit(shared);
        if did {
            let reaped = post(shared, tsfn);
            hand_off.linger(shared, part, reaped);
            continue;
        }
        if shared.js_waits.load(Ordering::Acquire) {
            std::thread::park();
            post(shared, tsfn);
            continue;
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        if !hand_off.may_sleep() {
            continue;
        }
        // SAFETY: one valid pollfd; the eventfd outlives this thread (the
        // engine is released only after it is joined).
        let r = unsafe { libc::poll(&mut p, 1, -1) };
        hand_off.awake();
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                eprintln!("ringline: completion wait failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            continue;
        }
        if shared.js_waits.load(Ordering::Acquire) {
            // The loop woke for it too and takes it.
            continue;
        }
        crate::loop_poll::drain_eventfd(fd);
        post(shared, tsfn);
    }
}

/// Reaps into the inbox and, if it holds completions and no call is on its
/// way, makes the threadsafe-function call. Runs on the completion thread,
/// and on an engine's worker thread that just made completions (see
/// [`notifier`]). Returns how many completions it reaped.
fn post(shared: &Shared, tsfn: Tsfn) -> usize {
    let (reaped, ready) = shared.reap_into_inbox();
    if ready && !shared.posted.swap(true, Ordering::AcqRel) {
        // SAFETY: tsfn stays valid until released, which happens only after
        // the completion thread was joined and the notifier cleared.
        let st = unsafe {
            sys::napi_call_threadsafe_function(
                tsfn.0,
                ptr::null_mut(),
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        };
        if st != sys::Status::napi_ok {
            // Closing: the JS thread drains the inbox by itself.
            shared.posted.store(false, Ordering::Release);
        }
    }
    reaped
}

/// What an engine's worker threads (the mio engine's file pool) call when
/// they made completions: they post the batch themselves, so it reaches JS
/// without waking the completion thread first. Holds the ring weakly; the
/// ring clears it (`Engine::set_notify(None)`) before the threadsafe
/// function is released.
pub fn notifier(shared: &Arc<Shared>, tsfn: Tsfn) -> ringline_core::engine::Notify {
    let weak = Arc::downgrade(shared);
    Arc::new(move || {
        if let Some(shared) = weak.upgrade() {
            if !shared.stop.load(Ordering::Acquire) {
                post(&shared, tsfn);
            }
        }
    })
}
