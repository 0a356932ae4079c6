//! What the flood checks (T0.6, T5.8) share: whether the profile lets them flood, raw
//! requests sent outside any session's transcript (thousands of them would bury it;
//! each round is summarised instead), tallies, and latency figures.

use super::{Abort, Ctx};
use crate::client::{Conn, LATEST_SESSION_VERSION};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// May this check flood the target? Skips with the reason when the profile opts out,
/// or signs each request (the signer is a process per request: no flood through it).
pub fn allowed(ctx: &Ctx<'_>) -> Result<(), Abort> {
    let profile = &ctx.target.profile;
    if !profile.limits.flood {
        return Err(Abort::Skip(format!(
            "{} floods the target, and the profile opts out ([limits] flood = false)",
            ctx.def.id
        )));
    }
    if !profile.auth.sign.is_empty() {
        return Err(Abort::Skip(format!(
            "{} sends thousands of requests, and the profile signs each one through a command ([auth] sign); floods through a signer are not supported",
            ctx.def.id
        )));
    }
    Ok(())
}

/// The headers `conn` sends, without its session: a new request as the same bearer.
pub fn credential_headers(conn: &mut Conn) -> Vec<(String, String)> {
    conn.http()
        .map(|h| {
            h.standard_headers()
                .into_iter()
                .filter(|(k, _)| {
                    !k.eq_ignore_ascii_case("mcp-session-id")
                        && !k.eq_ignore_ascii_case("mcp-protocol-version")
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What one raw request got.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// `None`: no HTTP answer (timeout, reset, refused connection).
    pub status: Option<u16>,
    pub session: Option<String>,
    /// The `Retry-After` header, as sent.
    pub retry_after: Option<String>,
    pub timed_out: bool,
    pub error: Option<String>,
    pub body: String,
}

/// Sends raw requests as one bearer, on a connection pool of its own.
pub struct Flooder {
    client: reqwest::Client,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
}

impl Flooder {
    pub fn new(url: &str, headers: Vec<(String, String)>, timeout: Duration) -> Arc<Self> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(64)
            .build()
            .expect("HTTP client");
        Arc::new(Self {
            client,
            url: url.to_owned(),
            headers,
            timeout,
        })
    }

    /// Sends `method` with `body` and this bearer's headers plus `extra`.
    pub async fn send(
        &self,
        method: reqwest::Method,
        body: Option<Vec<u8>>,
        extra: &[(String, String)],
    ) -> Reply {
        let mut request = self.client.request(method, &self.url);
        for (k, v) in self.headers.iter().chain(extra) {
            request = request.header(k.as_str(), v.as_str());
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let sent = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let session = header("mcp-session-id");
            let retry_after = header("retry-after");
            let streamed =
                header("content-type").is_some_and(|c| c.starts_with("text/event-stream"));
            // An SSE answer to a request ends with its response; read what came within
            // a moment rather than wait for a stream that may stay open.
            let body = if streamed {
                match tokio::time::timeout(Duration::from_millis(500), response.bytes()).await {
                    Ok(Ok(b)) => String::from_utf8_lossy(&b).into_owned(),
                    _ => String::new(),
                }
            } else {
                String::from_utf8_lossy(&response.bytes().await.unwrap_or_default()).into_owned()
            };
            Ok::<_, reqwest::Error>(Reply {
                status: Some(status),
                session,
                retry_after,
                body: crate::client::shorten(&body, 300),
                ..Reply::default()
            })
        };
        match tokio::time::timeout(self.timeout, sent).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => Reply {
                error: Some(e.to_string()),
                ..Reply::default()
            },
            Err(_) => Reply {
                timed_out: true,
                ..Reply::default()
            },
        }
    }

    /// An `initialize` request: opens a session on a server that keeps them.
    pub async fn initialize(&self) -> Reply {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": LATEST_SESSION_VERSION, "capabilities": {},
            "clientInfo": {"name": "mcp-tenancy-flood", "version": env!("CARGO_PKG_VERSION")}}});
        self.send(
            reqwest::Method::POST,
            Some(body.to_string().into_bytes()),
            &[],
        )
        .await
    }

    /// `tools/list` on session `id` (none: a server that keeps no sessions).
    pub async fn list_on(&self, id: Option<&str>, version: Option<&str>) -> Reply {
        let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
        let mut extra: Vec<(String, String)> = id
            .map(|id| ("Mcp-Session-Id".to_owned(), id.to_owned()))
            .into_iter()
            .collect();
        if let Some(v) = version {
            extra.push(("MCP-Protocol-Version".to_owned(), v.to_owned()));
        }
        self.send(
            reqwest::Method::POST,
            Some(body.to_string().into_bytes()),
            &extra,
        )
        .await
    }

    /// [`Flooder::list_on`], a rate limit's refusal (429, or 503 with `Retry-After`)
    /// waited out and the request sent again, within `budget`.
    pub async fn patient_list_on(
        &self,
        id: Option<&str>,
        version: Option<&str>,
        budget: Duration,
    ) -> Reply {
        let until = Instant::now() + budget;
        loop {
            let reply = self.list_on(id, version).await;
            let limited = reply.status == Some(429)
                || (reply.status == Some(503) && reply.retry_after.is_some());
            if !limited || Instant::now() >= until {
                return reply;
            }
            let wait = reply
                .retry_after
                .as_deref()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(1)
                .clamp(1, 10);
            let left = until.saturating_duration_since(Instant::now());
            tokio::time::sleep(Duration::from_secs(wait).min(left)).await;
        }
    }

    /// Ends session `id` (DELETE); what a polite client does, and how the flood cleans up.
    pub async fn end(&self, id: &str) -> Reply {
        let extra = [("Mcp-Session-Id".to_owned(), id.to_owned())];
        self.send(reqwest::Method::DELETE, None, &extra).await
    }
}

