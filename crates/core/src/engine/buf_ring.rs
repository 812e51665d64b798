//! A provided-buffer ring as the engines that play the kernel's part see
//! it (mio, sim): the driver publishes buffers in the ring's slots, the
//! engine takes them from the head in order and names them in completions.

/// A provided-buffer ring registered by the driver: the engine plays the
/// kernel's part, reading slots `head..tail` (tail published by the driver
/// in slot 0's `resv` field with release ordering).
pub struct BufRing {
    addr: u64,
    entries: u16,
    head: u16,
}

impl BufRing {
    /// The ring at `addr` with `entries` slots (a power of two, 8-aligned),
    /// as `register_buf_ring` gets it; `EINVAL` otherwise.
    pub fn new(addr: u64, entries: u16) -> Result<BufRing, i32> {
        if !entries.is_power_of_two() || addr == 0 || !addr.is_multiple_of(8) {
            return Err(libc::EINVAL);
        }
        Ok(BufRing {
            addr,
            entries,
            head: 0,
        })
    }

    /// Buffers published by the driver and not yet used, from the head.
    pub fn available(&self) -> u16 {
        // SAFETY: the driver keeps the ring (entries * 16 bytes, 8-aligned)
        // allocated while registered; byte 14 of slot 0 is the u16 tail,
        // written by the driver with release ordering.
        let tail = unsafe { &*((self.addr + 14) as *const std::sync::atomic::AtomicU16) }
            .load(std::sync::atomic::Ordering::Acquire);
        tail.wrapping_sub(self.head)
    }

    /// The buffer `i` places after the head (`i < available()`):
    /// `(address, length, buffer id)`.
    pub fn at(&self, i: u16) -> (*mut u8, usize, u16) {
        let slot = self.addr + 16 * u64::from(self.head.wrapping_add(i) & (self.entries - 1));
        // SAFETY: slot lies inside the ring; slots head..tail were fully
        // written before the tail store `available` acquired; io_uring_buf
        // is { addr: u64, len: u32, bid: u16, resv: u16 }.
        let (addr, len, bid) = unsafe {
            (
                std::ptr::read(slot as *const u64),
                std::ptr::read((slot + 8) as *const u32),
                std::ptr::read((slot + 12) as *const u16),
            )
        };
        (addr as *mut u8, len as usize, bid)
    }

    pub fn consume(&mut self) {
        self.head = self.head.wrapping_add(1);
    }
}
