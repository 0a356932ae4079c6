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
    pub retry_after: bool,
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
            let retry_after = header("retry-after").is_some();
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

    /// `tools/list` on session `id`.
    pub async fn list_on(&self, id: &str, version: Option<&str>) -> Reply {
        let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
        let mut extra = vec![("Mcp-Session-Id".to_owned(), id.to_owned())];
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
                        if r.retry_after {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_names_statuses_hints_and_silences() {
        let reply = |status: Option<u16>, hint: bool| Reply {
            status,
            retry_after: hint,
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
