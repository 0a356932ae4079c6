//! Target profiles: a declarative TOML file that tells the harness how to reach and
//! drive a server it did not write.
//!
//! ```toml
//! name = "reference server over stdio"
//!
//! [target]
//! transport = "stdio"                     # or "http"
//! # stdio: the server command; http: an optional command that starts the server.
//! # `${VAR}` / `${VAR:-default}` expand from the environment; `{port}` is a free
//! # loopback port chosen by the harness (http only). Relative paths are resolved
//! # against the profile's directory.
//! command = ["${CARGO_TARGET_DIR:-../../target}/debug/mcp-tenancy-server", "--stdio"]
//! build = ["cargo", "build", "-q", "-p", "mcp-tenancy-server"]   # run once, optional
//! env = { MCP_TENANCY_LOG = "warn" }
//! # url = "http://127.0.0.1:{port}/mcp"   # http only
//! # headers = { X-Api-Version = "2" }     # http only, non-secret headers
//!
//! [limits]
//! request_timeout_ms = 5000               # one request, before the target is called hung
//!
//! [[tenants]]
//! id = "acme"
//! credential = { env = "ACME_TOKEN" }     # or { file = "secrets/acme.jwt" }; never inline
//! tools = ["notes_create", "notes_list"]  # tools this tenant is entitled to
//! # Who acts inside the tenant, each with the tools it may call (T2.6). Without
//! # principals the harness acts as one principal entitled to every tool above.
//! principals = [{ id = "alice", tools = ["notes_create", "notes_list"] }]
//!
//! [auth]                                  # session credentials (optional)
//! mint_sessions = true                    # mint a session JWT per tenant with [tokens]' key
//! http_header = "Authorization"           # http: the header that carries it, on every request
//! http_format = "Bearer {token}"
//! stdio_env = "MCP_TENANCY_SESSION_TOKEN" # stdio: the variable it is given in at launch
//!
//! [tokens]                                # call tokens (optional; default placement "none")
//! placement = "meta"                      # "meta" (params._meta), "header" (http), "none"
//! meta_key = "dev.mcp-tenancy/call-token"
//! header = "Mcp-Tenancy-Call-Token"
//! lifetime_secs = 120
//! # Built-in minting (JWS compact) ...
//! issuer = "https://issuer.example"
//! audience = "urn:my-server"
//! kid = "k1"
//! alg = "EdDSA"                           # or "HS256"
//! key = { file = "keys/ed25519.key" }     # base64url: the Ed25519 seed or the HMAC secret
//! # public_key = { file = "keys/ed25519.pub" }   # optional; derived from an EdDSA seed
//! # ... or an external minter that prints a token on stdout:
//! # command = ["./mint", "{tenant}", "{principal}", "{tool}", "{action}", "{resource}", "{lifetime}"]
//!
//! [tools.notes_create]                    # how to drive a tool (optional, per tool)
//! role = "write"                          # "write", "list", "read" or "other"
//! action = "notes:write"                  # the call token's action claim
//! arguments = { title = "{marker}" }      # {marker}: a unique string; {id}; {tenant}
//! resource = "tenant:{tenant}"            # the call token's resource claim
//! tenant_argument = "tenant_id"           # the argument that names a tenant, if any
//!
//! [revocation]                            # optional: how to revoke an entitlement (T1.4)
//! tenant = "acme"
//! tool = "notes_create"
//! command = ["./revoke.sh", "acme", "notes_create"]
//! restore = ["./restore.sh", "acme", "notes_create"]
//! ```
//!
//! Every table refuses unknown fields, so a misspelt field is an error that names the
//! file, line and field — not a silently ignored setting.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed target profile.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Another profile (path relative to this file) this one starts from: each
    /// top-level table or value given here replaces the base's of the same name.
    #[serde(default)]
    pub extends: Option<String>,
    /// Display name in reports.
    pub name: String,
    pub target: Target,
    #[serde(default)]
    pub limits: Limits,
    /// How much of the profile the checks cover; absent: everything.
    #[serde(default)]
    pub coverage: Coverage,
    /// How sessions are authenticated; absent: tenants' credentials as bearer tokens.
    #[serde(default)]
    pub auth: Auth,
    /// Call tokens: where they travel and how the harness mints them.
    #[serde(default)]
    pub tokens: Tokens,
    /// Tenants the harness acts as. The T0 checks need none; tenancy checks need two.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// How to drive each tool, by name.
    #[serde(default)]
    pub tools: BTreeMap<String, ToolSpec>,
    /// How to revoke an entitlement at runtime (T1.4); absent: T1.4 is skipped.
    #[serde(default)]
    pub revocation: Option<Revocation>,
    /// What `mcp-tenancy load` may read of the target besides its answers.
    #[serde(default)]
    pub load: LoadSpec,
    /// Where the profile was read from; relative paths resolve against its directory.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Stdio,
    Http,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub transport: Transport,
    /// stdio: the server command (required). http: a command that starts the server
    /// (optional; without it the harness expects `url` to be served already).
    #[serde(default)]
    pub command: Vec<String>,
    /// A command run once before the first launch (e.g. to compile the server).
    #[serde(default)]
    pub build: Vec<String>,
    /// Commands run once per target before the first launch, after `build`, in the
    /// profile's directory — e.g. to copy a configuration into `{scratch}`, a directory
    /// of the target's own that the harness creates and removes.
    #[serde(default)]
    pub setup: Vec<Vec<String>>,
    /// Working directory for `build` and `command`, relative to the profile.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Environment for `command` (non-secret values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// http: the MCP endpoint. `{tenant}` is the id of the tenant a connection acts
    /// as (one endpoint per tenant).
    #[serde(default)]
    pub url: Option<String>,
    /// http: extra non-secret headers sent with every request (`{tenant}` as in `url`).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// http: how long a launched server may take to accept connections.
    #[serde(default = "default_ready_timeout_ms")]
    pub ready_timeout_ms: u64,
    /// How long a launched target (and its process group) may take to stop after
    /// SIGTERM before it is killed.
    #[serde(default = "default_stop_grace_ms")]
    pub stop_grace_ms: u64,
    /// stdio: do this target's connections reach one shared process (a stdio wrapper
    /// in front of a shared server), so that answers could cross between them? Only
    /// then does T6.4 run over stdio.
    #[serde(default)]
    pub multiplexes_sessions: bool,
}

fn default_stop_grace_ms() -> u64 {
    3_000
}

fn default_ready_timeout_ms() -> u64 {
    20_000
}

