//! T2 — every call is authorised on its own (confused deputy). Each check opens an
//! authenticated session, proves with a valid call that effects are visible (the
//! control), then sends calls whose call token is missing, stale, mis-scoped, foreign
//! or forged. Each must be refused, and the read-back of every tenant must show that
//! nothing was written.
//!
//! Against a server that takes no call tokens (`tokens.placement = "none"`), T2.1 still
//! runs: a call without any token must then be refused, and a server that serves it
//! fails with that stated. T2.2–T2.6 are then not applicable — one finding, counted
//! once, by T2.1.

use super::{Abort, CheckResult, Ctx, Level, id_text};
use crate::client::token::{self, ClaimForgery, Forgery, now_secs};
use crate::client::{
    Answer, ClientError, Conn, LATEST_SESSION_VERSION, Tokenless, mentions, shorten,
};
use crate::model::{Grant, Outcome};
use crate::profile::{Contract, Dimension, Role, Tenant};
use serde_json::{Value, json};

/// The first tenant, or a skip.
fn first_tenant(ctx: &Ctx<'_>) -> Result<Tenant, Abort> {
    ctx.tenants()
        .into_iter()
        .next()
        .ok_or_else(|| Abort::Skip("the profile names no tenants ([[tenants]])".into()))
}

/// A case of a refusal check: its name, what is expected, what a success means.
struct Case<'s> {
    name: &'s str,
    expected: &'s str,
    accepted: &'s str,
}

/// Why the seed wants a binding that a token contract lacks (a warning, never a
/// failure: the kit judges the target by the contract it declares).
const SEED_BINDINGS: &str = "the seed (mistake 2) asks every call token to encode the exact tenant, resource and action it authorises";

/// Calls write tool `tool` in `conn` with a fresh marker and `token`, and records
/// case `case`: refused, and nothing written anywhere.
async fn refused_write(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    tenant: &Tenant,
    tool: &str,
    token: Option<&str>,
    case: Case<'_>,
) -> CheckResult {
    refused_write_timed(ctx, Level::Must, conn, tenant, tool, token, case)
        .await
        .map(drop)
}

/// [`refused_write`] at `level`, answering how long the call itself took (read-backs
/// apart).
async fn refused_write_timed(
    ctx: &mut Ctx<'_>,
    level: Level,
    conn: &mut Conn,
    tenant: &Tenant,
    tool: &str,
    token: Option<&str>,
    case: Case<'_>,
) -> Result<std::time::Duration, Abort> {
    let Case {
        name: case,
        expected,
        accepted,
    } = case;
    let marker = ctx.takes_marker(tool).then(|| ctx.marker_for(&tenant.id));
    let m = marker.clone().unwrap_or_default();
    let witness = ctx.witness(tool, marker.as_deref(), conn, tenant).await?;
    let args = ctx.arguments(tool, &m, "", &tenant.id);
    let started = std::time::Instant::now();
    let answer = conn.call_tool(tool, args, token).await?;
    let took = started.elapsed();
    ctx.expect_refused_at(level, case, &answer, &witness, conn, expected, accepted)
        .await?;
    Ok(took)
}

/// T2.1's probe of a server whose profile declares no call tokens: a call with no token
/// at all must be refused. A call that is served is recorded as T2.1's failure; the
/// outcome is kept for the checks that depend on it.
async fn tokenless_probe(ctx: &mut Ctx<'_>) -> Result<Tokenless, Abort> {
    let tenant = first_tenant(ctx)?;
    let writes = ctx.shared_tools(Role::Write, &[&tenant]);
    let tool = match writes.first() {
        Some(w) => w.clone(),
        None => {
            let mut tools: Vec<String> = tenant.tools.clone();
            // Tools the profile says how to drive come first.
            tools.sort_by_key(|t| ctx.target.profile.tool(t).is_none());
            tools.into_iter().next().ok_or_else(|| {
                Abort::Skip(format!(
                    "tenant {} is entitled to no tools, so there is nothing to call",
                    tenant.id
                ))
            })?
        }
    };
    let mut conn = ctx.session(&tenant).await?;
    let marker = ctx.takes_marker(&tool).then(|| ctx.marker_for(&tenant.id));
    let m = marker.clone().unwrap_or_default();
    let witness = ctx
        .witness(&tool, marker.as_deref(), &mut conn, &tenant)
        .await?;
    let args = ctx.arguments(&tool, &m, "", &tenant.id);
    let answer = conn.call_tool(&tool, args, None).await?;
    let probe = if answer.succeeded() {
        ctx.expect_refused(
            &format!("{tool} called by {} without any call token", tenant.id),
            &answer,
            &witness,
            &mut conn,
            "refused: authorising each call on its own needs a call token on every call, and the server takes none (tokens.placement = \"none\")",
            "the call succeeded without any call token — the session alone authorised it",
        )
        .await?;
        Tokenless::Served { tool }
    } else {
        Tokenless::Refused {
            tool,
            answer: answer.describe(),
        }
    };
    conn.close().await;
    ctx.target.probes.lock().expect("probes").tokenless = Some(probe.clone());
    Ok(probe)
}

/// A check that needs call tokens, against a profile that declares none: not
/// applicable when T2.1's probe (run here when T2.1 was not) found that the target takes
/// none — one finding, counted once by T2.1 — and skipped when the target refused a
/// token-less call (it has tokens the profile does not describe). `question` names
/// what the check tests.
async fn without_tokens(ctx: &mut Ctx<'_>, question: &str) -> CheckResult {
    let known = ctx.target.probes.lock().expect("probes").tokenless.clone();
    let probe = match known {
        Some(probe) => probe,
        None => {
            // The probe's own observation is T2.1's finding, not this check's.
            let recorded = ctx.observations.len();
            let probe = tokenless_probe(ctx).await?;
            ctx.observations.truncate(recorded);
            probe
        }
    };
    Err(match probe {
        Tokenless::Served { tool } => Abort::NotApplicable(format!(
            "the target takes no call tokens (T2.1: {tool} was served without one), so {question} cannot be tested"
        )),
        Tokenless::Refused { tool, answer } => {
            Abort::Skip(refused_without_tokens(&tool, &answer, question))
        }
    })
}

/// Why a check is skipped when a profile without call tokens meets a target that
/// refused a token-less call.
fn refused_without_tokens(tool: &str, answer: &str, question: &str) -> String {
    format!(
        "the profile says the server takes no call tokens (tokens.placement = \"none\"), yet it refused a token-less call of {tool} ({answer}); describe its tokens in [tokens] so that {question} can be tested"
    )
}

/// Opens a session as `tenant` and runs the control: a valid write is visible.
async fn controlled_session(
    ctx: &mut Ctx<'_>,
    tenant: &Tenant,
    tool: &str,
) -> Result<Option<Conn>, Abort> {
    let mut conn = ctx.session(tenant).await?;
    if ctx.control_write(&mut conn, tenant, tool).await? {
        Ok(Some(conn))
    } else {
        conn.close().await;
        Ok(None)
    }
}

