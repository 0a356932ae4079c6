//! Session and call tokens: JWS compact tokens (RFC 7515) the harness mints, and the
//! hostile variants T2.2 and T2.5 forge from them.
//!
//! - A **session token** (`typ: JWT`) authenticates a tenant's session: `iss`, `aud`,
//!   `sub` ([`HARNESS_SUBJECT`]), `tenant`, `iat`, `nbf`, `exp`.
//! - A **call token** (`typ: mcp-call+jwt`) authorises one `tools/call`: `iss`, `aud`,
//!   `sub` (the principal acting), `tenant`, `tool`, `action`, `resource`, `iat`,
//!   `exp`, `jti`.
//!
//! [`TokenMinter`] signs them itself (EdDSA or HS256, from the profile's `[tokens]`
//! key) or asks an external command. Segments are base64url without padding.
//!
//! The forgeries: [`Forgery::Expired`], [`Forgery::NotYetValid`] and
//! [`Forgery::OverLong`] for T2.2; flipped signature or payload bits, `alg: none`,
//! algorithm confusion, an unknown `kid`, a wrong audience or issuer, a truncated token
//! and `=`-padded segments for T2.5. Those that re-sign need the built-in key; the rest
//! are derived from a valid token, whoever minted it.

use crate::model::Grant;
use crate::profile::{Alg, Contract, Dimension, Placement, Profile};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, SigningKey};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The `typ` header of a session token.
pub const SESSION_TYP: &str = "JWT";
/// The `typ` header of a call token.
pub const CALL_TYP: &str = "mcp-call+jwt";
/// The `sub` of the session tokens the harness mints.
pub const HARNESS_SUBJECT: &str = "mcp-tenancy-harness";
/// Lifetime of minted session tokens, in seconds.
pub const SESSION_LIFETIME_SECS: u64 = 3600;
/// How far past or ahead of now the T2.2 forgeries are dated: well beyond any sane
/// clock skew (the reference server allows 30 s).
pub const BEYOND_SKEW_SECS: u64 = 600;
/// `exp - iat` of the over-long-lived forgery: an hour.
pub const OVER_LONG_SECS: u64 = 3600;
/// The `kid` of the unknown-key forgery.
pub const UNKNOWN_KID: &str = "mcp-tenancy-unknown-kid";
/// The critical header extension of the `crit` forgery: no server understands it.
pub const UNKNOWN_CRIT: &str = "urn:mcp-tenancy:unknown-critical-extension";
/// The size of the oversized forgery's padding claim: the token comes to about 400 kB.
pub const OVERSIZED_PAD: usize = 300_000;

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding (strict).
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// A token's three segments, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Parts {
    pub header: Value,
    pub claims: Value,
    pub signature: Vec<u8>,
}

/// Splits and decodes a compact token; `None` if it is not three base64url segments
/// of which the first two are JSON.
pub fn parse(token: &str) -> Option<Parts> {
    let mut it = token.split('.');
    let (h, c, s) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() {
        return None;
    }
    Some(Parts {
        header: serde_json::from_slice(&unb64(h)?).ok()?,
        claims: serde_json::from_slice(&unb64(c)?).ok()?,
        signature: unb64(s)?,
    })
}

/// Encodes header and claims as `header.claims` (the signing input).
fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

fn hs256(secret: &[u8], input: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(input);
    mac.finalize().into_bytes().to_vec()
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A `jti` no other token of this process carries.
fn unique_jti(now: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("mcpt-{now:x}-{:x}-{n}", std::process::id())
}

/// The signing key of built-in minting.
#[derive(Clone)]
pub enum SigningMaterial {
    Ed25519(Box<SigningKey>),
    Hmac(Vec<u8>),
}

/// Built-in minting: signs with the profile's key, in the target's token contract.
#[derive(Clone)]
pub struct Builtin {
    /// `iss`, if the contract uses one.
    pub issuer: Option<String>,
    pub audience: String,
    /// The `kid` header, if the contract uses one.
    pub kid: Option<String>,
    /// The call token's `typ` header (empty: none).
    pub typ: String,
    pub contract: Contract,
    pub material: SigningMaterial,
    /// The Ed25519 public key, for the algorithm-confusion forgery.
    pub public_key: Option<[u8; 32]>,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Builtin {{ kid: {:?}, key: <secret> }}", self.kid)
    }
}

