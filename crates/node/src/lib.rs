//! ringline's Node binding (napi-rs): JS values in, core ops out, and one
//! threadsafe-function call per completion batch back. No I/O logic lives
//! here; that is `ringline-core`'s.

#![deny(clippy::all)]

mod args;
mod completion;
mod fast;
mod js;
mod js_only;
mod loop_poll;
mod net;
mod payload;
mod ring;
mod shared;

pub use ring::NativeRing;