/// Caps on what the checks cover. By default every tool of every role is driven for
/// every tenant whose entitlements differ; a large profile may cap that, and the
/// report then names what was left out.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Coverage {
    /// At most this many tools of each role per tenant (in profile order).
    pub max_tools_per_role: Option<usize>,
    /// At most this many tenants act (in profile order, one per set of entitlements).
    pub max_tenants: Option<usize>,
}

/// `[load]`: what `mcp-tenancy load` may read of the target besides its answers.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSpec {
    /// A URL (`{port}`: the launched server's port) answering `GET` with a JSON object
    /// of counters — e.g. the reference server's `serve --publish-stats`. Read before and
    /// after every measured phase; the report gives each counter's growth, and the hit
    /// rate of every `X_hits` / `X_misses` pair. Absent: "not published".
    pub stats_url: Option<String>,
}

impl Coverage {
    fn validate(&self) -> Result<(), String> {
        for (name, cap) in [
            ("max_tools_per_role", self.max_tools_per_role),
            ("max_tenants", self.max_tenants),
        ] {
            if cap == Some(0) {
                return Err(format!(
                    "coverage.{name} must be at least 1 (leave it out to cover everything)"
                ));
            }
        }
        Ok(())
    }
}

/// Part of a profile a check covers, and what a [`Coverage`] cap left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered<T> {
    pub items: Vec<T>,
    /// Names left out by the cap (empty: nothing).
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// How long one request may take before the target counts as hung.
    pub request_timeout_ms: u64,
    /// How long to wait for an answer that a conforming server must send but that a
    /// silent one never will (malformed frames).
    pub silence_timeout_ms: u64,
    /// Size of the oversized message sent by T0.3.
    pub oversized_message_bytes: usize,
    /// The calls per second the target allows one tenant: the harness paces every
    /// request of each tenant's sessions to it. Absent: no pacing.
    pub calls_per_second: Option<f64>,
    /// A JSON-RPC error code with which the target signals a rate limit.
    pub rate_limit_code: Option<i64>,
    /// Texts (any case) that signal a rate limit in an error message or an `isError`
    /// result. HTTP 429 always does.
    pub rate_limit_text: Vec<String>,
    /// How long the harness backs off and re-sends a rate-limited frame, and retries a
    /// refused read-back, before it judges the answer.
    pub retry_budget_ms: u64,
    /// May the floods of T0.6 and T5.8 be sent? `false` for a target that must not be
    /// flooded: both are skipped with that reason.
    pub flood: bool,
    /// Sessions one tenant opens and abandons in each of T5.8's two rounds (raised past
    /// a declared per-tenant or per-principal session cap).
    pub flood_sessions: usize,
    /// Connections without credentials T0.6 holds open.
    pub flood_connections: usize,
    /// The target's declared cap on one tenant's open sessions, if it has one: T5.8
    /// floods past it and fails when more of the flood's sessions stay open.
    pub sessions_per_tenant: Option<usize>,
    /// The same, per principal.
    pub sessions_per_principal: Option<usize>,
    /// The target's declared idle-session expiry: T5.8 lets it pass between its rounds
    /// (when it is at most two minutes).
    pub session_idle_secs: Option<u64>,
}

impl Limits {
    /// The sessions T5.8 opens per round: the profile's figure, and always more than a
    /// declared cap (by a tenth, at least ten).
    pub fn flood_size(&self) -> usize {
        let cap = self
            .sessions_per_tenant
            .into_iter()
            .chain(self.sessions_per_principal)
            .min();
        match cap {
            Some(cap) => self.flood_sessions.max(cap + (cap / 10).max(10)),
            None => self.flood_sessions,
        }
    }

    /// Refuses limits the harness cannot honour.
    fn validate(&self) -> Result<(), String> {
        if let Some(rate) = self.calls_per_second
            && !(rate.is_finite() && (0.01..=100_000.0).contains(&rate))
        {
            return Err(format!(
                "limits.calls_per_second must be between 0.01 and 100000, got {rate}"
            ));
        }
        if self.rate_limit_text.iter().any(|t| t.trim().is_empty()) {
            return Err(
                "limits.rate_limit_text must not hold an empty text (it would match every refusal)"
                    .into(),
            );
        }
        if self.retry_budget_ms > 600_000 {
            return Err("limits.retry_budget_ms is at most 600000 (10 minutes)".into());
        }
        if !(1..=100_000).contains(&self.flood_sessions) {
            return Err(format!(
                "limits.flood_sessions must be between 1 and 100000, got {}",
                self.flood_sessions
            ));
        }
        if !(1..=20_000).contains(&self.flood_connections) {
            return Err(format!(
                "limits.flood_connections must be between 1 and 20000, got {}",
                self.flood_connections
            ));
        }
        if self.sessions_per_tenant == Some(0) || self.sessions_per_principal == Some(0) {
            return Err("limits.sessions_per_tenant and sessions_per_principal must be at least 1 (leave them out when there is no cap)".into());
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout_ms: 10_000,
            silence_timeout_ms: 3_000,
            oversized_message_bytes: 8 * 1024 * 1024,
            calls_per_second: None,
            rate_limit_code: None,
            rate_limit_text: ["rate limit", "rate-limited", "too many requests"]
                .map(str::to_owned)
                .to_vec(),
            retry_budget_ms: 10_000,
            flood: true,
            flood_sessions: 2_000,
            flood_connections: 1_200,
            sessions_per_tenant: None,
            sessions_per_principal: None,
            session_idle_secs: None,
        }
    }
}

/// A tenant the harness acts as.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub id: String,
    /// The session credential (secret): from an environment variable or a file.
    #[serde(default)]
    pub credential: Option<Secret>,
    /// Tools this tenant is entitled to see and call.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Who acts inside this tenant, each with the tools it may call.
    #[serde(default)]
    pub principals: Vec<Principal>,
}

/// The principal the harness acts as when a tenant lists none.
pub const DEFAULT_PRINCIPAL: &str = "mcp-tenancy-harness";

impl Tenant {
    /// Is this tenant entitled to `tool`?
    pub fn entitled(&self, tool: &str) -> bool {
        self.tools.iter().any(|t| t == tool)
    }

    /// The principals of this tenant; without listed principals, one principal
    /// ([`DEFAULT_PRINCIPAL`]) entitled to every tool of the tenant.
    pub fn principals(&self) -> Vec<Principal> {
        if self.principals.is_empty() {
            vec![Principal {
                id: DEFAULT_PRINCIPAL.to_owned(),
                tools: self.tools.clone(),
                credential: None,
            }]
        } else {
            self.principals.clone()
        }
    }

