//! The per-op hot path as plain napi functions bound to one ring (the ring
//! travels as the function's data pointer), so a read costs one napi call
//! without napi-rs's class unwrapping and borrow tracking. Measured: this
//! path and `IORING_REGISTER_EVENTFD_ASYNC` together took page-cache reads
//! at 32 in flight from ~460k to the figures in the closing note.

use crate::args::{file, position, view, views};
use crate::js;
use crate::shared::{lock, Shared};
use napi::sys;
use ringline_core::driver::UserBuf;
use ringline_core::SyncKind;
use std::ffi::c_void;
use std::ptr;
use std::sync::Arc;

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// Arguments of the current call and the ring bound to the function.
///
/// # Safety
/// Must be called from a callback created by [`functions`].
unsafe fn args<const N: usize>(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> ([sys::napi_value; N], &'static Shared) {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data: *mut c_void = ptr::null_mut();
    // SAFETY: argv holds N slots; data receives the pointer given at creation.
    unsafe {
        sys::napi_get_cb_info(
            env,
            info,
            &mut argc,
            argv.as_mut_ptr(),
            ptr::null_mut(),
            &mut data,
        )
    };
    if argc < N {
        let mut undefined = ptr::null_mut();
        // SAFETY: valid env and out pointer.
        unsafe { sys::napi_get_undefined(env, &mut undefined) };
        for a in argv.iter_mut().skip(argc) {
            *a = undefined;
        }
    }
    // SAFETY: data is an Arc<Shared> pointer kept alive by the function's
    // finalizer, which runs only when the function itself is collected.
    (argv, unsafe { &*(data as *const Shared) })
}

fn num(env: sys::napi_env, v: sys::napi_value) -> f64 {
    let mut out = f64::NAN;
    // SAFETY: v is a live value; a non-number leaves NaN, which every
    // caller rejects.
    unsafe { sys::napi_get_value_double(env, v, &mut out) };
    out
}

fn int(env: sys::napi_env, v: i32) -> sys::napi_value {
    let mut out = ptr::null_mut();
    // SAFETY: valid env and out pointer.
    unsafe { sys::napi_create_int32(env, v, &mut out) };
    out
}

fn token(v: f64) -> Option<u32> {
    (v >= 0.0 && v < f64::from(u32::MAX) && v.fract() == 0.0).then_some(v as u32)
}

/// The numbers of a read or write (token, file, offset, length, position)
/// or of a send (token, socket, how, and two unused), which JavaScript
/// writes into the ring's `args` Float64Array before the call: fewer napi
/// values to convert per op.
fn rw_args(shared: &Shared) -> Option<[f64; 5]> {
    let p = shared.args_ptr.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: `args_ptr` names 5 f64s of a library-internal Float64Array
    // kept alive by a reference until the ring is finalized (then null).
    (!p.is_null()).then(|| unsafe { ptr::read(p.cast::<[f64; 5]>()) })
}

/// What `read` returns for a read done during the call (see
/// `Driver::read_or_now`): its result is in `args[5]`, and the token was
/// not used.
const DONE_NOW: i32 = 1;

/// `args[5]` of a read: JavaScript lets it be done during the call.
fn may_read_now(shared: &Shared) -> bool {
    let p = shared.args_ptr.load(std::sync::atomic::Ordering::Relaxed);
    // SAFETY: as in rw_args (16 f64s).
    !p.is_null() && unsafe { *p.add(5) } == 1.0
}

/// `read(view) -> 0 | DONE_NOW | -errno`, with `args` (token, file, offset,
/// length, position, may-do-now: 1 lets a lone page-cache read be done
/// during the call).
unsafe extern "C" fn read(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: created by `functions`.
    let (a, shared) = unsafe { args::<1>(env, info) };
    let r = (|| {
        let [t, fid, off, len, pos] = rw_args(shared).ok_or(libc::EBADF)?;
        let t = token(t).ok_or(libc::EINVAL)?;
        let ub = view(env, a[0], off, len)?;
        let mut d = lock(&shared.driver);
        let now = if may_read_now(shared) {
            d.read_or_now(t, file(fid)?, ub, off as usize, position(pos))?
        } else {
            d.read(t, file(fid)?, ub, off as usize, position(pos))?;
            None
        };
        Ok((now, d.take_urgent()))
    })();
    if let Ok((Some(result), _)) = r {
        let p = shared.args_ptr.load(std::sync::atomic::Ordering::Relaxed);
        // SAFETY: rw_args just read through this pointer (non-null, 16
        // f64s of a library-internal Float64Array, JS thread only).
        unsafe { *p.add(5) = f64::from(result) };
        return int(env, DONE_NOW);
    }
    int(
        env,
        shared.submitted_maybe_now(env, r.map(|(_, urgent)| urgent)),
    )
}

/// `write(view) -> 0 | -errno`, with `args` as for `read`.
unsafe extern "C" fn write(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: created by `functions`.
    let (a, shared) = unsafe { args::<1>(env, info) };
    let r = (|| {
        let [t, fid, off, len, pos] = rw_args(shared).ok_or(libc::EBADF)?;
        let t = token(t).ok_or(libc::EINVAL)?;
        let ub = view(env, a[0], off, len)?;
        let mut d = lock(&shared.driver);
        d.write(t, file(fid)?, ub, position(pos))?;
        Ok(d.take_urgent())
    })();
    int(env, shared.submitted_maybe_now(env, r))
}

/// `append(token, file, view, sync) -> 0 | -errno`: the whole view at the
/// end of the file; `sync` 0 none, 1 fdatasync, 2 fsync (see
/// `Driver::append`).
unsafe extern "C" fn append(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: created by `functions`.
    let (a, shared) = unsafe { args::<4>(env, info) };
    let r = (|| {
        let t = token(num(env, a[0])).ok_or(libc::EINVAL)?;
        let (p, len) = js::view_bytes(env, a[2]).ok_or(libc::EINVAL)?;
        let sync = num(env, a[3]);
        let kind = if sync == 0.0 {
            None
        } else if sync == 1.0 {
            Some(SyncKind::Data)
        } else {
            Some(SyncKind::Full)
        };
        let ub = UserBuf { ptr: p, len };
        lock(&shared.driver).append(t, file(num(env, a[1]))?, ub, kind)
    })();
    int(env, shared.submitted(env, r))
}

/// `sync(token, file, datasync) -> 0 | -errno`: fdatasync when `datasync`
/// is 1, else fsync.
unsafe extern "C" fn sync(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: created by `functions`.
    let (a, shared) = unsafe { args::<3>(env, info) };
    let r = (|| {
        let t = token(num(env, a[0])).ok_or(libc::EINVAL)?;
        let kind = if num(env, a[2]) == 1.0 {
            SyncKind::Data
        } else {
            SyncKind::Full
        };
        lock(&shared.driver).sync(t, file(num(env, a[1]))?, kind)
    })();
    int(env, shared.submitted(env, r))
}

/// `send(data) -> 0 | DONE_NOW | -errno`, with (token, socket, how) in the
/// ring's `args` (see [`rw_args`]): `data` is a view or an array of views,
/// sent as one message. `how` is a sum of
/// [`SEND_ZERO_COPY`] and [`SEND_MAY_FINISH_NOW`]; with the latter, a send
/// the socket took whole during the call returns `DONE_NOW` (see
/// `Driver::send_or_now`): the token was not used.
unsafe extern "C" fn send(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: created by `functions`.
    let (a, shared) = unsafe { args::<1>(env, info) };
    let r = (|| {
        let [t, fid, how, _, _] = rw_args(shared).ok_or(libc::EBADF)?;
        let t = token(t).ok_or(libc::EINVAL)?;
        let how = if how.is_finite() { how as u32 } else { 0 };
        let zero_copy = how & SEND_ZERO_COPY != 0;
        let id = file(fid)?;
        let one;
        let many;
        let bufs: &[UserBuf] = match js::view_bytes(env, a[0]) {
            Some((p, len)) => {
                one = [UserBuf { ptr: p, len }];
                &one
            }
            None => {
                many = views(env, a[0])?;
                &many
            }
        };
        let mut d = lock(&shared.driver);
        if how & SEND_MAY_FINISH_NOW != 0 && !zero_copy {
            d.send_or_now(t, id, bufs)
        } else {
            d.send(t, id, bufs, zero_copy).map(|()| None)
        }
    })();
    if let Ok(Some(_)) = r {
        return int(env, DONE_NOW);
    }
    int(env, shared.submitted(env, r.map(drop)))
}

/// `how` of `send`: `SENDMSG_ZC`, settled once the kernel is done with the
/// memory.
const SEND_ZERO_COPY: u32 = 1;
/// `how` of `send`: the caller has no earlier send of the socket unsettled,
/// so this one may be done during the call.
const SEND_MAY_FINISH_NOW: u32 = 2;

/// `readMany(file, views, params, n)`: `params` is a Float64Array of
/// `(token, offset, length, position)` per view. Returns `n` when all were
/// queued, else `-(queued * 4096 + errno)`: the first `queued` are pending,
/// the rest were not submitted.
unsafe extern "C" fn read_many(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    // SAFETY: created by `functions`.
    let (a, shared) = unsafe { args::<4>(env, info) };
    let n = num(env, a[3]);
    let r = (|| {
        let fid = file(num(env, a[0])).map_err(|e| (0, e))?;
        let (pp, plen) = js::view_bytes(env, a[2]).ok_or((0, libc::EINVAL))?;
        if !(n >= 0.0 && n * 32.0 <= plen as f64) || pp.is_null() && n > 0.0 {
            return Err((0, libc::EINVAL));
        }
        let n = n as usize;
        // SAFETY: the Float64Array holds at least 4n f64s (checked above);
        // read_unaligned tolerates any byte offset.
        let p = |i: usize| unsafe { ptr::read_unaligned(pp.cast::<f64>().add(i)) };
        let mut d = lock(&shared.driver);
        for i in 0..n {
            let t = token(p(4 * i)).ok_or((i, libc::EINVAL))?;
            let v = js::element(env, a[1], i as u32).ok_or((i, libc::EINVAL))?;
            let ub: UserBuf = view(env, v, p(4 * i + 1), p(4 * i + 2)).map_err(|e| (i, e))?;
            d.read(t, fid, ub, p(4 * i + 1) as usize, position(p(4 * i + 3)))
                .map_err(|e| (i, e))?;
            // Flushed by the JS thread, not handed over: readMany's own
            // batch lost a little handed over (page-cache reads at 32 and
            // 128 in flight).
            d.queued_as_group(1);
        }
        Ok(n)
    })();
    let out = match r {
        Ok(n) => {
            shared.submitted(env, Ok(()));
            n as i32
        }
        Err((done, errno)) => {
            if done > 0 {
                shared.submitted(env, Ok(()));
            }
            -((done as i32) * 4096 + errno)
        }
    };
    int(env, out)
}

/// `flush() -> n | -errno`: `n` (token, result) pairs in `results` that the
/// caller settles with `onBatch(n)` (a call from here would cost more).
unsafe extern "C" fn flush(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: created by `functions`.
    let (_, shared) = unsafe { args::<0>(env, info) };
    int(env, shared.flush_to(env, true))
}

unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: data is the Arc handed out in `functions`, released once here.
    drop(unsafe { Arc::from_raw(data as *const Shared) });
}

