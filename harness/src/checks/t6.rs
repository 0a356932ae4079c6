//! T6 — the server gates every invocation (seed mistake 6).
//!
//! Filtering `tools/list` is not a gate. These checks call what the caller was never
//! shown — another tenant's tools, by their exact names and by every spelling of
//! them — on every path into the server: a session that never listed, a JSON-RPC
//! batch, frames pipelined back to back. Each call carries a call token that would be
//! valid for it (minted for the caller's tenant, naming the tool as sent), so that only
//! the entitlement can refuse it. Effects are read back as in T3 ([`Stage`]).

use super::t3::{Expect, Stage, call_token, refused};
use super::{Abort, CheckResult, Ctx};
use crate::client::{Answer, ClientError};
use crate::model::{Direction, Outcome};
use crate::profile::Tenant;
use crate::variants::{self, visible};
use serde_json::Value;
use std::time::Duration;

/// At most this many foreign tools are called per caller (T6.1).
const MAX_FOREIGN_TOOLS: usize = 4;

/// How long the pipelined and batched cases wait for the answers still missing.
const DRAIN: Duration = Duration::from_millis(500);

/// The tools other tenants are entitled to and `tenant` is not, in profile order.
fn foreign_tools(ctx: &Ctx<'_>, tenant: &Tenant) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for other in ctx
        .target
        .profile
        .tenants
        .iter()
        .filter(|t| t.id != tenant.id)
    {
        for tool in &other.tools {
            if !tenant.entitled(tool) && !out.contains(tool) {
                out.push(tool.clone());
            }
        }
    }
    out
}

/// The tenants entitled to `tool`, for reports.
fn owners(ctx: &Ctx<'_>, tool: &str) -> String {
    let ids: Vec<&str> = ctx
        .target
        .profile
        .tenants
        .iter()
        .filter(|t| t.entitled(tool))
        .map(|t| t.id.as_str())
        .collect();
    ids.join(", ")
}

/// The marker for a call of `tool`, when its argument template takes one.
fn marker_for(ctx: &mut Ctx<'_>, tool: &str) -> Option<String> {
    ctx.takes_marker(tool).then(|| ctx.marker())
}

/// The shape of a refusal with the tool's name (and the marker) blanked out: what a
/// caller could learn from it. Two refusals with the same shape say the same thing.
fn shape(answer: &Answer, name: &str, marker: Option<&str>) -> String {
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
    let mut parts = Vec::new();
    if let Some(status) = answer.status() {
        parts.push(format!("HTTP {status}"));
    }
    let message = answer.message.as_ref();
    match (message.and_then(|m| m.get("error")), answer.result()) {
        (Some(error), _) => parts.push(format!("error {}", blank(&error.to_string()))),
        (None, Some(result)) if refused(answer) => parts.push(format!(
            "isError result {}",
            blank(
                &result
                    .get("content")
                    .cloned()
                    .unwrap_or(Value::Null)
                    .to_string()
            )
        )),
        (None, Some(_)) => parts.push("a successful result".into()),
        (None, None) => parts.push(format!("no JSON-RPC answer: {}", blank(answer.raw.trim()))),
    }
    parts.join(", ")
}

/// T6.1: a tool that exists for another tenant is refused exactly like an unknown
/// tool, with no effect — for every tenant as the caller.
pub async fn unlisted_tool_refused(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut callers = 0;
    for tenant in ctx.tenants() {
        let foreign = foreign_tools(ctx, &tenant);
        if foreign.is_empty() {
            continue;
        }
        let mut stage = match Stage::open(ctx, false, Some(&tenant.id)).await {
            Ok(stage) => stage,
            // A genuine skip (the profile lacks what the case needs), or a failed
            // control that is already recorded as a failure of this check.
            Err(Abort::Skip(_) | Abort::ControlFailed) => continue,
            Err(e) => return Err(e),
        };
        callers += 1;
        for tool in foreign.into_iter().take(MAX_FOREIGN_TOOLS) {
            unlisted_case(ctx, &mut stage, &tool).await?;
        }
        stage.close().await;
    }
    if callers == 0 {
        return Err(Abort::Skip(
            "no tenant both lacks a tool another tenant has and has a write and a list tool to prove effects with (the profile's [[tenants]] tools and [tools.X] roles)".into(),
        ));
    }
    Ok(())
}

