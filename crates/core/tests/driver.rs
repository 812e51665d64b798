//! The driver over the real io_uring engine: every op settles exactly once,
//! memory and handles behave as DESIGN.md's invariants say.

#![cfg(target_os = "linux")]

mod common;
use common::Eng;

use ringline_core::driver::{Done, Driver, DriverConfig, PathOp, Payload, UserBuf};
use ringline_core::op::{BlockingCall, Cqe};
use ringline_core::{FileId, SyncKind, CURRENT_POSITION};
use std::collections::HashMap;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn driver(eng: Eng, max_in_flight: usize) -> Driver {
    common::driver(
        eng,
        DriverConfig {
            max_in_flight,
            ..DriverConfig::default()
        },
    )
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// Runs the driver until every token in `want` has settled; returns them.
fn settle(d: &mut Driver, want: &[u32], early: Vec<Done>) -> HashMap<u32, Done> {
    settle_with(d, want, early, |d, cqes| {
        d.flush_and_reap(cqes).unwrap();
    })
}

/// [`settle`], with `submit` putting what is queued in the kernel (and
/// reaping what it can) each round.
fn settle_with(
    d: &mut Driver,
    want: &[u32],
    early: Vec<Done>,
    mut submit: impl FnMut(&mut Driver, &mut Vec<Cqe>),
) -> HashMap<u32, Done> {
    let mut got: HashMap<u32, Done> = HashMap::new();
    for done in early {
        assert!(got.insert(done.token, done).is_none(), "settled twice");
    }
    let mut cqes = Vec::new();
    let mut rounds = 0;
    while !want.iter().all(|t| got.contains_key(t)) {
        rounds += 1;
        assert!(
            rounds < 1_000_000,
            "tokens never settled: {:?}",
            want.iter()
                .filter(|t| !got.contains_key(t))
                .collect::<Vec<_>>()
        );
        cqes.clear();
        submit(d, &mut cqes);
        if cqes.is_empty() {
            d.engine().wait(&mut cqes).unwrap();
        }
        let mut out = Vec::new();
        for c in cqes.drain(..) {
            d.complete(c, &mut out);
        }
        for done in out {
            let t = done.token;
            assert!(got.insert(t, done).is_none(), "token {t} settled twice");
        }
    }
    got
}

/// Drives the driver until nothing is pending (orphans included).
fn drain(d: &mut Driver) -> Vec<Done> {
    let mut all = Vec::new();
    let mut cqes = Vec::new();
    while d.pending() > 0 {
        cqes.clear();
        d.flush_and_reap(&mut cqes).unwrap();
        if cqes.is_empty() {
            d.engine().wait(&mut cqes).unwrap();
        }
        for c in cqes.drain(..) {
            d.complete(c, &mut all);
        }
    }
    all
}

fn open(d: &mut Driver, path: &Path, flags: i32) -> FileId {
    d.open(1000, cpath(path), flags, 0o644).unwrap();
    let done = settle(d, &[1000], vec![]).remove(&1000).unwrap();
    assert!(done.result >= 0, "open failed: {}", done.result);
    match done.payload {
        Payload::Opened(id) => {
            assert_eq!(id.pack() as i64, done.result);
            id
        }
        p => panic!("open gave {p:?}"),
    }
}

/// Opens `path` with `O_DIRECT | flags`, or `None` where the filesystem
/// refuses O_DIRECT (tmpfs): the test has nothing to check there.
fn open_direct(d: &mut Driver, path: &Path, flags: i32) -> Option<FileId> {
    d.open(1000, cpath(path), flags | libc::O_DIRECT, 0)
        .unwrap();
    let done = settle(d, &[1000], vec![]).remove(&1000).unwrap();
    if done.result == -i64::from(libc::EINVAL) {
        eprintln!("O_DIRECT unsupported on this filesystem; nothing to check");
        return None;
    }
    match done.payload {
        Payload::Opened(id) => Some(id),
        p => panic!("open gave {p:?} ({})", done.result),
    }
}

fn user(buf: &mut [u8]) -> UserBuf {
    UserBuf {
        ptr: buf.as_mut_ptr(),
        len: buf.len(),
    }
}

fn fifo(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("fifo");
    let c = cpath(&p);
    // SAFETY: valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    p
}

fn write_then_read_back_through_bounce_and_pinned_memory(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let mut d = driver(eng, 64);
    let f = open(&mut d, &dir.path().join("a"), libc::O_RDWR | libc::O_CREAT);
    let mut data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
    d.write(1, f, user(&mut data), 0).unwrap();
    assert_eq!(settle(&mut d, &[1], vec![])[&1].result, 10_000);

    // User memory: bounced, copied back by the caller from the payload.
    let mut back = vec![0u8; 4096];
    d.read(2, f, user(&mut back), 5, 100).unwrap();
    let done = settle(&mut d, &[2], vec![]).remove(&2).unwrap();
    assert_eq!(done.result, 4096);
    match done.payload {
        Payload::Bounce { buf, user_offset } => {
            assert_eq!(user_offset, 5);
            assert_eq!(buf.as_slice(), &data[100..4196]);
            d.recycle(buf);
        }
        p => panic!("expected a bounce payload, got {p:?}"),
    }

    // Library memory: the kernel reads into it directly.
    let (block, _) = d.alloc_aligned(8192).unwrap();
    let ub = UserBuf {
        ptr: block.as_ptr(),
        len: 8192,
    };
    d.read(3, f, ub, 0, 0).unwrap();
    let done = settle(&mut d, &[3], vec![]).remove(&3).unwrap();
    assert_eq!(done.result, 8192);
    assert!(matches!(done.payload, Payload::None));
    // SAFETY: the read completed; block holds 8192 initialised bytes.
    let got = unsafe { std::slice::from_raw_parts(block.as_ptr(), 8192) };
    assert_eq!(got, &data[..8192]);
    let s = d.stats();
    assert_eq!(s.bounced, 2, "one bounced write, one bounced read");
    if eng == Eng::IoUring {
        assert!(s.registered_buffers >= 1);
        assert_eq!(s.fixed_buffer_ops, 1);
        assert!(s.degradations.is_empty());
    } else {
        // No registered buffers on mio: plain aligned memory, still no bounce.
        assert_eq!(s.registered_buffers, 0);
        assert!(s.unregistered_buffers >= 1);
        assert_eq!(s.fixed_buffer_ops, 0);
        assert!(s
            .degradations
            .iter()
            .any(|d| d.contains("registered buffers")));
    }
}

/// A read alone in its flush, of data in the page cache, is done within
/// the flush (io_uring: by preadv2 on the submitting thread; mio: the same
/// inline read): its completion is there when the flush returns. Past the
/// end it reads 0; a read that reaches past the end (short), one at the
/// file position, and reads that share a flush go through the ring, and
/// every one gets the right bytes, also from a registered (fixed) buffer.
fn a_lone_page_cache_read_completes_within_its_flush(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&path, &data).unwrap();
    let mut d = driver(eng, 64);
    let f = open(&mut d, &path, libc::O_RDONLY);
    let (block, _) = d.alloc_aligned(3 * 4096).unwrap();
    let ub = |i: usize, len: usize| UserBuf {
        // SAFETY: within the 3-block allocation.
        ptr: unsafe { block.as_ptr().add(i * 4096) },
        len,
    };
    let got = |i: usize, len: usize| {
        // SAFETY: the read completed; the block holds these bytes.
        unsafe { std::slice::from_raw_parts(block.as_ptr().add(i * 4096), len) }.to_vec()
    };
    let lone = |d: &mut Driver, token: u32| {
        let mut cqes = Vec::new();
        d.flush_and_reap(&mut cqes).unwrap();
        let mut out = Vec::new();
        for c in cqes {
            d.complete(c, &mut out);
        }
        out.into_iter().find(|x| x.token == token)
    };
    for round in 0..3u32 {
        let t = 10 + round;
        d.read(t, f, ub(0, 4096), 0, 4096 * u64::from(round))
            .unwrap();
        let done = lone(&mut d, t).expect("completed within the flush");
        assert_eq!(done.result, 4096);
        let at = 4096 * round as usize;
        assert_eq!(got(0, 4096), &data[at..at + 4096]);
    }
    d.read(20, f, ub(0, 4096), 0, 40_000).unwrap();
    assert_eq!(lone(&mut d, 20).expect("end of file").result, 0);
    // Short: 20,000 - 16,384 bytes are left.
    d.read(21, f, ub(1, 4096), 0, 16_384).unwrap();
    assert_eq!(settle(&mut d, &[21], vec![])[&21].result, 3616);
    assert_eq!(got(1, 3616), &data[16_384..]);
    // At the file position (0: nothing read that way yet).
    d.read(22, f, ub(2, 100), 0, ringline_core::CURRENT_POSITION)
        .unwrap();
    assert_eq!(settle(&mut d, &[22], vec![])[&22].result, 100);
    assert_eq!(got(2, 100), &data[..100]);
    // Three in one flush.
    for (i, t) in [30u32, 31, 32].into_iter().enumerate() {
        d.read(t, f, ub(i, 4096), 0, 1000 + 4096 * i as u64)
            .unwrap();
    }
    let all = settle(&mut d, &[30, 31, 32], vec![]);
    for (i, t) in [30u32, 31, 32].into_iter().enumerate() {
        assert_eq!(all[&t].result, 4096);
        let at = 1000 + 4096 * i;
        assert_eq!(got(i, 4096), &data[at..at + 4096]);
    }
    d.close_file(40, f, &mut Vec::new()).unwrap();
    assert_eq!(settle(&mut d, &[40], vec![])[&40].result, 0);
}