/// T2.1: a call without a call token is refused, even in an authenticated session —
/// for every tool of every acting tenant ([`Ctx::acting_tenants`]). A write tool is
/// proved by its effects (a valid call shows, the token-less one leaves nothing); any
/// other tool by its answer, and a refusal must not carry what the call returns when
/// it is allowed.
pub async fn call_token_required(ctx: &mut Ctx<'_>) -> CheckResult {
    if !ctx.tokens_placed() {
        return match tokenless_probe(ctx).await? {
            Tokenless::Served { .. } => Ok(()),
            Tokenless::Refused { tool, answer } => Err(Abort::Skip(refused_without_tokens(
                &tool,
                &answer,
                "authorising each call on its own",
            ))),
        };
    }
    let tenants = ctx.acting_tenants();
    if tenants.is_empty() {
        return Err(Abort::Skip(
            "the profile names no tenants ([[tenants]])".into(),
        ));
    }
    let mut control_failed = false;
    for tenant in tenants {
        let mut conn = ctx.session(&tenant).await?;
        for tool in ctx.covered_tools(&tenant, Role::Write) {
            if ctx.takes_id(&tool) {
                // A write of one record (an update, a delete) has no record to act on
                // and no control: judged by its answer.
                tokenless_call(ctx, &mut conn, &tenant, &tool, Role::Write).await?;
                continue;
            }
            let case = format!("{tool} by {} without a call token", tenant.id);
            match ctx.control_write(&mut conn, &tenant, &tool).await {
                Ok(true) => {}
                Ok(false) => {
                    control_failed = true;
                    continue;
                }
                Err(Abort::Skip(why)) => {
                    ctx.observe(&case, Outcome::Skip, "refused, with no effect", why);
                    continue;
                }
                Err(e) => return Err(e),
            }
            refused_write(
                ctx,
                &mut conn,
                &tenant,
                &tool,
                None,
                Case {
                    name: &case,
                    expected: "refused: the session is authenticated, but the call carries no call token",
                    accepted: "the call succeeded without any call token — the session alone authorised it",
                },
            )
            .await?;
        }
        for role in [Role::List, Role::Read, Role::Other] {
            for tool in ctx.covered_tools(&tenant, role) {
                tokenless_call(ctx, &mut conn, &tenant, &tool, role).await?;
            }
        }
        conn.close().await;
    }
    if control_failed {
        return Err(Abort::ControlFailed);
    }
    Ok(())
}

/// Strings of a result too long to be vocabulary, that a refusal must not repeat.
const DATA_STRING_MIN: usize = 16;

/// T2.1 for a tool that is not a write: a call without a call token is refused, and
/// the refusal carries none of what the call returns with a valid token (a list or a
/// read tool is called validly first; any other tool, whose effects the profile does
/// not describe, only without a token).
async fn tokenless_call(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    tenant: &Tenant,
    tool: &str,
    role: Role,
) -> CheckResult {
    let args = ctx.arguments(tool, "", "", &tenant.id);
    let mut returned = Vec::new();
    let needs_record = ctx.takes_id(tool);
    if matches!(role, Role::List | Role::Read) && !needs_record {
        let token = ctx.token_for(tenant, tool, "").await?;
        let valid = conn.call_tool(tool, args.clone(), token.as_deref()).await?;
        if valid.succeeded() {
            let names: Vec<String> = ctx
                .tenants()
                .iter()
                .flat_map(|t| {
                    std::iter::once(t.id.clone()).chain(t.principals().into_iter().map(|p| p.id))
                })
                .collect();
            returned = super::readback::data_strings(
                valid.result().unwrap_or(&Value::Null),
                DATA_STRING_MIN,
            )
            .into_iter()
            .filter(|s| !names.contains(s) && s != tool)
            .collect();
        }
    }
    // What the request itself sent, an error may echo.
    let sent = super::readback::data_strings(&args, 1);
    let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
    let answer = conn.call_tool(tool, args, None).await?;
    ctx.screen(
        &tenant.id,
        &format!("the answer to {tool} without a call token"),
        &super::readback::answer_text(&answer),
    );
    let (outcome, actual) = if !answer.succeeded() {
        match ctx.refusal_carries(&answer, &sent, &returned) {
            Some(carried) => (
                Outcome::Fail,
                format!(
                    "refused ({}), but {carried} — the refusal hands over what the call was refused",
                    answer.describe()
                ),
            ),
            None => (Outcome::Pass, format!("refused ({})", answer.describe())),
        }
    } else if super::reads_as_refusal(&answer) && !ctx.discloses(&answer) {
        (
            Outcome::Warn,
            format!(
                "refused in effect, but answered as an ordinary result ({}) that clients and models read as success",
                answer.describe()
            ),
        )
    } else {
        (
            Outcome::Fail,
            format!(
                "the call succeeded without any call token — the session alone authorised it ({})",
                answer.describe()
            ),
        )
    };
    let expected = match role {
        Role::List | Role::Read if !returned.is_empty() => {
            "refused: reading needs a call token too, and the refusal carries none of what a valid call returns"
        }
        Role::List | Role::Read => "refused: reading needs a call token too",
        _ => "refused: every call needs a call token",
    };
    ctx.observe(
        &format!("{tool} by {} without a call token", tenant.id),
        outcome,
        expected,
        actual,
    );
    Ok(())
}

/// The principal of `tenant` that may call `tool`, or a skip.
fn principal(tenant: &Tenant, tool: &str) -> Result<String, Abort> {
    tenant.principal_for(tool).map(|p| p.id).ok_or_else(|| {
        Abort::Skip(format!(
            "no principal of tenant {} may call {tool} (principals in the profile)",
            tenant.id
        ))
    })
}

/// Records the forgeries of `forgeries` of a valid token for `tool`, each sent in
/// `conn` and judged by read-back. A forgery the profile cannot make is a skipped case.
async fn forged_cases(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    tenant: &Tenant,
    tool: &str,
    forgeries: &[Forgery],
) -> CheckResult {
    let minter = ctx
        .target
        .minter()?
        .cloned()
        .ok_or_else(|| Abort::Skip("the profile gives no way to mint call tokens".into()))?;
    let grant = ctx.grant(&tenant.id, &principal(tenant, tool)?, tool, "");
    let lifetime = ctx.target.profile.tokens.lifetime_secs;
    // How long a refusal of an ordinary forgery took, and where the oversized one's
    // case is, to set their times side by side.
    let mut ordinary = None;
    let mut oversized = None;
    for f in forgeries {
        let forged = minter.forge(*f, &grant, lifetime).await;
        let case = format!("token {}", f.describe());
        let (level, expected) = match f {
            // Padding re-encodes the same signed bytes: accepting it is a malleability
            // (a token no longer has one spelling), not a forgery.
            Forgery::Padded => (
                Level::Should,
                "refused: a token has one canonical encoding (base64url without padding, RFC 7515)",
            ),
            // The issuer signed it: taking it is a cost, not a breach of the boundary.
            Forgery::Oversized => (
                Level::Should,
                "refused on its length, before any work on it (a call token is a few hundred bytes)",
            ),
            Forgery::Crit => (
                Level::Must,
                "refused: a critical header extension the server does not understand invalidates the token (RFC 7515 §4.1.11)",
            ),
            _ => (Level::Must, "refused"),
        };
        match forged.token {
            Ok(token) => {
                let at = ctx.observations.len();
                let took = refused_write_timed(
                    ctx,
                    level,
                    conn,
                    tenant,
                    tool,
                    Some(&token),
                    Case {
                        name: &case,
                        expected,
                        accepted: "the call succeeded with this token",
                    },
                )
                .await?;
                match f {
                    Forgery::SignatureBit => ordinary = Some(took),
                    Forgery::Oversized => oversized = Some((at, took, token.len())),
                    _ => {}
                }
            }
            Err(why) => ctx.observe(&case, Outcome::Skip, "refused", format!("skipped: {why}")),
        }
    }
    if let Some((at, took, len)) = oversized
        && let Some(o) = ctx.observations.get_mut(at)
    {
        o.actual = format!("{}; {}", o.actual, refusal_times(len, took, ordinary));
    }
    Ok(())
}

/// The answer time of an oversized token of `len` bytes beside an ordinary forgery's,
/// for the report (a figure, never a verdict: timings are for benchmarks).
pub(super) fn refusal_times(
    len: usize,
    took: std::time::Duration,
    ordinary: Option<std::time::Duration>,
) -> String {
    let ms = |d: std::time::Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    match ordinary {
        Some(o) => format!(
            "answered in {} for {} kB, against {} for an ordinary forged token (one bit flipped)",
            ms(took),
            len / 1000,
            ms(o)
        ),
        None => format!("answered in {} for {} kB", ms(took), len / 1000),
    }
}