/// Inserts the contract's claims for `grant` into `claims`: each dimension under its
/// claim name, the scope string, and the fixed extra claims.
fn contract_claims(
    contract: &Contract,
    grant: &Grant,
    claims: &mut serde_json::Map<String, Value>,
) {
    let value = |d: Dimension| match d {
        Dimension::Tenant => &grant.tenant,
        Dimension::Principal => &grant.principal,
        Dimension::Tool => &grant.tool,
        Dimension::Action => &grant.action,
        Dimension::Resource => &grant.resource,
    };
    for d in Dimension::ALL {
        if let Some(name) = contract.claims.claim(d) {
            claims.insert(name.to_owned(), json!(value(d)));
        }
    }
    if let Some(scope) = &contract.claims.scope {
        let items: Vec<String> = contract
            .claims
            .scope_items
            .iter()
            .map(|item| {
                Dimension::ALL.iter().fold(item.clone(), |acc, d| {
                    acc.replace(&format!("{{{}}}", d.name()), value(*d))
                })
            })
            .collect();
        claims.insert(scope.clone(), json!(items.join(" ")));
    }
    for (k, v) in &contract.claims.extra {
        claims.insert(k.clone(), serde_json::to_value(v).unwrap_or(Value::Null));
    }
}

impl Builtin {
    /// The algorithm the key signs with.
    pub fn alg(&self) -> Alg {
        match self.material {
            SigningMaterial::Ed25519(_) => Alg::EdDSA,
            SigningMaterial::Hmac(_) => Alg::HS256,
        }
    }

    /// Signs `claims` under a header with `alg`, `typ` (unless empty) and `kid` (if any).
    pub fn sign(&self, typ: &str, kid: Option<&str>, claims: &Value) -> String {
        let mut header = json!({"alg": self.alg().name()});
        if !typ.is_empty() {
            header["typ"] = json!(typ);
        }
        if let Some(kid) = kid {
            header["kid"] = json!(kid);
        }
        self.sign_header(&header, claims)
    }

    /// Signs `claims` under `header` as it is (its `alg` should be the key's).
    pub fn sign_header(&self, header: &Value, claims: &Value) -> String {
        let input = signing_input(header, claims);
        let signature = match &self.material {
            SigningMaterial::Ed25519(key) => key.sign(input.as_bytes()).to_bytes().to_vec(),
            SigningMaterial::Hmac(secret) => hs256(secret, input.as_bytes()),
        };
        format!("{input}.{}", b64(&signature))
    }

    /// The claims every token of the contract carries: `iss` (if used), `aud`.
    fn base_claims(&self) -> serde_json::Map<String, Value> {
        let mut claims = serde_json::Map::new();
        if let Some(iss) = &self.issuer {
            claims.insert("iss".into(), json!(iss));
        }
        claims.insert("aud".into(), json!(self.audience));
        claims
    }

    /// The claims of a call token valid from `iat` to `exp`, laid out as the contract
    /// says.
    pub fn call_claims(&self, grant: &Grant, iat: u64, exp: u64) -> Value {
        let mut claims = self.base_claims();
        contract_claims(&self.contract, grant, &mut claims);
        claims.insert("iat".into(), json!(iat));
        claims.insert("exp".into(), json!(exp));
        if self.contract.jti {
            claims.insert("jti".into(), json!(unique_jti(iat)));
        }
        Value::Object(claims)
    }

    /// Signs call-token `claims` under the contract's header.
    pub fn sign_call(&self, claims: &Value) -> String {
        self.sign(&self.typ, self.kid.as_deref(), claims)
    }

    /// A session token for `tenant`, valid from `now` for [`SESSION_LIFETIME_SECS`]:
    /// the tenant under the contract's tenant claim, [`HARNESS_SUBJECT`] under its
    /// principal claim.
    pub fn session_token(&self, tenant: &str, now: u64) -> String {
        self.session_token_living(tenant, now, SESSION_LIFETIME_SECS)
    }

    /// [`Builtin::session_token`] living `lifetime` seconds.
    pub fn session_token_living(&self, tenant: &str, now: u64, lifetime: u64) -> String {
        let mut claims = self.base_claims();
        let c = &self.contract.claims;
        claims.insert(
            c.principal.clone().unwrap_or_else(|| "sub".into()),
            json!(HARNESS_SUBJECT),
        );
        claims.insert(
            c.tenant.clone().unwrap_or_else(|| "tenant".into()),
            json!(tenant),
        );
        for (k, v) in &c.extra {
            claims.insert(k.clone(), serde_json::to_value(v).unwrap_or(Value::Null));
        }
        claims.insert("iat".into(), json!(now));
        if self.contract.nbf {
            claims.insert("nbf".into(), json!(now));
        }
        claims.insert("exp".into(), json!(now + lifetime));
        self.sign(SESSION_TYP, self.kid.as_deref(), &Value::Object(claims))
    }
}

