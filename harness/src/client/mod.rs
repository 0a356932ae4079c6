//! An MCP client for both transports that sends well-formed requests and raw hostile
//! frames alike, recording every exchange in a [`Transcript`].
//!
//! - [`Target`]: one per run — builds the server once, launches an HTTP server (and
//!   relaunches it if it died), spawns one stdio process per connection.
//! - [`Conn`]: one MCP connection (a stdio process, or an HTTP session), opened as a
//!   tenant: its session credential goes on every HTTP request, or into the stdio
//!   process's environment at launch. Call tokens travel per call
//!   ([`Conn::call_tool`]).
//! - [`token`]: session and call tokens, and their hostile variants.

pub mod http;
pub mod stdio;
pub mod token;
pub mod transcript;

pub use transcript::Transcript;

use crate::profile::{Placement, Profile, Tenant, Transport, expand};
use http::{HttpAnswer, HttpConn};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use stdio::{StdioConn, Tail};
use token::TokenMinter;
use tokio::process::Command;
use tokio::sync::Mutex;

/// The protocol revisions the harness speaks, newest last.
pub const LATEST_SESSION_VERSION: &str = "2025-11-25";
pub const STATELESS_VERSION: &str = "2026-07-28";

/// Why the harness could not complete an exchange.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("could not start the target: {0}")]
    Launch(String),
    #[error("timed out after {after_ms} ms {what}{}", tail_suffix(stderr_tail))]
    Timeout {
        what: String,
        after_ms: u64,
        stderr_tail: String,
    },
    #[error("the target exited ({status}){}", tail_suffix(stderr_tail))]
    Exited { status: String, stderr_tail: String },
    #[error("HTTP error: {0}")]
    Http(String),
    /// The target answered, but refused a step the check needs (a valid `initialize`,
    /// a read-back through a tool the profile says the tenant may call).
    #[error("the target refused a step the check needs: {0}")]
    Refused(String),
    /// The harness itself could not go on (a token could not be minted, a task died).
    #[error("the harness could not go on: {0}")]
    Harness(String),
}

fn tail_suffix(tail: &str) -> String {
    let tail = tail.trim();
    if tail.is_empty() {
        String::new()
    } else {
        format!("; stderr tail:\n{tail}")
    }
}

/// The answer to one frame: the JSON-RPC response (if any) and, over HTTP, the status
/// and headers.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub message: Option<Value>,
    pub http: Option<HttpAnswer>,
    /// The response as received (stdio line or HTTP body), for byte-exact checks.
    pub raw: String,
}

impl Answer {
    /// The JSON-RPC error code, if the answer is an error response.
    pub fn error_code(&self) -> Option<i64> {
        self.message.as_ref()?.get("error")?.get("code")?.as_i64()
    }

    pub fn error_message(&self) -> Option<&str> {
        self.message
            .as_ref()?
            .get("error")?
            .get("message")?
            .as_str()
    }

    pub fn result(&self) -> Option<&Value> {
        self.message.as_ref()?.get("result")
    }

    pub fn status(&self) -> Option<u16> {
        self.http.as_ref().map(|h| h.status)
    }

    /// Did a `tools/call` succeed: a result without `isError: true`, and no HTTP error?
    pub fn succeeded(&self) -> bool {
        self.status().is_none_or(|s| s < 400)
            && self
                .result()
                .is_some_and(|r| r.get("isError") != Some(&Value::Bool(true)))
    }

    /// Does `marker` appear anywhere in the result (text content, structured content,
    /// any string inside)?
    pub fn mentions(&self, marker: &str) -> bool {
        self.result().is_some_and(|r| mentions(r, marker))
    }

