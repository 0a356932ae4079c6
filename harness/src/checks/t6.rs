//! T6 — the server gates every invocation (seed mistake 6).
//!
//! Filtering `tools/list` is not a gate. These checks call what the caller was never
//! shown — another tenant's tools, by their exact names and by every spelling of
//! them — on every path into the server: a session that never listed, a JSON-RPC
//! batch, frames pipelined back to back (over HTTP, where one request carries one
//! message: requests in flight at once). Batches and pipelines carry valid calls too,
//! read back to prove the path reached the server; silence is a failure, never a
//! refusal. Each call carries a call token that would be
//! valid for it (minted for the caller's tenant, naming the tool as sent), so that only
//! the entitlement can refuse it. Effects are read back as in T3 ([`Stage`]).

use super::t3::{Expect, Stage, call_token, lists, refused, shows};
use super::{Abort, CheckResult, Ctx, volatile};
use crate::client::{Answer, ClientError, Conn};
use crate::model::Direction;
use crate::profile::Tenant;
use crate::variants::{self, visible};
use serde_json::{Value, json};
use std::time::Duration;

/// How long the pipelined and batched cases read the connection between looks at what
/// has arrived (up to the profile's silence timeout in all).
const POLL: Duration = Duration::from_millis(100);

/// The tenants entitled to `tool`, for reports.
fn owners(ctx: &Ctx<'_>, tool: &str) -> String {
    ctx.target.profile.owners(tool).join(", ")
}

/// The marker for a call of `tool`, when its argument template takes one.
fn marker_for(ctx: &mut Ctx<'_>, stage: &Stage, tool: &str) -> Option<String> {
    let caller = stage.caller.tenant.id.clone();
    ctx.takes_marker(tool).then(|| ctx.marker_for(&caller))
}

/// The shape of an answer with the tool's name (and the marker) blanked out: what a
/// caller could learn from it — the HTTP status, then the JSON-RPC error, or the
/// `isError` result's content, or that it succeeded, or the raw body. Two refusals with
/// the same shape say the same thing.
fn shape(answer: &Answer, name: &str, marker: Option<&str>) -> Value {
    let blank = |text: &str| {
        let mut text = text.to_owned();
        if let Some(m) = marker {
            text = text.replace(m, "<marker>");
        }
        // The name as sent and as JSON escapes it (the raw text may carry either).
        let escaped = Value::String(name.to_owned()).to_string();
        text.replace(escaped.trim_matches('"'), "<tool>")
            .replace(name, "<tool>")
            .replace(&name.escape_debug().to_string(), "<tool>")
    };
    // The name blanked in the JSON text; a text that no longer parses is kept as text.
    let blanked = |v: &Value| {
        let text = blank(&v.to_string());
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    let mut out = serde_json::Map::new();
    if let Some(status) = answer.status() {
        out.insert("http".into(), json!(status));
    }
    match (
        answer.message.as_ref().and_then(|m| m.get("error")),
        answer.result(),
    ) {
        (Some(error), _) => out.insert("error".into(), blanked(error)),
        // Its structured content counts too: `reason: "not_entitled"` beside
        // `"unknown_tool"` is an oracle, whatever the text says.
        (None, Some(result)) if refused(answer) => out.insert(
            "isError result".into(),
            blanked(&json!({
                "content": result.get("content").cloned().unwrap_or(Value::Null),
                "structuredContent": result.get("structuredContent").cloned().unwrap_or(Value::Null),
            })),
        ),
        (None, Some(_)) => out.insert("result".into(), json!("a successful result")),
        (None, None) => out.insert(
            "body".into(),
            blanked(&Value::String(answer.raw.trim().to_owned())),
        ),
    };
    Value::Object(out)
}

/// T6.1: a tool that exists for another tenant is refused exactly like an unknown
/// tool, with no effect — for every tenant as the caller.
pub async fn unlisted_tool_refused(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut callers = Callers::default();
    for tenant in ctx.acting_tenants() {
        let Some(mut stage) = callers.open(ctx, &tenant, Opening::AnyLacking).await? else {
            continue;
        };
        for tool in ctx.covered_foreign(&tenant) {
            unlisted_case(ctx, &mut stage, &tool).await?;
        }
        stage.close().await;
    }
    callers.finish(NO_CALLER)
}

/// Why a T6 check found no caller.
const NO_CALLER: &str = "no tenant both lacks a tool another tenant has and has a list tool (and a write tool, its own or another tenant's) to prove effects with (the profile's [[tenants]] tools and [tools.X] roles)";

/// Which acting tenants a T6 check opens a stage for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Tenants lacking a tool another has, with or without a write tool of their own.
    AnyLacking,
    /// Tenants lacking a tool another has, with a write tool of their own.
    WritingLacking,
    /// Every tenant (with or without a write tool).
    Any,
}

/// The callers of a T6 check, opened in turn: a tenant the profile gives nothing to
/// prove effects with is passed over; a failed control (already recorded) fails the
/// check at the end, after the other tenants were tried.
#[derive(Default)]
struct Callers {
    opened: usize,
    control_failed: bool,
}