/// T2.2: expired, not-yet-valid and over-long-lived tokens are refused.
pub async fn token_lifetime(ctx: &mut Ctx<'_>) -> CheckResult {
    if !ctx.tokens_placed() {
        return without_tokens(ctx, "refusing expired or over-long-lived tokens").await;
    }
    let a = first_tenant(ctx)?;
    let tool = ctx.write_tool(&[&a])?;
    let Some(mut conn) = controlled_session(ctx, &a, &tool).await? else {
        return Ok(());
    };
    forged_cases(ctx, &mut conn, &a, &tool, &Forgery::CLOCK).await?;
    conn.close().await;
    over_long_session(ctx, &a).await
}

/// T2.2's session case, where the harness mints session bearers: one living an hour
/// beyond the profile's declared maximum must open no session — refused at once, or
/// (stdio) the server ends; a session that opens and lists tools took it.
async fn over_long_session(ctx: &mut Ctx<'_>, a: &Tenant) -> CheckResult {
    let auth = ctx.target.profile.auth.clone();
    if !auth.mint_sessions {
        return Ok(());
    }
    let case = "a session token living an hour beyond the declared maximum lifetime";
    let expected = "refused: no session opens";
    let Some(max) = auth.max_session_lifetime_secs else {
        ctx.observe(
            case,
            Outcome::Skip,
            expected,
            "skipped: the profile declares no maximum session-token lifetime ([auth] max_session_lifetime_secs)",
        );
        return Ok(());
    };
    let lifetime = max.saturating_add(token::OVER_LONG_SECS);
    let minter = ctx
        .target
        .minter()?
        .cloned()
        .ok_or_else(|| Abort::Skip("auth.mint_sessions needs the [tokens] key".into()))?;
    let bearer = match minter.session_token_living(&a.id, lifetime) {
        Ok(t) => t,
        Err(why) => {
            ctx.observe(case, Outcome::Skip, expected, format!("skipped: {why}"));
            return Ok(());
        }
    };
    let case = format!("{case} (exp - iat = {lifetime} s, {max} s declared)");
    // A refusal may come as an answer, an HTTP error or (stdio) the server's exit;
    // a hang or the harness's own trouble is no verdict.
    let refusal = |e: ClientError| match e {
        ClientError::Exited { .. } | ClientError::Http(_) | ClientError::Refused(_) => {
            Ok(format!("refused: {e}"))
        }
        other => Err(Abort::Client(other)),
    };
    let opened = ctx.connect_bearing(a, &bearer).await;
    let (ok, actual) = match opened {
        Err(e) => (true, refusal(e)?),
        Ok(mut conn) => {
            let verdict = match conn.initialize(LATEST_SESSION_VERSION).await {
                Err(e) => (true, refusal(e)?),
                Ok(answer) if answer.result().is_none() => {
                    (true, format!("initialize refused: {}", answer.describe()))
                }
                Ok(_) => match conn.list_all_tools().await {
                    Ok(listing) if !listing.tools.is_empty() => (
                        false,
                        format!(
                            "the session opened and tools/list answered {} tool(s)",
                            listing.tools.len()
                        ),
                    ),
                    Ok(listing) => (
                        true,
                        format!(
                            "initialize answered, then tools/list listed nothing ({})",
                            listing.problem.as_deref().unwrap_or("no tools")
                        ),
                    ),
                    Err(e) => (true, format!("initialize answered, then {}", refusal(e)?)),
                },
            };
            conn.close().await;
            verdict
        }
    };
    ctx.must(&case, ok, expected, actual);
    Ok(())
}

/// The first member `id` (a string or an integer) inside a tool result's structured
/// content — or, for a server that answers JSON as text, inside its text content — as
/// the write returned it.
pub(super) fn record_id(answer: &Answer) -> Option<Value> {
    fn find(v: &Value) -> Option<Value> {
        match v {
            Value::Object(map) => map
                .get("id")
                .filter(|id| id.is_string() || id.is_u64() || id.is_i64())
                .cloned()
                .or_else(|| map.values().find_map(find)),
            Value::Array(items) => items.iter().find_map(find),
            _ => None,
        }
    }
    let result = answer.result()?;
    if let Some(id) = result.get("structuredContent").and_then(find) {
        return Some(id);
    }
    result
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("text")?.as_str())
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .find_map(|v| find(&v))
}

/// T2.3: a token scoped to tool X, action A or resource R authorises nothing else.
pub async fn token_scope(ctx: &mut Ctx<'_>) -> CheckResult {
    if !ctx.tokens_placed() {
        return without_tokens(ctx, "scoping a call to its tool, action and resource").await;
    }
    let (a, b) = ctx.two_tenants()?;
    let tool = ctx.write_tool(&[&a])?;
    let Some(mut conn) = controlled_session(ctx, &a, &tool).await? else {
        return Ok(());
    };
    let who = principal(&a, &tool)?;
    let right = ctx.grant(&a.id, &who, &tool, "");
    let contract = ctx.target.profile.tokens.contract();

    // A token for another tool.
    let other_tool = ctx
        .shared_tools(Role::List, &[&a])
        .into_iter()
        .chain(a.tools.iter().cloned())
        .find(|t| *t != tool && a.principal_for(t).is_some());
    match &other_tool {
        _ if !contract.binds(Dimension::Tool) => ctx.observe(
            "a token for another tool",
            Outcome::Skip,
            "refused",
            "skipped: the token contract does not bind the tool (tokens.binds)",
        ),
        Some(other) => {
            let token = ctx.token_for(&a, other, "").await?;
            refused_write(
                ctx,
                &mut conn,
                &a,
                &tool,
                token.as_deref(),
                Case {
                    name: &format!("a token for {other} used to call {tool}"),
                    expected: &format!("refused: the token names tool {other}, not {tool}"),
                    accepted: "the call succeeded: the token's tool was not checked",
                },
            )
            .await?;
        }
        None => ctx.observe(
            "a token for another tool",
            Outcome::Skip,
            "refused",
            format!("skipped: {} may call no other tool", a.id),
        ),
    }

    // The right tool, the wrong action: the other tool's (a read grant used to
    // write), else any other action of the profile.
    unbound_warnings(ctx, &contract, &[Dimension::Action, Dimension::Resource]);
    if contract.binds(Dimension::Action) {
        wrong_action(ctx, &mut conn, &a, &tool, &right, other_tool.as_deref()).await?;
    }
    if contract.binds(Dimension::Resource) {
        wrong_resource(ctx, &mut conn, &a, &b, &tool, &right).await?;
        read_another_record(ctx, &mut conn, &a, &tool).await?;
    }
    missing_claims(ctx, &mut conn, &a, &tool, &right, &contract).await?;
    conn.close().await;
    Ok(())
}

/// T2.3: for each claim that carries a bound dimension (a scope string once, however
/// many it carries), tokens with it missing, null, empty, of another JSON type and a
/// wildcard — each re-signed with the real key, each to be refused with no effect.
async fn missing_claims(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    a: &Tenant,
    tool: &str,
    right: &Grant,
    contract: &Contract,
) -> CheckResult {
    let mut claims: Vec<String> = Vec::new();
    for d in &contract.binds {
        let claim = contract
            .claims
            .claim(*d)
            .map(str::to_owned)
            .or_else(|| contract.claims.scope.clone());
        if let Some(c) = claim
            && !claims.contains(&c)
        {
            claims.push(c);
        }
    }
    let minter = ctx
        .target
        .minter()?
        .cloned()
        .ok_or_else(|| Abort::Skip("the profile gives no way to mint call tokens".into()))?;
    let resource_claim = contract
        .claims
        .claim(Dimension::Resource)
        .map(str::to_owned);
    for claim in claims {
        for how in ClaimForgery::ALL {
            let case = format!("a {tool} token with its {claim} claim {}", how.describe());
            // `*` is a resource grant an issuer may make on purpose (every resource of
            // the tenant); for the tenant, principal, tool and action it is a forgery.
            if how == ClaimForgery::Wildcard && resource_claim.as_deref() == Some(claim.as_str()) {
                continue;
            }
            // A fresh token each time: a target with single-use tokens refuses a reused
            // one for that reason alone. (T2.3 runs only where tokens travel.)
            let valid = ctx.mint(right).await?.unwrap_or_default();
            match minter.forge_claim(&valid, &claim, how) {
                Ok(token) => refused_write(
                    ctx,
                    conn,
                    a,
                    tool,
                    Some(&token),
                    Case {
                        name: &case,
                        expected: &format!(
                            "refused: a token lacking its {claim} claim authorises nothing"
                        ),
                        accepted: &format!(
                            "the call succeeded: a {claim} claim that is {} was taken as a grant",
                            how.describe()
                        ),
                    },
                )
                .await?,
                Err(why) => ctx.observe(&case, Outcome::Skip, "refused", format!("skipped: {why}")),
            }
        }
    }
    Ok(())
}

