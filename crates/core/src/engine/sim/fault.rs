//! Faults the sim injects, chosen by op name and path, and drawn from the
//! seed; and the trace of every op it ran.

/// What an injected fault does to the op it hits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// The op fails with this errno and changes nothing.
    Error(i32),
    /// A write reports every byte written and stores none.
    Lost,
    /// A read or write does half of what it was asked (at least a byte).
    Short,
    /// A read returns its bytes with one bit flipped.
    Bitflip,
    /// A write reports every byte written and stores only the sectors of
    /// its first half (512-byte sectors of the file).
    Torn,
    /// A write reports success and stores its bytes whole, but 1 to 8
    /// sectors before or after where it was asked (drawn from the seed).
    Misdirected,
    /// The op completes this many nanoseconds of virtual time late (its
    /// completion comes after those of ops that finish earlier); a send's
    /// bytes arrive that much later.
    Delay(u64),
}

/// One fault rule.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The op it applies to ("read", "write", "fsync", "open", ...; see
    /// [`op_name`](super::op_name)), or any op when `None`.
    pub op: Option<String>,
    /// A byte string the op's path must contain (fd ops: the path the file
    /// was opened by), or any path when `None`.
    pub path: Option<Vec<u8>>,
    pub kind: FaultKind,
    /// Matching ops let through before the first hit.
    pub after: u64,
    /// Hits at most (then the rule is spent); `u64::MAX`: no limit.
    pub times: u64,
    /// Chance of a hit for each matching op past `after`, in millionths.
    pub per_million: u32,
    /// Matching ops seen, and hits made.
    pub seen: u64,
    pub hits: u64,
}

impl Fault {
    /// Whether the rule applies to op `name` on `path`.
    pub fn matches(&self, name: &str, path: &[u8]) -> bool {
        if self.hits >= self.times {
            return false;
        }
        if self.op.as_deref().is_some_and(|o| o != name) {
            return false;
        }
        match &self.path {
            None => true,
            Some(p) => p.is_empty() || path.windows(p.len()).any(|w| w == p.as_slice()),
        }
    }
}

/// The first rule that hits op `name` on `path`, drawing its chance from
/// `draw` (a number below a million); counts what it saw.
pub fn pick(
    faults: &mut [Fault],
    name: &str,
    path: &[u8],
    draw: &mut dyn FnMut() -> u32,
) -> Option<FaultKind> {
    for f in faults.iter_mut() {
        if !f.matches(name, path) {
            continue;
        }
        f.seen += 1;
        if f.seen <= f.after {
            continue;
        }
        if f.per_million < 1_000_000 && draw() >= f.per_million {
            continue;
        }
        f.hits += 1;
        return Some(f.kind);
    }
    None
}