fn backlog_holds_ops_beyond_the_in_flight_bound(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b");
    std::fs::write(&path, (0..=255u8).cycle().take(1 << 16).collect::<Vec<_>>()).unwrap();
    let mut d = driver(eng, 2);
    let f = open(&mut d, &path, libc::O_RDONLY);
    let mut bufs: Vec<Vec<u8>> = (0..100).map(|_| vec![0u8; 16]).collect();
    for (i, b) in bufs.iter_mut().enumerate() {
        d.read(i as u32, f, user(b), 0, (i * 256) as u64).unwrap();
    }
    assert_eq!(d.stats().in_flight, 2);
    assert_eq!(d.stats().queued, 98);
    let tokens: Vec<u32> = (0..100).collect();
    let got = settle(&mut d, &tokens, vec![]);
    for (t, done) in got {
        assert_eq!(done.result, 16, "token {t}");
        if let Payload::Bounce { buf, .. } = done.payload {
            assert_eq!(
                buf.as_slice()[0],
                0,
                "each read starts at a multiple of 256"
            );
            assert_eq!(buf.as_slice()[15], 15);
        }
    }
    assert_eq!(d.pending(), 0);
}

fn closing_a_file_waits_for_its_pending_ops(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let p = fifo(dir.path());
    let mut d = driver(eng, 64);
    let f = open(&mut d, &p, libc::O_RDWR);
    let mut bufs: Vec<Vec<u8>> = (0..8).map(|_| vec![0u8; 64]).collect();
    for (i, b) in bufs.iter_mut().enumerate() {
        d.read(i as u32, f, user(b), 0, CURRENT_POSITION).unwrap();
    }
    let mut cqes = Vec::new();
    d.flush_and_reap(&mut cqes).unwrap();
    assert!(cqes.is_empty(), "FIFO reads with no data stay pending");
    let mut early = Vec::new();
    d.close_file(50, f, &mut early).unwrap();
    assert!(early.is_empty(), "the reads are not cancelled");
    let mut b = vec![0u8; 4];
    assert_eq!(
        d.read(60, f, user(&mut b), 0, 0),
        Err(libc::EBADF),
        "a closing handle takes no new op"
    );
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut cqes = Vec::new();
    d.flush_and_reap(&mut cqes).unwrap();
    let mut settled = Vec::new();
    for c in cqes {
        d.complete(c, &mut settled);
    }
    assert!(
        settled.is_empty(),
        "nothing settles, the close included, while the reads wait"
    );
    // The driver's own descriptor keeps a reader open, so this does not block.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .write_all(&[b'x'; 8 * 64])
        .unwrap();
    let tokens: Vec<u32> = (0..8).chain([50]).collect();
    let got = settle(&mut d, &tokens, Vec::new());
    let read: i64 = (0..8).map(|t| got[&t].result).sum();
    assert_eq!(read, 8 * 64, "the reads got the data written after close");
    assert_eq!(got[&50].result, 0, "the close comes after its ops");
    assert!(drain(&mut d).is_empty(), "nothing settles a second time");
    assert_eq!(d.pending(), 0);
    let mut out = Vec::new();
    assert_eq!(d.close_file(61, f, &mut out), Err(libc::EBADF));
}

