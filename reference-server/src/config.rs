//! Server configuration: a TOML file, overridden by command-line flags.
//!
//! ```toml
//! [http]
//! addr = "127.0.0.1:8931"         # --http ADDR overrides
//! path = "/mcp"
//! allowed_hosts = ["localhost", "127.0.0.1", "::1"]
//! allowed_origins = ["http://localhost:*", "http://127.0.0.1:*"]
//!
//! [limits]
//! max_message_bytes = 1048576     # one JSON-RPC message, stdio line or HTTP body
//! max_in_flight_per_tenant = 64   # requests of one tenant served at once (HTTP: 429)
//!
//! [sessions]                      # Streamable HTTP sessions
//! max_total = 2048                # past a cap, initialize gets 429 with Retry-After
//! max_per_tenant = 1024
//! max_per_principal = 256
//! idle_secs = 600                 # a session unused this long is ended
//!
//! [connections]                   # Streamable HTTP connections
//! max_total = 1024                # (and never more than the open-file limit allows)
//! max_unauthenticated = 256       # past it, the oldest not yet authenticated is closed
//! max_per_tenant = 256
//! header_timeout_secs = 10        # a request head, and a new connection's first request
//! body_timeout_secs = 30          # a request body
//! max_header_bytes = 16384        # 431 past it, before any header is decoded
//! max_streams_per_session = 4     # open GET streams of one session (429 past it)
//!
//! [storage]                       # the fixture tools' records, per tenant
//! max_records_per_tenant = 10000  # past a quota, a write is refused (isError)
//! max_bytes_per_tenant = 8388608
//! list_limit = 200                # a list answers at most this many, newest first
//!
//! [auth]
//! issuer = "https://issuer.mcp-tenancy.test"
//! audience = "urn:mcp-tenancy:reference-server"   # this server's resource id (RFC 8707)
//! clock_skew_secs = 30
//! max_call_token_secs = 300
//! max_session_token_secs = 86400  # a session token's longest life (exp - iat)
//! [[auth.keys]]
//! kid = "dev-ed25519"
//! alg = "EdDSA"
//! private_key_file = "dev-keys/ed25519.key"       # or public_key_file (verify only)
//! [[auth.keys]]
//! kid = "dev-hs256"
//! alg = "HS256"
//! secret_file = "dev-keys/hs256.secret"
//!
//! [discovery]
//! page_size = 50                  # tools/list page size
//!
//! [[tenants]]
//! id = "acme"
//! tiers = ["basic", "billing"]    # basic, billing, admin, interop
//! principals = [{ id = "alice", tiers = ["basic"] }]
//! ```
//!
//! Key files hold base64url without padding and resolve against the file's directory.

use crate::core::jws::{self, Key, KeySet};
use crate::core::mutants::Mutant;
use crate::core::policy::{Policy, Principal, TenantPolicy, Tiers, TokenRules};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration file. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub limits: Limits,
    pub sessions: SessionLimits,
    pub connections: ConnectionLimits,
    pub storage: StorageLimits,
    pub auth: AuthConfig,
    pub discovery: Discovery,
    pub tenants: Vec<TenantConfig>,
    /// The file this was read from; key files resolve against its directory.
    #[serde(skip)]
    pub path: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub issuer: String,
    /// This server's resource identifier (RFC 8707): the audience of every token.
    pub audience: String,
    pub clock_skew_secs: Option<u64>,
    pub max_call_token_secs: Option<u64>,
    /// The longest a session token may live (`exp - iat`); 24 hours by default.
    pub max_session_token_secs: Option<u64>,
    pub keys: Vec<KeyConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    pub kid: String,
    /// `EdDSA` or `HS256`: the one algorithm this key id allows.
    pub alg: String,
    /// EdDSA: the 32-byte seed (lets `mint` sign).
    pub private_key_file: Option<String>,
    /// EdDSA: the 32-byte public key (verify only).
    pub public_key_file: Option<String>,
    /// HS256: the shared secret.
    pub secret_file: Option<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Discovery {
    pub page_size: usize,
}

