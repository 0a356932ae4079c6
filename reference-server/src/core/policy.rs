//! Who may see and call what: tenants, their principals, their tiers, the trusted keys.
//!
//! A [`Policy`] is immutable; a configuration reload builds a new one and swaps it in,
//! so a request sees one consistent policy from start to end.

use super::hashing::{FxMap, FxSet};
use super::jws::{self, KeySet, Scratch, TokenError, Validation};
use super::mutants::{Holes, Mutant};
use super::tools::ToolDef;
use super::verified::{Binding, Verified, VerifiedTokens};
use std::sync::Arc;

/// A set of entitlement tiers: a list while short, hashed once long, so that a tenant
/// entitled to thousands of tiers is judged as fast as one with three.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tiers {
    list: Vec<String>,
    index: Option<FxSet<String>>,
}

impl Tiers {
    const HASHED_FROM: usize = 9;

    pub fn contains(&self, tier: &str) -> bool {
        match &self.index {
            Some(set) => set.contains(tier),
            None => self.list.iter().any(|t| t == tier),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.list.iter()
    }

    pub fn retain(&mut self, keep: impl FnMut(&String) -> bool) {
        self.list.retain(keep);
        *self = Self::from(std::mem::take(&mut self.list));
    }
}

impl From<Vec<String>> for Tiers {
    fn from(list: Vec<String>) -> Self {
        let index = (list.len() >= Self::HASHED_FROM).then(|| list.iter().cloned().collect());
        Self { list, index }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub tiers: Tiers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPolicy {
    pub id: String,
    /// Tiers the tenant is entitled to: it sees and may call their tools.
    pub tiers: Tiers,
    /// Principals acting inside the tenant, each with the tiers it may call.
    pub principals: Vec<Principal>,
}

impl TenantPolicy {
    pub fn entitled(&self, tool: &ToolDef) -> bool {
        self.tiers.contains(tool.tier)
    }

    pub fn principal(&self, id: &str) -> Option<&Principal> {
        self.principals.iter().find(|p| p.id == id)
    }
}

/// The token-validation parameters.
#[derive(Debug, Clone)]
pub struct TokenRules {
    pub keys: KeySet,
    pub issuer: String,
    /// This server's resource identifier (RFC 8707): the audience of every token.
    pub audience: String,
    pub skew_secs: u64,
    pub max_call_token_secs: u64,
    /// The longest a session token may live (`exp - iat`).
    pub max_session_token_secs: u64,
}

/// Token `typ` of session tokens and of call tokens.
pub const SESSION_TYP: &str = "JWT";
pub const CALL_TYP: &str = "mcp-call+jwt";

#[derive(Debug)]
pub struct Policy {
    tenants: Vec<TenantPolicy>,
    /// Tenant id → its place in `tenants`.
    index: FxMap<String, usize>,
    pub tokens: TokenRules,
    /// `tools/list` page size.
    pub page_size: usize,
    pub mutant: Option<Mutant>,
    /// Tokens this policy verified (see [`VerifiedTokens`]); its own, never shared.
    verified: VerifiedTokens,
}

impl Clone for Policy {
    /// The same policy with an empty verified-token cache: a clone is what a reload
    /// starts from, and a reload must verify every token afresh.
    fn clone(&self) -> Self {
        Self::new(
            self.tenants.clone(),
            self.tokens.clone(),
            self.page_size,
            self.mutant,
        )
    }
}

/// A verified session: the tenant it was opened for and who opened it, and the
/// channel (`Mcp-Session-Id`) a request of it came on. Only [`Policy::authenticate`]
/// makes one; cloning it copies no string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    tenant: Arc<str>,
    principal: Arc<str>,
    channel: Option<Arc<str>>,
}

impl Session {
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn principal(&self) -> &str {
        &self.principal
    }

    /// The `Mcp-Session-Id` this request came with (HTTP), none over stdio.
    pub fn channel(&self) -> Option<&str> {
        self.channel.as_deref()
    }

    /// The same session, seen on `channel`.
    pub fn on_channel(mut self, channel: Option<&str>) -> Self {
        self.channel = channel.map(Arc::from);
        self
    }
}

impl Policy {
    pub fn new(
        tenants: Vec<TenantPolicy>,
        tokens: TokenRules,
        page_size: usize,
        mutant: Option<Mutant>,
    ) -> Self {
        let index = tenants
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        Self {
            tenants,
            index,
            tokens,
            page_size,
            mutant,
            verified: VerifiedTokens::default(),
        }
    }