fn closing_a_file_lets_its_writes_land_first(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w");
    std::fs::write(&path, vec![b'.'; 64 * 512]).unwrap();
    // Fewer in flight than writes: most wait in the backlog when the close comes.
    let mut d = driver(eng, 16);
    let f = open(&mut d, &path, libc::O_RDWR);
    let mut bufs: Vec<Vec<u8>> = (0..64).map(|i| vec![b'a' + (i % 26) as u8; 512]).collect();
    for (i, b) in bufs.iter_mut().enumerate() {
        d.write(i as u32, f, user(b), (i * 512) as u64).unwrap();
    }
    let mut early = Vec::new();
    d.close_file(100, f, &mut early).unwrap();
    assert!(early.is_empty(), "no write is cancelled");
    let tokens: Vec<u32> = (0..64).chain([100]).collect();
    let got = settle(&mut d, &tokens, early);
    let data = std::fs::read(&path).unwrap();
    for i in 0..64u32 {
        assert_eq!(got[&i].result, 512, "write {i}");
        assert_eq!(
            &data[i as usize * 512..(i as usize + 1) * 512],
            &bufs[i as usize][..],
            "write {i}: its data is there"
        );
    }
    assert_eq!(got[&100].result, 0);
    assert_eq!(d.pending(), 0);
    let st = d.stats();
    assert_eq!(st.submitted, st.completed, "a deferred close counts once");
}

/// Runs one path op to its end; returns its result and stat payload.
fn path_op(d: &mut Driver, op: PathOp) -> (i64, Option<u32>) {
    d.path_op(7000, op).unwrap();
    let done = settle(d, &[7000], vec![]).remove(&7000).unwrap();
    let mode = match done.payload {
        Payload::Stat(s) => Some(u32::from(s.stx_mode)),
        _ => None,
    };
    (done.result, mode)
}

fn path_ops_make_look_at_and_remove_names(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let mut d = driver(eng, 8);
    let p = |name: &str| cpath(&dir.path().join(name));
    let kind = |m: Option<u32>| m.map(|m| m & libc::S_IFMT);
    let neg = |e: i32| -i64::from(e);

    assert_eq!(
        path_op(
            &mut d,
            PathOp::Mkdir {
                path: p("d"),
                mode: 0o750
            }
        )
        .0,
        0
    );
    let (r, m) = path_op(
        &mut d,
        PathOp::Stat {
            path: p("d"),
            follow: true,
        },
    );
    assert_eq!((r, kind(m)), (0, Some(libc::S_IFDIR)));
    assert_eq!(m.unwrap() & 0o777, 0o750 & !umask());
    assert_eq!(
        path_op(
            &mut d,
            PathOp::Mkdir {
                path: p("d"),
                mode: 0o750
            }
        )
        .0,
        neg(libc::EEXIST)
    );

    std::fs::write(dir.path().join("d/f"), b"data").unwrap();
    assert_eq!(
        path_op(
            &mut d,
            PathOp::Symlink {
                target: p("d/f"),
                path: p("s")
            }
        )
        .0,
        0
    );
    let (_, m) = path_op(
        &mut d,
        PathOp::Stat {
            path: p("s"),
            follow: false,
        },
    );
    assert_eq!(kind(m), Some(libc::S_IFLNK), "lstat sees the link");
    let (_, m) = path_op(
        &mut d,
        PathOp::Stat {
            path: p("s"),
            follow: true,
        },
    );
    assert_eq!(kind(m), Some(libc::S_IFREG), "stat follows it");

    assert_eq!(
        path_op(
            &mut d,
            PathOp::Link {
                from: p("d/f"),
                to: p("h")
            }
        )
        .0,
        0
    );
    assert_eq!(std::fs::read(dir.path().join("h")).unwrap(), b"data");
    assert_eq!(
        path_op(
            &mut d,
            PathOp::Rename {
                from: p("h"),
                to: p("h2")
            }
        )
        .0,
        0
    );
    assert!(!dir.path().join("h").exists() && dir.path().join("h2").exists());

    assert_eq!(
        path_op(
            &mut d,
            PathOp::Unlink {
                path: p("d"),
                dir: true
            }
        )
        .0,
        neg(libc::ENOTEMPTY)
    );
    assert_eq!(
        path_op(
            &mut d,
            PathOp::Unlink {
                path: p("d"),
                dir: false
            }
        )
        .0,
        neg(libc::EISDIR)
    );
    for name in ["d/f", "s", "h2"] {
        assert_eq!(
            path_op(
                &mut d,
                PathOp::Unlink {
                    path: p(name),
                    dir: false
                }
            )
            .0,
            0,
            "{name}"
        );
    }
    assert_eq!(
        path_op(
            &mut d,
            PathOp::Unlink {
                path: p("d"),
                dir: true
            }
        )
        .0,
        0
    );
    let (r, m) = path_op(
        &mut d,
        PathOp::Stat {
            path: p("d"),
            follow: true,
        },
    );
    assert_eq!(
        (r, m),
        (neg(libc::ENOENT), None),
        "no stat payload for an error"
    );
    assert_eq!(d.pending(), 0);
}

/// Makes one blocking-lane call; returns its result and the call back.
fn lane(d: &mut Driver, call: BlockingCall) -> (i64, Option<BlockingCall>) {
    d.call(7001, call).unwrap();
    let done = settle(d, &[7001], vec![]).remove(&7001).unwrap();
    match done.payload {
        Payload::Call(c) => (done.result, Some(*c)),
        _ => (done.result, None),
    }
}