/// A warning for each of `dimensions` that the seed wants bound and the contract does
/// not bind.
fn unbound_warnings(ctx: &mut Ctx<'_>, contract: &Contract, dimensions: &[Dimension]) {
    for d in dimensions {
        if contract.binds(*d) {
            continue;
        }
        let how = if contract.carried.contains(d) {
            format!(
                "carries a {} claim but does not bind it (tokens.binds)",
                d.name()
            )
        } else {
            format!("has no {} claim ([tokens.claims])", d.name())
        };
        ctx.should(
            &format!("the call token binds the {}", d.name()),
            false,
            format!("each call token binds the {} it authorises", d.name()),
            format!("the token contract {how}: {SEED_BINDINGS}"),
        );
    }
}

/// T2.3: a token for the right tool and the wrong action.
async fn wrong_action(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    a: &Tenant,
    tool: &str,
    right: &Grant,
    other_tool: Option<&str>,
) -> CheckResult {
    let profile = &ctx.target.profile;
    let other_action = other_tool
        .iter()
        .filter_map(|t| profile.tool(t)?.action.clone())
        .chain(profile.tools.values().filter_map(|s| s.action.clone()))
        .find(|x| *x != right.action)
        .unwrap_or_else(|| "mcp-tenancy:another-action".into());
    let token = ctx
        .mint(&Grant {
            action: other_action.clone(),
            ..right.clone()
        })
        .await?;
    refused_write(
        ctx,
        conn,
        a,
        tool,
        token.as_deref(),
        Case {
            name: &format!("a {tool} token with action {other_action:?}"),
            expected: &format!("refused: {tool} needs action {:?}", right.action),
            accepted: "the call succeeded: the token's action was not checked",
        },
    )
    .await
}

/// T2.3: a token for the right tool and action, and another resource.
async fn wrong_resource(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    a: &Tenant,
    b: &Tenant,
    tool: &str,
    right: &Grant,
) -> CheckResult {
    if right.resource == "*" {
        ctx.observe(
            &format!("a {tool} token for another resource"),
            Outcome::Skip,
            "refused",
            format!(
                "skipped: the profile gives {tool} no resource template ([tools.{tool}] resource)"
            ),
        );
    } else {
        let elsewhere = ctx.grant(&b.id, &right.principal, tool, "").resource;
        let elsewhere = if elsewhere == right.resource {
            format!("{}-elsewhere", right.resource)
        } else {
            elsewhere
        };
        let token = ctx
            .mint(&Grant {
                resource: elsewhere.clone(),
                ..right.clone()
            })
            .await?;
        refused_write(
            ctx,
            conn,
            a,
            tool,
            token.as_deref(),
            Case {
                name: &format!("a {tool} token for resource {elsewhere:?}"),
                expected: &format!("refused: the call acts on {:?}", right.resource),
                accepted: "the call succeeded: the token's resource was not checked",
            },
        )
        .await?;
    }
    Ok(())
}

/// T2.3's read case: a token for record 1 of a read tool (`{id}`) used to read record 2.
async fn read_another_record(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    a: &Tenant,
    write: &str,
) -> CheckResult {
    // A token names one record only where the read tool's resource does.
    let per_record = |t: &String| {
        ctx.target
            .profile
            .tool(t)
            .and_then(|s| s.resource.as_deref())
            .is_some_and(|r| r.contains("{id}"))
    };
    let read = ctx
        .shared_tools(Role::Read, &[a])
        .into_iter()
        .find(|t| ctx.takes_id(t) && per_record(t));
    let Some(read) = read else {
        ctx.observe(
            "a read token for one record used for another",
            Outcome::Skip,
            "refused",
            "skipped: the profile names no read tool taking {id} whose resource names the record ([tools.NAME] role = \"read\", resource = \"…{id}…\")",
        );
        return Ok(());
    };
    let mut records = Vec::new();
    for _ in 0..2 {
        let marker = ctx.marker_for(&a.id);
        let token = ctx.token_for(a, write, "").await?;
        let args = ctx.arguments(write, &marker, "", &a.id);
        let answer = conn.call_tool(write, args, token.as_deref()).await?;
        if !answer.succeeded() {
            // The same valid write worked as this session's control: a refusal now is
            // the target's failure, not a reason to skip the case.
            ctx.must(
                &format!("control: a valid {write} call creates a record to read with {read}"),
                false,
                "succeeds",
                answer.describe(),
            );
            return Ok(());
        }
        records.push((record_id(&answer), marker));
    }
    let [(Some(id1), own), (Some(id2), secret)] = records.as_slice() else {
        ctx.observe(
            &format!("a {read} token for one record used for another"),
            Outcome::Skip,
            "refused",
            format!("skipped: {write}'s results carry no record id (an `id` in structuredContent or in JSON text)"),
        );
        return Ok(());
    };
    let token = ctx.token_for(a, &read, &id_text(id1)).await?;
    // Control: the token reads the record it names — otherwise a refusal of the other
    // record proves nothing about the resource check.
    let args = ctx.arguments_for(&read, "", id1, &a.id);
    let control = conn.call_tool(&read, args, token.as_deref()).await?;
    let works = control.succeeded() && control.mentions(own);
    ctx.must(
        &format!("control: a {read} token for {id1} reads {id1}"),
        works,
        format!("succeeds and shows {id1}'s content"),
        if works {
            "it does".to_owned()
        } else {
            format!(
                "{} — the read tool refuses even a correctly scoped token, so the resource check cannot be judged",
                control.describe()
            )
        },
    );
    if !works {
        return Ok(());
    }
    let args = ctx.arguments_for(&read, "", id2, &a.id);
    let answer = conn.call_tool(&read, args, token.as_deref()).await?;
    let disclosed = answer.mentions(secret);
    ctx.must(
        &format!("a {read} token for {id1} used to read {id2}"),
        !answer.succeeded() && !disclosed,
        format!("refused, and nothing of {id2} disclosed"),
        match (answer.succeeded(), disclosed) {
            (false, false) => format!("refused ({})", answer.describe()),
            (_, true) => format!(
                "{id2} was disclosed ({}): the token's resource was not checked",
                answer.describe()
            ),
            (true, false) => format!(
                "the call succeeded ({}): the token's resource was not checked",
                answer.describe()
            ),
        },
    );
    Ok(())
}

