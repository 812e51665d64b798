//! The sim engine's disk: a tree of directories, files and symlinks in
//! memory, with what is durable kept apart from what is not.
//!
//! The model is ext4 with `data=ordered` as an application may rely on it,
//! and stricter where ext4 is kinder than POSIX promises:
//! - A file's bytes and size are durable once an `fsync` or `fdatasync` of
//!   it returns (`O_SYNC`/`O_DSYNC` make every write do that).
//! - A name (created, renamed, unlinked) is durable only once its
//!   directory is fsynced. ext4 usually persists a new file's entry with
//!   the file's own fsync; the sim does not, so code that forgets the
//!   directory fsync loses the name here.
//! - What was written and not synced may survive a crash whole, partly (a
//!   sector at a time, in any order) or not at all.

use std::collections::{BTreeMap, HashMap};

/// The sim disk's sector: the unit a torn write keeps or loses, and the
/// `O_DIRECT` alignment it asks for.
pub const SECTOR: usize = 512;

/// An unsynced write: its file and its index among the file's unsynced
/// writes (oldest first).
pub type WriteRef = (Ino, usize);

/// An unsynced name change: its directory and the name.
pub type NameRef = (Ino, Vec<u8>);

/// What a crash does with one unsynced write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Whole,
    /// Some of its sectors (see [`Chooser::sector`]).
    Torn,
    Lost,
}

/// Decides, for one crash, the fate of everything not durable.
pub trait Chooser {
    /// Unsynced write `idx` (oldest first) of file `ino`.
    fn write(&mut self, ino: Ino, idx: usize) -> Keep;
    /// Whether sector `s` (of `sectors`) of a torn write is kept.
    fn sector(&mut self, ino: Ino, idx: usize, s: usize, sectors: usize) -> bool;
    /// Whether the unsynced change of `name` in directory `dir` is kept.
    fn name(&mut self, dir: Ino, name: &[u8]) -> bool;
    /// Whether the unsynced truncate of file `ino` is kept.
    fn truncate(&mut self, ino: Ino) -> bool;
}

/// Everything kept (`true`) or everything lost.
struct Fixed(bool);

impl Chooser for Fixed {
    fn write(&mut self, _: Ino, _: usize) -> Keep {
        if self.0 {
            Keep::Whole
        } else {
            Keep::Lost
        }
    }
    fn sector(&mut self, _: Ino, _: usize, _: usize, _: usize) -> bool {
        self.0
    }
    fn name(&mut self, _: Ino, _: &[u8]) -> bool {
        self.0
    }
    fn truncate(&mut self, _: Ino) -> bool {
        self.0
    }
}

/// Drawn from the seed: a write kept whole (1 in 2), torn (1 in 4, each
/// sector 1 in 2) or lost (1 in 4); a name change or truncate 1 in 2.
struct Drawn<'a>(&'a mut dyn FnMut(u64) -> u64);

impl Chooser for Drawn<'_> {
    fn write(&mut self, _: Ino, _: usize) -> Keep {
        match (self.0)(4) {
            0 | 1 => Keep::Whole,
            2 => Keep::Lost,
            _ => Keep::Torn,
        }
    }
    fn sector(&mut self, _: Ino, _: usize, _: usize, _: usize) -> bool {
        (self.0)(2) == 0
    }
    fn name(&mut self, _: Ino, _: &[u8]) -> bool {
        (self.0)(2) == 0
    }
    fn truncate(&mut self, _: Ino) -> bool {
        (self.0)(2) == 0
    }
}

/// An inode number.
pub type Ino = u64;

const ROOT: Ino = 1;

/// A write not made durable yet: where, and the bytes.
#[derive(Clone, Debug)]
pub struct Unsynced {
    pub offset: u64,
    pub bytes: Vec<u8>,
}