impl Default for Discovery {
    fn default() -> Self {
        Self { page_size: 50 }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: String,
    pub tiers: Vec<String>,
    #[serde(default)]
    /// Who acts inside the tenant; a call needs the tier in both the tenant's and the
    /// principal's list.
    pub principals: Vec<PrincipalConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PrincipalConfig {
    pub id: String,
    pub tiers: Vec<String>,
}

/// The tiers the fixture tools belong to.
pub const TIERS: &[&str] = &["basic", "billing", "admin", "interop"];

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address; loopback by default.
    pub addr: SocketAddr,
    /// Path of the MCP endpoint.
    pub path: String,
    /// `Host` header values accepted (DNS-rebinding protection). Entries may carry a port.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted; a request with any other Origin gets 403. `:*` matches
    /// any port. Requests without an Origin (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
}

/// Bounds on Streamable HTTP sessions: no tenant (and no principal) can hold more than
/// its share, and an abandoned session is ended, not merely forgotten.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionLimits {
    pub max_total: usize,
    pub max_per_tenant: usize,
    pub max_per_principal: usize,
    /// A session unused this long is ended (its binding and the SDK's worker).
    pub idle_secs: u64,
}

impl Default for SessionLimits {
    /// A session costs the server about 50 KB: the defaults keep a full table near
    /// 100 MB.
    fn default() -> Self {
        Self {
            max_total: 2_048,
            max_per_tenant: 1_024,
            max_per_principal: 256,
            idle_secs: 600,
        }
    }
}

/// Bounds on Streamable HTTP connections, so that clients without credentials cannot
/// hold what authenticated tenants need: a connection is *unauthenticated* until one of
/// its requests carries a valid bearer.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionLimits {
    /// Open connections in all; lowered to fit the process's open-file limit.
    pub max_total: usize,
    /// Unauthenticated connections: past this (or at `max_total`), the oldest of them
    /// is closed to make room, so a flood of idle or half-sent connections only ever
    /// displaces itself.
    pub max_unauthenticated: usize,
    /// Connections authenticated as one tenant; past it the request is answered 429
    /// and its connection closed.
    pub max_per_tenant: usize,
    /// A request head must arrive within this; so must a new connection's first
    /// authenticated request.
    pub header_timeout_secs: u64,
    /// A request body must arrive within this (408 otherwise).
    pub body_timeout_secs: u64,
    /// The largest request head (start line and headers); 431 past it.
    pub max_header_bytes: usize,
    /// Open GET (SSE) streams per session; 429 past it.
    pub max_streams_per_session: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_total: 1_024,
            max_unauthenticated: 256,
            max_per_tenant: 256,
            header_timeout_secs: 10,
            body_timeout_secs: 30,
            max_header_bytes: 16 * 1024,
            max_streams_per_session: 4,
        }
    }
}

/// Bounds on what one tenant may store through the fixture tools, and on one list
/// answer.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageLimits {
    pub max_records_per_tenant: usize,
    /// Bytes of stored text (titles, bodies, currencies) per tenant.
    pub max_bytes_per_tenant: usize,
    /// A list tool answers the newest this many records (and says how many it left out).
    pub list_limit: usize,
}