/// Reads base64url key bytes (trailing `=` and whitespace tolerated).
fn key_bytes(text: &str, what: &str) -> Result<Vec<u8>, String> {
    unb64(text.trim().trim_end_matches('=')).ok_or_else(|| format!("{what} is not base64url"))
}

fn thirty_two(bytes: Vec<u8>, what: &str) -> Result<[u8; 32], String> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map_err(|_| format!("{what} must be 32 bytes, got {}", bytes.len()))
}

/// Mints tokens as the profile says: built-in or by an external command.
#[derive(Debug, Clone)]
pub enum TokenMinter {
    Builtin(Box<Builtin>),
    Command {
        command: Vec<String>,
        cwd: PathBuf,
        /// The Ed25519 public key from `public_key`, for the algorithm confusion.
        public_key: Option<[u8; 32]>,
    },
}

/// One hostile token, or why it cannot be forged for this profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Forged {
    pub forgery: Forgery,
    pub token: Result<String, String>,
}

/// The hostile variants of a valid call token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forgery {
    /// `exp` in the past, beyond the skew (T2.2).
    Expired,
    /// `nbf` and `iat` in the future, beyond the skew (T2.2).
    NotYetValid,
    /// `exp - iat` an hour (T2.2).
    OverLong,
    /// One bit of the signature flipped.
    SignatureBit,
    /// One bit of the payload flipped (the lowest bit of `exp`), signature kept.
    PayloadBit,
    /// `alg: none` with an empty signature.
    AlgNone,
    /// HS256 keyed with the EdDSA public key, under the EdDSA key's `kid`.
    AlgConfusion,
    /// Signed with the real key under a `kid` the server does not know.
    UnknownKid,
    WrongAudience,
    WrongIssuer,
    /// The signature cut in half.
    Truncated,
    /// Every segment `=`-padded to a multiple of four.
    Padded,
    /// A `crit` header naming an extension nobody understands (RFC 7515 §4.1.11: the
    /// token must be refused), re-signed.
    Crit,
    /// A validly signed token of about 400 kB (a padding claim): refused, and cheaply.
    Oversized,
    /// `iat` after `exp`, both within any clock skew of now (T2.2).
    IatAfterExp,
    /// No `iat` claim, where the contract requires one (T2.2).
    MissingIat,
}

impl Forgery {
    /// The clock forgeries of T2.2.
    pub const CLOCK: [Forgery; 5] = [
        Forgery::Expired,
        Forgery::NotYetValid,
        Forgery::OverLong,
        Forgery::IatAfterExp,
        Forgery::MissingIat,
    ];
    /// The tampering forgeries of T2.5.
    pub const TAMPERED: [Forgery; 11] = [
        Forgery::SignatureBit,
        Forgery::PayloadBit,
        Forgery::AlgNone,
        Forgery::AlgConfusion,
        Forgery::UnknownKid,
        Forgery::WrongAudience,
        Forgery::WrongIssuer,
        Forgery::Truncated,
        Forgery::Padded,
        Forgery::Crit,
        Forgery::Oversized,
    ];

    /// The forgeries of a session bearer (T2.7).
    pub const SESSION: [Forgery; 8] = [
        Forgery::SignatureBit,
        Forgery::AlgNone,
        Forgery::AlgConfusion,
        Forgery::UnknownKid,
        Forgery::WrongAudience,
        Forgery::Expired,
        Forgery::Crit,
        Forgery::Oversized,
    ];

    /// What the forgery is, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Forgery::Expired => "expired 10 minutes ago (beyond any clock skew)",
            Forgery::NotYetValid => "not valid for another 10 minutes (nbf and iat ahead)",
            Forgery::OverLong => "valid for an hour (exp - iat = 3600 s)",
            Forgery::SignatureBit => "one bit of the signature flipped",
            Forgery::PayloadBit => "one bit of the payload flipped (exp), signature kept",
            Forgery::AlgNone => "alg \"none\" with an empty signature",
            Forgery::AlgConfusion => {
                "algorithm confusion: HS256 keyed with the EdDSA public key, EdDSA kid"
            }
            Forgery::UnknownKid => "signed with the real key under an unknown kid",
            Forgery::WrongAudience => "audience of another server",
            Forgery::WrongIssuer => "issued by another issuer",
            Forgery::Truncated => "signature truncated to half its length",
            Forgery::Padded => "segments '='-padded",
            Forgery::Crit => "with a crit header naming an extension the server cannot know",
            Forgery::Oversized => "of about 400 kB (a padding claim), validly signed",
            Forgery::IatAfterExp => {
                "issued (iat) after it expires (exp), both within seconds of now"
            }
            Forgery::MissingIat => "without iat",
        }
    }
}

