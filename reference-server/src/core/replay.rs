//! The record of used call tokens that makes them single-use: per tenant, each
//! authorised token's `jti` until the last second it could verify. A second
//! presentation — in any session of the tenant — is refused.

use std::collections::HashMap;
use std::sync::Mutex;

/// How many unexpired used call tokens one tenant may have on record; past it (every
/// one of them still live), the tenant's calls are refused until some expire.
pub const USED_TOKENS_PER_TENANT: usize = 100_000;

/// Used call tokens, per tenant: `jti` → the last second it verifies.
#[derive(Debug, Default)]
pub struct UsedTokens {
    by_tenant: Mutex<HashMap<String, HashMap<String, u64>>>,
}

impl UsedTokens {
    /// Records call token `jti` of `tenant` as used until `until`; `false` if it was
    /// already (or the tenant's record is full of live tokens). Entries are forgotten
    /// once their token could no longer verify (swept when the record is full).
    pub fn spend(&self, tenant: &str, jti: String, until: u64, now: u64) -> bool {
        let mut all = self.by_tenant.lock().unwrap_or_else(|p| p.into_inner());
        // The tenant's key is allocated once, not on every call.
        if !all.contains_key(tenant) {
            all.insert(tenant.to_owned(), HashMap::new());
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
        assert!(r.spend("acme", "j".into(), 100, 10));
        assert!(!r.spend("acme", "j".into(), 100, 11));
        // Another tenant's record is its own.
        assert!(r.spend("globex", "j".into(), 100, 11));
        // A full record of live tokens refuses; once they expire it takes new ones.
        for i in 1..USED_TOKENS_PER_TENANT {
            assert!(r.spend("acme", format!("k{i}"), 100, 12));
        }
        assert!(!r.spend("acme", "late".into(), 200, 50));
        assert!(r.spend("acme", "late".into(), 200, 101));
        assert!(
            r.spend("acme", "j".into(), 200, 101),
            "expired entries are forgotten"
        );
    }
}