/// T2.4: a token minted for another tenant (or another tenant's principal) is refused,
/// both ways.
pub async fn token_tenant(ctx: &mut Ctx<'_>) -> CheckResult {
    if !ctx.tokens_placed() {
        return without_tokens(ctx, "binding each call to its tenant").await;
    }
    let (a, b) = ctx.two_tenants()?;
    let tool = ctx.write_tool(&[&a, &b])?;
    let contract = ctx.target.profile.tokens.contract();
    unbound_warnings(ctx, &contract, &[Dimension::Tenant]);
    let foreign_principal = contract.roster && contract.binds(Dimension::Principal);
    if !foreign_principal {
        ctx.observe(
            "a token for another tenant's principal",
            Outcome::Skip,
            "refused",
            if contract.binds(Dimension::Principal) {
                "skipped: the target keeps no principal roster (tokens.roster = false): it trusts the issuer's principal"
            } else {
                "skipped: the token contract does not bind the principal (tokens.binds)"
            },
        );
    }
    for (me, them) in [(&a, &b), (&b, &a)] {
        let Some(mut conn) = controlled_session(ctx, me, &tool).await? else {
            return Ok(());
        };
        if contract.binds(Dimension::Tenant) {
            let theirs = ctx.token_for(them, &tool, "").await?;
            refused_write(
                ctx,
                &mut conn,
                me,
                &tool,
                theirs.as_deref(),
                Case {
                    name: &format!("{}'s token in {}'s session", them.id, me.id),
                    expected: &format!("refused: the token was minted for tenant {}", them.id),
                    accepted: &format!(
                        "the call succeeded: {}'s session accepted a token minted for {}",
                        me.id, them.id
                    ),
                },
            )
            .await?;
        }
        if !foreign_principal {
            conn.close().await;
            continue;
        }
        let stranger = principal(them, &tool)?;
        if me.principals().iter().any(|p| p.id == stranger) {
            ctx.observe(
                &format!("a token of tenant {} for {}'s principal {stranger}", me.id, them.id),
                Outcome::Skip,
                "refused",
                format!(
                    "skipped: {stranger} is a principal of both tenants (list each tenant's principals in the profile)"
                ),
            );
            conn.close().await;
            continue;
        }
        let token = ctx.mint(&ctx.grant(&me.id, &stranger, &tool, "")).await?;
        refused_write(
            ctx,
            &mut conn,
            me,
            &tool,
            token.as_deref(),
            Case {
                name: &format!(
                    "a token of tenant {} for {}'s principal {stranger}",
                    me.id, them.id
                ),
                expected: &format!("refused: {stranger} is not a principal of {}", me.id),
                accepted: &format!(
                    "the call succeeded: {stranger}, a principal of {}, acted in {}",
                    them.id, me.id
                ),
            },
        )
        .await?;
        conn.close().await;
    }
    Ok(())
}

/// T2.5: tampered tokens are refused.
pub async fn tampered_tokens(ctx: &mut Ctx<'_>) -> CheckResult {
    if !ctx.tokens_placed() {
        return without_tokens(ctx, "refusing tampered tokens").await;
    }
    let a = first_tenant(ctx)?;
    let tool = ctx.write_tool(&[&a])?;
    let Some(mut conn) = controlled_session(ctx, &a, &tool).await? else {
        return Ok(());
    };
    forged_cases(ctx, &mut conn, &a, &tool, &Forgery::TAMPERED).await?;
    conn.close().await;
    Ok(())
}

/// A tenant, a tool, a principal that may call it and one that may not — write tools
/// first.
pub(super) fn narrow_and_wide(ctx: &Ctx<'_>) -> Vec<(Tenant, String, String, String)> {
    let mut found = Vec::new();
    for t in ctx.tenants() {
        let principals = t.principals();
        let mut tools = t.tools.clone();
        tools.sort_by_key(|tool| {
            ctx.target
                .profile
                .tool(tool)
                .is_none_or(|s| s.role != Role::Write)
        });
        let pair = tools.iter().find_map(|tool| {
            let wide = principals.iter().find(|p| p.tools.contains(tool))?;
            let narrow = principals.iter().find(|p| !p.tools.contains(tool))?;
            Some((tool.clone(), wide.id.clone(), narrow.id.clone()))
        });
        if let Some((tool, wide, narrow)) = pair {
            found.push((t, tool, wide, narrow));
        }
    }
    found
}

/// T2.6: in one session, each principal's call is judged by its own token, never by
/// the session's (or another principal's) wider grant.
pub async fn per_principal(ctx: &mut Ctx<'_>) -> CheckResult {
    let cases = narrow_and_wide(ctx);
    // A principal with a credential of its own carries its grant in its session: that
    // is testable without call tokens.
    let own_credential = |tenant: &Tenant, id: &str| {
        tenant
            .principals()
            .into_iter()
            .find(|p| p.id == id && p.credential.is_some())
    };
    let by_credential = cases
        .iter()
        .any(|(t, _, _, narrow)| own_credential(t, narrow).is_some());
    if !ctx.tokens_placed() && !by_credential {
        return without_tokens(ctx, "judging each principal's call by its own grant").await;
    }
    if cases.is_empty() {
        return Err(Abort::Skip(
            "no tenant in the profile has two principals with different grants (principals = [{ id, tools }])"
                .into(),
        ));
    }
    let mut judged = 0;
    for (tenant, tool, wide, narrow) in cases {
        let writes = ctx.target.profile.writes(&tool);
        if writes && ctx.write_tool(&[&tenant]).is_err() {
            continue;
        }
        let narrow_own = own_credential(&tenant, &narrow);
        if narrow_own.is_none() && !ctx.tokens_placed() {
            continue;
        }
        let mut conn = match own_credential(&tenant, &wide) {
            Some(p) => ctx.session_as(&tenant, &p).await?,
            None => ctx.session(&tenant).await?,
        };
        // The control: the wider principal's call, in this same session.
        if writes {
            if !ctx.control_write(&mut conn, &tenant, &tool).await? {
                conn.close().await;
                continue;
            }
        } else {
            let token = ctx.mint(&ctx.grant(&tenant.id, &wide, &tool, "")).await?;
            let args = ctx.arguments(&tool, "", "", &tenant.id);
            let answer = conn.call_tool(&tool, args, token.as_deref()).await?;
            ctx.must(
                &format!("control: {wide} calls {tool} in {}'s session", tenant.id),
                answer.succeeded(),
                format!("succeeds ({wide} may call {tool})"),
                answer.describe(),
            );
        }
        let token = ctx.mint(&ctx.grant(&tenant.id, &narrow, &tool, "")).await?;
        let accepted = format!("the call succeeded: {narrow} borrowed a grant only {wide} has");
        // With call tokens: the narrower principal's token in the session where the
        // wider may — the session's grant must not decide.
        if ctx.tokens_placed() {
            narrow_call(
                ctx,
                &mut conn,
                &tenant,
                &tool,
                writes,
                token.as_deref(),
                Case {
                    name: &format!(
                        "{narrow} calls {tool} in the session where {wide} may ({})",
                        tenant.id
                    ),
                    expected: &format!(
                        "refused: {narrow} may not call {tool}, though the session's tenant and {wide} may"
                    ),
                    accepted: &accepted,
                },
            )
            .await?;
        }
        // With a credential of its own, the narrower principal also calls in its own
        // session.
        if let Some(p) = &narrow_own {
            conn.close().await;
            conn = ctx.session_as(&tenant, p).await?;
            narrow_call(
                ctx,
                &mut conn,
                &tenant,
                &tool,
                writes,
                token.as_deref(),
                Case {
                    name: &format!("{narrow} calls {tool} in its own session ({})", tenant.id),
                    expected: &format!(
                        "refused: {narrow}'s credential does not grant {tool}, though {wide}'s does"
                    ),
                    accepted: &accepted,
                },
            )
            .await?;
        }
        conn.close().await;
        judged += 1;
    }
    if judged == 0 {
        return Err(Abort::Skip(
            "no principal pair could be judged: each tenant whose principals differ lacks a write and a list tool to prove effects with, or the narrower principal has neither a call token nor a credential of its own".into(),
        ));
    }
    Ok(())
}

/// T2.6: the narrower principal's call of `tool` in `conn`, refused with no effect.
#[allow(clippy::too_many_arguments)]
async fn narrow_call(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    tenant: &Tenant,
    tool: &str,
    writes: bool,
    token: Option<&str>,
    case: Case<'_>,
) -> CheckResult {
    if writes {
        return refused_write(ctx, conn, tenant, tool, token, case).await;
    }
    let witness = ctx.witness(tool, None, conn, tenant).await?;
    let args = ctx.arguments(tool, "", "", &tenant.id);
    let answer = conn.call_tool(tool, args, token).await?;
    ctx.expect_refused(
        case.name,
        &answer,
        &witness,
        conn,
        case.expected,
        case.accepted,
    )
    .await
}