impl TokenMinter {
    /// The minter the profile describes; `None` when it mints nothing (no `[tokens]`
    /// key or command).
    pub fn from_profile(profile: &Profile) -> Result<Option<Self>, String> {
        let t = &profile.tokens;
        let public_key = match &t.public_key {
            Some(secret) => {
                let text = profile.secret(secret).map_err(|e| e.to_string())?;
                Some(thirty_two(
                    key_bytes(&text, "tokens.public_key")?,
                    "tokens.public_key",
                )?)
            }
            None => None,
        };
        if !t.command.is_empty() {
            return Ok(Some(TokenMinter::Command {
                command: t.command.clone(),
                cwd: profile.base_dir(),
                public_key,
            }));
        }
        let (Some(key), Some(alg), Some(audience)) = (&t.key, t.alg, &t.audience) else {
            return Ok(None);
        };
        let text = profile.secret(key).map_err(|e| e.to_string())?;
        let bytes = key_bytes(&text, "tokens.key")?;
        let (material, derived) = match alg {
            Alg::EdDSA => {
                let seed = thirty_two(bytes, "tokens.key (an Ed25519 seed)")?;
                let key = SigningKey::from_bytes(&seed);
                let public = key.verifying_key().to_bytes();
                (SigningMaterial::Ed25519(Box::new(key)), Some(public))
            }
            Alg::HS256 => (SigningMaterial::Hmac(bytes), None),
        };
        Ok(Some(TokenMinter::Builtin(Box::new(Builtin {
            issuer: t.issuer.clone(),
            audience: audience.clone(),
            kid: t.kid.clone(),
            typ: t.typ.clone(),
            contract: t.contract(),
            material,
            public_key: public_key.or(derived),
        }))))
    }

    /// Does the profile put call tokens on calls at all?
    pub fn placed(profile: &Profile) -> bool {
        profile.tokens.placement != Placement::None
    }

    /// A session token for `tenant` (built-in minting only).
    pub fn session_token(&self, tenant: &str) -> Result<String, String> {
        match self {
            TokenMinter::Builtin(b) => Ok(b.session_token(tenant, now_secs())),
            TokenMinter::Command { .. } => {
                Err("session tokens need the built-in [tokens] key".into())
            }
        }
    }

    /// A session token for `tenant` living `lifetime` seconds (built-in minting only).
    pub fn session_token_living(&self, tenant: &str, lifetime: u64) -> Result<String, String> {
        match self {
            TokenMinter::Builtin(b) => Ok(b.session_token_living(tenant, now_secs(), lifetime)),
            TokenMinter::Command { .. } => {
                Err("session tokens need the built-in [tokens] key".into())
            }
        }
    }

    /// A valid call token for `grant`, living `lifetime` seconds.
    pub async fn call_token(&self, grant: &Grant, lifetime: u64) -> Result<String, String> {
        match self {
            TokenMinter::Builtin(b) => {
                let now = now_secs();
                Ok(b.sign_call(&b.call_claims(grant, now, now + lifetime)))
            }
            TokenMinter::Command { command, cwd, .. } => {
                run_minter(command, cwd, grant, lifetime).await
            }
        }
    }

    /// Forges `forgery` for `grant`: from a fresh valid token, re-signed where needed.
    pub async fn forge(&self, forgery: Forgery, grant: &Grant, lifetime: u64) -> Forged {
        let token = match forgery {
            Forgery::OverLong => self.call_token(grant, OVER_LONG_SECS).await,
            _ => match self.call_token(grant, lifetime).await {
                Ok(valid) => self.forge_from(forgery, &valid, now_secs()),
                Err(e) => Err(e),
            },
        };
        Forged { forgery, token }
    }

