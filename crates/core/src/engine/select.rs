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
    /// The sim engine: an in-memory disk, seeded (`EngineConfig::seed`).
    Sim,
}

impl Backend {
    pub fn parse(s: &str) -> Option<Backend> {
        match s {
            "auto" => Some(Backend::Auto),
            "io_uring" => Some(Backend::IoUring),
            "mio" => Some(Backend::Mio),
            "sim" => Some(Backend::Sim),
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
    /// The process (or system) ran out of file descriptors: `EMFILE` or
    /// `ENFILE` (positive) and the call that failed. No engine can be made
    /// then, mio included, so it is reported as that system error (never as
    /// io_uring being unavailable, and `Auto` does not fall back for it).
    pub system: Option<(i32, &'static str)>,
    pub reason: String,
}

/// An engine's setup failed: the errno when the failure is the descriptor
/// limit (see [`SelectError::system`]), and the reason.
struct Failure {
    system: Option<(i32, &'static str)>,
    reason: String,
}

/// Whether `errno` says the descriptor limit was hit.
fn fd_limit(errno: Option<i32>) -> bool {
    matches!(errno, Some(libc::EMFILE | libc::ENFILE))
}

/// Makes the engine `backend` asks for.
pub fn select(cfg: &EngineConfig, backend: Backend) -> Result<Selected, SelectError> {
    if backend == Backend::Sim {
        return sim(cfg)
            .map_err(|e| SelectError {
                io_uring_unavailable: false,
                system: fd_limit(e.raw_os_error())
                    .then(|| (e.raw_os_error().unwrap_or(0), "eventfd")),
                reason: format!("the sim engine failed: {e}"),
            })
            .map(|engine| Selected {
                engine,
                fallback_reason: None,
            });
    }
    let uring_reason = match backend {
        Backend::Mio | Backend::Sim => None,
        Backend::Auto | Backend::IoUring => match uring(cfg) {
            Ok(engine) => {
                return Ok(Selected {
                    engine,
                    fallback_reason: None,
                })
            }
            // Out of descriptors: mio would be too, and io_uring is there.
            Err(Failure {
                system: Some(system),
                reason,
            }) => {
                return Err(SelectError {
                    io_uring_unavailable: false,
                    system: Some(system),
                    reason,
                })
            }
            Err(f) if backend == Backend::IoUring => {
                return Err(SelectError {
                    io_uring_unavailable: true,
                    system: None,
                    reason: f.reason,
                })
            }
            Err(f) => Some(f.reason),
        },
    };
    match mio(cfg) {
        Ok(engine) => Ok(Selected {
            engine,
            fallback_reason: uring_reason,
        }),
        Err(e) => Err(SelectError {
            io_uring_unavailable: false,
            system: fd_limit(e.raw_os_error()).then(|| (e.raw_os_error().unwrap_or(0), MIO_SETUP)),
            reason: match uring_reason {
                Some(r) => format!("{r}; and the mio engine failed: {e}"),
                None => format!("the mio engine failed: {e}"),
            },
        }),
    }
}

/// What a mio setup failure names as its call: the engine makes several
/// descriptors (the poller, its waker, a timer, the waiter's pipe and
/// epoll set), and its error does not say which one failed.
const MIO_SETUP: &str = "mio_engine_init";

#[cfg(target_os = "linux")]
fn uring(cfg: &EngineConfig) -> Result<Arc<dyn Engine>, Failure> {
    super::uring::UringEngine::new(cfg)
        .map(|e| Arc::new(e) as Arc<dyn Engine>)
        .map_err(|e| Failure {
            system: fd_limit(Some(e.errno)).then(|| (e.errno, setup_call(&e.reason))),
            reason: e.reason,
        })
}

/// The call a failed io_uring setup names first (its reason reads
/// "io_uring_setup: ..." or "eventfd: ..."): of the calls it makes, only
/// these two create a descriptor.
#[cfg(target_os = "linux")]
fn setup_call(reason: &str) -> &'static str {
    if reason.starts_with("eventfd") {
        "eventfd"
    } else {
        "io_uring_setup"
    }
}

#[cfg(not(target_os = "linux"))]
fn uring(_cfg: &EngineConfig) -> Result<Arc<dyn Engine>, Failure> {
    Err(Failure {
        system: None,
        reason: format!(
            "io_uring exists only on Linux (this is {})",
            std::env::consts::OS
        ),
    })
}

#[cfg(target_os = "linux")]
fn sim(cfg: &EngineConfig) -> std::io::Result<Arc<dyn Engine>> {
    Ok(Arc::new(super::sim::SimEngine::new(cfg)?))
}

#[cfg(not(target_os = "linux"))]
fn sim(_cfg: &EngineConfig) -> std::io::Result<Arc<dyn Engine>> {
    Err(std::io::Error::other(
        "the sim engine is built for Linux only so far",
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
