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
pub mod pace;
pub mod stdio;
pub mod token;
pub mod transcript;

pub use transcript::Transcript;

use crate::profile::{Placement, Principal, Profile, Tenant, Transport, expand};
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
    /// The target kept signalling a rate limit for the whole retry budget.
    #[error(
        "the target kept rate-limiting for {after_ms} ms (last: {why}); raise [limits] retry_budget_ms or lower calls_per_second"
    )]
    RateLimited { why: String, after_ms: u64 },
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

/// Is `v` a JSON-RPC response (an `id` and a `result` or `error`)?
pub fn is_response(v: &Value) -> bool {
    v.get("id").is_some() && (v.get("result").is_some() || v.get("error").is_some())
}

/// Which response answers a frame: the one carrying the frame's id. A hostile frame
/// may also be answered with `id: null` (the server could not read its id); a request
/// the harness built never is — a stray `id: null` error is not its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Awaited {
    /// The frame's id; `None` when it cannot be recovered (any response answers).
    id: Option<Value>,
    /// Whether `id: null` answers the frame too.
    null_ok: bool,
}

impl Awaited {
    /// The answer to the well-formed request `id`.
    pub fn exactly(id: Value) -> Self {
        Self {
            id: Some(id),
            null_ok: false,
        }
    }

    /// The answer to a raw frame: its id if one can be read from it (even from a
    /// frame that is not valid JSON), `id: null` accepted too.
    pub fn of_frame(bytes: &[u8]) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let id = match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map.get("id").cloned(),
            Ok(_) => None,
            Err(_) => scan_id(&text),
        };
        Self {
            id: id.filter(|v| !v.is_null()),
            null_ok: true,
        }
    }

    /// Does `msg` answer the frame?
    pub fn answered_by(&self, msg: &Value) -> bool {
        if !is_response(msg) {
            return false;
        }
        match (&self.id, msg.get("id")) {
            (None, _) => true,
            (Some(_), Some(Value::Null)) => self.null_ok,
            (Some(want), Some(got)) => want == got,
            (Some(_), None) => false,
        }
    }

    /// The same frame under id `id`.
    fn renumbered(&self, id: i64) -> Self {
        Self {
            id: Some(json!(id)),
            null_ok: self.null_ok,
        }
    }

    /// `the response to id 7`, for messages.
    pub fn describe(&self) -> String {
        match &self.id {
            Some(id) => format!("the response to id {id}"),
            None => "a response".into(),
        }
    }
}

/// `frame` with its `id` replaced by `id`, when it is a JSON-RPC request whose id can
/// be read (a frame that does not parse is sent again as it is).
pub fn renumbered(frame: &[u8], id: i64) -> Option<Vec<u8>> {
    let mut value: Value = serde_json::from_slice(frame).ok()?;
    let member = value.as_object_mut()?.get_mut("id")?;
    if member.is_null() {
        return None;
    }
    *member = json!(id);
    Some(value.to_string().into_bytes())
}

/// The value of the first `"id":` member of a frame that does not parse as JSON (a
/// number or a string), if there is one.
fn scan_id(text: &str) -> Option<Value> {
    let at = text.find("\"id\"")?;
    let rest = text[at + 4..].trim_start().strip_prefix(':')?.trim_start();
    let end = if let Some(inner) = rest.strip_prefix('"') {
        inner.find('"').map(|i| i + 2)?
    } else {
        rest.find(|c: char| !(c.is_ascii_digit() || c == '-'))
            .unwrap_or(rest.len())
    };
    serde_json::from_str(&rest[..end]).ok()
}

