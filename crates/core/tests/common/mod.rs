//! What the engine tests share: every test runs once per engine
//! (`per_engine!`), so no feature can pass on one and be missing on the
//! other.

use ringline_core::driver::{Driver, DriverConfig};
use ringline_core::engine::{select, Backend, Engine, EngineConfig};
use std::sync::Arc;

/// The engines the suite runs over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eng {
    IoUring,
    Mio,
    /// The sim engine (seed 1): only where a test touches nothing real
    /// (`per_engine_and_sim!`).
    #[allow(dead_code)] // a test crate that does not use that macro never makes one
    Sim,
}

/// A fresh engine of kind `e` (io_uring must be available: this suite runs
/// on Linux with io_uring; the refusal test covers machines without it).
pub fn engine(e: Eng) -> Arc<dyn Engine> {
    engine_with(e, &EngineConfig::default())
}

/// A fresh engine of kind `e` set up with `cfg`.
pub fn engine_with(e: Eng, cfg: &EngineConfig) -> Arc<dyn Engine> {
    let backend = match e {
        Eng::IoUring => Backend::IoUring,
        Eng::Mio => Backend::Mio,
        Eng::Sim => Backend::Sim,
    };
    let cfg = EngineConfig {
        seed: 1,
        ..cfg.clone()
    };
    let sel = select(&cfg, backend).expect("engine available");
    assert_eq!(sel.engine.name(), name(e));
    sel.engine
}

/// A driver with `cfg` over a fresh engine of kind `e`.
pub fn driver(e: Eng, cfg: DriverConfig) -> Driver {
    Driver::new(engine(e), cfg)
}

pub fn name(e: Eng) -> &'static str {
    match e {
        Eng::IoUring => "io_uring",
        Eng::Mio => "mio",
        Eng::Sim => "sim",
    }
}

/// For each named test function `fn t(eng: Eng)`, a `#[test]` in module
/// `io_uring` and one in module `mio` (run as `io_uring::t`, `mio::t`).
#[macro_export]
macro_rules! per_engine {
    ($($t:ident),* $(,)?) => {
        mod io_uring {
            $(#[test] fn $t() { super::$t(super::common::Eng::IoUring) })*
        }
        mod mio {
            $(#[test] fn $t() { super::$t(super::common::Eng::Mio) })*
        }
    };
}

/// `per_engine!`, and a module `sim` running the tests on the sim engine:
/// for tests that touch nothing the sim cannot have (real files, other
/// processes).
#[macro_export]
macro_rules! per_engine_and_sim {
    ($($t:ident),* $(,)?) => {
        $crate::per_engine!($($t),*);
        mod sim {
            $(#[test] fn $t() { super::$t(super::common::Eng::Sim) })*
        }
    };
}
