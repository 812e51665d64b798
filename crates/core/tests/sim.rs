//! The sim engine under the real driver: files on its in-memory disk, what
//! a crash keeps, and the seed's determinism.

#![cfg(target_os = "linux")]

use ringline_core::driver::{Done, Driver, DriverConfig, LoneSync, PathOp, Payload, UserBuf};
use ringline_core::engine::sim::disk::CrashMode;
use ringline_core::engine::sim::fault::{Fault, FaultKind};
use ringline_core::engine::sim::Torn;
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
    open_mode(d, path, flags, 0o644)
}

/// [`open`] with the mode a created file asks for.
fn open_mode(d: &mut Driver, path: &str, flags: i32, mode: u32) -> FileId {
    d.open(1, c(path), flags, mode).unwrap();
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

/// A fault rule that always hits op `op` on paths containing `path`, past
/// the first `after`, at most `times`.
fn rule(op: &str, path: &str, kind: FaultKind, after: u64, times: u64) -> Fault {
    Fault {
        op: Some(op.into()),
        path: Some(path.as_bytes().to_vec()),
        kind,
        after,
        times,
        per_million: 1_000_000,
        seen: 0,
        hits: 0,
    }
}

/// A sim (seed `seed`) with the file /f made and its name durable.
fn synced_file(seed: u64) -> (Arc<dyn Engine>, Driver, FileId) {
    let (engine, mut d) = sim(seed);
    fsync_dir(&mut d, "/");
    let f = open(&mut d, "/f", libc::O_RDWR | libc::O_CREAT);
    fsync_dir(&mut d, "/");
    (engine, d, f)
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
        neg(libc::EINVAL),
        "a directory moved under itself (Linux checks that before the types)"
    );
    assert_eq!(read_file(&mut d, "/nope"), Err(neg(libc::ENOENT)));
}

