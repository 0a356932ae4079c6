//! The in-process fuzz oracles: each takes any bytes, drives the core with them, and
//! panics exactly when an isolation property breaks. The cargo-fuzz targets in `fuzz/`
//! are one-line shims over these, and `cargo test` replays every seed and regression
//! through the same functions (`tests/fuzz_seeds.rs`).
//!
//! - [`check_call_token`]: bytes as a call token, or structured mutations of a valid one
//!   — nothing verifies, and no call runs, unless the signer made the token exactly.
//! - [`check_call_sequence`]: a generated sequence of multi-tenant operations (sessions
//!   of both tenants, good and bad call tokens, replays, tenant labels, revocations and
//!   restores) checked against a model: each tenant's notes and charges, read back
//!   through its own authorised tools, are exactly the model's, so no effect ever lands
//!   on a tenant other than the token's.
//! - [`check_call_arguments`](super::testing::check_call_arguments): any JSON object as
//!   every tool's arguments — nothing lands in the other tenant.

use super::Core;
use super::jws::{self, Scratch};
use super::mutants::Mutant;
use super::policy::{CALL_TYP, Policy};
use super::testing::{self, NOW};
use arbitrary::Unstructured;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

/// One change to a valid call token.
#[derive(Debug)]
enum TokenEdit {
    /// Flip bits of one byte of the compact form.
    FlipByte {
        at: usize,
        mask: u8,
    },
    /// Drop one byte, or insert one.
    Remove {
        at: usize,
    },
    Insert {
        at: usize,
        byte: u8,
    },
    /// Replace one of the three segments (header, claims, signature) by the same
    /// segment of another valid token — another key, tenant, principal or tool.
    SwapSegment {
        segment: usize,
        donor: usize,
    },
    /// Re-encode one segment: the same bytes with `=` padding, or a JSON value changed
    /// (a claim or header member set, removed or duplicated) — signature unchanged.
    Pad {
        segment: usize,
    },
    SetMember {
        segment: usize,
        member: usize,
        value: usize,
    },
    RemoveMember {
        segment: usize,
        member: usize,
    },
    DuplicateMember {
        segment: usize,
        member: usize,
        value: usize,
    },
    /// Cut the token at a byte.
    Truncate {
        at: usize,
    },
}

/// Header members, and the claims of a call token, that edits touch.
const HEADER_MEMBERS: &[&str] = &["alg", "typ", "kid", "crit", "b64"];
const CLAIM_MEMBERS: &[&str] = &[
    "iss", "aud", "sub", "tenant", "tool", "action", "resource", "iat", "exp", "nbf", "jti",
];

/// The member an edit of `segment` (0: header, 1: claims) names.
fn member(segment: usize, i: usize) -> &'static str {
    let names = if segment == 0 {
        HEADER_MEMBERS
    } else {
        CLAIM_MEMBERS
    };
    names[i % names.len()]
}

/// Values worth trying for `member`: the other tenant, principal, tool, key and
/// algorithm, times past and future, wrong types.
fn member_value(member: &str, i: usize) -> Value {
    let values: Vec<Value> = match member {
        "alg" => vec![
            json!("none"),
            json!("HS256"),
            json!("EdDSA"),
            json!("NONE"),
            json!(null),
        ],
        "kid" => vec![json!("hs"), json!("ed"), json!(""), json!(["hs"])],
        "typ" => vec![json!("JWT"), json!("mcp-call+jwt"), json!(null)],
        "crit" => vec![json!(["exp"]), json!([]), json!("b64")],
        "b64" => vec![json!(false), json!(true)],
        "tenant" => vec![
            json!("globex"),
            json!("ACME"),
            json!(["acme"]),
            json!({"id": "acme"}),
        ],
        "sub" => vec![json!("hank"), json!("bob"), json!("")],
        "tool" => vec![json!("admin_export"), json!("notes_create"), json!("*")],
        "action" => vec![json!("admin:export"), json!("notes:write"), json!("*")],
        "aud" => vec![
            json!("urn:other"),
            json!([testing::AUDIENCE, "urn:other"]),
            json!([]),
        ],
        "iat" | "exp" | "nbf" => vec![json!(0), json!(NOW + 10_000), json!(-1), json!("1")],
        _ => vec![json!("x"), json!(null), json!(1)],
    };
    values[i % values.len()].clone()
}

