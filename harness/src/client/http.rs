//! A Streamable HTTP connection: POSTs JSON-RPC, reads JSON or SSE answers.

use super::pace::Throttle;
use super::{Awaited, ClientError, Transcript};
use crate::model::Direction;
use serde_json::Value;
use std::time::Duration;

/// What one HTTP exchange produced.
#[derive(Debug, Clone, Default)]
pub struct HttpAnswer {
    pub status: u16,
    /// Lower-cased header names.
    pub headers: Vec<(String, String)>,
    /// Every JSON-RPC message found in the body (JSON body or SSE `data:` events).
    pub messages: Vec<Value>,
    pub body: String,
    /// The id the frame was last sent under, when a rate limit had it sent again under
    /// an id of its own: its answer carries that id.
    pub resent_id: Option<Value>,
}

impl HttpAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How a GET stream went ([`HttpConn::stream_until`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// Not opened: the server answered this status.
    Refused(u16),
    /// Opened, then ended by the server (or the connection closed).
    Ended,
    /// Still open at the deadline.
    Open,
}

/// One logical MCP connection over HTTP (a session once initialised).
pub struct HttpConn {
    client: reqwest::Client,
    pub url: String,
    /// Headers sent with every request (profile headers, credentials).
    pub base_headers: Vec<(String, String)>,
    pub session_id: Option<String>,
    pub protocol_version: Option<String>,
    /// Lower-cased names of headers whose values the transcript does not show.
    pub redacted: Vec<String>,
    /// Pacing and rate-limit retries for this connection's tenant.
    pub throttle: Option<Throttle>,
    /// The profile's per-request signer (`[auth] sign`) and the directory it runs in.
    pub signer: Option<(Vec<String>, std::path::PathBuf)>,
    label: String,
    transcript: Transcript,
}

fn path_of(url: &str) -> &str {
    url.split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/")
}

/// Splits an SSE stream into the `data` of each complete event.
fn sse_events(text: &str) -> Vec<String> {
    let text = text.replace("\r\n", "\n");
    text.split("\n\n")
        .filter_map(|event| {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            (!data.is_empty()).then(|| data.join("\n"))
        })
        .collect()
}

fn messages_in(content_type: &str, body: &str) -> Vec<Value> {
    if content_type.starts_with("text/event-stream") {
        sse_events(body)
            .iter()
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .collect()
    } else {
        match serde_json::from_str::<Value>(body) {
            Ok(Value::Array(items)) => items,
            Ok(v @ Value::Object(_)) => vec![v],
            _ => Vec::new(),
        }
    }
}

impl HttpConn {
    pub fn new(
        url: String,
        base_headers: Vec<(String, String)>,
        label: &str,
        transcript: Transcript,
    ) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(4)
            .build()
            .expect("HTTP client");
        Self {
            client,
            url,
            base_headers,
            session_id: None,
            protocol_version: None,
            redacted: vec!["authorization".into()],
            throttle: None,
            signer: None,
            label: label.to_owned(),
            transcript,
        }
    }

    /// The headers a well-behaved client sends: Accept, Content-Type, the session and
    /// protocol-version headers once known, and the base headers.
    pub fn standard_headers(&self) -> Vec<(String, String)> {
        let mut h = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            (
                "Accept".to_owned(),
                "application/json, text/event-stream".to_owned(),
            ),
        ];
        if let Some(s) = &self.session_id {
            h.push(("Mcp-Session-Id".into(), s.clone()));
        }
        if let Some(v) = &self.protocol_version {
            h.push(("MCP-Protocol-Version".into(), v.clone()));
        }
        h.extend(self.base_headers.iter().cloned());
        h
    }

    /// Sends one request with exactly `headers` (no defaults added) and reads the
    /// answer until a JSON-RPC response arrives, the stream ends, or `timeout`. The
    /// request waits for its tenant's pace, and a rate-limited answer (HTTP 429, or the
    /// profile's signal) is waited out and the request sent again, within the retry
    /// budget.
    pub async fn exchange(
        &self,
        method: reqwest::Method,
        body: Option<&[u8]>,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpAnswer, ClientError> {
        let Some(throttle) = &self.throttle else {
            return self.exchange_once(method, body, headers, timeout).await;
        };
        let mut awaited = Awaited::of_frame(body.unwrap_or_default());
        let mut retries = throttle.retries();
        let mut body = body.map(<[u8]>::to_vec);
        let mut resent_id = None;
        loop {
            throttle.pace().await;
            let mut answer = self
                .exchange_once(method.clone(), body.as_deref(), headers, timeout)
                .await?;
            answer.resent_id = resent_id.clone();
            let message = answer.messages.iter().find(|m| awaited.answered_by(m));
            let limited = throttle.limited(
                Some(answer.status),
                answer.header("retry-after"),
                message,
                retries.attempt(),
            );
            if !retries
                .wait_out(limited, &self.transcript, &self.label)
                .await?
            {
                return Ok(answer);
            }
            // Sent again under an id of its own: an id is never reused in a session.
            let id = retry_id();
            if let Some(again) = body.as_deref().and_then(|b| super::renumbered(b, id)) {
                awaited = Awaited::of_frame(&again);
                body = Some(again);
                resent_id = Some(Value::from(id));
            }
        }
    }

    /// The headers the profile's signer adds to this request (none without a signer).
    async fn signature(
        &self,
        method: &reqwest::Method,
        body: &[u8],
        headers: &[(String, String)],
    ) -> Result<Vec<(String, String)>, ClientError> {
        use base64::Engine as _;
        use tokio::io::AsyncWriteExt as _;
        let Some((command, cwd)) = &self.signer else {
            return Ok(Vec::new());
        };
        let (program, args) = command
            .split_first()
            .ok_or_else(|| ClientError::Harness("auth.sign is empty".into()))?;
        let program = if program.starts_with("./") || program.starts_with("../") {
            cwd.join(program).to_string_lossy().into_owned()
        } else {
            program.clone()
        };
        let request = serde_json::json!({
            "method": method.as_str(),
            "url": self.url,
            "headers": headers
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect::<serde_json::Map<String, Value>>(),
            "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
        });
        let failed =
            |why: String| ClientError::Harness(format!("the signer `{}` {why}", command.join(" ")));
        let mut child = tokio::process::Command::new(&program)
            .args(args)
            .current_dir(cwd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(format!("failed to start: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(request.to_string().as_bytes())
                .await
                .map_err(|e| failed(format!("did not take the request: {e}")))?;
        }
        let out = tokio::time::timeout(SIGNER_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| {
                failed(format!(
                    "gave no answer within {} s",
                    SIGNER_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| failed(format!("failed: {e}")))?;
        if !out.status.success() {
            return Err(failed(format!(
                "failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| failed(format!("printed {l:?}, not `Name: value`")))
            })
            .collect()
    }

    /// [`Self::exchange`] without pacing or retries.
    async fn exchange_once(
        &self,
        method: reqwest::Method,
        body: Option<&[u8]>,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpAnswer, ClientError> {
        let signature = self
            .signature(&method, body.unwrap_or_default(), headers)
            .await?;
        let signed: Vec<(String, String)>;
        let headers = if signature.is_empty() {
            headers
        } else {
            signed = headers.iter().cloned().chain(signature).collect();
            &signed[..]
        };
        let shown_headers: Vec<String> = headers
            .iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("content-type") && !k.eq_ignore_ascii_case("accept")
            })
            .map(|(k, v)| {
                if self.redacted.iter().any(|r| k.eq_ignore_ascii_case(r)) {
                    format!("{k}: <redacted>")
                } else {
                    format!("{k}: {v}")
                }
            })
            .collect();
        let channel = format!(
            "{method} {} {}",
            path_of(&self.url),
            shown_headers.join("; ")
        );
        self.transcript.record(
            Direction::Sent,
            &self.label,
            channel.trim_end(),
            body.unwrap_or_default(),
        );
        let awaited = Awaited::of_frame(body.unwrap_or_default());
        let raw_method = method.clone();
        let mut req = self.client.request(method, &self.url);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        if let Some(b) = body {
            req = req.body(b.to_vec());
        }
        let run = async {
            let mut resp = req.send().await?;
            let status = resp.status().as_u16();
            let headers: Vec<(String, String)> = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let content_type = resp
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let mut raw = Vec::new();
            // SSE streams may stay open after the response; stop once the answer to this
            // request has arrived.
            while let Some(chunk) = resp.chunk().await? {
                raw.extend_from_slice(&chunk);
                if content_type.starts_with("text/event-stream")
                    && messages_in(&content_type, &String::from_utf8_lossy(&raw))
                        .iter()
                        .any(|m| awaited.answered_by(m))
                {
                    break;
                }
            }
            let body = String::from_utf8_lossy(&raw).into_owned();
            Ok::<_, reqwest::Error>(HttpAnswer {
                status,
                messages: messages_in(&content_type, &body),
                headers,
                body,
                resent_id: None,
            })
        };
        let outcome = match tokio::time::timeout(timeout, run).await {
            // The server answered (a 413, say) before it read the whole body and closed;
            // hyper reports the failed write, not the answer. Read the answer as curl
            // does: write the request on a plain connection while reading.
            Ok(Err(e)) if body.is_some_and(|b| !b.is_empty()) && body_write_failed(&e) => {
                match early_answer(
                    &self.url,
                    &raw_method,
                    body.unwrap_or_default(),
                    headers,
                    timeout,
                )
                .await
                {
                    Some(answer) => {
                        self.transcript.note(
                            &self.label,
                            format!(
                                "the server answered before reading the whole body ({}); read on a plain connection",
                                describe(&e)
                            ),
                        );
                        Ok(Ok(answer))
                    }
                    None => Ok(Err(e)),
                }
            }
            other => other,
        };
        match outcome {
            Ok(Ok(answer)) => {
                let ct = answer.header("content-type").unwrap_or("-").to_owned();
                self.transcript.record(
                    Direction::Received,
                    &self.label,
                    format!("{} {ct}", answer.status),
                    answer.body.as_bytes(),
                );
                Ok(answer)
            }
            Ok(Err(e)) => {
                let err = ClientError::Http(describe(&e));
                self.transcript.note(&self.label, err.to_string());
                Err(err)
            }
            Err(_) => {
                let err = ClientError::Timeout {
                    what: "waiting for an HTTP answer".into(),
                    after_ms: timeout.as_millis() as u64,
                    stderr_tail: String::new(),
                };
                self.transcript.note(&self.label, err.to_string());
                Err(err)
            }
        }
    }

    /// POSTs `body` with the standard headers plus `extra` (an `extra` header replaces a
    /// standard one of the same name).
    pub async fn post(
        &self,
        body: &[u8],
        extra: &[(String, String)],
        timeout: Duration,
    ) -> Result<HttpAnswer, ClientError> {
        let mut headers: Vec<(String, String)> = self
            .standard_headers()
            .into_iter()
            .filter(|(k, _)| !extra.iter().any(|(e, _)| e.eq_ignore_ascii_case(k)))
            .collect();
        headers.extend(extra.iter().cloned());
        self.exchange(reqwest::Method::POST, Some(body), &headers, timeout)
            .await
    }
}

impl HttpConn {
    /// Ends the session (DELETE), as a polite client does when it is done, so that a
    /// run leaves no sessions behind to count against a server's caps. Paced like any
    /// request; the answer is neither judged nor recorded (a server without sessions
    /// or without DELETE, 405, is left as it is).
    pub async fn end_session(&self) {
        let Some(id) = &self.session_id else {
            return;
        };
        if let Some(throttle) = &self.throttle {
            throttle.pace().await;
        }
        let mut headers: Vec<(String, String)> = self
            .standard_headers()
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("content-type"))
            .collect();
        if !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("mcp-session-id"))
        {
            headers.push(("Mcp-Session-Id".into(), id.clone()));
        }
        let Ok(signature) = self
            .signature(&reqwest::Method::DELETE, b"", &headers)
            .await
        else {
            return;
        };
        headers.extend(signature);
        let mut req = self.client.delete(&self.url);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let _ = tokio::time::timeout(Duration::from_secs(2), req.send()).await;
    }

    /// Opens the session's GET stream and collects the notifications (messages with a
    /// `method` and no `id`) it carries within `wait`. A server that offers no stream
    /// (HTTP 405) yields none.
    pub async fn listen(&self, wait: Duration) -> Result<Vec<Value>, ClientError> {
        Ok(self
            .listen_all(wait)
            .await?
            .into_iter()
            .filter(|m| m.get("id").is_none() && m.get("method").is_some())
            .collect())
    }

    /// The session's GET stream request (signed, if the profile signs), recorded in the
    /// transcript with `note`.
    async fn stream_request(&self, note: &str) -> Result<reqwest::RequestBuilder, ClientError> {
        let mut headers: Vec<(String, String)> = self
            .standard_headers()
            .into_iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("content-type") && !k.eq_ignore_ascii_case("accept")
            })
            .collect();
        headers.push(("Accept".into(), "text/event-stream".into()));
        let signature = self.signature(&reqwest::Method::GET, b"", &headers).await?;
        headers.extend(signature);
        self.transcript.record(
            Direction::Sent,
            &self.label,
            format!("GET {} ({note})", path_of(&self.url)),
            b"",
        );
        let mut req = self.client.get(&self.url);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        Ok(req)
    }

    /// Opens the session's GET stream and reads it until it ends or `until`: how it
    /// went ([`StreamEnd`]).
    pub async fn stream_until(
        &self,
        until: tokio::time::Instant,
    ) -> Result<StreamEnd, ClientError> {
        let req = self.stream_request("held open until it ends").await?;
        let mut resp = match tokio::time::timeout_at(until, req.send()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(ClientError::Http(describe(&e))),
            Err(_) => return Ok(StreamEnd::Open),
        };
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            self.transcript.record(
                Direction::Received,
                &self.label,
                format!("{status} (GET stream)"),
                b"",
            );
            return Ok(StreamEnd::Refused(status));
        }
        loop {
            match tokio::time::timeout_at(until, resp.chunk()).await {
                Ok(Ok(Some(_))) => {}
                Ok(_) => {
                    self.transcript.note(&self.label, "the GET stream ended");
                    return Ok(StreamEnd::Ended);
                }
                Err(_) => return Ok(StreamEnd::Open),
            }
        }
    }

    /// [`HttpConn::listen`], keeping every message the stream carries (a response on
    /// it too).
    pub async fn listen_all(&self, wait: Duration) -> Result<Vec<Value>, ClientError> {
        let req = self
            .stream_request(&format!("listening {} ms", wait.as_millis()))
            .await?;
        let deadline = tokio::time::Instant::now() + wait;
        let mut resp = match tokio::time::timeout_at(deadline, req.send()).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => return Err(ClientError::Http(describe(&e))),
            Err(_) => return Ok(Vec::new()),
        };
        let status = resp.status().as_u16();
        let mut raw = Vec::new();
        while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline, resp.chunk()).await {
            raw.extend_from_slice(&chunk);
        }
        let body = String::from_utf8_lossy(&raw).into_owned();
        self.transcript.record(
            Direction::Received,
            &self.label,
            format!("{status} (GET stream)"),
            body.as_bytes(),
        );
        Ok(messages_in("text/event-stream", &body))
    }
}

