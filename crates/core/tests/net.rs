//! Sockets through the driver on 127.0.0.1, over io_uring, mio and the
//! sim's own network: streams, ordered sends, zero-copy, backpressure,
//! close and errors.

#![cfg(target_os = "linux")]

mod common;
use common::Eng;

use ringline_core::driver::{Done, Driver, DriverConfig, NetConfig, Payload, UserBuf};
use ringline_core::FileId;
use std::collections::HashMap;
use std::net::SocketAddr;

fn driver(eng: Eng, net: NetConfig) -> Driver {
    common::driver(
        eng,
        DriverConfig {
            net,
            ..DriverConfig::default()
        },
    )
}

/// What the test saw: settled results by token, received bytes by token.
#[derive(Default)]
struct Seen {
    results: HashMap<u32, Vec<i64>>,
    data: HashMap<u32, Vec<u8>>,
    accepted: Vec<FileId>,
}

/// One round: flush, wait for completions, complete them, copy received
/// bytes out and give the buffers back (as the node binding does).
fn pump(d: &mut Driver, seen: &mut Seen) {
    let mut cqes = Vec::new();
    d.flush_and_reap(&mut cqes).unwrap();
    if cqes.is_empty() {
        d.engine().wait(&mut cqes).unwrap();
    }
    let mut out = Vec::new();
    for c in cqes {
        d.complete(c, &mut out);
    }
    for done in out {
        record(d, seen, done);
    }
    // Buffers are back: publish them, re-arm starved receives.
    let mut out = Vec::new();
    d.after_batch(&mut out);
    for done in out {
        record(d, seen, done);
    }
}

fn record(d: &mut Driver, seen: &mut Seen, done: Done) {
    match done.payload {
        Payload::Received { bid, data } => {
            // SAFETY: the driver lends `result` bytes at data until recycled.
            let bytes = unsafe { std::slice::from_raw_parts(data, done.result as usize) };
            seen.data
                .entry(done.token)
                .or_default()
                .extend_from_slice(bytes);
            d.recycle_received(bid);
        }
        Payload::Accepted(id) => seen.accepted.push(id),
        _ => {}
    }
    seen.results
        .entry(done.token)
        .or_default()
        .push(done.result);
}

fn until(d: &mut Driver, seen: &mut Seen, mut cond: impl FnMut(&Seen) -> bool) {
    let mut rounds = 0;
    while !cond(seen) {
        rounds += 1;
        assert!(rounds < 200_000, "condition never met");
        pump(d, seen);
    }
}

fn settled(seen: &Seen, token: u32) -> Option<i64> {
    seen.results.get(&token).and_then(|v| v.last().copied())
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A connected pair: (listener, client, server side).
fn pair(d: &mut Driver, seen: &mut Seen) -> (FileId, FileId, FileId) {
    let l = d.listen(local(), 16, false, false).unwrap();
    let addr = d.sock_addr(l, false).unwrap();
    d.accept_start(900, l).unwrap();
    d.connect(901, addr, None).unwrap();
    until(d, seen, |s| {
        settled(s, 901).is_some() && !s.accepted.is_empty()
    });
    let c = FileId::unpack(settled(seen, 901).unwrap() as u64).unwrap();
    let s = seen.accepted.pop().unwrap();
    (l, c, s)
}

fn ubuf(b: &[u8]) -> UserBuf {
    UserBuf {
        ptr: b.as_ptr() as *mut u8,
        len: b.len(),
    }
}

fn drain(d: &mut Driver, seen: &mut Seen) {
    while d.pending() > 0 {
        pump(d, seen);
    }
}

fn sends_arrive_whole_and_in_order_then_end_of_stream(eng: Eng) {
    let mut d = driver(eng, NetConfig::default());
    let mut seen = Seen::default();
    let (l, c, s) = pair(&mut d, &mut seen);
    d.recv_start(1, s).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut want = Vec::new();
    // Small (copy pool), gathered, large (bounce): queued back to back.
    d.send(10, c, &[ubuf(b"hello ")], false).unwrap();
    want.extend_from_slice(b"hello ");
    d.send(11, c, &[ubuf(b"head:"), ubuf(b"body;")], false)
        .unwrap();
    want.extend_from_slice(b"head:body;");
    // Over 1 MiB: copied into several bounce blocks, crossing buffers.
    d.send(12, c, &[ubuf(b"<"), ubuf(&big), ubuf(b">")], false)
        .unwrap();
    want.push(b'<');
    want.extend_from_slice(&big);
    want.push(b'>');
    d.shutdown_write(13, c).unwrap();
    until(&mut d, &mut seen, |s| settled(s, 1) == Some(0));
    assert_eq!(settled(&seen, 10), Some(6));
    assert_eq!(settled(&seen, 11), Some(10));
    assert_eq!(settled(&seen, 12), Some(big.len() as i64 + 2));
    assert_eq!(settled(&seen, 13), Some(0));
    assert!(seen.data[&1] == want, "bytes differ");
    // Every event but the last (0: end of stream) carried data.
    let events = &seen.results[&1];
    assert!(events[..events.len() - 1].iter().all(|r| *r > 0));
    for (t, id) in [(20, c), (21, s), (22, l)] {
        let mut out = Vec::new();
        d.close_file(t, id, &mut out).unwrap();
        for done in out {
            record(&mut d, &mut seen, done);
        }
    }
    until(&mut d, &mut seen, |s| {
        (20..23).all(|t| settled(s, t) == Some(0))
    });
    // The listener's accept stream ended with the listener.
    assert_eq!(seen.results[&900].last(), Some(&-(libc::ECANCELED as i64)));
    drain(&mut d, &mut seen);
    assert_eq!(d.stats().sockets, 0);
    assert_eq!(d.stats().recv_buffers_in_use, 0);
}

fn zero_copy_send_of_library_memory_settles_after_the_notification(eng: Eng) {
    let mut d = driver(eng, NetConfig::default());
    let mut seen = Seen::default();
    let (_l, c, s) = pair(&mut d, &mut seen);
    d.recv_start(1, s).unwrap();
    let (buf, _) = d.alloc_aligned(1 << 20).unwrap();
    // SAFETY: the block is ours and nothing else uses it yet.
    let bytes = unsafe { std::slice::from_raw_parts_mut(buf.as_ptr(), 1 << 20) };
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = (i % 253) as u8;
    }
    d.send(2, c, &[ubuf(bytes)], true).unwrap();
    until(&mut d, &mut seen, |s| {
        settled(s, 2).is_some() && s.data.get(&1).map_or(0, Vec::len) == 1 << 20
    });
    assert_eq!(settled(&seen, 2), Some(1 << 20));
    assert!(seen.data[&1] == bytes);
    let st = d.stats();
    if eng == Eng::IoUring {
        assert!(st.zero_copy_supported);
        assert_eq!(st.zero_copy_sends, 1);
        // Loopback never sends zero-copy: the notification says it copied.
        assert_eq!(st.zero_copy_copied, 1);
    } else {
        // mio copies: the same bytes arrive, and stats say so.
        assert!(!st.zero_copy_supported);
        assert_eq!(st.zero_copy_sends, 0);
        assert!(st.degradations.iter().any(|d| d.contains("zero-copy")));
    }
}