/// `{ read, write, append, sync, send, readMany, flush }` bound to `shared`.
pub fn functions(env: sys::napi_env, shared: &Arc<Shared>) -> napi::Result<sys::napi_value> {
    let mut obj = ptr::null_mut();
    // SAFETY: valid env and out pointer.
    js::ok(unsafe { sys::napi_create_object(env, &mut obj) })
        .map_err(|_| napi::Error::from_reason("napi_create_object failed"))?;
    let list: [(&std::ffi::CStr, Callback); 7] = [
        (c"read", read),
        (c"write", write),
        (c"append", append),
        (c"sync", sync),
        (c"send", send),
        (c"readMany", read_many),
        (c"flush", flush),
    ];
    for (name, cb) in list {
        let data = Arc::into_raw(shared.clone()) as *mut c_void;
        let mut f = ptr::null_mut();
        // SAFETY: name is NUL-terminated; data stays valid until `release`
        // runs when the function is collected.
        let ok = unsafe {
            sys::napi_create_function(
                env,
                name.as_ptr(),
                usize::MAX as isize as _,
                Some(cb),
                data,
                &mut f,
            ) == sys::Status::napi_ok
                && sys::napi_add_finalizer(
                    env,
                    f,
                    data,
                    Some(release),
                    ptr::null_mut(),
                    ptr::null_mut(),
                ) == sys::Status::napi_ok
                && sys::napi_set_named_property(env, obj, name.as_ptr(), f) == sys::Status::napi_ok
        };
        if !ok {
            return Err(napi::Error::from_reason("cannot create ring functions"));
        }
    }
    Ok(obj)
}