impl Default for StorageLimits {
    fn default() -> Self {
        Self {
            max_records_per_tenant: 10_000,
            max_bytes_per_tenant: 8 * 1024 * 1024,
            list_limit: 200,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest JSON-RPC message accepted, in bytes (stdio line or HTTP body).
    pub max_message_bytes: usize,
    /// Requests of one tenant being served at once; past it, HTTP answers 429 with
    /// `Retry-After`.
    pub max_in_flight_per_tenant: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8931)),
            path: "/mcp".into(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
            max_in_flight_per_tenant: 64,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        config.path = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses configuration text; the error names line, column and field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Config =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        if config.limits.max_message_bytes < 1024 {
            return Err("limits.max_message_bytes must be at least 1024".into());
        }
        let c = &config.connections;
        if c.max_total == 0 || c.max_unauthenticated == 0 || c.max_per_tenant == 0 {
            return Err(
                "connections.max_total, max_unauthenticated and max_per_tenant must be at least 1"
                    .into(),
            );
        }
        if c.header_timeout_secs == 0 || c.body_timeout_secs == 0 {
            return Err(
                "connections.header_timeout_secs and body_timeout_secs must be at least 1".into(),
            );
        }
        if c.max_header_bytes < 8192 {
            return Err("connections.max_header_bytes must be at least 8192".into());
        }
        if config.limits.max_in_flight_per_tenant == 0 || config.storage.list_limit == 0 {
            return Err(
                "limits.max_in_flight_per_tenant and storage.list_limit must be at least 1".into(),
            );
        }
        let mut kids = std::collections::HashSet::new();
        if let Some(k) = config
            .auth
            .keys
            .iter()
            .find(|k| !kids.insert(k.kid.as_str()))
        {
            return Err(format!("auth.keys: kid {:?} is configured twice", k.kid));
        }
        let mut tenants = std::collections::HashSet::new();
        for t in &config.tenants {
            if t.id.trim().is_empty() {
                return Err("tenants: a tenant id is empty".into());
            }
            if !tenants.insert(t.id.as_str()) {
                return Err(format!("tenants: tenant {:?} is configured twice", t.id));
            }
            let mut principals = std::collections::HashSet::new();
            for p in &t.principals {
                if p.id.trim().is_empty() {
                    return Err(format!("tenant {}: a principal id is empty", t.id));
                }
                if !principals.insert(p.id.as_str()) {
                    return Err(format!(
                        "tenant {}: principal {:?} is configured twice",
                        t.id, p.id
                    ));
                }
            }
        }
        if !config.http.path.starts_with('/') {
            return Err("http.path must start with `/`".into());
        }
        for t in &config.tenants {
            for tier in t
                .tiers
                .iter()
                .chain(t.principals.iter().flat_map(|p| &p.tiers))
            {
                if !TIERS.contains(&tier.as_str()) {
                    return Err(format!(
                        "tenant {}: unknown tier {tier:?} (known: {})",
                        t.id,
                        TIERS.join(", ")
                    ));
                }
            }
            // A principal's tier the tenant lacks is allowed and has no effect: a call
            // needs both (so revoking a tier from a tenant is a one-line change).
        }
        let mut ids: Vec<&str> = config.tenants.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("tenant {:?} is configured twice", w[0]));
        }
        Ok(config)
    }

    fn read_key_file(&self, file: &str) -> Result<Vec<u8>, String> {
        let base = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        let full = base.join(file);
        let text = std::fs::read_to_string(&full)
            .map_err(|e| format!("cannot read key file {}: {e}", full.display()))?;
        jws::decode_key_text(&text).map_err(|e| format!("key file {}: {e}", full.display()))
    }

    /// Every key file the configuration names, resolved against its directory.
    pub fn key_files(&self) -> Vec<PathBuf> {
        let base = self
            .path
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."));
        self.auth
            .keys
            .iter()
            .flat_map(|k| [&k.private_key_file, &k.public_key_file, &k.secret_file])
            .flatten()
            .map(|f| base.join(f))
            .collect()
    }

    fn key(&self, k: &KeyConfig) -> Result<Key, String> {
        let exact32 = |bytes: Vec<u8>, what: &str| -> Result<[u8; 32], String> {
            bytes
                .try_into()
                .map_err(|_| format!("kid {}: {what} must be 32 bytes", k.kid))
        };
        match (
            k.alg.as_str(),
            &k.private_key_file,
            &k.public_key_file,
            &k.secret_file,
        ) {
            ("EdDSA", Some(f), None, None) => Ok(Key::ed25519_from_seed(
                &k.kid,
                &exact32(self.read_key_file(f)?, "an Ed25519 seed")?,
            )),
            ("EdDSA", None, Some(f), None) => Key::ed25519_public(
                &k.kid,
                &exact32(self.read_key_file(f)?, "an Ed25519 public key")?,
            ),
            ("HS256", None, None, Some(f)) => {
                let secret = self.read_key_file(f)?;
                if secret.len() < 32 {
                    return Err(format!(
                        "kid {}: an HS256 secret needs at least 32 bytes",
                        k.kid
                    ));
                }
                Ok(Key::hmac(&k.kid, secret))
            }
            ("EdDSA", ..) => Err(format!(
                "kid {}: EdDSA needs exactly one of private_key_file, public_key_file",
                k.kid
            )),
            ("HS256", ..) => Err(format!(
                "kid {}: HS256 needs secret_file (and nothing else)",
                k.kid
            )),
            (other, ..) => Err(format!(
                "kid {}: alg {other:?} is not allowed (EdDSA, HS256)",
                k.kid
            )),
        }
    }

    /// Builds the authorisation policy, reading the key files.
    pub fn policy(&self, mutant: Option<Mutant>) -> Result<Policy, String> {
        if self.tenants.is_empty() {
            return Err("no [[tenants]] configured".into());
        }
        if self.auth.keys.is_empty() || self.auth.issuer.is_empty() || self.auth.audience.is_empty()
        {
            return Err("[auth] needs issuer, audience and at least one [[auth.keys]]".into());
        }
        let keys = self
            .auth
            .keys
            .iter()
            .map(|k| self.key(k))
            .collect::<Result<Vec<_>, _>>()?;
        let tiers = |t: &[String]| Tiers::from(t.to_vec());
        Ok(Policy::new(
            self.tenants
                .iter()
                .map(|t| TenantPolicy {
                    id: t.id.clone(),
                    tiers: tiers(&t.tiers),
                    principals: t
                        .principals
                        .iter()
                        .map(|p| Principal {
                            id: p.id.clone(),
                            tiers: tiers(&p.tiers),
                        })
                        .collect(),
                })
                .collect(),
            TokenRules {
                keys: KeySet { keys },
                issuer: self.auth.issuer.clone(),
                audience: self.auth.audience.clone(),
                skew_secs: self.auth.clock_skew_secs.unwrap_or(30),
                max_call_token_secs: self.auth.max_call_token_secs.unwrap_or(300),
                max_session_token_secs: self.auth.max_session_token_secs.unwrap_or(86_400),
            },
            self.discovery.page_size,
            mutant,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_field_is_refused_with_its_line() {
        let err =
            Config::parse("[http]\naddr = \"127.0.0.1:1\"\nalowed_origins = []\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("alowed_origins"), "{err}");
    }

    #[test]
    fn duplicate_key_ids_and_empty_or_repeated_tenants_and_principals_are_refused() {
        let key = "[[auth.keys]]\nkid = \"k\"\nalg = \"HS256\"\nsecret_file = \"s\"\n";
        let err = Config::parse(&format!("{key}{key}")).unwrap_err();
        assert!(err.contains("kid \"k\" is configured twice"), "{err}");
        let tenant = |id: &str, principals: &str| {
            format!(
                "[[tenants]]\nid = \"{id}\"\ntiers = [\"basic\"]\nprincipals = [{principals}]\n"
            )
        };
        for (text, says) in [
            (tenant(" ", ""), "a tenant id is empty"),
            (
                format!("{}{}", tenant("a", ""), tenant("a", "")),
                "tenant \"a\" is configured twice",
            ),
            (
                tenant("a", "{ id = \"\", tiers = [] }"),
                "a principal id is empty",
            ),
            (
                tenant(
                    "a",
                    "{ id = \"p\", tiers = [] }, { id = \"p\", tiers = [] }",
                ),
                "principal \"p\" is configured twice",
            ),
        ] {
            let err = Config::parse(&text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }
}