    /// Forges `forgery` from the valid token `valid`, with the clock at `now`.
    pub fn forge_from(&self, forgery: Forgery, valid: &str, now: u64) -> Result<String, String> {
        let parts = parse(valid).ok_or("the minted token is not a JWS compact token")?;
        let builtin = match self {
            TokenMinter::Builtin(b) => Some(b),
            TokenMinter::Command { .. } => None,
        };
        let needs_key = || {
            builtin.ok_or_else(|| {
                format!(
                    "forging a token {} needs the built-in [tokens] key (the profile mints with a command)",
                    forgery.describe()
                )
            })
        };
        let typ = parts.header["typ"].as_str().unwrap_or_default().to_owned();
        let kid = parts.header["kid"].as_str().map(str::to_owned);
        let kid = kid.as_deref();
        let mut claims = parts.claims.clone();
        let (h, c, s) = segments(valid);
        match forgery {
            Forgery::Expired => {
                let b = needs_key()?;
                claims["iat"] = json!(now - 2 * BEYOND_SKEW_SECS);
                claims["exp"] = json!(now - BEYOND_SKEW_SECS);
                Ok(b.sign(&typ, kid, &claims))
            }
            Forgery::NotYetValid => {
                let b = needs_key()?;
                if !b.contract.nbf {
                    return Err("the token contract has no nbf (tokens.nbf = false), so a token's start cannot be dated ahead".into());
                }
                let lifetime = lifetime_of(&claims);
                claims["iat"] = json!(now + BEYOND_SKEW_SECS);
                claims["nbf"] = json!(now + BEYOND_SKEW_SECS);
                claims["exp"] = json!(now + BEYOND_SKEW_SECS + lifetime);
                Ok(b.sign(&typ, kid, &claims))
            }
            Forgery::OverLong => {
                let b = needs_key()?;
                claims["iat"] = json!(now);
                claims["exp"] = json!(now + OVER_LONG_SECS);
                Ok(b.sign(&typ, kid, &claims))
            }
            Forgery::SignatureBit => {
                let mut sig = parts.signature.clone();
                let first = sig.first_mut().ok_or("the minted token has no signature")?;
                *first ^= 1;
                Ok(format!("{h}.{c}.{}", b64(&sig)))
            }
            Forgery::PayloadBit => {
                let exp = claims["exp"]
                    .as_u64()
                    .ok_or("the minted token has no exp")?;
                claims["exp"] = json!(exp ^ 1);
                Ok(format!("{h}.{}.{s}", b64(claims.to_string().as_bytes())))
            }
            Forgery::AlgNone => {
                let mut header = parts.header.clone();
                header["alg"] = json!("none");
                Ok(format!("{}.{c}.", b64(header.to_string().as_bytes())))
            }
            Forgery::AlgConfusion => {
                let public = match self {
                    TokenMinter::Builtin(b) => b.public_key,
                    TokenMinter::Command { public_key, .. } => *public_key,
                }
                .ok_or("algorithm confusion needs an EdDSA public key (tokens.public_key)")?;
                let mut header = parts.header.clone();
                header["alg"] = json!("HS256");
                let input = format!("{}.{c}", b64(header.to_string().as_bytes()));
                let sig = hs256(&public, input.as_bytes());
                Ok(format!("{input}.{}", b64(&sig)))
            }
            Forgery::UnknownKid => {
                let b = needs_key()?;
                if kid.is_none() {
                    return Err("the token contract uses no kid (no tokens.kid)".into());
                }
                Ok(b.sign(&typ, Some(UNKNOWN_KID), &claims))
            }
            Forgery::WrongAudience => {
                let b = needs_key()?;
                claims["aud"] = json!(format!("{}-another-server", b.audience));
                Ok(b.sign(&typ, kid, &claims))
            }
            Forgery::WrongIssuer => {
                let b = needs_key()?;
                if b.issuer.is_none() {
                    return Err("the token contract uses no issuer (no tokens.issuer)".into());
                }
                claims["iss"] = json!("https://issuer.invalid");
                Ok(b.sign(&typ, kid, &claims))
            }
            Forgery::Truncated => Ok(format!("{h}.{c}.{}", &s[..s.len() / 2])),
            Forgery::Padded => Ok(format!("{}.{}.{}", pad(h), pad(c), pad(s))),
            Forgery::Crit => {
                let b = needs_key()?;
                let mut header = parts.header.clone();
                header["crit"] = json!([UNKNOWN_CRIT]);
                header[UNKNOWN_CRIT] = json!(true);
                Ok(b.sign_header(&header, &claims))
            }
            Forgery::Oversized => {
                let b = needs_key()?;
                claims["mcp_tenancy_padding"] = json!("A".repeat(OVERSIZED_PAD));
                Ok(b.sign(&typ, kid, &claims))
            }
            Forgery::IatAfterExp => {
                let b = needs_key()?;
                // Neither date alone is a reason to refuse: exp is ahead, iat within
                // any sane skew. Only their order is wrong.
                claims["iat"] = json!(now + 4);
                claims["exp"] = json!(now + 3);
                if claims.get("nbf").is_some() {
                    claims["nbf"] = json!(now);
                }
                Ok(b.sign(&typ, kid, &claims))
            }
            Forgery::MissingIat => {
                let b = needs_key()?;
                if !b.contract.iat {
                    return Err(
                        "the token contract does not require iat (tokens.iat = false)".into(),
                    );
                }
                if let Some(map) = claims.as_object_mut() {
                    map.remove("iat");
                }
                Ok(b.sign(&typ, kid, &claims))
            }
        }
    }
}

/// How a bound claim goes missing (T2.3): a token lacking it must authorise nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimForgery {
    Missing,
    Null,
    Empty,
    /// The right value inside an array: another JSON type that a lax check may read.
    OtherType,
    Wildcard,
}