    /// A principal of this tenant that may call `tool` (the first listed).
    pub fn principal_for(&self, tool: &str) -> Option<Principal> {
        self.principals()
            .into_iter()
            .find(|p| p.tools.iter().any(|t| t == tool))
    }

    /// Who the tenant's sessions act as: without a tenant credential, the principal
    /// with a credential of its own that may call the most tools (a writer key before a
    /// reader key); otherwise the first principal.
    pub fn session_principal(&self) -> Principal {
        let principals = self.principals();
        // The first of the widest (max_by_key would take the last).
        let own = principals.iter().filter(|p| p.credential.is_some()).fold(
            None::<&Principal>,
            |best, p| match best {
                Some(b) if b.tools.len() >= p.tools.len() => Some(b),
                _ => Some(p),
            },
        );
        match own {
            Some(p) if self.credential.is_none() => p.clone(),
            _ => principals[0].clone(),
        }
    }
}

/// Someone acting inside a tenant (an end user, a service).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub id: String,
    /// The tools this principal may call (a subset of the tenant's).
    #[serde(default)]
    pub tools: Vec<String>,
    /// The principal's own session credential (e.g. a reader key and a writer key);
    /// without one it acts in the tenant's sessions.
    #[serde(default)]
    pub credential: Option<Secret>,
}

/// How sessions are authenticated.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Mint each tenant's session credential with the `[tokens]` key (sub
    /// `mcp-tenancy-harness`) instead of reading the tenant's `credential`.
    pub mint_sessions: bool,
    /// http: the header that carries the session credential on every request.
    pub http_header: String,
    /// http: the header's value; `{token}` is the credential.
    pub http_format: String,
    /// stdio: the environment variable the credential is given in at launch.
    pub stdio_env: Option<String>,
    /// http: a per-request signer, run (in the profile's directory) before every
    /// request with the request as JSON on stdin — `method`, `url`, `headers`,
    /// `body_base64` — printing the headers to add, one `Name: value` per line.
    pub sign: Vec<String>,
    /// The longest lifetime (`exp - iat`, seconds) the target accepts in a session
    /// token; a minted session bearer living an hour longer must be refused (T2.2).
    /// Without it that case is skipped.
    pub max_session_lifetime_secs: Option<u64>,
    /// The clock skew (seconds) the target allows past a token's `exp`: T2.7 waits that
    /// long (plus 3 s) for a GET stream to end once its bearer expires. Without it that
    /// case is skipped; past 60 s too.
    pub clock_skew_secs: Option<u64>,
}

impl Default for Auth {
    fn default() -> Self {
        Self {
            mint_sessions: false,
            http_header: "Authorization".into(),
            http_format: "Bearer {token}".into(),
            stdio_env: None,
            sign: Vec::new(),
            max_session_lifetime_secs: None,
            clock_skew_secs: None,
        }
    }
}

/// Where a call token travels.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// In `params._meta[meta_key]` (both transports).
    Meta,
    /// In an HTTP header (http only).
    Header,
    /// The server takes no call tokens.
    #[default]
    None,
}

/// A JWS signature algorithm the harness can mint with.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub enum Alg {
    EdDSA,
    HS256,
}

impl Alg {
    /// The `alg` header value.
    pub fn name(self) -> &'static str {
        match self {
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
        }
    }
}

/// Call tokens: placement, the target's token contract, and either built-in minting
/// (`audience`, `alg`, `key`, optionally `issuer` and `kid`) or an external `command`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tokens {
    pub placement: Placement,
    /// The `params._meta` key for `placement = "meta"`.
    pub meta_key: String,
    /// The HTTP header for `placement = "header"`.
    pub header: String,
    /// The `iss` claim; without it tokens carry none and no issuer is forged.
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// The `kid` header; without it tokens carry none and no key id is forged.
    pub kid: Option<String>,
    /// The call token's `typ` header (`""`: none).
    pub typ: String,
    /// The claim names of the target's tokens; absent: the kit's own layout (`tenant`,
    /// `sub`, `tool`, `action`, `resource`). A dimension left out is not in the contract.
    pub claims: Option<Claims>,
    /// Whether the contract dates a token's start with `nbf` (the not-yet-valid case).
    pub nbf: bool,
    /// Whether call tokens carry a unique `jti`.
    pub jti: bool,
    /// Whether the target requires `iat` on every token, so that a token without one
    /// must be refused (T2.2). Tokens the harness mints always carry it.
    pub iat: bool,
    /// Whether the target knows each tenant's principals, so that a principal of
    /// another tenant is refused (T2.4). Without one it trusts the issuer's `sub`.
    pub roster: bool,
    /// The dimensions the target binds a call to; default: every one the contract
    /// carries. Each is tested and must hold; nothing else is forged.
    pub binds: Option<Vec<Dimension>>,
    pub alg: Option<Alg>,
    /// The signing key (base64url): an Ed25519 seed or an HMAC secret.
    pub key: Option<Secret>,
    /// The Ed25519 public key (base64url), for the algorithm-confusion forgery when the
    /// harness has no seed to derive it from.
    pub public_key: Option<Secret>,
    /// An external minter printing one token on stdout; its arguments may use
    /// `{tenant}` `{principal}` `{tool}` `{action}` `{resource}` `{lifetime}`.
    pub command: Vec<String>,
    /// Lifetime of the call tokens the harness mints, in seconds.
    pub lifetime_secs: u64,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            placement: Placement::None,
            meta_key: "dev.mcp-tenancy/call-token".into(),
            header: "Mcp-Tenancy-Call-Token".into(),
            issuer: None,
            audience: None,
            kid: None,
            typ: "mcp-call+jwt".into(),
            claims: None,
            nbf: true,
            jti: true,
            iat: false,
            roster: true,
            binds: None,
            alg: None,
            key: None,
            public_key: None,
            command: Vec::new(),
            lifetime_secs: 120,
        }
    }
}

impl Tokens {
    /// The token contract these settings describe.
    pub fn contract(&self) -> Contract {
        let claims = self.claims.clone().unwrap_or_else(Claims::kit);
        let carried: Vec<Dimension> = Dimension::ALL
            .into_iter()
            .filter(|d| claims.carries(*d))
            .collect();
        Contract {
            binds: self.binds.clone().unwrap_or_else(|| carried.clone()),
            carried,
            claims,
            issuer: self.issuer.is_some(),
            kid: self.kid.is_some(),
            nbf: self.nbf,
            jti: self.jti,
            iat: self.iat,
            roster: self.roster,
        }
    }
}

/// One thing a call token can bind a call to.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    Tenant,
    Principal,
    Tool,
    Action,
    Resource,
}

