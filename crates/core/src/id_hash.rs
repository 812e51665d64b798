//! A hasher for maps keyed by the driver's own small integer ids (file
//! table indices, `FileId`s): one multiply instead of SipHash. The keys are
//! chosen by the driver, never by a peer or a user, so the flooding that
//! SipHash guards against cannot happen; in a 64 B ping-pong SipHash on the
//! socket map cost about 850 instructions per round trip (ten lookups).

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap<K, V, IdHash>`.
pub type IdHash = BuildHasherDefault<IdHasher>;

/// Fibonacci hashing of each integer written (a multiply by 2^64 / phi).
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

const K: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(K);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn sequential_ids_spread_and_round_trip() {
        let mut m: HashMap<u32, u32, IdHash> = HashMap::default();
        for i in 0..10_000 {
            m.insert(i, i * 3);
        }
        for i in 0..10_000 {
            assert_eq!(m.get(&i), Some(&(i * 3)));
        }
        assert_eq!(m.remove(&77), Some(231));
        assert_eq!(m.get(&77), None);
        // Distinct small keys give distinct hashes (a bijection on u64).
        let hashes: std::collections::HashSet<u64> = (0..10_000u32)
            .map(|i| {
                let mut h = IdHasher::default();
                h.write_u32(i);
                h.finish()
            })
            .collect();
        assert_eq!(hashes.len(), 10_000);
    }
}