/// Runs `count` jobs `job(i)` with at most `width` at once; their replies in order.
pub async fn many<F, Fut>(count: usize, width: usize, job: F) -> Vec<Reply>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Reply> + Send + 'static,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..width.clamp(1, count.max(1)) {
        let (job, next) = (Arc::clone(&job), Arc::clone(&next));
        workers.spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return out;
                }
                out.push((i, job(i).await));
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(done) = workers.join_next().await {
        all.extend(done.unwrap_or_default());
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

/// Replies counted by what they were.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub sent: usize,
    /// Status → count.
    pub statuses: BTreeMap<u16, usize>,
    /// Refusals (4xx, 5xx) with a `Retry-After`.
    pub hinted: usize,
    /// Refusals without one.
    pub unhinted: usize,
    pub timed_out: usize,
    pub errors: usize,
    pub first_error: Option<String>,
}

impl Tally {
    pub fn of(replies: &[Reply]) -> Self {
        let mut t = Tally {
            sent: replies.len(),
            ..Tally::default()
        };
        for r in replies {
            match r.status {
                Some(s) => {
                    *t.statuses.entry(s).or_default() += 1;
                    if s >= 400 {
                        if r.retry_after.is_some() {
                            t.hinted += 1;
                        } else {
                            t.unhinted += 1;
                        }
                    }
                }
                None if r.timed_out => t.timed_out += 1,
                None => {
                    t.errors += 1;
                    if t.first_error.is_none() {
                        t.first_error.clone_from(&r.error);
                    }
                }
            }
        }
        t
    }

    /// `2000 sent: 256 × 200, 1744 × 429 (all with Retry-After)`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .statuses
            .iter()
            .map(|(s, n)| format!("{n} × {s}"))
            .collect();
        if self.timed_out > 0 {
            parts.push(format!("{} timed out", self.timed_out));
        }
        if self.errors > 0 {
            parts.push(format!(
                "{} without an answer ({})",
                self.errors,
                self.first_error.as_deref().unwrap_or("connection error")
            ));
        }
        let hints = match (self.hinted, self.unhinted) {
            (0, 0) => String::new(),
            (_, 0) => " (every refusal with Retry-After)".to_owned(),
            (0, n) => format!(" ({n} refusals without Retry-After)"),
            (h, n) => format!(" ({h} refusals with Retry-After, {n} without)"),
        };
        format!("{} sent: {}{hints}", self.sent, parts.join(", "))
    }
}

/// `12 calls, median 4 ms, p95 9 ms, max 31 ms`.
pub fn latencies(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "no calls".into();
    }
    let mut ms: Vec<u128> = samples.iter().map(Duration::as_millis).collect();
    ms.sort_unstable();
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!(
        "{} calls, median {} ms, p95 {} ms, max {} ms",
        ms.len(),
        at(0.5),
        at(0.95),
        ms[ms.len() - 1]
    )
}

/// Megabytes, for reports.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// Wall-clock stopwatch for a report line.
pub fn since(start: Instant) -> String {
    format!("{:.1} s", start.elapsed().as_secs_f64())
}

/// Raises the harness's own open-file soft limit towards `want` (up to the hard
/// limit); returns the limit in force.
pub fn open_file_limit(want: usize) -> usize {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
            return 1024;
        }
        let wanted = (want as libc::rlim_t).min(l.rlim_max);
        if l.rlim_cur < wanted {
            let raised = libc::rlimit {
                rlim_cur: wanted,
                rlim_max: l.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                l.rlim_cur = wanted;
            }
        }
    }
    usize::try_from(l.rlim_cur).unwrap_or(usize::MAX)
}

/// How a held connection misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Connected, nothing sent.
    Idle,
    /// Half a request head, a header line now and then, never the blank line.
    HalfHead,
    /// A whole head announcing a large body, then a byte now and then.
    SlowBody,
}

impl Stall {
    pub const ALL: [Stall; 3] = [Stall::Idle, Stall::HalfHead, Stall::SlowBody];

    pub fn name(self) -> &'static str {
        match self {
            Stall::Idle => "idle",
            Stall::HalfHead => "half-sent heads",
            Stall::SlowBody => "slow bodies",
        }
    }
}