impl ClaimForgery {
    pub const ALL: [ClaimForgery; 5] = [
        ClaimForgery::Missing,
        ClaimForgery::Null,
        ClaimForgery::Empty,
        ClaimForgery::OtherType,
        ClaimForgery::Wildcard,
    ];

    pub fn describe(self) -> &'static str {
        match self {
            ClaimForgery::Missing => "missing",
            ClaimForgery::Null => "null",
            ClaimForgery::Empty => "empty",
            ClaimForgery::OtherType => "an array holding the right value",
            ClaimForgery::Wildcard => "the wildcard \"*\"",
        }
    }
}

impl TokenMinter {
    /// `valid` re-signed with its claim `claim` forged as `how` (built-in key only).
    /// A wildcard where the valid value already is `*` is no forgery: refused.
    pub fn forge_claim(
        &self,
        valid: &str,
        claim: &str,
        how: ClaimForgery,
    ) -> Result<String, String> {
        let TokenMinter::Builtin(b) = self else {
            return Err("forging a claim needs the built-in [tokens] key (the profile mints with a command)".into());
        };
        let parts = parse(valid).ok_or("the minted token is not a JWS compact token")?;
        let mut claims = parts.claims;
        let map = claims
            .as_object_mut()
            .ok_or("the minted token's claims are not an object")?;
        let right = map.get(claim).cloned().unwrap_or(Value::Null);
        match how {
            ClaimForgery::Missing => {
                map.remove(claim);
            }
            ClaimForgery::Null => {
                map.insert(claim.to_owned(), Value::Null);
            }
            ClaimForgery::Empty => {
                map.insert(claim.to_owned(), json!(""));
            }
            ClaimForgery::OtherType => {
                map.insert(claim.to_owned(), json!([right]));
            }
            ClaimForgery::Wildcard if right == json!("*") => {
                return Err(format!("{claim} is \"*\" in a valid token already"));
            }
            ClaimForgery::Wildcard => {
                map.insert(claim.to_owned(), json!("*"));
            }
        }
        let typ = parts.header["typ"].as_str().unwrap_or_default().to_owned();
        let kid = parts.header["kid"].as_str().map(str::to_owned);
        Ok(b.sign(&typ, kid.as_deref(), &claims))
    }
}

/// `exp - iat` of `claims` (the default lifetime if either is missing).
fn lifetime_of(claims: &Value) -> u64 {
    match (claims["iat"].as_u64(), claims["exp"].as_u64()) {
        (Some(iat), Some(exp)) if exp > iat => exp - iat,
        _ => 120,
    }
}

/// The three raw segments of a compact token (empty where missing).
fn segments(token: &str) -> (&str, &str, &str) {
    let mut it = token.splitn(3, '.');
    (
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
        it.next().unwrap_or(""),
    )
}

/// `segment` with base64 `=` padding to a multiple of four characters.
fn pad(segment: &str) -> String {
    let missing = (4 - segment.len() % 4) % 4;
    format!("{segment}{}", "=".repeat(missing))
}