fn blocking_lane_calls_list_check_and_resolve_names(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let mut d = driver(eng, 8);
    let p = |name: &str| cpath(&dir.path().join(name));
    std::fs::write(dir.path().join("f"), b"x").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("f", dir.path().join("ln")).unwrap();

    let (n, call) = lane(
        &mut d,
        BlockingCall::Readdir {
            path: p(""),
            out: Vec::new(),
        },
    );
    assert_eq!(n, 3);
    let Some(BlockingCall::Readdir { out, .. }) = call else {
        panic!("no entries")
    };
    let mut names: Vec<(u8, String)> = out
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| (e[0], String::from_utf8(e[1..].to_vec()).unwrap()))
        .collect();
    names.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        names,
        vec![
            (libc::DT_REG, "f".into()),
            (libc::DT_LNK, "ln".into()),
            (libc::DT_DIR, "sub".into())
        ]
    );
    assert_eq!(
        lane(
            &mut d,
            BlockingCall::Readdir {
                path: p("nope"),
                out: Vec::new()
            }
        )
        .0,
        -i64::from(libc::ENOENT)
    );

    assert_eq!(
        lane(
            &mut d,
            BlockingCall::Access {
                path: p("f"),
                mode: libc::R_OK
            }
        )
        .0,
        0
    );
    assert_eq!(
        lane(
            &mut d,
            BlockingCall::Access {
                path: p("nope"),
                mode: libc::F_OK
            }
        )
        .0,
        -i64::from(libc::ENOENT)
    );
    let (n, call) = lane(
        &mut d,
        BlockingCall::Readlink {
            path: p("ln"),
            out: Vec::new(),
        },
    );
    assert_eq!(n, 1);
    assert!(matches!(call, Some(BlockingCall::Readlink { out, .. }) if out == b"f"));
    assert_eq!(
        lane(
            &mut d,
            BlockingCall::Readlink {
                path: p("f"),
                out: Vec::new()
            }
        )
        .0,
        -i64::from(libc::EINVAL)
    );
    let (_, call) = lane(
        &mut d,
        BlockingCall::Realpath {
            path: p("ln"),
            out: Vec::new(),
        },
    );
    let real = std::fs::canonicalize(dir.path().join("f")).unwrap();
    assert!(
        matches!(call, Some(BlockingCall::Realpath { out, .. }) if out == real.as_os_str().as_bytes())
    );
    assert_eq!(
        lane(
            &mut d,
            BlockingCall::Chmod {
                path: Some(p("f")),
                fd: -1,
                mode: 0o640
            }
        )
        .0,
        0
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(dir.path().join("f"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );
    assert_eq!(d.pending(), 0);
}

/// The process's umask, read without changing it (other tests run at once).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line["Umask:".len()..].trim(), 8).unwrap()
}

fn cancel_settles_one_op_and_frees_it_when_the_kernel_lets_go(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let p = fifo(dir.path());
    let mut d = driver(eng, 8);
    let f = open(&mut d, &p, libc::O_RDWR);
    let mut a = vec![0u8; 8];
    let mut b = vec![0u8; 8];
    d.read(1, f, user(&mut a), 0, CURRENT_POSITION).unwrap();
    d.read(2, f, user(&mut b), 0, CURRENT_POSITION).unwrap();
    let mut cq = Vec::new();
    d.flush_and_reap(&mut cq).unwrap();
    let mut out = Vec::new();
    assert!(d.cancel(1, &mut out));
    assert!(out.is_empty(), "settles when the kernel hands it back");
    assert!(
        d.cancel(1, &mut out),
        "still pending: a second cancel is a no-op"
    );
    let got = settle(&mut d, &[1], out);
    assert_eq!(got[&1].result, -i64::from(libc::ECANCELED));
    assert!(!d.cancel(1, &mut Vec::new()), "already settled");
    assert!(!d.cancel(999, &mut Vec::new()), "unknown token");
    // Token 2 still works: feed the FIFO.
    let mut w = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    std::io::Write::write_all(&mut w, b"12345678").unwrap();
    let got = settle(&mut d, &[2], vec![]);
    assert_eq!(got[&2].result, 8);
    drain(&mut d);
    assert_eq!(d.pending(), 0);
}

/// A driver (4 ops in flight) with ten 8-byte reads (tokens 0..10) of an
/// empty pipe, four in the kernel and six in the backlog; the directory
/// holding the pipe goes with the TempDir.
fn ten_pipe_reads(eng: Eng) -> (tempfile::TempDir, Driver, FileId) {
    let dir = tempfile::tempdir().unwrap();
    let p = fifo(dir.path());
    let mut d = driver(eng, 4);
    let f = open(&mut d, &p, libc::O_RDWR);
    let mut buf = vec![0u8; 8];
    for i in 0..10 {
        // Bounced: the buffer is only lent for the call.
        d.read(i, f, user(&mut buf), 0, CURRENT_POSITION).unwrap();
    }
    d.flush().unwrap();
    (dir, d, f)
}

fn shutdown_settles_everything_and_drains(eng: Eng) {
    let (_dir, mut d, f) = ten_pipe_reads(eng);
    let mut out = Vec::new();
    d.shutdown(&mut out);
    let mut queued: Vec<u32> = out.iter().map(|x| x.token).collect();
    queued.sort();
    assert_eq!(queued, (4..10).collect::<Vec<_>>(), "the backlog at once");
    let mut all = out;
    all.extend(drain(&mut d));
    let mut tokens: Vec<u32> = all.iter().map(|x| x.token).collect();
    tokens.sort();
    assert_eq!(
        tokens,
        (0..10).collect::<Vec<_>>(),
        "in flight and queued alike, once each"
    );
    assert!(all.iter().all(|x| x.result == -i64::from(libc::ECANCELED)));
    d.finish();
    let mut b = vec![0u8; 4];
    assert_eq!(d.read(20, f, user(&mut b), 0, 0), Err(libc::ECANCELED));
}

fn appends_wait_for_earlier_changes_and_land_in_call_order(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    std::fs::write(&path, vec![b'z'; 10_000]).unwrap();
    let mut d = driver(eng, 64);
    let f = open(&mut d, &path, libc::O_RDWR);
    // A write, a truncate and appends in one batch: the appends land after
    // both, in order, with no gap.
    let mut head = vec![b'A'; 4096];
    d.write(1, f, user(&mut head), 0).unwrap();
    let mut out = Vec::new();
    d.truncate(2, f, 4096, &mut out).unwrap();
    let mut recs: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("rec{i:03}\n").into_bytes())
        .collect();
    let mut tokens = vec![1, 2];
    for (i, r) in recs.iter_mut().enumerate() {
        let sync = (i % 5 == 0).then_some(SyncKind::Data);
        d.append(10 + i as u32, f, user(r), sync).unwrap();
        tokens.push(10 + i as u32);
    }
    let got = settle(&mut d, &tokens, out);
    for t in &tokens {
        assert!(got[t].result >= 0, "token {t}: {}", got[t].result);
    }
    let mut want = vec![b'A'; 4096];
    for r in &recs {
        want.extend_from_slice(r);
    }
    assert_eq!(std::fs::read(&path).unwrap(), want);
    assert_eq!(d.pending(), 0);
}