impl Dimension {
    pub const ALL: [Dimension; 5] = [
        Dimension::Tenant,
        Dimension::Principal,
        Dimension::Tool,
        Dimension::Action,
        Dimension::Resource,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Dimension::Tenant => "tenant",
            Dimension::Principal => "principal",
            Dimension::Tool => "tool",
            Dimension::Action => "action",
            Dimension::Resource => "resource",
        }
    }

    /// The placeholder a scope item uses for it, e.g. `{tool}`.
    fn placeholder(self) -> String {
        format!("{{{}}}", self.name())
    }
}

/// The claim names of a target's tokens (`[tokens.claims]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    pub tenant: Option<String>,
    /// e.g. `sub` or `azp`.
    pub principal: Option<String>,
    pub tool: Option<String>,
    pub action: Option<String>,
    pub resource: Option<String>,
    /// A claim holding a space-separated scope string, made of `scope_items`.
    pub scope: Option<String>,
    /// The items of the scope string, templates of `{tenant}` `{principal}` `{tool}`
    /// `{action}` `{resource}` (e.g. `["tool:{tool}"]`).
    #[serde(default)]
    pub scope_items: Vec<String>,
    /// Fixed claims every token carries (e.g. `{ ver = 2 }`).
    #[serde(default)]
    pub extra: toml::Table,
}

impl Claims {
    /// The kit's own layout (the reference server's).
    pub fn kit() -> Self {
        Self {
            tenant: Some("tenant".into()),
            principal: Some("sub".into()),
            tool: Some("tool".into()),
            action: Some("action".into()),
            resource: Some("resource".into()),
            scope: None,
            scope_items: Vec::new(),
            extra: toml::Table::new(),
        }
    }

    /// The claim named for `d`, if the contract gives it one.
    pub fn claim(&self, d: Dimension) -> Option<&str> {
        match d {
            Dimension::Tenant => self.tenant.as_deref(),
            Dimension::Principal => self.principal.as_deref(),
            Dimension::Tool => self.tool.as_deref(),
            Dimension::Action => self.action.as_deref(),
            Dimension::Resource => self.resource.as_deref(),
        }
    }

    /// Does a token carry `d`, as a claim of its own or inside the scope string?
    pub fn carries(&self, d: Dimension) -> bool {
        self.claim(d).is_some()
            || (self.scope.is_some()
                && self
                    .scope_items
                    .iter()
                    .any(|i| i.contains(&d.placeholder())))
    }
}

/// The target's token contract, resolved from `[tokens]`: what its tokens carry and
/// which dimensions it binds. T2's cases are generated from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Contract {
    pub claims: Claims,
    /// The dimensions its tokens carry.
    pub carried: Vec<Dimension>,
    /// The dimensions it binds a call to.
    pub binds: Vec<Dimension>,
    pub issuer: bool,
    pub kid: bool,
    pub nbf: bool,
    pub jti: bool,
    pub iat: bool,
    pub roster: bool,
}

impl Contract {
    pub fn binds(&self, d: Dimension) -> bool {
        self.binds.contains(&d)
    }
}

/// What a tool does, for the checks that must prove effects.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Changes state that a `list` tool shows.
    Write,
    /// Lists the tenant's state (the read-back channel).
    List,
    /// Reads one record (`{id}`).
    Read,
    Other,
}

impl Role {
    /// The role as a profile spells it.
    pub fn name(self) -> &'static str {
        match self {
            Role::Write => "write",
            Role::List => "list",
            Role::Read => "read",
            Role::Other => "other",
        }
    }
}

/// How to drive one tool.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    pub role: Role,
    /// The call token's `action` claim (default: the tool's name).
    #[serde(default)]
    pub action: Option<String>,
    /// Argument template: strings may use `{marker}`, `{id}` and `{tenant}`.
    #[serde(default)]
    pub arguments: toml::Table,
    /// The call token's `resource` claim template (default `*`).
    #[serde(default)]
    pub resource: Option<String>,
    /// The argument that names a tenant, if the tool has one.
    #[serde(default)]
    pub tenant_argument: Option<String>,
    /// The argument that names the acting user or principal, if the tool has one
    /// (T3.1 also tries `user_id`, `principal`, `on_behalf_of` and `acting_as`).
    #[serde(default)]
    pub principal_argument: Option<String>,
    /// Members added to `params._meta` of every call of this tool — e.g. an
    /// idempotency key `{ "com.example/idempotency-key" = "{uuid}" }`. Strings may use
    /// `{uuid}` (fresh per call), `{tenant}` and `{tool}`.
    #[serde(default)]
    pub meta: toml::Table,
    /// http: headers added to every call of this tool (the same placeholders).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// How to revoke one entitlement at runtime, and restore it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Revocation {
    /// The tenant that loses the tool.
    pub tenant: String,
    /// The tool it loses.
    pub tool: String,
    /// Revokes (run in the profile's directory; `${VAR}` expands).
    pub command: Vec<String>,
    /// Restores the entitlement afterwards.
    #[serde(default)]
    pub restore: Vec<String>,
}

/// Where a secret comes from. Inline secrets are not accepted.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Secret {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file (trailing newline trimmed), relative to the profile.
    File(String),
}

/// A profile that cannot be used. `Display` names the file, and for parse errors the
/// line, column and field.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid profile {path}:\n{message}")]
    Parse { path: String, message: String },
    #[error("invalid profile {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("profile {path}: {message}")]
    Secret { path: String, message: String },
}

impl Profile {
    /// Replaces `{scratch}` in every command, environment value and revocation step.
    pub fn substitute_scratch(&mut self, dir: &str) {
        let fill =
            |v: &mut Vec<String>| v.iter_mut().for_each(|s| *s = s.replace("{scratch}", dir));
        fill(&mut self.target.command);
        self.target.setup.iter_mut().for_each(fill);
        self.target
            .env
            .values_mut()
            .for_each(|v| *v = v.replace("{scratch}", dir));
        if let Some(r) = &mut self.revocation {
            fill(&mut r.command);
            fill(&mut r.restore);
        }
    }