fn edit(u: &mut Unstructured<'_>) -> arbitrary::Result<TokenEdit> {
    Ok(match u.choose_index(9)? {
        0 => TokenEdit::FlipByte {
            at: u.arbitrary()?,
            mask: u.int_in_range(1..=255)?,
        },
        1 => TokenEdit::Remove { at: u.arbitrary()? },
        2 => TokenEdit::Insert {
            at: u.arbitrary()?,
            byte: u.arbitrary()?,
        },
        3 => TokenEdit::SwapSegment {
            segment: u.choose_index(3)?,
            donor: u.arbitrary()?,
        },
        4 => TokenEdit::Pad {
            segment: u.choose_index(3)?,
        },
        5 => TokenEdit::SetMember {
            segment: u.choose_index(2)?,
            member: u.arbitrary()?,
            value: u.arbitrary()?,
        },
        6 => TokenEdit::RemoveMember {
            segment: u.choose_index(2)?,
            member: u.arbitrary()?,
        },
        7 => TokenEdit::DuplicateMember {
            segment: u.choose_index(2)?,
            member: u.arbitrary()?,
            value: u.arbitrary()?,
        },
        _ => TokenEdit::Truncate { at: u.arbitrary()? },
    })
}

/// Rewrites one JSON segment of `token` with `change`; unchanged when the segment does
/// not decode to an object.
fn rewrite(
    token: &str,
    segment: usize,
    change: impl FnOnce(&mut Map<String, Value>) -> String,
) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let Some(part) = parts.get(segment) else {
        return token.to_owned();
    };
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(part) else {
        return token.to_owned();
    };
    let Ok(Value::Object(mut object)) = serde_json::from_slice::<Value>(&bytes) else {
        return token.to_owned();
    };
    let text = change(&mut object);
    parts[segment] = URL_SAFE_NO_PAD.encode(text);
    parts.join(".")
}