fn a_burst_of_closes_larger_than_the_completion_queue_all_settle(eng: Eng) {
    // A 2-entry submission queue and a 4-entry completion queue: 300 closes
    // (with reads in flight) post far more completions than fit; the
    // kernel keeps the rest on its overflow list, and reaping must get
    // them from there (they used to wait for a submission that never came).
    let cfg = ringline_core::engine::EngineConfig {
        entries: 2,
        cq_entries: 4,
        ..Default::default()
    };
    let mut d = Driver::new(
        common::engine_with(eng, &cfg),
        DriverConfig {
            max_in_flight: 4,
            ..Default::default()
        },
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, vec![5u8; 4096]).unwrap();
    let files: Vec<FileId> = (0..300)
        .map(|_| open(&mut d, &path, libc::O_RDONLY))
        .collect();
    let mut bufs: Vec<Vec<u8>> = (0..100).map(|_| vec![0u8; 16]).collect();
    let mut tokens = Vec::new();
    for (i, b) in bufs.iter_mut().enumerate() {
        d.read(i as u32, files[0], user(b), 0, 0).unwrap();
        tokens.push(i as u32);
    }
    let mut out = Vec::new();
    for (i, f) in files.iter().enumerate() {
        d.close_file(1000 + i as u32, *f, &mut out).unwrap();
        tokens.push(1000 + i as u32);
    }
    // Reap as the completion thread does: no io_uring_enter of its own;
    // the driver submits only what completions let into the kernel.
    let mut got: HashMap<u32, i64> = out.iter().map(|x| (x.token, x.result)).collect();
    let mut cqes = Vec::new();
    let mut idle = 0;
    while d.pending() > 0 {
        d.flush().unwrap();
        cqes.clear();
        d.engine().reap(&mut cqes);
        if cqes.is_empty() {
            idle += 1;
            assert!(
                idle < 2000,
                "{} ops never completed (lost in an overflowed completion queue?)",
                d.pending()
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        idle = 0;
        let mut done = Vec::new();
        for c in cqes.drain(..) {
            d.complete(c, &mut done);
        }
        for x in done {
            assert!(got.insert(x.token, x.result).is_none(), "settled twice");
        }
    }
    for t in &tokens {
        assert!(got.contains_key(t), "token {t} never settled");
    }
    for i in 0..300u32 {
        assert_eq!(got[&(1000 + i)], 0, "close {i}");
    }
}

fn a_write_beyond_the_bounce_budget_waits_for_memory(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big");
    let mut d = driver(eng, 1024);
    let f = open(&mut d, &path, libc::O_RDWR | libc::O_CREAT);
    let mut chunk = vec![7u8; 1 << 20];
    let mut n = 0u32;
    loop {
        match d.write(n, f, user(&mut chunk), u64::from(n) << 20) {
            Ok(()) => n += 1,
            Err(e) => {
                assert_eq!(e, ringline_core::driver::WAIT_FOR_MEMORY);
                break;
            }
        }
        assert!(n < 1000, "the budget never refused");
    }
    assert!(
        (n as usize) << 20 <= ringline_core::driver::BOUNCE_BUDGET,
        "at most the budget is held: {n} MiB"
    );
    let tokens: Vec<u32> = (0..n).collect();
    settle(&mut d, &tokens, vec![]);
    // Memory came back: the next write goes.
    d.write(n, f, user(&mut chunk), u64::from(n) << 20).unwrap();
    settle(&mut d, &[n], vec![]);
    assert_eq!(d.pending(), 0);
}

fn append_with_sync_lands_in_order_at_the_end(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wal");
    std::fs::write(&path, b"head:").unwrap();
    for flags in [libc::O_RDWR, libc::O_WRONLY | libc::O_APPEND] {
        std::fs::write(&path, b"head:").unwrap();
        let mut d = driver(eng, 16);
        let f = open(&mut d, &path, flags);
        let mut recs: Vec<Vec<u8>> = (0..20).map(|i| format!("[{i:02}]").into_bytes()).collect();
        for (i, r) in recs.iter_mut().enumerate() {
            let sync = match i % 3 {
                0 => None,
                1 => Some(SyncKind::Data),
                _ => Some(SyncKind::Full),
            };
            d.append(i as u32, f, user(r), sync).unwrap();
        }
        let got = settle(&mut d, &(0..20).collect::<Vec<_>>(), vec![]);
        assert!(got.values().all(|x| x.result == 4), "{got:?}");
        let expect: String = std::iter::once("head:".to_string())
            .chain((0..20).map(|i| format!("[{i:02}]")))
            .collect();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            expect,
            "flags {flags:#o}"
        );
    }
}

/// Every way a synced append can become durable (a write linked to its
/// sync, or one write with RWF_DSYNC/RWF_SYNC; each on its own or sharing
/// group fsyncs) lands the appends whole, in call order, at the end: 20 in
/// flight together, then 5 one at a time.
fn synced_appends_land_in_order_every_way(eng: Eng) {
    use ringline_core::driver::LoneSync;
    let dir = tempfile::tempdir().unwrap();
    for group_commit in [false, true] {
        for lone_sync in [LoneSync::Linked, LoneSync::WriteFlag] {
            let how = format!("group_commit {group_commit}, {lone_sync:?}");
            let path = dir.path().join(format!("wal-{group_commit}-{lone_sync:?}"));
            std::fs::write(&path, b"head:").unwrap();
            let mut d = common::driver(
                eng,
                DriverConfig {
                    max_in_flight: 64,
                    group_commit,
                    lone_sync,
                    ..DriverConfig::default()
                },
            );
            let f = open(&mut d, &path, libc::O_WRONLY | libc::O_APPEND);
            let mut recs: Vec<Vec<u8>> =
                (0..25).map(|i| format!("[{i:02}]").into_bytes()).collect();
            let kind = |i: usize| match i % 2 {
                0 => SyncKind::Data,
                _ => SyncKind::Full,
            };
            for (i, r) in recs.iter_mut().enumerate().take(20) {
                d.append(i as u32, f, user(r), Some(kind(i))).unwrap();
            }
            let got = settle(&mut d, &(0..20).collect::<Vec<_>>(), vec![]);
            assert!(got.values().all(|x| x.result == 4), "{how}: {got:?}");
            for (i, r) in recs.iter_mut().enumerate().skip(20) {
                d.append(i as u32, f, user(r), Some(kind(i))).unwrap();
                let got = settle(&mut d, &[i as u32], vec![]);
                assert_eq!(got[&(i as u32)].result, 4, "{how}");
            }
            let expect: String = std::iter::once("head:".to_string())
                .chain((0..25).map(|i| format!("[{i:02}]")))
                .collect();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), expect, "{how}");
            drain(&mut d);
        }
    }
}

