//! Event-loop handles of the completion path. `LoopTimer` resumes
//! threadsafe-function delivery deferred past its time budget (below).
//! `LoopPoll`: completion delivery by the JS thread's own event loop
//! (`completion: 'loop'`, and `'thread'` at low queue depth: see
//! `completion.rs`): a `uv_poll_t` on the engine's eventfd instead of the
//! completion thread. A completion then reaches JavaScript with one wake-up
//! of the JS thread instead of two thread switches (completion thread, then
//! threadsafe function): measured 16.8k vs 12.5k O_DIRECT 4 KiB reads/s at
//! one in flight (fio: 18.5k). The completion thread stays the default, as
//! DESIGN.md has it.

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
    // The handle functions take any handle (`uv_handle_t *`).
    fn uv_close(handle: *mut c_void, cb: Option<unsafe extern "C" fn(*mut c_void)>);
    fn uv_ref(handle: *mut c_void);
    fn uv_unref(handle: *mut c_void);
}

const UV_READABLE: c_int = 1;

/// What the handles call back into (the ring's shared state implements
/// it). A handle keeps a plain pointer to its owner, which must outlive it:
/// the owner stops its handles before it goes.
pub trait LoopOwner: 'static {
    /// The polled descriptor is readable (`LoopPoll`).
    fn readable(&self);
    /// The timer ran out (`LoopTimer`).
    fn deferred(&self);
    /// The loop is about to block for I/O (`LoopPrepare`).
    fn preparing(&self, lp: *mut sys::uv_loop_s);
}

/// The owner a handle's `data` field points at, or None once stopped.
///
/// # Safety
/// `h` is a live uv handle whose data is null or a `*const T` set by this
/// module, whose owner is still alive.
unsafe fn owner<'a, T: LoopOwner>(h: *mut c_void) -> Option<&'a T> {
    // SAFETY: uv_handle_t starts with `void* data`; the caller's contract.
    unsafe { (*(h as *const *const T)).as_ref() }
}

/// Sets a uv handle's `data` field (the first of every uv handle).
///
/// # Safety
/// `h` is a live uv handle.
unsafe fn set_owner(h: *mut c_void, owner: *const c_void) {
    // SAFETY: uv_handle_t starts with `void* data`.
    unsafe { *(h as *mut *const c_void) = owner };
}

/// A started poll on the ring's eventfd.
pub struct LoopPoll {
    handle: *mut UvPoll,
    pub resource: sys::napi_ref,
    pub context: sys::napi_async_context,
    /// `on_readable` for the owner's type.
    readable: unsafe extern "C" fn(*mut UvPoll, c_int, c_int),
}

// SAFETY: only touched on the JS thread (inside its owner's JS-state lock).
unsafe impl Send for LoopPoll {}

impl LoopPoll {
    /// Polls `fd` on the env's loop, delivering through `owner`, which
    /// must outlive the poll (it is stopped in `stop` before its owner goes).
    /// `paused`: set up, but not polling until `resume`.
    pub fn start<T: LoopOwner>(
        env: sys::napi_env,
        owner: *const T,
        fd: i32,
        paused: bool,
    ) -> Option<LoopPoll> {
        // SAFETY: fcntl on our own eventfd: reads must never block the loop.
        unsafe {
            libc::fcntl(
                fd,
                libc::F_SETFL,
                libc::fcntl(fd, libc::F_GETFL) | libc::O_NONBLOCK,
            )
        };
        let (lp, resource, context) = async_scope(env)?;
        let handle = Box::into_raw(Box::new(UvPoll { bytes: [0; 256] }));
        // SAFETY: handle is fresh, owned memory that uv owns until the close
        // callback frees it.
        unsafe {
            if uv_poll_init(lp, handle, fd) != 0 {
                drop(Box::from_raw(handle));
                return None;
            }
            set_owner(handle.cast(), owner.cast());
            if !paused {
                uv_poll_start(handle, UV_READABLE, on_readable::<T>);
            }
            uv_unref(handle.cast());
        }
        Some(LoopPoll {
            handle,
            resource,
            context,
            readable: on_readable::<T>,
        })
    }