/// How long the profile's signer may take for one request.
const SIGNER_TIMEOUT: Duration = Duration::from_secs(10);

/// A fresh id for a frame sent again after a rate limit: far above the ids the
/// connections count from 1, and never repeated in a run.
fn retry_id() -> i64 {
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1 << 40);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Did sending fail while writing the request body (the server stopped reading)?
fn body_write_failed(e: &reqwest::Error) -> bool {
    let chain = describe(e).to_lowercase();
    chain.contains("error writing a body")
        || chain.contains("broken pipe")
        || chain.contains("connection reset")
}

/// Sends one request on a plain TCP connection (http:// only), writing the body while
/// reading the answer, and parses the answer — for servers that answer before they have
/// read the body. `None` when no answer could be read.
async fn early_answer(
    url: &str,
    method: &reqwest::Method,
    body: &[u8],
    headers: &[(String, String)],
    timeout: Duration,
) -> Option<HttpAnswer> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        if !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("host") {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    let exchange = async {
        let address = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        let stream = tokio::net::TcpStream::connect(address).await.ok()?;
        let (mut reader, mut writer) = stream.into_split();
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        // The write may fail half-way: the answer is what matters.
        let write = async move {
            let _ = writer.write_all(&request).await;
            let _ = writer.shutdown().await;
        };
        let read = async {
            let mut raw = Vec::new();
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = reader.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            raw
        };
        let ((), raw) = tokio::join!(write, read);
        parse_response(&raw)
    };
    tokio::time::timeout(timeout, exchange).await.ok().flatten()
}

