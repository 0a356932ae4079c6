//! Who may see and call what: tenants, their principals, their tiers, the trusted keys.
//!
//! A [`Policy`] is immutable; a configuration reload builds a new one and swaps it in,
//! so a request sees one consistent policy from start to end.

use super::jws::{KeySet, TokenError, Validation};
use super::mutants::{Holes, Mutant};
use super::tools::ToolDef;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: String,
    pub tiers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantPolicy {
    pub id: String,
    /// Tiers the tenant is entitled to: it sees and may call their tools.
    pub tiers: Vec<String>,
    /// Principals acting inside the tenant, each with the tiers it may call.
    pub principals: Vec<Principal>,
}

impl TenantPolicy {
    pub fn entitled(&self, tool: &ToolDef) -> bool {
        self.tiers.iter().any(|t| t == tool.tier)
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

#[derive(Debug, Clone)]
pub struct Policy {
    pub tenants: Vec<TenantPolicy>,
    pub tokens: TokenRules,
    /// `tools/list` page size.
    pub page_size: usize,
    pub mutant: Option<Mutant>,
}

/// A verified session: the tenant it was opened for and who opened it. Only
/// [`Policy::authenticate`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    tenant: String,
    principal: String,
}

impl Session {
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    pub fn principal(&self) -> &str {
        &self.principal
    }
}

impl Policy {
    pub fn tenant(&self, id: &str) -> Option<&TenantPolicy> {
        self.tenants.iter().find(|t| t.id == id)
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

    /// Verifies a session token (a bearer on HTTP, the launch credential on stdio).
    pub fn authenticate(&self, token: &str, now: u64) -> Result<Session, TokenError> {
        let claims = super::jws::verify(
            &self.tokens.keys,
            token,
            &self.validation(
                SESSION_TYP,
                (!self.holes().unbounded_session_lifetime())
                    .then_some(self.tokens.max_session_token_secs),
            ),
            now,
        )?;
        let tenant = claims
            .str("tenant")
            .ok_or(TokenError::MissingClaim("tenant"))?;
        let principal = claims.str("sub").ok_or(TokenError::MissingClaim("sub"))?;
        if self.tenant(tenant).is_none() {
            return Err(TokenError::MissingClaim("tenant (not a configured tenant)"));
        }
        Ok(Session {
            tenant: tenant.to_owned(),
            principal: principal.to_owned(),
        })
    }
}