    pub fn tenants(&self) -> &[TenantPolicy] {
        &self.tenants
    }

    /// A tenant to change before the policy is swapped in (its id must stay).
    pub fn tenant_mut(&mut self, id: &str) -> Option<&mut TenantPolicy> {
        let i = *self.index.get(id)?;
        self.tenants.get_mut(i)
    }

    pub fn tenant(&self, id: &str) -> Option<&TenantPolicy> {
        let &i = self.index.get(id)?;
        self.tenants.get(i).filter(|t| t.id == id)
    }

    /// The tokens this policy has verified.
    pub fn verified(&self) -> &VerifiedTokens {
        &self.verified
    }

    /// The holes this policy's mutant opens (none without one).
    pub fn holes(&self) -> Holes {
        Holes(self.mutant)
    }

    pub fn validation<'a>(&'a self, typ: &'a str, max_lifetime: Option<u64>) -> Validation<'a> {
        Validation {
            typ,
            issuer: &self.tokens.issuer,
            audience: &self.tokens.audience,
            skew_secs: self.tokens.skew_secs,
            max_lifetime_secs: max_lifetime,
            allow_none_and_any_audience: self.holes().none_and_any_audience(),
            ignore_crit: self.holes().crit_ignored(),
        }
    }

    /// Verifies a session token (the launch credential on stdio).
    pub fn authenticate(&self, token: &str, now: u64) -> Result<Session, TokenError> {
        self.authenticate_on(token, None, now)
    }

    /// Verifies a session token presented on `channel` (a bearer on HTTP, with the
    /// `Mcp-Session-Id` it came with): once per bearer and channel while it lives, from
    /// the verified-token cache after that.
    pub fn authenticate_on(
        &self,
        token: &str,
        channel: Option<&str>,
        now: u64,
    ) -> Result<Session, TokenError> {
        let binding = Binding::Bearer { channel };
        if let Some(Verified::Session(s)) = self.verified.get(token, binding, now) {
            return Ok(s);
        }
        let mut scratch = Scratch::default();
        let claims = jws::verify(
            &self.tokens.keys,
            token,
            &self.validation(
                SESSION_TYP,
                (!self.holes().unbounded_session_lifetime())
                    .then_some(self.tokens.max_session_token_secs),
            ),
            now,
            &mut scratch,
        )?;
        let tenant = claims
            .str("tenant")
            .ok_or(TokenError::MissingClaim("tenant"))?;
        let principal = claims.str("sub").ok_or(TokenError::MissingClaim("sub"))?;
        if self.tenant(tenant).is_none() {
            return Err(TokenError::MissingClaim("tenant (not a configured tenant)"));
        }
        let session = Session {
            tenant: tenant.into(),
            principal: principal.into(),
            channel: channel.map(Arc::from),
        };
        let until = claims
            .exp
            .unwrap_or(0)
            .saturating_add(self.tokens.skew_secs);
        self.verified.insert(
            token,
            binding,
            until,
            Verified::Session(session.clone()),
            now,
        );
        Ok(session)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::jws::Key;
    use crate::core::testing::{self as fixtures, AUDIENCE, ISSUER, NOW};
    use serde_json::json;

    /// A session bearer is verified once per channel; the cache never outlives the
    /// token, nor a reload that rotates its key out.
    #[test]
    fn a_bearer_is_verified_once_per_channel_while_it_lives() {
        let policy = fixtures::policy(None);
        let bearer = policy.tokens.keys.keys[0]
            .sign(SESSION_TYP, &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "tenant": "acme", "iat": NOW, "exp": NOW + 60}))
            .unwrap();
        let on = |p: &Policy, channel, now| p.authenticate_on(&bearer, channel, now);
        let first = on(&policy, Some("s1"), NOW).unwrap();
        assert_eq!(on(&policy, Some("s1"), NOW + 1), Ok(first.clone()));
        assert_eq!(policy.verified().stats().hits, 1);
        assert_eq!(on(&policy, Some("s2"), NOW).unwrap().channel(), Some("s2"));
        assert_eq!(
            policy.verified().stats().hits,
            1,
            "another channel verifies afresh"
        );
        assert_eq!(on(&policy, Some("s1"), NOW + 91), Err(TokenError::Expired));
        let mut rotated = policy.clone();
        rotated.tokens.keys.keys[0] = Key::ed25519_from_seed("ed", &[8; 32]);
        assert_eq!(on(&rotated, Some("s1"), NOW), Err(TokenError::BadSignature));
    }
}