    /// Stops polling (the loop no longer wakes for the descriptor).
    pub fn pause(&self) {
        // SAFETY: live handle on the JS thread; stopping twice is allowed.
        unsafe { uv_poll_stop(self.handle) };
    }

    /// Polls again after `pause`.
    pub fn resume(&self) {
        // SAFETY: live handle on the JS thread; restarting is allowed.
        unsafe { uv_poll_start(self.handle, UV_READABLE, self.readable) };
    }

    /// Keeps the loop alive while ops are pending.
    pub fn set_ref(&self, busy: bool) {
        // SAFETY: live handle on the JS thread.
        unsafe {
            if busy {
                uv_ref(self.handle.cast())
            } else {
                uv_unref(self.handle.cast())
            }
        }
    }

    pub fn stop(self, env: sys::napi_env) {
        // SAFETY: live handle; uv frees nothing itself, close_cb frees the Box.
        unsafe {
            uv_poll_stop(self.handle);
            set_owner(self.handle.cast(), ptr::null());
            uv_close(self.handle.cast(), Some(free_handle));
            sys::napi_async_destroy(env, self.context);
        }
        crate::js::unreference(env, self.resource);
    }
}

unsafe extern "C" fn free_handle(h: *mut c_void) {
    // SAFETY: the Box created in start; uv is done with it.
    drop(unsafe { Box::from_raw(h.cast::<UvPoll>()) });
}

unsafe extern "C" fn on_readable<T: LoopOwner>(h: *mut UvPoll, _status: c_int, _events: c_int) {
    // SAFETY: data is the owner set in start (which outlives the poll: it
    // stops it before it goes), or null once stopped.
    if let Some(o) = unsafe { owner::<T>(h.cast()) } {
        o.readable();
    }
}

/// The env's loop, and an async resource (referenced) and context for
/// the callback scopes of a handle's callbacks.
fn async_scope(
    env: sys::napi_env,
) -> Option<(*mut sys::uv_loop_s, sys::napi_ref, sys::napi_async_context)> {
    let mut lp = ptr::null_mut();
    let mut resource = ptr::null_mut();
    let mut name = ptr::null_mut();
    let mut context = ptr::null_mut();
    // SAFETY: valid env and out pointers.
    unsafe {
        sys::napi_get_uv_event_loop(env, &mut lp);
        sys::napi_create_object(env, &mut resource);
        sys::napi_create_string_utf8(env, c"ringline".as_ptr(), 8, &mut name);
        sys::napi_async_init(env, resource, name, &mut context);
    }
    let resource = crate::js::reference(env, resource)?;
    Some((lp, resource, context))
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
    // SAFETY: as above; the handle scope is still open for the exception.
    unsafe {
        surface_exception(env);
        sys::napi_close_callback_scope(env, cs);
        sys::napi_close_handle_scope(env, hs);
    }
}

/// A uv callback is not a Node-API callback: Node does not pick up an
/// exception that a napi call in it left behind (JavaScript that threw, or
/// the termination of a worker). Left there, it stayed in the env until the
/// env's cleanup hooks, where napi-rs's own hook tried to read it without a
/// handle scope and V8 aborted the process (`worker.terminate()` with
/// `completion: 'loop'`). Take it now, inside the caller's handle scope, and
/// raise it as an uncaught exception the way Node does for its callbacks
/// (Node ignores that while the env is going away).
///
/// # Safety
/// JS thread, inside an open handle scope.
unsafe fn surface_exception(env: sys::napi_env) {
    let mut pending = false;
    // SAFETY: valid env and out pointer.
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if !pending {
        return;
    }
    let mut exception = ptr::null_mut();
    // SAFETY: valid env; the caller's handle scope holds the result.
    if unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) }
        == sys::Status::napi_ok
    {
        // SAFETY: as above.
        unsafe { sys::napi_fatal_exception(env, exception) };
    }
}