/// One foreign tool: its refusal against an unknown tool's, then its effects.
async fn unlisted_case(ctx: &mut Ctx<'_>, stage: &mut Stage, tool: &str) -> CheckResult {
    let a = stage.caller.tenant.id.clone();
    let unknown = format!("{tool}_mcpt_unknown");
    let marker = marker_for(ctx, tool);
    let m = marker.clone().unwrap_or_default();
    let args = Value::Object(stage.arguments(ctx, tool, &m));
    let witness = stage.witness(ctx, tool, marker.as_deref()).await?;
    let answer = stage.call(ctx, tool, tool, args.clone()).await?;
    let control = stage.call(ctx, &unknown, tool, args).await?;
    let (seen, baseline) = (
        shape(&answer, tool, marker.as_deref()),
        shape(&control, &unknown, marker.as_deref()),
    );
    let case = format!("{a} calls {tool} (a tool of {})", owners(ctx, tool));
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
        format!("refused exactly like the unknown tool {unknown}: {seen}")
    };
    ctx.must(
        &case,
        refused(&answer) && seen == baseline,
        format!(
            "refused exactly like the unknown tool {unknown} (same shape, the name aside): {baseline}"
        ),
        actual,
    );
    if !witness.writes() {
        return Ok(());
    }
    stage
        .judge(
            ctx,
            &format!("{case}: no effect"),
            Some(&answer),
            &witness,
            Expect::Refused,
        )
        .await
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
    token: Option<String>,
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
    let frame = Stage::frame(ctx, id, tool, args, token.as_deref());
    Ok(Prepared { id, frame, token })
}

/// The forbidden call's answer after a raw exchange that began at transcript index
/// `from`: the direct answer if it is the call's, else whatever the transcript holds
/// for its id, else the direct answer when it refuses the whole frame (`id: null`).
fn forbidden_answer(ctx: &Ctx<'_>, from: usize, direct: Option<Answer>, id: i64) -> Option<Answer> {
    answer_to(&responses_since(ctx, from), id).or_else(|| {
        direct.filter(|d| {
            d.message
                .as_ref()
                .is_none_or(|m| m.get("id").is_none_or(Value::is_null))
        })
    })
}