    /// One line for expected/actual columns: `HTTP 400, error -32700 "Parse error…"`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.status() {
            parts.push(format!("HTTP {s}"));
        }
        match (&self.message, self.error_code()) {
            (Some(_), Some(code)) => {
                let msg = self.error_message().unwrap_or("");
                parts.push(format!("error {code} {:?}", shorten(msg, 80)));
            }
            (Some(m), None) => match m.get("result") {
                Some(r) if r.get("isError") == Some(&Value::Bool(true)) => {
                    parts.push("result with isError: true".into())
                }
                Some(_) => parts.push("a successful result".into()),
                None => parts.push("a message without result or error".into()),
            },
            (None, _) => match &self.http {
                Some(h) if !h.body.trim().is_empty() => parts.push(format!(
                    "non-JSON-RPC body {:?}",
                    shorten(h.body.trim(), 80)
                )),
                Some(_) => parts.push("empty body".into()),
                None => parts.push("no message".into()),
            },
        }
        parts.join(", ")
    }
}

/// Does `marker` occur in any string (or object key) inside `value`?
pub fn mentions(value: &Value, marker: &str) -> bool {
    match value {
        Value::String(s) => s.contains(marker),
        Value::Array(items) => items.iter().any(|v| mentions(v, marker)),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains(marker) || mentions(v, marker)),
        _ => false,
    }
}

/// The `_meta` envelope of a 2026-07-28 (stateless) request.
pub fn stateless_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

/// A tool listing followed through its pages.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Every tool object of every page, in order.
    pub tools: Vec<Value>,
    pub pages: usize,
    /// The `nextCursor` of the first page, if the list was paginated.
    pub first_cursor: Option<String>,
    /// Why the listing stopped before its end: a refused page, a cursor that repeats,
    /// too many pages.
    pub problem: Option<String>,
}

