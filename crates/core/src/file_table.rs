//! The file table: open files of one Ring, addressed by generation-checked
//! handles.
//!
//! A `FileId` is an index plus a generation. Closing a file bumps the
//! generation of its slot, so a stale id held by JavaScript gets `EBADF` and
//! never reaches the file that later takes the same slot (invariant 4).

use std::os::fd::RawFd;

/// Bits of a packed id that hold the slot index; the rest hold the generation.
const INDEX_BITS: u32 = 20;
/// Most files one table holds.
pub const MAX_FILES: usize = 1 << INDEX_BITS;

/// A generation-checked file handle. Packs into 52 bits, so it travels to
/// JavaScript as an exact `number`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId {
    pub index: u32,
    pub generation: u32,
}

impl FileId {
    pub fn pack(self) -> u64 {
        (u64::from(self.generation) << INDEX_BITS) | u64::from(self.index)
    }

    /// The id packed by [`FileId::pack`]; `None` for values no table can hand out.
    pub fn unpack(v: u64) -> Option<FileId> {
        if v >> (INDEX_BITS + 32) != 0 {
            return None;
        }
        Some(FileId {
            index: (v & ((1 << INDEX_BITS) - 1)) as u32,
            generation: (v >> INDEX_BITS) as u32,
        })
    }
}

/// What `O_DIRECT` asks of memory addresses and of file offsets/lengths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DioAlign {
    pub mem: u32,
    pub offset: u32,
}

/// One open file.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub fd: RawFd,
    /// Slot in the kernel's registered file table, when registration worked.
    pub fixed: Option<u32>,
    /// Opened with `O_DIRECT`: alignment the kernel demands.
    pub direct: Option<DioAlign>,
    /// Opened with `O_APPEND`: appends go to the kernel's end of file.
    pub append_mode: bool,
    /// Ops that change the file (writes, truncates, appends) past the
    /// driver's order gate and not yet settled (see `driver/order.rs`).
    pub mutating: u32,
    /// An append is among them: later changes wait until it is done.
    pub barrier: bool,
    /// Ops of this file in the kernel, the backlog or held by the gate.
    pub in_flight: u32,
    /// A close waiting for the file's ops to finish: its token.
    pub close_token: Option<u32>,
    /// A close has been requested; no further ops are accepted.
    pub closing: bool,
}

impl FileEntry {
    pub fn new(fd: RawFd) -> FileEntry {
        FileEntry {
            fd,
            fixed: None,
            direct: None,
            append_mode: false,
            mutating: 0,
            barrier: false,
            in_flight: 0,
            close_token: None,
            closing: false,
        }
    }
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    entry: Option<FileEntry>,
}

/// Open files of one Ring.
#[derive(Debug, Default)]
pub struct FileTable {
    slots: Vec<Slot>,
    free: Vec<u32>,
    len: usize,
}

/// Why a handle was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileError {
    /// Closed, closing, stale generation, or never handed out.
    BadHandle,
    /// The table holds [`MAX_FILES`] files already.
    TableFull,
}