    /// Reads and validates a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses profile text; `path` is used for messages and relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProfileError> {
        Self::parse_chained(text, path, &mut Vec::new())
    }

    /// [`Profile::parse`] inside an `extends` chain: `chain` holds the files that extend
    /// this one (a file met twice is a cycle).
    fn parse_chained(
        text: &str,
        path: &Path,
        chain: &mut Vec<PathBuf>,
    ) -> Result<Self, ProfileError> {
        let shown = path.display().to_string();
        let parse_error = |e: toml::de::Error| ProfileError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_owned(),
        };
        let own: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let mut profile: Profile = match own.get("extends").and_then(toml::Value::as_str) {
            None => toml::from_str(text).map_err(parse_error)?,
            Some(base) => {
                chain.push(chain_key(path));
                let merged = Self::extend(text, own.clone(), path, base, chain);
                chain.pop();
                merged?
            }
        };
        profile.path = path.to_path_buf();
        let invalid = |message: String| ProfileError::Invalid {
            path: shown.clone(),
            message,
        };
        let t = &profile.target;
        match t.transport {
            Transport::Stdio if t.command.is_empty() => {
                return Err(invalid(
                    "target.command is required for transport = \"stdio\"".into(),
                ));
            }
            Transport::Stdio if t.url.is_some() => {
                return Err(invalid(
                    "target.url is only for transport = \"http\"".into(),
                ));
            }
            Transport::Http if t.url.is_none() => {
                return Err(invalid(
                    "target.url is required for transport = \"http\"".into(),
                ));
            }
            _ => {}
        }
        if let Some(url) = &t.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(format!(
                "target.url must be an http:// or https:// URL, got {url:?}"
            )));
        }
        if t.url.as_deref().is_some_and(|u| u.contains("{port}")) && t.command.is_empty() {
            return Err(invalid(
                "target.url uses {port} but there is no target.command to start the server on it"
                    .into(),
            ));
        }
        let mut ids: Vec<&str> = profile.tenants.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("tenant id {:?} appears twice", w[0])));
        }
        profile.validate_tokens().map_err(invalid)?;
        profile.limits.validate().map_err(invalid)?;
        profile.coverage.validate().map_err(invalid)?;
        if let Some(url) = &profile.load.stats_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(format!(
                    "load.stats_url must be an http:// or https:// URL, not {url:?}"
                )));
            }
            if profile.target.transport == Transport::Stdio && url.contains("{port}") {
                return Err(invalid(
                    "load.stats_url uses {port}, but a stdio target listens on no port: give the URL it publishes at, or leave [load] stats_url out".into(),
                ));
            }
            if url.contains("{port}") && profile.target.command.is_empty() {
                return Err(invalid(
                    "load.stats_url uses {port} but there is no target.command to start the server on it".into(),
                ));
            }
        }
        Ok(profile)
    }

    /// Checks that `[auth]`, `[tokens]`, principals and `[revocation]` fit together.
    fn validate_tokens(&self) -> Result<(), String> {
        let t = &self.tokens;
        let builtin = [
            ("audience", t.audience.is_some()),
            ("alg", t.alg.is_some()),
            ("key", t.key.is_some()),
        ];
        let given: Vec<&str> = builtin.iter().filter(|b| b.1).map(|b| b.0).collect();
        if !given.is_empty() && !t.command.is_empty() {
            return Err("tokens: give either built-in minting (audience, alg, key; issuer and kid if the target uses them) or command, not both".into());
        }
        if given.is_empty() && (t.issuer.is_some() || t.kid.is_some()) && t.command.is_empty() {
            return Err("tokens: issuer and kid are for built-in minting, which needs audience, alg and key as well".into());
        }
        let contract = t.contract();
        if let Some(claims) = &t.claims {
            if claims.scope.is_some() && claims.scope_items.is_empty() {
                return Err("tokens.claims: scope needs scope_items (e.g. [\"{tool}\"])".into());
            }
            if claims.scope.is_none() && !claims.scope_items.is_empty() {
                return Err("tokens.claims: scope_items needs scope (the claim's name)".into());
            }
        }
        if let Some(d) = contract
            .binds
            .iter()
            .find(|d| !contract.carried.contains(d))
        {
            return Err(format!(
                "tokens.binds lists {:?}, which the token contract does not carry (give it a claim in [tokens.claims])",
                d.name()
            ));
        }
        if !given.is_empty() && given.len() < builtin.len() {
            let missing: Vec<&str> = builtin.iter().filter(|b| !b.1).map(|b| b.0).collect();
            return Err(format!(
                "tokens: built-in minting needs {} as well",
                missing.join(", ")
            ));
        }
        if t.placement != Placement::None && given.is_empty() && t.command.is_empty() {
            return Err(
                "tokens: placement needs a way to mint: audience, alg and key (issuer, kid if used), or command".into(),
            );
        }
        if t.placement == Placement::Header && self.target.transport != Transport::Http {
            return Err("tokens.placement = \"header\" needs transport = \"http\"".into());
        }
        if self.auth.mint_sessions && given.is_empty() {
            return Err(
                "auth.mint_sessions needs the built-in [tokens] key (audience, alg, key)".into(),
            );
        }
        if self.target.transport != Transport::Http
            && let Some((name, _)) = self.tools.iter().find(|(_, t)| !t.headers.is_empty())
        {
            return Err(format!("tools.{name}.headers needs transport = \"http\""));
        }
        if !self.auth.sign.is_empty() && self.target.transport != Transport::Http {
            return Err("auth.sign needs transport = \"http\"".into());
        }
        if !self.auth.http_format.contains("{token}") {
            return Err("auth.http_format must contain {token}".into());
        }
        for tenant in &self.tenants {
            for p in &tenant.principals {
                if let Some(tool) = p.tools.iter().find(|tool| !tenant.entitled(tool)) {
                    return Err(format!(
                        "tenant {:?}: principal {:?} lists {tool:?}, which the tenant is not entitled to",
                        tenant.id, p.id
                    ));
                }
            }
        }
        if let Some(r) = &self.revocation {
            if r.command.is_empty() {
                return Err("revocation.command must not be empty".into());
            }
            if !self
                .tenants
                .iter()
                .any(|t| t.id == r.tenant && t.entitled(&r.tool))
            {
                return Err(format!(
                    "revocation: tenant {:?} is not listed as entitled to {:?}",
                    r.tenant, r.tool
                ));
            }
        }
        Ok(())
    }

    /// The spec of `tool`, if the profile gives one.
    pub fn tool(&self, tool: &str) -> Option<&ToolSpec> {
        self.tools.get(tool)
    }

    /// What a call of `tool` by `principal` of `tenant` on record `id` needs granted:
    /// the profile's action (default the tool name) and resource template (default `*`).
    pub fn grant(
        &self,
        tenant: &str,
        principal: &str,
        tool: &str,
        id: &str,
    ) -> crate::model::Grant {
        let spec = self.tool(tool);
        let action = spec
            .and_then(|s| s.action.clone())
            .unwrap_or_else(|| tool.to_owned());
        let resource = spec
            .and_then(|s| s.resource.clone())
            .map(|r| r.replace("{tenant}", tenant).replace("{id}", id))
            .unwrap_or_else(|| "*".into());
        crate::model::Grant {
            tenant: tenant.to_owned(),
            principal: principal.to_owned(),
            tool: tool.to_owned(),
            action,
            resource,
        }
    }

    /// The tenants that act in a covering check: the first of each set of
    /// entitlements (tenants entitled alike would repeat each other's cases), capped by
    /// `coverage.max_tenants`.
    pub fn acting_tenants(&self) -> Covered<Tenant> {
        let mut items: Vec<Tenant> = Vec::new();
        let entitlements = |t: &Tenant| {
            let mut tools = t.tools.clone();
            tools.sort();
            let mut principals: Vec<Vec<String>> = t
                .principals()
                .into_iter()
                .map(|p| {
                    let mut v = p.tools;
                    v.sort();
                    v
                })
                .collect();
            principals.sort();
            (tools, principals)
        };
        for t in &self.tenants {
            if !items.iter().any(|i| entitlements(i) == entitlements(t)) {
                items.push(t.clone());
            }
        }
        let cap = self.coverage.max_tenants.unwrap_or(usize::MAX);
        let left_out = items.iter().skip(cap).map(|t| t.id.clone()).collect();
        items.truncate(cap);
        Covered { items, left_out }
    }

    /// The tools of `role` `tenant` is entitled to and some principal of it may call,
    /// in profile order, capped by `coverage.max_tools_per_role`. [`Role::Other`] also
    /// takes the tenant's tools the profile does not describe.
    pub fn covered_tools(&self, tenant: &Tenant, role: Role) -> Covered<String> {
        let mut items: Vec<String> = tenant
            .tools
            .iter()
            .filter(|t| {
                self.tool(t).map_or(Role::Other, |s| s.role) == role
                    && tenant.principal_for(t).is_some()
            })
            .cloned()
            .collect();
        let cap = self.coverage.max_tools_per_role.unwrap_or(usize::MAX);
        let left_out = items.iter().skip(cap).cloned().collect();
        items.truncate(cap);
        Covered { items, left_out }
    }

    /// Does the profile say `tool` writes (`role = "write"`)?
    pub fn writes(&self, tool: &str) -> bool {
        self.tool(tool).is_some_and(|s| s.role == Role::Write)
    }

    /// The list tools `tenant` may read back through: entitled, and some principal of
    /// it may call them.
    pub fn readable_lists(&self, tenant: &Tenant) -> Vec<String> {
        self.tools_with_role(tenant, Role::List)
            .into_iter()
            .filter(|t| tenant.principal_for(t).is_some())
            .collect()
    }

    /// The tools other tenants are entitled to and `tenant` is not, in profile order,
    /// each once.
    pub fn foreign_tools(&self, tenant: &Tenant) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for other in self.tenants.iter().filter(|t| t.id != tenant.id) {
            for tool in &other.tools {
                if !tenant.entitled(tool) && !out.contains(tool) {
                    out.push(tool.clone());
                }
            }
        }
        out
    }

    /// [`Profile::foreign_tools`], capped by `coverage.max_tools_per_role`.
    pub fn covered_foreign_tools(&self, tenant: &Tenant) -> Covered<String> {
        let mut items = self.foreign_tools(tenant);
        let cap = self.coverage.max_tools_per_role.unwrap_or(usize::MAX);
        let left_out = items.iter().skip(cap).cloned().collect();
        items.truncate(cap);
        Covered { items, left_out }
    }

    /// The tenants entitled to `tool`, in profile order.
    pub fn owners(&self, tool: &str) -> Vec<&str> {
        self.tenants
            .iter()
            .filter(|t| t.entitled(tool))
            .map(|t| t.id.as_str())
            .collect()
    }

    /// The tools of `role` that `tenant` is entitled to, in name order.
    pub fn tools_with_role(&self, tenant: &Tenant, role: Role) -> Vec<String> {
        self.tools
            .iter()
            .filter(|(name, spec)| spec.role == role && tenant.entitled(name))
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The table of the profile `base` names (relative to `path`), its own `extends`
    /// chain merged in. The base is first validated as a profile of its own, so its
    /// errors name its lines; a file met twice in the chain is a cycle.
    fn base_table(
        path: &Path,
        base: &str,
        chain: &mut Vec<PathBuf>,
    ) -> Result<toml::Table, ProfileError> {
        let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
        if chain.contains(&chain_key(&base_path)) {
            let mut names: Vec<String> = chain.iter().map(|p| p.display().to_string()).collect();
            names.push(base_path.display().to_string());
            return Err(ProfileError::Invalid {
                path: path.display().to_string(),
                message: format!("`extends` goes round in a circle: {}", names.join(" → ")),
            });
        }
        let base_text =
            std::fs::read_to_string(&base_path).map_err(|source| ProfileError::Read {
                path: base_path.display().to_string(),
                source,
            })?;
        Profile::parse_chained(&base_text, &base_path, chain)?;
        let mut table: toml::Table =
            toml::from_str(&base_text).map_err(|e| ProfileError::Parse {
                path: base_path.display().to_string(),
                message: e.to_string(),
            })?;
        if let Some(further) = table.get("extends").and_then(toml::Value::as_str) {
            let further = further.to_owned();
            chain.push(chain_key(&base_path));
            let merged = Self::base_table(&base_path, &further, chain);
            chain.pop();
            let mut merged = merged?;
            merged.extend(table);
            table = merged;
        }
        Ok(table)
    }

    /// Merges `own` (the text of `path`) over the profile `base` names, however long
    /// its chain of `extends`. A misspelt field in this file is reported with its line.
    fn extend(
        text: &str,
        own: toml::Table,
        path: &Path,
        base: &str,
        chain: &mut Vec<PathBuf>,
    ) -> Result<Profile, ProfileError> {
        let shown = path.display().to_string();
        let mut merged = Self::base_table(path, base, chain)?;
        for (key, value) in own {
            merged.insert(key, value);
        }
        toml::Value::Table(merged)
            .try_into()
            .map_err(|merged_error: toml::de::Error| {
                // This file alone locates an unknown field by line; otherwise say what the
                // merge found.
                let alone = toml::from_str::<Profile>(text).err().map(|e| e.to_string());
                let message = match alone {
                    Some(m) if m.contains("unknown field") || m.contains("unknown variant") => m,
                    _ => format!("{} (after merging over {base})", merged_error.message()),
                };
                ProfileError::Parse {
                    path: shown,
                    message: message.trim_end().to_owned(),
                }
            })
    }

    /// The directory relative paths resolve against (absolute).
    pub fn base_dir(&self) -> PathBuf {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        match &self.target.cwd {
            Some(cwd) => dir.join(cwd),
            None => dir,
        }
    }

    /// Reads a tenant's secret.
    pub fn secret(&self, secret: &Secret) -> Result<String, ProfileError> {
        let err = |message: String| ProfileError::Secret {
            path: self.path.display().to_string(),
            message,
        };
        match secret {
            Secret::Env(var) => std::env::var(var)
                .map_err(|_| err(format!("environment variable {var} is not set"))),
            Secret::File(file) => {
                let full = self.base_dir().join(file);
                std::fs::read_to_string(&full)
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                    .map_err(|e| err(format!("cannot read secret file {}: {e}", full.display())))
            }
        }
    }
}