impl Callers {
    /// The stage of `tenant` as the caller, or `None` to pass it over.
    async fn open(
        &mut self,
        ctx: &mut Ctx<'_>,
        tenant: &Tenant,
        opening: Opening,
    ) -> Result<Option<Stage>, Abort> {
        if opening != Opening::Any && ctx.target.profile.foreign_tools(tenant).is_empty() {
            return Ok(None);
        }
        let opened = match opening {
            Opening::WritingLacking => Stage::open(ctx, false, Some(&tenant.id)).await,
            _ => Stage::open_any(ctx, &tenant.id).await,
        };
        match opened {
            Ok(stage) => {
                self.opened += 1;
                Ok(Some(stage))
            }
            Err(Abort::Skip(_)) => Ok(None),
            Err(Abort::ControlFailed) => {
                self.control_failed = true;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The check's end: a failed control fails it, no caller at all skips it.
    fn finish(self, none: &str) -> CheckResult {
        if self.control_failed {
            Err(Abort::ControlFailed)
        } else if self.opened == 0 {
            Err(Abort::Skip(none.to_owned()))
        } else {
            Ok(())
        }
    }
}

/// Refusal-latency trials per foreign tool (T6.1), each against an unknown tool,
/// interleaved.
pub const LATENCY_TRIALS: usize = 20;
/// A foreign tool refused this many times slower (or faster) than an unknown one, by
/// median, and at least [`LATENCY_FAIL_MS`] apart, fails: the timing tells the tool
/// exists.
pub const LATENCY_FAIL_RATIO: f64 = 5.0;
pub const LATENCY_FAIL_MS: f64 = 50.0;
/// A smaller but clear difference warns: medians this many times apart and at least
/// [`LATENCY_WARN_MS`] apart.
pub const LATENCY_WARN_RATIO: f64 = 2.0;
pub const LATENCY_WARN_MS: f64 = 10.0;

/// The median of `samples` (milliseconds; not empty).
fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    }
}

/// How two refusal-latency medians compare: `None` when alike, else the outcome and
/// why.
pub fn latency_verdict(
    foreign_ms: f64,
    unknown_ms: f64,
) -> Option<(crate::model::Outcome, String)> {
    let (slow, fast) = (
        foreign_ms.max(unknown_ms),
        foreign_ms.min(unknown_ms).max(0.001),
    );
    let ratio = slow / fast;
    let apart = slow - fast;
    let which = if foreign_ms > unknown_ms {
        "slower"
    } else {
        "faster"
    };
    let why = format!(
        "the foreign tool is refused {ratio:.1}× {which} than an unknown one (medians {foreign_ms:.1} ms vs {unknown_ms:.1} ms)"
    );
    if ratio > LATENCY_FAIL_RATIO && apart > LATENCY_FAIL_MS {
        Some((crate::model::Outcome::Fail, why))
    } else if ratio > LATENCY_WARN_RATIO && apart > LATENCY_WARN_MS {
        Some((crate::model::Outcome::Warn, why))
    } else {
        None
    }
}

/// Compares the refusal of `tool` with `args` against the unknown tool's with the same
/// arguments, and records case `case`. Returns the answer to `tool`.
async fn compare_refusal(
    ctx: &mut Ctx<'_>,
    stage: &mut Stage,
    case: &str,
    tool: &str,
    args: Value,
    marker: Option<&str>,
) -> Result<Answer, Abort> {
    let a = stage.caller.tenant.id.clone();
    let unknown = format!("{tool}_mcpt_unknown");
    let answer = stage.call(ctx, tool, tool, args.clone()).await?;
    let control = stage.call(ctx, &unknown, tool, args.clone()).await?;
    // The unknown tool asked twice: what differs between those two answers is
    // volatile (a trace id, a time), and only that is set aside.
    let again = stage.call(ctx, &unknown, tool, args).await?;
    let (first, second) = (
        shape(&control, &unknown, marker),
        shape(&again, &unknown, marker),
    );
    let paths = volatile::volatile_paths(&first, &second);
    let mut ignored = std::collections::BTreeSet::new();
    let seen = volatile::blank(&shape(&answer, tool, marker), &paths, &mut ignored).to_string();
    let baseline = volatile::blank(&first, &paths, &mut ignored).to_string();
    let normalised = if ignored.is_empty() {
        String::new()
    } else {
        format!(
            " (volatile members ignored: {})",
            ignored.into_iter().collect::<Vec<_>>().join(", ")
        )
    };
    let actual = if !refused(&answer) {
        format!(
            "accepted: {} — {a} ran a tool it is not entitled to; the server filters only what it lists",
            answer.describe()
        )
    } else if seen != baseline {
        format!(
            "refused differently from an unknown tool — {tool}: {seen}; unknown tool {unknown}: {baseline}. The difference tells {a} that {tool} exists for another tenant (an existence oracle)"
        )
    } else {
        format!("refused exactly like the unknown tool {unknown}: {seen}{normalised}")
    };
    ctx.must(
        case,
        refused(&answer) && seen == baseline,
        format!(
            "refused exactly like the unknown tool {unknown} (same shape, the name aside): {baseline}"
        ),
        actual,
    );
    Ok(answer)
}

/// Interleaved refusal-latency trials of `tool` against an unknown tool
/// ([`LATENCY_TRIALS`] each, in a random order per pair), judged by
/// [`latency_verdict`].
async fn compare_latency(
    ctx: &mut Ctx<'_>,
    stage: &mut Stage,
    case: &str,
    tool: &str,
    args: &Value,
) -> CheckResult {
    let unknown = format!("{tool}_mcpt_unknown");
    let (mut foreign, mut unknowns) = (Vec::new(), Vec::new());
    for _ in 0..LATENCY_TRIALS {
        let mut pair = [(tool.to_owned(), true), (unknown.clone(), false)];
        ctx.rng.shuffle(&mut pair);
        for (name, is_foreign) in pair {
            let token = call_token(ctx, &stage.caller.tenant, &name, tool).await?;
            let limited = ctx.transcript.retries().rate_limited;
            let started = std::time::Instant::now();
            let answer = stage
                .caller
                .conn
                .call_tool_as(&name, tool, args.clone(), token.as_deref())
                .await?;
            let ms = started.elapsed().as_secs_f64() * 1000.0;
            if !refused(&answer) {
                // Judged by the shape comparison; a served call has no refusal to time.
                return Ok(());
            }
            if ctx.transcript.retries().rate_limited != limited {
                // A rate limit's back-off is in this time: not a refusal's.
                continue;
            }
            if is_foreign {
                foreign.push(ms);
            } else {
                unknowns.push(ms);
            }
        }
    }
    if foreign.len() < LATENCY_TRIALS / 2 || unknowns.len() < LATENCY_TRIALS / 2 {
        ctx.observe(
            case,
            crate::model::Outcome::Skip,
            "refused as fast as an unknown tool",
            format!(
                "skipped: rate limits were waited out in most trials ({} and {} of {LATENCY_TRIALS} untouched), so their times say nothing of the refusals",
                foreign.len(),
                unknowns.len()
            ),
        );
        return Ok(());
    }
    let (f, u) = (median(&mut foreign), median(&mut unknowns));
    let expected = format!(
        "refused as fast as an unknown tool ({LATENCY_TRIALS} interleaved trials each; fails beyond {LATENCY_FAIL_RATIO}× and {LATENCY_FAIL_MS} ms apart by median, warns beyond {LATENCY_WARN_RATIO}× and {LATENCY_WARN_MS} ms)"
    );
    match latency_verdict(f, u) {
        None => ctx.observe(
            case,
            crate::model::Outcome::Pass,
            expected,
            format!("medians {f:.2} ms ({tool}) and {u:.2} ms (unknown)"),
        ),
        Some((outcome, why)) => ctx.observe(
            case,
            outcome,
            expected,
            format!("{why}: the timing tells the caller that {tool} exists"),
        ),
    }
    Ok(())
}

/// One foreign tool: its refusal against an unknown tool's — with the profile's
/// arguments and with invalid ones (a server that validates arguments before the
/// entitlement answers differently), then in time — and its effects.
async fn unlisted_case(ctx: &mut Ctx<'_>, stage: &mut Stage, tool: &str) -> CheckResult {
    let a = stage.caller.tenant.id.clone();
    let marker = marker_for(ctx, stage, tool);
    let m = marker.clone().unwrap_or_default();
    let args = Value::Object(stage.arguments(ctx, tool, &m));
    let witness = stage.witness(ctx, tool, marker.as_deref()).await?;
    let case = format!("{a} calls {tool} (a tool of {})", owners(ctx, tool));
    let answer = compare_refusal(ctx, stage, &case, tool, args.clone(), marker.as_deref()).await?;
    if witness.writes() {
        stage
            .judge(
                ctx,
                &format!("{case}: no effect"),
                Some(&answer),
                &witness,
                Expect::Refused,
            )
            .await?;
    }
    // Invalid arguments: an unexpected member no schema names.
    let mut invalid = stage.arguments(ctx, tool, &m);
    invalid.insert(
        "mcpt_unexpected".into(),
        json!({"not": ["in", "any", "schema"]}),
    );
    compare_refusal(
        ctx,
        stage,
        &format!("{case} with invalid arguments"),
        tool,
        Value::Object(invalid),
        marker.as_deref(),
    )
    .await?;
    compare_latency(ctx, stage, &format!("{case}: refusal latency"), tool, &args).await
}

/// The JSON-RPC responses the transcript recorded from index `from` on, batch
/// answers flattened.
fn responses_since(ctx: &Ctx<'_>, from: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for frame in ctx.transcript.frames().into_iter().skip(from) {
        if frame.direction != Direction::Received {
            continue;
        }
        // An HTTP event stream carries `data:` lines; stdio a bare JSON text.
        let texts: Vec<&str> = if frame.body.trim_start().starts_with(['{', '[']) {
            vec![frame.body.as_str()]
        } else {
            frame
                .body
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .collect()
        };
        for text in texts {
            match serde_json::from_str::<Value>(text.trim()) {
                Ok(Value::Array(items)) => out.extend(items),
                Ok(v @ Value::Object(_)) => out.push(v),
                _ => {}
            }
        }
    }
    out
}

