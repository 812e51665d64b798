//! Completion delivery by the JS thread's own event loop (`completion:
//! 'loop'`): a `uv_poll_t` on the engine's eventfd instead of the
//! completion thread. A completion then reaches JavaScript with one wake-up
//! of the JS thread instead of two thread switches (completion thread, then
//! threadsafe function): measured 16.8k vs 12.5k O_DIRECT 4 KiB reads/s at
//! one in flight (fio: 18.5k). The completion thread stays the default, as
//! DESIGN.md has it.

use crate::ring::Shared;
use napi::sys;
use std::ffi::{c_int, c_void};
use std::ptr;

/// Storage for a `uv_poll_t` (160 bytes on 64-bit Linux; 256 is ample).
#[repr(C, align(16))]
struct UvPoll {
    bytes: [u8; 256],
}

extern "C" {
    fn uv_poll_init(lp: *mut sys::uv_loop_s, handle: *mut UvPoll, fd: c_int) -> c_int;
    fn uv_poll_start(
        handle: *mut UvPoll,
        events: c_int,
        cb: unsafe extern "C" fn(*mut UvPoll, c_int, c_int),
    ) -> c_int;
    fn uv_poll_stop(handle: *mut UvPoll) -> c_int;
    fn uv_close(handle: *mut UvPoll, cb: Option<unsafe extern "C" fn(*mut UvPoll)>);
    fn uv_ref(handle: *mut UvPoll);
    fn uv_unref(handle: *mut UvPoll);
}

const UV_READABLE: c_int = 1;

/// A started poll on the ring's eventfd.
pub struct LoopPoll {
    handle: *mut UvPoll,
    pub resource: sys::napi_ref,
    pub context: sys::napi_async_context,
}

// SAFETY: only touched on the JS thread (inside Shared's JS-state lock).
unsafe impl Send for LoopPoll {}

/// The `data` field is the first of every uv handle.
unsafe fn set_data(h: *mut UvPoll, data: *const Shared) {
    // SAFETY: uv_handle_t starts with `void* data`.
    unsafe { *(h as *mut *const Shared) = data };
}

unsafe fn data(h: *mut UvPoll) -> *const Shared {
    // SAFETY: as above.
    unsafe { *(h as *const *const Shared) }
}

impl LoopPoll {
    /// Polls `fd` on the env's loop, delivering through `shared`. `shared`
    /// must outlive the poll (it is stopped in `stop` before Shared goes).
    pub fn start(env: sys::napi_env, shared: *const Shared, fd: i32) -> Option<LoopPoll> {
        // SAFETY: fcntl on our own eventfd: reads must never block the loop.
        unsafe {
            libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
            )
        };
        let mut lp = ptr::null_mut();
        // SAFETY: valid env, out pointer.
        unsafe { sys::napi_get_uv_event_loop(env, &mut lp) };
        let handle = Box::into_raw(Box::new(UvPoll { bytes: [0; 256] }));
        let mut resource = ptr::null_mut();
        let mut name = ptr::null_mut();
        let mut context = ptr::null_mut();
        // SAFETY: valid env and out pointers; handle is fresh, owned memory
        // that uv owns until the close callback frees it.
        unsafe {
            sys::napi_create_object(env, &mut resource);
            sys::napi_create_string_utf8(env, c"ringline".as_ptr(), 8, &mut name);
            sys::napi_async_init(env, resource, name, &mut context);
            if uv_poll_init(lp, handle, fd) != 0 {
                drop(Box::from_raw(handle));
                return None;
            }
            set_data(handle, shared);
            uv_poll_start(handle, UV_READABLE, on_readable);
            uv_unref(handle);
        }
        let resource = crate::js::reference(env, resource)?;
        Some(LoopPoll {
            handle,
            resource,
            context,
        })
    }

    /// Keeps the loop alive while ops are pending.
    pub fn set_ref(&self, busy: bool) {
        // SAFETY: live handle on the JS thread.
        unsafe {
            if busy {
                uv_ref(self.handle)
            } else {
                uv_unref(self.handle)
            }
        }
    }

    pub fn stop(self, env: sys::napi_env) {
        // SAFETY: live handle; uv frees nothing itself, close_cb frees the Box.
        unsafe {
            uv_poll_stop(self.handle);
            set_data(self.handle, ptr::null());
            uv_close(self.handle, Some(free_handle));
            sys::napi_async_destroy(env, self.context);
        }
        crate::js::unreference(env, self.resource);
    }
}

unsafe extern "C" fn free_handle(h: *mut UvPoll) {
    // SAFETY: the Box created in start; uv is done with it.
    drop(unsafe { Box::from_raw(h) });
}

unsafe extern "C" fn on_readable(h: *mut UvPoll, _status: c_int, _events: c_int) {
    // SAFETY: data is the Shared set in start, or null once stopped.
    let shared = unsafe { data(h) };
    if shared.is_null() {
        return;
    }
    // SAFETY: Shared outlives the poll (stopped before it is dropped).
    let shared = unsafe { &*shared };
    shared.on_loop_readable();
}

/// Runs `f` inside a handle scope and a callback scope, so promise
/// reactions run when it returns, as after any Node callback.
pub fn in_callback_scope(
    env: sys::napi_env,
    resource: sys::napi_ref,
    context: sys::napi_async_context,
    f: impl FnOnce(),
) {
    let mut hs = ptr::null_mut();
    let mut cs = ptr::null_mut();
    // SAFETY: JS thread, valid env; scopes closed in reverse order below.
    unsafe {
        sys::napi_open_handle_scope(env, &mut hs);
        let resource = crate::js::deref(env, resource).unwrap_or(ptr::null_mut());
        sys::napi_open_callback_scope(env, resource, context, &mut cs);
    }
    f();
    // SAFETY: as above.
    unsafe {
        sys::napi_close_callback_scope(env, cs);
        sys::napi_close_handle_scope(env, hs);
    }
}

/// Empties the eventfd (non-blocking).
pub fn drain_eventfd(fd: i32) {
    let mut v = 0u64;
    // SAFETY: 8-byte read into a local from our non-blocking eventfd.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast::<c_void>(), 8) };
}