fn close_settles_the_receive_stream_and_queued_sends_once(eng: Eng) {
    let mut d = driver(eng, NetConfig::default());
    let mut seen = Seen::default();
    let (l, c, s) = pair(&mut d, &mut seen);
    let mut out = Vec::new();
    d.close_file(8, l, &mut out).unwrap();
    d.recv_start(1, c).unwrap();
    // The peer never reads: a 64 MiB send blocks, the next ones queue.
    let big = vec![7u8; 64 << 20];
    d.send(2, c, &[ubuf(&big)], false).unwrap();
    d.send(3, c, &[ubuf(b"x")], false).unwrap();
    d.shutdown_write(4, c).unwrap();
    d.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut out = Vec::new();
    d.close_file(5, c, &mut out).unwrap();
    for done in out {
        record(&mut d, &mut seen, done);
    }
    until(&mut d, &mut seen, |s| settled(s, 5).is_some());
    drain(&mut d, &mut seen);
    for t in 1..5 {
        assert_eq!(
            seen.results[&t],
            vec![-(libc::ECANCELED as i64)],
            "token {t}"
        );
    }
    assert_eq!(settled(&seen, 5), Some(0));
    let mut out = Vec::new();
    assert_eq!(d.send(6, c, &[ubuf(b"x")], false), Err(libc::EBADF));
    d.close_file(7, s, &mut out).unwrap();
    drain(&mut d, &mut seen);
}

