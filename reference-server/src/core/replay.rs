//! The record of used call tokens that makes them single-use: per tenant, each
//! authorised token's `jti` until the last second it could verify. A second
//! presentation — in any session of the tenant — is refused.

use super::hashing::PrehashedMap;
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, OnceLock};

/// A `jti` as the record keeps it: a 64-bit hash keyed with a secret drawn once per
/// process — fixed size, so recording a token allocates nothing, and unpredictable, so
/// no caller can make two `jti`s collide on purpose. A chance collision can only
/// refuse a fresh token as a replay (about one in 10^14 per call with 100,000 live
/// tokens on record), never let a replay through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JtiKey(u64);

impl JtiKey {
    pub fn of(jti: &str) -> Self {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        Self(KEY.get_or_init(RandomState::new).hash_one(jti))
    }
}

type Spent = PrehashedMap<JtiKey, u64>;

/// How many unexpired used call tokens one tenant may have on record; past it (every
/// one of them still live), the tenant's calls are refused until some expire.
pub const USED_TOKENS_PER_TENANT: usize = 100_000;

/// Used call tokens, per tenant: `jti` → the last second it verifies.
#[derive(Debug, Default)]
pub struct UsedTokens {
    by_tenant: Mutex<HashMap<String, Spent>>,
}

impl UsedTokens {
    /// Records call token `jti` of `tenant` as used until `until`; `false` if it was
    /// already (or the tenant's record is full of live tokens). Entries are forgotten
    /// once their token could no longer verify (swept when the record is full).
    pub fn spend(&self, tenant: &str, jti: JtiKey, until: u64, now: u64) -> bool {
        let mut all = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        // The tenant's key is allocated once, not on every call.
        if !all.contains_key(tenant) {
            all.insert(tenant.to_owned(), Spent::default());
        }
        let used = all.get_mut(tenant).expect("inserted above");
        if used.contains_key(&jti) {
            return false;
        }
        if used.len() >= USED_TOKENS_PER_TENANT {
            used.retain(|_, u| *u >= now);
            if used.len() >= USED_TOKENS_PER_TENANT {
                tracing::warn!(
                    tenant,
                    "call refused: the record of used call tokens is full"
                );
                return false;
            }
        }
        used.insert(jti, until);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jti_is_spent_once_per_tenant_and_forgotten_after_it_expires() {
        let r = UsedTokens::default();
        let k = JtiKey::of;
        assert!(r.spend("acme", k("j"), 100, 10));
        assert!(!r.spend("acme", k("j"), 100, 11));
        // Another tenant's record is its own.
        assert!(r.spend("globex", k("j"), 100, 11));
        // A full record of live tokens refuses; once they expire it takes new ones.
        for i in 1..USED_TOKENS_PER_TENANT {
            assert!(r.spend("acme", k(&format!("k{i}")), 100, 12));
        }
        assert!(!r.spend("acme", k("late"), 200, 50));
        assert!(r.spend("acme", k("late"), 200, 101));
        assert!(
            r.spend("acme", k("j"), 200, 101),
            "expired entries are forgotten"
        );
    }
}
