//! The sim engine under the real driver: files on its in-memory disk, what
//! a crash keeps, and the seed's determinism.

#![cfg(target_os = "linux")]

use ringline_core::driver::{Done, Driver, DriverConfig, PathOp, Payload, UserBuf};
use ringline_core::engine::sim::disk::CrashMode;
use ringline_core::engine::{select, Backend, Engine, EngineConfig};
use ringline_core::op::BlockingCall;
use ringline_core::{FileId, SyncKind};
use std::ffi::CString;
use std::sync::Arc;

fn sim(seed: u64) -> (Arc<dyn Engine>, Driver) {
    let cfg = EngineConfig {
        seed,
        ..EngineConfig::default()
    };
    let engine = select(&cfg, Backend::Sim).expect("sim engine").engine;
    assert_eq!(engine.name(), "sim");
    let d = Driver::new(engine.clone(), DriverConfig::default());
    (engine, d)
}

/// Runs the driver until every token in `want` settled, in the order they
/// settled.
fn settle(d: &mut Driver, want: &[u32]) -> Vec<Done> {
    let mut got: Vec<Done> = Vec::new();
    let mut cqes = Vec::new();
    while !want.iter().all(|t| got.iter().any(|x| x.token == *t)) {
        cqes.clear();
        d.flush_and_reap(&mut cqes).unwrap();
        if cqes.is_empty() {
            d.engine().wait(&mut cqes).unwrap();
        }
        for c in cqes.drain(..) {
            d.complete(c, &mut got);
        }
    }
    got
}

fn one(d: &mut Driver, token: u32) -> Done {
    settle(d, &[token])
        .into_iter()
        .find(|x| x.token == token)
        .unwrap()
}