/// The HTTP status line of a T2.7 case: 401 with `WWW-Authenticate`.
fn unauthorised(answer: &Answer) -> (bool, String) {
    let status = answer.status().unwrap_or(0);
    let challenge = answer
        .http
        .as_ref()
        .and_then(|h| h.header("www-authenticate"))
        .map(str::to_owned);
    let ok = status == 401 && challenge.is_some();
    let actual = match (status, &challenge) {
        (401, Some(c)) => format!("HTTP 401, WWW-Authenticate: {}", shorten(c, 80)),
        (401, None) => "HTTP 401 without a WWW-Authenticate header".into(),
        (s, _) if s < 400 => format!("HTTP {s}: served ({})", answer.describe()),
        _ => answer.describe(),
    };
    (ok, actual)
}

/// T2.7: on HTTP every request is authenticated; a session id alone authorises nothing.
pub async fn every_http_request_authenticated(ctx: &mut Ctx<'_>) -> CheckResult {
    let a = first_tenant(ctx)?;
    let timeout = ctx.target.request_timeout();
    let auth = ctx.target.profile.auth.clone();
    let write = ctx.write_tool(&[&a]).ok();
    let mut conn = ctx.session(&a).await?;
    let has_session = conn.http().is_some_and(|h| h.session_id.is_some());
    let init = json!({"jsonrpc": "2.0", "id": 701, "method": "initialize", "params": {
        "protocolVersion": LATEST_SESSION_VERSION, "capabilities": {},
        "clientInfo": {"name": "mcp-tenancy", "version": env!("CARGO_PKG_VERSION")}}})
    .to_string();
    let list =
        json!({"jsonrpc": "2.0", "id": 702, "method": "tools/list", "params": {}}).to_string();

    // The standard headers with the session credential removed or replaced.
    let headers = |conn: &mut Conn, bearer: Option<String>, session: bool| {
        let h = conn.http().expect("T2.7 runs on HTTP only");
        let mut out: Vec<(String, String)> = h
            .standard_headers()
            .into_iter()
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case(&auth.http_header)
                    && (session || !k.eq_ignore_ascii_case("mcp-session-id"))
            })
            .collect();
        if let Some(b) = bearer {
            out.push((auth.http_header.clone(), b));
        }
        out
    };
    let send = async |conn: &mut Conn, body: &[u8], headers: &[(String, String)]| {
        let h = conn.http().expect("T2.7 runs on HTTP only");
        h.exchange(reqwest::Method::POST, Some(body), headers, timeout)
            .await
            .map(|answer| Conn::answer_of(answer, body))
    };

    let hs = headers(&mut conn, None, false);
    let answer = send(&mut conn, init.as_bytes(), &hs).await?;
    let (ok, actual) = unauthorised(&answer);
    ctx.must(
        "initialize without a bearer",
        ok,
        "HTTP 401 with a WWW-Authenticate challenge",
        actual,
    );

    let garbage = auth.http_format.replace("{token}", "not-a-valid-token");
    let hs = headers(&mut conn, Some(garbage), false);
    let answer = send(&mut conn, init.as_bytes(), &hs).await?;
    let (ok, actual) = unauthorised(&answer);
    ctx.must(
        "initialize with an invalid bearer",
        ok,
        "HTTP 401 with a WWW-Authenticate challenge",
        actual,
    );

    // A minted session bearer gets the forgeries call tokens get: on this session's
    // id, each must be refused as unauthenticated.
    if auth.mint_sessions
        && let Some(minter) = ctx.target.minter()?.cloned()
        && let Ok(valid) = minter.session_token(&a.id)
    {
        let mut ordinary = None;
        for f in Forgery::SESSION {
            let case = format!("tools/list with a session token {}", f.describe());
            let forged = match minter.forge_from(f, &valid, now_secs()) {
                Ok(forged) => forged,
                Err(why) => {
                    ctx.observe(&case, Outcome::Skip, "HTTP 401", format!("skipped: {why}"));
                    continue;
                }
            };
            let bearer = auth.http_format.replace("{token}", &forged);
            let hs = headers(&mut conn, Some(bearer), true);
            let started = std::time::Instant::now();
            if f == Forgery::Oversized {
                // Too large for any request head: refused by the HTTP layer (431, 400,
                // a closed connection) or by the guard (401) — served is the failure.
                let answer = send(&mut conn, list.as_bytes(), &hs).await;
                let took = started.elapsed();
                let (ok, actual) = match &answer {
                    Ok(answer) => (
                        answer
                            .status()
                            .is_some_and(|s| (400..500).contains(&s) && s != 429),
                        answer.describe(),
                    ),
                    Err(ClientError::Http(e)) => {
                        (true, format!("connection refused or closed: {e}"))
                    }
                    Err(e) => (false, e.to_string()),
                };
                ctx.must(
                    &case,
                    ok,
                    "refused: HTTP 4xx (431, 400 or 401) or the connection closed, before any work on it",
                    format!("{actual}; {}", refusal_times(forged.len(), took, ordinary)),
                );
                continue;
            }
            let answer = send(&mut conn, list.as_bytes(), &hs).await?;
            if f == Forgery::SignatureBit {
                ordinary = Some(started.elapsed());
            }
            let (ok, actual) = unauthorised(&answer);
            ctx.must(
                &case,
                ok,
                "HTTP 401 with a WWW-Authenticate challenge",
                actual,
            );
        }
    }

    if !has_session {
        ctx.observe(
            "a session id alone",
            Outcome::Skip,
            "HTTP 401",
            "skipped: the server issues no session ids",
        );
        conn.close().await;
        return Ok(());
    }
    let hs = headers(&mut conn, None, true);
    let answer = send(&mut conn, list.as_bytes(), &hs).await?;
    let (ok, actual) = unauthorised(&answer);
    ctx.must(
        "tools/list with a valid session id and no bearer",
        ok,
        "HTTP 401: a session id alone authorises nothing",
        actual,
    );

    let Some(tool) = write else {
        ctx.observe(
            "tools/call with a valid session id and no bearer",
            Outcome::Skip,
            "HTTP 401, nothing written",
            "skipped: the profile names no write tool and list tool to prove effects with",
        );
        conn.close().await;
        return Ok(());
    };
    let (b_bearer, b_id) = match ctx.tenants().get(1) {
        Some(b) => (
            ctx.target
                .session_credential(b)?
                .map(|c| auth.http_format.replace("{token}", &c)),
            b.id.clone(),
        ),
        None => (None, String::new()),
    };
    let b_bearer_oracle = b_bearer.clone();
    let cases = [
        (
            "tools/call with a valid session id and no bearer".to_owned(),
            None,
        ),
        (
            format!("tools/call on {}'s session with {b_id}'s bearer", a.id),
            b_bearer,
        ),
    ];
    for (case, bearer) in cases {
        let other_tenant = bearer.is_some();
        if case.contains("'s bearer") && !other_tenant {
            continue;
        }
        let marker = ctx.takes_marker(&tool).then(|| ctx.marker_for(&a.id));
        let m = marker.clone().unwrap_or_default();
        let witness = ctx.witness(&tool, marker.as_deref(), &mut conn, &a).await?;
        let token = ctx.token_for(&a, &tool, "").await?;
        let args = ctx.arguments(&tool, &m, "", &a.id);
        let (frame, extra) = conn.call_frame(&tool, args, token.as_deref());
        let mut hs = headers(&mut conn, bearer, true);
        hs.extend(extra);
        let answer = send(&mut conn, &frame, &hs).await?;
        let effects = ctx.effects(&witness, &mut conn).await?;
        let (ok401, actual) = unauthorised(&answer);
        // Another tenant's bearer on this session may also read as an unknown session.
        let ok = if other_tenant {
            answer.status().is_some_and(|s| (400..500).contains(&s))
        } else {
            ok401
        };
        let read_back = if effects.is_empty() {
            "nothing written".to_owned()
        } else {
            super::describe_effects(&effects)
        };
        ctx.must(
            &case,
            ok && effects.is_empty(),
            if other_tenant {
                "refused with HTTP 4xx (401, or 404 for a session that is not the bearer's), nothing written (read back)"
            } else {
                "HTTP 401 (a session id alone authorises nothing), nothing written (read back)"
            },
            format!("{actual}; read back: {read_back}"),
        );
    }
    if let Some(bearer) = &b_bearer_oracle {
        session_id_oracle(ctx, &mut conn, &a, (&b_id, bearer)).await?;
    }
    conn.close().await;
    stream_outlives_bearer(ctx, &a).await
}

