//! Owned, aligned, zero-initialised memory.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Blocks of at least this many bytes are mapped straight from the kernel
/// (on Unix), not taken from the heap: their pages are zero without being
/// written, and only the pages the kernel fills (a read of a short file
/// into a large buffer) or the copy touches become resident. `alloc_zeroed`
/// with page alignment wrote every byte of them.
const MAP_MIN: usize = 256 << 10;
const PAGE: usize = 4096;

/// A heap block aligned to at least `align` bytes. The memory never moves
/// and is freed only when the last owner drops it, so the kernel may hold its
/// address for as long as an owner (an in-flight op) keeps it.
#[derive(Debug)]
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
    /// Mapped with `mmap` (freed with `munmap`), not from the heap.
    mapped: bool,
    /// A counter of bytes held, charged with `capacity()` while this block
    /// is out (see [`AlignedBuf::charge`]); given back when it drops.
    charged: Option<Arc<AtomicUsize>>,
}

// SAFETY: AlignedBuf owns its block exclusively; it is plain memory with no
// thread affinity, and shared access hands out raw pointers only.
unsafe impl Send for AlignedBuf {}
// SAFETY: as above; &AlignedBuf exposes no interior mutability of its own.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// `len` zeroed bytes aligned to `align` (a power of two). A zero `len`
    /// still allocates one aligned unit, so the pointer is always real.
    pub fn new(len: usize, align: usize) -> Option<AlignedBuf> {
        let align = align.max(1);
        if !align.is_power_of_two() {
            return None;
        }
        let size = len.max(1).checked_next_multiple_of(align)?;
        let layout = Layout::from_size_align(size, align).ok()?;
        #[cfg(unix)]
        if size >= MAP_MIN && align <= PAGE {
            // SAFETY: an anonymous private mapping of `size` bytes; checked.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                return None;
            }
            return Some(AlignedBuf {
                ptr: NonNull::new(p.cast())?,
                len,
                layout,
                mapped: true,
                charged: None,
            });
        }
        // SAFETY: layout has non-zero size (len.max(1) rounded up).
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(AlignedBuf {
            ptr,
            len,
            layout,
            mapped: false,
            charged: None,
        })
    }

    /// Charges `counter` with this block's capacity until it drops or
    /// [`AlignedBuf::discharge`] is called.
    pub fn charge(&mut self, counter: &Arc<AtomicUsize>) {
        self.discharge();
        counter.fetch_add(self.capacity(), Ordering::Relaxed);
        self.charged = Some(counter.clone());
    }

    /// Gives back what [`AlignedBuf::charge`] took.
    pub fn discharge(&mut self) {
        if let Some(c) = self.charged.take() {
            c.fetch_sub(self.capacity(), Ordering::Relaxed);
        }
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes actually held (the length rounded up to the alignment).
    pub fn capacity(&self) -> usize {
        self.layout.size()
    }

    pub fn align(&self) -> usize {
        self.layout.align()
    }

    /// Reuses the block for a request of `len` bytes (at most `capacity`).
    pub fn set_len(&mut self, len: usize) {
        assert!(len <= self.capacity());
        self.len = len;
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for capacity() >= len initialised (zeroed) bytes.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self gives exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        self.discharge();
        #[cfg(unix)]
        if self.mapped {
            // SAFETY: ptr came from mmap of exactly layout.size() bytes.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.layout.size()) };
            return;
        }
        // SAFETY: ptr came from alloc_zeroed with exactly this layout.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        for align in [512usize, 4096, 65536] {
            let b = AlignedBuf::new(12345, align).unwrap();
            assert_eq!(b.as_ptr() as usize % align, 0);
            assert_eq!(b.len(), 12345);
            assert!(b.capacity() >= 12345);
            assert!(b.as_slice().iter().all(|&x| x == 0));
        }
    }

    #[test]
    fn rejects_non_power_of_two_alignment() {
        assert!(AlignedBuf::new(10, 3000).is_none());
    }

    #[test]
    fn zero_length_still_has_memory() {
        let b = AlignedBuf::new(0, 4096).unwrap();
        assert!(b.is_empty());
        assert_eq!(b.capacity(), 4096);
    }
}
