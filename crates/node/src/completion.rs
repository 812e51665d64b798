//! The completion path (DESIGN.md): one completion thread per Ring waits
//! for completions, takes every one that is ready, and makes ONE
//! threadsafe-function call for the batch. On the JS thread, the batch goes
//! through the driver and out to JavaScript in one `onBatch(n)` call.

use crate::ring::Shared;
use napi::sys;
use ringline_core::op::Cqe;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// A raw threadsafe-function handle that may cross to the completion thread.
#[derive(Clone, Copy)]
pub struct Tsfn(pub sys::napi_threadsafe_function);
// SAFETY: napi_call_threadsafe_function is documented as callable from any
// thread; every other use of the handle happens on the JS thread.
unsafe impl Send for Tsfn {}

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

/// Runs on the JS thread for each batch the completion thread posted. With
/// `env == null` (the env is going away) completions still free their slab
/// entries, but nothing is delivered to JavaScript.
unsafe extern "C" fn call_js(
    env: sys::napi_env,
    _f: sys::napi_value,
    ctx: *mut c_void,
    data: *mut c_void,
) {
    // SAFETY: data is the Box<Vec<Cqe>> posted by `run`; it is ours now.
    let batch = unsafe { Box::from_raw(data as *mut Vec<Cqe>) };
    // SAFETY: ctx is kept alive by the Arc the TSFN holds until finalize.
    let shared = unsafe { &*(ctx as *const Shared) };
    shared.queued.fetch_sub(batch.len(), Ordering::AcqRel);
    shared.process(if env.is_null() { None } else { Some(env) }, &batch);
}

/// Starts the completion thread.
pub fn spawn(shared: Arc<Shared>, tsfn: Tsfn) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ringline-cq".into())
        .spawn(move || run(&shared, tsfn))
}

fn run(shared: &Shared, tsfn: Tsfn) {
    let engine = shared.engine.clone();
    let mut batch: Vec<Cqe> = Vec::with_capacity(256);
    loop {
        if let Err(e) = engine.wait(&mut batch) {
            // Not expected from io_uring_enter(GETEVENTS); back off rather
            // than spin, and keep serving.
            eprintln!("ringline: completion wait failed: {e}");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        if shared.stop.load(Ordering::Acquire) {
            // The JS thread is draining by itself now: hand back what we hold.
            shared.stolen.lock().map(|mut s| s.append(&mut batch)).ok();
            return;
        }
        if batch.is_empty() {
            continue;
        }
        let n = batch.len();
        shared.queued.fetch_add(n, Ordering::AcqRel);
        let full = std::mem::replace(&mut batch, Vec::with_capacity(256));
        let data = Box::into_raw(Box::new(full));
        // SAFETY: tsfn stays valid until released, which happens only after
        // this thread has been joined.
        let st = unsafe {
            sys::napi_call_threadsafe_function(
                tsfn.0,
                data.cast(),
                sys::ThreadsafeFunctionCallMode::nonblocking,
            )
        };
        if st != sys::Status::napi_ok {
            // Closing: keep the completions for the JS thread's own drain.
            // SAFETY: the call failed, so the data was not taken.
            let back = unsafe { Box::from_raw(data) };
            shared.queued.fetch_sub(n, Ordering::AcqRel);
            shared
                .stolen
                .lock()
                .map(|mut s| s.extend(back.iter().copied()))
                .ok();
        }
    }
}
