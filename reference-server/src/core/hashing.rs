//! Two hashers for the hot path's maps, where std's keyed SipHash is the larger cost
//! of a lookup.
//!
//! - [`Prehashed`]: for keys that are hashes already (the verified-token cache's slot,
//!   the single-use record's keyed `jti` hash): the value is used as it is.
//! - [`Fx`]: a fast multiply-rotate hash, unkeyed, for maps built from the
//!   configuration and only read while serving (tenants, tools, tiers). A caller
//!   chooses what is looked up, never what is stored, so it can make a lookup probe
//!   a crowded bucket only if the configuration itself crowds one: no flooding.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default)]
pub struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

pub type PrehashedMap<K, V> = HashMap<K, V, BuildHasherDefault<Prehashed>>;

#[derive(Default)]
pub struct Fx(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(u64::from_le_bytes(w.try_into().expect("eight bytes")));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

pub type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<Fx>>;
pub type FxSet<K> = HashSet<K, BuildHasherDefault<Fx>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fx_tells_strings_apart_that_differ_in_any_byte_or_length() {
        let mut set = FxSet::default();
        for s in [
            "",
            "a",
            "a\0",
            "acme",
            "acmf",
            "tenant-10000",
            "tenant-10001",
            "tenant-1000",
        ] {
            assert!(set.insert(s), "{s}");
        }
        assert!(set.contains("acme") && !set.contains("acm"));
    }
}