fn apply(token: &str, e: &TokenEdit, donors: &[String]) -> String {
    let bytes = token.as_bytes();
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match *e {
        TokenEdit::FlipByte { at: i, mask } => {
            let mut b = bytes.to_vec();
            if !b.is_empty() {
                let i = at(i, b.len());
                b[i] ^= mask;
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        TokenEdit::Remove { at: i } => {
            let mut b = bytes.to_vec();
            if !b.is_empty() {
                b.remove(at(i, b.len()));
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        TokenEdit::Insert { at: i, byte } => {
            let mut b = bytes.to_vec();
            b.insert(at(i, b.len() + 1), byte);
            String::from_utf8_lossy(&b).into_owned()
        }
        TokenEdit::SwapSegment { segment, donor } => {
            let donor = &donors[donor % donors.len()];
            let mut parts: Vec<&str> = token.split('.').collect();
            if let (Some(slot), Some(theirs)) =
                (parts.get_mut(segment), donor.split('.').nth(segment))
            {
                *slot = theirs;
            }
            parts.join(".")
        }
        TokenEdit::Pad { segment } => {
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            if let Some(p) = parts.get_mut(segment) {
                while p.len() % 4 != 0 {
                    p.push('=');
                }
            }
            parts.join(".")
        }
        TokenEdit::SetMember {
            segment,
            member: m,
            value,
        } => rewrite(token, segment, |o| {
            let name = member(segment, m);
            o.insert(name.into(), member_value(name, value));
            Value::Object(o.clone()).to_string()
        }),
        TokenEdit::RemoveMember { segment, member: m } => rewrite(token, segment, |o| {
            o.remove(member(segment, m));
            Value::Object(o.clone()).to_string()
        }),
        TokenEdit::DuplicateMember {
            segment,
            member: m,
            value,
        } => rewrite(token, segment, |o| {
            // serde_json keeps one of two equal keys: write the duplicate by hand, last.
            let text = Value::Object(o.clone()).to_string();
            let name = member(segment, m);
            let extra = format!(",{}:{}}}", json!(name), member_value(name, value));
            match text.strip_suffix('}') {
                Some(head) if head.len() > 1 => format!("{head}{extra}"),
                _ => text,
            }
        }),
        TokenEdit::Truncate { at: i } => {
            let cut = at(i, bytes.len() + 1);
            String::from_utf8_lossy(&bytes[..cut.min(bytes.len())]).into_owned()
        }
    }
}

/// The call-token oracle. An input starting with `T` is a raw token (the rest of the
/// input; seeds taken from transcripts look like this); any other input is read as up
/// to eight structured edits of a valid token signed by one of the fixture keys. Oracle: `jws::verify` accepts the result only when it is exactly the
/// signed token, and so does the gate — on first presentation and again from its cache.
pub fn check_call_token(data: &[u8]) {
    check_call_token_against(data, None);
}

/// [`check_call_token`] against a server started with `mutant`.
pub fn check_call_token_against(data: &[u8], mutant: Option<Mutant>) {
    let raw = data.strip_prefix(b"T");
    let mut u = Unstructured::new(data);
    let policy = testing::policy(mutant);
    let kid = if raw.is_none() && u.arbitrary::<bool>().unwrap_or(false) {
        "ed"
    } else {
        "hs"
    };
    // The tokens are signed once per process (the fixture keys never change, and each
    // input gets a core of its own, so single use does not carry over).
    let tokens = signed_tokens(&policy);
    let signed = if kid == "ed" {
        tokens.0.clone()
    } else {
        tokens.1.clone()
    };
    let donors = &tokens.2;
    let token = if let Some(raw) = raw {
        String::from_utf8_lossy(raw).into_owned()
    } else {
        let mut token = signed.clone();
        let edits = u.int_in_range(1..=8u8).unwrap_or(1);
        for _ in 0..edits {
            let Ok(e) = edit(&mut u) else { break };
            token = apply(&token, &e, donors);
        }
        token
    };
    judge_token(&policy, &signed, donors, &token);
}

/// The valid tokens of [`check_call_token`] — this call's, signed with the Ed25519 and
/// with the HMAC key — and the donors whose segments may be swapped in: the first is for
/// this very call (another key), the rest for another tenant, tool or principal.
fn signed_tokens(policy: &Policy) -> &'static (String, String, [String; 4]) {
    static TOKENS: std::sync::OnceLock<(String, String, [String; 4])> = std::sync::OnceLock::new();
    TOKENS.get_or_init(|| {
        let call = |kid| {
            testing::call_token(
                policy,
                kid,
                "acme",
                "alice",
                "notes_list",
                "notes:read",
                "*",
            )
        };
        let donors = [
            testing::call_token(
                policy,
                "ed",
                "acme",
                "alice",
                "notes_list",
                "notes:read",
                "*",
            ),
            testing::call_token(
                policy,
                "hs",
                "globex",
                "hank",
                "notes_list",
                "notes:read",
                "*",
            ),
            testing::call_token(
                policy,
                "hs",
                "acme",
                "alice",
                "notes_create",
                "notes:write",
                "*",
            ),
            testing::call_token(policy, "ed", "acme", "bob", "charge", "billing:charge", "*"),
        ];
        (call("ed"), call("hs"), donors)
    })
}

/// `signed` and `donors[0]` authorise this call; every donor is the signer's.
fn judge_token(policy: &Policy, signed: &str, donors: &[String], token: &str) {
    let exact = token == signed || donors.iter().any(|d| d == token);
    let for_this_call = token == signed || token == donors[0];
    let rules = policy.validation(CALL_TYP, Some(policy.tokens.max_call_token_secs));
    let mut scratch = Scratch::default();
    let verified = jws::verify(&policy.tokens.keys, token, &rules, NOW, &mut scratch).is_ok();
    assert!(
        exact || !verified,
        "a token the signer did not make verified: {token:?} (signed: {signed:?})"
    );
    let core = Core::new(policy.clone());
    let acme = testing::session(policy, "acme");
    for presentation in ["first", "second (the cache)"] {
        let answer = core.call_tool(&acme, "notes_list", Some(token), None, NOW);
        let ran = answer.as_ref().is_ok_and(|r| !r.is_error);
        assert!(
            for_this_call || !ran,
            "the gate ran a call on a token the signer did not make for it ({presentation} presentation): {token:?}"
        );
    }
}

/// Tenants and principals of the fixture policy: (tenant, principal, its tiers).
const ACTORS: &[(&str, &str)] = &[
    ("acme", "alice"),
    ("acme", "bob"),
    ("globex", "gina"),
    ("globex", "hank"),
];

/// What a call token is made of, relative to the call.
#[derive(Debug, Clone, Copy)]
enum TokenKind {
    /// For this tenant, principal and tool.
    Valid,
    /// Another tenant's (the same tool, a principal of that tenant).
    OtherTenant,
    /// Another tool of the same tenant.
    OtherTool,
    /// The tool with another action.
    OtherAction,
    /// No token at all.
    Missing,
    /// The last token used again (single-use).
    Replay,
}

/// One operation of a sequence.
#[derive(Debug, Clone)]
enum Op {
    Create {
        actor: usize,
        token: TokenKind,
        label: Label,
        meta_tenant: bool,
    },
    Charge {
        actor: usize,
        token: TokenKind,
        amount: u32,
    },
    /// A read of a note, by the index of a note some tenant created.
    Get {
        actor: usize,
        token: TokenKind,
        note: usize,
    },
    /// Take a tier away from a tenant (a configuration reload), or put every tier back.
    Revoke {
        tenant: usize,
        tier: usize,
    },
    Restore,
}

/// The `tenant_id` label a call carries.
#[derive(Debug, Clone, Copy)]
enum Label {
    None,
    Own,
    Other,
}

fn op(u: &mut Unstructured<'_>) -> arbitrary::Result<Op> {
    let token = |u: &mut Unstructured<'_>| -> arbitrary::Result<TokenKind> {
        Ok(match u.choose_index(8)? {
            0 => TokenKind::OtherTenant,
            1 => TokenKind::OtherTool,
            2 => TokenKind::OtherAction,
            3 => TokenKind::Missing,
            4 => TokenKind::Replay,
            _ => TokenKind::Valid,
        })
    };
    Ok(match u.choose_index(10)? {
        0..=3 => Op::Create {
            actor: u.choose_index(ACTORS.len())?,
            token: token(u)?,
            label: match u.choose_index(3)? {
                0 => Label::None,
                1 => Label::Own,
                _ => Label::Other,
            },
            meta_tenant: u.arbitrary()?,
        },
        4 | 5 => Op::Charge {
            actor: u.choose_index(ACTORS.len())?,
            token: token(u)?,
            amount: u.int_in_range(1..=5000)?,
        },
        6 | 7 => Op::Get {
            actor: u.choose_index(ACTORS.len())?,
            token: token(u)?,
            note: u.arbitrary()?,
        },
        8 => Op::Revoke {
            tenant: u.choose_index(2)?,
            tier: u.choose_index(2)?,
        },
        _ => Op::Restore,
    })
}

/// What the model expects of the world.
#[derive(Default)]
struct Model {
    /// Per tenant (acme, globex): the titles of its notes and the amounts charged, in
    /// order.
    notes: [Vec<String>; 2],
    charges: [Vec<u64>; 2],
    /// Every note created: (tenant index, id, title).
    created: Vec<(usize, String, String)>,
    /// Tiers revoked per tenant: basic, billing.
    revoked: [[bool; 2]; 2],
}

const TENANTS: [&str; 2] = ["acme", "globex"];
const REVOCABLE: [&str; 2] = ["basic", "billing"];

fn tenant_index(tenant: &str) -> usize {
    usize::from(tenant == "globex")
}

/// The fixture policy with `revoked` tiers taken from their tenants (and principals).
fn policy_with(mutant: Option<Mutant>, revoked: &[[bool; 2]; 2]) -> Policy {
    let mut policy = testing::policy(mutant);
    for (t, tenant) in TENANTS.iter().enumerate() {
        for (r, tier) in REVOCABLE.iter().enumerate() {
            if revoked[t][r]
                && let Some(tp) = policy.tenant_mut(tenant)
            {
                tp.tiers.retain(|x| x != tier);
            }
        }
    }
    policy
}

/// The sequence oracle: up to 32 operations decoded from `data` run against one core;
/// each operation's outcome is the model's (allowed exactly when a valid, unused token
/// of the session's own tenant, principal and tool is presented for an entitled tool
/// and no other tenant is named), and at the end every tenant's notes and charges, read
/// back through its own tools, are exactly the model's.
pub fn check_call_sequence(data: &[u8]) {
    check_call_sequence_against(data, None);
}

/// [`check_call_sequence`] against a server started with `mutant`.
pub fn check_call_sequence_against(data: &[u8], mutant: Option<Mutant>) {
    let mut u = Unstructured::new(data);
    let mut model = Model::default();
    let core = Core::new(testing::policy(mutant));
    // One session per tenant for the whole sequence (a session is the tenant's; its
    // principal is each call token's `sub`): an Ed25519 session token costs more than
    // the rest of an operation.
    let sessions = {
        let policy = core.policy();
        TENANTS.map(|t| testing::session(&policy, t))
    };
    let mut last: Option<Last> = None;
    let mut log: Vec<String> = Vec::new();
    for step in 0..32 {
        let Ok(op) = op(&mut u) else { break };
        log.push(format!("{op:?}"));
        let policy = core.policy();
        let call =
            |actor: usize, tool: &str, action: &str, kind: TokenKind, last: &Option<Last>| {
                let (tenant, principal) = ACTORS[actor];
                let other = ACTORS[(actor + 2) % ACTORS.len()];
                let token = match kind {
                    TokenKind::Valid => Some(testing::call_token(
                        &policy, "hs", tenant, principal, tool, action, "*",
                    )),
                    TokenKind::OtherTenant => Some(testing::call_token(
                        &policy, "hs", other.0, other.1, tool, action, "*",
                    )),
                    TokenKind::OtherTool => Some(testing::call_token(
                        &policy,
                        "hs",
                        tenant,
                        principal,
                        "charges_list",
                        "billing:read",
                        "*",
                    )),
                    TokenKind::OtherAction => Some(testing::call_token(
                        &policy,
                        "hs",
                        tenant,
                        principal,
                        tool,
                        "admin:export",
                        "*",
                    )),
                    TokenKind::Missing => None,
                    TokenKind::Replay => last.as_ref().map(|l| l.token.clone()),
                };
                (sessions[tenant_index(tenant)].clone(), principal, token)
            };
        match op {
            Op::Create {
                actor,
                token,
                label,
                meta_tenant,
            } => {
                let (session, principal, tok) =
                    call(actor, "notes_create", "notes:write", token, &last);
                let t = tenant_index(session.tenant());
                let title = format!("n{step}-{}", session.tenant());
                let mut args = json!({"title": title});
                match label {
                    Label::None => {}
                    Label::Own => args["tenant_id"] = json!(session.tenant()),
                    Label::Other => args["tenant_id"] = json!(TENANTS[1 - t]),
                }
                if meta_tenant {
                    args["meta"] = json!({"tenant_id": TENANTS[1 - t]});
                }
                let answer = core.call_tool(
                    &session,
                    "notes_create",
                    tok.as_deref(),
                    args.as_object(),
                    NOW,
                );
                let allowed = allowed(&model, actor, "notes_create", token, &last, 0)
                    && !matches!(label, Label::Other);
                let ran = outcome_is_models(step, principal, &answer, allowed, &log);
                remember(&mut last, tok, actor, "notes_create", token, allowed);
                if ran {
                    let id = answer
                        .ok()
                        .and_then(|r| r.structured)
                        .and_then(|s| s["id"].as_str().map(str::to_owned))
                        .unwrap_or_default();
                    model.notes[t].push(title.clone());
                    model.created.push((t, id, title));
                }
            }
            Op::Charge {
                actor,
                token,
                amount,
            } => {
                let (session, principal, tok) =
                    call(actor, "charge", "billing:charge", token, &last);
                let t = tenant_index(session.tenant());
                let args = json!({"amount_cents": amount, "currency": "EUR"});
                let answer =
                    core.call_tool(&session, "charge", tok.as_deref(), args.as_object(), NOW);
                let allowed = allowed(&model, actor, "charge", token, &last, 1);
                let ran = outcome_is_models(step, principal, &answer, allowed, &log);
                remember(&mut last, tok, actor, "charge", token, allowed);
                if ran {
                    model.charges[t].push(u64::from(amount));
                }
            }
            Op::Get { actor, token, note } => {
                if model.created.is_empty() {
                    continue;
                }
                let (owner, id, title) = model.created[note % model.created.len()].clone();
                let (session, principal, tok) =
                    call(actor, "notes_get", "notes:read", token, &last);
                let t = tenant_index(session.tenant());
                let args = json!({"id": id});
                let answer =
                    core.call_tool(&session, "notes_get", tok.as_deref(), args.as_object(), NOW);
                let found = answer
                    .as_ref()
                    .ok()
                    .filter(|r| !r.is_error)
                    .and_then(|r| r.structured.clone());
                let text = format!("{answer:?}");
                if owner != t {
                    assert!(
                        !text.contains(&title),
                        "step {step}: {} as {principal} read another tenant's note {title}: {text}\n{}",
                        log.last().unwrap(),
                        log.join("\n")
                    );
                }
                let allowed = allowed(&model, actor, "notes_get", token, &last, 0);
                assert!(
                    allowed || found.is_none(),
                    "step {step}: a refused read answered {text}\n{}",
                    log.join("\n")
                );
                assert!(
                    !allowed || owner != t || found.is_some(),
                    "step {step}: {principal} could not read its own tenant's note {title}: {text}\n{}",
                    log.join("\n")
                );
                remember(&mut last, tok, actor, "notes_get", token, allowed);
            }
            Op::Revoke { tenant, tier } => {
                model.revoked[tenant][tier] = true;
                core.replace_policy(policy_with(mutant, &model.revoked));
            }
            Op::Restore => {
                model.revoked = Default::default();
                core.replace_policy(policy_with(mutant, &model.revoked));
            }
        }
    }
    // Read back through each tenant's own tools, every tier restored.
    core.replace_policy(testing::policy(mutant));
    let policy = core.policy();
    for (t, (tenant, principal)) in [("acme", "bob"), ("globex", "gina")]
        .into_iter()
        .enumerate()
    {
        let session = testing::session(&policy, tenant);
        let read = |tool: &str, action: &str| {
            let token = testing::call_token(&policy, "hs", tenant, principal, tool, action, "*");
            core.call_tool(&session, tool, Some(&token), None, NOW)
                .ok()
                .and_then(|r| r.structured)
                .unwrap_or_else(|| panic!("{tenant} reads its own data with {tool}"))
        };
        let mut titles: Vec<String> = read("notes_list", "notes:read")["notes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["title"].as_str().map(str::to_owned))
            .collect();
        titles.sort();
        let mut expected = model.notes[t].clone();
        expected.sort();
        assert_eq!(
            titles,
            expected,
            "{tenant}'s notes after\n{}",
            log.join("\n")
        );
        if tenant == "acme" {
            let mut amounts: Vec<u64> = read("charges_list", "billing:read")["charges"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["amount_cents"].as_u64())
                .collect();
            amounts.sort_unstable();
            let mut expected = model.charges[t].clone();
            expected.sort_unstable();
            assert_eq!(
                amounts,
                expected,
                "acme's charges after\n{}",
                log.join("\n")
            );
        } else {
            assert!(
                model.charges[t].is_empty(),
                "globex has no billing tier: nothing may be charged to it"
            );
            assert_eq!(
                read("admin_export", "admin:export")["charges"],
                json!([]),
                "a charge landed on globex after\n{}",
                log.join("\n")
            );
        }
    }
}

/// Did the call run (a result, not an error)? Asserts that it did exactly when the model
/// allows it.
fn outcome_is_models(
    step: usize,
    principal: &str,
    answer: &Result<super::ToolResult, super::CallError>,
    allowed: bool,
    log: &[String],
) -> bool {
    let ran = answer.as_ref().is_ok_and(|r| !r.is_error);
    assert_eq!(
        ran,
        allowed,
        "step {step}: {} as {principal}: {answer:?}\n{}",
        log.last().map_or("", String::as_str),
        log.join("\n")
    );
    ran
}

/// The last call token presented: whom and what it was minted for, and whether a call
/// spent it. A session is a tenant's (its principal is the token's `sub`), so a token
/// minted for any principal of the session's tenant may be presented in it.
struct Last {
    token: String,
    /// The actor (tenant, principal) the token names.
    minted_for: usize,
    tool: &'static str,
    /// Minted with the tool's own action (not the wrong-tool or wrong-action kinds).
    proper: bool,
    spent: bool,
}

/// The actor a token of this kind names, for a call by `actor`.
fn minted_for(actor: usize, kind: TokenKind) -> usize {
    match kind {
        TokenKind::OtherTenant => (actor + 2) % ACTORS.len(),
        _ => actor,
    }
}

/// Notes the token a call presented (a replayed one keeps what it was minted for).
/// `authorised`: the model's verdict that the gate lets the call through — which spends
/// the token, whatever the handler answers then ("not found" included). A server that
/// spends otherwise is caught when the token is replayed.
fn remember(
    last: &mut Option<Last>,
    token: Option<String>,
    actor: usize,
    tool: &'static str,
    kind: TokenKind,
    authorised: bool,
) {
    let ran = authorised;
    match (kind, last.as_mut()) {
        (TokenKind::Replay, Some(l)) => l.spent |= ran,
        (TokenKind::Replay, None) | (TokenKind::Missing, _) => {}
        (kind, _) => {
            *last = token.map(|token| Last {
                token,
                minted_for: minted_for(actor, kind),
                tool,
                proper: matches!(kind, TokenKind::Valid | TokenKind::OtherTenant),
                spent: ran,
            });
        }
    }
}

/// Does the model allow a call in a session of `actor`'s tenant to `tool` (of tier
/// `REVOCABLE[tier]`) with a token of this kind? The token must be proper (its tool's
/// own action), for the session's tenant, for `tool`, never spent, and name a principal
/// holding the tier (alice basic, bob basic+billing, gina basic+admin, hank basic), whose
/// tenant still has it.
fn allowed(
    model: &Model,
    actor: usize,
    tool: &str,
    kind: TokenKind,
    last: &Option<Last>,
    tier: usize,
) -> bool {
    let (tenant, _) = ACTORS[actor];
    let t = tenant_index(tenant);
    let named = match kind {
        TokenKind::Valid => Some(actor),
        TokenKind::Replay => last
            .as_ref()
            .filter(|l| l.proper && !l.spent && l.tool == tool)
            .map(|l| l.minted_for),
        _ => None,
    };
    let Some(named) = named else {
        return false;
    };
    let (token_tenant, principal) = ACTORS[named];
    let has_tier = tier == 0 || principal == "bob";
    token_tenant == tenant && has_tier && !model.revoked[t][tier]
}