fn direct_io_checks_alignment_and_bounces_misaligned_memory(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d");
    std::fs::write(&path, vec![9u8; 65536]).unwrap();
    let mut d = driver(eng, 8);
    let Some(f) = open_direct(&mut d, &path, libc::O_RDONLY) else {
        return;
    };
    let (_, dio, _) = d.file_info(f).unwrap();
    let align = dio.expect("direct file has an alignment").offset as usize;
    let mut b = vec![0u8; 4096 + 1];
    assert_eq!(
        d.read(2, f, user(&mut b[..100]), 0, 0),
        Err(libc::EINVAL),
        "length not aligned"
    );
    assert_eq!(
        d.read(2, f, user(&mut b[..align]), 0, 1),
        Err(libc::EINVAL),
        "position not aligned"
    );
    // Misaligned user memory is fine: it bounces through aligned memory.
    d.read(3, f, user(&mut b[1..1 + 4096]), 1, 4096).unwrap();
    let got = settle(&mut d, &[3], vec![]);
    assert_eq!(got[&3].result, 4096);
    match &got[&3].payload {
        Payload::Bounce { buf, .. } => assert!(buf.as_slice().iter().all(|&x| x == 9)),
        p => panic!("expected bounce, got {p:?}"),
    }
}

fn stat_truncate_and_sync(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    std::fs::write(&path, vec![1u8; 1000]).unwrap();
    let mut d = driver(eng, 8);
    let f = open(&mut d, &path, libc::O_RDWR);
    d.truncate(1, f, 123, &mut Vec::new()).unwrap();
    d.sync(2, f, SyncKind::Data).unwrap();
    d.sync(3, f, SyncKind::Full).unwrap();
    let got = settle(&mut d, &[1, 2, 3], vec![]);
    assert!(got.values().all(|x| x.result == 0), "{got:?}");
    d.stat(4, f).unwrap();
    let got = settle(&mut d, &[4], vec![]);
    match &got[&4].payload {
        Payload::Stat(s) => {
            assert_eq!(s.stx_size, 123);
            assert_eq!(u32::from(s.stx_mode) & libc::S_IFMT, libc::S_IFREG);
        }
        p => panic!("expected stat, got {p:?}"),
    }
}

fn open_errors_are_negative_errno(eng: Eng) {
    let mut d = driver(eng, 8);
    d.open(
        1,
        CString::new("/nonexistent/dir/x").unwrap(),
        libc::O_RDONLY,
        0,
    )
    .unwrap();
    let got = settle(&mut d, &[1], vec![]);
    assert_eq!(got[&1].result, -i64::from(libc::ENOENT));
    assert!(matches!(got[&1].payload, Payload::None));
}

fn vectored_round_trip_with_user_buffers(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let mut d = driver(eng, 8);
    let f = open(&mut d, &dir.path().join("v"), libc::O_RDWR | libc::O_CREAT);
    let mut a = b"hello ".to_vec();
    let mut b = b"world".to_vec();
    d.vectored(1, f, &[user(&mut a), user(&mut b)], 0, true)
        .unwrap();
    assert_eq!(settle(&mut d, &[1], vec![])[&1].result, 11);
    let mut x = vec![0u8; 3];
    let mut y = vec![0u8; 8];
    d.vectored(2, f, &[user(&mut x), user(&mut y)], 0, false)
        .unwrap();
    let got = settle(&mut d, &[2], vec![]);
    assert_eq!(got[&2].result, 11);
    match &got[&2].payload {
        Payload::Bounce { buf, .. } => assert_eq!(buf.as_slice(), b"hello world"),
        p => panic!("expected bounce, got {p:?}"),
    }
    assert_eq!(d.vectored(3, f, &[], 0, false), Err(libc::EINVAL));
}

fn a_refused_append_leaves_later_appends_right(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    std::fs::write(&path, vec![1u8; 100]).unwrap();
    let mut d = driver(eng, 8);
    let Some(f) = open_direct(&mut d, &path, libc::O_RDWR) else {
        return;
    };
    let (block, _) = d.alloc_aligned(4096).unwrap();
    let rec = UserBuf {
        ptr: block.as_ptr(),
        len: 4096,
    };
    // The end of the file (100) is not block-aligned: O_DIRECT refuses it.
    d.append(2, f, rec, Some(SyncKind::Data)).unwrap();
    assert_eq!(
        settle(&mut d, &[2], vec![])[&2].result,
        -i64::from(libc::EINVAL)
    );
    assert_eq!(d.pending(), 0);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100);
    // Once the file ends on a block, the append lands exactly there.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(4096)
        .unwrap();
    d.append(3, f, rec, Some(SyncKind::Data)).unwrap();
    assert_eq!(settle(&mut d, &[3], vec![])[&3].result, 4096);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 8192);
}

/// What a whole-file read hands back: its result and bytes.
fn read_file_result(done: Done) -> (i64, Vec<u8>) {
    match done.payload {
        Payload::Call(c) => match *c {
            // ReadRest: a larger file, finished by the lane.
            BlockingCall::ReadFile { out, .. } | BlockingCall::ReadRest { out, .. } => {
                (done.result, out)
            }
            _ => panic!("not a whole-file read"),
        },
        _ => (done.result, Vec::new()),
    }
}

fn read_file_call(path: &Path) -> BlockingCall {
    BlockingCall::ReadFile {
        path: cpath(path),
        flags: libc::O_RDONLY,
        out: Vec::new(),
    }
}

/// readFile by path: every size around the first round's reads, more files
/// at once than the fixed slots kept for them (the rest go to the lane),
/// a pipe whose writer pauses (a short read there is not the end), and the
/// errors, which say which call failed (READ_FILE_STEP * step + errno).
fn whole_file_reads_get_every_byte_and_say_which_call_failed(eng: Eng) {
    // Larger files finish in the lane, or (kernels before 6.8) in rounds
    // on the ring.
    for rest_in_lane in [true, false] {
        whole_file_reads_with(eng, rest_in_lane);
    }
}

