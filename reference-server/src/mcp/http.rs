//! Streamable HTTP: axum in front of `rmcp`'s `StreamableHttpService`.
//!
//! Every request first passes [`guard`], which
//! - refuses a foreign `Origin` with 403 (DNS rebinding; `rmcp` checks `Host`),
//! - bounds the body (413) and frames it strictly ([`crate::wire`]: 400 with a JSON-RPC
//!   error body for malformed JSON, batches, duplicate members, bad params),
//! - authenticates EVERY request: `Authorization: Bearer <session token>`, verified
//!   against the policy (401 with `WWW-Authenticate` when missing or invalid), and
//!   attaches the [`Session`] for the handler;
//! - binds each `Mcp-Session-Id` to the tenant and principal that opened it: presented
//!   with anyone else's bearer, the session reads as unknown (404), so a session id alone
//!   authorises nothing and reveals nothing. A session id without a live binding is
//!   unknown to every bearer (the binding fails closed);
//! - bounds sessions in total, per tenant and per principal (`[sessions]`): past a cap,
//!   `initialize` gets 429 with `Retry-After`; a session unused for `idle_secs` is ended
//!   — its binding and the SDK's worker both — by a sweeper;
//! - bounds each tenant's requests in flight (`[limits] max_in_flight_per_tenant`, the
//!   core's [`Budgets`](crate::core::budget::Budgets)) and each session's open GET
//!   streams (`[connections] max_streams_per_session`): 429 with `Retry-After` past
//!   either; a body must arrive within `body_timeout_secs` (408);
//! - marks the connection authenticated for [`super::listen`], which bounds connections
//!   and closes those that send no authenticated request in time.
//!
//! Sessions, `MCP-Protocol-Version`, `Mcp-Method`/`Mcp-Name` header checks and SSE are
//! `rmcp`'s. Session ids are random UUIDv4 (122 bits from the OS generator).

use super::McpServer;
use super::listen::{ConnTicket, Conns};
use crate::config::{ConnectionLimits, HttpConfig, SessionLimits};
use crate::core::Core;
use crate::core::mutants::Holes;
use crate::core::policy::Session;
use crate::wire;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;

/// What the guard needs to know.
pub struct Guard {
    allowed_origins: Vec<String>,
    max_message_bytes: usize,
    core: Arc<Core>,
    /// `Mcp-Session-Id` → the (tenant, principal) whose bearer opened it.
    sessions: Mutex<Bindings>,
    /// The SDK's sessions, so that an ended binding ends its session too.
    manager: Arc<LocalSessionManager>,
    /// The connections under this guard, and their limits.
    conns: Arc<Conns>,
    /// The `bare-id-routing` mutant's pending-request table: bare JSON-RPC id → the
    /// requests waiting for an answer with that id, across all sessions.
    waiting: Mutex<HashMap<String, Vec<tokio::sync::oneshot::Sender<Response>>>>,
}

impl Guard {
    pub fn new(
        config: &HttpConfig,
        limits: SessionLimits,
        connections: ConnectionLimits,
        max_message_bytes: usize,
        core: Arc<Core>,
    ) -> Self {
        let holes = core.policy().holes();
        Self {
            allowed_origins: config.allowed_origins.clone(),
            max_message_bytes,
            core,
            sessions: Mutex::new(Bindings::new(
                limits,
                connections.max_streams_per_session,
                holes,
            )),
            manager: Arc::new({
                // The sweeper ends idle sessions; the SDK's own idle limit stays as a
                // safety net behind it, never ahead of it.
                let mut m = LocalSessionManager::default();
                m.session_config.keep_alive = Some(Duration::from_secs(limits.idle_secs + 60));
                m
            }),
            conns: Conns::new(connections),
            waiting: Mutex::default(),
        }
    }

