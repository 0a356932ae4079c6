//! An MCP client for both transports that sends well-formed requests and raw hostile
//! frames alike, recording every exchange in a [`Transcript`].
//!
//! - [`Target`]: one per run — builds the server once, launches an HTTP server (and
//!   relaunches it if it died), spawns one stdio process per connection.
//! - [`Conn`]: one MCP connection (a stdio process, or an HTTP session).

pub mod http;
pub mod stdio;
pub mod transcript;

pub use transcript::Transcript;

use crate::profile::{Profile, Tenant, Transport, expand};
use http::{HttpAnswer, HttpConn};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use stdio::{StdioConn, Tail};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
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

/// Cuts `s` to at most `max` characters.
pub fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// A launched HTTP server.
struct Launched {
    child: Child,
    url: String,
    stderr: Tail,
}

/// The target of a run, as the profile describes it.
pub struct Target {
    pub profile: Profile,
    built: Mutex<Option<Result<(), ClientError>>>,
    http_server: Mutex<Option<Launched>>,
}

impl Target {
    pub fn new(profile: Profile) -> Self {
        Self {
            profile,
            built: Mutex::new(None),
            http_server: Mutex::new(None),
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

    /// Runs the profile's `build` command once per run.
    pub async fn prepare(&self) -> Result<(), ClientError> {
        let mut built = self.built.lock().await;
        if let Some(r) = built.as_ref() {
            return r.clone();
        }
        let result = self.run_build().await;
        *built = Some(result.clone());
        result
    }

    async fn run_build(&self) -> Result<(), ClientError> {
        let build: Vec<String> = self
            .profile
            .target
            .build
            .iter()
            .map(|s| expand(s, None))
            .collect();
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
                ClientError::Launch(format!("build command {program:?} failed to start: {e}"))
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ClientError::Launch(format!(
                "build command `{}` failed ({}):\n{}",
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
        match launched.child.try_wait() {
            Ok(Some(status)) => Some(ClientError::Exited {
                status: status.to_string(),
                stderr_tail: launched.stderr.text(),
            }),
            _ => None,
        }
    }

    /// The HTTP endpoint, launching (or relaunching) the server when the profile says how.
    async fn http_url(&self) -> Result<String, ClientError> {
        let target = &self.profile.target;
        let url_template = target.url.clone().unwrap_or_default();
        if target.command.is_empty() {
            return Ok(expand(&url_template, None));
        }
        let mut guard = self.http_server.lock().await;
        if let Some(l) = guard.as_mut()
            && matches!(l.child.try_wait(), Ok(None))
        {
            return Ok(l.url.clone());
        }
        let port = free_port()?;
        let url = expand(&url_template, Some(port));
        let command = self.command(Some(port));
        let (program, args) = command
            .split_first()
            .expect("validated: command is not empty");
        let mut child = Command::new(program)
            .args(args)
            .current_dir(self.cwd())
            .envs(self.env(Some(port)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ClientError::Launch(format!("cannot start {program:?}: {e}")))?;
        let tail = Tail::default();
        if let Some(mut stderr) = child.stderr.take() {
            let tail = tail.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    tail.push(&buf[..n]);
                }
            });
        }
        let deadline = tokio::time::Instant::now() + Duration::from_millis(target.ready_timeout_ms);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
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

    /// Opens a new connection labelled `label` (e.g. `acme#1`), as `tenant` if given.
    pub async fn connect(
        &self,
        label: &str,
        _tenant: Option<&Tenant>,
        transcript: &Transcript,
    ) -> Result<Conn, ClientError> {
        self.prepare().await?;
        let link = match self.transport() {
            Transport::Stdio => {
                let env = self.env(None);
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
                let headers = self
                    .profile
                    .target
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), expand(v, None)))
                    .collect();
                Link::Http(HttpConn::new(url, headers, label, transcript.clone()))
            }
        };
        Ok(Conn {
            link,
            next_id: 0,
            request_timeout: self.request_timeout(),
        })
    }

    /// Stops a launched server.
    pub async fn shutdown(&self) {
        if let Some(mut l) = self.http_server.lock().await.take() {
            let _ = l.child.kill().await;
        }
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

/// One MCP connection.
pub struct Conn {
    link: Link,
    next_id: i64,
    request_timeout: Duration,
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
