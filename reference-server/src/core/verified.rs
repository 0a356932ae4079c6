//! The verified-token cache: a token that verified is not verified again while it
//! lives. Session bearers are presented on every HTTP request and re-judged every
//! second on a stream; a call token presented again (a retry, a replay) is refused by
//! the single-use record, and should cost no signature on the way there.
//!
//! An entry is found by the first bytes of the token's signature segment — the
//! signer's digest of the signed bytes, so a lookup hashes nothing — and answers only
//! when
//! - the token bytes presented are exactly those that verified,
//! - the binding is exactly the one it was verified for: for a bearer, the channel
//!   (`Mcp-Session-Id`) it came on; for a call token, the session's tenant, principal
//!   and channel and the tool name as sent, and
//! - the token could still verify (`now` ≤ `exp` + skew).
//!
//! Anything else is a miss, and the caller verifies in full. Only tokens that verified
//! are ever inserted, so a caller choosing signature bytes (a forger) can probe slots
//! but never fill one. The cache belongs to one [`Policy`](super::policy::Policy): a
//! reload (rotated keys, revoked tenants) starts with an empty one. Bounded: past
//! [`CAPACITY`] entries the expired go first, then an arbitrary eighth; sharded, so
//! that concurrent calls rarely wait on one another.

use super::hashing::PrehashedMap;
use super::jws::Claims;
use super::policy::Session;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// The most entries the cache holds at once.
pub const CAPACITY: usize = 16_384;

/// The longest binding part remembered (a session id is 36 characters): a request with
/// a longer one is verified in full every time, so that no caller can make the cache
/// hold kilobytes per entry.
pub const MAX_BINDING_PART: usize = 128;

/// What a token was verified for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding<'a> {
    /// A session bearer, presented on `channel` (the `Mcp-Session-Id` it came with;
    /// none when it opens a session, or over stdio).
    Bearer { channel: Option<&'a str> },
    /// A call token, presented in a session of `tenant` and `principal` on `channel`
    /// for the tool named `tool` (exactly as sent).
    Call {
        tenant: &'a str,
        principal: &'a str,
        channel: Option<&'a str>,
        tool: &'a str,
    },
}

impl Binding<'_> {
    fn parts(&self) -> [Option<&str>; 5] {
        match *self {
            Binding::Bearer { channel } => [Some("bearer"), channel, None, None, None],
            Binding::Call {
                tenant,
                principal,
                channel,
                tool,
            } => [
                Some("call"),
                Some(tenant),
                Some(principal),
                channel,
                Some(tool),
            ],
        }
    }
}

/// What a cached token verified to.
#[derive(Debug, Clone)]
pub enum Verified {
    Session(Session),
    Call(Arc<Claims<'static>>),
}

struct Entry {
    token: Box<str>,
    binding: [Option<Box<str>>; 5],
    until: u64,
    verified: Verified,
}

impl Entry {
    fn answers(&self, token: &str, binding: &[Option<&str>; 5], now: u64) -> bool {
        now <= self.until && *self.token == *token && same_binding(&self.binding, binding)
    }
}

const SHARDS: usize = 16;

#[derive(Default)]
struct Shard {
    entries: PrehashedMap<u64, Vec<Entry>>,
    len: usize,
}

/// How the cache has been used (for reports and the load command).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Lookups that answered, of every kind.
    pub hits: u64,
    /// Lookups that did not (the caller verified in full).
    pub misses: u64,
    /// Session bearers found / not found.
    pub bearer_hits: u64,
    pub bearer_misses: u64,
    /// Call tokens found / not found (a fresh call token is always a miss: only
    /// refused ones are remembered).
    pub call_hits: u64,
    pub call_misses: u64,
    pub entries: usize,
}

pub struct VerifiedTokens {
    shards: [Mutex<Shard>; SHARDS],
    /// Lookups: bearer misses, bearer hits, call misses, call hits.
    lookups: [AtomicU64; 4],
}

impl fmt::Debug for VerifiedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedTokens")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::default()),
            lookups: Default::default(),
        }
    }
}