    /// Ends every session unused for longer than `idle_secs`; forgets bindings whose
    /// SDK session is gone; ends SDK sessions bound to no one for [`ORPHAN_GRACE`]
    /// (none should exist: a safety net). Runs until the server stops.
    async fn sweep(self: Arc<Self>) {
        use rmcp::transport::streamable_http_server::session::SessionManager;
        let idle = Duration::from_secs(self.sessions().limits.idle_secs.max(1));
        let every = (idle / 4).clamp(Duration::from_millis(250), Duration::from_secs(30));
        let mut unbound_since: HashMap<String, Instant> = HashMap::new();
        loop {
            tokio::time::sleep(every).await;
            let mut expired = self.sessions().expire(Instant::now(), idle);
            let live: std::collections::HashSet<String> = self
                .manager
                .sessions
                .read()
                .await
                .keys()
                .map(|id| id.to_string())
                .collect();
            let unbound = {
                let mut b = self.sessions();
                b.forget_dead(&live);
                // (The `oldest-binding-unbound` mutant's unbound sessions stay alive.)
                if b.holes.oldest_binding_unbound() {
                    Default::default()
                } else {
                    b.unbound(&live)
                }
            };
            let now = Instant::now();
            unbound_since.retain(|id, _| unbound.contains(id));
            for id in unbound {
                unbound_since.entry(id).or_insert(now);
            }
            let orphans: Vec<String> = unbound_since
                .iter()
                .filter(|(_, since)| now.saturating_duration_since(**since) >= ORPHAN_GRACE)
                .map(|(id, _)| id.clone())
                .collect();
            for id in orphans {
                unbound_since.remove(&id);
                expired.push(id);
            }
            let ended = !expired.is_empty();
            for id in expired {
                let _ = self.manager.close_session(&id.as_str().into()).await;
            }
            if ended {
                // The sessions' workers end a moment after they are told to.
                tokio::time::sleep(Duration::from_millis(250)).await;
                give_back_freed_memory();
            }
        }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, Bindings> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Returns the memory of ended sessions to the system. glibc's allocator keeps freed
/// memory in its arenas: after the sweeper ends a thousand sessions the resident size
/// stays where it was, and the next round of sessions grows it further (measured:
/// +60 MB, +30 MB, +20 MB a round); trimmed, it falls back to the baseline.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory held by the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// How long an SDK session may stay bound to no one (an `initialize` still on its way)
/// before the sweeper ends it.
const ORPHAN_GRACE: Duration = Duration::from_secs(10);

/// Who opened a session, and when it was last used.
struct Binding {
    tenant: String,
    principal: String,
    used: Instant,
}

/// What a session id is to a request's bearer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Opened by this tenant and principal.
    Owner,
    /// Another's, or bound to no one (evicted, expired, never issued): unknown.
    Unknown,
}

/// Session bindings, bounded in total, per tenant and per principal: past a cap a new
/// session is refused (never an old one silently unbound while its session lives on).
/// A session id without a binding is unknown to every bearer.
struct Bindings {
    by_id: HashMap<String, Binding>,
    per_tenant: HashMap<String, usize>,
    per_principal: HashMap<(String, String), usize>,
    /// Sessions being opened (admitted, not yet issued), per principal: counted against
    /// the caps like open ones, so that concurrent `initialize`s cannot overshoot them.
    opening: HashMap<(String, String), usize>,
    /// Open GET streams per session.
    streams: HashMap<String, usize>,
    max_streams: usize,
    limits: SessionLimits,
    holes: Holes,
    /// The `oldest-binding-unbound` mutant's insertion order.
    order: VecDeque<String>,
}

/// How many bindings the `oldest-binding-unbound` mutant keeps before it unbinds the
/// oldest.
const MUTANT_BINDING_TABLE: usize = 1_000;

impl Bindings {
    fn new(limits: SessionLimits, max_streams: usize, holes: Holes) -> Self {
        Self {
            by_id: HashMap::new(),
            per_tenant: HashMap::new(),
            per_principal: HashMap::new(),
            opening: HashMap::new(),
            streams: HashMap::new(),
            max_streams,
            limits,
            holes,
            order: VecDeque::new(),
        }
    }

    /// May `session` open another session? `Err` names the cap it is at. `Ok` holds a
    /// place for it until [`Bindings::opened`].
    fn admits(&mut self, session: &Session) -> Result<(), &'static str> {
        let principal = (session.tenant().to_owned(), session.principal().to_owned());
        if !(self.holes.session_caps_off() || self.holes.oldest_binding_unbound()) {
            let l = &self.limits;
            let opening = |f: &dyn Fn(&(String, String)) -> bool| -> usize {
                self.opening
                    .iter()
                    .filter(|(k, _)| f(k))
                    .map(|(_, n)| n)
                    .sum()
            };
            let total = self.by_id.len() + opening(&|_| true);
            let tenant = self.per_tenant.get(session.tenant()).copied().unwrap_or(0)
                + opening(&|k| k.0 == session.tenant());
            let own = self.per_principal.get(&principal).copied().unwrap_or(0)
                + self.opening.get(&principal).copied().unwrap_or(0);
            if total >= l.max_total {
                return Err("the server's session limit");
            } else if tenant >= l.max_per_tenant {
                return Err("this tenant's session limit");
            } else if own >= l.max_per_principal {
                return Err("this principal's session limit");
            }
        }
        *self.opening.entry(principal).or_default() += 1;
        Ok(())
    }