fn whole_file_reads_with(eng: Eng, whole_rest_in_lane: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut d = common::driver(
        eng,
        DriverConfig {
            max_in_flight: 1024,
            whole_rest_in_lane,
            ..DriverConfig::default()
        },
    );
    let sizes = [
        0usize,
        1,
        4096,
        32 << 10,
        (32 << 10) + 1,
        64 << 10,
        (64 << 10) + 1,
        300_000,
        3 << 20,
    ];
    let mut want = HashMap::new();
    for i in 0..300u32 {
        let size = sizes[i as usize % sizes.len()];
        let data: Vec<u8> = (0..size).map(|j| (j as u32 * 31 + i) as u8).collect();
        let path = dir.path().join(format!("f{i}"));
        std::fs::write(&path, &data).unwrap();
        d.call(i, read_file_call(&path)).unwrap();
        want.insert(i, data);
    }
    let tokens: Vec<u32> = (0..300).collect();
    for (t, done) in settle(&mut d, &tokens, vec![]) {
        let (r, bytes) = read_file_result(done);
        assert_eq!(r, want[&t].len() as i64, "file {t}");
        assert!(bytes == want[&t], "file {t}: bytes differ");
    }

    // A pipe: the writer sends, pauses, sends again, closes. A short read
    // in the middle is not the end of it.
    let fifo_path = fifo(dir.path());
    d.call(1000, read_file_call(&fifo_path)).unwrap();
    d.flush().unwrap();
    let writer = {
        let p = fifo_path.clone();
        std::thread::spawn(move || {
            let mut w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            w.write_all(b"first ").unwrap();
            w.flush().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(50));
            w.write_all(&vec![b'x'; 100_000]).unwrap();
        })
    };
    let done = settle(&mut d, &[1000], vec![]).remove(&1000).unwrap();
    writer.join().unwrap();
    let (r, bytes) = read_file_result(done);
    assert_eq!(r, 100_006);
    assert_eq!(&bytes[..6], b"first ");
    assert!(bytes[6..].iter().all(|&b| b == b'x'));

    let step = i64::from(ringline_core::op::call::READ_FILE_STEP);
    d.call(1001, read_file_call(&dir.path().join("missing")))
        .unwrap();
    d.call(1002, read_file_call(dir.path())).unwrap();
    let got = settle(&mut d, &[1001, 1002], vec![]);
    assert_eq!(
        got[&1001].result,
        -i64::from(libc::ENOENT),
        "the open failed"
    );
    assert_eq!(
        got[&1002].result,
        -(i64::from(libc::EISDIR) + 2 * step),
        "a read failed"
    );
    drain(&mut d);
    assert_eq!(d.pending(), 0, "every slot closed");
}

/// A whole-file read waiting for a pipe's data settles once when the
/// driver shuts down, and leaves nothing behind: on io_uring its read is
/// cancelled; mio's lane cannot stop a call it runs, which ends when the
/// writer goes (an empty pipe, read whole).
fn shutdown_settles_a_whole_file_read_waiting_for_data(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let fifo_path = fifo(dir.path());
    let mut d = driver(eng, 8);
    d.call(1, read_file_call(&fifo_path)).unwrap();
    d.flush().unwrap();
    let (opened, writer_open) = std::sync::mpsc::channel();
    let writer = {
        let p = fifo_path.clone();
        std::thread::spawn(move || {
            // Returns once the read's open has the other end.
            let w = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            opened.send(()).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(w);
        })
    };
    writer_open.recv().unwrap();
    let mut out = Vec::new();
    d.shutdown(&mut out);
    out.extend(drain(&mut d));
    writer.join().unwrap();
    assert_eq!(out.len(), 1, "settled once: {out:?}");
    assert_eq!(out[0].token, 1);
    let want = match eng {
        Eng::IoUring => -i64::from(libc::ECANCELED),
        Eng::Mio | Eng::Sim => 0,
    };
    assert_eq!(out[0].result, want);
    assert_eq!(d.pending(), 0);
    d.finish();
}

/// writeFile by path: an overwrite with fewer bytes leaves exactly them
/// (the file is cut after the writes, not emptied at the open); a device
/// takes the bytes with nothing to cut; errors say which call failed.
fn whole_file_writes_leave_exactly_the_new_bytes(eng: Eng) {
    let dir = tempfile::tempdir().unwrap();
    let mut d = driver(eng, 8);
    let path = dir.path().join("f");
    std::fs::write(&path, vec![b'o'; 10_000]).unwrap();
    let w = |path: &Path, flags: i32, data: &[u8], flush: bool| BlockingCall::WriteFile {
        path: cpath(path),
        flags,
        mode: 0o644,
        data: data.to_vec(),
        flush,
    };
    let trunc = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC;
    assert_eq!(lane(&mut d, w(&path, trunc, b"new bytes", false)).0, 0);
    assert_eq!(std::fs::read(&path).unwrap(), b"new bytes");
    assert_eq!(lane(&mut d, w(&path, trunc, b"", true)).0, 0);
    assert_eq!(std::fs::read(&path).unwrap(), b"");
    assert_eq!(
        lane(&mut d, w(Path::new("/dev/null"), trunc, b"gone", false)).0,
        0
    );
    let append = libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND;
    assert_eq!(lane(&mut d, w(&path, append, b"ab", false)).0, 0);
    assert_eq!(lane(&mut d, w(&path, append, b"cd", false)).0, 0);
    assert_eq!(std::fs::read(&path).unwrap(), b"abcd");
    assert_eq!(
        lane(&mut d, w(&path, trunc | libc::O_EXCL, b"x", false)).0,
        -i64::from(libc::EEXIST),
        "the open failed (step 0)"
    );
}

/// Driver::drain, the last wait of a ring whose env goes away: every op
/// comes back (reads on a pipe, cancelled), and the bounce memory of
/// their results, which nobody will read, is given back.
fn drain_waits_for_every_op_and_gives_memory_back(eng: Eng) {
    let (_dir, mut d, _) = ten_pipe_reads(eng);
    assert!(d.bounce_held() > 0, "user memory is bounced");
    let mut out = Vec::new();
    d.shutdown(&mut out);
    d.discard(out);
    d.drain().unwrap();
    assert_eq!(d.pending(), 0);
    assert_eq!(d.bounce_held(), 0, "every bounce block given back");
    d.finish();
}