/// How a file is recognised in an `extends` chain.
fn chain_key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Expands `${VAR}` and `${VAR:-default}` from the environment, and `{port}`.
pub fn expand(template: &str, port: Option<u16>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => out.push_str(&v),
            _ => out.push_str(default.unwrap_or("")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    match port {
        Some(p) => out.replace("{port}", &p.to_string()),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "x"
[target]
transport = "stdio"
command = ["srv", "--stdio"]
[[tenants]]
id = "acme"
credential = { env = "ACME" }
tools = ["a"]
"#;

    /// Three tenants, two entitled alike, with a tool each of their own.
    const COVERED: &str = r#"
name = "x"
[target]
transport = "stdio"
command = ["srv"]
[[tenants]]
id = "acme"
tools = ["w1", "w2", "l", "a_only"]
[[tenants]]
id = "initech"
tools = ["w1", "w2", "l", "a_only"]
[[tenants]]
id = "globex"
tools = ["w1", "l", "g_only"]
[tools.w1]
role = "write"
[tools.w2]
role = "write"
[tools.l]
role = "list"
"#;

    #[test]
    fn coverage_takes_one_tenant_per_entitlement_set_and_every_tool_unless_capped() {
        let mut p = Profile::parse(COVERED, Path::new("p.toml")).unwrap();
        let acting = p.acting_tenants();
        let ids: Vec<&str> = acting.items.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["acme", "globex"]);
        assert!(acting.left_out.is_empty());
        let acme = p.tenants[0].clone();
        assert_eq!(p.covered_tools(&acme, Role::Write).items, ["w1", "w2"]);
        // Undescribed tools are "other".
        assert_eq!(p.covered_tools(&acme, Role::Other).items, ["a_only"]);
        assert_eq!(p.foreign_tools(&acme), ["g_only"]);
        assert_eq!(p.owners("a_only"), ["acme", "initech"]);
        assert_eq!(p.readable_lists(&acme), ["l"]);
        p.coverage = Coverage {
            max_tools_per_role: Some(1),
            max_tenants: Some(1),
        };
        let capped = p.covered_tools(&acme, Role::Write);
        assert_eq!(
            (capped.items, capped.left_out),
            (vec!["w1".to_owned()], vec!["w2".to_owned()])
        );
        assert_eq!(p.acting_tenants().left_out, ["globex"]);
        let zero = COVERED.replace("[tools.w1]", "[coverage]\nmax_tenants = 0\n[tools.w1]");
        let err = Profile::parse(&zero, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("coverage.max_tenants must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn a_good_profile_parses() {
        let p = Profile::parse(GOOD, Path::new("p.toml")).unwrap();
        assert_eq!(p.target.transport, Transport::Stdio);
        assert_eq!(p.tenants[0].credential, Some(Secret::Env("ACME".into())));
    }

    #[test]
    fn a_misspelt_field_names_file_line_and_field() {
        let bad = GOOD.replace("tools = [\"a\"]", "tool = [\"a\"]");
        let err = Profile::parse(&bad, Path::new("dir/p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dir/p.toml"), "{err}");
        assert!(err.contains("line 9"), "{err}");
        assert!(err.contains("unknown field `tool`"), "{err}");
    }

    #[test]
    fn an_inline_secret_is_refused() {
        let bad = GOOD.replace("{ env = \"ACME\" }", "\"s3cret\"");
        let err = Profile::parse(&bad, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("credential"), "{err}");
    }

    #[test]
    fn http_needs_a_url_and_port_templates_need_a_command() {
        let http = "name='x'\n[target]\ntransport='http'\n";
        assert!(
            Profile::parse(http, Path::new("p"))
                .unwrap_err()
                .to_string()
                .contains("target.url is required")
        );
        let port = "name='x'\n[target]\ntransport='http'\nurl='http://127.0.0.1:{port}/mcp'\n";
        assert!(
            Profile::parse(port, Path::new("p"))
                .unwrap_err()
                .to_string()
                .contains("{port}")
        );
    }

    const TENANCY: &str = r#"
name = "x"
[target]
transport = "http"
url = "http://127.0.0.1:1/mcp"
[auth]
mint_sessions = true
stdio_env = "TOKEN"
[tokens]
placement = "header"
issuer = "https://iss"
audience = "urn:aud"
kid = "k1"
alg = "EdDSA"
key = { file = "k.key" }
lifetime_secs = 60
[[tenants]]
id = "acme"
tools = ["notes_create", "notes_list"]
principals = [{ id = "alice", tools = ["notes_list"] }]
[tools.notes_create]
role = "write"
action = "notes:write"
arguments = { title = "{marker}" }
resource = "tenant:{tenant}"
tenant_argument = "tenant_id"
"#;

    #[test]
    fn the_tenancy_sections_parse() {
        let p = Profile::parse(TENANCY, Path::new("p.toml")).unwrap();
        assert!(p.auth.mint_sessions);
        assert_eq!(p.auth.http_header, "Authorization");
        assert_eq!(p.tokens.placement, Placement::Header);
        assert_eq!(p.tokens.alg, Some(Alg::EdDSA));
        assert_eq!(p.tokens.key, Some(Secret::File("k.key".into())));
        assert_eq!(p.tokens.meta_key, "dev.mcp-tenancy/call-token");
        let acme = &p.tenants[0];
        assert_eq!(acme.principal_for("notes_list").unwrap().id, "alice");
        assert!(acme.principal_for("notes_create").is_none());
        let tool = p.tool("notes_create").unwrap();
        assert_eq!(tool.role, Role::Write);
        assert_eq!(tool.arguments["title"].as_str(), Some("{marker}"));
        assert_eq!(
            p.tools_with_role(acme, Role::Write),
            vec!["notes_create".to_string()]
        );
    }

    #[test]
    fn without_principals_one_harness_principal_may_call_everything() {
        let p = Profile::parse(GOOD, Path::new("p.toml")).unwrap();
        let principals = p.tenants[0].principals();
        assert_eq!(principals.len(), 1);
        assert_eq!(principals[0].id, DEFAULT_PRINCIPAL);
        assert_eq!(principals[0].tools, vec!["a".to_string()]);
        assert_eq!(p.tokens.placement, Placement::None);
    }

    #[test]
    fn misspelt_fields_in_the_tenancy_sections_name_line_and_field() {
        for (from, to, line, field) in [
            (
                "lifetime_secs = 60",
                "lifetime_sec = 60",
                16,
                "lifetime_sec",
            ),
            ("stdio_env = ", "stdio_evn = ", 8, "stdio_evn"),
            ("tenant_argument", "tenant_arg", 26, "tenant_arg"),
            ("{ id = \"alice\"", "{ ident = \"alice\"", 20, "ident"),
        ] {
            let bad = TENANCY.replace(from, to);
            let err = Profile::parse(&bad, Path::new("dir/p.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains("dir/p.toml"), "{err}");
            assert!(err.contains(&format!("line {line}")), "{field}: {err}");
            assert!(err.contains(&format!("unknown field `{field}`")), "{err}");
        }
        let bad = TENANCY.replace("role = \"write\"", "role = \"writer\"");
        let err = Profile::parse(&bad, Path::new("p"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("writer") && err.contains("line 22"), "{err}");
    }

    #[test]
    fn token_settings_must_fit_together() {
        let err = |from: &str, to: &str| {
            Profile::parse(&TENANCY.replace(from, to), Path::new("p"))
                .unwrap_err()
                .to_string()
        };
        assert!(err("alg = \"EdDSA\"\n", "").contains("needs alg"));
        assert!(
            err(
                "placement = \"header\"",
                "placement = \"meta\"\ncommand = [\"mint\"]"
            )
            .contains("not both")
        );
        assert!(err("key = { file = \"k.key\" }", "key = \"inline\"").contains("key"));
        assert!(
            err("tools = [\"notes_list\"] }", "tools = [\"charge\"] }").contains("not entitled")
        );
        let stdio = TENANCY
            .replace(
                "transport = \"http\"",
                "transport = \"stdio\"\ncommand = [\"s\"]",
            )
            .replace("url = \"http://127.0.0.1:1/mcp\"\n", "");
        let e = Profile::parse(&stdio, Path::new("p"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs transport = \"http\""), "{e}");
    }

    #[test]
    fn templates_expand_env_defaults_and_port() {
        assert_eq!(
            expand("${MCPT_SURELY_UNSET:-a/b}/x:{port}", Some(9)),
            "a/b/x:9"
        );
        assert_eq!(expand("plain", None), "plain");
    }

    #[test]
    fn extends_replaces_top_level_tables_and_keeps_line_numbers_for_typos() {
        let dir = std::env::temp_dir().join(format!("mcpt-extends-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = "name = \"base\"\n[target]\ntransport = \"http\"\nurl = \"http://127.0.0.1:1/mcp\"\n\n[[tenants]]\nid = \"acme\"\ntools = [\"t\"]\n";
        std::fs::write(dir.join("base.toml"), base).unwrap();
        let child = "extends = \"base.toml\"\nname = \"child\"\n[target]\ntransport = \"stdio\"\ncommand = [\"srv\"]\n";
        let p = Profile::parse(child, &dir.join("child.toml")).unwrap();
        assert_eq!(
            (p.name.as_str(), p.target.transport),
            ("child", Transport::Stdio)
        );
        assert_eq!(p.target.url, None, "[target] is replaced, not merged");
        assert_eq!(
            p.tenants[0].id, "acme",
            "untouched tables come from the base"
        );
        // Any depth: a grandchild over the child over the base; a cycle is refused.
        std::fs::write(dir.join("child.toml"), child).unwrap();
        let grandchild = "extends = \"child.toml\"\nname = \"grandchild\"\n";
        let g = Profile::parse(grandchild, &dir.join("grandchild.toml")).unwrap();
        assert_eq!(
            (
                g.name.as_str(),
                g.target.transport,
                g.tenants[0].id.as_str()
            ),
            ("grandchild", Transport::Stdio, "acme")
        );
        std::fs::write(
            dir.join("loop-a.toml"),
            "extends = \"loop-b.toml\"\nname = \"a\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("loop-b.toml"),
            "extends = \"loop-a.toml\"\nname = \"b\"\n",
        )
        .unwrap();
        let err = Profile::load(&dir.join("loop-a.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("circle") && err.contains("loop-b.toml"),
            "{err}"
        );
        let typo = child.replace("command", "comand");
        let err = Profile::parse(&typo, &dir.join("child.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 5") && err.contains("comand"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// The `profile_parse` fuzz oracle (`fuzz/fuzz_targets/profile_parse.rs`; seeds replayed
/// by `cargo test`): any bytes as a profile file. Text that is not UTF-8 is refused as
/// the loader refuses it; every other input parses or gets a clear error — one that
/// names the file and says what is wrong — and never a panic. A profile that parses
/// meets the loader's own invariants (unique tenant ids, a command for stdio).
pub mod fuzzing {
    use super::{Profile, ProfileError, Transport};
    use std::path::Path;

    pub fn check_parse(data: &[u8]) {
        let Ok(text) = std::str::from_utf8(data) else {
            return;
        };
        // A file name no fuzz input can make `extends` meet (a cycle is found by name).
        let path = Path::new("/nonexistent/mcp-tenancy-fuzz/profile.toml");
        match Profile::parse(text, path) {
            Ok(p) => {
                let mut ids: Vec<&str> = p.tenants.iter().map(|t| t.id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(
                    ids.len(),
                    p.tenants.len(),
                    "a parsed profile repeats a tenant id"
                );
                assert!(
                    p.target.transport != Transport::Stdio || !p.target.command.is_empty(),
                    "a parsed stdio profile has no command"
                );
            }
            Err(e) => {
                let shown = e.to_string();
                let (ProfileError::Read { path: named, .. }
                | ProfileError::Parse { path: named, .. }
                | ProfileError::Invalid { path: named, .. }
                | ProfileError::Secret { path: named, .. }) = &e;
                assert!(!named.is_empty(), "an error that names no file: {shown}");
                assert!(
                    shown.len() > named.len() + 10,
                    "an error that says nothing: {shown:?}"
                );
            }
        }
    }
}
