//! T1 — discovery is tenant-scoped. Each tenant's `tools/list` (every page) is compared
//! with the tools the profile says it is entitled to, alone, across tenants, under
//! concurrency, after a revocation, and for its cache scope.

use super::{Abort, CheckResult, Ctx};
use crate::client::{
    ClientError, Conn, LATEST_SESSION_VERSION, Listing, STATELESS_VERSION, shorten,
};
use crate::model::Outcome;
use crate::profile::{Tenant, expand};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// Rounds of concurrent listings in T1.3.
const ROUNDS: usize = 6;
/// Sessions per tenant in T1.3.
const SESSIONS_PER_TENANT: usize = 2;

/// "only globex is entitled to", "no tenant of the profile is entitled to", …
fn owners_phrase(tenants: &[Tenant], tool: &str) -> String {
    let owners: Vec<&str> = tenants
        .iter()
        .filter(|t| t.entitled(tool))
        .map(|t| t.id.as_str())
        .collect();
    match owners.as_slice() {
        [] => "which no tenant of the profile is entitled to".into(),
        [one] => format!("which only {one} is entitled to"),
        many => format!("which only {} are entitled to", many.join(" and ")),
    }
}

/// Tools entitled to some other tenant but not to `tenant`.
fn foreign_tools(ctx: &Ctx<'_>, tenant: &Tenant) -> BTreeSet<String> {
    ctx.target
        .profile
        .foreign_tools(tenant)
        .into_iter()
        .collect()
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut v = names.to_vec();
    v.sort();
    v.dedup();
    v
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Lists every tool as `tenant` in a fresh session.
async fn listing_of(ctx: &mut Ctx<'_>, tenant: &Tenant) -> Result<Listing, Abort> {
    let mut conn = ctx.session(tenant).await?;
    let listing = conn.list_all_tools().await?;
    conn.close().await;
    Ok(listing)
}

/// T1.1: each tenant's `tools/list` (all pages) is exactly its entitled tools.
pub async fn entitled_tools_listed(ctx: &mut Ctx<'_>) -> CheckResult {
    let tenants = ctx.tenants();
    if tenants.is_empty() {
        return Err(Abort::Skip(
            "the profile names no tenants ([[tenants]] with their entitled tools)".into(),
        ));
    }
    let mut listings = Vec::new();
    for t in &tenants {
        listings.push(listing_of(ctx, t).await?);
    }
    let same_for_all =
        listings.len() > 1 && listings.windows(2).all(|w| w[0].names() == w[1].names());
    for (t, listing) in tenants.iter().zip(&listings) {
        let names = listing.names();
        let want = sorted(&t.tools);
        let extra: Vec<String> = names
            .iter()
            .filter(|n| !want.contains(n))
            .cloned()
            .collect();
        let missing: Vec<String> = want
            .iter()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect();
        let mut defects = Vec::new();
        if let Some(p) = &listing.problem {
            defects.push(format!("the listing broke off: {p}"));
        }
        if !extra.is_empty() {
            // Grouped by who is entitled: "get-sum, which only b is entitled to".
            let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
            for x in &extra {
                let phrase = owners_phrase(&tenants, x);
                match groups.iter_mut().find(|(p, _)| *p == phrase) {
                    Some((_, names)) => names.push(x),
                    None => groups.push((phrase, vec![x])),
                }
            }
            // Another tenant's tools first: they are the leak a newcomer looks for.
            groups.sort_by_key(|(phrase, _)| phrase.contains("no tenant"));
            let shown: Vec<String> = groups
                .iter()
                .map(|(phrase, names)| {
                    let phrase = if names.len() > 1 {
                        phrase.replacen("which", "which all", 1)
                    } else {
                        phrase.clone()
                    };
                    format!("{}, {phrase}", names.join(", "))
                })
                .collect();
            let lead = if same_for_all {
                "every tenant is shown the same tools: "
            } else {
                ""
            };
            defects.push(format!("{lead}{} sees {}", t.id, shown.join("; ")));
        }
        if !missing.is_empty() {
            defects.push(format!(
                "{} is not shown {}, which it is entitled to",
                t.id,
                missing.join(", ")
            ));
        }
        let pages = format!("{} tool(s) on {} page(s)", names.len(), listing.pages);
        ctx.must(
            &format!("{}'s tools/list", t.id),
            defects.is_empty(),
            format!("exactly {}'s entitled tools: {}", t.id, list_or_none(&want)),
            if defects.is_empty() {
                format!("exactly those ({pages})")
            } else {
                format!("{} ({pages})", defects.join("; "))
            },
        );
    }
    Ok(())
}

/// Is `word` in `text` as a whole identifier (not inside a longer name)?
fn mentions_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Does `name` look like an identifier rather than a word of prose (`admin_export`,
/// `get-sum`, `v2`)? Only such names are searched for in free text.
fn identifier_like(name: &str) -> bool {
    name.chars().any(|c| !c.is_alphabetic())
}

/// Every string and object key inside `value`.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                strings(v, out);
            }
        }
        _ => {}
    }
}