    /// The place [`Bindings::admits`] held for `tenant`/`principal` is taken (by
    /// `issued`, bound now) or given back.
    fn opened(&mut self, tenant: &str, principal: &str, issued: Option<&str>, now: Instant) {
        let key = (tenant.to_owned(), principal.to_owned());
        if let Some(n) = self.opening.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.opening.remove(&key);
            }
        }
        if let Some(id) = issued {
            self.insert(id, tenant, principal, now);
        }
    }

    fn insert(&mut self, id: &str, tenant: &str, principal: &str, now: Instant) {
        if self.by_id.contains_key(id) {
            return;
        }
        self.by_id.insert(
            id.to_owned(),
            Binding {
                tenant: tenant.to_owned(),
                principal: principal.to_owned(),
                used: now,
            },
        );
        *self.per_tenant.entry(tenant.to_owned()).or_default() += 1;
        *self
            .per_principal
            .entry((tenant.to_owned(), principal.to_owned()))
            .or_default() += 1;
        if self.holes.oldest_binding_unbound() {
            // Mutant: a bounded table that forgets the oldest binding — and leaves its
            // session alive in the SDK.
            self.order.push_back(id.to_owned());
            while self.order.len() > MUTANT_BINDING_TABLE {
                if let Some(old) = self.order.pop_front() {
                    self.remove(&old);
                }
            }
        }
    }

    /// What `id` is to `session`; the owner's use keeps it alive.
    fn access(&mut self, id: &str, session: &Session, now: Instant) -> Access {
        match self.by_id.get_mut(id) {
            Some(b) if b.tenant == session.tenant() && b.principal == session.principal() => {
                b.used = now;
                Access::Owner
            }
            // Mutant: an id bound to no one is taken as nobody's, so anyone's.
            None if self.holes.oldest_binding_unbound() => Access::Owner,
            _ => Access::Unknown,
        }
    }

    /// Opens one more GET stream on `id`, unless it has its share.
    fn open_stream(&mut self, id: &str) -> bool {
        let n = self.streams.entry(id.to_owned()).or_default();
        if *n >= self.max_streams {
            return false;
        }
        *n += 1;
        true
    }

    fn close_stream(&mut self, id: &str) {
        if let Some(n) = self.streams.get_mut(id) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.streams.remove(id);
            }
        }
    }

    fn remove(&mut self, id: &str) {
        let Some(b) = self.by_id.remove(id) else {
            return;
        };
        let drop_one = |n: &mut usize| *n = n.saturating_sub(1);
        if let Some(n) = self.per_tenant.get_mut(&b.tenant) {
            drop_one(n);
        }
        if let Some(n) = self.per_principal.get_mut(&(b.tenant, b.principal)) {
            drop_one(n);
        }
    }

    /// Forgets the bindings of sessions the SDK no longer has (ended by its own limits).
    fn forget_dead(&mut self, live: &std::collections::HashSet<String>) {
        let dead: Vec<String> = self
            .by_id
            .keys()
            .filter(|id| !live.contains(*id))
            .cloned()
            .collect();
        for id in dead {
            self.remove(&id);
        }
    }

    /// The SDK's sessions that no binding knows of.
    fn unbound(
        &self,
        live: &std::collections::HashSet<String>,
    ) -> std::collections::HashSet<String> {
        live.iter()
            .filter(|id| !self.by_id.contains_key(*id))
            .cloned()
            .collect()
    }

    /// Unbinds every session unused for longer than `idle`; returns their ids (to end).
    fn expire(&mut self, now: Instant, idle: Duration) -> Vec<String> {
        let old: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, b)| now.saturating_duration_since(b.used) > idle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &old {
            self.remove(id);
        }
        old
    }
}

/// 429 for an `initialize` past a session cap: a JSON-RPC error naming it, and when to
/// try again.
fn too_many_sessions(which: &str) -> Response {
    let e = wire::FrameError {
        code: wire::INVALID_REQUEST,
        message: format!(
            "Too many sessions: {which} is reached; end a session (DELETE) or retry later"
        ),
        id: Value::Null,
        too_large: false,
    };
    let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, &e);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

const SESSION_HEADER: &str = "mcp-session-id";

/// 401 with a `WWW-Authenticate` challenge (RFC 6750 §3) and a JSON-RPC error body.
fn unauthorized(invalid: bool) -> Response {
    let challenge = if invalid {
        r#"Bearer realm="mcp-tenancy", error="invalid_token""#
    } else {
        r#"Bearer realm="mcp-tenancy""#
    };
    let e = wire::FrameError {
        code: i64::from(crate::core::UNAUTHORIZED),
        message: "Unauthorized".into(),
        id: Value::Null,
        too_large: false,
    };
    let mut response = json_error(StatusCode::UNAUTHORIZED, &e);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

/// Why a request is not authenticated.
enum BearerError {
    Missing,
    Invalid,
}

/// Verifies the bearer of a request.
fn authenticate(guard: &Guard, headers: &axum::http::HeaderMap) -> Result<Session, BearerError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(BearerError::Missing)?;
    // Size first: an oversized bearer is refused before a byte of it is decoded.
    if value.len() > "Bearer ".len() + crate::core::jws::MAX_TOKEN_BYTES {
        tracing::info!(bytes = value.len(), "bearer refused: too long");
        return Err(BearerError::Invalid);
    }
    let token = bearer_of(headers).ok_or(BearerError::Invalid)?;
    let channel = headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    guard
        .core
        .policy()
        .authenticate_on(token, channel, unix_now())
        .map_err(|e| {
            tracing::info!(reason = %e, "bearer refused");
            BearerError::Invalid
        })
}

