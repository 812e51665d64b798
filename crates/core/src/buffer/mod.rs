//! Memory the kernel may touch: aligned allocations, the per-Ring registry of
//! library-owned buffers (registered with the kernel where it allows), and
//! the bounce pool that stands in for user memory.

mod aligned;
mod bounce;
mod registry;

pub use aligned::AlignedBuf;
pub use bounce::BouncePool;
pub use registry::{BufferRegistry, Pinned, Registration};