/// T6.2: a session that never listed, a JSON-RPC batch and pipelined frames all meet
/// the same gate.
pub async fn every_path_gated(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut chosen = None;
    for tenant in ctx.tenants() {
        if let Some(tool) = foreign_tools(ctx, &tenant).into_iter().next() {
            match Stage::open(ctx, false, Some(&tenant.id)).await {
                Ok(stage) => {
                    chosen = Some((stage, tool));
                    break;
                }
                Err(Abort::Skip(_) | Abort::ControlFailed) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    let Some((mut stage, forbidden)) = chosen else {
        return Err(Abort::Skip(
            "no tenant both lacks a tool another tenant has and has a write and a list tool to prove effects with".into(),
        ));
    };
    let a = stage.caller.tenant.id.clone();
    let write = stage.write.clone();

    // 1. The caller's session has never sent tools/list (the stage does not list).
    let marker = marker_for(ctx, &forbidden);
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
    let allowed_marker = ctx.marker();
    let allowed = prepare(ctx, &mut stage, &write, &allowed_marker).await?;
    let marker = marker_for(ctx, &forbidden);
    let bad = prepare(ctx, &mut stage, &forbidden, marker.as_deref().unwrap_or("")).await?;
    let batch = Value::Array(vec![allowed.frame.clone(), bad.frame.clone()]).to_string();
    let witness = stage.witness(ctx, &forbidden, marker.as_deref()).await?;
    let from = ctx.transcript.frames().len();
    // No answer (a server may ignore batches) is judged by the read-back alone; a crash
    // ends the check as a failure.
    let direct = match stage
        .send_raw(ctx, &batch, bad.token.as_deref(), wait)
        .await
    {
        Ok(answer) => Some(answer),
        Err(ClientError::Timeout { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let answer = forbidden_answer(ctx, from, direct, bad.id);
    stage
        .judge(
            ctx,
            &format!("{forbidden} inside a JSON-RPC batch beside a valid {write} call"),
            answer.as_ref(),
            &witness,
            Expect::Refused,
        )
        .await?;

    // 3. Pipelined: three frames written back to back before any answer is read. Over
    // HTTP one request carries one message, so there is no pipelining to test there.
    if stage.caller.conn.http().is_some() {
        ctx.observe(
            &format!("{forbidden} pipelined between two {write} calls"),
            Outcome::Skip,
            "refused, with no effect",
            "skipped: over Streamable HTTP each request carries one message (no pipelining)",
        );
        stage.close().await;
        return Ok(());
    }
    let first_marker = ctx.marker();
    let first = prepare(ctx, &mut stage, &write, &first_marker).await?;
    let marker = marker_for(ctx, &forbidden);
    let bad = prepare(ctx, &mut stage, &forbidden, marker.as_deref().unwrap_or("")).await?;
    let last_marker = ctx.marker();
    let last = prepare(ctx, &mut stage, &write, &last_marker).await?;
    let text = [&first.frame, &bad.frame, &last.frame]
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let witness = stage.witness(ctx, &forbidden, marker.as_deref()).await?;
    let from = ctx.transcript.frames().len();
    let direct = match stage.send_raw(ctx, &text, bad.token.as_deref(), wait).await {
        Ok(answer) => Some(answer),
        Err(ClientError::Timeout { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    // The remaining answers are read off the connection into the transcript.
    stage.caller.conn.notifications(DRAIN).await?;
    let answer = forbidden_answer(ctx, from, direct, bad.id);
    stage
        .judge(
            ctx,
            &format!("{forbidden} pipelined between two {write} calls (three frames written back to back before reading)"),
            answer.as_ref(),
            &witness,
            Expect::Refused,
        )
        .await?;
    stage.close().await;
    Ok(())
}

/// T6.3: no spelling of a tool name reaches a tool the gate would refuse by its exact
/// name — neither another tenant's tool nor (through a lookup that folds names) the
/// caller's own write tool.
pub async fn name_variants_gated(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut stage = Stage::open(ctx, false, None).await?;
    let a = stage.caller.tenant.id.clone();
    let tenant_ids: Vec<String> = ctx.tenants().into_iter().map(|t| t.id).collect();
    let ids: Vec<&str> = tenant_ids.iter().map(String::as_str).collect();
    let mut tools: Vec<(String, String)> = foreign_tools(ctx, &stage.caller.tenant)
        .into_iter()
        .take(1)
        .map(|t| {
            let why = format!("a tool of {} only", owners(ctx, &t));
            (t, why)
        })
        .collect();
    tools.push((stage.write.clone(), format!("{a}'s own write tool")));
    for (tool, why) in tools {
        for variant in variants::tool_name_variants(&tool, &ids) {
            let marker = marker_for(ctx, &tool);
            let m = marker.clone().unwrap_or_default();
            let args = Value::Object(stage.arguments(ctx, &tool, &m));
            let witness = stage.witness(ctx, &tool, marker.as_deref()).await?;
            let answer = stage.call(ctx, &variant.value, &tool, args).await?;
            let case = format!(
                "{tool} ({why}) spelt {:?}: {}",
                visible(&variant.value),
                variant.label
            );
            stage
                .judge(ctx, &case, Some(&answer), &witness, Expect::Refused)
                .await?;
        }
    }
    stage.close().await;
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
        assert_eq!(shape(&ok, "x", None), "a successful result");
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
