//! ringline core: the driver (op table, command slab, file table, buffer
//! pools) and the engines that move its ops to the kernel. Knows nothing of
//! napi; tested with `cargo test`.

pub mod buffer;
pub mod busy_poll;
pub mod driver;
pub mod engine;
pub mod file_table;
pub mod id_hash;
pub mod net;
pub mod op;
pub mod slab;

pub use driver::{Done, Driver, DriverConfig, PathOp, Payload, Stats, UserBuf};
pub use file_table::FileId;
pub use op::{SyncKind, CURRENT_POSITION};