/// The text content of a `tools/call` result: its `text` items, joined by spaces.
pub fn result_text(result: &Value) -> String {
    result
        .get("content")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|c| c.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default()
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

/// A launched server, leader of its own process group: stopped with SIGTERM to the
/// group, and SIGKILL after the grace period, when dropped — so that a wrapper script
/// can stop what it started (a database, a child server).
struct OwnedChild {
    child: std::process::Child,
    grace: Duration,
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        let pid = self.child.id();
        signal_group(pid, libc::SIGTERM);
        // The whole group gets the grace: a wrapper's database may take a moment.
        let deadline = std::time::Instant::now() + self.grace;
        while std::time::Instant::now() < deadline {
            let leader_gone = matches!(self.child.try_wait(), Ok(Some(_)));
            if leader_gone && !group_alive(pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever of the group is left, and the leader if it ignored SIGTERM.
        signal_group(pid, libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Does any process of the group `pgid` still run? (A leader that has exited but was
/// not reaped yet still counts.)
pub(crate) fn group_alive(pgid: u32) -> bool {
    match libc::pid_t::try_from(pgid) {
        // SAFETY: kill(2) with signal 0 only checks for existence.
        Ok(pgid) if pgid > 0 => unsafe { libc::kill(-pgid, 0) == 0 },
        _ => false,
    }
}

/// Sends `signal` to the process group `pgid` leads (it was spawned with
/// `process_group(0)`).
pub(crate) fn signal_group(pgid: u32, signal: libc::c_int) {
    if let Ok(pgid) = libc::pid_t::try_from(pgid)
        && pgid > 0
    {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is
        // involved. A group that is gone already yields ESRCH, which is fine.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// The resident memory (bytes) of process `root` and all its descendants, from
/// `/proc` (Linux).
fn tree_rss(root: u32) -> Result<u64, String> {
    let rss_of = |pid: u32| -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    if rss_of(root).is_none() {
        return Err(format!(
            "the resident memory of process {root} cannot be read (/proc/{root}/status: not Linux, or the process is gone)"
        ));
    }
    Ok(tree_pids(root).into_iter().filter_map(rss_of).sum())
}

/// The CPU time (user + system) process `root` and its descendants have used, in
/// seconds, from `/proc` (Linux); `None` when it cannot be read.
pub fn tree_cpu_secs(root: u32) -> Option<f64> {
    cpu_ticks(root)?;
    let total: u64 = tree_pids(root).into_iter().filter_map(cpu_ticks).sum();
    Some(total as f64 / clock_ticks()?)
}

/// The CPU time process `pid` alone (not its children) has used, in seconds.
pub fn own_cpu_secs(pid: u32) -> Option<f64> {
    Some(cpu_ticks(pid)? as f64 / clock_ticks()?)
}

fn clock_ticks() -> Option<f64> {
    // SAFETY: sysconf has no memory effects.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then_some(ticks as f64)
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let mut fields = rest.split_whitespace().skip(11);
    let user = fields.next()?.parse::<u64>().ok()?;
    let system = fields.next()?.parse::<u64>().ok()?;
    Some(user + system)
}

/// Process `root` and all its descendants, `root` first.
fn tree_pids(root: u32) -> Vec<u32> {
    // parent → children, from every process's stat line (ppid is the 4th field, after
    // the parenthesised command name).
    let mut children: std::collections::HashMap<u32, Vec<u32>> = Default::default();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                children.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut all = vec![root];
    let mut stack = children.get(&root).cloned().unwrap_or_default();
    while let Some(pid) = stack.pop() {
        all.push(pid);
        stack.extend(children.get(&pid).cloned().unwrap_or_default());
    }
    all
}

/// A launched HTTP server.
struct Launched {
    child: OwnedChild,
    url: String,
    port: u16,
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
    /// What one check learnt of the target that others depend on.
    pub probes: std::sync::Mutex<Probes>,
    rate_limits: std::sync::Arc<pace::RateLimits>,
    /// The run's random seed: markers and interleavings follow from it
    /// ([`Target::with_seed`] replays a run).
    pub seed: u64,
    /// Fresh for every run, seeded or not: part of every marker, so that a replay's
    /// markers are its own.
    pub salt: u16,
    /// Every marker the run has written, and for which tenant: every read-back is
    /// searched for other tenants' markers.
    pub markers: std::sync::Mutex<crate::checks::readback::Registry>,
    /// Tenant id → its next pacing slot, shared by all its connections.
    slots:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, tokio::time::Instant>>>,
}

/// A seed for a run that was given none: from the clock, never zero.
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1);
    // Spread the clock's low bits; keep it printable as a plain decimal.
    (nanos.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16).max(1)
}

/// A salt no other target of this process has (until 65 536 of them), varied by the
/// clock across processes.
fn fresh_salt() -> u16 {
    static START: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let start = *START.get_or_init(|| (fresh_seed() >> 5) as u16);
    start.wrapping_add(NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}

/// Facts about a target that one check establishes and others depend on, each found
/// once per run.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    /// Against a profile without call tokens: did a token-less call succeed (T2.1)?
    pub tokenless: Option<Tokenless>,
}

/// The outcome of T2.1's probe of a target whose profile declares no call tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tokenless {
    /// A call without any token succeeded: the target takes no call tokens.
    Served { tool: String },
    /// It was refused: the target has tokens the profile does not describe.
    Refused { tool: String, answer: String },
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
        let profile_limits = profile.limits.clone();
        let scratch = scratch_dir();
        profile.substitute_scratch(&scratch.to_string_lossy());
        Self {
            minter: TokenMinter::from_profile(&profile),
            profile,
            built: Mutex::new(None),
            set_up: Mutex::new(None),
            http_server: Mutex::new(None),
            scratch,
            probes: Default::default(),
            rate_limits: std::sync::Arc::new(pace::RateLimits::from_limits(&profile_limits)),
            seed: fresh_seed(),
            salt: fresh_salt(),
            markers: Default::default(),
            slots: Default::default(),
        }
    }

    /// The same target with the run's random seed `seed` (`--seed`).
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
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
        let secret = tenant
            .credential
            .as_ref()
            .or(tenant.session_principal().credential.as_ref())
            .cloned();
        self.read_credential(secret.as_ref())
    }

    /// The session credential of `principal` of `tenant`: its own, else the tenant's.
    pub fn principal_credential(
        &self,
        tenant: &Tenant,
        principal: &Principal,
    ) -> Result<Option<String>, ClientError> {
        match &principal.credential {
            Some(secret) => self.read_credential(Some(secret)),
            None => self.session_credential(tenant),
        }
    }

    fn read_credential(
        &self,
        secret: Option<&crate::profile::Secret>,
    ) -> Result<Option<String>, ClientError> {
        match secret {
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

    /// The resident memory of the launched HTTP server's process tree, in bytes, or why
    /// it cannot be measured (the harness did not launch it; not Linux).
    pub async fn server_memory(&self) -> Result<u64, String> {
        let guard = self.http_server.lock().await;
        let Some(launched) = guard.as_ref() else {
            return Err(
                "the harness did not launch the target (the profile gives only a URL)".into(),
            );
        };
        tree_rss(launched.child.child.id())
    }

    /// The process id of the launched HTTP server, if the harness launched it.
    pub async fn server_pid(&self) -> Option<u32> {
        self.http_server
            .lock()
            .await
            .as_ref()
            .map(|l| l.child.child.id())
    }

    /// Has the launched HTTP server exited? Returns its status and stderr tail.
    pub async fn server_exit(&self) -> Option<ClientError> {
        let mut guard = self.http_server.lock().await;
        let launched = guard.as_mut()?;
        match launched.child.child.try_wait() {
            Ok(Some(status)) => Some(ClientError::Exited {
                status: status.to_string(),
                stderr_tail: launched.stderr.text(),
            }),
            _ => None,
        }
    }

    /// The HTTP endpoint, after building, setting up and (if the profile says how)
    /// launching the server.
    pub async fn endpoint(&self) -> Result<String, ClientError> {
        self.prepare().await?;
        self.http_url().await
    }

    /// The profile's `[load] stats_url`, its `{port}` the launched server's (`None`: the
    /// profile names none, or the server it names by port is not running).
    pub async fn stats_url(&self) -> Option<String> {
        let template = self.profile.load.stats_url.as_deref()?;
        if self.profile.target.command.is_empty() {
            return Some(expand(template, None));
        }
        let guard = self.http_server.lock().await;
        guard.as_ref().map(|l| expand(template, Some(l.port)))
    }

    async fn http_url(&self) -> Result<String, ClientError> {
        let target = &self.profile.target;
        let url_template = target.url.clone().unwrap_or_default();
        if target.command.is_empty() {
            return Ok(expand(&url_template, None));
        }
        let mut guard = self.http_server.lock().await;
        if let Some(l) = guard.as_mut()
            && matches!(l.child.child.try_wait(), Ok(None))
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
        use std::os::unix::process::CommandExt as _;
        let mut child = std::process::Command::new(program)
            .process_group(0)
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
        let mut child = OwnedChild {
            child,
            grace: Duration::from_millis(target.stop_grace_ms),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_millis(target.ready_timeout_ms);
        loop {
            if let Ok(Some(status)) = child.child.try_wait() {
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
            port,
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
        let tenant = self.tenant_or_first(tenant);
        let credential = match tenant {
            Some(t) => self.session_credential(t)?,
            None => None,
        };
        let principal = tenant.map(|t| t.session_principal().id);
        self.connect_with(
            label,
            tenant,
            principal.as_deref(),
            credential.as_deref(),
            transcript,
        )
        .await
    }

    /// Opens a new connection as `principal` of `tenant`, with the principal's own
    /// session credential (else the tenant's).
    pub async fn connect_as(
        &self,
        label: &str,
        tenant: &Tenant,
        principal: &Principal,
        transcript: &Transcript,
    ) -> Result<Conn, ClientError> {
        let credential = self.principal_credential(tenant, principal)?;
        let mut conn = self
            .connect_with(
                label,
                Some(tenant),
                Some(&principal.id),
                credential.as_deref(),
                transcript,
            )
            .await?;
        if principal.credential.is_some() {
            conn.own_principal = Some(principal.id.clone());
        }
        Ok(conn)
    }

    /// Opens a new connection of `tenant` (its pace, its endpoint) as `principal`
    /// (`{principal}` in the URL and headers) presenting `credential` as the session
    /// credential (or none), whoever it belongs to.
    pub async fn connect_with(
        &self,
        label: &str,
        tenant: Option<&Tenant>,
        principal: Option<&str>,
        credential: Option<&str>,
        transcript: &Transcript,
    ) -> Result<Conn, ClientError> {
        self.prepare().await?;
        let auth = &self.profile.auth;
        let throttle = pace::Throttle::new(
            self.rate_limits.clone(),
            self.slots.clone(),
            tenant.map_or("", |t| t.id.as_str()),
        );
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
                    Duration::from_millis(self.profile.target.stop_grace_ms),
                )?)
            }
            Transport::Http => {
                // `{tenant}` and `{principal}` in the URL and headers: one endpoint per
                // tenant (or principal).
                let tenant_id = tenant.map_or("", |t| t.id.as_str());
                let who = |s: String| {
                    s.replace("{tenant}", tenant_id)
                        .replace("{principal}", principal.unwrap_or(""))
                };
                let url = who(self.http_url().await?);
                let mut headers: Vec<(String, String)> = self
                    .profile
                    .target
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), who(expand(v, None))))
                    .collect();
                if let Some(cred) = credential {
                    headers.push((
                        auth.http_header.clone(),
                        auth.http_format.replace("{token}", cred),
                    ));
                }
                let mut conn = HttpConn::new(url, headers, label, transcript.clone());
                conn.redacted.push(auth.http_header.to_ascii_lowercase());
                conn.throttle = Some(throttle.clone());
                if !auth.sign.is_empty() {
                    let sign = auth.sign.iter().map(|a| expand(a, None)).collect();
                    conn.signer = Some((sign, self.cwd()));
                }
                Link::Http(conn)
            }
        };
        let tokens = &self.profile.tokens;
        let extras = self
            .profile
            .tools
            .iter()
            .filter(|(_, spec)| !spec.meta.is_empty() || !spec.headers.is_empty())
            .map(|(name, spec)| {
                let meta = serde_json::to_value(&spec.meta)
                    .ok()
                    .and_then(|v| v.as_object().cloned())
                    .unwrap_or_default();
                let headers = spec
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                (name.clone(), CallExtras { meta, headers })
            })
            .collect();
        Ok(Conn {
            link,
            tenant: tenant.map(|t| t.id.clone()).unwrap_or_default(),
            own_principal: None,
            extras,
            throttle,
            transcript: transcript.clone(),
            label: label.to_owned(),
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

/// What a call of one tool carries besides its arguments (the profile's `meta` and
/// `headers` of the tool, placeholders unfilled).
#[derive(Debug, Clone, Default)]
struct CallExtras {
    meta: serde_json::Map<String, Value>,
    headers: Vec<(String, String)>,
}

/// A fresh UUID (version 4 layout) for `{uuid}`: unique per call, not secret.
pub fn fresh_uuid() -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let hi = mix(now ^ (u64::from(std::process::id()) << 32) ^ n);
    let lo = mix(hi ^ n.rotate_left(17));
    let hi = (hi & !0xf000) | 0x4000;
    let lo = (lo & !(0xc << 60)) | (0x8 << 60);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// `template` with `{uuid}` (fresh), `{tenant}` and `{tool}` filled in every string.
fn fill_call(template: &Value, tenant: &str, tool: &str) -> Value {
    match template {
        Value::String(s) => Value::String(
            s.replace("{uuid}", &fresh_uuid())
                .replace("{tenant}", tenant)
                .replace("{tool}", tool),
        ),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| fill_call(v, tenant, tool)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill_call(v, tenant, tool)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// One MCP connection.
pub struct Conn {
    link: Link,
    /// The tenant it acts as (`""` for none).
    tenant: String,
    /// The principal whose own credential opened it, if one did.
    own_principal: Option<String>,
    /// Per tool: the `_meta` members and headers its calls carry.
    extras: std::collections::BTreeMap<String, CallExtras>,
    /// Its tenant's pace and the rate-limit retries (HTTP: inside [`HttpConn`]).
    throttle: pace::Throttle,
    transcript: Transcript,
    label: String,
    next_id: i64,
    request_timeout: Duration,
    placement: CallPlacement,
}

impl Conn {
    /// The principal whose own credential opened this connection, if one did: the
    /// session carries only that principal's grant.
    pub fn own_principal(&self) -> Option<&str> {
        self.own_principal.as_deref()
    }

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

    /// How long this connection has waited, in all, for its tenant's pacing slots and
    /// rate-limit back-offs.
    pub fn paced_wait(&self) -> Duration {
        self.throttle.waited()
    }

    /// Over stdio, the process id of this connection's server.
    pub fn server_pid(&self) -> Option<u32> {
        match &self.link {
            Link::Stdio(s) => s.pid(),
            Link::Http(_) => None,
        }
    }

    pub fn next_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Sends raw bytes as one frame and waits up to `wait` for its answer: the
    /// response carrying the frame's id, or `id: null` ([`Awaited::of_frame`]).
    pub async fn send_raw(&mut self, bytes: &[u8], wait: Duration) -> Result<Answer, ClientError> {
        self.send_awaiting(bytes, &[], &Awaited::of_frame(bytes), wait)
            .await
    }

    /// Sends raw bytes as one frame and takes the next response, whatever its id — for
    /// a frame whose id the server may not be able to echo (a 30-digit integer).
    pub async fn send_raw_any(
        &mut self,
        bytes: &[u8],
        wait: Duration,
    ) -> Result<Answer, ClientError> {
        let any = Awaited {
            id: None,
            null_ok: true,
        };
        self.send_awaiting(bytes, &[], &any, wait).await
    }

    /// Sends `bytes` (over HTTP with `extra` headers) and waits for `awaited`.
    async fn send_awaiting(
        &mut self,
        bytes: &[u8],
        extra: &[(String, String)],
        awaited: &Awaited,
        wait: Duration,
    ) -> Result<Answer, ClientError> {
        let Link::Stdio(s) = &mut self.link else {
            let Link::Http(h) = &mut self.link else {
                unreachable!()
            };
            let answer = h.post(bytes, extra, wait).await?;
            return Ok(http_answer(answer, awaited));
        };
        let mut retries = self.throttle.retries();
        let (mut frame, mut awaited) = (bytes.to_vec(), awaited.clone());
        loop {
            self.throttle.pace().await;
            s.send(&frame, wait).await?;
            let (message, raw) = s.next_response(&awaited, wait).await?;
            let limited = self
                .throttle
                .limited(None, None, Some(&message), retries.attempt());
            if !retries
                .wait_out(limited, &self.transcript, &self.label)
                .await?
            {
                return Ok(Answer {
                    message: Some(message),
                    http: None,
                    raw,
                });
            }
            // Sent again under an id of its own: an id is never reused in a session.
            self.next_id += 1;
            if let Some(again) = renumbered(&frame, self.next_id) {
                awaited = awaited.renumbered(self.next_id);
                frame = again;
            }
        }
    }

    /// Responses that answered no pending request since the last call (stdio: an
    /// unsolicited `id: null` error, a late answer); HTTP answers each request in its
    /// own response, so it has none.
    pub fn take_strays(&mut self) -> Vec<Value> {
        match &mut self.link {
            Link::Stdio(s) => s.take_strays(),
            Link::Http(_) => Vec::new(),
        }
    }

    /// Sends a well-formed request and waits for its response.
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Answer, ClientError> {
        let id = self.next_id();
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let timeout = self.request_timeout;
        self.send_awaiting(
            frame.to_string().as_bytes(),
            &[],
            &Awaited::exactly(json!(id)),
            timeout,
        )
        .await
    }

    /// Sends a notification (no answer expected beyond HTTP's 202).
    pub async fn notify(&mut self, method: &str, params: Value) -> Result<(), ClientError> {
        let frame = json!({"jsonrpc": "2.0", "method": method, "params": params});
        let bytes = frame.to_string().into_bytes();
        let timeout = self.request_timeout;
        if matches!(self.link, Link::Stdio(_)) {
            self.throttle.pace().await;
        }
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
        self.call_tool_as(name, name, arguments, call_token).await
    }

    /// [`Conn::call_tool`] of `name` as sent — a variant spelling, say — carrying the
    /// profile's `meta` and `headers` of the tool `canonical`.
    pub async fn call_tool_as(
        &mut self,
        name: &str,
        canonical: &str,
        arguments: Value,
        call_token: Option<&str>,
    ) -> Result<Answer, ClientError> {
        let (params, extra) = self.call_params_as(name, canonical, arguments, call_token);
        let id = self.next_id();
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        let timeout = self.request_timeout;
        self.send_awaiting(
            frame.to_string().as_bytes(),
            &extra,
            &Awaited::exactly(json!(id)),
            timeout,
        )
        .await
    }

    /// The `tools/call` frame [`Conn::call_tool`] sends, and the HTTP headers the call
    /// token adds (for checks that send it with headers of their own).
    pub fn call_frame(
        &mut self,
        name: &str,
        arguments: Value,
        call_token: Option<&str>,
    ) -> (Vec<u8>, Vec<(String, String)>) {
        let (params, extra) = self.call_params(name, arguments, call_token);
        let id = self.next_id();
        let frame = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params});
        (frame.to_string().into_bytes(), extra)
    }

    /// The `params` of a `tools/call` of `name`, and the HTTP headers that go with it:
    /// the profile's `meta` and `headers` of the tool (placeholders filled, `{uuid}`
    /// fresh), and the call token where the profile puts it.
    pub fn call_params(
        &self,
        name: &str,
        arguments: Value,
        call_token: Option<&str>,
    ) -> (Value, Vec<(String, String)>) {
        self.call_params_as(name, name, arguments, call_token)
    }

    /// [`Conn::call_params`] of `name` as sent, with the extras of the tool `canonical`.
    fn call_params_as(
        &self,
        name: &str,
        canonical: &str,
        arguments: Value,
        call_token: Option<&str>,
    ) -> (Value, Vec<(String, String)>) {
        let mut params = json!({"name": name, "arguments": arguments});
        let mut extra = Vec::new();
        let mut meta = serde_json::Map::new();
        if let Some(extras) = self.extras.get(canonical) {
            if let Value::Object(m) =
                fill_call(&Value::Object(extras.meta.clone()), &self.tenant, canonical)
            {
                meta = m;
            }
            for (k, v) in &extras.headers {
                if let Value::String(v) =
                    fill_call(&Value::String(v.clone()), &self.tenant, canonical)
                {
                    extra.push((k.clone(), v));
                }
            }
        }
        match (&self.placement, call_token) {
            (CallPlacement::Meta(key), Some(token)) => {
                meta.insert(key.clone(), json!(token));
            }
            (CallPlacement::Header(header), Some(token)) => {
                extra.push((header.clone(), token.to_owned()));
            }
            _ => {}
        }
        if !meta.is_empty() {
            params["_meta"] = Value::Object(meta);
        }
        (params, extra)
    }

    /// The answer to a raw HTTP exchange, as [`Answer`]: the response carrying the
    /// request body's id (or `id: null`).
    pub fn answer_of(answer: HttpAnswer, body: &[u8]) -> Answer {
        http_answer(answer, &Awaited::of_frame(body))
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

    /// Ends the connection: a stdio server's process is stopped; an HTTP session is
    /// ended (DELETE), so that a run leaves no sessions behind.
    pub async fn close(self) {
        match self.link {
            Link::Stdio(s) => s.close().await,
            Link::Http(h) => h.end_session().await,
        }
    }
}

fn http_answer(answer: HttpAnswer, awaited: &Awaited) -> Answer {
    // A frame sent again after a rate limit went under an id of its own.
    let resent = |m: &Value| {
        answer
            .resent_id
            .as_ref()
            .is_some_and(|id| m.get("id") == Some(id))
    };
    let message = answer
        .messages
        .iter()
        .find(|m| awaited.answered_by(m) || resent(m))
        .cloned();
    Answer {
        message,
        raw: answer.body.clone(),
        http: Some(answer),
    }
}

/// Awaits every future at once, in one task (for futures that are not `Send`), and
/// returns their outputs in order.
pub async fn join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = futures.map(Box::pin).collect();
    let mut out = Vec::with_capacity(handles.len());
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> = handles.into_iter().map(Some).collect();
    let mut results: Vec<Option<F::Output>> = (0..pending.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut done = true;
        for (i, slot) in pending.iter_mut().enumerate() {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        results[i] = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => done = false,
                }
            }
        }
        if done {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await;
    out.extend(
        results
            .into_iter()
            .map(|r| r.expect("every future finished")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_uuids_are_distinct_and_shaped_as_version_4() {
        let (a, b) = (fresh_uuid(), fresh_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn a_frame_is_answered_by_its_id_and_a_hostile_one_by_null_too() {
        let request = Awaited::exactly(json!(7));
        assert!(request.answered_by(&json!({"id": 7, "result": {}})));
        assert!(!request.answered_by(&json!({"id": null, "error": {"code": -32700}})));
        assert!(!request.answered_by(&json!({"id": 8, "result": {}})));
        assert!(!request.answered_by(&json!({"id": 7, "method": "x"})));
        // Malformed JSON: the id is still read from the text.
        let raw = Awaited::of_frame(br#"{"jsonrpc":"2.0","id":101,"method":"ping""#);
        assert!(raw.answered_by(&json!({"id": 101, "error": {}})));
        assert!(raw.answered_by(&json!({"id": null, "error": {}})));
        assert!(!raw.answered_by(&json!({"id": 3, "result": {}})));
        let string_id = Awaited::of_frame(b"{\"id\": \"a-1\", \"method\": \xff");
        assert!(string_id.answered_by(&json!({"id": "a-1", "error": {}})));
        // No id to be found: any answer.
        assert!(Awaited::of_frame(b"[1,2]").answered_by(&json!({"id": 5, "result": {}})));
    }

    #[test]
    fn per_call_templates_fill_uuid_tenant_and_tool() {
        let filled = fill_call(
            &json!({"key": "{tenant}:{tool}:{uuid}", "n": 1}),
            "acme",
            "charge",
        );
        let key = filled["key"].as_str().unwrap();
        assert!(key.starts_with("acme:charge:") && key.len() == "acme:charge:".len() + 36);
        assert_eq!(filled["n"], 1);
    }
}