/// The answer to request `id` among `responses`, if one came.
fn answer_to(responses: &[Value], id: i64) -> Option<Answer> {
    responses
        .iter()
        .find(|r| r.get("id").and_then(Value::as_i64) == Some(id))
        .map(|r| Answer {
            message: Some(r.clone()),
            http: None,
            raw: r.to_string(),
        })
}

/// A call prepared as a raw frame: its id, marker, witness and token.
struct Prepared {
    id: i64,
    frame: Value,
    /// The HTTP headers the call carries (per-tool headers, a call token in a header).
    headers: Vec<(String, String)>,
}

async fn prepare(
    ctx: &mut Ctx<'_>,
    stage: &mut Stage,
    tool: &str,
    marker: &str,
) -> Result<Prepared, Abort> {
    let tenant = stage.caller.tenant.clone();
    let token = call_token(ctx, &tenant, tool, tool).await?;
    let args = Value::Object(stage.arguments(ctx, tool, marker));
    let id = stage.caller.conn.next_id();
    let (frame, headers) = stage.frame(id, tool, args, token.as_deref());
    Ok(Prepared { id, frame, headers })
}

/// T6.2: a session that never listed, a JSON-RPC batch and pipelined frames (over
/// HTTP: concurrent requests) all meet the same gate — for every acting tenant with a
/// write tool of its own, and every tool it lacks.
pub async fn every_path_gated(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut callers = Callers::default();
    for tenant in ctx.acting_tenants() {
        let opened = callers.open(ctx, &tenant, Opening::WritingLacking).await?;
        let Some(mut stage) = opened else {
            continue;
        };
        for forbidden in ctx.covered_foreign(&tenant) {
            every_path(ctx, &mut stage, &forbidden).await?;
        }
        stage.close().await;
    }
    callers.finish(
        "no tenant both lacks a tool another tenant has and has a write and a list tool to prove effects with",
    )
}

/// For a forbidden write without a marker sent beside the caller's valid writes: the
/// caller's own lists change by those writes (a count, a total — not only records), so
/// only the other tenant's lists judge it. Returns the note for the case's name.
fn beside_valid_writes(witness: &mut super::Witness, caller: &str, other: &str) -> String {
    // Where the other tenant cannot be read (sessions share no state), the caller's
    // lists are all there is: they stay, the valid calls' records set aside.
    if witness.marker.is_some() || !witness.writes() || !witness.before.contains_key(other) {
        return String::new();
    }
    witness.before.remove(caller);
    format!(" (judged in {other}'s lists: {caller}'s own lists change by the valid calls)")
}

