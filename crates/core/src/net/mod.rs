//! TCP building blocks for the io_uring engine (issue 3): the provided-buffer
//! ring that multishot recv fills, the send-copy pool for small sends, and
//! the in-flight send slab that keeps zero-copy sends' memory alive until the
//! kernel's notifications arrive. The driver integration (accept, connect,
//! recv, send ops and their multishot completions) builds on these.

pub mod addr;
pub mod copy_pool;
pub mod pbuf_ring;
pub mod send_slab;