/// Parses an HTTP/1.1 response (status line, headers, a body by Content-Length, chunks
/// or the rest of the stream). A response cut short by the server's reset keeps what
/// arrived: its status line at least.
fn parse_response(raw: &[u8]) -> Option<HttpAnswer> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(raw.len());
    let head = String::from_utf8_lossy(&raw[..split]);
    if !head.starts_with("HTTP/1.") {
        return None;
    }
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let rest = raw.get(split + 4..).unwrap_or_default();
    let bytes = if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        let mut out = Vec::new();
        let mut at = rest;
        while let Some(eol) = at.windows(2).position(|w| w == b"\r\n") {
            let size_text = String::from_utf8_lossy(&at[..eol]);
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                break;
            }
            let end = (eol + 2).checked_add(size)?;
            out.extend_from_slice(at.get(eol + 2..end)?);
            at = at.get(end.checked_add(2)?..).unwrap_or_default();
        }
        out
    } else if let Some(n) = header("content-length").and_then(|n| n.parse::<usize>().ok()) {
        rest[..n.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    let content_type = header("content-type").unwrap_or("").to_owned();
    let body = String::from_utf8_lossy(&bytes).into_owned();
    Some(HttpAnswer {
        status,
        messages: messages_in(&content_type, &body),
        headers,
        body,
        resent_id: None,
    })
}

/// reqwest's errors hide the cause in `source()`; show the chain.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_yield_their_json_messages() {
        let body = "data: \nid: 0\nretry: 3000\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\nid: 1\n\n";
        let msgs = messages_in("text/event-stream", body);
        assert_eq!(msgs.len(), 1);
        assert!(super::super::is_response(&msgs[0]));
    }

    #[test]
    fn raw_responses_parse_by_length_and_by_chunks() {
        let by_length = b"HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":null}xx";
        let a = parse_response(by_length).unwrap();
        assert_eq!((a.status, a.body.as_str()), (413, "{\"id\":null}"));
        assert_eq!(a.header("Content-Type"), Some("application/json"));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap().body, "abcde");
        assert!(parse_response(b"garbage").is_none());
        let absurd =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc";
        assert_eq!(parse_response(absurd).map(|a| a.status), None);
        // Cut short by a reset: the status is what arrived.
        let cut = parse_response(b"HTTP/1.1 413 Payload Too Large\r\nContent-Ty").unwrap();
        assert_eq!((cut.status, cut.body.as_str()), (413, ""));
    }

    #[test]
    fn json_bodies_may_be_one_message_or_a_batch() {
        assert_eq!(
            messages_in("application/json", "{\"id\":1,\"result\":{}}").len(),
            1
        );
        assert_eq!(
            messages_in("application/json", "[{\"id\":1},{\"id\":2}]").len(),
            2
        );
        assert!(messages_in("text/plain", "Not Found").is_empty());
    }
}
