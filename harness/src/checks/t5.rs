//! T5 — idempotency keys and retry budgets. This version implements T5.8: one tenant's
//! flood (sessions opened and abandoned, a burst of concurrent calls, large bodies) is
//! bounded per tenant, starves no other tenant, and loosens no session binding.
//!
//! Two rounds of the same flood, as the first tenant's credential. Throughout each,
//! the second tenant calls `tools/list` and a list tool in a session of its own; every
//! call must be served (no refusal, no timeout; latency is reported, not judged).
//! After each round every session opened before the flood — the second tenant's and
//! the flooder's own first ones — and the flood's first sessions are presented with the
//! other tenant's bearer: never served. The round's accepted sessions are counted
//! against a declared cap; for a target the harness launched, the second round may grow
//! its resident memory by at most half the first round's growth (or 32 MB, allocator
//! noise): a bounded server has no more room to give. Memory is sampled after each
//! round's sessions and calls, and again after its large bodies (the next round's
//! baseline), so that buffers an allocator keeps of the bodies count in neither round.

use super::flood::{self, Flooder, Reply, Tally};
use super::{Abort, CheckResult, Ctx};
use crate::client::{Answer, ClientError, Conn};
use crate::model::Outcome;
use crate::profile::Tenant;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Concurrent `initialize` requests while flooding.
const FLOOD_WIDTH: usize = 16;
/// Concurrent calls in the burst.
const BURST: usize = 64;
/// Large bodies sent at once.
const LARGE_BODIES: usize = 4;
/// Flood sessions per round whose binding is probed afterwards.
const PROBED: usize = 3;
/// The second round may grow memory by this fraction of the first round's growth...
const GROWTH_FRACTION: f64 = 0.5;
/// ... or by this much, whichever is larger (what allocators keep and give back).
const GROWTH_NOISE: u64 = 32 * 1024 * 1024;
/// The longest declared idle expiry T5.8 waits out between its rounds.
const LONGEST_IDLE_WAIT: u64 = 120;

/// A session opened before the flood, whose binding must hold.
struct Earlier {
    label: String,
    url: String,
    id: String,
    owner: Vec<(String, String)>,
    other: Vec<(String, String)>,
    other_tenant: String,
}

/// What the second tenant saw during one round.
#[derive(Default)]
struct Quiet {
    latencies: Vec<Duration>,
    failures: Vec<String>,
    read_backs: Vec<(String, String)>,
}

/// One quiet call: `tools/list`, or the list tool with a fresh token.
async fn quiet_call(
    ctx: &Ctx<'_>,
    conn: &mut Conn,
    tenant: &Tenant,
    tool: Option<&str>,
    quiet: &mut Quiet,
) -> Result<(), Abort> {
    let started = Instant::now();
    let (what, answer): (String, Result<Answer, ClientError>) = match tool {
        None => (
            "tools/list".into(),
            conn.request("tools/list", serde_json::json!({})).await,
        ),
        Some(tool) => {
            let token = ctx.token_for(tenant, tool, "").await?;
            let args = ctx.arguments(tool, "", "", &tenant.id);
            (
                format!("tools/call {tool}"),
                conn.call_tool(tool, args, token.as_deref()).await,
            )
        }
    };
    let took = started.elapsed();
    match answer {
        Ok(a) if a.succeeded() => {
            quiet.latencies.push(took);
            if tool.is_some() {
                let text = a.result().map(|r| r.to_string()).unwrap_or_default();
                quiet.read_backs.push((what, text));
            }
        }
        Ok(a) => quiet.failures.push(format!(
            "{what} refused after {} ms: {}",
            took.as_millis(),
            a.describe()
        )),
        Err(ClientError::Timeout { after_ms, .. }) => quiet
            .failures
            .push(format!("{what} timed out after {after_ms} ms")),
        Err(ClientError::RateLimited { .. }) => quiet
            .failures
            .push(format!("{what} still rate-limited after the retry budget")),
        Err(e) => return Err(Abort::Client(e)),
    }
    Ok(())
}