/// T2.8: a call token is not replayable. A valid write is made with a fresh token (the
/// control); then the very same call — arguments and token — is sent again in another
/// session of the tenant and in the same session, and every tenant is read back after
/// each. A second effect is the token taking effect twice: in another session a
/// failure (anyone who saw the token can repeat the action), in the same session a
/// warning. Where the second session does not see the first one's record (a stdio
/// server with state of its own per process), a replay there acts on other state, and
/// that case is skipped.
pub async fn call_token_single_use(ctx: &mut Ctx<'_>) -> CheckResult {
    if !ctx.tokens_placed() {
        return without_tokens(ctx, "refusing a replayed call token").await;
    }
    let a = first_tenant(ctx)?;
    let tool = ctx.write_tool(&[&a])?;
    let mut first = ctx.session(&a).await?;
    let Some(control) = ctx.control_call(&mut first, &a, &tool).await? else {
        first.close().await;
        return Ok(());
    };
    let (marker, args) = (control.marker, control.args);
    let m = marker.clone().unwrap_or_default();
    let Some(token) = control.token else {
        first.close().await;
        return Err(Abort::Skip(
            "the profile gives no way to mint call tokens".into(),
        ));
    };

    let mut second = ctx.session(&a).await?;
    let replay = |place: &str| format!("the same {tool} call and call token sent again in {place}");
    let before = ctx.witness(&tool, None, &mut second, &a).await?;
    // The first call's record, seen from the second session: is their state one?
    let shared = marker.as_deref().is_none_or(|m| {
        before
            .before
            .get(&a.id)
            .is_some_and(|lists| lists.values().any(|v| mentions(v, m)))
    });
    let answer = second.call_tool(&tool, args.clone(), Some(&token)).await?;
    let effects = ctx.effects(&before, &mut second).await?;
    let case = replay(&format!("another session of {}", a.id));
    if shared {
        ctx.judge_refusal(
            Level::Must,
            &case,
            &answer,
            &before,
            &effects,
            "refused, nothing written (read back): a call token authorises one call",
            "the replayed token took effect again",
        );
    } else {
        ctx.observe(
            &case,
            Outcome::Skip,
            "refused, nothing written",
            format!(
                "skipped: the second session does not see the first one's record ({m}), so its state is its own (a server process per session) and a second effect there is no second effect on the same state; it answered {}",
                answer.describe()
            ),
        );
    }
    second.close().await;

    let before = ctx.witness(&tool, None, &mut first, &a).await?;
    let answer = first.call_tool(&tool, args, Some(&token)).await?;
    let effects = ctx.effects(&before, &mut first).await?;
    ctx.judge_refusal(
        Level::Should,
        &replay("the same session"),
        &answer,
        &before,
        &effects,
        "refused, nothing written (read back): a call token authorises one call, also in its own session",
        "the replayed token took effect again",
    );
    first.close().await;
    Ok(())
}

/// One request of the session-id oracle: a method with its `Accept` and body type.
struct OracleProbe {
    method: reqwest::Method,
    accept: &'static str,
    /// The body's `Content-Type`; `None`: no body.
    content_type: Option<&'static str>,
}

/// Every method of the Streamable HTTP endpoint, with the `Accept` and body types a
/// server may answer differently: a live foreign session id must be answered like an
/// unknown one for each. DELETE comes last: a server that honours it ends the session.
fn oracle_probes() -> [OracleProbe; 7] {
    use reqwest::Method;
    let both = "application/json, text/event-stream";
    let p = |method, accept, content_type| OracleProbe {
        method,
        accept,
        content_type,
    };
    [
        p(Method::POST, both, Some("application/json")),
        p(Method::POST, "application/json", Some("application/json")),
        p(Method::POST, "text/event-stream", Some("application/json")),
        p(Method::POST, both, Some("text/plain")),
        p(Method::GET, "text/event-stream", None),
        p(Method::GET, "application/json", None),
        p(Method::DELETE, both, None),
    ]
}

/// A session id no server issued, shaped like `live`: each digit and letter moved one
/// place along its class (hex letters stay hex), everything else kept — same length,
/// same alphabet, so an answer that echoes it is as long as one that echoes `live`.
pub(super) fn unknown_like(live: &str) -> String {
    live.chars()
        .map(|c| match c {
            '0'..='8' | 'a'..='e' | 'A'..='E' | 'g'..='y' | 'G'..='Y' => (c as u8 + 1) as char,
            '9' => '0',
            'f' => 'a',
            'F' => 'A',
            'z' => 'g',
            'Z' => 'G',
            other => other,
        })
        .collect()
}