fn receive_pauses_and_resumes_and_survives_running_out_of_buffers(eng: Eng) {
    // Four 64-byte buffers: a 1 MiB message runs them out many times.
    let mut d = driver(
        eng,
        NetConfig {
            recv_buffers: 4,
            recv_buffer_size: 64,
            ..NetConfig::default()
        },
    );
    let mut seen = Seen::default();
    let (_l, c, s) = pair(&mut d, &mut seen);
    d.recv_start(1, s).unwrap();
    d.recv_pause(s, true).unwrap();
    let msg: Vec<u8> = (0..1_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    d.send(2, c, &[ubuf(&msg)], false).unwrap();
    // Paused: the send cannot finish beyond what the socket buffers hold,
    // and nothing is received.
    for _ in 0..20 {
        d.flush().unwrap();
        let mut cqes = Vec::new();
        d.engine().reap(&mut cqes);
        let mut out = Vec::new();
        for q in cqes {
            d.complete(q, &mut out);
        }
        for done in out {
            record(&mut d, &mut seen, done);
        }
        let mut out = Vec::new();
        d.after_batch(&mut out);
        assert!(out.is_empty());
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let before = seen.data.get(&1).map_or(0, Vec::len);
    d.recv_pause(s, false).unwrap();
    until(&mut d, &mut seen, |x| {
        x.data.get(&1).map_or(0, Vec::len) == msg.len()
    });
    assert!(before < msg.len());
    assert!(seen.data[&1] == msg);
    assert!(d.stats().recv_rearms > 0);
    assert_eq!(settled(&seen, 2), Some(msg.len() as i64));
}

fn connect_refused_and_reset_peer_are_errors_not_crashes(eng: Eng) {
    let mut d = driver(eng, NetConfig::default());
    let mut seen = Seen::default();
    // A port nobody listens on: bind one, learn it, close it.
    let l = d.listen(local(), 1, false, false).unwrap();
    let addr = d.sock_addr(l, false).unwrap();
    let mut out = Vec::new();
    d.close_file(1, l, &mut out).unwrap();
    until(&mut d, &mut seen, |s| settled(s, 1).is_some());
    d.connect(2, addr, Some(5_000)).unwrap();
    until(&mut d, &mut seen, |s| settled(s, 2).is_some());
    assert_eq!(settled(&seen, 2), Some(-(libc::ECONNREFUSED as i64)));

    let (_l, c, s) = pair(&mut d, &mut seen);
    d.recv_start(3, c).unwrap();
    if eng == Eng::Sim {
        // The sim's sockets are no kernel's: a fault rule resets the
        // connection at the server's next send.
        use ringline_core::engine::sim::fault::{Fault, FaultKind};
        d.engine().sim().unwrap().add_fault(Fault {
            op: Some("send".into()),
            path: None,
            kind: FaultKind::Error(libc::ECONNRESET),
            after: 0,
            times: 1,
            per_million: 1_000_000,
            seen: 0,
            hits: 0,
        });
        d.send(4, s, &[ubuf(b"x")], false).unwrap();
    } else {
        reset_by_closing(&mut d, s);
    }
    until(&mut d, &mut seen, |x| settled(x, 3).is_some());
    assert_eq!(settled(&seen, 3), Some(-(libc::ECONNRESET as i64)));
    let big = vec![1u8; 1 << 20];
    d.send(5, c, &[ubuf(&big)], false).unwrap();
    until(&mut d, &mut seen, |x| settled(x, 5).is_some());
    let r = settled(&seen, 5).unwrap();
    assert!(
        r == -(libc::EPIPE as i64) || r == -(libc::ECONNRESET as i64),
        "{r}"
    );
}

fn a_lone_send_is_done_during_its_call_and_the_next_of_its_run_queues(eng: Eng) {
    let mut d = driver(eng, NetConfig::default());
    let mut seen = Seen::default();
    let (_l, c, s) = pair(&mut d, &mut seen);
    d.recv_start(1, s).unwrap();
    let mut cqes = Vec::new();
    d.flush_and_reap(&mut cqes).unwrap();
    for q in cqes {
        let mut out = Vec::new();
        d.complete(q, &mut out);
        for done in out {
            record(&mut d, &mut seen, done);
        }
    }
    let before = d.stats();
    let pending = d.pending();
    // Nothing queued, nothing sent at once since the reap: the socket
    // takes it during the call (the sim has no socket to take it).
    let first = d.send_or_now(10, c, &[ubuf(b"one;")]).unwrap();
    // The second of the same run goes through the ring, behind the first.
    let second = d.send_or_now(11, c, &[ubuf(b"two;")]).unwrap();
    assert_eq!(second, None);
    // Nothing to send is refused, not done.
    assert_eq!(d.send_or_now(12, c, &[]), Err(libc::EINVAL));
    until(&mut d, &mut seen, |s| {
        s.data.get(&1).map_or(0, Vec::len) == 8 && settled(s, 11).is_some()
    });
    // Nothing of either send is left pending (the receive stream is).
    assert_eq!(d.pending(), pending);
    assert_eq!(seen.data[&1], b"one;two;");
    assert_eq!(settled(&seen, 11), Some(4));
    assert_eq!(settled(&seen, 12), None);
    let st = d.stats();
    if eng == Eng::Sim {
        assert_eq!(first, None);
        assert_eq!(settled(&seen, 10), Some(4));
    } else {
        assert_eq!(first, Some(4));
        // Done: the token is never settled, and nothing of it is pending.
        assert_eq!(settled(&seen, 10), None);
        assert_eq!(st.sent_at_once, before.sent_at_once + 1);
    }
    assert_eq!(st.sends, before.sends + 2);
    assert_eq!(st.submitted, before.submitted + 2);
}

/// Closes socket `s` with a reset: SO_LINGER 0, then close.
fn reset_by_closing(d: &mut Driver, s: FileId) {
    let fd = d.file_info(s).unwrap().0;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: valid fd and option struct.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        )
    };
    let mut out = Vec::new();
    d.close_file(4, s, &mut out).unwrap();
}

per_engine_and_sim!(
    sends_arrive_whole_and_in_order_then_end_of_stream,
    zero_copy_send_of_library_memory_settles_after_the_notification,
    close_settles_the_receive_stream_and_queued_sends_once,
    receive_pauses_and_resumes_and_survives_running_out_of_buffers,
    connect_refused_and_reset_peer_are_errors_not_crashes,
    a_lone_send_is_done_during_its_call_and_the_next_of_its_run_queues,
);