/// Empties the eventfd (non-blocking).
pub fn drain_eventfd(fd: i32) {
    let mut v = 0u64;
    // SAFETY: 8-byte read into a local from our non-blocking eventfd.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast::<c_void>(), 8) };
}

/// Whether `fd` is readable now (a poll that does not block; on the JS
/// thread, its return also runs the kernel's pending task work).
pub fn readable(fd: i32) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd; a zero timeout never blocks.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
}

/// Storage for a `uv_timer_t` (152 bytes on 64-bit Linux; 256 is ample).
#[repr(C, align(16))]
struct UvTimer {
    bytes: [u8; 256],
}

extern "C" {
    fn uv_timer_init(lp: *mut sys::uv_loop_s, handle: *mut UvTimer) -> c_int;
    fn uv_timer_start(
        handle: *mut UvTimer,
        cb: unsafe extern "C" fn(*mut UvTimer),
        timeout: u64,
        repeat: u64,
    ) -> c_int;
    fn uv_timer_stop(handle: *mut UvTimer) -> c_int;
    fn uv_now(lp: *const sys::uv_loop_s) -> u64;
}

/// The loop's cached time, which stays the same for a whole loop
/// iteration: two calls with equal results are in the same iteration.
pub fn loop_now(env: sys::napi_env) -> u64 {
    let mut lp = ptr::null_mut();
    // SAFETY: valid env, out pointer; the loop outlives the env.
    unsafe {
        sys::napi_get_uv_event_loop(env, &mut lp);
        uv_now(lp)
    }
}

/// A zero-delay timer that resumes completion delivery on the next loop
/// iteration, for the threadsafe function's path (`completion: 'thread'`).
/// Node dispatches threadsafe-function calls in a loop for as long as more
/// arrive, up to 1000 at a time; a completion thread that keeps posting
/// (a bulk transfer on one ring) would keep timers and I/O waiting for
/// seconds. Past a time budget, delivery waits for this timer instead.
pub struct LoopTimer {
    handle: *mut UvTimer,
    /// `on_timer` for the owner's type.
    fire: unsafe extern "C" fn(*mut UvTimer),
    pub resource: sys::napi_ref,
    pub context: sys::napi_async_context,
}

// SAFETY: only touched on the JS thread (inside its owner's JS-state lock).
unsafe impl Send for LoopTimer {}

impl LoopTimer {
    /// A stopped timer on the env's loop; `owner` must outlive it.
    pub fn new<T: LoopOwner>(env: sys::napi_env, owner: *const T) -> Option<LoopTimer> {
        let (lp, resource, context) = async_scope(env)?;
        let handle = Box::into_raw(Box::new(UvTimer { bytes: [0; 256] }));
        // SAFETY: handle is fresh, owned memory that uv owns until the close
        // callback frees it.
        unsafe {
            if uv_timer_init(lp, handle) != 0 {
                drop(Box::from_raw(handle));
                return None;
            }
            // uv_handle_t starts with `void* data`.
            set_owner(handle.cast(), owner.cast());
            uv_unref(handle.cast());
        }
        Some(LoopTimer {
            handle,
            fire: on_timer::<T>,
            resource,
            context,
        })
    }

    /// Fires `on_timer` on the next loop iteration.
    pub fn kick(&self) {
        // SAFETY: live handle on the JS thread; restarting is allowed.
        unsafe { uv_timer_start(self.handle, self.fire, 0, 0) };
    }

    pub fn stop(self, env: sys::napi_env) {
        // SAFETY: live handle; close_cb frees the Box.
        unsafe {
            uv_timer_stop(self.handle);
            set_owner(self.handle.cast(), ptr::null());
            uv_close(self.handle.cast(), Some(free_timer));
            sys::napi_async_destroy(env, self.context);
        }
        crate::js::unreference(env, self.resource);
    }
}

unsafe extern "C" fn free_timer(h: *mut c_void) {
    // SAFETY: the Box created in new; uv is done with it.
    drop(unsafe { Box::from_raw(h.cast::<UvTimer>()) });
}