#[derive(Clone, Debug)]
pub enum Node {
    File {
        /// What reads see.
        data: Vec<u8>,
        /// What survives a crash that keeps nothing unsynced.
        durable: Vec<u8>,
        /// Writes since the last sync, oldest first.
        unsynced: Vec<Unsynced>,
        /// The size set by a truncate since the last sync, if any.
        truncated: Option<u64>,
    },
    Dir {
        entries: BTreeMap<Vec<u8>, Ino>,
        /// The entries as of the last fsync of the directory.
        durable: BTreeMap<Vec<u8>, Ino>,
    },
    Symlink {
        target: Vec<u8>,
    },
}

/// Seconds and nanoseconds of virtual time.
pub type Time = (i64, u32);

#[derive(Clone, Debug)]
pub struct Inode {
    pub node: Node,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Names that refer to it.
    pub nlink: u32,
    pub atime: Time,
    pub mtime: Time,
    pub ctime: Time,
    pub btime: Time,
}

impl Inode {
    pub fn size(&self) -> u64 {
        match &self.node {
            Node::File { data, .. } => data.len() as u64,
            Node::Dir { entries, .. } => 4096 * (1 + entries.len() as u64 / 128),
            Node::Symlink { target } => target.len() as u64,
        }
    }

    pub fn file_type(&self) -> u32 {
        match self.node {
            Node::File { .. } => libc::S_IFREG,
            Node::Dir { .. } => libc::S_IFDIR,
            Node::Symlink { .. } => libc::S_IFLNK,
        }
    }
}

/// How a crash treats what was not durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashMode {
    /// Everything unsynced is lost.
    Pessimistic,
    /// Everything unsynced survives.
    Optimistic,
    /// Each unsynced write survives whole, torn (some sectors) or not at
    /// all, and each unsynced name change survives or not, drawn from the
    /// seed.
    Random,
}

/// The disk.
#[derive(Clone, Debug)]
pub struct Disk {
    pub inodes: HashMap<Ino, Inode>,
    next_ino: Ino,
    /// Bytes of file data the disk holds at most (`ENOSPC` past it).
    pub capacity: u64,
    /// Bytes of file data held now.
    used: u64,
}

/// Where a path leads.
pub struct Resolved {
    /// The directory holding the last name.
    pub parent: Ino,
    /// The last name (empty for "/").
    pub name: Vec<u8>,
    /// What the name refers to, if it exists.
    pub ino: Option<Ino>,
}

const MAX_LINKS: usize = 40;

impl Disk {
    pub fn new(capacity: u64, now: Time) -> Disk {
        let mut inodes = HashMap::new();
        inodes.insert(
            ROOT,
            Inode {
                node: Node::Dir {
                    entries: BTreeMap::new(),
                    durable: BTreeMap::new(),
                },
                mode: libc::S_IFDIR | 0o755,
                uid: 0,
                gid: 0,
                nlink: 2,
                atime: now,
                mtime: now,
                ctime: now,
                btime: now,
            },
        );
        Disk {
            inodes,
            next_ino: ROOT + 1,
            capacity,
            used: 0,
        }
    }

    pub fn get(&self, ino: Ino) -> Option<&Inode> {
        self.inodes.get(&ino)
    }

    pub fn get_mut(&mut self, ino: Ino) -> Option<&mut Inode> {
        self.inodes.get_mut(&ino)
    }

    /// Bytes of file data held now.
    pub fn used(&self) -> u64 {
        self.used
    }