/// What of an answer the oracle compares: the status (or why there was none), the
/// headers but `Date`, and the body — each session id in them replaced by a placeholder.
#[derive(Debug, Clone, PartialEq)]
struct OracleView {
    status: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl OracleView {
    fn of(answer: &Result<crate::client::http::HttpAnswer, ClientError>, ids: &[&str]) -> Self {
        let hide = |s: &str| {
            ids.iter()
                .fold(s.to_owned(), |acc, id| acc.replace(id, "<session-id>"))
        };
        match answer {
            Ok(a) => {
                let mut headers: Vec<(String, String)> = a
                    .headers
                    .iter()
                    .filter(|(k, _)| k != "date")
                    .map(|(k, v)| (k.clone(), hide(v)))
                    .collect();
                headers.sort();
                OracleView {
                    status: a.status.to_string(),
                    headers,
                    body: hide(&a.body),
                }
            }
            Err(ClientError::Timeout { after_ms, .. }) => OracleView {
                status: format!("no answer within {after_ms} ms (a stream held open)"),
                headers: Vec::new(),
                body: String::new(),
            },
            Err(e) => OracleView {
                status: format!("no answer ({})", hide(&e.to_string())),
                headers: Vec::new(),
                body: String::new(),
            },
        }
    }

    /// How `self` (the live foreign id's answer) differs from `unknown`'s, ignoring what
    /// differed between two answers to the same unknown id (`again`): volatile header
    /// values and body members. Empty: no difference.
    fn differences(&self, unknown: &OracleView, again: &OracleView) -> Vec<String> {
        let mut out = Vec::new();
        if self.status != unknown.status {
            out.push(format!(
                "status {} (unknown id: {})",
                self.status, unknown.status
            ));
        }
        let volatile = |name: &str| {
            let value = |v: &OracleView| {
                v.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            value(unknown) != value(again)
        };
        let names = |v: &OracleView| -> std::collections::BTreeSet<String> {
            v.headers.iter().map(|(k, _)| k.clone()).collect()
        };
        for name in names(self).union(&names(unknown)) {
            let get = |v: &OracleView| {
                v.headers
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            let (mine, theirs) = (get(self), get(unknown));
            let differs = match (&mine, &theirs) {
                (Some(_), Some(_)) => mine != theirs && !volatile(name),
                _ => true,
            };
            if differs {
                out.push(format!(
                    "header {name}: {} (unknown id: {})",
                    mine.as_deref().unwrap_or("absent"),
                    theirs.as_deref().unwrap_or("absent")
                ));
            }
        }
        if !same_body(&self.body, &unknown.body, &again.body) {
            out.push(format!(
                "body {} (unknown id: {})",
                shorten(&self.body, 160),
                shorten(&unknown.body, 160)
            ));
        }
        out
    }
}

/// Are bodies `mine` and `unknown` the same but for what differed between `unknown`
/// and `again` (two answers to one unknown id)?
fn same_body(mine: &str, unknown: &str, again: &str) -> bool {
    if mine == unknown {
        return true;
    }
    if unknown == again {
        return false;
    }
    let json = |s: &str| serde_json::from_str::<Value>(s).ok();
    match (json(mine), json(unknown), json(again)) {
        (Some(m), Some(u), Some(g)) => {
            let paths = super::volatile::volatile_paths(&u, &g);
            let mut ignored = std::collections::BTreeSet::new();
            super::volatile::blank(&m, &paths, &mut ignored)
                == super::volatile::blank(&u, &paths, &mut ignored)
        }
        _ => {
            let settle = |s: &str| super::volatile::blank_tokens(s).unwrap_or_else(|| s.into());
            settle(mine) == settle(unknown)
        }
    }
}

/// T2.7's session-id oracle: with `b`'s bearer, `a`'s live session id must be answered
/// exactly like a session id no server issued — status, headers and body, for every
/// method and `Accept` ([`oracle_probes`]) — and `a`'s session must outlive the DELETE.
async fn session_id_oracle(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    a: &Tenant,
    b: (&str, &str),
) -> CheckResult {
    let (b_id, b_bearer) = b;
    let auth = ctx.target.profile.auth.clone();
    let h = conn.http().expect("T2.7 runs on HTTP only");
    let Some(live) = h.session_id.clone() else {
        return Ok(());
    };
    let unknown = unknown_like(&live);
    // A stream a flawed server opens on the live id is waited for this long only.
    let wait = ctx
        .target
        .request_timeout()
        .min(std::time::Duration::from_secs(3));
    let frame =
        json!({"jsonrpc": "2.0", "id": 703, "method": "tools/list", "params": {}}).to_string();
    let ids = [live.as_str(), unknown.as_str()];
    for probe in oracle_probes() {
        let h = conn.http().expect("T2.7 runs on HTTP only");
        let headers = |session: &str| {
            let mut out: Vec<(String, String)> = h
                .standard_headers()
                .into_iter()
                .filter(|(k, _)| {
                    !k.eq_ignore_ascii_case(&auth.http_header)
                        && !k.eq_ignore_ascii_case("mcp-session-id")
                        && !k.eq_ignore_ascii_case("accept")
                        && !k.eq_ignore_ascii_case("content-type")
                })
                .collect();
            out.push((auth.http_header.clone(), b_bearer.to_owned()));
            out.push(("Mcp-Session-Id".into(), session.to_owned()));
            out.push(("Accept".into(), probe.accept.to_owned()));
            if let Some(ct) = probe.content_type {
                out.push(("Content-Type".into(), ct.to_owned()));
            }
            out
        };
        let body = probe.content_type.map(|_| frame.as_bytes());
        let send = async |session: &str| {
            h.exchange(probe.method.clone(), body, &headers(session), wait)
                .await
        };
        // The unknown id twice (what differs between those is volatile), then the
        // live one.
        let u1 = OracleView::of(&send(&unknown).await, &ids);
        let u2 = OracleView::of(&send(&unknown).await, &ids);
        let l = OracleView::of(&send(&live).await, &ids);
        let case = format!(
            "{} (Accept: {}{}) with {b_id}'s bearer on {}'s live session id",
            probe.method,
            probe.accept,
            probe
                .content_type
                .map(|ct| format!(", Content-Type: {ct}"))
                .unwrap_or_default(),
            a.id
        );
        let diff = l.differences(&u1, &u2);
        ctx.must(
            &case,
            diff.is_empty(),
            "answered exactly as a session id no server issued: status, headers and body (no oracle of live sessions)",
            if diff.is_empty() {
                format!("the same answer as for an unknown id ({})", l.status)
            } else {
                diff.join("; ")
            },
        );
    }
    let answer = conn.request("tools/list", json!({})).await?;
    ctx.must(
        &format!("{}'s session after {b_id}'s DELETE of its id", a.id),
        answer.result().is_some(),
        "still serves: only its own tenant can end a session",
        answer.describe(),
    );
    Ok(())
}

/// How long the session bearer of T2.7's stream case lives, in seconds.
const STREAM_BEARER_SECS: u64 = 3;

/// T2.7's stream case: a GET stream opened with a session bearer that expires
/// [`STREAM_BEARER_SECS`] later must end once the bearer has expired — within the skew
/// the profile declares, plus 3 s. A stream that ends earlier is opened again; once the
/// bearer has expired a new stream may be refused instead.
async fn stream_outlives_bearer(ctx: &mut Ctx<'_>, a: &Tenant) -> CheckResult {
    use crate::client::http::StreamEnd;
    let auth = ctx.target.profile.auth.clone();
    let case = format!(
        "a GET stream whose session bearer expires {STREAM_BEARER_SECS} s after it is minted"
    );
    let skip = |ctx: &mut Ctx<'_>, why: &str| {
        ctx.observe(
            &case,
            Outcome::Skip,
            "the stream ends",
            format!("skipped: {why}"),
        );
        Ok(())
    };
    if !auth.mint_sessions {
        return skip(
            ctx,
            "the harness mints no session bearers (auth.mint_sessions)",
        );
    }
    let Some(skew) = auth.clock_skew_secs else {
        return skip(
            ctx,
            "the profile declares no clock skew ([auth] clock_skew_secs), so no wait can prove the stream outlived its bearer",
        );
    };
    if skew > 60 {
        return skip(
            ctx,
            &format!("the declared clock skew ({skew} s) is too long to wait out"),
        );
    }
    let Some(minter) = ctx.target.minter()?.cloned() else {
        return skip(ctx, "auth.mint_sessions needs the [tokens] key");
    };
    let bearer = match minter.session_token_living(&a.id, STREAM_BEARER_SECS) {
        Ok(t) => t,
        Err(why) => return skip(ctx, &why),
    };
    let minted = tokio::time::Instant::now();
    let expires = minted + std::time::Duration::from_secs(STREAM_BEARER_SECS);
    let deadline = expires + std::time::Duration::from_secs(skew + 3);
    let mut conn = ctx.connect_bearing(a, &bearer).await?;
    let init = conn.initialize(LATEST_SESSION_VERSION).await?;
    if init.result().is_none() || conn.http().is_none_or(|h| h.session_id.is_none()) {
        conn.close().await;
        return skip(
            ctx,
            &format!("no session opened with the bearer: {}", init.describe()),
        );
    }
    let expected = format!(
        "the stream ends once the bearer has expired (within the declared {skew} s of skew, plus 3 s)"
    );
    let verdict = loop {
        let h = conn.http().expect("an HTTP session");
        let outcome = h.stream_until(deadline).await;
        let now = tokio::time::Instant::now();
        let after = |t: tokio::time::Instant| {
            format!(
                "{:.1} s after the bearer expired",
                (t - expires).as_secs_f64()
            )
        };
        match outcome {
            Ok(StreamEnd::Open) => {
                break (
                    false,
                    format!("still open {} s after the bearer expired", skew + 3),
                );
            }
            Ok(StreamEnd::Ended) if now >= expires => {
                break (true, format!("the stream ended {}", after(now)));
            }
            // Ended on its own while the bearer was valid: open it again.
            Ok(StreamEnd::Ended) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
            Ok(StreamEnd::Refused(status)) if now >= expires => {
                break (
                    true,
                    format!(
                        "a stream opened again {} was refused (HTTP {status})",
                        after(now)
                    ),
                );
            }
            Ok(StreamEnd::Refused(405)) => {
                conn.close().await;
                return skip(ctx, "the server offers no GET stream (HTTP 405)");
            }
            Ok(StreamEnd::Refused(status)) => {
                conn.close().await;
                return skip(
                    ctx,
                    &format!(
                        "the GET stream was refused (HTTP {status}) while its bearer was valid"
                    ),
                );
            }
            Err(ClientError::Http(e)) if now >= expires => {
                break (true, format!("the connection closed {} ({e})", after(now)));
            }
            Err(e) => {
                conn.close().await;
                return Err(Abort::Client(e));
            }
        }
    };
    conn.close().await;
    ctx.must(&case, verdict.0, expected, verdict.1);
    Ok(())
}
