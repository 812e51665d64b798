//! The completion path (DESIGN.md): one completion thread per Ring waits
//! for completions, takes every one that is ready, and makes ONE
//! threadsafe-function call for the batch. On the JS thread, the batch goes
//! through the driver and out to JavaScript in one `onBatch(n)` call.

use crate::js::Tsfn;
use crate::shared::Shared;
use napi::sys;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

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

/// The completion thread: reaps into the Ring's inbox (under its lock, so
/// the inbox keeps the kernel's order even when the JS thread reaps too)
/// and makes one threadsafe-function call per batch, none while one is
/// still on its way.
fn run(shared: &Shared, tsfn: Tsfn) {
    let engine = shared.engine();
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        post(shared, tsfn);
        if let Err(e) = engine.wait_ready() {
            // Not expected from an eventfd read; back off rather than spin,
            // and keep serving.
            eprintln!("ringline: completion wait failed: {e}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// Reaps into the inbox and, if it holds completions and no call is on its
/// way, makes the threadsafe-function call. Runs on the completion thread,
/// and on an engine's worker thread that just made completions (see
/// [`notifier`]).
fn post(shared: &Shared, tsfn: Tsfn) {
    let ready = shared.reap_into_inbox();
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