/// Engines set up with the smallest queue (1 entry) still take the
/// longest chains whole: a synced append (write + fsync) and a whole-file
/// read (open + two reads) settle instead of waiting for room forever.
fn the_smallest_queue_takes_the_longest_chains(eng: Eng) {
    let cfg = ringline_core::engine::EngineConfig {
        entries: 1,
        cq_entries: 1,
        ..Default::default()
    };
    let mut d = Driver::new(common::engine_with(eng, &cfg), DriverConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    std::fs::write(&path, b"hello").unwrap();
    for t in 0..20u32 {
        d.call(t, read_file_call(&path)).unwrap();
    }
    let tokens: Vec<u32> = (0..20).collect();
    for (_, done) in settle(&mut d, &tokens, vec![]) {
        assert_eq!(read_file_result(done), (5, b"hello".to_vec()));
    }
    let f = open(&mut d, &path, libc::O_RDWR);
    let mut data = b"more".to_vec();
    for t in 100..110u32 {
        d.append(t, f, user(&mut data), Some(SyncKind::Data))
            .unwrap();
    }
    let tokens: Vec<u32> = (100..110).collect();
    assert!(settle(&mut d, &tokens, vec![])
        .values()
        .all(|x| x.result == 4));
    drain(&mut d);
}

per_engine!(
    write_then_read_back_through_bounce_and_pinned_memory,
    a_lone_page_cache_read_completes_within_its_flush,
    backlog_holds_ops_beyond_the_in_flight_bound,
    closing_a_file_waits_for_its_pending_ops,
    closing_a_file_lets_its_writes_land_first,
    appends_wait_for_earlier_changes_and_land_in_call_order,
    a_write_beyond_the_bounce_budget_waits_for_memory,
    a_burst_of_closes_larger_than_the_completion_queue_all_settle,
    cancel_settles_one_op_and_frees_it_when_the_kernel_lets_go,
    shutdown_settles_everything_and_drains,
    append_with_sync_lands_in_order_at_the_end,
    synced_appends_land_in_order_every_way,
    direct_io_checks_alignment_and_bounces_misaligned_memory,
    stat_truncate_and_sync,
    open_errors_are_negative_errno,
    vectored_round_trip_with_user_buffers,
    a_refused_append_leaves_later_appends_right,
    path_ops_make_look_at_and_remove_names,
    blocking_lane_calls_list_check_and_resolve_names,
    whole_file_reads_get_every_byte_and_say_which_call_failed,
    shutdown_settles_a_whole_file_read_waiting_for_data,
    whole_file_writes_leave_exactly_the_new_bytes,
    drain_waits_for_every_op_and_gives_memory_back,
    the_smallest_queue_takes_the_longest_chains,
    handed_off_ops_settle_with_their_chains_whole,
);

/// With a kernel thread polling the submission queue (SQPOLL), a link
/// chain is published to it whole: a chain cut in two ran its reads
/// before (and without) its open, which failed them with EBADF.
#[test]
fn whole_file_reads_stay_linked_under_sqpoll() {
    let cfg = ringline_core::engine::EngineConfig {
        sqpoll: true,
        ..Default::default()
    };
    let engine = common::engine_with(Eng::IoUring, &cfg);
    let mut d = Driver::new(engine, DriverConfig::default());
    let dir = tempfile::tempdir().unwrap();
    let data = vec![7u8; 4096];
    let path = dir.path().join("f");
    std::fs::write(&path, &data).unwrap();
    for round in 0..20u32 {
        let tokens: Vec<u32> = (round * 100..round * 100 + 100).collect();
        for &t in &tokens {
            d.call(t, read_file_call(&path)).unwrap();
        }
        for (t, done) in settle(&mut d, &tokens, vec![]) {
            let (r, bytes) = read_file_result(done);
            assert_eq!(r, 4096, "read {t}");
            assert!(bytes == data);
        }
    }
    drain(&mut d);
}

/// Ops handed to another thread (`Driver::hand_off`), which submits them
/// in parts of one op (`Engine::submit_queued`) while this one goes on
/// queueing: every read gets its bytes, and the open/read/read chains of
/// whole-file reads stay whole (a chain cut in two fails its reads with
/// EBADF). The mio engine has no hand-off: there the driver flushes.
fn handed_off_ops_settle_with_their_chains_whole(eng: Eng) {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..64 * 4096u32).map(|i| (i * 7 % 253) as u8).collect();
    let path = dir.path().join("a");
    std::fs::write(&path, &data).unwrap();
    let small = dir.path().join("small");
    std::fs::write(&small, &data[..5000]).unwrap();
    let mut d = driver(eng, 1024);
    let f = open(&mut d, &path, libc::O_RDONLY);
    let engine = d.engine().clone();
    let stop = AtomicBool::new(false);
    let parts = AtomicUsize::new(0);
    let mut handed = 0;
    /// Stops the submitting thread also when an assertion fails (the
    /// scope would wait for it forever).
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    std::thread::scope(|s| {
        let _stop = Stop(&stop);
        s.spawn(|| {
            while !stop.load(Ordering::Acquire) {
                match engine.submit_queued(|_| 1) {
                    Ok((n, _)) if n > 0 => {
                        parts.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => std::thread::yield_now(),
                }
            }
        });
        let mut bufs = vec![vec![0u8; 4096]; 40];
        for round in 0..50u32 {
            let base = round * 100;
            // User memory: each read is bounced, its bytes come back in
            // its payload.
            for (i, b) in bufs.iter_mut().enumerate() {
                let at = 4096 * ((i as u64 + u64::from(round)) % 64);
                d.read(base + i as u32, f, user(b), 0, at).unwrap();
            }
            for t in base + 40..base + 50 {
                d.call(t, read_file_call(&small)).unwrap();
            }
            let want: Vec<u32> = (base..base + 50).collect();
            let mut got = settle_with(&mut d, &want, Vec::new(), |d, cqes| {
                if d.hand_off(cqes) {
                    handed += 1;
                } else {
                    d.flush_and_reap(cqes).unwrap();
                }
            });
            for i in 0..40 {
                let t = base + i as u32;
                let done = got.remove(&t).unwrap();
                assert_eq!(done.result, 4096, "read {t}");
                let at = 4096 * ((i + round as usize) % 64);
                match done.payload {
                    Payload::Bounce { buf, .. } => {
                        assert!(
                            buf.as_slice() == &data[at..at + 4096],
                            "read {t}: bytes differ"
                        );
                        d.recycle(buf);
                    }
                    p => panic!("read {t}: expected a bounce payload, got {p:?}"),
                }
            }
            for t in base + 40..base + 50 {
                let (r, bytes) = read_file_result(got.remove(&t).unwrap());
                assert_eq!(r, 5000, "whole-file read {t}");
                assert!(
                    bytes[..] == data[..5000],
                    "whole-file read {t}: bytes differ"
                );
            }
        }
        // Before the submitting thread goes: its ops' task work runs on it.
        drain(&mut d);
    });
    if eng == Eng::IoUring {
        assert!(handed >= 50, "every round handed off ({handed})");
        assert!(
            parts.load(Ordering::Relaxed) > 0,
            "the other thread submitted"
        );
    } else {
        assert_eq!(handed, 0, "mio flushes");
    }
}
