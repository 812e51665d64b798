//! Choosing the engine at run time (DESIGN.md: never at build time): io_uring
//! when the kernel sets it up and has every opcode the engine issues, mio
//! otherwise, with the reason.

use super::{Engine, EngineConfig};
use std::sync::Arc;

/// Which engine a Ring asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// io_uring where it works, else mio.
    Auto,
    /// io_uring or an error.
    IoUring,
    /// mio, even where io_uring works.
    Mio,
}

impl Backend {
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "auto" => Some(Backend::Auto),
            "io_uring" => Some(Backend::IoUring),
            "mio" => Some(Backend::Mio),
            _ => None,
        }
    }
}

/// The engine chosen, and why io_uring was not (for `Auto` only).
pub struct Selected {
    pub engine: Arc<dyn Engine>,
    pub fallback_reason: Option<String>,
}

/// Why no engine could be made.
#[derive(Debug)]
pub struct SelectError {
    /// io_uring was asked for and is not available (the rest is the reason).
    pub io_uring_unavailable: bool,
    pub reason: String,
}

/// Makes the engine `backend` asks for.
pub fn select(cfg: &EngineConfig, backend: Backend) -> Result<Selected, SelectError> {
    let uring_reason = match backend {
        Backend::Mio => None,
        Backend::Auto | Backend::IoUring => match uring(cfg) {
            Ok(engine) => {
                return Ok(Selected {
                    engine,
                    fallback_reason: None,
                })
            }
            Err(reason) if backend == Backend::IoUring => {
                return Err(SelectError {
                    io_uring_unavailable: true,
                    reason,
                })
            }
            Err(reason) => Some(reason),
        },
    };
    match mio(cfg) {
        Ok(engine) => Ok(Selected {
            engine,
            fallback_reason: uring_reason,
        }),
        Err(e) => Err(SelectError {
            io_uring_unavailable: false,
            reason: match uring_reason {
                Some(r) => format!("{r}; and the mio engine failed: {e}"),
                None => format!("the mio engine failed: {e}"),
            },
        }),
    }
}

#[cfg(target_os = "linux")]
fn uring(cfg: &EngineConfig) -> Result<Arc<dyn Engine>, String> {
    super::uring::UringEngine::new(cfg)
        .map(|e| Arc::new(e) as Arc<dyn Engine>)
        .map_err(|e| e.reason)
}

#[cfg(not(target_os = "linux"))]
fn uring(_cfg: &EngineConfig) -> Result<Arc<dyn Engine>, String> {
    Err(format!(
        "io_uring exists only on Linux (this is {})",
        std::env::consts::OS
    ))
}

#[cfg(unix)]
fn mio(cfg: &EngineConfig) -> std::io::Result<Arc<dyn Engine>> {
    Ok(Arc::new(super::mio::MioEngine::new(cfg)?))
}

#[cfg(not(unix))]
fn mio(_cfg: &EngineConfig) -> std::io::Result<Arc<dyn Engine>> {
    Err(std::io::Error::other(
        "the mio engine is not built for this platform yet",
    ))
}