/// T6.2's three paths for one forbidden tool.
async fn every_path(ctx: &mut Ctx<'_>, stage: &mut Stage, forbidden: &str) -> CheckResult {
    let forbidden = forbidden.to_owned();
    let a = stage.caller.tenant.id.clone();
    let write = stage.write.clone();

    // 1. The caller's session has never sent tools/list (the stage does not list).
    let marker = marker_for(ctx, stage, &forbidden);
    let m = marker.clone().unwrap_or_default();
    let args = Value::Object(stage.arguments(ctx, &forbidden, &m));
    let witness = stage.witness(ctx, &forbidden, marker.as_deref()).await?;
    let answer = stage.call(ctx, &forbidden, &forbidden, args).await?;
    stage
        .judge(
            ctx,
            &format!("{a} calls {forbidden} in a session that never sent tools/list"),
            Some(&answer),
            &witness,
            Expect::Refused,
        )
        .await?;

    // 2. A batch: an entitled write and the forbidden call in one JSON-RPC array.
    let wait = ctx.target.silence_timeout();
    let allowed_marker = ctx.marker_for(&a);
    let allowed = prepare(ctx, stage, &write, &allowed_marker).await?;
    let marker = marker_for(ctx, stage, &forbidden);
    let bad = prepare(ctx, stage, &forbidden, marker.as_deref().unwrap_or("")).await?;
    let batch = Value::Array(vec![allowed.frame.clone(), bad.frame.clone()]).to_string();
    let mut witness = stage.witness(ctx, &forbidden, marker.as_deref()).await?;
    witness.beside = vec![allowed_marker.clone()];
    let judged_in = beside_valid_writes(&mut witness, &a, &stage.other.tenant.id);
    let from = ctx.transcript.frames().len();
    let direct = unless_silent(stage.send_raw(&batch, &bad.headers, wait).await)?;
    let responses = collect(ctx, stage, from, &[allowed.id, bad.id], wait).await?;
    let exchange = Exchange {
        kind: "batch",
        responses,
        direct: direct.into_iter().collect(),
        allowed: vec![(allowed.id, allowed_marker)],
        bad: bad.id,
        wait,
    };
    judge_path(
        ctx,
        stage,
        &format!("{forbidden} inside a JSON-RPC batch beside a valid {write} call{judged_in}"),
        &exchange,
        &witness,
    )
    .await?;

    // 3. Pipelined: three frames written back to back before any answer is read. Over
    // HTTP one request carries one message (a body of three lines is one malformed
    // message), so there the three calls go as three POSTs in flight at once.
    let first_marker = ctx.marker_for(&a);
    let first = prepare(ctx, stage, &write, &first_marker).await?;
    let marker = marker_for(ctx, stage, &forbidden);
    let bad = prepare(ctx, stage, &forbidden, marker.as_deref().unwrap_or("")).await?;
    let last_marker = ctx.marker_for(&a);
    let last = prepare(ctx, stage, &write, &last_marker).await?;
    let mut witness = stage.witness(ctx, &forbidden, marker.as_deref()).await?;
    witness.beside = vec![first_marker.clone(), last_marker.clone()];
    let judged_in_pipeline = beside_valid_writes(&mut witness, &a, &stage.other.tenant.id);
    let from = ctx.transcript.frames().len();
    let (case, direct) = if stage.caller.conn.http().is_some() {
        let direct = post_at_once(stage, [&first, &bad, &last], wait).await?;
        (
            format!(
                "{forbidden} sent between two {write} calls, all three POSTs in flight at once{judged_in_pipeline}"
            ),
            direct,
        )
    } else {
        let text = [&first.frame, &bad.frame, &last.frame]
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        let direct = unless_silent(stage.send_raw(&text, &bad.headers, wait).await)?;
        (
            format!(
                "{forbidden} pipelined between two {write} calls (three frames written back to back before reading){judged_in_pipeline}"
            ),
            direct.into_iter().collect(),
        )
    };
    let seen = collect(ctx, stage, from, &[first.id, bad.id, last.id], wait).await?;
    // Over HTTP each call's answer came in its own response, and it comes first: the
    // transcript also holds the rate limit's refusals of frames sent again, and the
    // answer to a frame sent again under an id of its own.
    let mut responses: Vec<Value> = direct.iter().filter_map(|a| a.message.clone()).collect();
    responses.extend(seen);
    let exchange = Exchange {
        kind: if stage.caller.conn.http().is_some() {
            "set of concurrent requests"
        } else {
            "pipeline"
        },
        responses,
        direct,
        allowed: vec![(first.id, first_marker), (last.id, last_marker)],
        bad: bad.id,
        wait,
    };
    judge_path(ctx, stage, &case, &exchange, &witness).await
}