/// Where `listing` shows anything of the `foreign` tools (`known` holds their listed
/// form in their own tenant's session, for titles and descriptions). A foreign name
/// counts when it is a listed tool's name, a string or key of a schema, or — when it
/// looks like an identifier, not an English word such as `charge` — a word of any text.
fn leaks(
    listing: &Listing,
    foreign: &BTreeSet<String>,
    known: &[Value],
    own: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut found = Vec::new();
    for tool in &listing.tools {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or("?");
        let text = tool.to_string();
        let mut schema_strings = Vec::new();
        for field in ["inputSchema", "outputSchema"] {
            if let Some(schema) = tool.get(field) {
                strings(schema, &mut schema_strings);
            }
        }
        for f in foreign {
            if name == f {
                found.push(format!("{f} is listed"));
            } else if schema_strings.iter().any(|s| s == f)
                || (identifier_like(f) && mentions_word(&text, f))
            {
                found.push(format!("{name}'s listing mentions {f}"));
            }
        }
        // A tool the tenant is entitled to is its own, whatever it says: two tenants
        // served by one upstream list tools with the same descriptions.
        if own(name) {
            continue;
        }
        for k in known {
            let kname = k.get("name").and_then(Value::as_str).unwrap_or("?");
            if kname == name || !foreign.contains(kname) {
                continue;
            }
            for field in ["title", "description"] {
                if let Some(v) = k.get(field).and_then(Value::as_str)
                    && v.chars().count() >= 16
                    && text.contains(v)
                {
                    found.push(format!("{name} carries the {field} of {kname}"));
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// T1.2: no tool entitled only to another tenant shows anywhere in a tenant's list,
/// and a cursor from one tenant's session reveals nothing in another's.
pub async fn no_foreign_tool_anywhere(ctx: &mut Ctx<'_>) -> CheckResult {
    let (a, b) = ctx.two_tenants()?;
    let tenants = ctx.tenants();
    let la = listing_of(ctx, &a).await?;
    let lb = listing_of(ctx, &b).await?;
    for (me, mine, theirs) in [(&a, &la, &lb), (&b, &lb, &la)] {
        let foreign = foreign_tools(ctx, me);
        if foreign.is_empty() {
            ctx.observe(
                &format!("{}'s listing shows no foreign tool", me.id),
                Outcome::Skip,
                "a tool entitled to another tenant only",
                format!(
                    "skipped: every tool of the profile is entitled to {}",
                    me.id
                ),
            );
            continue;
        }
        // A listing that failed or read no page shows nothing — and proves nothing.
        if mine.problem.is_some() || mine.pages == 0 {
            let problem = mine
                .problem
                .clone()
                .unwrap_or_else(|| "no page was listed".into());
            ctx.must(
                &format!("{}'s listing shows no foreign tool", me.id),
                false,
                "a complete listing (every page) to inspect",
                format!(
                    "the listing broke off after {} page(s): {problem}",
                    mine.pages
                ),
            );
            continue;
        }
        let found = leaks(mine, &foreign, &theirs.tools, |name| me.entitled(name));
        ctx.must(
            &format!("{}'s listing shows no foreign tool", me.id),
            found.is_empty(),
            format!(
                "on none of its pages, by name, title, description or schema: {}",
                foreign.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
            if found.is_empty() {
                format!("none of them ({} page(s) read)", mine.pages)
            } else {
                format!(
                    "{} ({})",
                    found.join("; "),
                    foreign
                        .iter()
                        .filter(|f| found.iter().any(|x| x.contains(f.as_str())))
                        .map(|f| format!("{f}: {}", owners_phrase(&tenants, f)))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            },
        );
    }
    // A cursor minted in one tenant's session, replayed in the other's.
    for (owner, listing, other) in [(&a, &la, &b), (&b, &lb, &a)] {
        let case = format!("{}'s cursor in {}'s session", owner.id, other.id);
        let Some(cursor) = &listing.first_cursor else {
            ctx.observe(
                &case,
                Outcome::Skip,
                "a cursor to replay",
                format!(
                    "skipped: {}'s list fits on one page, so there is no cursor",
                    owner.id
                ),
            );
            continue;
        };
        let mut conn = ctx.session(other).await?;
        let answer = conn
            .request("tools/list", json!({"cursor": cursor}))
            .await?;
        conn.close().await;
        let shown: Vec<String> = answer
            .result()
            .and_then(|r| r.get("tools"))
            .and_then(Value::as_array)
            .map(|tools| {
                tools
                    .iter()
                    .filter_map(|t| t.get("name")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let foreign = foreign_tools(ctx, other);
        let leaked: Vec<&String> = shown.iter().filter(|n| foreign.contains(*n)).collect();
        let actual = match answer.result() {
            None => format!("refused ({})", answer.describe()),
            Some(_) if leaked.is_empty() => {
                format!(
                    "a page of {}'s own tools: {}",
                    other.id,
                    list_or_none(&shown)
                )
            }
            Some(_) => format!(
                "the page shows {}, entitled to {} only: the cursor carried {}'s list into {}'s session",
                leaked
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                owner.id,
                owner.id,
                other.id
            ),
        };
        ctx.must(
            &case,
            leaked.is_empty(),
            format!(
                "refused, or a page of {}'s own tools — never {}'s",
                other.id, owner.id
            ),
            actual,
        );
    }
    Ok(())
}

/// T1.3: sessions of different tenants listing concurrently, in a random interleaving,
/// each see exactly what their tenant sees alone.
pub async fn concurrent_lists_apart(ctx: &mut Ctx<'_>) -> CheckResult {
    ctx.two_tenants()?;
    let tenants = ctx.tenants();
    let mut alone = Vec::new();
    for t in &tenants {
        let listing = listing_of(ctx, t).await?;
        // The baseline must be complete: a broken-off listing alone would let partial
        // concurrent listings compare equal to it.
        if listing.problem.is_some() || listing.pages == 0 {
            ctx.must(
                &format!("{}'s listing alone", t.id),
                false,
                "a complete listing (every page) to compare the concurrent ones with",
                format!(
                    "the listing broke off after {} page(s): {}",
                    listing.pages,
                    listing.problem.as_deref().unwrap_or("no page was listed")
                ),
            );
            return Err(Abort::ControlFailed);
        }
        alone.push(listing.names());
    }
    let mut sessions: Vec<(usize, Conn)> = Vec::new();
    for (i, t) in tenants.iter().enumerate() {
        for _ in 0..SESSIONS_PER_TENANT {
            sessions.push((i, ctx.session(t).await?));
        }
    }
    let seed = ctx.rng.next_u64();
    let mut rng = super::Rng::new(seed);
    // Per tenant: listings seen, and the first defects.
    let mut seen = vec![0usize; tenants.len()];
    let mut defects: Vec<Vec<String>> = vec![Vec::new(); tenants.len()];
    for round in 1..=ROUNDS {
        rng.shuffle(&mut sessions);
        let mut tasks = Vec::new();
        for (i, mut conn) in sessions.drain(..) {
            let delay = Duration::from_micros(rng.below(3000) as u64);
            tasks.push(tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let listing = conn.list_all_tools().await;
                (i, conn, listing)
            }));
        }
        for task in tasks {
            let (i, conn, listing) = task.await.map_err(|e| {
                Abort::Client(ClientError::Harness(format!("a listing task failed: {e}")))
            })?;
            let listing = listing?;
            sessions.push((i, conn));
            seen[i] += 1;
            let t = &tenants[i];
            let names = listing.names();
            let foreign = foreign_tools(ctx, t);
            let bled: Vec<String> = names
                .iter()
                .filter(|n| foreign.contains(*n))
                .map(|n| format!("{n}, {}", owners_phrase(&tenants, n)))
                .collect();
            if let Some(p) = &listing.problem {
                defects[i].push(format!("round {round}: {p}"));
            } else if !bled.is_empty() {
                defects[i].push(format!("round {round}: {} sees {}", t.id, bled.join("; ")));
            } else if names != alone[i] {
                defects[i].push(format!(
                    "round {round}: {} sees {} instead of {}",
                    t.id,
                    list_or_none(&names),
                    list_or_none(&alone[i])
                ));
            }
        }
    }
    for (_, conn) in sessions {
        conn.close().await;
    }
    for (i, t) in tenants.iter().enumerate() {
        let d = &defects[i];
        ctx.must(
            &format!("{}'s concurrent listings", t.id),
            d.is_empty(),
            format!(
                "every listing equals {}'s listing alone and shows no other tenant's tool",
                t.id
            ),
            if d.is_empty() {
                format!(
                    "{} listings in {ROUNDS} interleaved rounds (seed {seed:#x}), all as alone",
                    seen[i]
                )
            } else {
                {
                    let mut distinct: Vec<&str> = Vec::new();
                    for x in d {
                        let what = x.split_once(": ").map_or(x.as_str(), |(_, w)| w);
                        if !distinct.contains(&what) {
                            distinct.push(what);
                        }
                    }
                    format!(
                        "{} of {} listings differ (seed {seed:#x}, first in {}): {}",
                        d.len(),
                        seen[i],
                        d[0].split_once(':').map_or("", |(r, _)| r),
                        distinct
                            .iter()
                            .take(3)
                            .copied()
                            .collect::<Vec<_>>()
                            .join("; ")
                    )
                }
            },
        );
    }
    Ok(())
}

/// Runs a revocation or restore command of the profile in its directory.
async fn run_command(ctx: &Ctx<'_>, argv: &[String]) -> Result<(), String> {
    let argv: Vec<String> = argv.iter().map(|a| expand(a, None)).collect();
    let (program, args) = argv.split_first().ok_or("empty command")?;
    let base = ctx.target.profile.base_dir();
    let program = if program.starts_with("./") || program.starts_with("../") {
        base.join(program).to_string_lossy().into_owned()
    } else {
        program.clone()
    };
    ctx.transcript
        .note("harness", format!("running `{}`", argv.join(" ")));
    let out = tokio::process::Command::new(&program)
        .args(args)
        .current_dir(&base)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("`{program}` failed to start: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{}` failed ({}): {}",
            argv.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// T1.4: revoking an entitlement removes the tool from the next listing and, where
/// `listChanged` is declared, notifies open sessions.
pub async fn revocation(ctx: &mut Ctx<'_>) -> CheckResult {
    let Some(rev) = ctx.target.profile.revocation.clone() else {
        return Err(Abort::Skip(
            "the profile gives no way to revoke an entitlement ([revocation] command)".into(),
        ));
    };
    let tenant = ctx
        .tenants()
        .into_iter()
        .find(|t| t.id == rev.tenant)
        .expect("validated: the revocation names a listed tenant");
    let mut open = ctx.connect(&tenant.id, Some(&tenant)).await?;
    let init = open.initialize(LATEST_SESSION_VERSION).await?;
    let list_changed = init
        .result()
        .and_then(|r| r.pointer("/capabilities/tools/listChanged"))
        == Some(&Value::Bool(true));
    let before = open.list_all_tools().await?;
    let listed = before.names().contains(&rev.tool);
    ctx.must(
        &format!("{} is listed before the revocation", rev.tool),
        listed,
        format!("{}'s list shows {}", tenant.id, rev.tool),
        list_or_none(&before.names()),
    );
    if !listed {
        return Ok(());
    }
    // By effect too: what a call of the revoked tool would change is read now.
    let marker = ctx
        .takes_marker(&rev.tool)
        .then(|| ctx.marker_for(&tenant.id));
    let witness = ctx
        .witness(&rev.tool, marker.as_deref(), &mut open, &tenant)
        .await?;
    let wait = ctx.target.silence_timeout();
    let (revoked, notes) = {
        let command = run_command(ctx, &rev.command);
        let listen = open.notifications(wait);
        tokio::join!(command, listen)
    };
    if let Err(e) = revoked {
        return Err(Abort::Skip(format!("the revocation command failed: {e}")));
    }
    let notes = notes?;
    let after_open = open.list_all_tools().await?;
    let after_new = listing_of(ctx, &tenant).await?;
    for (case, listing) in [
        ("the open session's next listing", &after_open),
        ("a new session's listing", &after_new),
    ] {
        let still = listing.names().contains(&rev.tool);
        ctx.must(
            case,
            !still && listing.problem.is_none(),
            format!("{} is gone from {}'s list", rev.tool, tenant.id),
            if still {
                format!("{} is still listed after the revocation", rev.tool)
            } else {
                format!("gone ({})", list_or_none(&listing.names()))
            },
        );
    }
    let notified = notes.iter().any(|n| {
        n.get("method").and_then(Value::as_str) == Some("notifications/tools/list_changed")
    });
    if list_changed {
        ctx.must(
            "notifications/tools/list_changed",
            notified,
            "sent to the open session (the server declared tools.listChanged)",
            if notified {
                "received".into()
            } else {
                format!("not received within {} ms", wait.as_millis())
            },
        );
    } else {
        ctx.observe(
            "notifications/tools/list_changed",
            Outcome::Skip,
            "only required where tools.listChanged is declared",
            "skipped: the server does not declare tools.listChanged",
        );
    }
    // A call of the revoked tool, with a token the issuer would still mint: refused.
    let token = ctx.token_for(&tenant, &rev.tool, "").await?;
    let args = ctx.arguments(&rev.tool, marker.as_deref().unwrap_or(""), "", &tenant.id);
    let call = open.call_tool(&rev.tool, args, token.as_deref()).await?;
    let case = format!("{} calls {} after the revocation", tenant.id, rev.tool);
    let expected = format!("refused: {} no longer has {}", tenant.id, rev.tool);
    let accepted = format!(
        "the call succeeded: {} still runs for {}",
        rev.tool, tenant.id
    );
    if rev.restore.is_empty() {
        ctx.expect_refused(&case, &call, &witness, &mut open, &expected, &accepted)
            .await?;
        open.close().await;
        return Ok(());
    }
    if let Err(e) = run_command(ctx, &rev.restore).await {
        ctx.should(
            "the entitlement is restored",
            false,
            "the restore command succeeds",
            e,
        );
        ctx.expect_refused(&case, &call, &witness, &mut open, &expected, &accepted)
            .await?;
        open.close().await;
        return Ok(());
    }
    // Later checks of this run need the entitlement back: wait until it is listed again
    // (the server may apply a configuration change with a delay).
    let deadline = tokio::time::Instant::now() + wait * 2;
    loop {
        let listing = listing_of(ctx, &tenant).await?;
        if listing.names().contains(&rev.tool) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            ctx.should(
                "the entitlement is restored",
                false,
                format!("{} is listed again after the restore command", rev.tool),
                format!("still missing after {} ms", (wait * 2).as_millis()),
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Read back once the entitlement (and the lists it may cover) is back.
    ctx.expect_refused(&case, &call, &witness, &mut open, &expected, &accepted)
        .await?;
    open.close().await;
    Ok(())
}

/// One stateless (2026-07-28) `tools/list` over every page: names and `cacheScope`s.
async fn stateless_listing(
    ctx: &mut Ctx<'_>,
    tenant: &Tenant,
) -> Result<(Vec<String>, Vec<Option<String>>), Abort> {
    let timeout = ctx.target.request_timeout();
    let mut conn = ctx.connect(&tenant.id, Some(tenant)).await?;
    let h = conn.http().expect("T1.5 runs on HTTP only");
    h.protocol_version = Some(STATELESS_VERSION.into());
    super::t0::require_stateless(h, timeout).await?;
    let header = |name: &str, value: &str| (name.to_owned(), value.to_owned());
    let (mut names, mut scopes) = (Vec::new(), Vec::new());
    let mut cursor: Option<String> = None;
    for page in 0..crate::client::MAX_PAGES {
        let mut params = json!({"_meta": crate::client::stateless_meta()});
        if let Some(c) = &cursor {
            params["cursor"] = json!(c);
        }
        let body =
            json!({"jsonrpc": "2.0", "id": 2 + page, "method": "tools/list", "params": params});
        let answer = h
            .post(
                body.to_string().as_bytes(),
                &[header("Mcp-Method", "tools/list")],
                timeout,
            )
            .await?;
        let Some(result) = answer.messages.iter().find_map(|m| m.get("result")) else {
            return Err(Abort::Skip(format!(
                "a stateless tools/list as {} was not answered with a result: HTTP {} {}",
                tenant.id,
                answer.status,
                shorten(answer.body.trim(), 120)
            )));
        };
        scopes.push(
            result
                .get("cacheScope")
                .and_then(Value::as_str)
                .map(str::to_owned),
        );
        names.extend(
            result
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("name")?.as_str().map(str::to_owned)),
        );
        cursor = result
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    conn.close().await;
    Ok((sorted(&names), scopes))
}

/// T1.5: under 2026-07-28, a `tools/list` that varies by tenant is `cacheScope:
/// "private"`.
pub async fn cache_scope_private(ctx: &mut Ctx<'_>) -> CheckResult {
    let (a, b) = ctx.two_tenants()?;
    let (names_a, scopes_a) = stateless_listing(ctx, &a).await?;
    let (names_b, scopes_b) = stateless_listing(ctx, &b).await?;
    if names_a == names_b {
        return Err(Abort::Skip(format!(
            "{} and {} are shown the same tools, so the list does not vary by authorisation",
            a.id, b.id
        )));
    }
    for (t, scopes) in [(&a, &scopes_a), (&b, &scopes_b)] {
        let private = scopes.iter().all(|s| s.as_deref() == Some("private"));
        ctx.must(
            &format!("{}'s tools/list cacheScope", t.id),
            private,
            "cacheScope \"private\" on every page (the list differs between tenants, so a shared cache would serve one tenant's list to another)",
            scopes
                .iter()
                .map(|s| match s {
                    Some(s) => format!("{s:?}"),
                    None => "no cacheScope".into(),
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_names_match_as_whole_words_only() {
        assert!(mentions_word("use admin_export here", "admin_export"));
        assert!(mentions_word("\"admin_export\"", "admin_export"));
        assert!(!mentions_word("admin_export_all", "admin_export"));
        assert!(!mentions_word("get-sum-of", "get-sum"));
    }

    #[test]
    fn prose_words_count_only_in_schemas_identifiers_everywhere() {
        let listing = Listing {
            tools: vec![
                json!({"name": "admin_export", "description": "Exports every note and charge"}),
                json!({"name": "x", "description": "then call admin_purge"}),
                json!({"name": "y", "inputSchema": {"properties": {"charge": {}}}}),
            ],
            ..Listing::default()
        };
        let foreign = BTreeSet::from(["charge".to_string(), "admin_purge".to_string()]);
        assert_eq!(
            leaks(&listing, &foreign, &[], |_| false),
            vec![
                "x's listing mentions admin_purge".to_string(),
                "y's listing mentions charge".to_string()
            ]
        );
    }

    #[test]
    fn an_own_tool_may_share_a_foreign_tools_description_another_may_not() {
        // One upstream behind two tenants: namespaced names, the same description.
        let text = "Create multiple new entities in the knowledge graph";
        let listing = Listing {
            tools: vec![
                json!({"name": "acme_create_entities", "description": text}),
                json!({"name": "renamed", "description": text}),
            ],
            ..Listing::default()
        };
        let foreign = BTreeSet::from(["globex_create_entities".to_string()]);
        let known = [json!({"name": "globex_create_entities", "description": text})];
        assert_eq!(
            leaks(&listing, &foreign, &known, |n| n == "acme_create_entities"),
            vec!["renamed carries the description of globex_create_entities".to_string()]
        );
    }

    #[test]
    fn owners_are_named_for_a_newcomer() {
        let t = |id: &str, tools: &[&str]| Tenant {
            id: id.into(),
            credential: None,
            tools: tools.iter().map(|s| s.to_string()).collect(),
            principals: vec![],
        };
        let tenants = vec![t("acme", &["a"]), t("globex", &["b"])];
        assert_eq!(
            owners_phrase(&tenants, "b"),
            "which only globex is entitled to"
        );
        assert_eq!(
            owners_phrase(&tenants, "c"),
            "which no tenant of the profile is entitled to"
        );
    }
}