/// The slot of a token: the first eight characters of its signature segment (the last
/// of the three), spread by a multiplication.
fn slot(token: &str) -> u64 {
    let signature = token.rsplit('.').next().unwrap_or(token).as_bytes();
    let mut head = [0u8; 8];
    let n = signature.len().min(8);
    head[..n].copy_from_slice(&signature[..n]);
    u64::from_le_bytes(head).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

fn same_binding(owned: &[Option<Box<str>>; 5], parts: &[Option<&str>; 5]) -> bool {
    owned.iter().zip(parts).all(|(a, b)| a.as_deref() == *b)
}

impl VerifiedTokens {
    fn shard(&self, slot: u64) -> std::sync::MutexGuard<'_, Shard> {
        self.shards[(slot >> 60) as usize % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// What `token` verified to for `binding`, if it did and still could at `now`.
    pub fn get(&self, token: &str, binding: Binding<'_>, now: u64) -> Option<Verified> {
        let parts = binding.parts();
        let slot = slot(token);
        let found = self.shard(slot).entries.get(&slot).and_then(|bucket| {
            bucket
                .iter()
                .find(|e| e.answers(token, &parts, now))
                .map(|e| e.verified.clone())
        });
        let kind = match binding {
            Binding::Bearer { .. } => 0,
            Binding::Call { .. } => 2,
        };
        self.lookups[kind + usize::from(found.is_some())].fetch_add(1, Relaxed);
        found
    }

    /// Remembers that `token` verified to `verified` for `binding`, until `until`.
    pub fn insert(
        &self,
        token: &str,
        binding: Binding<'_>,
        until: u64,
        verified: Verified,
        now: u64,
    ) {
        let parts = binding.parts();
        if parts.iter().flatten().any(|p| p.len() > MAX_BINDING_PART) {
            return;
        }
        let slot = slot(token);
        let entry = Entry {
            token: token.into(),
            binding: parts.map(|p| p.map(Box::from)),
            until,
            verified,
        };
        let mut shard = self.shard(slot);
        let shard = &mut *shard;
        if shard.len >= CAPACITY / SHARDS {
            shard.entries.retain(|_, bucket| {
                bucket.retain(|e| e.until >= now);
                !bucket.is_empty()
            });
            shard.len = shard.entries.values().map(Vec::len).sum();
            if shard.len >= CAPACITY / SHARDS {
                let evicted: Vec<u64> = shard
                    .entries
                    .keys()
                    .take(CAPACITY / SHARDS / 8)
                    .copied()
                    .collect();
                for k in evicted {
                    shard.len -= shard.entries.remove(&k).map_or(0, |b| b.len());
                }
            }
        }
        let bucket = shard.entries.entry(slot).or_default();
        // One entry per (token, binding): a re-verification replaces the old one.
        let before = bucket.len();
        bucket.retain(|e| !(*e.token == *token && same_binding(&e.binding, &parts)));
        shard.len = shard.len + 1 - (before - bucket.len());
        bucket.push(entry);
    }

    pub fn stats(&self) -> CacheStats {
        let entries = self
            .shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len)
            .sum();
        let [bearer_misses, bearer_hits, call_misses, call_hits] =
            self.lookups.each_ref().map(|n| n.load(Relaxed));
        CacheStats {
            hits: bearer_hits + call_hits,
            misses: bearer_misses + call_misses,
            bearer_hits,
            bearer_misses,
            call_hits,
            call_misses,
            entries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn call(tenant: &str) -> Verified {
        Verified::Call(Arc::new(Claims {
            tenant: Some(Cow::Owned(tenant.into())),
            ..Claims::default()
        }))
    }

    fn tenant_of(v: Option<Verified>) -> Option<String> {
        match v? {
            Verified::Call(c) => c.tenant.as_deref().map(str::to_owned),
            Verified::Session(s) => Some(s.tenant().to_owned()),
        }
    }

    const T: &str = "aGVhZGVy.Y2xhaW1z.c2lnbmF0dXJl";

    fn bound<'a>(tenant: &'a str, channel: Option<&'a str>, tool: &'a str) -> Binding<'a> {
        Binding::Call {
            tenant,
            principal: "alice",
            channel,
            tool,
        }
    }

    #[test]
    fn an_entry_answers_only_for_its_token_binding_and_lifetime() {
        let cache = VerifiedTokens::default();
        let b = bound("acme", Some("s1"), "charge");
        cache.insert(T, b, 100, call("acme"), 10);
        assert_eq!(tenant_of(cache.get(T, b, 100)).as_deref(), Some("acme"));
        // Another tenant, principal, session, tool, or kind of token: a miss.
        for other in [
            bound("globex", Some("s1"), "charge"),
            bound("acme", Some("s2"), "charge"),
            bound("acme", None, "charge"),
            bound("acme", Some("s1"), "Charge"),
            Binding::Call {
                tenant: "acme",
                principal: "bob",
                channel: Some("s1"),
                tool: "charge",
            },
            Binding::Bearer {
                channel: Some("s1"),
            },
        ] {
            assert!(cache.get(T, other, 50).is_none(), "{other:?}");
        }
        // The same signature with other signed bytes: a miss.
        let altered = "aGVhZGVy.Y2xhaW1Z.c2lnbmF0dXJl";
        assert!(cache.get(altered, b, 50).is_none());
        // Past the token's last second: a miss.
        assert!(cache.get(T, b, 101).is_none());
        let s = cache.stats();
        assert_eq!((s.hits, s.entries), (1, 1));
        // A binding part past the bound is never remembered.
        let long = "s".repeat(MAX_BINDING_PART + 1);
        cache.insert(
            T,
            bound("acme", Some(&long), "charge"),
            100,
            call("acme"),
            10,
        );
        assert_eq!(cache.stats().entries, 1);
    }

    #[test]
    fn it_stays_bounded_and_forgets_the_expired_first() {
        let cache = VerifiedTokens::default();
        let live = bound("acme", None, "keep");
        cache.insert(T, live, 1_000, call("acme"), 0);
        // Twice the capacity of tokens that expired at 5, inserted at 6: every sweep
        // takes them, never the live one.
        for i in 0..2 * CAPACITY {
            let t = format!("h.c.{i:08}x");
            cache.insert(&t, bound("acme", None, "t"), 5, call("acme"), 6);
            assert!(cache.stats().entries <= CAPACITY);
        }
        assert!(cache.get(T, live, 6).is_some());
        // All live and full: an eighth of a shard goes, and the bound holds.
        for i in 0..2 * CAPACITY {
            let t = format!("h.c.{i:08}y");
            cache.insert(&t, bound("acme", None, "t"), 500, call("acme"), 7);
        }
        let entries = cache.stats().entries;
        assert!(entries <= CAPACITY && entries > CAPACITY / 2, "{entries}");
    }
}