impl FileTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of files open (including those being closed).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds an open file; returns its handle.
    pub fn insert(&mut self, entry: FileEntry) -> Result<FileId, FileError> {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                if self.slots.len() >= MAX_FILES {
                    return Err(FileError::TableFull);
                }
                self.slots.push(Slot {
                    generation: 0,
                    entry: None,
                });
                (self.slots.len() - 1) as u32
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.entry = Some(entry);
        self.len += 1;
        Ok(FileId {
            index,
            generation: slot.generation,
        })
    }

    /// The file behind `id`, also while it is closing.
    pub fn entry(&self, id: FileId) -> Result<&FileEntry, FileError> {
        match self.slots.get(id.index as usize) {
            Some(s) if s.generation == id.generation => {
                s.entry.as_ref().ok_or(FileError::BadHandle)
            }
            _ => Err(FileError::BadHandle),
        }
    }

    pub fn entry_mut(&mut self, id: FileId) -> Result<&mut FileEntry, FileError> {
        match self.slots.get_mut(id.index as usize) {
            Some(s) if s.generation == id.generation => {
                s.entry.as_mut().ok_or(FileError::BadHandle)
            }
            _ => Err(FileError::BadHandle),
        }
    }

    /// The file behind `id` if new ops may still be submitted to it.
    pub fn usable(&mut self, id: FileId) -> Result<&mut FileEntry, FileError> {
        let e = self.entry_mut(id)?;
        if e.closing {
            return Err(FileError::BadHandle);
        }
        Ok(e)
    }

    /// Removes the file; its slot's generation moves on so `id` goes stale.
    pub fn remove(&mut self, id: FileId) -> Result<FileEntry, FileError> {
        let slot = self
            .slots
            .get_mut(id.index as usize)
            .filter(|s| s.generation == id.generation)
            .ok_or(FileError::BadHandle)?;
        let entry = slot.entry.take().ok_or(FileError::BadHandle)?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        Ok(entry)
    }

    /// Every open file's id.
    pub fn ids(&self) -> Vec<FileId> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.entry.is_some())
            .map(|(i, s)| FileId {
                index: i as u32,
                generation: s.generation,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn stale_handle_is_refused_after_reuse() {
        let mut t = FileTable::new();
        let a = t.insert(FileEntry::new(10)).unwrap();
        assert_eq!(t.remove(a).unwrap().fd, 10);
        let b = t.insert(FileEntry::new(11)).unwrap();
        assert_eq!(a.index, b.index, "slot reused");
        assert_ne!(a.generation, b.generation);
        assert_eq!(t.entry(a).unwrap_err(), FileError::BadHandle);
        assert_eq!(t.remove(a).unwrap_err(), FileError::BadHandle);
        assert_eq!(t.entry(b).unwrap().fd, 11);
    }

    #[test]
    fn closing_file_refuses_new_ops_but_stays_visible() {
        let mut t = FileTable::new();
        let a = t.insert(FileEntry::new(3)).unwrap();
        t.usable(a).unwrap().closing = true;
        assert_eq!(t.usable(a).unwrap_err(), FileError::BadHandle);
        assert_eq!(t.entry(a).unwrap().fd, 3);
    }

    #[test]
    fn pack_round_trips_and_rejects_garbage() {
        let id = FileId {
            index: MAX_FILES as u32 - 1,
            generation: u32::MAX,
        };
        assert_eq!(FileId::unpack(id.pack()), Some(id));
        assert!(id.pack() < (1u64 << 53), "fits a JS number exactly");
        assert_eq!(FileId::unpack(1 << 60), None);
    }

    #[test]
    fn never_handed_out_is_bad() {
        let mut t = FileTable::new();
        let bogus = FileId {
            index: 7,
            generation: 0,
        };
        assert_eq!(t.entry(bogus).unwrap_err(), FileError::BadHandle);
        assert_eq!(t.usable(bogus).unwrap_err(), FileError::BadHandle);
    }

    proptest! {
        /// Any interleaving of opens and closes: live ids resolve to their own
        /// fd, and every id ever closed stays refused.
        #[test]
        fn generations_never_alias(ops in proptest::collection::vec((any::<bool>(), 0usize..8), 0..300)) {
            let mut t = FileTable::new();
            let mut live: Vec<(FileId, i32)> = Vec::new();
            let mut dead: Vec<FileId> = Vec::new();
            let mut fd = 100;
            for (open, pick) in ops {
                if open || live.is_empty() {
                    let id = t.insert(FileEntry::new(fd)).unwrap();
                    prop_assert!(!live.iter().any(|(l, _)| *l == id));
                    live.push((id, fd));
                    fd += 1;
                } else {
                    let (id, f) = live.remove(pick % live.len());
                    prop_assert_eq!(t.remove(id).unwrap().fd, f);
                    dead.push(id);
                }
                for (id, f) in &live {
                    prop_assert_eq!(t.entry(*id).unwrap().fd, *f);
                }
                for id in &dead {
                    prop_assert!(t.entry(*id).is_err());
                }
                prop_assert_eq!(t.len(), live.len());
            }
        }
    }
}