unsafe extern "C" fn on_timer<T: LoopOwner>(h: *mut UvTimer) {
    // SAFETY: data is the owner set in new (which outlives the timer: it
    // stops it before it goes), or null once stopped.
    if let Some(o) = unsafe { owner::<T>(h.cast()) } {
        o.deferred();
    }
}

/// Storage for a `uv_prepare_t` (120 bytes on 64-bit Linux; 256 is ample).
#[repr(C, align(16))]
struct UvPrepare {
    bytes: [u8; 256],
}

extern "C" {
    fn uv_prepare_init(lp: *mut sys::uv_loop_s, handle: *mut UvPrepare) -> c_int;
    fn uv_prepare_start(handle: *mut UvPrepare, cb: unsafe extern "C" fn(*mut UvPrepare)) -> c_int;
    fn uv_prepare_stop(handle: *mut UvPrepare) -> c_int;
    /// The loop's epoll fd: readable when any of its handles has an event.
    pub fn uv_backend_fd(lp: *const sys::uv_loop_s) -> c_int;
    /// How long the loop's next poll would block, in ms (-1: no limit, 0:
    /// it will not block).
    pub fn uv_backend_timeout(lp: *const sys::uv_loop_s) -> c_int;
}

/// Runs on every loop iteration just before the loop blocks for I/O, and
/// tells the engine (`Engine::idle`): the JS thread stops reaping inline, so
/// the completion thread must see every event from here on (the mio engine
/// keeps its completion thread muted while the JS thread flushes and reaps
/// in a burst, and unmutes it here, once per iteration instead of once per
/// flush).
pub struct LoopPrepare {
    handle: *mut UvPrepare,
}

// SAFETY: only touched on the JS thread (inside its owner's JS-state lock).
unsafe impl Send for LoopPrepare {}

impl LoopPrepare {
    /// A started prepare handle on the env's loop, not keeping it alive;
    /// `owner` must outlive it (it is stopped in `stop` first).
    pub fn start<T: LoopOwner>(env: sys::napi_env, owner: *const T) -> Option<LoopPrepare> {
        let mut lp = ptr::null_mut();
        // SAFETY: valid env, out pointer; the loop outlives the env.
        if unsafe { sys::napi_get_uv_event_loop(env, &mut lp) } != sys::Status::napi_ok {
            return None;
        }
        let handle = Box::into_raw(Box::new(UvPrepare { bytes: [0; 256] }));
        // SAFETY: handle is fresh, owned memory that uv owns until the close
        // callback frees it; data (the first field of every handle) is set
        // before the first callback can run.
        unsafe {
            if uv_prepare_init(lp, handle) != 0 {
                drop(Box::from_raw(handle));
                return None;
            }
            set_owner(handle.cast(), owner.cast());
            uv_unref(handle.cast());
            uv_prepare_start(handle, on_prepare::<T>);
        }
        Some(LoopPrepare { handle })
    }

    pub fn stop(self) {
        // SAFETY: live handle; close_cb frees the Box.
        unsafe {
            uv_prepare_stop(self.handle);
            set_owner(self.handle.cast(), ptr::null());
            uv_close(self.handle.cast(), Some(free_prepare));
        }
    }
}

unsafe extern "C" fn free_prepare(h: *mut c_void) {
    // SAFETY: the Box created in start; uv is done with it.
    drop(unsafe { Box::from_raw(h.cast::<UvPrepare>()) });
}

unsafe extern "C" fn on_prepare<T: LoopOwner>(h: *mut UvPrepare) {
    // SAFETY: data is the owner set in start (which outlives the handle:
    // it stops it before it goes), or null once stopped.
    if let Some(o) = unsafe { owner::<T>(h.cast()) } {
        // SAFETY: a live handle; uv_handle_t's second field is its loop
        // (uv.h: `void* data; uv_loop_t* loop;`).
        let lp = unsafe { *(h as *const *mut sys::uv_loop_s).add(1) };
        o.preparing(lp);
    }
}