    fn count_used(&self) -> u64 {
        self.inodes
            .values()
            .map(|i| match &i.node {
                Node::File { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// Drops inode `ino` (no name and no open file refers to it).
    pub fn remove(&mut self, ino: Ino) {
        if let Some(Inode {
            node: Node::File { data, .. },
            ..
        }) = self.inodes.remove(&ino)
        {
            self.used -= data.len() as u64;
        }
    }

    /// Resolves `path` (relative paths start at "/"): every symlink on the
    /// way is followed, the last one only with `follow`.
    pub fn resolve(&self, path: &[u8], follow: bool) -> Result<Resolved, i32> {
        self.resolve_from(ROOT, path, follow, 0)
    }

    fn resolve_from(
        &self,
        start: Ino,
        path: &[u8],
        follow: bool,
        depth: usize,
    ) -> Result<Resolved, i32> {
        if path.is_empty() {
            return Err(libc::ENOENT);
        }
        if depth > MAX_LINKS {
            return Err(libc::ELOOP);
        }
        let mut dir = if path[0] == b'/' { ROOT } else { start };
        let parts: Vec<&[u8]> = path
            .split(|&b| b == b'/')
            .filter(|p| !p.is_empty() && *p != b".")
            .collect();
        if parts.is_empty() {
            return Ok(Resolved {
                parent: ROOT,
                name: Vec::new(),
                ino: Some(dir),
            });
        }
        let trailing_slash = path.ends_with(b"/");
        let mut parents = vec![dir];
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            if *part == b".." {
                if parents.len() > 1 {
                    parents.pop();
                }
                dir = *parents.last().expect("root stays");
                if last {
                    return Ok(Resolved {
                        parent: dir,
                        name: Vec::new(),
                        ino: Some(dir),
                    });
                }
                continue;
            }
            let entries = match &self.inodes[&dir].node {
                Node::Dir { entries, .. } => entries,
                _ => return Err(libc::ENOTDIR),
            };
            let found = entries.get(*part).copied();
            if last {
                if let Some(ino) = found {
                    if let Node::Symlink { target } = &self.inodes[&ino].node {
                        if follow || trailing_slash {
                            return self.resolve_from(dir, target, follow, depth + 1);
                        }
                    }
                    if trailing_slash && !matches!(self.inodes[&ino].node, Node::Dir { .. }) {
                        return Err(libc::ENOTDIR);
                    }
                }
                return Ok(Resolved {
                    parent: dir,
                    name: part.to_vec(),
                    ino: found,
                });
            }
            let Some(ino) = found else {
                return Err(libc::ENOENT);
            };
            match &self.inodes[&ino].node {
                Node::Dir { .. } => {
                    dir = ino;
                    parents.push(ino);
                }
                Node::Symlink { target } => {
                    let r = self.resolve_from(dir, target, true, depth + 1)?;
                    let target = r.ino.ok_or(libc::ENOENT)?;
                    if !matches!(self.inodes[&target].node, Node::Dir { .. }) {
                        return Err(libc::ENOTDIR);
                    }
                    dir = target;
                    parents.push(target);
                }
                Node::File { .. } => return Err(libc::ENOTDIR),
            }
        }
        unreachable!("the last part returns")
    }

    /// The path `path` names with every symlink followed and every `.`,
    /// `..` and extra slash gone, as realpath(3) gives it (relative paths
    /// start at "/"): ENOENT for a missing name, ENOTDIR for a non-directory
    /// on the way, ELOOP past 40 links.
    pub fn realpath(&self, path: &[u8]) -> Result<Vec<u8>, i32> {
        if path.is_empty() {
            return Err(libc::ENOENT);
        }
        let mut todo: std::collections::VecDeque<Vec<u8>> = path
            .split(|&b| b == b'/')
            .filter(|p| !p.is_empty())
            .map(<[u8]>::to_vec)
            .collect();
        // The directories from "/" down to where the walk is.
        let mut at: Vec<(Vec<u8>, Ino)> = Vec::new();
        let mut links = 0;
        while let Some(part) = todo.pop_front() {
            let dir = at.last().map_or(ROOT, |(_, ino)| *ino);
            let Node::Dir { entries, .. } = &self.inodes[&dir].node else {
                return Err(libc::ENOTDIR);
            };
            if part == b"." {
                continue;
            }
            if part == b".." {
                at.pop();
                continue;
            }
            let ino = *entries.get(&part).ok_or(libc::ENOENT)?;
            match &self.inodes[&ino].node {
                Node::Symlink { target } => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(libc::ELOOP);
                    }
                    if target.first() == Some(&b'/') {
                        at.clear();
                    }
                    for t in target.split(|&b| b == b'/').filter(|p| !p.is_empty()).rev() {
                        todo.push_front(t.to_vec());
                    }
                }
                _ => at.push((part, ino)),
            }
        }
        let mut out = Vec::new();
        for (name, _) in &at {
            out.push(b'/');
            out.extend_from_slice(name);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        Ok(out)
    }

    /// Whether directory `anc` holds `ino` somewhere below it.
    pub fn contains(&self, anc: Ino, ino: Ino) -> bool {
        let mut stack = vec![anc];
        let mut seen = std::collections::HashSet::new();
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            if let Some(Inode {
                node: Node::Dir { entries, .. },
                ..
            }) = self.inodes.get(&d)
            {
                for &c in entries.values() {
                    if c == ino {
                        return true;
                    }
                    stack.push(c);
                }
            }
        }
        false
    }

    /// A new inode of `node`, not linked anywhere yet.
    pub fn make(&mut self, node: Node, mode: u32, now: Time) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                node,
                mode,
                uid: 0,
                gid: 0,
                nlink: 0,
                atime: now,
                mtime: now,
                ctime: now,
                btime: now,
            },
        );
        ino
    }

    pub fn new_file(&mut self, mode: u32, now: Time) -> Ino {
        self.make(
            Node::File {
                data: Vec::new(),
                durable: Vec::new(),
                unsynced: Vec::new(),
                truncated: None,
            },
            libc::S_IFREG | (mode & 0o7777),
            now,
        )
    }

    fn is_dir(&self, ino: Ino) -> bool {
        matches!(
            self.inodes.get(&ino).map(|i| &i.node),
            Some(Node::Dir { .. })
        )
    }

    /// The entries of directory `dir`, for a change of one of them made
    /// `now`: its times move, and its link count does when the entry is a
    /// subdirectory (`sub`: one `..` more with `true`, one less with
    /// `false`).
    fn changing_dir(
        &mut self,
        dir: Ino,
        now: Time,
        sub: Option<bool>,
    ) -> Option<&mut BTreeMap<Vec<u8>, Ino>> {
        match self.inodes.get_mut(&dir) {
            Some(Inode {
                node: Node::Dir { entries, .. },
                mtime,
                ctime,
                nlink,
                ..
            }) => {
                *mtime = now;
                *ctime = now;
                match sub {
                    Some(true) => *nlink += 1,
                    Some(false) => *nlink = nlink.saturating_sub(1),
                    None => {}
                }
                Some(entries)
            }
            _ => None,
        }
    }

    /// Puts `name` in directory `dir`, referring to `ino`. Links count as
    /// Linux counts them: a directory has one for its name, one for its
    /// `.` and one per subdirectory's `..`.
    pub fn link(&mut self, dir: Ino, name: &[u8], ino: Ino, now: Time) {
        let is_dir = self.is_dir(ino);
        if let Some(entries) = self.changing_dir(dir, now, is_dir.then_some(true)) {
            entries.insert(name.to_vec(), ino);
        }
        if let Some(i) = self.inodes.get_mut(&ino) {
            // A new directory's `.` comes with its first name.
            i.nlink += if is_dir && i.nlink == 0 { 2 } else { 1 };
            i.ctime = now;
        }
    }

    /// Takes `name` out of directory `dir`; returns what it referred to.
    /// A directory keeps its `.` link (it may be linked again, by a
    /// rename); one removed for good is then [`Disk::gone`].
    pub fn unlink(&mut self, dir: Ino, name: &[u8], now: Time) -> Option<Ino> {
        let child = match self.inodes.get(&dir).map(|i| &i.node) {
            Some(Node::Dir { entries, .. }) => *entries.get(name)?,
            _ => return None,
        };
        let is_dir = self.is_dir(child);
        if let Some(entries) = self.changing_dir(dir, now, is_dir.then_some(false)) {
            entries.remove(name);
        }
        if let Some(i) = self.inodes.get_mut(&child) {
            i.nlink = i.nlink.saturating_sub(1);
            i.ctime = now;
        }
        Some(child)
    }

    /// A directory unlinked for good (rmdir, or renamed over): no link
    /// left, as Linux leaves it.
    pub fn gone(&mut self, ino: Ino) {
        if self.is_dir(ino) {
            if let Some(i) = self.inodes.get_mut(&ino) {
                i.nlink = 0;
            }
        }
    }

    /// Writes `bytes` at `offset` of file `ino` (not durable yet).
    pub fn write(&mut self, ino: Ino, offset: u64, bytes: &[u8], now: Time) -> Result<usize, i32> {
        if bytes.is_empty() {
            // Nothing written: the size stays, wherever the offset is.
            return match self.inodes.get(&ino).map(|i| &i.node) {
                Some(Node::File { .. }) => Ok(0),
                Some(_) => Err(libc::EISDIR),
                None => Err(libc::EBADF),
            };
        }
        let grow = {
            let i = self.inodes.get(&ino).ok_or(libc::EBADF)?;
            (offset + bytes.len() as u64).saturating_sub(i.size())
        };
        if grow > 0 && self.used + grow > self.capacity {
            return Err(libc::ENOSPC);
        }
        self.used += grow;
        let i = self.inodes.get_mut(&ino).ok_or(libc::EBADF)?;
        let Node::File { data, unsynced, .. } = &mut i.node else {
            return Err(libc::EISDIR);
        };
        let end = offset as usize + bytes.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(bytes);
        unsynced.push(Unsynced {
            offset,
            bytes: bytes.to_vec(),
        });
        i.mtime = now;
        i.ctime = now;
        Ok(bytes.len())
    }

    /// Cuts or extends file `ino` to `len` bytes (not durable yet).
    pub fn truncate(&mut self, ino: Ino, len: u64, now: Time) -> Result<(), i32> {
        let i = self.inodes.get_mut(&ino).ok_or(libc::EBADF)?;
        let Node::File {
            data,
            unsynced,
            truncated,
            ..
        } = &mut i.node
        else {
            return Err(libc::EINVAL);
        };
        let old = data.len() as u64;
        data.resize(len as usize, 0);
        self.used = self.used + len - old;
        // A later crash replays writes onto the durable bytes cut to this.
        for u in unsynced.iter_mut() {
            let keep = len.saturating_sub(u.offset) as usize;
            u.bytes.truncate(keep);
        }
        // A write wholly past the new end is gone (a crash must not bring
        // the file's old length back with it).
        unsynced.retain(|u| !u.bytes.is_empty());
        *truncated = Some(len);
        i.mtime = now;
        i.ctime = now;
        Ok(())
    }

    /// Makes file `ino`'s bytes and size durable (fsync, fdatasync); for a
    /// directory, its entries.
    pub fn sync(&mut self, ino: Ino) -> Result<(), i32> {
        let i = self.inodes.get_mut(&ino).ok_or(libc::EBADF)?;
        match &mut i.node {
            Node::File {
                data,
                durable,
                unsynced,
                truncated,
            } => {
                // What changed since the last sync, not the whole file: a
                // log synced after every append stays linear; and writes a
                // failed fsync dropped (see `drop_dirty`) stay lost.
                if let Some(len) = *truncated {
                    durable.resize(len as usize, 0);
                }
                for u in unsynced.iter() {
                    let end = u.offset as usize + u.bytes.len();
                    if durable.len() < end {
                        durable.resize(end, 0);
                    }
                    durable[u.offset as usize..end].copy_from_slice(&data[u.offset as usize..end]);
                }
                durable.truncate(data.len());
                unsynced.clear();
                *truncated = None;
            }
            Node::Dir { entries, durable } => durable.clone_from(entries),
            Node::Symlink { .. } => {}
        }
        Ok(())
    }

    /// Makes the `len` bytes at `offset` of file `ino` durable, and its
    /// size, as a write with `RWF_DSYNC` (or to an `O_DSYNC` file) does
    /// before it completes: Linux syncs the range written
    /// (`vfs_fsync_range`), so the file's other unsynced writes stay
    /// unsynced, but for the parts of them the range covers (its bytes are
    /// newer). With a truncate not yet synced, the whole file is synced
    /// (the size it set is the size the sync records).
    pub fn sync_range(&mut self, ino: Ino, offset: u64, len: usize) -> Result<(), i32> {
        let i = self.inodes.get_mut(&ino).ok_or(libc::EBADF)?;
        let Node::File {
            data,
            durable,
            unsynced,
            truncated: None,
        } = &mut i.node
        else {
            return self.sync(ino);
        };
        let start = (offset as usize).min(data.len());
        let end = (offset as usize).saturating_add(len).min(data.len());
        if start == end {
            return Ok(());
        }
        if durable.len() < end {
            // Past the durable end: the size grows to cover the range; a
            // gap before it holds zeros until older writes are synced.
            durable.resize(end, 0);
        }
        durable[start..end].copy_from_slice(&data[start..end]);
        let mut left = Vec::with_capacity(unsynced.len());
        for u in unsynced.drain(..) {
            let (us, ue) = (u.offset as usize, u.offset as usize + u.bytes.len());
            if ue <= start || us >= end {
                left.push(u);
                continue;
            }
            if us < start {
                left.push(Unsynced {
                    offset: u.offset,
                    bytes: u.bytes[..start - us].to_vec(),
                });
            }
            if ue > end {
                left.push(Unsynced {
                    offset: end as u64,
                    bytes: u.bytes[end - us..].to_vec(),
                });
            }
        }
        *unsynced = left;
        Ok(())
    }

    /// A failed fsync of file `ino`, as Linux leaves it: the writes it was
    /// to make durable leave the dirty set (reads still see them, until a
    /// crash), so a later fsync succeeds without them; the error was
    /// reported once.
    pub fn drop_dirty(&mut self, ino: Ino) {
        if let Some(Inode {
            node:
                Node::File {
                    unsynced,
                    truncated,
                    ..
                },
            ..
        }) = self.inodes.get_mut(&ino)
        {
            unsynced.clear();
            *truncated = None;
        }
    }

    /// The disk as it is after a power loss now: see [`CrashMode`].
    /// `draw(n)` gives a number below `n` (the seed's).
    pub fn crash(&mut self, mode: CrashMode, draw: &mut dyn FnMut(u64) -> u64) {
        match mode {
            CrashMode::Pessimistic => self.crash_with(&mut Fixed(false)),
            CrashMode::Optimistic => self.crash_with(&mut Fixed(true)),
            CrashMode::Random => self.crash_with(&mut Drawn(draw)),
        }
    }

    /// The disk after a power loss, with `c` deciding the fate of each
    /// unsynced write, truncate and name change.
    pub fn crash_with(&mut self, c: &mut dyn Chooser) {
        let mut inos: Vec<Ino> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let i = self.inodes.get_mut(&ino).expect("listed");
            match &mut i.node {
                Node::File {
                    data,
                    durable,
                    unsynced,
                    truncated,
                } => {
                    let mut image = durable.clone();
                    if let Some(len) = *truncated {
                        if c.truncate(ino) {
                            image.resize(len as usize, 0);
                        }
                    }
                    for (idx, u) in unsynced.iter().enumerate() {
                        let keep = c.write(ino, idx);
                        if keep == Keep::Lost {
                            continue;
                        }
                        let end = u.offset as usize + u.bytes.len();
                        let sectors = u.bytes.len().div_ceil(SECTOR);
                        for (s, chunk) in u.bytes.chunks(SECTOR).enumerate() {
                            if keep == Keep::Torn && !c.sector(ino, idx, s, sectors) {
                                continue;
                            }
                            let at = u.offset as usize + s * SECTOR;
                            if image.len() < at + chunk.len() {
                                image.resize(at + chunk.len(), 0);
                            }
                            image[at..at + chunk.len()].copy_from_slice(chunk);
                        }
                        if keep == Keep::Whole && image.len() < end {
                            image.resize(end, 0);
                        }
                    }
                    *data = image.clone();
                    *durable = image;
                    unsynced.clear();
                    *truncated = None;
                }
                Node::Dir { entries, durable } => {
                    let mut image = durable.clone();
                    let mut names: Vec<Vec<u8>> =
                        entries.keys().chain(durable.keys()).cloned().collect();
                    names.sort();
                    names.dedup();
                    for n in names {
                        if entries.get(&n) != durable.get(&n) && c.name(ino, &n) {
                            match entries.get(&n) {
                                Some(v) => image.insert(n, *v),
                                None => image.remove(&n),
                            };
                        }
                    }
                    *entries = image.clone();
                    *durable = image;
                }
                Node::Symlink { .. } => {}
            }
        }
        self.collect();
    }

    /// What a crash could change: every unsynced write (file, index) and
    /// every unsynced name change (directory, name), in a fixed order.
    pub fn pending(&self) -> (Vec<WriteRef>, Vec<NameRef>) {
        let mut inos: Vec<Ino> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        let mut writes = Vec::new();
        let mut names = Vec::new();
        for ino in inos {
            match &self.inodes[&ino].node {
                Node::File { unsynced, .. } => writes.extend((0..unsynced.len()).map(|k| (ino, k))),
                Node::Dir { entries, durable } => {
                    let mut all: Vec<&Vec<u8>> = entries.keys().chain(durable.keys()).collect();
                    all.sort();
                    all.dedup();
                    for n in all {
                        if entries.get(n) != durable.get(n) {
                            names.push((ino, n.clone()));
                        }
                    }
                }
                Node::Symlink { .. } => {}
            }
        }
        (writes, names)
    }

    /// How many sectors unsynced write `w` spans (0 if there is no such
    /// write): what a torn write keeps a prefix of.
    pub fn write_sectors(&self, w: WriteRef) -> usize {
        match self.inodes.get(&w.0).map(|i| &i.node) {
            Some(Node::File { unsynced, .. }) => unsynced
                .get(w.1)
                .map_or(0, |u| u.bytes.len().div_ceil(SECTOR)),
            _ => 0,
        }
    }

    /// A digest of what the disk holds (names, types, bytes, link targets),
    /// to tell crash states apart.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        let mut stack: Vec<(Vec<u8>, Ino)> = vec![(b"/".to_vec(), ROOT)];
        while let Some((path, ino)) = stack.pop() {
            path.hash(&mut h);
            match self.inodes.get(&ino).map(|i| &i.node) {
                Some(Node::File { data, .. }) => {
                    0u8.hash(&mut h);
                    data.hash(&mut h);
                }
                Some(Node::Symlink { target }) => {
                    1u8.hash(&mut h);
                    target.hash(&mut h);
                }
                Some(Node::Dir { entries, .. }) => {
                    2u8.hash(&mut h);
                    for (name, child) in entries.iter().rev() {
                        let mut p = path.clone();
                        p.extend_from_slice(name);
                        p.push(b'/');
                        stack.push((p, *child));
                    }
                }
                None => 3u8.hash(&mut h),
            }
        }
        h.finish()
    }

    /// Counts links again from the tree and drops what no name reaches
    /// (after a crash: no descriptor survives to hold an unlinked file).
    fn collect(&mut self) {
        let mut links: HashMap<Ino, u32> = HashMap::new();
        let mut stack = vec![ROOT];
        let mut seen = std::collections::HashSet::new();
        links.insert(ROOT, 2);
        while let Some(d) = stack.pop() {
            if !seen.insert(d) {
                continue;
            }
            let Some(Inode {
                node: Node::Dir { entries, .. },
                ..
            }) = self.inodes.get(&d)
            else {
                continue;
            };
            for &child in entries.values() {
                *links.entry(child).or_insert(0) += 1;
                if self.is_dir(child) {
                    // Its `.`, and its `..` in this directory.
                    *links.entry(child).or_insert(0) += 1;
                    *links.entry(d).or_insert(0) += 1;
                    stack.push(child);
                }
            }
        }
        self.inodes.retain(|ino, _| links.contains_key(ino));
        self.used = self.count_used();
        for (ino, n) in links {
            if let Some(i) = self.inodes.get_mut(&ino) {
                i.nlink = n;
            }
        }
        // Entries that name an inode gone with its unsynced creation.
        let live: std::collections::HashSet<Ino> = self.inodes.keys().copied().collect();
        for i in self.inodes.values_mut() {
            if let Node::Dir { entries, durable } = &mut i.node {
                entries.retain(|_, v| live.contains(v));
                durable.retain(|_, v| live.contains(v));
            }
        }
    }
}
