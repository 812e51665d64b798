//! Owned, aligned, zero-initialised memory.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

/// A heap block aligned to at least `align` bytes. The memory never moves
/// and is freed only when the last owner drops it, so the kernel may hold its
/// address for as long as an owner (an in-flight op) keeps it.
#[derive(Debug)]
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
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
        // SAFETY: layout has non-zero size (len.max(1) rounded up).
        let ptr = NonNull::new(unsafe { alloc_zeroed(layout) })?;
        Some(AlignedBuf { ptr, len, layout })
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
