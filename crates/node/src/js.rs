//! Small raw-napi helpers for the hot paths (typed-array views, array
//! elements, function calls), where napi-rs's conversions would cost
//! allocations per op. Every function here runs on the JS thread.

use napi::sys;
use std::ptr;

/// Checks a napi status, turning failures into `Err(status)`.
pub fn ok(status: sys::napi_status) -> Result<(), sys::napi_status> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(status)
    }
}

/// The bytes of a TypedArray or DataView: data pointer and byte length.
/// A detached view gives `len == 0`.
pub fn view_bytes(env: sys::napi_env, v: sys::napi_value) -> Option<(*mut u8, usize)> {
    let mut is_ta = false;
    // SAFETY: env and v are live handles of the current call.
    unsafe { sys::napi_is_typedarray(env, v, &mut is_ta) };
    if is_ta {
        let mut ty = 0;
        let mut len = 0usize;
        let mut data: *mut std::ffi::c_void = ptr::null_mut();
        // SAFETY: out pointers are valid locals; v is a TypedArray.
        let st = unsafe {
            sys::napi_get_typedarray_info(
                env,
                v,
                &mut ty,
                &mut len,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        ok(st).ok()?;
        let elem = match ty {
            sys::TypedarrayType::int8_array
            | sys::TypedarrayType::uint8_array
            | sys::TypedarrayType::uint8_clamped_array => 1,
            sys::TypedarrayType::int16_array | sys::TypedarrayType::uint16_array => 2,
            sys::TypedarrayType::int32_array
            | sys::TypedarrayType::uint32_array
            | sys::TypedarrayType::float32_array => 4,
            _ => 8,
        };
        return Some((data.cast(), if data.is_null() { 0 } else { len * elem }));
    }
    let mut is_dv = false;
    // SAFETY: as above.
    unsafe { sys::napi_is_dataview(env, v, &mut is_dv) };
    if is_dv {
        let mut len = 0usize;
        let mut data: *mut std::ffi::c_void = ptr::null_mut();
        // SAFETY: out pointers are valid locals; v is a DataView.
        let st = unsafe {
            sys::napi_get_dataview_info(
                env,
                v,
                &mut len,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        ok(st).ok()?;
        return Some((data.cast(), if data.is_null() { 0 } else { len }));
    }
    None
}

/// `arr[i]`.
pub fn element(env: sys::napi_env, arr: sys::napi_value, i: u32) -> Option<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: arr is a live object handle; out is a valid local.
    ok(unsafe { sys::napi_get_element(env, arr, i, &mut out) }).ok()?;
    Some(out)
}

/// `arr.length` of a JS array (0 if it is not one).
pub fn array_len(env: sys::napi_env, arr: sys::napi_value) -> u32 {
    let mut n = 0;
    // SAFETY: out pointer is a valid local.
    unsafe { sys::napi_get_array_length(env, arr, &mut n) };
    n
}

/// `arr[i] = v`.
pub fn set_element(env: sys::napi_env, arr: sys::napi_value, i: u32, v: sys::napi_value) {
    // SAFETY: live handles of the current scope.
    unsafe { sys::napi_set_element(env, arr, i, v) };
}

/// The value behind a reference.
pub fn deref(env: sys::napi_env, r: sys::napi_ref) -> Option<sys::napi_value> {
    let mut out = ptr::null_mut();
    // SAFETY: r was created in this env and not yet deleted.
    ok(unsafe { sys::napi_get_reference_value(env, r, &mut out) }).ok()?;
    (!out.is_null()).then_some(out)
}

/// A strong reference to `v` (created on the JS thread, invariant 3).
pub fn reference(env: sys::napi_env, v: sys::napi_value) -> Option<sys::napi_ref> {
    let mut r = ptr::null_mut();
    // SAFETY: v is a live handle; out pointer is a valid local.
    ok(unsafe { sys::napi_create_reference(env, v, 1, &mut r) }).ok()?;
    Some(r)
}

/// Drops a reference (on the JS thread, invariant 3).
pub fn unreference(env: sys::napi_env, r: sys::napi_ref) {
    // SAFETY: r was created in this env and is deleted once.
    unsafe { sys::napi_delete_reference(env, r) };
}

/// A new `Float64Array` holding `values`.
pub fn f64_array(env: sys::napi_env, values: &[f64]) -> Option<sys::napi_value> {
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut ab = ptr::null_mut();
    let bytes = std::mem::size_of_val(values);
    // SAFETY: out pointers are valid locals.
    ok(unsafe { sys::napi_create_arraybuffer(env, bytes, &mut data, &mut ab) }).ok()?;
    // SAFETY: data points at `bytes` fresh bytes; f64 has no invalid bit patterns.
    unsafe { ptr::copy_nonoverlapping(values.as_ptr(), data.cast::<f64>(), values.len()) };
    let mut ta = ptr::null_mut();
    // SAFETY: ab is the ArrayBuffer just created; out pointer valid.
    ok(unsafe {
        sys::napi_create_typedarray(
            env,
            sys::TypedarrayType::float64_array,
            values.len(),
            ab,
            0,
            &mut ta,
        )
    })
    .ok()?;
    Some(ta)
}

/// Calls `f(args...)` with `undefined` as `this`. A JS exception thrown by
/// `f` is left pending for the caller's caller to see.
pub fn call(env: sys::napi_env, f: sys::napi_value, args: &[sys::napi_value]) {
    let mut undefined = ptr::null_mut();
    let mut ret = ptr::null_mut();
    // SAFETY: live handles; args outlive the call.
    unsafe {
        sys::napi_get_undefined(env, &mut undefined);
        sys::napi_call_function(env, undefined, f, args.len(), args.as_ptr(), &mut ret);
    }
}

pub fn number(env: sys::napi_env, v: f64) -> sys::napi_value {
    let mut out = ptr::null_mut();
    // SAFETY: out pointer is a valid local.
    unsafe { sys::napi_create_double(env, v, &mut out) };
    out
}

/// A new Buffer holding the bytes of `parts` (pointer, length) in order,
/// `total` bytes in all.
pub fn buffer_from_parts(
    env: sys::napi_env,
    parts: &[(*const u8, usize)],
    total: usize,
) -> Option<sys::napi_value> {
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut out = ptr::null_mut();
    // SAFETY: out pointers are valid locals.
    ok(unsafe { sys::napi_create_buffer(env, total, &mut data, &mut out) }).ok()?;
    let mut at = 0;
    for &(p, len) in parts {
        if p.is_null() {
            continue;
        }
        // SAFETY: each part is `len` readable bytes lent by the driver for
        // this call; data has room for `total`, the sum of the lengths.
        unsafe { ptr::copy_nonoverlapping(p, data.cast::<u8>().add(at), len) };
        at += len;
    }
    Some(out)
}

/// A new Buffer of `len` uninitialised bytes and where they are.
pub fn new_buffer(env: sys::napi_env, len: usize) -> Option<(sys::napi_value, *mut u8)> {
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let mut out = ptr::null_mut();
    // SAFETY: out pointers are valid locals.
    ok(unsafe { sys::napi_create_buffer(env, len, &mut data, &mut out) }).ok()?;
    Some((out, data.cast()))
}

/// A raw threadsafe-function handle that may cross to the completion thread.
#[derive(Clone, Copy)]
pub struct Tsfn(pub sys::napi_threadsafe_function);
// SAFETY: napi_call_threadsafe_function is documented as callable from any
// thread; every other use of the handle happens on the JS thread.
unsafe impl Send for Tsfn {}
// SAFETY: as above: the handle is only copied and passed to that call from
// other threads; several threads may make it at once.
unsafe impl Sync for Tsfn {}
