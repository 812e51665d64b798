//! The socket half of `NativeRing`: listen, connect, the accept and receive
//! streams, send, half-close, addresses and options. Like the file methods,
//! each returns `0` (or a handle) or `-errno`, and results come back through
//! `onBatch`.

use crate::args::file;
use crate::ring::NativeRing;
use crate::shared::lock;
use napi::Env;
use napi_derive::napi;
use ringline_core::driver::SockOption;
use std::net::{IpAddr, SocketAddr};

/// A socket address as node:net reports it.
#[napi(object)]
pub struct NativeAddress {
    pub address: String,
    pub port: u32,
    /// 4 or 6.
    pub family: u32,
}

fn socket_addr(host: &str, port: u32) -> Result<SocketAddr, i32> {
    let ip: IpAddr = host.parse().map_err(|_| libc::EINVAL)?;
    let port = u16::try_from(port).map_err(|_| libc::EINVAL)?;
    Ok(SocketAddr::new(ip, port))
}

fn handle(r: Result<ringline_core::FileId, i32>) -> f64 {
    match r {
        Ok(id) => id.pack() as f64,
        Err(e) => -f64::from(e),
    }
}

#[napi]
impl NativeRing {
    /// A listening socket on `host` (an IP literal) and `port`: its handle,
    /// or `-errno`.
    #[napi]
    pub fn listen(
        &self,
        host: String,
        port: u32,
        backlog: i32,
        ipv6_only: bool,
        reuse_port: bool,
    ) -> f64 {
        handle(
            socket_addr(&host, port)
                .and_then(|a| lock(&self.shared.driver).listen(a, backlog, ipv6_only, reuse_port)),
        )
    }

    /// Connects to `host` (an IP literal) and `port`; `timeout_ms < 0`: no
    /// timeout. Settles with the socket's handle.
    #[napi]
    pub fn connect(&self, env: Env, token: u32, host: String, port: u32, timeout_ms: f64) -> i32 {
        let timeout = (timeout_ms >= 0.0).then_some(timeout_ms as u64);
        let r = socket_addr(&host, port)
            .and_then(|a| lock(&self.shared.driver).connect(token, a, timeout));
        self.shared.submitted(env.raw(), r)
    }

    /// Starts the accept stream of a listener: `token` settles once per
    /// connection with the new socket's handle.
    #[napi]
    pub fn accept_start(&self, env: Env, token: u32, fid: f64) -> i32 {
        let r = file(fid).and_then(|f| lock(&self.shared.driver).accept_start(token, f));
        self.shared.submitted(env.raw(), r)
    }

    /// Starts the receive stream of a socket: `token` settles once per
    /// chunk (in `payloads`), then with 0 at end of stream or an error.
    #[napi]
    pub fn recv_start(&self, env: Env, token: u32, fid: f64) -> i32 {
        let r = file(fid).and_then(|f| lock(&self.shared.driver).recv_start(token, f));
        self.shared.submitted(env.raw(), r)
    }

    /// Pauses or resumes a receive stream (backpressure). The cancel or
    /// re-arm goes to the kernel with the next flush (the caller schedules
    /// one): flushing here, inside a stream's sink, would settle more
    /// completions inline and chain microtasks past the event loop.
    #[napi]
    pub fn recv_pause(&self, env: Env, fid: f64, paused: bool) -> i32 {
        let r = file(fid).and_then(|f| lock(&self.shared.driver).recv_pause(f, paused));
        self.shared.submitted(env.raw(), r)
    }

    /// Whether the pending stream `token` keeps the process alive (on by
    /// default); `socket.unref()` turns it off for the socket's receive
    /// stream. Ignored for a token that is not pending.
    #[napi]
    pub fn stream_ref(&self, env: Env, token: u32, on: bool) {
        {
            let mut weak = self.shared.weak.get();
            if on {
                weak.remove(&token);
            } else {
                weak.insert(token);
            }
        }
        self.shared.settle_lifecycle(env.raw());
    }

    /// Half-closes a socket once its queued sends are done.
    #[napi]
    pub fn shutdown(&self, env: Env, token: u32, fid: f64) -> i32 {
        let r = file(fid).and_then(|f| lock(&self.shared.driver).shutdown_write(token, f));
        self.shared.submitted(env.raw(), r)
    }

    /// The local (`peer == false`) or remote address, or null.
    #[napi]
    pub fn sock_addr(&self, fid: f64, peer: bool) -> Option<NativeAddress> {
        let f = file(fid).ok()?;
        let a = lock(&self.shared.driver).sock_addr(f, peer).ok()?;
        Some(NativeAddress {
            address: a.ip().to_string(),
            port: u32::from(a.port()),
            family: if a.is_ipv4() { 4 } else { 6 },
        })
    }

    #[napi]
    pub fn set_no_delay(&self, fid: f64, on: bool) -> i32 {
        let r = file(fid)
            .and_then(|f| lock(&self.shared.driver).set_sock_option(f, SockOption::NoDelay(on)));
        r.err().map_or(0, |e| -e)
    }

    /// Keep-alive on or off, with the idle time in seconds (0: default).
    /// Taken as a number, not a `u32`: a JavaScript number past `u32::MAX`
    /// would wrap around (4294967301 s to 5 s); here it saturates, and the
    /// driver clamps it to the longest idle time the kernel takes.
    #[napi]
    pub fn set_keep_alive(&self, fid: f64, on: bool, idle_secs: f64) -> i32 {
        // `as` saturates: NaN and negatives give 0 (the system's idle time).
        let idle = idle_secs as u32;
        let r = file(fid).and_then(|f| {
            lock(&self.shared.driver).set_sock_option(f, SockOption::KeepAlive(on, idle))
        });
        r.err().map_or(0, |e| -e)
    }
}