/// `http://host:port/path` → (`host:port`, host, path). `None` for anything else
/// (TLS included: the raw connections speak plain HTTP).
pub fn plain_http(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let address = if authority.contains(':') && !authority.ends_with(']') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Some((address, host.to_owned(), path.to_owned()))
}

/// Connections held without credentials.
pub struct Held {
    pub conns: Vec<(Stall, tokio::net::TcpStream)>,
    /// Connections that could not be opened (refused, timed out).
    pub failed: usize,
    pub first_failure: Option<String>,
}

impl Held {
    /// Opens `n` connections to `address`, the stalls in turn, 64 at a time — and
    /// stops once 64 in a row could not be opened (the target accepts no more).
    pub async fn open(n: usize, address: &str, host: &str, path: &str) -> Self {
        use tokio::io::AsyncWriteExt as _;
        const WIDTH: usize = 64;
        let mut conns = Vec::with_capacity(n);
        let (mut failed, mut in_a_row, mut first_failure) = (0, 0, None);
        let mut set = tokio::task::JoinSet::new();
        let mut started = 0;
        while started < n || !set.is_empty() {
            while started < n && set.len() < WIDTH && in_a_row < WIDTH {
                let stall = Stall::ALL[started % Stall::ALL.len()];
                let (address, host, path) = (address.to_owned(), host.to_owned(), path.to_owned());
                set.spawn(async move {
                    let connect = tokio::net::TcpStream::connect(&address);
                    let mut tcp = match tokio::time::timeout(Duration::from_secs(3), connect).await {
                        Ok(Ok(tcp)) => tcp,
                        Ok(Err(e)) => return Err(e.to_string()),
                        Err(_) => return Err("connect timed out after 3 s".to_owned()),
                    };
                    let head = match stall {
                        Stall::Idle => String::new(),
                        Stall::HalfHead => format!(
                            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                        ),
                        Stall::SlowBody => format!(
                            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000000\r\n\r\n{{"
                        ),
                    };
                    let _ = tcp.write_all(head.as_bytes()).await;
                    Ok((stall, tcp))
                });
                started += 1;
            }
            if let Some(done) = set.join_next().await {
                match done {
                    Ok(Ok(c)) => {
                        conns.push(c);
                        in_a_row = 0;
                    }
                    Ok(Err(e)) => {
                        failed += 1;
                        in_a_row += 1;
                        first_failure.get_or_insert(e);
                    }
                    Err(e) => {
                        failed += 1;
                        in_a_row += 1;
                        first_failure.get_or_insert(e.to_string());
                    }
                }
            }
            if in_a_row >= WIDTH && set.is_empty() {
                break;
            }
        }
        Self {
            conns,
            failed,
            first_failure,
        }
    }

    /// Sends every stalled connection one more trickle (a header line, a body byte).
    pub async fn trickle(&mut self) {
        use tokio::io::AsyncWriteExt as _;
        for (stall, tcp) in &mut self.conns {
            let more: &[u8] = match stall {
                Stall::Idle => continue,
                Stall::HalfHead => b"X-Trickle: 1\r\n",
                Stall::SlowBody => b" ",
            };
            let _ = tokio::time::timeout(Duration::from_millis(5), tcp.write_all(more)).await;
        }
    }

    /// How many of them the target has closed (read end-of-stream or an error), by stall.
    pub fn closed(&self) -> (usize, BTreeMap<&'static str, usize>) {
        let mut by = BTreeMap::new();
        let mut total = 0;
        for (stall, tcp) in &self.conns {
            let mut buf = [0u8; 512];
            let gone = loop {
                match tcp.try_read(&mut buf) {
                    Ok(0) => break true,
                    // An answer (a 408, a 401) was sent: read on to see if it closed.
                    Ok(_) => continue,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
                    Err(_) => break true,
                }
            };
            if gone {
                total += 1;
                *by.entry(stall.name()).or_default() += 1;
            }
        }
        (total, by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_connections_need_a_plain_http_url() {
        assert_eq!(
            plain_http("http://127.0.0.1:8931/mcp"),
            Some(("127.0.0.1:8931".into(), "127.0.0.1".into(), "/mcp".into()))
        );
        assert_eq!(
            plain_http("http://localhost"),
            Some(("localhost:80".into(), "localhost".into(), "/".into()))
        );
        assert_eq!(plain_http("https://example.com/mcp"), None);
    }

    #[test]
    fn a_tally_names_statuses_hints_and_silences() {
        let reply = |status: Option<u16>, hint: bool| Reply {
            status,
            retry_after: hint.then(|| "1".to_owned()),
            timed_out: status.is_none(),
            ..Reply::default()
        };
        let t = Tally::of(&[
            reply(Some(200), false),
            reply(Some(429), true),
            reply(Some(429), true),
            reply(Some(503), false),
            reply(None, false),
        ]);
        assert_eq!(
            t.describe(),
            "5 sent: 1 × 200, 2 × 429, 1 × 503, 1 timed out (2 refusals with Retry-After, 1 without)"
        );
        assert_eq!(
            latencies(&[Duration::from_millis(5), Duration::from_millis(1)]),
            "2 calls, median 5 ms, p95 5 ms, max 5 ms"
        );
    }
}