fn c(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn open(d: &mut Driver, path: &str, flags: i32) -> FileId {
    d.open(1, c(path), flags, 0o644).unwrap();
    let done = one(d, 1);
    match done.payload {
        Payload::Opened(id) => id,
        _ => panic!("open {path}: {}", done.result),
    }
}

fn write(d: &mut Driver, f: FileId, data: &[u8], pos: u64) -> i64 {
    let mut b = data.to_vec();
    let buf = UserBuf {
        ptr: b.as_mut_ptr(),
        len: b.len(),
    };
    d.write(2, f, buf, pos).unwrap();
    one(d, 2).result
}

fn sync(d: &mut Driver, f: FileId) {
    d.sync(3, f, SyncKind::Data).unwrap();
    assert_eq!(one(d, 3).result, 0);
}

fn read_file(d: &mut Driver, path: &str) -> Result<Vec<u8>, i64> {
    d.call(
        4,
        BlockingCall::ReadFile {
            path: c(path),
            flags: libc::O_RDONLY,
            out: Vec::new(),
        },
    )
    .unwrap();
    let done = one(d, 4);
    match done.payload {
        Payload::Call(c) => match *c {
            BlockingCall::ReadFile { out, .. } => Ok(out),
            _ => unreachable!(),
        },
        _ => Err(done.result),
    }
}

fn mkdir(d: &mut Driver, path: &str) {
    d.path_op(
        5,
        PathOp::Mkdir {
            path: c(path),
            mode: 0o755,
        },
    )
    .unwrap();
    assert_eq!(one(d, 5).result, 0);
}

fn fsync_dir(d: &mut Driver, path: &str) {
    let f = open(d, path, libc::O_RDONLY);
    sync(d, f);
}

/// A file written, synced, then written again: a pessimistic crash keeps
/// the synced bytes; an optimistic one the last ones. A name whose
/// directory was never synced is gone after a pessimistic crash.
#[test]
fn a_crash_keeps_what_was_made_durable() {
    for (mode, want, new_name) in [
        (CrashMode::Pessimistic, &b"durable"[..], false),
        (CrashMode::Optimistic, &b"XXXXble"[..], true),
    ] {
        let (engine, mut d) = sim(7);
        mkdir(&mut d, "/data");
        fsync_dir(&mut d, "/");
        let f = open(&mut d, "/data/a", libc::O_RDWR | libc::O_CREAT);
        assert_eq!(write(&mut d, f, b"durable", 0), 7);
        sync(&mut d, f);
        fsync_dir(&mut d, "/data");
        assert_eq!(write(&mut d, f, b"XXXX", 0), 4);
        let g = open(&mut d, "/data/b", libc::O_RDWR | libc::O_CREAT);
        write(&mut d, g, b"synced data, unsynced name", 0);
        sync(&mut d, g);
        engine.sim().unwrap().crash(mode);
        assert_eq!(read_file(&mut d, "/data/a").unwrap(), want, "{mode:?}");
        assert_eq!(read_file(&mut d, "/data/b").is_ok(), new_name, "{mode:?}");
        // Every handle from before is stale.
        assert_eq!(write(&mut d, f, b"late", 0), -i64::from(libc::EBADF));
    }
}

/// A random crash keeps each unsynced write whole, torn at sectors, or
/// not at all: every sector of the file is either its synced bytes or its
/// unsynced ones, never anything else, and the same seed keeps the same.
#[test]
fn a_random_crash_tears_at_sectors_and_follows_the_seed() {
    let image = |seed: u64| {
        let (engine, mut d) = sim(seed);
        let f = open(&mut d, "/f", libc::O_RDWR | libc::O_CREAT);
        fsync_dir(&mut d, "/");
        write(&mut d, f, &[b'o'; 4096], 0);
        sync(&mut d, f);
        for i in 0..4 {
            write(&mut d, f, &[b'0' + i as u8; 1024], i * 1024);
        }
        engine.sim().unwrap().crash(CrashMode::Random);
        read_file(&mut d, "/f").unwrap()
    };
    let mut seen = std::collections::HashSet::new();
    for seed in 0..32 {
        let img = image(seed);
        assert_eq!(img.len(), 4096);
        for (s, sector) in img.chunks(512).enumerate() {
            let unsynced = b'0' + (s / 2) as u8;
            assert!(
                sector.iter().all(|&b| b == b'o') || sector.iter().all(|&b| b == unsynced),
                "seed {seed}, sector {s}: neither old nor new bytes"
            );
        }
        assert_eq!(image(seed), img, "seed {seed} twice");
        seen.insert(img);
    }
    assert!(
        seen.len() > 4,
        "seeds draw different crash states: {}",
        seen.len()
    );
}

/// The seed orders the completions of one flush: the same seed twice gives
/// the same order, and other seeds others.
#[test]
fn the_seed_fixes_the_completion_order() {
    let order = |seed: u64| {
        let (_, mut d) = sim(seed);
        for t in 0..20u32 {
            d.path_op(
                100 + t,
                PathOp::Mkdir {
                    path: c(&format!("/d{t}")),
                    mode: 0o755,
                },
            )
            .unwrap();
        }
        let tokens: Vec<u32> = (100..120).collect();
        settle(&mut d, &tokens)
            .iter()
            .map(|x| x.token)
            .collect::<Vec<_>>()
    };
    let a = order(1);
    assert_eq!(a, order(1));
    let others: std::collections::HashSet<Vec<u32>> = (2..10).map(order).collect();
    assert!(others.len() > 1 && others.iter().any(|o| *o != a));
}

/// Names behave as on Linux: the errors of open, mkdir, unlink, rmdir and
/// rename, a rename over a file, a hard link, a symlink followed by stat.
#[test]
fn names_give_linux_errors() {
    let (_, mut d) = sim(3);
    let neg = |e: i32| -i64::from(e);
    let op = |d: &mut Driver, o: PathOp| {
        d.path_op(9, o).unwrap();
        one(d, 9).result
    };
    assert_eq!(
        op(
            &mut d,
            PathOp::Mkdir {
                path: c("/a"),
                mode: 0o755
            }
        ),
        0
    );
    assert_eq!(
        op(
            &mut d,
            PathOp::Mkdir {
                path: c("/a"),
                mode: 0o755
            }
        ),
        neg(libc::EEXIST)
    );
    assert_eq!(
        op(
            &mut d,
            PathOp::Mkdir {
                path: c("/x/y"),
                mode: 0o755
            }
        ),
        neg(libc::ENOENT)
    );
    let f = open(&mut d, "/a/f", libc::O_WRONLY | libc::O_CREAT);
    write(&mut d, f, b"one", 0);
    d.open(
        1,
        c("/a/f"),
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o644,
    )
    .unwrap();
    assert_eq!(one(&mut d, 1).result, neg(libc::EEXIST));
    d.open(1, c("/a"), libc::O_WRONLY, 0).unwrap();
    assert_eq!(one(&mut d, 1).result, neg(libc::EISDIR));
    assert_eq!(
        op(
            &mut d,
            PathOp::Unlink {
                path: c("/a"),
                dir: false
            }
        ),
        neg(libc::EISDIR)
    );
    assert_eq!(
        op(
            &mut d,
            PathOp::Unlink {
                path: c("/a"),
                dir: true
            }
        ),
        neg(libc::ENOTEMPTY)
    );
    assert_eq!(
        op(
            &mut d,
            PathOp::Unlink {
                path: c("/a/f"),
                dir: true
            }
        ),
        neg(libc::ENOTDIR)
    );
    assert_eq!(
        op(
            &mut d,
            PathOp::Link {
                from: c("/a/f"),
                to: c("/a/g")
            }
        ),
        0
    );
    assert_eq!(
        op(
            &mut d,
            PathOp::Symlink {
                target: c("f"),
                path: c("/a/s")
            }
        ),
        0
    );
    assert_eq!(
        read_file(&mut d, "/a/s").unwrap(),
        b"one",
        "a symlink is followed"
    );
    assert_eq!(
        op(
            &mut d,
            PathOp::Rename {
                from: c("/a/g"),
                to: c("/a/f")
            }
        ),
        0,
        "same inode: nothing to do"
    );
    let g = open(&mut d, "/a/h", libc::O_WRONLY | libc::O_CREAT);
    write(&mut d, g, b"two", 0);
    assert_eq!(
        op(
            &mut d,
            PathOp::Rename {
                from: c("/a/h"),
                to: c("/a/f")
            }
        ),
        0
    );
    assert_eq!(read_file(&mut d, "/a/f").unwrap(), b"two");
    assert_eq!(
        read_file(&mut d, "/a/g").unwrap(),
        b"one",
        "the hard link kept the old file"
    );
    assert_eq!(
        op(
            &mut d,
            PathOp::Rename {
                from: c("/a"),
                to: c("/a/f")
            }
        ),
        neg(libc::ENOTDIR)
    );
    assert_eq!(read_file(&mut d, "/nope"), Err(neg(libc::ENOENT)));
}

/// Fault rules: an error on the n-th matching op only, on one path; a
/// lost write (acknowledged, nothing stored); a bit flipped on read. The
/// trace names every op and the faults that hit, the same for the same
/// seed.
#[test]
fn faults_hit_what_they_select_and_the_trace_shows_them() {
    use ringline_core::engine::sim::fault::{Fault, FaultKind};
    let rule = |op: &str, path: &str, kind: FaultKind, after: u64, times: u64| Fault {
        op: Some(op.into()),
        path: Some(path.as_bytes().to_vec()),
        kind,
        after,
        times,
        per_million: 1_000_000,
        seen: 0,
        hits: 0,
    };
    let run = || {
        let (engine, mut d) = sim(11);
        let s = engine.sim().unwrap();
        s.add_fault(rule("fsync", "wal", FaultKind::Error(libc::EIO), 1, 1));
        s.add_fault(rule("write", "lost", FaultKind::Lost, 0, u64::MAX));
        s.add_fault(rule("read", "flip", FaultKind::Bitflip, 0, 1));
        let wal = open(&mut d, "/wal", libc::O_RDWR | libc::O_CREAT);
        let other = open(&mut d, "/other", libc::O_RDWR | libc::O_CREAT);
        let mut syncs = Vec::new();
        for f in [wal, wal, wal, other] {
            d.sync(3, f, SyncKind::Data).unwrap();
            syncs.push(one(&mut d, 3).result);
        }
        assert_eq!(
            syncs,
            [0, -i64::from(libc::EIO), 0, 0],
            "the second fsync of /wal only"
        );
        let lost = open(&mut d, "/lost", libc::O_RDWR | libc::O_CREAT);
        assert_eq!(write(&mut d, lost, b"acknowledged", 0), 12);
        assert_eq!(read_file(&mut d, "/lost").unwrap(), b"", "nothing stored");
        let flip = open(&mut d, "/flip", libc::O_RDWR | libc::O_CREAT);
        write(&mut d, flip, &[0u8; 64], 0);
        let mut buf = vec![0u8; 64];
        let b = UserBuf {
            ptr: buf.as_mut_ptr(),
            len: buf.len(),
        };
        d.read(6, flip, b, 0, 0).unwrap();
        let done = one(&mut d, 6);
        assert_eq!(done.result, 64);
        if let Payload::Bounce {
            buf: bb,
            user_offset,
        } = &done.payload
        {
            buf[*user_offset..*user_offset + 64].copy_from_slice(&bb.as_slice()[..64]);
        }
        let ones: u32 = buf.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones, 1, "one bit flipped");
        let trace = s.trace();
        assert!(
            trace
                .iter()
                .any(|l| l.contains("fsync /wal -> -5 [fault Error(5)]")),
            "{trace:#?}"
        );
        assert!(trace
            .iter()
            .any(|l| l.contains("write /lost -> 12 [fault Lost]")));
        trace
    };
    assert_eq!(run(), run(), "the same seed, the same trace");
}