impl Listing {
    /// The tool names, sorted and deduplicated.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .tools
            .iter()
            .filter_map(|t| t.get("name")?.as_str().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Pages followed at most by [`Conn::list_all_tools`].
pub const MAX_PAGES: usize = 100;

/// Cuts `s` to at most `max` characters.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A child process that is killed and reaped when dropped.
struct OwnedChild(std::process::Child);

impl Drop for OwnedChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A launched HTTP server.
struct Launched {
    child: OwnedChild,
    url: String,
    stderr: Tail,
}

/// The target of a run, as the profile describes it.
pub struct Target {
    pub profile: Profile,
    /// The token minter the profile describes, or why it cannot be built.
    minter: Result<Option<TokenMinter>, String>,
    built: Mutex<Option<Result<(), ClientError>>>,
    set_up: Mutex<Option<Result<(), ClientError>>>,
    http_server: Mutex<Option<Launched>>,
    /// `{scratch}`: a directory of this target's own, removed when it is dropped.
    scratch: PathBuf,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// A fresh directory for one target's `{scratch}`.
fn scratch_dir() -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("mcp-tenancy-{}-{n}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

impl Target {
    pub fn new(mut profile: Profile) -> Self {
        let scratch = scratch_dir();
        profile.substitute_scratch(&scratch.to_string_lossy());
        Self {
            minter: TokenMinter::from_profile(&profile),
            profile,
            built: Mutex::new(None),
            set_up: Mutex::new(None),
            http_server: Mutex::new(None),
            scratch,
        }
    }

    /// The profile's token minter (`None` when it mints nothing).
    pub fn minter(&self) -> Result<Option<&TokenMinter>, ClientError> {
        match &self.minter {
            Ok(m) => Ok(m.as_ref()),
            Err(e) => Err(ClientError::Launch(format!(
                "cannot mint tokens as the profile says: {e}"
            ))),
        }
    }

    /// The tenant a connection acts as: the one asked for, else the profile's first.
    pub fn tenant_or_first<'t>(&'t self, tenant: Option<&'t Tenant>) -> Option<&'t Tenant> {
        tenant.or(self.profile.tenants.first())
    }

    /// The session credential of `tenant`: minted (`auth.mint_sessions`), else read
    /// from its `credential`; `None` when it has neither.
    pub fn session_credential(&self, tenant: &Tenant) -> Result<Option<String>, ClientError> {
        if self.profile.auth.mint_sessions {
            let minter = self.minter()?.ok_or_else(|| {
                ClientError::Launch("auth.mint_sessions needs the [tokens] key".into())
            })?;
            return minter
                .session_token(&tenant.id)
                .map(Some)
                .map_err(ClientError::Launch);
        }
        match &tenant.credential {
            Some(secret) => self
                .profile
                .secret(secret)
                .map(Some)
                .map_err(|e| ClientError::Launch(e.to_string())),
            None => Ok(None),
        }
    }

    pub fn transport(&self) -> Transport {
        self.profile.target.transport
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.profile.limits.request_timeout_ms)
    }

    pub fn silence_timeout(&self) -> Duration {
        Duration::from_millis(self.profile.limits.silence_timeout_ms)
    }

    fn cwd(&self) -> PathBuf {
        self.profile.base_dir()
    }

    fn command(&self, port: Option<u16>) -> Vec<String> {
        let base = self.cwd();
        self.profile
            .target
            .command
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let s = expand(part, port);
                // A relative program path (`../x`, `./x`) is relative to the profile.
                if i == 0 && (s.starts_with("./") || s.starts_with("../")) {
                    base.join(&s).to_string_lossy().into_owned()
                } else {
                    s
                }
            })
            .collect()
    }

    fn env(&self, port: Option<u16>) -> Vec<(String, String)> {
        self.profile
            .target
            .env
            .iter()
            .map(|(k, v)| (k.clone(), expand(v, port)))
            .collect()
    }

    /// Records that the build already ran (e.g. once for many targets of one profile).
    pub fn assume_built(&self) {
        if let Ok(mut built) = self.built.try_lock() {
            *built = Some(Ok(()));
        }
    }

    /// Runs the profile's `build` command (once per run, unless [`Self::assume_built`])
    /// and then its `setup` commands (once per target).
    pub async fn prepare(&self) -> Result<(), ClientError> {
        let mut built = self.built.lock().await;
        if built.is_none() {
            *built = Some(self.run_step("build", &self.profile.target.build).await);
        }
        built.clone().expect("set above")?;
        let mut set_up = self.set_up.lock().await;
        if set_up.is_none() {
            let mut result = Ok(());
            for step in &self.profile.target.setup {
                result = self.run_step("setup", step).await;
                if result.is_err() {
                    break;
                }
            }
            *set_up = Some(result);
        }
        set_up.clone().expect("set above")
    }

    /// Runs one `build` or `setup` command in the profile's directory.
    async fn run_step(&self, what: &str, argv: &[String]) -> Result<(), ClientError> {
        let build: Vec<String> = argv.iter().map(|s| expand(s, None)).collect();
        let Some((program, args)) = build.split_first() else {
            return Ok(());
        };
        let out = Command::new(program)
            .args(args)
            .current_dir(self.cwd())
            .stdin(Stdio::null())
            .output()
            .await
            .map_err(|e| {
                ClientError::Launch(format!("{what} command {program:?} failed to start: {e}"))
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ClientError::Launch(format!(
                "{what} command `{}` failed ({}):\n{}",
                build.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    }

    /// The stderr tail of the launched HTTP server, if any.
    pub async fn server_stderr(&self) -> String {
        self.http_server
            .lock()
            .await
            .as_ref()
            .map(|l| l.stderr.text())
            .unwrap_or_default()
    }

    /// Has the launched HTTP server exited? Returns its status and stderr tail.
    pub async fn server_exit(&self) -> Option<ClientError> {
        let mut guard = self.http_server.lock().await;
        let launched = guard.as_mut()?;
        match launched.child.0.try_wait() {
            Ok(Some(status)) => Some(ClientError::Exited {
                status: status.to_string(),
                stderr_tail: launched.stderr.text(),
            }),
            _ => None,
        }
    }

    /// The HTTP endpoint, launching (or relaunching) the server when the profile says how.
    /// The HTTP endpoint, after building, setting up and (if the profile says how)
    /// launching the server.
    pub async fn endpoint(&self) -> Result<String, ClientError> {
        self.prepare().await?;
        self.http_url().await
    }

    async fn http_url(&self) -> Result<String, ClientError> {
        let target = &self.profile.target;
        let url_template = target.url.clone().unwrap_or_default();
        if target.command.is_empty() {
            return Ok(expand(&url_template, None));
        }
        let mut guard = self.http_server.lock().await;
        if let Some(l) = guard.as_mut()
            && matches!(l.child.0.try_wait(), Ok(None))
        {
            return Ok(l.url.clone());
        }
        let port = free_port()?;
        let url = expand(&url_template, Some(port));
        let command = self.command(Some(port));
        let (program, args) = command
            .split_first()
            .expect("validated: command is not empty");
        // A std process and a std thread draining its stderr: the server outlives any
        // one tokio runtime (tests drive one target from several), and a server whose
        // stderr pipe nobody drains would block on its next log line.
        let mut child = std::process::Command::new(program)
            .args(args)
            .current_dir(self.cwd())
            .envs(self.env(Some(port)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| ClientError::Launch(format!("cannot start {program:?}: {e}")))?;
        let tail = Tail::default();
        if let Some(mut stderr) = child.stderr.take() {
            let tail = tail.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    tail.push(&buf[..n]);
                }
            });
        }
        let mut child = OwnedChild(child);
        let deadline = tokio::time::Instant::now() + Duration::from_millis(target.ready_timeout_ms);
        loop {
            if let Ok(Some(status)) = child.0.try_wait() {
                return Err(ClientError::Exited {
                    status: status.to_string(),
                    stderr_tail: tail.text(),
                });
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClientError::Timeout {
                    what: format!("waiting for the server to listen on 127.0.0.1:{port}"),
                    after_ms: target.ready_timeout_ms,
                    stderr_tail: tail.text(),
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        *guard = Some(Launched {
            child,
            url: url.clone(),
            stderr: tail,
        });
        Ok(url)
    }

    /// Opens a new connection labelled `label` (e.g. `acme#1`) as `tenant` — or as the
    /// profile's first tenant when `tenant` is `None` — presenting its session
    /// credential: over HTTP in `auth.http_header` on every request, over stdio in
    /// `auth.stdio_env` at launch.
    pub async fn connect(
        &self,
        label: &str,
        tenant: Option<&Tenant>,
        transcript: &Transcript,
    ) -> Result<Conn, ClientError> {
        let credential = match self.tenant_or_first(tenant) {
            Some(t) => self.session_credential(t)?,
            None => None,
        };
        self.connect_with(label, credential.as_deref(), transcript)
            .await
    }

    /// Opens a new connection presenting `credential` as the session credential (or
    /// none), whoever it belongs to.
    pub async fn connect_with(
        &self,
        label: &str,
        credential: Option<&str>,
        transcript: &Transcript,
    ) -> Result<Conn, ClientError> {
        self.prepare().await?;
        let auth = &self.profile.auth;
        let link = match self.transport() {
            Transport::Stdio => {
                let mut env = self.env(None);
                if let (Some(var), Some(cred)) = (&auth.stdio_env, credential) {
                    env.push((var.clone(), cred.to_owned()));
                }
                Link::Stdio(StdioConn::spawn(
                    &self.command(None),
                    &self.cwd(),
                    &env,
                    label,
                    transcript.clone(),
                )?)
            }
            Transport::Http => {
                let url = self.http_url().await?;
                let mut headers: Vec<(String, String)> = self
                    .profile
                    .target
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), expand(v, None)))
                    .collect();
                if let Some(cred) = credential {
                    headers.push((
                        auth.http_header.clone(),
                        auth.http_format.replace("{token}", cred),
                    ));
                }
                let mut conn = HttpConn::new(url, headers, label, transcript.clone());
                conn.redacted.push(auth.http_header.to_ascii_lowercase());
                Link::Http(conn)
            }
        };
        let tokens = &self.profile.tokens;
        Ok(Conn {
            link,
            next_id: 0,
            request_timeout: self.request_timeout(),
            placement: match tokens.placement {
                Placement::Meta => CallPlacement::Meta(tokens.meta_key.clone()),
                Placement::Header => CallPlacement::Header(tokens.header.clone()),
                Placement::None => CallPlacement::None,
            },
        })
    }

    /// Stops a launched server.
    pub async fn shutdown(&self) {
        // Dropping the server kills and reaps it.
        self.http_server.lock().await.take();
    }
}

fn free_port() -> Result<u16, ClientError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| ClientError::Launch(format!("no free loopback port: {e}")))
}

enum Link {
    Stdio(StdioConn),
    Http(HttpConn),
}

/// Where [`Conn::call_tool`] puts a call token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CallPlacement {
    Meta(String),
    Header(String),
    None,
}