/// The answer of a raw exchange, or `None` when none came in time: silence is judged
/// from what the transcript holds afterwards (a stdio batch answer is an array, which
/// the single-answer wait does not take). Any other client error (the target exited,
/// the connection broke) ends the check as a failure.
fn unless_silent(sent: Result<Answer, ClientError>) -> Result<Option<Answer>, Abort> {
    match sent {
        Ok(answer) => Ok(Some(answer)),
        Err(ClientError::Timeout { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// POSTs the three calls at once on the caller's HTTP session, each with its own call
/// token (in its frame, or in the profile's header).
async fn post_at_once(
    stage: &mut Stage,
    calls: [&Prepared; 3],
    wait: Duration,
) -> Result<Vec<Answer>, Abort> {
    let headers = calls.map(|c| c.headers.clone());
    let bodies = calls.map(|c| c.frame.to_string());
    let Some(h) = stage.caller.conn.http() else {
        return Ok(Vec::new());
    };
    let h = &*h;
    let (x, y, z) = tokio::join!(
        h.post(bodies[0].as_bytes(), &headers[0], wait),
        h.post(bodies[1].as_bytes(), &headers[1], wait),
        h.post(bodies[2].as_bytes(), &headers[2], wait),
    );
    let mut out = Vec::new();
    for ((posted, body), call) in [x, y, z].into_iter().zip(&bodies).zip(calls) {
        let answer = unless_silent(posted.map(|answer| Conn::answer_of(answer, body.as_bytes())))?;
        out.extend(answer.map(|mut answer| {
            // Sent again after a rate limit under an id of its own: the answer is this
            // call's all the same.
            if let Some(m) = answer
                .message
                .as_mut()
                .filter(|m| m.get("id") != Some(&json!(call.id)))
            {
                m["id"] = json!(call.id);
            }
            answer
        }));
    }
    Ok(out)
}

/// Waits up to `wait` until every call of `ids` has an answer in the transcript since
/// index `from`, or the frame was refused as a whole. Over stdio the connection is read
/// meanwhile; over HTTP the answers came in the response bodies already.
async fn collect(
    ctx: &Ctx<'_>,
    stage: &mut Stage,
    from: usize,
    ids: &[i64],
    wait: Duration,
) -> Result<Vec<Value>, Abort> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let responses = responses_since(ctx, from);
        let done = whole_refusal(&responses, &[]).is_some()
            || ids.iter().all(|id| answer_to(&responses, *id).is_some());
        if done || stage.caller.conn.http().is_some() || tokio::time::Instant::now() >= deadline {
            return Ok(responses);
        }
        stage.caller.conn.notifications(POLL).await?;
    }
}

/// A refusal of a whole frame: a JSON-RPC error without an id (`id: null`), or an HTTP
/// error that answers no call in particular.
fn whole_refusal(responses: &[Value], direct: &[Answer]) -> Option<Answer> {
    let unaddressed = |m: &Value| m.get("id").is_none_or(Value::is_null);
    // The direct answer first: it carries the HTTP status as well.
    direct
        .iter()
        .find(|d| match &d.message {
            Some(m) => m.get("error").is_some() && unaddressed(m),
            None => d.status().is_some_and(|s| s >= 400),
        })
        .cloned()
        .or_else(|| {
            responses
                .iter()
                .find(|r| r.get("error").is_some() && unaddressed(r))
                .map(|r| Answer {
                    message: Some(r.clone()),
                    http: None,
                    raw: r.to_string(),
                })
        })
}

/// A raw exchange of T6.2: valid calls (ids and markers) and the forbidden call, sent
/// as one batch or pipelined, and what came back.
struct Exchange {
    /// "batch", "pipeline", …
    kind: &'static str,
    responses: Vec<Value>,
    /// The direct answers (the one read after writing, or one per POST).
    direct: Vec<Answer>,
    allowed: Vec<(i64, String)>,
    bad: i64,
    wait: Duration,
}

/// Proves the exchange reached the server — every valid call was answered and took
/// effect (read back), or was refused with no effect, or the whole frame was refused —
/// and then judges the forbidden call as T3 does. Silence is a failure, never a
/// refusal.
async fn judge_path(
    ctx: &mut Ctx<'_>,
    stage: &mut Stage,
    case: &str,
    exchange: &Exchange,
    witness: &super::Witness,
) -> CheckResult {
    let a = stage.caller.tenant.id.clone();
    let kind = exchange.kind;
    let waited = exchange.wait.as_millis();
    let whole = whole_refusal(&exchange.responses, &exchange.direct);
    let listed = lists(ctx, &mut stage.caller).await?;
    let (mut ok, mut processed, mut notes) = (true, 0, Vec::new());
    for (id, marker) in &exchange.allowed {
        let answer = answer_to(&exchange.responses, *id);
        let shown = shows(&listed, marker);
        let note = match (&answer, shown) {
            (Some(answer), true) if answer.succeeded() => {
                processed += 1;
                format!(
                    "valid call #{id}: {}, and its marker shows in {a}'s lists",
                    answer.describe()
                )
            }
            (Some(answer), false) if refused(answer) => {
                format!(
                    "valid call #{id}: refused ({}), no effect",
                    answer.describe()
                )
            }
            (None, false) if whole.is_some() => continue,
            (Some(answer), true) => {
                ok = false;
                format!(
                    "valid call #{id}: {}, yet its marker shows in {a}'s lists — refused on the wire but carried out",
                    answer.describe()
                )
            }
            (Some(answer), false) => {
                ok = false;
                format!(
                    "valid call #{id}: {}, but its marker does not show in {a}'s lists — the answer claims an effect the read-back does not find",
                    answer.describe()
                )
            }
            (None, true) => {
                ok = false;
                format!("valid call #{id}: no answer, yet its marker shows in {a}'s lists")
            }
            (None, false) => {
                ok = false;
                format!("valid call #{id}: no answer within {waited} ms, and no effect")
            }
        };
        notes.push(note);
    }
    let own = answer_to(&exchange.responses, exchange.bad);
    let forbidden = own.clone().or_else(|| whole.clone());
    match (&own, &whole) {
        (Some(answer), _) => notes.push(format!("the forbidden call: {}", answer.describe())),
        (None, Some(whole)) if processed == 0 => notes.insert(
            0,
            format!(
                "the {kind} was refused as a whole ({}): no call in it ran, so the forbidden call was refused with no effect",
                whole.describe()
            ),
        ),
        (None, Some(whole)) => notes.push(format!(
            "the forbidden call: no answer of its own; the {kind} drew {}",
            whole.describe()
        )),
        (None, None) => {
            ok = false;
            notes.push(format!(
                "the forbidden call: no answer within {waited} ms — a hang or a silently dropped call, not a refusal"
            ));
        }
    }
    if ok && whole.is_none() && processed == exchange.allowed.len() {
        notes.insert(0, format!("the {kind} was processed"));
    }
    ctx.must(
        &format!("{case}: the {kind} reaches the server"),
        ok,
        format!(
            "every call answered, each valid {} call taking effect (read back) or refused with no effect — or the whole {kind} refused",
            stage.write
        ),
        notes.join("; "),
    );
    match forbidden {
        Some(answer) => {
            stage
                .judge(ctx, case, Some(&answer), witness, Expect::Refused)
                .await
        }
        None => Ok(()),
    }
}

/// T6.3: no spelling of a tool name reaches a tool the gate would refuse by its exact
/// name — neither another tenant's tool nor (through a lookup that folds names) the
/// caller's own write tool. Every acting tenant calls every tool it lacks, each
/// spelling twice: with a call token naming the spelling, and with one naming the
/// tool itself (a dispatcher that normalises the name after the gate checks the token
/// against the tool it found).
pub async fn name_variants_gated(ctx: &mut Ctx<'_>) -> CheckResult {
    let tenant_ids: Vec<String> = ctx.tenants().into_iter().map(|t| t.id).collect();
    let ids: Vec<&str> = tenant_ids.iter().map(String::as_str).collect();
    let mut callers = Callers::default();
    for tenant in ctx.acting_tenants() {
        let Some(mut stage) = callers.open(ctx, &tenant, Opening::Any).await? else {
            continue;
        };
        let a = stage.caller.tenant.id.clone();
        let mut tools: Vec<(String, String, bool)> = ctx
            .covered_foreign(&tenant)
            .into_iter()
            .map(|t| {
                let why = format!("a tool of {} only", owners(ctx, &t));
                (t, why, true)
            })
            .collect();
        if stage.caller_writes {
            tools.push((stage.write.clone(), format!("{a}'s own write tool"), false));
        }
        for (tool, why, foreign) in tools {
            // Calls that carry a marker of their own (or write nothing) are judged
            // together, by one read-back after the last of them: each marker names
            // its call. A write without a marker is read back call by call.
            let marker_less_write = !ctx.takes_marker(&tool) && ctx.target.profile.writes(&tool);
            let mut pending = Vec::new();
            for variant in variants::tool_name_variants(&tool, &ids) {
                let mut token_names = vec![variant.value.clone()];
                // The canonical name's token matters only where a foreign tool could be
                // reached: the caller may call its own tool by that token anyway.
                if foreign && ctx.tokens_placed() {
                    token_names.push(tool.clone());
                }
                for token_name in token_names {
                    let marker = marker_for(ctx, &stage, &tool);
                    let m = marker.clone().unwrap_or_default();
                    let args = Value::Object(stage.arguments(ctx, &tool, &m));
                    let witness = stage.witness(ctx, &tool, marker.as_deref()).await?;
                    let answer = stage
                        .call_named(ctx, &variant.value, &token_name, &tool, args)
                        .await?;
                    let token = if !ctx.tokens_placed() {
                        String::new()
                    } else if token_name == tool {
                        format!(", token naming {tool}")
                    } else {
                        ", token naming the spelling".to_owned()
                    };
                    let case = format!(
                        "{a} calls {tool} ({why}) spelt {:?}: {}{token}",
                        visible(&variant.value),
                        variant.label
                    );
                    if marker_less_write {
                        stage
                            .judge(ctx, &case, Some(&answer), &witness, Expect::Refused)
                            .await?;
                    } else {
                        pending.push((case, answer, witness));
                    }
                }
            }
            let read = stage
                .read_back(ctx, pending.iter().any(|(_, _, w)| w.writes()))
                .await?;
            for (case, answer, witness) in pending {
                stage.judge_read_back(ctx, &case, Some(&answer), &witness, Expect::Refused, &read);
            }
        }
        stage.close().await;
    }
    callers.finish(
        "no tenant has a list tool and a write tool (its own or another tenant's) to prove effects with (the profile's [tools.X] roles)",
    )
}

/// Rounds of T6.4: in each, every session has a request with the same id in flight.
const ROUTING_ROUNDS: usize = 12;

/// The request id of T6.4's round `round`: integers and strings in turn.
fn routing_id(round: usize) -> Value {
    if round.is_multiple_of(2) {
        json!(7_000 + round)
    } else {
        json!(format!("mcpt-request-{round}"))
    }
}

/// Polls every future of `futures` until all are done (the sessions' requests in
/// flight at the same moment), keeping their order.
async fn all_at_once<'f, T>(
    futures: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'f>>>,
) -> Vec<T> {
    let mut futures: Vec<_> = futures.into_iter().map(Some).collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, done) in futures.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *done = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// One request of a T6.4 round: its frame, and the HTTP headers that go with it.
type Framed = (String, Vec<(String, String)>);

/// How long each T6.4 session's GET stream is held open while the rounds run.
const GET_STREAM_HOLD: Duration = Duration::from_millis(1500);

/// The answers of one T6.4 round, and whether a rate limit had a request sent again
/// (under an id of its own: then its answer cannot carry the round's id).
type Round = (Vec<Result<Answer, ClientError>>, bool);

/// The answers of T6.4's rounds — per round, every reader's request in flight at once
/// — and, over HTTP, every message each reader's GET stream carried meanwhile.
async fn send_rounds(
    readers: &mut [Reader],
    frames: &[Vec<Framed>],
    wait: Duration,
    transcript: &crate::client::Transcript,
) -> (Vec<Round>, Vec<Vec<Value>>) {
    let resent = || transcript.retries().rate_limited;
    if readers.iter_mut().all(|r| r.conn.http().is_some()) {
        let hs: Vec<&crate::client::http::HttpConn> = readers
            .iter_mut()
            .filter_map(|r| r.conn.http().map(|h| &*h))
            .collect();
        let rounds = async {
            let mut out = Vec::new();
            for row in frames {
                let sends: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = _> + '_>>> = hs
                    .iter()
                    .zip(row)
                    .map(|(h, (frame, headers))| {
                        let fut: std::pin::Pin<Box<dyn std::future::Future<Output = _>>> =
                            Box::pin(async move {
                                h.post(frame.as_bytes(), headers, wait)
                                    .await
                                    .map(|a| Conn::answer_of(a, frame.as_bytes()))
                            });
                        fut
                    })
                    .collect();
                let before = resent();
                let answers = all_at_once(sends).await;
                out.push((answers, resent() != before));
            }
            out
        };
        let streams = async {
            let listens: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = _> + '_>>> = hs
                .iter()
                .map(|h| {
                    let fut: std::pin::Pin<Box<dyn std::future::Future<Output = _>>> =
                        Box::pin(h.listen_all(GET_STREAM_HOLD));
                    fut
                })
                .collect();
            all_at_once(listens)
                .await
                .into_iter()
                .map(|r| r.unwrap_or_default())
                .collect::<Vec<_>>()
        };
        return tokio::join!(rounds, streams);
    }
    let mut out = Vec::new();
    for row in frames {
        let sends: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = _> + '_>>> = readers
            .iter_mut()
            .zip(row)
            .map(|(r, (frame, _))| {
                let fut: std::pin::Pin<Box<dyn std::future::Future<Output = _>>> =
                    Box::pin(r.conn.send_raw(frame.as_bytes(), wait));
                fut
            })
            .collect();
        let before = resent();
        let answers = all_at_once(sends).await;
        out.push((answers, resent() != before));
    }
    let none = readers.iter().map(|_| Vec::new()).collect();
    (out, none)
}

/// One session of T6.4: its tenant, the list tool it reads, its own marker.
struct Reader {
    tenant: Tenant,
    conn: Conn,
    list: String,
    marker: String,
}

/// T6.4: every answer reaches only the session that asked. Each tenant writes its own
/// marker; then, round after round, every tenant's session reads its list with the
/// *same* JSON-RPC id (integers and strings in turn), all requests in flight at once.
/// Each answer must carry that id, the session's own marker, and nothing another
/// tenant wrote (a pending-request table keyed by the bare id, shared across
/// sessions, hands one tenant's answer to another).
pub async fn answers_reach_their_session(ctx: &mut Ctx<'_>) -> CheckResult {
    if ctx.target.transport() == crate::profile::Transport::Stdio
        && !ctx.target.profile.target.multiplexes_sessions
    {
        return Err(Abort::Skip(
            "over stdio each connection is its own process, so no answer can reach another session; set [target] multiplexes_sessions = true if the stdio command fronts one shared server".into(),
        ));
    }
    // Every tenant (tenants entitled alike are sessions apart too), capped by
    // `[coverage] max_tenants`; each needs a write taking {marker} and a list tool.
    let cap = ctx
        .target
        .profile
        .coverage
        .max_tenants
        .unwrap_or(usize::MAX);
    let mut cast: Vec<(Tenant, String, Vec<String>)> = Vec::new();
    for tenant in ctx.tenants() {
        let write = ctx
            .shared_tools(crate::profile::Role::Write, &[&tenant])
            .into_iter()
            .find(|w| ctx.takes_marker(w));
        let lists = ctx.shared_tools(crate::profile::Role::List, &[&tenant]);
        if let Some(write) = write.filter(|_| !lists.is_empty()) {
            cast.push((tenant, write, lists));
        }
    }
    if cast.len() < 2 {
        return Err(Abort::Skip(
            "fewer than two tenants have a write tool taking {marker} and a list tool: no two sessions' answers can be told apart".into(),
        ));
    }
    let left: Vec<String> = cast
        .iter()
        .skip(cap.max(2))
        .map(|c| c.0.id.clone())
        .collect();
    cast.truncate(cap.max(2));
    ctx.left_out("tenants", &left);
    let mut readers: Vec<Reader> = Vec::new();
    for (tenant, write, lists) in cast {
        let mut conn = ctx.session(&tenant).await?;
        let marker = ctx.marker_for(&tenant.id);
        let token = ctx.token_for(&tenant, &write, "").await?;
        let args = ctx.arguments(&write, &marker, "", &tenant.id);
        let wrote = conn.call_tool(&write, args, token.as_deref()).await?;
        // The list tool that shows the write.
        let mut shown_by = None;
        let mut read = Vec::new();
        for list in &lists {
            let token = ctx.token_for(&tenant, list, "").await?;
            let args = ctx.arguments(list, "", "", &tenant.id);
            let listed = conn.call_tool(list, args, token.as_deref()).await?;
            read.push(format!("{list}: {}", listed.describe()));
            if listed.succeeded() && listed.mentions(&marker) {
                shown_by = Some(list.clone());
                break;
            }
        }
        ctx.must(
            &format!("control: {}'s own {write} shows in its lists", tenant.id),
            wrote.succeeded() && shown_by.is_some(),
            "the write succeeds and a list tool shows it, so that each session's answer can be recognised as its own",
            format!(
                "{}; then {}{}",
                wrote.describe(),
                read.join(", "),
                if shown_by.is_some() { ", showing the marker" } else { " — none shows the marker" }
            ),
        );
        let Some(list) = shown_by.filter(|_| wrote.succeeded()) else {
            conn.close().await;
            for r in readers {
                r.conn.close().await;
            }
            return Err(Abort::ControlFailed);
        };
        readers.push(Reader {
            tenant,
            conn,
            list,
            marker,
        });
    }
    let wait = ctx.target.request_timeout();
    // Every round's frames, minted ahead (the rounds then go out back to back).
    let mut frames: Vec<Vec<Framed>> = Vec::new();
    for round in 0..ROUTING_ROUNDS {
        let id = routing_id(round);
        let mut row = Vec::new();
        for r in &readers {
            let token = ctx.token_for(&r.tenant, &r.list, "").await?;
            let args = ctx.arguments(&r.list, "", "", &r.tenant.id);
            let (params, headers) = r.conn.call_params(&r.list, args, token.as_deref());
            let frame =
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
                    .to_string();
            row.push((frame, headers));
        }
        frames.push(row);
    }
    let (answers, streams) = send_rounds(&mut readers, &frames, wait, &ctx.transcript).await;
    let (mut crossed, mut rounds_held) = (Vec::new(), 0);
    for (round, (row, resent)) in answers.into_iter().enumerate() {
        let id = routing_id(round);
        let mut held = true;
        for (r, answer) in readers.iter().zip(row) {
            let answer = answer?;
            let text = super::readback::answer_text(&answer);
            let leaked = ctx.screen(
                &r.tenant.id,
                &format!("the answer to {}'s {} with id {id}", r.tenant.id, r.list),
                &text,
            );
            let same_id = resent || answer.message.as_ref().and_then(|m| m.get("id")) == Some(&id);
            let own = answer.succeeded() && text.contains(r.marker.as_str());
            if leaked || !same_id || !own {
                held = false;
                crossed.push(format!(
                    "round {round} (id {id}): {}'s {} got {}{}{}",
                    r.tenant.id,
                    r.list,
                    answer.describe(),
                    if same_id { "" } else { ", not carrying its id" },
                    if leaked {
                        ", carrying another tenant's data"
                    } else if !own {
                        ", without its own marker"
                    } else {
                        ""
                    }
                ));
            }
        }
        if held {
            rounds_held += 1;
        }
    }
    // What each session's GET stream carried meanwhile.
    for (r, stream) in readers.iter().zip(&streams) {
        let messages: Vec<String> = stream.iter().map(Value::to_string).collect();
        if ctx.screen(
            &r.tenant.id,
            &format!("{}'s GET stream", r.tenant.id),
            &messages.join("\n"),
        ) {
            crossed.push(format!(
                "{}'s GET stream carried another tenant's data",
                r.tenant.id
            ));
        }
    }
    let ids: Vec<&str> = readers.iter().map(|r| r.tenant.id.as_str()).collect();
    ctx.must(
        &format!(
            "{ROUTING_ROUNDS} rounds of {} sessions ({}) with the same JSON-RPC id in flight at once",
            readers.len(),
            ids.join(", ")
        ),
        crossed.is_empty(),
        "every session receives exactly its own answer: its id, its tenant's marker, nothing of another tenant — and nothing of another tenant on its GET stream",
        if crossed.is_empty() {
            format!("{rounds_held} of {ROUTING_ROUNDS} rounds: every answer was the session's own (integer and string ids)")
        } else {
            format!(
                "answers crossed sessions in {} of {ROUTING_ROUNDS} rounds — {}",
                ROUTING_ROUNDS - rounds_held,
                crossed.into_iter().take(4).collect::<Vec<_>>().join("; ")
            )
        },
    );
    for r in readers {
        r.conn.close().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(message: Value) -> Answer {
        Answer {
            raw: message.to_string(),
            message: Some(message),
            http: None,
        }
    }

    #[test]
    fn shapes_blank_the_tool_name_and_marker() {
        let a = answer(
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "Unknown tool: admin_export"}}),
        );
        let b = answer(
            json!({"jsonrpc": "2.0", "id": 2, "error": {"code": -32602, "message": "Unknown tool: admin_export_mcpt_unknown"}}),
        );
        assert_eq!(
            shape(&a, "admin_export", None),
            shape(&b, "admin_export_mcpt_unknown", None)
        );
        let c = answer(
            json!({"jsonrpc": "2.0", "id": 3, "error": {"code": -32001, "message": "Unauthorized call"}}),
        );
        assert_ne!(
            shape(&a, "admin_export", None),
            shape(&c, "admin_export", None)
        );
        let ok = answer(json!({"jsonrpc": "2.0", "id": 4, "result": {"content": []}}));
        assert_eq!(
            shape(&ok, "x", None),
            json!({"result": "a successful result"})
        );
    }

    #[test]
    fn a_refusals_structured_content_is_part_of_its_shape() {
        let refusal = |reason: &str| {
            answer(
                json!({"jsonrpc": "2.0", "id": 1, "result": {"isError": true,
                "content": [{"type": "text", "text": "Unknown tool"}],
                "structuredContent": {"reason": reason}}}),
            )
        };
        assert_ne!(
            shape(&refusal("not_entitled"), "export", None),
            shape(&refusal("unknown_tool"), "export_mcpt_unknown", None)
        );
    }

    #[test]
    fn latency_thresholds_fail_large_differences_and_warn_on_clear_ones() {
        use crate::model::Outcome;
        assert!(latency_verdict(1.2, 1.0).is_none());
        // 300 ms slower than an unknown tool: a failure.
        assert_eq!(latency_verdict(301.0, 1.0).unwrap().0, Outcome::Fail);
        // Faster counts too.
        assert_eq!(latency_verdict(1.0, 301.0).unwrap().0, Outcome::Fail);
        // 6x but only 5 ms apart: noise at this scale.
        assert!(latency_verdict(6.0, 1.0).is_none());
        // 3x and 20 ms apart: a warning.
        assert_eq!(latency_verdict(30.0, 10.0).unwrap().0, Outcome::Warn);
        let mut odd = vec![3.0, 1.0, 2.0];
        assert_eq!(median(&mut odd), 2.0);
        let mut even = vec![4.0, 1.0, 2.0, 3.0];
        assert_eq!(median(&mut even), 2.5);
    }

    #[test]
    fn whole_refusals_answer_no_call_in_particular() {
        let per_call = vec![json!({"id": 1, "error": {"code": -32602}})];
        assert!(whole_refusal(&per_call, &[]).is_none());
        let whole = vec![json!({"id": null, "error": {"code": -32600}})];
        assert_eq!(
            whole_refusal(&whole, &[]).and_then(|a| a.error_code()),
            Some(-32600)
        );
        let ok = vec![json!({"id": null, "result": {}})];
        assert!(whole_refusal(&ok, &[]).is_none());
    }

    #[test]
    fn answers_are_found_by_id_in_batches() {
        let responses = vec![
            json!({"id": 1, "result": {}}),
            json!({"id": 2, "error": {"code": -1}}),
        ];
        assert_eq!(answer_to(&responses, 2).unwrap().error_code(), Some(-1));
        assert!(answer_to(&responses, 3).is_none());
    }
}
