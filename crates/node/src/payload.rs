//! How a completion's payload becomes JS values: a bounced read copied into
//! the caller's views, a statx as the Float64Array record Stats is built from.

use crate::js;
use napi::sys;
use ringline_core::op::Statx;

/// Copies a bounced read into the user's view (or, for `readv`, across an
/// array of views in order). A view detached or shrunk meanwhile gets what
/// still fits, which may be nothing: the op settles either way.
pub(crate) fn copy_out(
    env: sys::napi_env,
    target: sys::napi_value,
    user_offset: usize,
    data: &[u8],
) {
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

pub(crate) fn stat_fields(s: &Statx) -> [f64; 18] {
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