/// Fault rules: an error on the n-th matching op only, on one path; a
/// lost write (acknowledged, nothing stored); a bit flipped on read. The
/// trace names every op and the faults that hit, the same for the same
/// seed.
#[test]
fn faults_hit_what_they_select_and_the_trace_shows_them() {
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

/// One world of the differential test: a driver and where its names live.
struct World {
    d: Driver,
    root: String,
    /// Open files by slot of the test's handle table.
    files: Vec<Option<FileId>>,
}

impl World {
    fn p(&self, name: &str) -> CString {
        c(&format!("{}/{}", self.root, name))
    }

    /// Runs one step; returns what it gave (result and bytes read), as
    /// text to compare.
    fn step(&mut self, s: &Step) -> String {
        let root = self.root.clone();
        let p = |n: &str| c(&format!("{root}/{n}"));
        let d = &mut self.d;
        match s {
            Step::Open(slot, name, flags) => {
                d.open(20, p(name), *flags, 0o644).unwrap();
                let done = one(d, 20);
                if let Payload::Opened(id) = done.payload {
                    self.files[*slot] = Some(id);
                    return "opened".into();
                }
                format!("open {}", done.result)
            }
            Step::Close(slot) => match self.files[*slot].take() {
                Some(f) => {
                    let mut out = Vec::new();
                    d.close_file(21, f, &mut out).unwrap();
                    let r = out
                        .into_iter()
                        .find(|x| x.token == 21)
                        .unwrap_or_else(|| one(d, 21));
                    format!("close {}", r.result)
                }
                None => "no file".into(),
            },
            Step::Write(slot, at, len, byte) => match self.files[*slot] {
                Some(f) => {
                    let mut b = vec![*byte; *len];
                    let buf = UserBuf {
                        ptr: b.as_mut_ptr(),
                        len: b.len(),
                    };
                    match d.write(22, f, buf, *at) {
                        Ok(()) => format!("write {}", one(d, 22).result),
                        Err(e) => format!("write refused {e}"),
                    }
                }
                None => "no file".into(),
            },
            Step::Read(slot, at, len) => match self.files[*slot] {
                Some(f) => {
                    let mut b = vec![0u8; *len];
                    let buf = UserBuf {
                        ptr: b.as_mut_ptr(),
                        len: b.len(),
                    };
                    match d.read(23, f, buf, 0, *at) {
                        Ok(()) => {
                            let done = one(d, 23);
                            if let Payload::Bounce {
                                buf: bb,
                                user_offset,
                            } = &done.payload
                            {
                                let n = done.result.max(0) as usize;
                                b[*user_offset..*user_offset + n]
                                    .copy_from_slice(&bb.as_slice()[..n]);
                            }
                            let n = done.result.max(0) as usize;
                            format!("read {} {:?}", done.result, &b[..n.min(b.len())])
                        }
                        Err(e) => format!("read refused {e}"),
                    }
                }
                None => "no file".into(),
            },
            Step::Truncate(slot, len) => match self.files[*slot] {
                Some(f) => {
                    let mut out = Vec::new();
                    match d.truncate(24, f, *len, &mut out) {
                        Ok(()) => {
                            let r = out
                                .into_iter()
                                .find(|x| x.token == 24)
                                .unwrap_or_else(|| one(d, 24));
                            format!("truncate {}", r.result)
                        }
                        Err(e) => format!("truncate refused {e}"),
                    }
                }
                None => "no file".into(),
            },
            Step::Sync(slot) => match self.files[*slot] {
                Some(f) => {
                    d.sync(25, f, SyncKind::Data).unwrap();
                    format!("sync {}", one(d, 25).result)
                }
                None => "no file".into(),
            },
            Step::Path(kind, a, b) => {
                let op = match kind {
                    0 => PathOp::Unlink {
                        path: p(a),
                        dir: false,
                    },
                    1 => PathOp::Unlink {
                        path: p(a),
                        dir: true,
                    },
                    2 => PathOp::Mkdir {
                        path: p(a),
                        mode: 0o755,
                    },
                    3 => PathOp::Rename {
                        from: p(a),
                        to: p(b),
                    },
                    4 => PathOp::Link {
                        from: p(a),
                        to: p(b),
                    },
                    _ => PathOp::Stat {
                        path: p(a),
                        follow: true,
                    },
                };
                d.path_op(26, op).unwrap();
                let done = one(d, 26);
                // A stat compares size and type only.
                let what = match &done.payload {
                    Payload::Stat(s) => format!(
                        " size {} type {:o}",
                        s.stx_size,
                        u32::from(s.stx_mode) & libc::S_IFMT
                    ),
                    _ => String::new(),
                };
                format!("path {kind} {}{what}", done.result)
            }
            Step::ReadFile(name) => match read_file_at(d, p(name)) {
                Ok(b) => format!("readFile {b:?}"),
                Err(e) => format!("readFile {e}"),
            },
        }
    }
}

fn read_file_at(d: &mut Driver, path: CString) -> Result<Vec<u8>, i64> {
    d.call(
        27,
        BlockingCall::ReadFile {
            path,
            flags: libc::O_RDONLY,
            out: Vec::new(),
        },
    )
    .unwrap();
    let done = one(d, 27);
    match done.payload {
        Payload::Call(c) => match *c {
            BlockingCall::ReadFile { out, .. } | BlockingCall::ReadRest { out, .. } => Ok(out),
            _ => unreachable!(),
        },
        _ => Err(done.result),
    }
}

#[derive(Debug)]
enum Step {
    Open(usize, &'static str, i32),
    Close(usize),
    Write(usize, u64, usize, u8),
    Read(usize, u64, usize),
    Truncate(usize, u64),
    Sync(usize),
    /// 0 unlink, 1 rmdir, 2 mkdir, 3 rename, 4 link, 5 stat.
    Path(u8, &'static str, &'static str),
    ReadFile(&'static str),
}

/// Seeded random sequences of file and name ops give the same results
/// (errors included) and the same bytes on io_uring over a real directory
/// and on the sim's disk.
#[test]
fn random_ops_match_io_uring_on_a_real_directory() {
    const NAMES: [&str; 5] = ["a", "b", "d", "d/x", "a/y"];
    let flags = [
        libc::O_RDWR | libc::O_CREAT,
        libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
        libc::O_RDWR | libc::O_CREAT | libc::O_EXCL,
        libc::O_RDWR | libc::O_APPEND | libc::O_CREAT,
        libc::O_RDONLY,
        libc::O_WRONLY,
    ];
    for seed in 0..100u64 {
        let mut rng = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        let mut draw = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let steps: Vec<Step> = (0..150)
            .map(|_| {
                let name = NAMES[draw(NAMES.len() as u64) as usize];
                let other = NAMES[draw(NAMES.len() as u64) as usize];
                let slot = draw(3) as usize;
                match draw(10) {
                    0 | 1 => Step::Open(slot, name, flags[draw(flags.len() as u64) as usize]),
                    2 => Step::Close(slot),
                    3 => Step::Write(
                        slot,
                        if draw(3) == 0 { u64::MAX } else { draw(9000) },
                        1 + draw(5000) as usize,
                        b'a' + draw(26) as u8,
                    ),
                    4 => Step::Read(
                        slot,
                        if draw(3) == 0 { u64::MAX } else { draw(9000) },
                        1 + draw(5000) as usize,
                    ),
                    5 => Step::Truncate(slot, draw(9000)),
                    6 => Step::Sync(slot),
                    7 | 8 => Step::Path(draw(6) as u8, name, other),
                    _ => Step::ReadFile(name),
                }
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let real_engine = select(&EngineConfig::default(), Backend::IoUring)
            .expect("io_uring")
            .engine;
        let mut real = World {
            d: Driver::new(real_engine, DriverConfig::default()),
            root: dir.path().to_str().unwrap().to_string(),
            files: vec![None; 3],
        };
        let (_, d) = sim(seed);
        let mut model = World {
            d,
            root: String::new(),
            files: vec![None; 3],
        };
        for (i, s) in steps.iter().enumerate() {
            let a = real.step(s);
            let b = model.step(s);
            assert_eq!(b, a, "seed {seed}, step {i}: {s:?}");
        }
        for name in NAMES {
            let (pm, pr) = (model.p(name), real.p(name));
            assert_eq!(
                read_file_at(&mut model.d, pm),
                read_file_at(&mut real.d, pr),
                "seed {seed}: {name} at the end"
            );
        }
    }
}

/// The crash states of a recorded run: nothing kept, everything kept, each
/// unsynced write lost alone, each torn (first half of its sectors), at
/// every point; deduplicated; each loads as a rebooted disk.
#[test]
fn recorded_runs_give_every_crash_state_once() {
    let (engine, mut d, f) = synced_file(1);
    let s = engine.sim().unwrap();
    write(&mut d, f, &[b'a'; 1024], 0);
    sync(&mut d, f);
    s.record(true);
    write(&mut d, f, &[b'b'; 1024], 0);
    write(&mut d, f, &[b'c'; 1024], 1024);
    s.record(false);
    let (n, cut) = s.build_states(Torn::Half, true, 1000);
    assert!(!cut);
    let mut images = std::collections::BTreeSet::new();
    let mut pairs = std::collections::BTreeSet::new();
    for i in 0..n {
        let point = s.load_state(i).unwrap();
        assert!(point <= s.point());
        let image = read_file(&mut d, "/f").unwrap();
        images.insert(image.clone());
        assert!(pairs.insert((image, point)), "each disk once per point");
    }
    // Each disk at the first and at the last point it is found at.
    assert!(n <= 2 * images.len());
    let cat = |parts: &[(u8, usize)]| {
        parts
            .iter()
            .flat_map(|&(b, k)| std::iter::repeat_n(b, k))
            .collect::<Vec<u8>>()
    };
    let want: std::collections::BTreeSet<Vec<u8>> = [
        cat(&[(b'a', 1024)]),               // nothing unsynced kept
        cat(&[(b'b', 1024), (b'c', 1024)]), // everything kept
        cat(&[(b'a', 1024), (b'c', 1024)]), // the first write lost
        cat(&[(b'b', 1024)]),               // the second write lost
        cat(&[(b'b', 512), (b'a', 512)]),   // the first torn, the second lost
        cat(&[(b'b', 1024), (b'c', 512)]),  // the second torn
    ]
    .into_iter()
    .collect();
    assert_eq!(images, want);
    assert_eq!(s.load_state(n), None);
    assert_eq!(
        write(&mut d, f, b"x", 0),
        -i64::from(libc::EBADF),
        "a reboot: no file open"
    );
}

/// A failed fsync, as Linux leaves the file: the error is reported once,
/// the write it was to make durable stays readable, a later fsync
/// succeeds, and the write is still lost at a crash (its dirty pages were
/// dropped). A write made after the failure is made durable as usual.
#[test]
fn a_failed_fsync_loses_its_writes_for_good() {
    let (engine, mut d, f) = synced_file(4);
    let s = engine.sim().unwrap();
    write(&mut d, f, b"durable ", 0);
    sync(&mut d, f);
    s.add_fault(rule("fsync", "/f", FaultKind::Error(libc::EIO), 0, 1));
    write(&mut d, f, b"dropped ", 8);
    d.sync(3, f, SyncKind::Data).unwrap();
    assert_eq!(
        one(&mut d, 3).result,
        -i64::from(libc::EIO),
        "reported once"
    );
    assert_eq!(
        read_file(&mut d, "/f").unwrap(),
        b"durable dropped ",
        "still readable"
    );
    sync(&mut d, f);
    write(&mut d, f, b"later", 16);
    sync(&mut d, f);
    engine.sim().unwrap().crash(CrashMode::Pessimistic);
    assert_eq!(
        read_file(&mut d, "/f").unwrap(),
        b"durable \0\0\0\0\0\0\0\0later"
    );
}

/// Vectored writes and reads on the sim: the buffers in order, at an
/// offset or the file position, as io_uring does them.
#[test]
fn vectored_ops_fill_and_read_the_buffers_in_order() {
    let (_, mut d) = sim(8);
    let f = open(&mut d, "/v", libc::O_RDWR | libc::O_CREAT);
    let (mut a, mut b) = (b"hello ".to_vec(), b"world".to_vec());
    let ub = |v: &mut Vec<u8>| UserBuf {
        ptr: v.as_mut_ptr(),
        len: v.len(),
    };
    d.vectored(1, f, &[ub(&mut a), ub(&mut b)], 0, true)
        .unwrap();
    assert_eq!(one(&mut d, 1).result, 11);
    let (mut x, mut y) = (vec![0u8; 3], vec![0u8; 20]);
    d.vectored(2, f, &[ub(&mut x), ub(&mut y)], 2, false)
        .unwrap();
    let done = one(&mut d, 2);
    assert_eq!(done.result, 9, "to the end of the file");
    match &done.payload {
        Payload::Bounce { buf, .. } => assert_eq!(&buf.as_slice()[..9], b"llo world"),
        p => panic!("expected bounce, got {p:?}"),
    }
}

/// Torn and misdirected writes report every byte written and store what
/// their fault says; a delayed op completes after the ops of its flush
/// that were not delayed, and the clock moves by the delay.
#[test]
fn write_faults_tear_misdirect_and_delay() {
    let (engine, mut d) = sim(41);
    let s = engine.sim().unwrap();
    s.add_fault(rule("write", "/torn", FaultKind::Torn, 0, 1));
    s.add_fault(rule("write", "/mis", FaultKind::Misdirected, 1, 1));
    let torn = open(&mut d, "/torn", libc::O_RDWR | libc::O_CREAT);
    assert_eq!(write(&mut d, torn, &[0xab; 2048 + 100], 0), 2148);
    assert_eq!(
        read_file(&mut d, "/torn").unwrap(),
        vec![0xab; 1024],
        "the sectors of the first half"
    );

    let mis = open(&mut d, "/mis", libc::O_RDWR | libc::O_CREAT);
    assert_eq!(write(&mut d, mis, &[0u8; 8192], 0), 8192);
    assert_eq!(write(&mut d, mis, &[b'M'; 512], 4096), 512);
    let got = read_file(&mut d, "/mis").unwrap();
    assert!(
        got[4096..4608].iter().all(|b| *b == 0),
        "not where it was asked"
    );
    let at = got
        .iter()
        .position(|b| *b == b'M')
        .expect("stored somewhere");
    assert_eq!(at % 512, 0, "a sector away");
    assert_eq!(got[at..at + 512], [b'M'; 512]);

    for seed in 0..8 {
        let (engine, mut d) = sim(seed);
        let s = engine.sim().unwrap();
        s.add_fault(Fault {
            kind: FaultKind::Delay(5_000_000_000),
            ..rule("write", "/slow", FaultKind::Lost, 0, 1)
        });
        let slow = open(&mut d, "/slow", libc::O_RDWR | libc::O_CREAT);
        let fast = open(&mut d, "/fast", libc::O_RDWR | libc::O_CREAT);
        let a = b"slow".to_vec();
        let b = b"fast".to_vec();
        let ua = UserBuf {
            ptr: a.as_ptr() as *mut u8,
            len: a.len(),
        };
        let ub = UserBuf {
            ptr: b.as_ptr() as *mut u8,
            len: b.len(),
        };
        d.write(20, slow, ua, 0).unwrap();
        d.write(21, fast, ub, 0).unwrap();
        let order: Vec<u32> = settle(&mut d, &[20, 21]).iter().map(|x| x.token).collect();
        assert_eq!(
            order,
            [21, 20],
            "seed {seed}: the delayed write completes last"
        );
        assert_eq!(read_file(&mut d, "/slow").unwrap(), b"slow", "stored");
        let trace = s.trace();
        let last: u64 = trace
            .last()
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(last >= 5_000_000, "5 s of virtual time passed: {last} µs");
    }
}

/// With every tear: each prefix of a torn write's sectors is a state of
/// its own (a 4-sector write gives 1, 2 and 3 sectors kept).
#[test]
fn every_sector_prefix_of_a_torn_write_is_a_state() {
    let (engine, mut d, f) = synced_file(2);
    let s = engine.sim().unwrap();
    write(&mut d, f, &[b'a'; 2048], 0);
    sync(&mut d, f);
    s.record(true);
    write(&mut d, f, &[b'b'; 2048], 0);
    s.record(false);
    let (n, cut) = s.build_states(Torn::EverySector, false, 1000);
    assert!(!cut);
    let mut images = std::collections::BTreeSet::new();
    for i in 0..n {
        s.load_state(i).unwrap();
        images.insert(read_file(&mut d, "/f").unwrap());
    }
    let want: std::collections::BTreeSet<Vec<u8>> = (0..=4)
        .map(|k| {
            let mut v = vec![b'b'; 512 * k];
            v.extend(std::iter::repeat_n(b'a', 2048 - 512 * k));
            v
        })
        .collect();
    assert_eq!(images, want);
}

fn realpath(d: &mut Driver, path: &str) -> Result<String, i64> {
    d.call(
        6,
        BlockingCall::Realpath {
            path: c(path),
            out: Vec::new(),
        },
    )
    .unwrap();
    let done = one(d, 6);
    match done.payload {
        Payload::Call(c) => match *c {
            BlockingCall::Realpath { out, .. } => Ok(String::from_utf8(out).unwrap()),
            _ => unreachable!(),
        },
        _ => Err(done.result),
    }
}

fn symlink(d: &mut Driver, target: &str, path: &str) {
    d.path_op(
        7,
        PathOp::Symlink {
            target: c(target),
            path: c(path),
        },
    )
    .unwrap();
    assert_eq!(one(d, 7).result, 0);
}

/// realpath resolves every symlink (relative, absolute, chained, on the
/// way and last), `.`, `..` and extra slashes, with realpath(3)'s errors.
#[test]
fn realpath_resolves_symlinks_dots_and_slashes() {
    let (_, mut d) = sim(11);
    mkdir(&mut d, "/a");
    mkdir(&mut d, "/a/b");
    let f = open(&mut d, "/a/b/f", libc::O_WRONLY | libc::O_CREAT);
    write(&mut d, f, b"x", 0);
    symlink(&mut d, "b", "/a/rel");
    symlink(&mut d, "/a/b/f", "/abs");
    symlink(&mut d, "rel/../b", "/a/chain");
    symlink(&mut d, "loop2", "/loop1");
    symlink(&mut d, "loop1", "/loop2");
    symlink(&mut d, "nowhere", "/dangling");
    for (path, want) in [
        ("/", "/"),
        ("//a//b/", "/a/b"),
        ("/a/./b/../b/f", "/a/b/f"),
        ("/..", "/"),
        ("a/b", "/a/b"),
        ("/a/rel/f", "/a/b/f"),
        ("/abs", "/a/b/f"),
        ("/a/chain/f", "/a/b/f"),
    ] {
        assert_eq!(realpath(&mut d, path), Ok(want.to_string()), "{path}");
    }
    let neg = |e: i32| Err(-i64::from(e));
    assert_eq!(realpath(&mut d, "/nope"), neg(libc::ENOENT));
    assert_eq!(realpath(&mut d, "/dangling"), neg(libc::ENOENT));
    assert_eq!(realpath(&mut d, "/a/b/f/x"), neg(libc::ENOTDIR));
    assert_eq!(realpath(&mut d, "/a/b/f/.."), neg(libc::ENOTDIR));
    assert_eq!(realpath(&mut d, "/loop1"), neg(libc::ELOOP));
    assert_eq!(realpath(&mut d, ""), neg(libc::ENOENT));
}

fn stat(d: &mut Driver, path: &str, follow: bool) -> Result<ringline_core::op::Statx, i64> {
    d.path_op(
        8,
        PathOp::Stat {
            path: c(path),
            follow,
        },
    )
    .unwrap();
    let done = one(d, 8);
    match done.payload {
        Payload::Stat(s) => Ok(*s),
        _ => Err(done.result),
    }
}

/// What the sim creates loses the bits of its umask (022), as the kernel's
/// creations lose the process's: a file asked 0666 is 0644, a directory
/// asked 0777 is 0755; bits the umask does not name stay.
#[test]
fn created_modes_lose_the_umask() {
    let (_, mut d) = sim(12);
    open_mode(&mut d, "/f", libc::O_WRONLY | libc::O_CREAT, 0o666);
    open_mode(&mut d, "/g", libc::O_WRONLY | libc::O_CREAT, 0o600);
    d.path_op(
        5,
        PathOp::Mkdir {
            path: c("/d"),
            mode: 0o777,
        },
    )
    .unwrap();
    assert_eq!(one(&mut d, 5).result, 0);
    let mode = |d: &mut Driver, p: &str| u32::from(stat(d, p, true).unwrap().stx_mode) & 0o7777;
    assert_eq!(mode(&mut d, "/f"), 0o644);
    assert_eq!(mode(&mut d, "/g"), 0o600);
    assert_eq!(mode(&mut d, "/d"), 0o755);
}

/// Directories count links as Linux does: 2 (the name and `.`) plus one
/// per subdirectory (its `..`), through mkdir, rename and rmdir, and after
/// a crash; an rmdir'ed directory is gone.
#[test]
fn directory_links_count_as_linux_counts_them() {
    let (engine, mut d) = sim(13);
    let op = |d: &mut Driver, o: PathOp| {
        d.path_op(9, o).unwrap();
        assert_eq!(one(d, 9).result, 0);
    };
    let nlink = |d: &mut Driver, p: &str| stat(d, p, true).unwrap().stx_nlink;
    assert_eq!(nlink(&mut d, "/"), 2);
    mkdir(&mut d, "/a");
    mkdir(&mut d, "/a/b");
    let f = open(&mut d, "/a/f", libc::O_WRONLY | libc::O_CREAT);
    write(&mut d, f, b"x", 0);
    assert_eq!(nlink(&mut d, "/"), 3);
    assert_eq!(nlink(&mut d, "/a"), 3);
    assert_eq!(nlink(&mut d, "/a/b"), 2);
    assert_eq!(nlink(&mut d, "/a/f"), 1);
    op(
        &mut d,
        PathOp::Rename {
            from: c("/a/b"),
            to: c("/c"),
        },
    );
    assert_eq!(
        (nlink(&mut d, "/"), nlink(&mut d, "/a"), nlink(&mut d, "/c")),
        (4, 2, 2)
    );
    mkdir(&mut d, "/e");
    op(
        &mut d,
        PathOp::Rename {
            from: c("/c"),
            to: c("/e"),
        },
    );
    assert_eq!((nlink(&mut d, "/"), nlink(&mut d, "/e")), (4, 2));
    op(
        &mut d,
        PathOp::Unlink {
            path: c("/e"),
            dir: true,
        },
    );
    assert_eq!(nlink(&mut d, "/"), 3);
    fsync_dir(&mut d, "/");
    fsync_dir(&mut d, "/a");
    engine.sim().unwrap().crash(CrashMode::Pessimistic);
    assert_eq!((nlink(&mut d, "/"), nlink(&mut d, "/a")), (3, 2));
}

fn access(d: &mut Driver, path: &str, mode: i32) -> i64 {
    d.call(
        10,
        BlockingCall::Access {
            path: c(path),
            mode,
        },
    )
    .unwrap();
    one(d, 10).result
}

/// access checks the mode as Linux does for root (whom the sim runs as):
/// reading and writing are allowed, executing needs an x bit; a directory
/// can always be searched.
#[test]
fn access_checks_execute_bits() {
    let (_, mut d) = sim(14);
    open_mode(&mut d, "/f", libc::O_WRONLY | libc::O_CREAT, 0o644);
    open_mode(&mut d, "/x", libc::O_WRONLY | libc::O_CREAT, 0o700);
    mkdir(&mut d, "/d");
    let rw = libc::R_OK | libc::W_OK;
    assert_eq!(access(&mut d, "/f", libc::F_OK), 0);
    assert_eq!(access(&mut d, "/f", rw), 0);
    assert_eq!(access(&mut d, "/f", libc::X_OK), -i64::from(libc::EACCES));
    assert_eq!(access(&mut d, "/x", rw | libc::X_OK), 0);
    assert_eq!(access(&mut d, "/d", libc::X_OK), 0);
    assert_eq!(
        access(&mut d, "/nope", libc::F_OK),
        -i64::from(libc::ENOENT)
    );
}

/// An O_DIRECT write the driver cannot check before it runs (an append,
/// at an end of file that is not sector-aligned) is refused with EINVAL,
/// as Linux refuses it; at an aligned end it lands.
#[test]
fn a_direct_append_at_a_misaligned_end_is_einval() {
    let (_, mut d) = sim(15);
    let f = open(&mut d, "/f", libc::O_RDWR | libc::O_CREAT);
    assert_eq!(write(&mut d, f, &[1u8; 100], 0), 100);
    let g = open(&mut d, "/f", libc::O_RDWR | libc::O_DIRECT);
    let mut rec = vec![7u8; 512];
    let append = |d: &mut Driver, rec: &mut Vec<u8>| {
        let buf = UserBuf {
            ptr: rec.as_mut_ptr(),
            len: rec.len(),
        };
        d.append(11, g, buf, None).unwrap();
        one(d, 11).result
    };
    assert_eq!(append(&mut d, &mut rec), -i64::from(libc::EINVAL));
    assert_eq!(write(&mut d, f, &[1u8; 412], 100), 412);
    assert_eq!(append(&mut d, &mut rec), 512);
    assert_eq!(read_file(&mut d, "/f").unwrap().len(), 1024);
}

/// A sim (seed `seed`) whose driver makes a lone synced append one write
/// with RWF_DSYNC (or RWF_SYNC), with or without group commit, and the
/// file /f made and its name durable.
fn dsync_file(seed: u64, group_commit: bool) -> (Arc<dyn Engine>, Driver, FileId) {
    let cfg = EngineConfig {
        seed,
        ..EngineConfig::default()
    };
    let engine = select(&cfg, Backend::Sim).expect("sim engine").engine;
    let mut d = Driver::new(
        engine.clone(),
        DriverConfig {
            group_commit,
            lone_sync: LoneSync::WriteFlag,
            ..DriverConfig::default()
        },
    );
    fsync_dir(&mut d, "/");
    let f = open(&mut d, "/f", libc::O_WRONLY | libc::O_CREAT);
    fsync_dir(&mut d, "/");
    (engine, d, f)
}

/// Submits an append of `data` to `f` (the driver copies it in).
fn append(d: &mut Driver, token: u32, f: FileId, data: &[u8], sync: Option<SyncKind>) {
    let mut b = data.to_vec();
    let buf = UserBuf {
        ptr: b.as_mut_ptr(),
        len: b.len(),
    };
    d.append(token, f, buf, sync).unwrap();
}

/// The trace lines added since `from` lines.
fn trace_since(engine: &Arc<dyn Engine>, from: usize) -> Vec<String> {
    engine.sim().unwrap().trace()[from..].to_vec()
}

/// A lone synced append is one write (no fsync follows), and the power
/// going out right after it settles keeps exactly its bytes: an unsynced
/// write before it is lost (its range reads as zeros), the append is not.
#[test]
fn a_dsync_append_is_one_write_and_makes_exactly_its_bytes_durable() {
    let (engine, mut d, f) = dsync_file(3, false);
    let s = engine.sim().unwrap();
    assert_eq!(write(&mut d, f, b"unsynced", 0), 8);
    let from = s.trace().len();
    append(&mut d, 7, f, b"record", Some(SyncKind::Data));
    assert_eq!(one(&mut d, 7).result, 6);
    append(&mut d, 8, f, b"+full", Some(SyncKind::Full));
    assert_eq!(one(&mut d, 8).result, 5);
    let lines = trace_since(&engine, from);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].ends_with(" write /f -> 6"), "{lines:?}");
    assert!(lines[1].ends_with(" write /f -> 5"), "{lines:?}");
    s.crash(CrashMode::Pessimistic);
    assert_eq!(
        read_file(&mut d, "/f").unwrap(),
        b"\0\0\0\0\0\0\0\0record+full"
    );
}

/// A durable write (here: to an O_DSYNC descriptor) in the middle of an
/// unsynced one makes its own range durable and leaves the parts of the
/// older write around it unsynced: a pessimistic crash keeps the range
/// alone, an optimistic one everything.
#[test]
fn a_durable_write_syncs_its_range_only() {
    for (mode, want) in [
        (CrashMode::Pessimistic, &b"\0\0yy"[..]),
        (CrashMode::Optimistic, &b"xxyyxxxx"[..]),
    ] {
        let (engine, mut d, f) = synced_file(5);
        assert_eq!(write(&mut d, f, b"xxxxxxxx", 0), 8);
        let g = open(&mut d, "/f", libc::O_WRONLY | libc::O_DSYNC);
        assert_eq!(write(&mut d, g, b"yy", 2), 2);
        engine.sim().unwrap().crash(mode);
        assert_eq!(read_file(&mut d, "/f").unwrap(), want, "{mode:?}");
    }
}

/// Runs the driver until every token in `want` settled, noting for each
/// the sim's point when it settled.
fn settle_noting(engine: &Arc<dyn Engine>, d: &mut Driver, want: &[u32]) -> Vec<(Done, u64)> {
    let mut got: Vec<(Done, u64)> = Vec::new();
    let mut cqes = Vec::new();
    let mut out = Vec::new();
    while !want.iter().all(|t| got.iter().any(|(x, _)| x.token == *t)) {
        cqes.clear();
        d.flush_and_reap(&mut cqes).unwrap();
        if cqes.is_empty() {
            d.engine().wait(&mut cqes).unwrap();
        }
        for c in cqes.drain(..) {
            d.complete(c, &mut out);
            let point = engine.sim().unwrap().point();
            got.extend(out.drain(..).map(|x| (x, point)));
        }
    }
    got
}

/// On every crash state of a run of RWF_DSYNC appends (alone, and with
/// group commit: 4 in flight together, then one at a time), each append
/// that had settled when the power went out is there whole; and the power
/// going out during a durable write is a state too (its write torn).
#[test]
fn no_dsync_append_settles_before_it_survives_every_crash_state() {
    const REC: usize = 1024;
    let rec = |i: usize| vec![b'A' + i as u8; REC];
    for group_commit in [false, true] {
        let (engine, mut d, f) = dsync_file(11, group_commit);
        let s = engine.sim().unwrap();
        s.record(true);
        let mut acked: Vec<(usize, u64)> = Vec::new();
        for round in 0..4 {
            let ids: Vec<usize> = if round < 3 {
                (round * 4..round * 4 + 4).collect()
            } else {
                vec![12]
            };
            for &i in &ids {
                append(&mut d, 100 + i as u32, f, &rec(i), Some(SyncKind::Data));
            }
            let tokens: Vec<u32> = ids.iter().map(|&i| 100 + i as u32).collect();
            for (done, point) in settle_noting(&engine, &mut d, &tokens) {
                assert_eq!(done.result, REC as i64);
                acked.push((done.token as usize - 100, point));
            }
        }
        s.record(false);
        let (n, cut) = s.build_states(Torn::Half, true, 100_000);
        assert!(!cut);
        let mut torn_before_ack = 0;
        for i in 0..n {
            let point = s.load_state(i).unwrap();
            let image = read_file(&mut d, "/f").unwrap();
            for &(r, at) in &acked {
                let got = image.get(r * REC..(r + 1) * REC);
                if at <= point {
                    assert_eq!(
                        got,
                        Some(&rec(r)[..]),
                        "group_commit {group_commit}: append {r} (settled at {at}) lost at point {point}"
                    );
                } else {
                    // Torn: its first sector there, not all of it.
                    let part = image.get(r * REC..image.len().min((r + 1) * REC));
                    if part.is_some_and(|p| {
                        p.len() >= REC / 2 && p[..REC / 2] == rec(r)[..REC / 2] && p != rec(r)
                    }) {
                        torn_before_ack += 1;
                    }
                }
            }
        }
        assert!(
            torn_before_ack > 0,
            "group_commit {group_commit}: no torn write among {n} states"
        );
    }
}

/// A failed RWF_DSYNC append rejects with the write's error and leaves
/// nothing; a short one goes on with the rest (also durable) and settles
/// whole.
#[test]
fn a_dsync_append_reports_a_failed_write_and_finishes_a_short_one() {
    let (engine, mut d, f) = dsync_file(13, false);
    let s = engine.sim().unwrap();
    s.add_fault(rule("write", "/f", FaultKind::Error(libc::EIO), 0, 1));
    append(&mut d, 7, f, b"failed", Some(SyncKind::Data));
    assert_eq!(one(&mut d, 7).result, -i64::from(libc::EIO));
    s.add_fault(rule("write", "/f", FaultKind::Error(libc::ENOSPC), 0, 1));
    append(&mut d, 8, f, b"nospace", Some(SyncKind::Full));
    assert_eq!(one(&mut d, 8).result, -i64::from(libc::ENOSPC));
    s.add_fault(rule("write", "/f", FaultKind::Short, 0, 1));
    let from = s.trace().len();
    append(&mut d, 9, f, b"record", Some(SyncKind::Data));
    assert_eq!(one(&mut d, 9).result, 6);
    let lines = trace_since(&engine, from);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].ends_with(" write /f -> 3 [fault Short]"),
        "{lines:?}"
    );
    assert!(lines[1].ends_with(" write /f -> 3"), "{lines:?}");
    s.crash(CrashMode::Pessimistic);
    assert_eq!(read_file(&mut d, "/f").unwrap(), b"record");
}

/// A durable write is a write and a sync: a fault rule on fsync hits its
/// sync. The append rejects with the error; its bytes stay readable but
/// leave the dirty set, as after a failed fsync, so a crash loses them;
/// the next append is durable as usual.
#[test]
fn an_fsync_fault_hits_the_sync_of_a_dsync_append() {
    let (engine, mut d, f) = dsync_file(17, false);
    let s = engine.sim().unwrap();
    s.add_fault(rule("fsync", "/f", FaultKind::Error(libc::EIO), 0, 1));
    let from = s.trace().len();
    append(&mut d, 7, f, b"failed", Some(SyncKind::Data));
    assert_eq!(one(&mut d, 7).result, -i64::from(libc::EIO));
    let lines = trace_since(&engine, from);
    assert!(
        lines[0].ends_with(" write /f -> -5 [fsync fault Error(5)]"),
        "{lines:?}"
    );
    assert_eq!(
        read_file(&mut d, "/f").unwrap(),
        b"failed",
        "still readable"
    );
    append(&mut d, 8, f, b"+kept", Some(SyncKind::Full));
    assert_eq!(one(&mut d, 8).result, 5);
    s.crash(CrashMode::Pessimistic);
    assert_eq!(read_file(&mut d, "/f").unwrap(), b"\0\0\0\0\0\0+kept");
}