/// The token of a request's `Authorization: Bearer` header.
fn bearer_of(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// How often a GET stream's bearer is judged again.
const STREAM_RECHECK: Duration = Duration::from_secs(1);

/// `response`, a GET stream, ended once the bearer it was opened with stops verifying —
/// expired past the skew, or signed by a key a reload took away — judged every
/// [`STREAM_RECHECK`]; `slot` is held as long as the stream.
fn judged(response: Response, guard: Arc<Guard>, bearer: String, slot: StreamSlot) -> Response {
    let (parts, body) = response.into_parts();
    let mut tick = tokio::time::interval(STREAM_RECHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let body = Judged {
        inner: body,
        guard,
        bearer,
        tick,
        slot,
    };
    Response::from_parts(parts, Body::new(body))
}

/// The body of a GET stream that ends when its bearer stops verifying.
struct Judged {
    inner: Body,
    guard: Arc<Guard>,
    bearer: String,
    tick: tokio::time::Interval,
    slot: StreamSlot,
}

impl hyper::body::Body for Judged {
    type Data = hyper::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        while this.tick.poll_tick(cx).is_ready() {
            if let Err(e) = this.guard.core.policy().authenticate_on(
                &this.bearer,
                Some(&this.slot.session),
                unix_now(),
            ) {
                tracing::info!(reason = %e, "GET stream ended: its bearer no longer verifies");
                return std::task::Poll::Ready(None);
            }
        }
        std::pin::Pin::new(&mut this.inner).poll_frame(cx)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Does `origin` (`scheme://host[:port]`) match one allow-list entry?
/// Entries are `scheme://host[:port]`; `:*` matches any port; `null` matches `null`.
pub fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    fn split(s: &str) -> Option<(&str, &str, Option<&str>)> {
        let (scheme, rest) = s.split_once("://")?;
        let rest = rest.trim_end_matches('/');
        // IPv6 literals keep their brackets: [::1]:8080
        let (host, port) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains(']') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        Some((scheme, host, port))
    }
    let default_port = |scheme: &str| match scheme {
        "https" => Some("443"),
        "http" => Some("80"),
        _ => None,
    };
    let Some((scheme, host, port)) = split(origin) else {
        return allowed.iter().any(|a| a == origin);
    };
    let port = port.or(default_port(scheme));
    allowed.iter().any(|entry| match split(entry) {
        Some((s, h, p)) => {
            s.eq_ignore_ascii_case(scheme)
                && h.eq_ignore_ascii_case(host)
                && match p {
                    Some("*") => true,
                    Some(p) => Some(p) == port,
                    None => default_port(s) == port,
                }
        }
        None => entry == origin,
    })
}

fn json_error(status: StatusCode, error: &wire::FrameError) -> Response {
    let mut response = (status, error.to_response().to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// How much of an oversized body is read and discarded before answering 413, so that
/// an ordinary client sees the 413 instead of a reset while it is still sending.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a body of at most `max` bytes. A larger body is discarded as it arrives (up to
/// [`DRAIN_LIMIT`]; memory stays at `max`) and its size so far is the error.
async fn read_bounded(mut body: Body, max: usize) -> Result<Bytes, usize> {
    use http_body_util::BodyExt;
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else { break };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= max {
            kept.extend_from_slice(&data);
        } else {
            kept = Vec::new();
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > max {
        Err(seen)
    } else {
        Ok(Bytes::from(kept))
    }
}

/// `response`, and the connection closed after it (what is left of the request, if
/// anything, is not read).
fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A session id shaped like the SDK's (a UUIDv4), drawn afresh: never issued.
fn never_issued_id() -> String {
    let mut b = [0u8; 16];
    let _ = crate::core::random_fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// 429 with `Retry-After` and a JSON-RPC error: a per-tenant or per-session bound.
fn too_many(message: String, retry_after: &'static str) -> Response {
    let e = wire::FrameError {
        code: wire::INVALID_REQUEST,
        message,
        id: Value::Null,
        too_large: false,
    };
    let mut response = json_error(StatusCode::TOO_MANY_REQUESTS, &e);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static(retry_after));
    response
}

/// `response` with `held` kept alive until its body has been sent (or dropped): a
/// stream slot or an in-flight permit lasts as long as the answer it bounds.
fn holding<T: Send + 'static>(response: Response, held: T) -> Response {
    use http_body_util::BodyExt;
    let (parts, body) = response.into_parts();
    let body = body.map_frame(move |frame| {
        let _ = &held;
        frame
    });
    Response::from_parts(parts, Body::new(body))
}

/// A session being opened; dropping it binds the issued id or gives the place back.
struct Opening {
    guard: Arc<Guard>,
    tenant: String,
    principal: String,
    issued: Option<String>,
}

impl Drop for Opening {
    fn drop(&mut self) {
        self.guard.sessions().opened(
            &self.tenant,
            &self.principal,
            self.issued.as_deref(),
            Instant::now(),
        );
    }
}

/// An open GET stream of one session; dropping it closes the slot.
struct StreamSlot {
    guard: Arc<Guard>,
    session: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.guard.sessions().close_stream(&self.session);
    }
}

/// The middleware in front of the SDK.
pub async fn guard(State(guard): State<Arc<Guard>>, mut request: Request, next: Next) -> Response {
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .is_ok_and(|o| origin_allowed(o, &guard.allowed_origins));
        if !ok {
            tracing::info!(origin = ?origin, "refused foreign Origin");
            let e = wire::FrameError {
                code: wire::INVALID_REQUEST,
                message: "Forbidden: Origin not allowed".into(),
                id: Value::Null,
                too_large: false,
            };
            return json_error(StatusCode::FORBIDDEN, &e);
        }
    }
    let session = match authenticate(&guard, request.headers()) {
        Ok(s) => s,
        Err(e) => return unauthorized(matches!(e, BearerError::Invalid)),
    };
    if let Some(ticket) = request.extensions().get::<ConnTicket>()
        && !ticket.authenticated(session.tenant())
    {
        tracing::info!(
            tenant = session.tenant(),
            "connection refused: the tenant holds its share"
        );
        return closing(too_many(
            "Too many connections for this tenant; reuse one or retry later".into(),
            "1",
        ));
    }
    let session_id = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Another's session, or one bound to no one: unknown, whoever asks — answered by
    // the SDK itself for an id it never issued, so that the answer (status, headers,
    // body, for every method and Accept header) cannot tell a live foreign session
    // from a session that does not exist.
    let unknown = session_id
        .as_deref()
        .is_some_and(|id| guard.sessions().access(id, &session, Instant::now()) == Access::Unknown);
    if unknown
        && guard.core.policy().holes().session_id_oracle()
        && session_id
            .as_deref()
            .is_some_and(|id| guard.sessions().by_id.contains_key(id))
    {
        return (StatusCode::NOT_FOUND, "session not found").into_response();
    }
    if unknown {
        tracing::info!(
            tenant = session.tenant(),
            "session id unknown, or presented with another tenant's or principal's bearer"
        );
        if let Ok(never_issued) = HeaderValue::from_str(&never_issued_id()) {
            request.headers_mut().insert(SESSION_HEADER, never_issued);
        }
    }
    // Past here `session_id` is a session of this bearer's, or none was presented.
    let presented = session_id.is_some();
    let session_id = session_id.filter(|_| !unknown);
    // A POST without a session id opens one (initialize): within the caps only.
    let opening = request.method() == Method::POST && !presented;
    if opening && let Err(which) = guard.sessions().admits(&session) {
        tracing::info!(tenant = session.tenant(), cap = which, "session refused");
        return too_many_sessions(which);
    }
    // The place held for it is taken or given back however this request ends.
    let place = opening.then(|| Opening {
        guard: Arc::clone(&guard),
        tenant: session.tenant().to_owned(),
        principal: session.principal().to_owned(),
        issued: None,
    });
    let (mut parts, body) = request.into_parts();
    if parts.method == Method::GET
        && let Some(id) = &session_id
    {
        // A long-lived stream: bounded per session, and not counted as in flight.
        if !guard.sessions().open_stream(id) {
            tracing::info!(
                tenant = session.tenant(),
                "GET stream refused: the session holds its share"
            );
            return too_many(
                format!(
                    "Too many open streams on this session (limit {}); close one or retry later",
                    guard.conns.limits().max_streams_per_session
                ),
                "5",
            );
        }
        let slot = StreamSlot {
            guard: Arc::clone(&guard),
            session: id.clone(),
        };
        let bearer = bearer_of(&parts.headers).unwrap_or_default().to_owned();
        parts.extensions.insert(session);
        let response = next.run(Request::from_parts(parts, body)).await;
        if guard.core.policy().holes().stream_outlives_bearer() || !response.status().is_success() {
            return holding(response, slot);
        }
        return judged(response, guard, bearer, slot);
    }
    let in_flight = match guard.core.budgets().try_start(session.tenant()) {
        Ok(permit) => permit,
        Err(over) => {
            tracing::info!(
                tenant = session.tenant(),
                "request refused: the tenant is at its in-flight budget"
            );
            return too_many(over.to_string(), "1");
        }
    };
    parts.extensions.insert(session);
    if parts.method != Method::POST {
        let deleting = parts.method == Method::DELETE;
        let response = next.run(Request::from_parts(parts, body)).await;
        if deleting
            && response.status().is_success()
            && let Some(id) = &session_id
        {
            guard.sessions().remove(id);
        }
        return holding(response, in_flight);
    }
    let body_timeout = Duration::from_secs(guard.conns.limits().body_timeout_secs);
    let bytes =
        match tokio::time::timeout(body_timeout, read_bounded(body, guard.max_message_bytes)).await
        {
            Ok(Ok(b)) => b,
            Ok(Err(seen)) => {
                let e = wire::FrameError::oversized(seen, guard.max_message_bytes);
                return closing(json_error(StatusCode::PAYLOAD_TOO_LARGE, &e));
            }
            Err(_) => {
                let e = wire::FrameError {
                    code: wire::INVALID_REQUEST,
                    message: format!(
                        "Request Timeout: the body did not arrive within {} s",
                        body_timeout.as_secs()
                    ),
                    id: Value::Null,
                    too_large: false,
                };
                return closing(json_error(StatusCode::REQUEST_TIMEOUT, &e));
            }
        };
    if let Err(e) = wire::inspect(&bytes, guard.max_message_bytes) {
        let status = if e.too_large {
            StatusCode::PAYLOAD_TOO_LARGE
        } else {
            StatusCode::BAD_REQUEST
        };
        return json_error(status, &e);
    }
    if guard.core.policy().holes().bare_id_routing()
        && let Some(id) = tools_call_id(&bytes)
    {
        let inner = next.run(Request::from_parts(parts, Body::from(bytes)));
        return holding(misrouted(&guard, id, inner).await, in_flight);
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    let Some(mut place) = place else {
        return holding(next.run(request).await, in_flight);
    };
    // An `initialize` runs to its end in a task of its own: the SDK starts a session
    // before it answers, and a client that hangs up in that moment must not leave a
    // session behind that no binding (and no cap) knows of.
    let opening = tokio::spawn(async move {
        let response = next.run(request).await;
        place.issued = response
            .headers()
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        drop(place);
        response
    });
    let response = opening
        .await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    holding(response, in_flight)
}

/// The id of a `tools/call` request, as its JSON text (`7`, `"a"`).
fn tools_call_id(body: &[u8]) -> Option<String> {
    let message: Value = serde_json::from_slice(body).ok()?;
    (message.get("method")? == "tools/call").then(|| message.get("id").map(Value::to_string))?
}

/// How long the `bare-id-routing` mutant's dispatcher gathers answers before it hands
/// them out.
const FLUSH_TICK: std::time::Duration = std::time::Duration::from_millis(20);

/// The `bare-id-routing` mutant: answers go through one table keyed by the bare
/// JSON-RPC id, shared by every session, each to the request that most recently asked
/// with that id. A request alone with its id gets its own answer; two sessions with
/// the same id pending at the same moment get each other's.
async fn misrouted(
    guard: &Guard,
    id: String,
    inner: impl std::future::Future<Output = Response>,
) -> Response {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let lock = || guard.waiting.lock().unwrap_or_else(|p| p.into_inner());
    lock().entry(id.clone()).or_default().push(tx);
    let (parts, body) = inner.await.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    tokio::time::sleep(FLUSH_TICK).await;
    let waiter = {
        let mut table = lock();
        let waiter = table.get_mut(&id).and_then(Vec::pop);
        if table.get(&id).is_some_and(Vec::is_empty) {
            table.remove(&id);
        }
        waiter
    };
    if let Some(w) = waiter {
        let _ = w.send(Response::from_parts(parts, Body::from(body)));
    }
    rx.await
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Builds the axum application: the MCP endpoint at `config.path` behind [`guard`],
/// and the connection table the accept loop must use with it.
pub fn router(server: McpServer, config: &HttpConfig, guard_state: Guard) -> (Router, Arc<Conns>) {
    let sdk_config = StreamableHttpServerConfig::default()
        .with_allowed_hosts(config.allowed_hosts.clone())
        // Origin is validated by the guard (403 with a JSON-RPC body); the SDK's own
        // check stays on too, with the same list, as a second line.
        .with_allowed_origins(config.allowed_origins.clone())
        .with_max_request_body_bytes(guard_state.max_message_bytes);
    let guard_state = Arc::new(guard_state);
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::clone(&guard_state.manager),
        sdk_config,
    );
    tokio::spawn(Arc::clone(&guard_state).sweep());
    let conns = Arc::clone(&guard_state.conns);
    let app = Router::new()
        .route_service(&config.path, service)
        .layer(middleware::from_fn_with_state(guard_state, guard));
    (app, conns)
}

/// The path [`with_stats`] answers at.
pub const STATS_PATH: &str = "/stats";

/// `serve --publish-stats` (load runs, operators): `GET /stats` answers the
/// verified-token cache's counters as JSON — `{"verified_tokens": {"bearer_hits": …}}`,
/// aggregate counts of the policy in force, no tenant's data — outside the guard, so
/// a load generator can read them between phases. Off by default.
pub fn with_stats((app, conns): (Router, Arc<Conns>), core: Arc<Core>) -> (Router, Arc<Conns>) {
    let stats = move || {
        let core = Arc::clone(&core);
        async move {
            let body = serde_json::json!({ "verified_tokens": core.policy().verified().stats() });
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body.to_string(),
            )
        }
    };
    (app.route(STATS_PATH, axum::routing::get(stats)), conns)
}

/// Binds `addr` and serves until Ctrl-C / SIGTERM, through the bounded accept loop
/// ([`super::listen`]). Prints the bound URL on stderr
/// (`listening on http://127.0.0.1:PORT/mcp`), so port 0 can be used.
pub async fn serve_http(
    (app, conns): (Router, Arc<Conns>),
    addr: SocketAddr,
    path: &str,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    eprintln!("mcp-tenancy-server: listening on http://{local}{path}");
    super::listen::serve(listener, app, conns, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::testing as fixtures;

    fn limits(per_tenant: usize) -> SessionLimits {
        SessionLimits {
            max_total: 100,
            max_per_tenant: per_tenant,
            max_per_principal: 100,
            idle_secs: 60,
        }
    }

    #[test]
    fn a_binding_fails_closed_after_expiry_and_for_every_other_bearer() {
        let policy = fixtures::policy(None);
        let (acme, globex) = (
            fixtures::session(&policy, "acme"),
            fixtures::session(&policy, "globex"),
        );
        let mut b = Bindings::new(limits(10), 4, Holes(None));
        let t0 = Instant::now();
        b.insert("s1", acme.tenant(), acme.principal(), t0);
        assert_eq!(b.access("s1", &acme, t0), Access::Owner);
        assert_eq!(b.access("s1", &globex, t0), Access::Unknown);
        // Never issued: unknown to everyone, the SDK never asked.
        assert_eq!(b.access("s2", &acme, t0), Access::Unknown);
        // Used just now, so not idle yet; then idle past the limit: ended.
        let later = t0 + Duration::from_secs(30);
        assert_eq!(b.access("s1", &acme, later), Access::Owner);
        assert!(
            b.expire(later + Duration::from_secs(59), Duration::from_secs(60))
                .is_empty()
        );
        let gone = b.expire(later + Duration::from_secs(61), Duration::from_secs(60));
        assert_eq!(gone, ["s1"]);
        for who in [&acme, &globex] {
            assert_eq!(b.access("s1", who, later), Access::Unknown);
        }
    }

    #[test]
    fn sessions_past_a_cap_are_refused_and_ending_one_makes_room() {
        let policy = fixtures::policy(None);
        let (acme, globex) = (
            fixtures::session(&policy, "acme"),
            fixtures::session(&policy, "globex"),
        );
        let mut b = Bindings::new(limits(2), 4, Holes(None));
        let now = Instant::now();
        for id in ["a1", "a2"] {
            assert!(b.admits(&acme).is_ok());
            b.opened(acme.tenant(), acme.principal(), Some(id), now);
        }
        assert_eq!(b.admits(&acme), Err("this tenant's session limit"));
        // A place held by an initialize in flight counts, so concurrent ones cannot
        // overshoot; given back, it frees the room.
        b.remove("a2");
        assert!(b.admits(&acme).is_ok());
        assert_eq!(b.admits(&acme), Err("this tenant's session limit"));
        b.opened(acme.tenant(), acme.principal(), None, now);
        assert!(b.admits(&acme).is_ok());
        b.opened(acme.tenant(), acme.principal(), Some("a2"), now);
        // One tenant's flood leaves the other's room alone.
        assert!(b.admits(&globex).is_ok());
        b.remove("a1");
        assert!(b.admits(&acme).is_ok());
        let answer = too_many_sessions("this tenant's session limit");
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(answer.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn origins_match_scheme_host_and_port() {
        let allowed = vec![
            "http://localhost:*".to_owned(),
            "https://app.example.com".to_owned(),
        ];
        assert!(origin_allowed("http://localhost:3000", &allowed));
        assert!(origin_allowed("http://localhost", &allowed));
        assert!(origin_allowed("https://app.example.com", &allowed));
        assert!(origin_allowed("https://app.example.com:443", &allowed));
        assert!(!origin_allowed("https://app.example.com:8443", &allowed));
        assert!(!origin_allowed("http://evil.example", &allowed));
        assert!(!origin_allowed("https://localhost:3000", &allowed));
        assert!(!origin_allowed("null", &allowed));
    }

    /// One raw HTTP/1.1 request on a connection of its own: (status, Mcp-Session-Id).
    async fn exchange(
        addr: SocketAddr,
        method: &str,
        bearer: &str,
        session: Option<&str>,
        body: &str,
    ) -> (u16, Option<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let session = session
            .map(|s| format!("Mcp-Session-Id: {s}\r\nMCP-Protocol-Version: 2025-11-25\r\n"))
            .unwrap_or_default();
        let request = format!(
            "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{session}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let id = text.lines().take_while(|l| !l.is_empty()).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(SESSION_HEADER)
                .then(|| v.trim().to_owned())
        });
        (status, id)
    }

    fn bearer(policy: &crate::core::policy::Policy, tenant: &str) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        policy.tokens.keys.keys[0]
            .sign(
                crate::core::policy::SESSION_TYP,
                &serde_json::json!({"iss": fixtures::ISSUER, "aud": fixtures::AUDIENCE,
                    "sub": "orchestrator", "tenant": tenant, "iat": now, "exp": now + 600}),
            )
            .expect("the fixture key signs")
    }

    /// A reference server over HTTP on a free loopback port, with `sessions`.
    async fn serve(sessions: SessionLimits) -> SocketAddr {
        let core = Arc::new(Core::new(fixtures::policy(None)));
        let listeners = Arc::new(super::super::handler::Listeners::default());
        let server = McpServer::new(Arc::clone(&core), None, listeners);
        let config = HttpConfig::default();
        let guard = Guard::new(
            &config,
            sessions,
            ConnectionLimits::default(),
            1024 * 1024,
            core,
        );
        let (app, conns) = router(server, &config, guard);
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(super::super::listen::serve(
            listener,
            app,
            conns,
            std::future::pending(),
        ));
        addr
    }

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;

    /// Opens and initialises a session as `bearer`.
    async fn open(addr: SocketAddr, bearer: &str) -> String {
        let (status, id) = exchange(addr, "POST", bearer, None, INIT).await;
        assert_eq!(status, 200);
        let id = id.expect("a session id");
        let (status, _) = exchange(addr, "POST", bearer, Some(&id), INITIALIZED).await;
        assert_eq!(status, 202);
        id
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_http_an_ended_or_expired_session_is_unknown_to_every_bearer() {
        let policy = fixtures::policy(None);
        let (acme, globex) = (bearer(&policy, "acme"), bearer(&policy, "globex"));
        let addr = serve(SessionLimits {
            max_total: 100,
            max_per_tenant: 100,
            max_per_principal: 1,
            idle_secs: 1,
        })
        .await;

        let id = open(addr, &acme).await;
        assert_eq!(exchange(addr, "POST", &acme, Some(&id), LIST).await.0, 200);
        assert_eq!(
            exchange(addr, "POST", &globex, Some(&id), LIST).await.0,
            404
        );
        // Past the principal's cap: refused with a retry hint, the old one untouched.
        assert_eq!(exchange(addr, "POST", &acme, None, INIT).await.0, 429);
        assert_eq!(
            exchange(addr, "POST", &globex, Some(&id), LIST).await.0,
            404
        );
        // Ended by its owner: unknown to everyone, and room again.
        assert!(matches!(
            exchange(addr, "DELETE", &acme, Some(&id), "").await.0,
            200..=299
        ));
        for who in [&acme, &globex] {
            assert_eq!(exchange(addr, "POST", who, Some(&id), LIST).await.0, 404);
        }
        // Expired: idle past 1 s, ended by the sweeper; unknown to everyone.
        let id = open(addr, &acme).await;
        tokio::time::sleep(Duration::from_millis(2_500)).await;
        for who in [&acme, &globex] {
            assert_eq!(exchange(addr, "POST", who, Some(&id), LIST).await.0, 404);
        }
        // And its place is free again.
        open(addr, &acme).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_oversized_bearer_is_refused_before_it_is_decoded() {
        let addr = serve(SessionLimits::default()).await;
        // Over the token cap but inside the header cap: 401, on its length alone.
        let long = format!("{}.e30.c2ln", "e".repeat(9 * 1024));
        assert_eq!(exchange(addr, "POST", &long, None, INIT).await.0, 401);
        // 400 kB: past the header cap, 431 before any header is decoded.
        let huge = "e".repeat(400 * 1024);
        assert_eq!(exchange(addr, "POST", &huge, None, INIT).await.0, 431);
    }

    /// Opens a GET stream on session `id`; returns its status and the open connection.
    async fn stream(addr: SocketAddr, bearer: &str, id: &str) -> (u16, tokio::net::TcpStream) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\nAccept: text/event-stream\r\nMcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut head = vec![0u8; 12];
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_exact(&mut head)).await;
        let status = String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0);
        (status, tcp)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_session_holds_at_most_its_share_of_get_streams() {
        let policy = fixtures::policy(None);
        let acme = bearer(&policy, "acme");
        let addr = serve(SessionLimits::default()).await;
        let id = open(addr, &acme).await;
        let share = ConnectionLimits::default().max_streams_per_session;
        let mut held = Vec::new();
        for _ in 0..share {
            let (status, tcp) = stream(addr, &acme, &id).await;
            assert_eq!(status, 200);
            held.push(tcp);
        }
        assert_eq!(stream(addr, &acme, &id).await.0, 429);
        // A stream that ends gives its place back.
        drop(held.pop());
        let mut freed = false;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let (status, tcp) = stream(addr, &acme, &id).await;
            if status == 200 {
                held.push(tcp);
                freed = true;
                break;
            }
        }
        assert!(freed, "the ended stream's place was never given back");
    }

    /// A raw request on its own connection; the whole answer, its `date` header removed.
    async fn answer_of(addr: SocketAddr, request: String) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tcp.write_all(request.as_bytes()).await.expect("send");
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer)
            .split("\r\n")
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_live_foreign_session_id_is_answered_byte_for_byte_like_an_unknown_one() {
        let policy = fixtures::policy(None);
        let (acme, globex) = (bearer(&policy, "acme"), bearer(&policy, "globex"));
        let addr = serve(SessionLimits::default()).await;
        let live = open(addr, &acme).await;
        let never = never_issued_id();
        let request = |method: &str,
                       bearer: &str,
                       id: &str,
                       accept: &str,
                       ctype: &str,
                       body: &str| {
            format!(
                "{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\nAccept: {accept}\r\n{ctype}Mcp-Session-Id: {id}\r\nMCP-Protocol-Version: 2025-11-25\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        };
        let json = "Content-Type: application/json\r\n";
        let both = "application/json, text/event-stream";
        for (what, method, accept, ctype, body) in [
            ("POST tools/list", "POST", both, json, LIST),
            (
                "POST text/plain",
                "POST",
                both,
                "Content-Type: text/plain\r\n",
                "x",
            ),
            ("GET, SSE", "GET", "text/event-stream", "", ""),
            ("GET, JSON only", "GET", "application/json", "", ""),
            ("DELETE", "DELETE", both, "", ""),
        ] {
            let foreign =
                answer_of(addr, request(method, &globex, &live, accept, ctype, body)).await;
            let unknown =
                answer_of(addr, request(method, &globex, &never, accept, ctype, body)).await;
            assert!(!foreign.is_empty(), "{what}: no answer");
            assert_eq!(
                foreign, unknown,
                "{what}: a live foreign id answers unlike an unknown one"
            );
        }
        // And the session is untouched by all of that, for its owner.
        assert_eq!(
            exchange(addr, "POST", &acme, Some(&live), LIST).await.0,
            200
        );
    }
}
