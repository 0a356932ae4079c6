//! T0 — the protocol baseline every other check stands on. Judged on the wire.

use super::{Abort, CheckResult, Ctx};
use crate::client::{
    Answer, ClientError, Conn, LATEST_SESSION_VERSION, STATELESS_VERSION, shorten,
};
use crate::model::Outcome;
use crate::profile::Transport;
use serde_json::{Value, json};

/// Protocol versions a server may legitimately answer `initialize` with.
const KNOWN_VERSIONS: &[&str] = &[
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

fn negotiated(answer: &Answer) -> Option<&str> {
    answer.result()?.get("protocolVersion")?.as_str()
}

/// T0.1: requests before `initialize` are refused; `initialize` negotiates a version.
pub async fn initialize_lifecycle(ctx: &mut Ctx<'_>) -> CheckResult {
    // A request on a fresh connection, before any handshake.
    let mut fresh = ctx.connect("client", None).await?;
    let early = fresh.request("tools/list", json!({})).await?;
    let refused = early.result().is_none();
    ctx.must(
        "request before initialize",
        refused,
        "refused (a JSON-RPC error, or an HTTP 4xx)",
        early.describe(),
    );
    fresh.close().await;

    let mut conn = ctx.connect("client", None).await?;
    let answer = conn.initialize(LATEST_SESSION_VERSION).await?;
    let version = negotiated(&answer).map(str::to_owned);
    ctx.must(
        "initialize negotiates a version",
        version.as_deref().is_some_and(|v| KNOWN_VERSIONS.contains(&v)),
        format!("a result whose protocolVersion is a published revision (asked for {LATEST_SESSION_VERSION})"),
        match &version {
            Some(v) => format!("protocolVersion {v:?}"),
            None => answer.describe(),
        },
    );
    let listed = conn.request("tools/list", json!({})).await?;
    ctx.must(
        "serves after initialize",
        listed
            .result()
            .and_then(|r| r.get("tools"))
            .is_some_and(Value::is_array),
        "tools/list answers with a tools array",
        listed.describe(),
    );
    conn.close().await;

    let mut odd = ctx.connect("client", None).await?;
    let answer = odd.initialize("1999-01-01").await?;
    let offered = negotiated(&answer);
    let ok = match offered {
        Some(v) => v != "1999-01-01" && KNOWN_VERSIONS.contains(&v),
        None => answer.error_code().is_some() || answer.status().is_some_and(|s| s >= 400),
    };
    ctx.must(
        "unsupported version",
        ok,
        "a version the server supports, or an error — never the unknown version echoed",
        answer.describe()
            + &offered
                .map(|v| format!(", protocolVersion {v:?}"))
                .unwrap_or_default(),
    );
    odd.close().await;
    Ok(())
}

/// Sends `frame` and expects JSON-RPC error `code`; silence is a failure.
async fn expect_code(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    case: &str,
    frame: &[u8],
    code: i64,
) -> Result<(), Abort> {
    let wait = ctx.target.silence_timeout();
    let expected = format!("JSON-RPC error {code}");
    match conn.send_raw(frame, wait).await {
        Ok(answer) => {
            let got = answer.error_code();
            ctx.must(case, got == Some(code), expected, answer.describe());
            Ok(())
        }
        Err(ClientError::Timeout { after_ms, .. }) => {
            ctx.must(
                case,
                false,
                expected,
                format!("no answer within {after_ms} ms (silence)"),
            );
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Proves the connection still serves; records a failure (and reconnects) if not.
/// Answers that came for no pending request meanwhile (an extra `id: null` error for
/// the tail of a frame, a late answer) are a warning: one frame, one answer.
async fn still_serving(ctx: &mut Ctx<'_>, conn: &mut Conn, after: &str) -> Result<(), Abort> {
    let case = format!("keeps serving after {after}");
    match conn.ping().await {
        Ok(answer) if answer.result().is_some() => {
            ctx.must(&case, true, "ping answers", answer.describe());
        }
        Ok(answer) => {
            ctx.must(&case, false, "ping answers", answer.describe());
        }
        Err(e) => {
            ctx.must(&case, false, "ping answers", e.to_string());
            *conn = ctx.initialized("client").await?;
        }
    }
    let strays = conn.take_strays();
    if !strays.is_empty() {
        let shown: Vec<String> = strays
            .iter()
            .map(|m| shorten(&m.to_string(), 120))
            .collect();
        ctx.should(
            &format!("one answer to {after}"),
            false,
            "one answer per frame, each carrying its request's id",
            format!(
                "{} answer(s) to no pending request: {}",
                strays.len(),
                shown.join("; ")
            ),
        );
    }
    Ok(())
}

/// T0.2: the four JSON-RPC error codes, and the server keeps serving.
pub async fn json_rpc_error_codes(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut conn = ctx.initialized("client").await?;
    let cases: [(&str, Vec<u8>, i64); 4] = [
        (
            "malformed JSON",
            br#"{"jsonrpc":"2.0","id":101,"method":"ping""#.to_vec(),
            -32700,
        ),
        (
            "not a request",
            br#"{"jsonrpc":"2.0","id":102,"params":{}}"#.to_vec(),
            -32600,
        ),
        (
            "unknown method",
            br#"{"jsonrpc":"2.0","id":103,"method":"mcp_tenancy/no_such_method","params":{}}"#
                .to_vec(),
            -32601,
        ),
        (
            "bad params",
            br#"{"jsonrpc":"2.0","id":104,"method":"tools/call","params":{"arguments":{}}}"#
                .to_vec(),
            -32602,
        ),
    ];
    for (case, frame, code) in cases {
        expect_code(ctx, &mut conn, case, &frame, code).await?;
        still_serving(ctx, &mut conn, case).await?;
    }
    conn.close().await;
    Ok(())
}

/// What T0.3 accepts for one hostile frame.
enum Want {
    /// A JSON-RPC error (or an HTTP 4xx); a success is a warning.
    ErrorElseWarn(&'static str),
    /// Any answer; only silence, a crash or a hang fail.
    AnyAnswer,
}

/// T0.3: hostile frames get a clear answer and do not take the server down.
pub async fn hostile_frames(ctx: &mut Ctx<'_>) -> CheckResult {
    let big = ctx.target.profile.limits.oversized_message_bytes;
    let oversized = format!(
        r#"{{"jsonrpc":"2.0","id":201,"method":"ping","params":{{"_meta":{{"pad":"{}"}}}}}}"#,
        "x".repeat(big)
    );
    let depth = 100_000;
    let deep = format!(
        r#"{{"jsonrpc":"2.0","id":202,"method":"ping","params":{{"_meta":{{"deep":{}{}}}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let mut invalid_utf8 =
        br#"{"jsonrpc":"2.0","id":203,"method":"ping","params":{"_meta":{"s":""#.to_vec();
    invalid_utf8.extend_from_slice(b"\xff\xfe\xc0\x80");
    invalid_utf8.extend_from_slice(br#""}}}"#);
    let cases: Vec<(String, Vec<u8>, Want)> = vec![
        (
            format!("oversized message ({} MiB)", big / (1024 * 1024)),
            oversized.into_bytes(),
            Want::ErrorElseWarn("accepted without a size bound"),
        ),
        (
            format!("nesting {depth} deep"),
            deep.into_bytes(),
            Want::ErrorElseWarn("accepted a 100 000-deep document"),
        ),
        (
            "invalid UTF-8".into(),
            invalid_utf8,
            Want::ErrorElseWarn("accepted invalid UTF-8"),
        ),
        (
            "number out of range".into(),
            br#"{"jsonrpc":"2.0","id":204,"method":"ping","params":{"_meta":{"n":1e400}}}"#
                .to_vec(),
            Want::AnyAnswer,
        ),
        (
            "duplicate keys".into(),
            br#"{"jsonrpc":"2.0","id":205,"method":"ping","method":"tools/list"}"#.to_vec(),
            Want::ErrorElseWarn("accepted an ambiguous message (two `method` members)"),
        ),
    ];
    let mut conn = ctx.initialized("client").await?;
    let wait = ctx.target.request_timeout();
    for (case, frame, want) in cases {
        match conn.send_raw(&frame, wait).await {
            Ok(answer) => {
                let refused =
                    answer.error_code().is_some() || answer.status().is_some_and(|s| s >= 400);
                match want {
                    Want::ErrorElseWarn(why) => {
                        let outcome = if refused {
                            Outcome::Pass
                        } else {
                            Outcome::Warn
                        };
                        let actual = if refused {
                            answer.describe()
                        } else {
                            format!("{} — {why}", answer.describe())
                        };
                        ctx.observe(&case, outcome, "a clear error", actual);
                    }
                    Want::AnyAnswer => ctx.must(
                        &case,
                        true,
                        "an answer (error or result)",
                        answer.describe(),
                    ),
                }
            }
            Err(ClientError::Timeout { after_ms, .. }) => {
                ctx.must(
                    &case,
                    false,
                    "a clear error",
                    format!("no answer within {after_ms} ms"),
                );
            }
            Err(e @ ClientError::Exited { .. }) => {
                ctx.must(&case, false, "a clear error", e.to_string());
            }
            Err(e) => {
                // An HTTP server may reset the connection on a huge body: that is a
                // refusal, as long as it keeps serving (checked next).
                ctx.should(&case, false, "a clear error", e.to_string());
            }
        }
        still_serving(ctx, &mut conn, &case).await?;
    }

    // A huge integer id must come back exactly, or be refused.
    let huge = "123456789012345678901234567890";
    let frame = format!(r#"{{"jsonrpc":"2.0","id":{huge},"method":"ping"}}"#);
    // Its answer may carry the id rounded or saturated: any response answers it.
    match conn.send_raw_any(frame.as_bytes(), wait).await {
        Ok(answer) => {
            let exact = answer.raw.contains(huge);
            let refused = answer.error_code().is_some() && !exact;
            ctx.should(
                "huge integer id",
                exact || refused || answer.status().is_some_and(|s| s >= 400),
                "the id echoed digit for digit, or an error",
                format!("{} (raw: {})", answer.describe(), shorten(&answer.raw, 120)),
            );
        }
        Err(ClientError::Timeout { after_ms, .. }) => {
            ctx.must(
                "huge integer id",
                false,
                "an answer",
                format!("no answer within {after_ms} ms"),
            );
        }
        Err(e) => return Err(e.into()),
    }
    still_serving(ctx, &mut conn, "huge integer id").await?;
    conn.close().await;
    Ok(())
}

fn header(name: &str, value: &str) -> (String, String) {
    (name.to_owned(), value.to_owned())
}

fn visible_ascii(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// T0.4: Streamable HTTP sessions, protocol-version header, Origin.
pub async fn streamable_http_sessions(ctx: &mut Ctx<'_>) -> CheckResult {
    if ctx.target.transport() != Transport::Http {
        return Err(Abort::Skip(
            "Streamable HTTP checks need an HTTP target (this one is stdio)".into(),
        ));
    }
    let timeout = ctx.target.request_timeout();
    let mut a = ctx.initialized("client").await?;
    let mut b = ctx.initialized("client").await?;
    let sid_a = a.http().and_then(|h| h.session_id.clone());
    let sid_b = b.http().and_then(|h| h.session_id.clone());
    ctx.should(
        "session id issued",
        sid_a.is_some(),
        "initialize answers with an Mcp-Session-Id header",
        match &sid_a {
            Some(s) => format!("Mcp-Session-Id: {s}"),
            None => "no Mcp-Session-Id header (stateless server)".into(),
        },
    );
    let (Some(sid_a), Some(sid_b)) = (sid_a, sid_b) else {
        ctx.observe(
            "session cases",
            Outcome::Skip,
            "session ids",
            "skipped: the server issues no sessions",
        );
        return origin_cases(ctx, &mut a).await;
    };
    ctx.must(
        "session ids are visible ASCII, distinct and long enough to be unguessable",
        visible_ascii(&sid_a) && sid_a != sid_b && sid_a.len() >= 16,
        "two sessions: distinct ids of ≥ 16 visible ASCII characters",
        format!("{sid_a:?} and {sid_b:?}"),
    );
    b.close().await;

    let list = br#"{"jsonrpc":"2.0","id":301,"method":"tools/list","params":{}}"#;
    let h = a.http().expect("HTTP target");
    let without: Vec<(String, String)> = h
        .standard_headers()
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("mcp-session-id"))
        .collect();
    let answer = h
        .exchange(reqwest::Method::POST, Some(list), &without, timeout)
        .await?;
    ctx.should(
        "request without a session id",
        (400..500).contains(&answer.status),
        "HTTP 400 (a session id is required after initialize)",
        format!("HTTP {}", answer.status),
    );

    let unknown = h
        .post(
            list,
            &[header(
                "Mcp-Session-Id",
                "00000000-0000-4000-8000-000000000000",
            )],
            timeout,
        )
        .await?;
    ctx.must(
        "unknown session id",
        unknown.status == 404,
        "HTTP 404",
        format!("HTTP {}", unknown.status),
    );

    let bad_version = h
        .post(
            list,
            &[header("MCP-Protocol-Version", "1999-01-01")],
            timeout,
        )
        .await?;
    ctx.must(
        "unsupported MCP-Protocol-Version header",
        bad_version.status == 400,
        "HTTP 400",
        format!("HTTP {}", bad_version.status),
    );

    let ok = h.post(list, &[], timeout).await?;
    ctx.must(
        "the session serves with the negotiated headers",
        ok.status == 200 && ok.messages.iter().any(|m| m.get("result").is_some()),
        "HTTP 200 with a tools/list result",
        format!("HTTP {}", ok.status),
    );

    origin_cases(ctx, &mut a).await?;

    // DELETE ends the session; the id then reads as unknown.
    let h = a.http().expect("HTTP target");
    let headers = h.standard_headers();
    let deleted = h
        .exchange(reqwest::Method::DELETE, None, &headers, timeout)
        .await?;
    if deleted.status == 405 {
        ctx.should(
            "DELETE ends the session",
            false,
            "HTTP 2xx, then 404 for the ended session",
            "HTTP 405: the server does not let clients end sessions",
        );
    } else {
        let after = h.post(list, &[], timeout).await?;
        ctx.must(
            "DELETE ends the session",
            (200..300).contains(&deleted.status) && after.status == 404,
            "HTTP 2xx, then 404 for the ended session",
            format!(
                "DELETE → HTTP {}, then POST → HTTP {}",
                deleted.status, after.status
            ),
        );
    }
    Ok(())
}

async fn origin_cases(ctx: &mut Ctx<'_>, conn: &mut Conn) -> CheckResult {
    let timeout = ctx.target.request_timeout();
    let init = json!({
        "jsonrpc": "2.0", "id": 310, "method": "initialize",
        "params": {"protocolVersion": LATEST_SESSION_VERSION, "capabilities": {}, "clientInfo": {"name": "mcp-tenancy", "version": "0"}}
    })
    .to_string();
    let h = conn.http().expect("HTTP target");
    let foreign = h
        .post(
            init.as_bytes(),
            &[header("Origin", "http://evil.example")],
            timeout,
        )
        .await?;
    ctx.must(
        "foreign Origin",
        foreign.status == 403,
        "HTTP 403 (DNS-rebinding protection)",
        format!("HTTP {}", foreign.status),
    );
    let host = h
        .post(init.as_bytes(), &[header("Host", "evil.example")], timeout)
        .await?;
    ctx.should(
        "foreign Host",
        (400..500).contains(&host.status),
        "HTTP 4xx (403 or 421)",
        format!("HTTP {}", host.status),
    );
    Ok(())
}

/// Skips the check unless `server/discover` shows the target speaks 2026-07-28.
pub(crate) async fn require_stateless(
    h: &crate::client::http::HttpConn,
    timeout: std::time::Duration,
) -> Result<(), Abort> {
    let discover = json!({"jsonrpc": "2.0", "id": 401, "method": "server/discover",
        "params": {"_meta": crate::client::stateless_meta()}});
    let answer = h
        .post(
            discover.to_string().as_bytes(),
            &[header("Mcp-Method", "server/discover")],
            timeout,
        )
        .await?;
    let speaks = answer
        .messages
        .iter()
        .filter_map(|m| m.get("result")?.get("supportedVersions")?.as_array())
        .flatten()
        .any(|v| v == STATELESS_VERSION);
    if speaks {
        Ok(())
    } else {
        Err(Abort::Skip(format!(
            "the target does not speak {STATELESS_VERSION}: server/discover answered HTTP {} {}",
            answer.status,
            shorten(answer.body.trim(), 120)
        )))
    }
}

/// T0.5: under 2026-07-28, `Mcp-Method` / `Mcp-Name` must agree with the body.
pub async fn standard_headers(ctx: &mut Ctx<'_>) -> CheckResult {
    if ctx.target.transport() != Transport::Http {
        return Err(Abort::Skip(
            "the Mcp-Method / Mcp-Name headers exist only on HTTP (this target is stdio)".into(),
        ));
    }
    let timeout = ctx.target.request_timeout();
    let mut conn = ctx.connect("client", None).await?;
    let h = conn.http().expect("HTTP target");
    h.protocol_version = Some(STATELESS_VERSION.into());
    let body = |id: i64, method: &str, params: Value| {
        let mut params = params;
        params["_meta"] = crate::client::stateless_meta();
        json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
    };
    require_stateless(h, timeout).await?;

    let list = body(402, "tools/list", json!({}));
    let control = h
        .post(
            list.as_bytes(),
            &[header("Mcp-Method", "tools/list")],
            timeout,
        )
        .await?;
    let tools: Vec<Value> = control
        .messages
        .iter()
        .filter_map(|m| m.get("result")?.get("tools")?.as_array().cloned())
        .flatten()
        .collect();
    ctx.must(
        "matching headers are served",
        control.status == 200 && control.messages.iter().any(|m| m.get("result").is_some()),
        "HTTP 200 with a tools/list result",
        format!(
            "HTTP {} {}",
            control.status,
            shorten(control.body.trim(), 120)
        ),
    );
    let refused = |a: &crate::client::http::HttpAnswer| {
        a.status >= 400 || a.messages.iter().any(|m| m.get("error").is_some())
    };
    let describe = |a: &crate::client::http::HttpAnswer| {
        let code = a
            .messages
            .iter()
            .find_map(|m| m.get("error")?.get("code")?.as_i64())
            .map(|c| format!(", error {c}"))
            .unwrap_or_default();
        format!("HTTP {}{code}", a.status)
    };

    let mismatch = h
        .post(
            list.as_bytes(),
            &[header("Mcp-Method", "tools/call")],
            timeout,
        )
        .await?;
    ctx.must(
        "Mcp-Method disagrees with the body",
        refused(&mismatch),
        "refused (HTTP 400, error -32020)",
        describe(&mismatch),
    );
    let missing = h.post(list.as_bytes(), &[], timeout).await?;
    ctx.must(
        "Mcp-Method missing",
        refused(&missing),
        "refused (HTTP 400, error -32020)",
        describe(&missing),
    );

    // A tool that needs no arguments, so that only the header can be wrong.
    let tool = tools.iter().find_map(|t| {
        let required = t
            .get("inputSchema")?
            .get("required")
            .and_then(Value::as_array);
        required
            .is_none_or(|r| r.is_empty())
            .then(|| t.get("name")?.as_str())?
    });
    match tool {
        Some(name) => {
            let call = body(403, "tools/call", json!({"name": name, "arguments": {}}));
            let wrong_name = h
                .post(
                    call.as_bytes(),
                    &[
                        header("Mcp-Method", "tools/call"),
                        header("Mcp-Name", "mcp_tenancy_other_tool"),
                    ],
                    timeout,
                )
                .await?;
            ctx.must(
                "Mcp-Name disagrees with the body",
                refused(&wrong_name),
                format!("refused (body calls {name:?}, header names another tool)"),
                describe(&wrong_name),
            );
        }
        None => ctx.observe(
            "Mcp-Name disagrees with the body",
            Outcome::Skip,
            "a tool without required arguments to call",
            "skipped: every listed tool requires arguments",
        ),
    }
    Ok(())
}

/// How long T0.6 holds its connections before it asks again.
const HOLD: std::time::Duration = std::time::Duration::from_secs(4);

/// An authenticated tenant's `initialize` and `tools/list`, each within the request
/// timeout: `Ok(latency)` or what went wrong.
async fn served_now(ctx: &mut Ctx<'_>) -> Result<std::time::Duration, String> {
    let started = std::time::Instant::now();
    let mut conn = match ctx.initialized("tenant").await {
        Ok(c) => c,
        Err(Abort::Client(e)) => return Err(format!("initialize: {e}")),
        Err(Abort::Skip(why) | Abort::NotApplicable(why)) => return Err(why),
        Err(Abort::ControlFailed) => return Err("initialize failed".into()),
    };
    let answer = conn.request("tools/list", json!({})).await;
    conn.close().await;
    match answer {
        Ok(a) if a.result().is_some() => Ok(started.elapsed()),
        Ok(a) => Err(format!("tools/list: {}", a.describe())),
        Err(e) => Err(format!("tools/list: {e}")),
    }
}

/// T0.6: while many connections without credentials are held — idle, with half-sent
/// request heads, with bodies sent a byte at a time — an authenticated tenant is still
/// served within the request timeout.
pub async fn unauthenticated_flood_tolerated(ctx: &mut Ctx<'_>) -> CheckResult {
    super::flood::allowed(ctx)?;
    let url = ctx.target.endpoint().await?;
    let Some((address, host, path)) = super::flood::plain_http(&url) else {
        return Err(Abort::Skip(format!(
            "T0.6 holds raw plain-HTTP connections; the endpoint {url} is not http://host:port/path"
        )));
    };
    // The control: served before the flood.
    if let Err(why) = served_now(ctx).await {
        ctx.must(
            "an authenticated tenant before the flood (control)",
            false,
            "initialize and tools/list served",
            why,
        );
        return Err(Abort::ControlFailed);
    }
    let wanted = ctx.target.profile.limits.flood_connections;
    let fds = super::flood::open_file_limit(wanted + 256);
    let n = wanted.min(fds.saturating_sub(256)).max(1);
    let mut held = super::flood::Held::open(n, &address, &host, &path).await;
    let opened = held.conns.len();
    let kinds = super::flood::Stall::ALL
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ");
    ctx.observe(
        "connections without credentials held",
        Outcome::Pass,
        format!("{n} connections opened ({kinds} in turn)"),
        format!(
            "{opened} opened{}{}",
            if n < wanted {
                format!(" (of the profile's {wanted}: the harness may open {fds} files)")
            } else {
                String::new()
            },
            if held.failed > 0 {
                format!(
                    "; {} could not be opened ({})",
                    held.failed,
                    held.first_failure.as_deref().unwrap_or("refused")
                )
            } else {
                String::new()
            }
        ),
    );
    ctx.should(
        "as many connections as the profile asks",
        n >= wanted,
        format!("{wanted} connections (flood_connections)"),
        if n >= wanted {
            format!("{n} attempted")
        } else {
            format!(
                "only {n} attempted: the harness may open {fds} files (raise its open-file limit)"
            )
        },
    );
    let timeout_ms = ctx.target.request_timeout().as_millis();
    let expected = format!("initialize and tools/list served, each within {timeout_ms} ms");
    let judged = |r: Result<std::time::Duration, String>| match r {
        Ok(took) => (true, format!("served in {} ms", took.as_millis())),
        Err(why) => (false, why),
    };
    let (ok, actual) = judged(served_now(ctx).await);
    ctx.must(
        &format!("an authenticated tenant while {opened} are held"),
        ok,
        &expected,
        actual,
    );
    let started = std::time::Instant::now();
    while started.elapsed() < HOLD {
        held.trickle().await;
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    let (ok, actual) = judged(served_now(ctx).await);
    ctx.must(
        &format!(
            "an authenticated tenant after holding them {} s, trickling",
            HOLD.as_secs()
        ),
        ok,
        &expected,
        actual,
    );
    let (closed, by) = held.closed();
    ctx.observe(
        "connections the target closed",
        Outcome::Pass,
        "reported, not judged (a header or idle timeout, or a cap, closes them)",
        format!(
            "{closed} of {opened} closed after {} s{}",
            HOLD.as_secs(),
            if by.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    by.iter()
                        .map(|(k, v)| format!("{v} {k}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ),
    );
    drop(held);
    let (ok, actual) = judged(served_now(ctx).await);
    ctx.must(
        "an authenticated tenant once they are released",
        ok,
        &expected,
        actual,
    );
    Ok(())
}