/// One MCP connection.
pub struct Conn {
    link: Link,
    next_id: i64,
    request_timeout: Duration,
    placement: CallPlacement,
}

impl Conn {
    /// The HTTP side of this connection, for header-level checks.
    pub fn http(&mut self) -> Option<&mut HttpConn> {
        match &mut self.link {
            Link::Http(h) => Some(h),
            Link::Stdio(_) => None,
        }
    }

    pub fn stderr_tail(&self) -> String {
        match &self.link {
            Link::Stdio(s) => s.stderr_tail(),
            Link::Http(_) => String::new(),
        }
    }

    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends raw bytes as one frame and waits up to `wait` for a response.
    pub async fn send_raw(&mut self, bytes: &[u8], wait: Duration) -> Result<Answer, ClientError> {
        match &mut self.link {
            Link::Stdio(s) => {
                s.send(bytes, wait).await?;
                let (message, raw) = s.next_response(wait).await?;
                Ok(Answer {
                    message: Some(message),
                    http: None,
                    raw,
                })
            }
            Link::Http(h) => {
                let answer = h.post(bytes, &[], wait).await?;
                Ok(http_answer(answer))
            }
        }
    }

    /// Sends a well-formed request and waits for its response.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Answer, ClientError> {
        let id = self.next_id();
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let timeout = self.request_timeout;
        self.send_raw(frame.to_string().as_bytes(), timeout).await
    }

    /// Sends a notification (no answer expected beyond HTTP's 202).
    pub async fn notify(&mut self, method: &str, params: Value) -> Result<(), ClientError> {
        let frame = json!({"jsonrpc": "2.0", "method": method, "params": params});
        let bytes = frame.to_string().into_bytes();
        let timeout = self.request_timeout;
        match &mut self.link {
            Link::Stdio(s) => s.send(&bytes, timeout).await,
            Link::Http(h) => h.post(&bytes, &[], timeout).await.map(|_| ()),
        }
    }

    /// The `initialize` handshake followed by `notifications/initialized`. Over HTTP
    /// the session id and protocol version are kept for later requests.
    pub async fn initialize(&mut self, version: &str) -> Result<Answer, ClientError> {
        let answer = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": version,
                    "capabilities": {},
                    "clientInfo": {"name": "mcp-tenancy", "version": env!("CARGO_PKG_VERSION")}
                }),
            )
            .await?;
        let negotiated = answer
            .result()
            .and_then(|r| r.get("protocolVersion"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let Link::Http(h) = &mut self.link {
            h.session_id = answer
                .http
                .as_ref()
                .and_then(|a| a.header("mcp-session-id"))
                .map(str::to_owned);
            h.protocol_version = negotiated.clone();
        }
        if negotiated.is_some() {
            self.notify("notifications/initialized", json!({})).await?;
        }
        Ok(answer)
    }

    /// `tools/call` of `name` with `arguments`, the call token (if any) placed as the
    /// profile says: in `params._meta`, or in an HTTP header. A profile whose server
    /// takes no call tokens (`placement = "none"`) sends none.
    pub async fn call_tool(
        &mut self,
        name: &str,
        arguments: Value,
        call_token: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let (frame, extra) = self.call_frame(name, arguments, call_token);
        let timeout = self.request_timeout;
        match &mut self.link {
            Link::Http(h) => {
                let answer = h.post(&frame, &extra, timeout).await?;
                Ok(http_answer(answer))
            }
            Link::Stdio(_) => self.send_raw(&frame, timeout).await,
        }
    }

    /// The `tools/call` frame [`Conn::call_tool`] sends, and the HTTP headers the call
    /// token adds (for checks that send it with headers of their own).
    pub fn call_frame(
        &mut self,
        name: &str,
        arguments: Value,
        call_token: Option<&str>,
    ) -> (Vec<u8>, Vec<(String, String)>) {
        let mut params = json!({"name": name, "arguments": arguments});
        let mut extra = Vec::new();
        match (&self.placement, call_token) {
            (CallPlacement::Meta(key), Some(token)) => {
                params["_meta"] = json!({ key.as_str(): token });
            }
            (CallPlacement::Header(header), Some(token)) => {
                extra.push((header.clone(), token.to_owned()));
            }
            _ => {}
        }
        let id = self.next_id();
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        (frame.to_string().into_bytes(), extra)
    }

    /// The answer to a raw HTTP exchange, as [`Answer`].
    pub fn answer_of(answer: HttpAnswer) -> Answer {
        http_answer(answer)
    }

    /// Lists every tool, following `nextCursor` for at most [`MAX_PAGES`] pages.
    pub async fn list_all_tools(&mut self) -> Result<Listing, ClientError> {
        let mut listing = Listing::default();
        let mut cursor: Option<String> = None;
        let mut seen = std::collections::HashSet::new();
        loop {
            let params = match &cursor {
                Some(c) => json!({"cursor": c}),
                None => json!({}),
            };
            let answer = self.request("tools/list", params).await?;
            let Some(tools) = answer
                .result()
                .and_then(|r| r.get("tools"))
                .and_then(Value::as_array)
            else {
                listing.problem = Some(format!(
                    "page {} of tools/list answered {}",
                    listing.pages + 1,
                    answer.describe()
                ));
                return Ok(listing);
            };
            listing.pages += 1;
            listing.tools.extend(tools.iter().cloned());
            let next = answer
                .result()
                .and_then(|r| r.get("nextCursor"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            if listing.pages == 1 {
                listing.first_cursor = next.clone();
            }
            match next {
                None => return Ok(listing),
                Some(c) if !seen.insert(c.clone()) => {
                    listing.problem = Some(format!("the cursor {c:?} came back: the pages loop"));
                    return Ok(listing);
                }
                Some(_) if listing.pages >= MAX_PAGES => {
                    listing.problem = Some(format!("more than {MAX_PAGES} pages"));
                    return Ok(listing);
                }
                Some(c) => cursor = Some(c),
            }
        }
    }

    /// Waits `wait` for notifications the server sends on this session (stdio: on
    /// stdout; HTTP: on the session's GET stream) and returns them.
    pub async fn notifications(&mut self, wait: Duration) -> Result<Vec<Value>, ClientError> {
        match &mut self.link {
            Link::Stdio(s) => s.notifications(wait).await,
            Link::Http(h) => h.listen(wait).await,
        }
    }

    /// A `ping` that must succeed: proves the target still serves this connection.
    pub async fn ping(&mut self) -> Result<Answer, ClientError> {
        self.request("ping", json!({})).await
    }

    pub async fn close(self) {
        match self.link {
            Link::Stdio(s) => s.close().await,
            Link::Http(_) => {}
        }
    }
}

fn http_answer(answer: HttpAnswer) -> Answer {
    let message = answer
        .messages
        .iter()
        .find(|m| m.get("id").is_some() && (m.get("result").is_some() || m.get("error").is_some()))
        .cloned();
    Answer {
        message,
        raw: answer.body.clone(),
        http: Some(answer),
    }
}