/// Runs the external minter for `grant` and returns its trimmed stdout.
async fn run_minter(
    command: &[String],
    cwd: &std::path::Path,
    grant: &Grant,
    lifetime: u64,
) -> Result<String, String> {
    let args: Vec<String> = command
        .iter()
        .map(|a| {
            crate::profile::expand(a, None)
                .replace("{tenant}", &grant.tenant)
                .replace("{principal}", &grant.principal)
                .replace("{tool}", &grant.tool)
                .replace("{action}", &grant.action)
                .replace("{resource}", &grant.resource)
                .replace("{lifetime}", &lifetime.to_string())
        })
        .collect();
    let (program, rest) = args.split_first().ok_or("tokens.command is empty")?;
    let program = if program.starts_with("./") || program.starts_with("../") {
        cwd.join(program).to_string_lossy().into_owned()
    } else {
        program.clone()
    };
    let out = tokio::process::Command::new(&program)
        .args(rest)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("token command {program:?} failed to start: {e}"))?;
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || token.is_empty() {
        return Err(format!(
            "token command `{}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signature, VerifyingKey};

    const SEED: [u8; 32] = [7; 32];

    fn kit_contract() -> Contract {
        crate::profile::Tokens {
            issuer: Some("https://iss.test".into()),
            kid: Some("k".into()),
            iat: true,
            ..Default::default()
        }
        .contract()
    }

    fn ed() -> TokenMinter {
        let key = SigningKey::from_bytes(&SEED);
        let public = key.verifying_key().to_bytes();
        TokenMinter::Builtin(Box::new(Builtin {
            issuer: Some("https://iss.test".into()),
            audience: "urn:aud".into(),
            kid: Some("k-ed".into()),
            typ: CALL_TYP.into(),
            contract: kit_contract(),
            material: SigningMaterial::Ed25519(Box::new(key)),
            public_key: Some(public),
        }))
    }

    fn hs() -> TokenMinter {
        TokenMinter::Builtin(Box::new(Builtin {
            issuer: Some("https://iss.test".into()),
            audience: "urn:aud".into(),
            kid: Some("k-hs".into()),
            typ: CALL_TYP.into(),
            contract: kit_contract(),
            material: SigningMaterial::Hmac(b"0123456789abcdef0123456789abcdef".to_vec()),
            public_key: None,
        }))
    }

    fn grant() -> Grant {
        Grant {
            tenant: "acme".into(),
            principal: "alice".into(),
            tool: "notes_create".into(),
            action: "notes:write".into(),
            resource: "tenant:acme".into(),
        }
    }

    /// Verifies an EdDSA token with the seed's public key.
    fn verifies_ed(token: &str) -> bool {
        let (h, c, s) = segments(token);
        let Some(sig) = unb64(s).and_then(|b| <[u8; 64]>::try_from(b).ok()) else {
            return false;
        };
        let public =
            VerifyingKey::from_bytes(&SigningKey::from_bytes(&SEED).verifying_key().to_bytes())
                .unwrap();
        public
            .verify_strict(format!("{h}.{c}").as_bytes(), &Signature::from_bytes(&sig))
            .is_ok()
    }

    /// Verifies an HS256 token with `secret`.
    fn verifies_hs(token: &str, secret: &[u8]) -> bool {
        let (h, c, s) = segments(token);
        let Some(sig) = unb64(s) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).unwrap();
        mac.update(format!("{h}.{c}").as_bytes());
        mac.verify_slice(&sig).is_ok()
    }

    fn mint(m: &TokenMinter) -> String {
        let TokenMinter::Builtin(b) = m else {
            unreachable!()
        };
        b.sign_call(&b.call_claims(&grant(), 1000, 1120))
    }

    #[test]
    fn eddsa_call_tokens_round_trip() {
        let token = mint(&ed());
        assert!(verifies_ed(&token));
        assert!(!token.contains('='));
        let parts = parse(&token).unwrap();
        assert_eq!(
            parts.header,
            json!({"alg": "EdDSA", "typ": CALL_TYP, "kid": "k-ed"})
        );
        assert_eq!(parts.claims["tenant"], "acme");
        assert_eq!(parts.claims["sub"], "alice");
        assert_eq!(parts.claims["resource"], "tenant:acme");
        assert_eq!(parts.claims["exp"], 1120);
        assert!(parts.claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    }

    #[test]
    fn hs256_tokens_round_trip_and_jti_is_unique() {
        let m = hs();
        let (a, b) = (mint(&m), mint(&m));
        assert!(verifies_hs(&a, b"0123456789abcdef0123456789abcdef"));
        assert!(!verifies_hs(&a, b"another secret"));
        assert_ne!(
            parse(&a).unwrap().claims["jti"],
            parse(&b).unwrap().claims["jti"]
        );
    }

    #[test]
    fn session_tokens_name_the_tenant_and_the_harness() {
        let TokenMinter::Builtin(b) = ed() else {
            unreachable!()
        };
        let token = b.session_token("globex", 50);
        assert!(verifies_ed(&token));
        let parts = parse(&token).unwrap();
        assert_eq!(parts.header["typ"], SESSION_TYP);
        assert_eq!(parts.claims["tenant"], "globex");
        assert_eq!(parts.claims["sub"], HARNESS_SUBJECT);
        assert_eq!(parts.claims["exp"], 50 + SESSION_LIFETIME_SECS);
    }

    #[test]
    fn every_forgery_differs_and_fails_verification() {
        let m = ed();
        let valid = mint(&m);
        for f in Forgery::CLOCK.iter().chain(Forgery::TAMPERED.iter()) {
            let forged = m.forge_from(*f, &valid, 10_000).unwrap();
            assert_ne!(forged, valid, "{f:?}");
            let parts = parse(&forged);
            match f {
                // Validly signed, but their claims are wrong.
                Forgery::Expired => {
                    assert!(verifies_ed(&forged));
                    let c = parts.unwrap().claims;
                    assert!(c["exp"].as_u64().unwrap() + 30 < 10_000);
                }
                Forgery::NotYetValid => {
                    assert!(verifies_ed(&forged));
                    let c = parts.unwrap().claims;
                    assert!(c["nbf"].as_u64().unwrap() > 10_000 + 30);
                }
                Forgery::OverLong => {
                    let c = parts.unwrap().claims;
                    assert_eq!(
                        c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(),
                        3600
                    );
                }
                Forgery::UnknownKid => {
                    assert!(verifies_ed(&forged));
                    assert_eq!(parts.unwrap().header["kid"], UNKNOWN_KID);
                }
                Forgery::WrongAudience => {
                    assert!(verifies_ed(&forged));
                    assert_ne!(parts.unwrap().claims["aud"], "urn:aud");
                }
                Forgery::WrongIssuer => {
                    assert!(verifies_ed(&forged));
                    assert_ne!(parts.unwrap().claims["iss"], "https://iss.test");
                }
                Forgery::AlgNone => {
                    assert!(forged.ends_with('.'));
                    assert_eq!(parts.unwrap().header["alg"], "none");
                }
                Forgery::AlgConfusion => {
                    let public = SigningKey::from_bytes(&SEED).verifying_key().to_bytes();
                    assert!(verifies_hs(&forged, &public));
                    let h = parts.unwrap().header;
                    assert_eq!(
                        (h["alg"].as_str(), h["kid"].as_str()),
                        (Some("HS256"), Some("k-ed"))
                    );
                }
                Forgery::Padded => {
                    assert!(forged.contains('='));
                    assert!(parts.is_none(), "strict base64url refuses padding");
                }
                Forgery::SignatureBit | Forgery::PayloadBit | Forgery::Truncated => {
                    assert!(!verifies_ed(&forged), "{f:?}");
                }
                Forgery::Crit => {
                    assert!(verifies_ed(&forged));
                    let h = parts.unwrap().header;
                    assert_eq!(h["crit"], json!([UNKNOWN_CRIT]));
                    assert_eq!(h[UNKNOWN_CRIT], true);
                }
                Forgery::Oversized => {
                    assert!(verifies_ed(&forged));
                    assert!(forged.len() > 400_000, "{}", forged.len());
                }
                Forgery::IatAfterExp => {
                    assert!(verifies_ed(&forged));
                    let c = parts.unwrap().claims;
                    let (iat, exp) = (c["iat"].as_u64().unwrap(), c["exp"].as_u64().unwrap());
                    assert!(iat > exp && exp > 10_000 && iat < 10_000 + 5, "{c}");
                }
                Forgery::MissingIat => {
                    assert!(verifies_ed(&forged));
                    assert!(parts.unwrap().claims.get("iat").is_none());
                }
            }
        }
    }

    #[test]
    fn a_payload_bit_flip_keeps_the_signature_and_changes_one_bit_of_exp() {
        let m = hs();
        let valid = mint(&m);
        let forged = m.forge_from(Forgery::PayloadBit, &valid, 0).unwrap();
        assert_eq!(segments(&forged).2, segments(&valid).2);
        assert_eq!(parse(&forged).unwrap().claims["exp"], 1121);
    }

    #[test]
    fn without_the_key_only_derived_forgeries_are_possible() {
        let m = TokenMinter::Command {
            command: vec!["mint".into()],
            cwd: PathBuf::from("."),
            public_key: None,
        };
        let valid = mint(&ed());
        assert!(m.forge_from(Forgery::SignatureBit, &valid, 0).is_ok());
        assert!(m.forge_from(Forgery::AlgNone, &valid, 0).is_ok());
        assert!(m.forge_from(Forgery::Padded, &valid, 0).is_ok());
        let err = m.forge_from(Forgery::WrongAudience, &valid, 0).unwrap_err();
        assert!(err.contains("built-in [tokens] key"), "{err}");
        assert!(m.forge_from(Forgery::AlgConfusion, &valid, 0).is_err());
    }

    #[test]
    fn keys_are_read_from_base64url() {
        assert_eq!(key_bytes(" AAEC \n", "k").unwrap(), vec![0, 1, 2]);
        assert_eq!(key_bytes("AAE=", "k").unwrap(), vec![0, 1]);
        assert!(key_bytes("!!", "k").is_err());
        assert!(
            thirty_two(vec![0; 31], "seed")
                .unwrap_err()
                .contains("32 bytes")
        );
    }

    #[tokio::test]
    async fn an_external_minter_fills_its_placeholders() {
        let m = TokenMinter::Command {
            command: vec![
                "echo".into(),
                "{tenant}.{principal}.{tool}.{action}.{resource}.{lifetime}".into(),
            ],
            cwd: PathBuf::from("."),
            public_key: None,
        };
        let token = m.call_token(&grant(), 60).await.unwrap();
        assert_eq!(token, "acme.alice.notes_create.notes:write.tenant:acme.60");
    }
}