/// One round of the flood as `flooder`; `burst_on` is a live session of the flooder
/// (none: the server keeps no sessions, and the burst goes without one).
async fn flood_round(
    flooder: Arc<Flooder>,
    size: usize,
    burst_on: Option<String>,
    version: Option<String>,
) -> (Vec<Reply>, Tally, Tally) {
    let opened = {
        let f = Arc::clone(&flooder);
        flood::many(size, FLOOD_WIDTH, move |_| {
            let f = Arc::clone(&f);
            async move { f.initialize().await }
        })
        .await
    };
    let mut others = Vec::new();
    {
        let id = burst_on;
        let f = Arc::clone(&flooder);
        let (sid, v) = (id.clone(), version.clone());
        others.extend(
            flood::many(BURST, BURST, move |_| {
                let (f, sid, v) = (Arc::clone(&f), sid.clone(), v.clone());
                async move { f.list_on(sid.as_deref(), v.as_deref()).await }
            })
            .await,
        );
    }
    let (opened_tally, other_tally) = (Tally::of(&opened), Tally::of(&others));
    (opened, opened_tally, other_tally)
}

/// Bodies of `large_bytes` (one JSON string) sent at once as the flooder.
async fn large_bodies(
    flooder: Arc<Flooder>,
    burst_on: Option<String>,
    large_bytes: usize,
) -> Tally {
    let id = burst_on;
    // Large bodies: one JSON string of the profile's oversized size.
    let f = Arc::clone(&flooder);
    let body: Arc<Vec<u8>> = Arc::new({
        let mut b = br#"{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"pad":""#.to_vec();
        b.resize(b.len() + large_bytes, b'a');
        b.extend_from_slice(br#""}}"#);
        b
    });
    Tally::of(
        &flood::many(LARGE_BODIES, LARGE_BODIES, move |_| {
            let (f, body, sid) = (Arc::clone(&f), Arc::clone(&body), id.clone());
            async move {
                let extra: Vec<(String, String)> = sid
                    .map(|s| ("Mcp-Session-Id".to_owned(), s))
                    .into_iter()
                    .collect();
                f.send(reqwest::Method::POST, Some(body.to_vec()), &extra)
                    .await
            }
        })
        .await,
    )
}

/// Was the request served (a 2xx)?
fn served(reply: &Reply) -> bool {
    reply.status.is_some_and(|s| (200..300).contains(&s))
}

/// Was a session refused as not the bearer's (a 4xx other than a rate limit)?
fn refused_as_unknown(reply: &Reply) -> bool {
    reply
        .status
        .is_some_and(|s| (400..500).contains(&s) && s != 429)
}

fn describe_reply(reply: &Reply) -> String {
    match (reply.status, reply.timed_out) {
        (Some(s), _) if (200..300).contains(&s) => format!("HTTP {s}: served"),
        (Some(s), _) if reply.body.is_empty() => format!("HTTP {s}"),
        (Some(s), _) => format!("HTTP {s}: {}", reply.body),
        (None, true) => "no answer within the request timeout".into(),
        (None, false) => format!(
            "no HTTP answer ({})",
            reply.error.as_deref().unwrap_or("connection error")
        ),
    }
}

/// After round `round`: every earlier session answers only its owner, or is gone.
async fn probe_bindings(
    ctx: &mut Ctx<'_>,
    round: usize,
    earlier: &[Earlier],
    version: Option<&str>,
    timeout: Duration,
) {
    let budget = Duration::from_millis(ctx.target.profile.limits.retry_budget_ms);
    for e in earlier {
        let other = Flooder::new(&e.url, e.other.clone(), timeout);
        let reply = other.patient_list_on(Some(&e.id), version, budget).await;
        ctx.must(
            &format!(
                "after round {round}: {} with {}'s bearer",
                e.label, e.other_tenant
            ),
            refused_as_unknown(&reply),
            "refused with a 4xx (404 as unknown, or 401/403; a rate limit is waited out): a flood loosens no binding",
            describe_reply(&reply),
        );
        if e.owner.is_empty() {
            continue;
        }
        let owner = Flooder::new(&e.url, e.owner.clone(), timeout);
        let reply = owner.patient_list_on(Some(&e.id), version, budget).await;
        let ok = served(&reply) || reply.status == Some(404);
        ctx.should(
            &format!("after round {round}: {} with its owner's bearer", e.label),
            ok,
            "served, or gone (404: ended to make room or expired)",
            describe_reply(&reply),
        );
    }
}

/// T5.8: one tenant's flood is bounded per tenant, starves no other tenant, and
/// loosens no binding.
pub async fn tenant_flood_bounded(ctx: &mut Ctx<'_>) -> CheckResult {
    flood::allowed(ctx)?;
    let (a, b) = ctx.two_tenants()?;
    let limits = ctx.target.profile.limits.clone();
    let timeout = ctx.target.request_timeout();
    let size = limits.flood_size();
    let quiet_tool = ctx.target.profile.readable_lists(&b).into_iter().next();

    // Before the flood: the flooder's first two sessions and the other tenant's.
    let mut a_first = ctx.session(&a).await?;
    let mut a_second = ctx.session(&a).await?;
    let mut b_first = ctx.session(&b).await?;
    let version = a_first.http().and_then(|h| h.protocol_version.clone());
    let url_of = |c: &mut Conn| c.http().map(|h| h.url.clone()).unwrap_or_default();
    let id_of = |c: &mut Conn| c.http().and_then(|h| h.session_id.clone());
    let (a_url, b_url) = (url_of(&mut a_first), url_of(&mut b_first));
    let (a_headers, b_headers) = (
        flood::credential_headers(&mut a_first),
        flood::credential_headers(&mut b_first),
    );
    let mut earlier = Vec::new();
    for (label, conn, url, owner, other, other_tenant) in [
        (
            format!("{}'s first session", a.id),
            &mut a_first,
            &a_url,
            &a_headers,
            &b_headers,
            &b.id,
        ),
        (
            format!("{}'s second session", a.id),
            &mut a_second,
            &a_url,
            &a_headers,
            &b_headers,
            &b.id,
        ),
        (
            format!("{}'s session", b.id),
            &mut b_first,
            &b_url,
            &b_headers,
            &a_headers,
            &a.id,
        ),
    ] {
        if let Some(id) = id_of(conn) {
            earlier.push(Earlier {
                label,
                url: url.clone(),
                id,
                owner: owner.clone(),
                other: other.clone(),
                other_tenant: other_tenant.clone(),
            });
        }
    }
    let keeps_sessions = !earlier.is_empty();
    let mut burst_on = id_of(&mut a_first);

    // The other tenant is served before the flood (a control).
    let mut control = Quiet::default();
    quiet_call(ctx, &mut b_first, &b, None, &mut control).await?;
    if let Some(tool) = &quiet_tool {
        quiet_call(ctx, &mut b_first, &b, Some(tool), &mut control).await?;
    }
    if !control.failures.is_empty() {
        ctx.must(
            &format!("{}'s calls before the flood (control)", b.id),
            false,
            "served",
            control.failures.join("; "),
        );
        return Err(Abort::ControlFailed);
    }

    let flooder = Flooder::new(&a_url, a_headers.clone(), timeout);
    let memory_before = ctx.target.server_memory().await;
    let mut memory = Vec::new();
    let mut accepted: Vec<Vec<String>> = Vec::new();
    let mut live: Vec<usize> = Vec::new();
    let mut waited_idle = false;
    for round in 1..=2 {
        if round == 2
            && let Some(idle) = limits.session_idle_secs.filter(|s| *s <= LONGEST_IDLE_WAIT)
        {
            tokio::time::sleep(Duration::from_secs(idle + 2)).await;
            waited_idle = true;
            // The flooder's first session may have expired too: the burst goes to a
            // new one (or, refused, without one).
            if burst_on.is_some() {
                let opened = flooder.initialize().await;
                let ok = served(&opened);
                burst_on = opened.session.filter(|_| ok);
            }
        }
        let mut quiet_conn = ctx.session(&b).await?;
        let started = Instant::now();
        let done = AtomicBool::new(false);
        let target = ctx.target;
        let flood_run = async {
            let out = flood_round(
                Arc::clone(&flooder),
                size,
                burst_on.clone(),
                version.clone(),
            )
            .await;
            // Memory is judged on the sessions and calls: sampled before the large
            // bodies, whose transient buffers an allocator may keep (glibc raises its
            // mmap threshold after freeing one), and again after them, as the next
            // round's baseline. Settle first: a server frees ended sessions a moment later.
            tokio::time::sleep(Duration::from_secs(1)).await;
            let sessions_memory = target.server_memory().await;
            let large = large_bodies(
                Arc::clone(&flooder),
                burst_on.clone(),
                limits.oversized_message_bytes,
            )
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after_large = target.server_memory().await;
            done.store(true, Ordering::Relaxed);
            (out, large, sessions_memory, after_large)
        };
        let shared: &Ctx<'_> = ctx;
        let quiet_run = async {
            let mut quiet = Quiet::default();
            let mut calls = 0usize;
            while !done.load(Ordering::Relaxed) || calls < 4 {
                let tool = if calls % 2 == 1 {
                    quiet_tool.as_deref()
                } else {
                    None
                };
                quiet_call(shared, &mut quiet_conn, &b, tool, &mut quiet).await?;
                calls += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok::<_, Abort>(quiet)
        };
        let (((replies, opened, burst), large, sessions_memory, after_large), quiet) =
            tokio::join!(flood_run, quiet_run);
        let quiet = quiet?;
        let took = flood::since(started);
        for (via, text) in &quiet.read_backs {
            ctx.screen(&b.id, via, text);
        }
        memory.push((sessions_memory, after_large));
        let ids: Vec<String> = replies
            .iter()
            .filter(|r| served(r))
            .filter_map(|r| r.session.clone())
            .collect();
        ctx.observe(
            &format!("round {round}: {size} sessions opened and abandoned by {}", a.id),
            Outcome::Pass,
            "each served or refused (a retry hint is the right refusal)",
            format!(
                "{} accepted; {} in {took}; then {BURST} concurrent calls {}: {}; then {LARGE_BODIES} bodies of {} bytes: {}",
                ids.len(),
                opened.describe(),
                if burst_on.is_some() { "on its first session" } else { "without a session (the server issues none)" },
                burst.describe(),
                limits.oversized_message_bytes,
                large.describe()
            ),
        );
        let silent = [&opened, &burst, &large]
            .iter()
            .map(|t| t.timed_out + t.errors)
            .sum::<usize>();
        let unhinted = opened.unhinted;
        ctx.should(
            &format!("round {round}: the flood's own requests are answered"),
            silent == 0,
            "every request served or refused within the request timeout",
            if silent == 0 {
                "all answered".to_owned()
            } else {
                format!("{silent} requests got no answer (timeout or reset)")
            },
        );
        ctx.should(
            &format!("round {round}: refusals carry a retry hint"),
            unhinted == 0,
            "a session refused past a cap gets 429 or 503 with Retry-After",
            if unhinted == 0 {
                "every refusal of an initialize had Retry-After (or none was refused)".to_owned()
            } else {
                format!(
                    "{unhinted} refusals without Retry-After: {}",
                    opened.describe()
                )
            },
        );
        let calls = flood::latencies(&quiet.latencies);
        ctx.must(
            &format!("round {round}: {}'s calls during the flood", b.id),
            quiet.failures.is_empty(),
            "every call served within the request timeout (latency reported, not judged)",
            if quiet.failures.is_empty() {
                format!("all served: {calls}")
            } else {
                format!(
                    "{} not served: {}; served: {calls}",
                    quiet.failures.len(),
                    quiet.failures.join("; ")
                )
            },
        );
        if round == 1 {
            for (i, id) in ids.iter().take(PROBED).enumerate() {
                earlier.push(Earlier {
                    label: format!("flood session {} of {}", i + 1, a.id),
                    url: a_url.clone(),
                    id: id.clone(),
                    owner: Vec::new(),
                    other: b_headers.clone(),
                    other_tenant: b.id.clone(),
                });
            }
        }
        accepted.push(ids);
        // How many of the flood's sessions are still open: each asked by its owner.
        let all: Arc<Vec<String>> = Arc::new(accepted.iter().flatten().cloned().collect());
        let (f, v, ids) = (Arc::clone(&flooder), version.clone(), Arc::clone(&all));
        let asked = flood::many(all.len(), FLOOD_WIDTH, move |i| {
            let (f, v, ids) = (Arc::clone(&f), v.clone(), Arc::clone(&ids));
            async move { f.list_on(Some(&ids[i]), v.as_deref()).await }
        })
        .await;
        live.push(
            asked
                .iter()
                .filter(|r| r.status.is_some_and(|s| s != 404 && s != 410))
                .count(),
        );
        if keeps_sessions {
            probe_bindings(ctx, round, &earlier, version.as_deref(), timeout).await;
        }
        quiet_conn.close().await;
    }
    if !keeps_sessions {
        ctx.observe(
            "bindings after the flood",
            Outcome::Skip,
            "every earlier session answers only its owner",
            "skipped: the server issues no session ids",
        );
    }

    // A new session of the other tenant after the flood.
    let mut after = Quiet::default();
    let mut fresh = ctx.session(&b).await?;
    quiet_call(ctx, &mut fresh, &b, None, &mut after).await?;
    if let Some(tool) = &quiet_tool {
        quiet_call(ctx, &mut fresh, &b, Some(tool), &mut after).await?;
    }
    ctx.must(
        &format!("{}'s new session after the flood", b.id),
        after.failures.is_empty(),
        "initialize and calls served",
        if after.failures.is_empty() {
            format!("served: {}", flood::latencies(&after.latencies))
        } else {
            after.failures.join("; ")
        },
    );

    // Bounded per tenant: a declared cap holds; memory stops growing.
    let (first, second) = (accepted[0].len(), accepted[1].len());
    let cap = limits
        .sessions_per_tenant
        .into_iter()
        .chain(limits.sessions_per_principal)
        .min();
    if let Some(cap) = cap {
        let most = live.iter().copied().max().unwrap_or(0);
        ctx.must(
            "sessions held by one credential within the declared cap",
            most <= cap,
            format!("at most {cap} of the flood's sessions open at once (the profile's declared cap; each asked by its owner after each round)"),
            format!(
                "{first} accepted in round 1, {} of them open after it; {second} accepted in round 2, {} of all open after it{}",
                live[0],
                live[1],
                if waited_idle {
                    " (idle expiry waited out between)"
                } else {
                    ""
                }
            ),
        );
    }
    match (&memory_before, &memory[0], &memory[1]) {
        (Ok(m0), (Ok(m1), Ok(m1_after)), (Ok(m2), Ok(m2_after))) => {
            let (g1, g2) = (m1.saturating_sub(*m0), m2.saturating_sub(*m1_after));
            let allowed = ((g1 as f64 * GROWTH_FRACTION) as u64).max(GROWTH_NOISE);
            ctx.must(
                "the target's memory across the two rounds",
                g2 <= allowed,
                format!(
                    "the second round grows resident memory by at most {}% of the first round's growth, or {}",
                    (GROWTH_FRACTION * 100.0) as u32,
                    flood::mb(GROWTH_NOISE)
                ),
                format!(
                    "{} before; {} after round 1's sessions and calls (+{}, {first} sessions), {} after its large bodies; {} after round 2's (+{}, {second} sessions), {} after its large bodies",
                    flood::mb(*m0),
                    flood::mb(*m1),
                    flood::mb(g1),
                    flood::mb(*m1_after),
                    flood::mb(*m2),
                    flood::mb(g2),
                    flood::mb(*m2_after)
                ),
            );
        }
        (Err(why), _, _)
        | (_, (Err(why), _) | (_, Err(why)), _)
        | (_, _, (Err(why), _) | (_, Err(why))) => {
            ctx.observe(
                "the target's memory across the two rounds",
                Outcome::Skip,
                "the second round does not grow resident memory past the first's",
                format!("skipped: {why}"),
            );
            if cap.is_none() && first == size && second == size && !waited_idle {
                ctx.should(
                    "a bound on one credential's sessions",
                    false,
                    "a cap (refusals with a retry hint) or idle expiry declared in the profile",
                    format!("all {} sessions of both rounds accepted, no cap declared, memory not measured", 2 * size),
                );
            }
        }
    }

    // Clean up: end what the flood opened, as a polite client would.
    let ids: Vec<String> = accepted.into_iter().flatten().collect();
    let n = ids.len();
    let ids = Arc::new(ids);
    let f = Arc::clone(&flooder);
    flood::many(n, FLOOD_WIDTH, move |i| {
        let (f, ids) = (Arc::clone(&f), Arc::clone(&ids));
        async move { f.end(&ids[i]).await }
    })
    .await;
    for conn in [a_first, a_second, b_first, fresh] {
        conn.close().await;
    }
    Ok(())
}
