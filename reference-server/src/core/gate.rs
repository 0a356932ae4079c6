//! The gate: one synchronous, I/O-free authorisation decision per `tools/call`.
//!
//! [`check`] takes the verified session, the tool name as sent, the call token and the
//! arguments, and returns either an [`Authorized`] proof or a [`Denial`]. Only this
//! module can construct `Authorized`; every tool handler and every store access takes
//! it (or the [`TenantScope`] derived from it), so an ungated or tenant-less call does
//! not compile.
//!
//! Order matters: the tool and the tenant's entitlement are judged before the token, so
//! a tool that exists only for another tenant is refused exactly like an unknown one,
//! whatever token comes with it (no existence oracle). Deny reasons are for logs; the
//! wire answer is one of three opaque shapes ([`WireDenial`]).

use super::jws::{self, Claims, Scratch, TokenError};
use super::policy::{CALL_TYP, Policy, Session, TenantPolicy};
use super::replay;
use super::tools::{Catalogue, ToolDef, ToolKind};
use super::verified::{Binding, Verified};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// Everything the gate judges a call on.
#[derive(Debug, Clone, Copy)]
pub struct CallContext<'a> {
    pub session: &'a Session,
    /// The tool name exactly as sent.
    pub tool: &'a str,
    pub call_token: Option<&'a str>,
    pub arguments: &'a Map<String, Value>,
    /// Seconds since the Unix epoch.
    pub now: u64,
}

/// Proof that the gate authorised a call: the tool, and the verified tenant and
/// principal it acts for.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorized<'a> {
    tool: &'a ToolDef,
    tenant: &'a str,
    principal: &'a str,
    /// The call token's single-use record: a call token is good for one call, which
    /// the core enforces (the gate keeps no decision state; it only remembers which
    /// tokens verified).
    once: Option<Once>,
}

/// A call token's `jti` (as the record keys it) and the last second the token verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Once {
    pub jti: replay::JtiKey,
    pub until: u64,
    /// The signature was checked for this call (not answered from the cache).
    pub verified_now: bool,
}

impl<'a> Authorized<'a> {
    pub fn tool(&self) -> &'a ToolDef {
        self.tool
    }

    /// Takes the call token's `jti` and expiry (with skew), when the call carried one.
    pub fn take_once(&mut self) -> Option<Once> {
        self.once.take()
    }

    pub fn tenant(&self) -> &'a str {
        self.tenant
    }

    pub fn principal(&self) -> &'a str {
        self.principal
    }

    /// The data scope of this call.
    pub fn scope(&self) -> TenantScope<'a> {
        TenantScope(self.tenant)
    }
}

/// The tenant a data access is confined to; only an [`Authorized`] call yields one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantScope<'a>(&'a str);

impl<'a> TenantScope<'a> {
    pub fn tenant(&self) -> &'a str {
        self.0
    }
}

/// Why a call was refused (for logs and metrics).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Denial {
    UnknownTool,
    /// The tool exists, but not for this tenant.
    NotEntitled,
    MissingToken,
    Token(TokenError),
    /// The token names another tenant than the session's.
    TokenTenantMismatch,
    /// The token's `sub` is not a principal of the tenant.
    UnknownPrincipal,
    /// The token's `tool`, `action` or `resource` does not cover this call.
    OutOfScope(&'static str),
    /// The principal may not call this tool (its tenant may).
    PrincipalNotEntitled,
    /// A tenant label in the arguments names another tenant.
    TenantLabelMismatch,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::UnknownTool => f.write_str("unknown tool"),
            Denial::NotEntitled => f.write_str("tool not entitled to the tenant"),
            Denial::MissingToken => f.write_str("no call token"),
            Denial::Token(e) => write!(f, "call token refused: {e}"),
            Denial::TokenTenantMismatch => f.write_str("call token is for another tenant"),
            Denial::UnknownPrincipal => {
                f.write_str("call token subject is not a principal of the tenant")
            }
            Denial::OutOfScope(what) => write!(f, "call token does not cover this {what}"),
            Denial::PrincipalNotEntitled => f.write_str("principal not entitled to the tool"),
            Denial::TenantLabelMismatch => {
                f.write_str("tenant label in the arguments names another tenant")
            }
        }
    }
}

/// The three shapes a denial takes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireDenial {
    /// JSON-RPC -32602 `Unknown tool: <name>` — the same for unknown and not entitled.
    UnknownTool,
    /// JSON-RPC -32001 `Unauthorized call` — the same for every token problem.
    Unauthorized,
    /// A tool result with `isError: true`: the arguments are refused.
    BadArguments,
}

impl Denial {
    pub fn wire(&self) -> WireDenial {
        match self {
            Denial::UnknownTool | Denial::NotEntitled => WireDenial::UnknownTool,
            Denial::TenantLabelMismatch => WireDenial::BadArguments,
            _ => WireDenial::Unauthorized,
        }
    }
}

/// The resource a call touches, matched against the token's `resource` claim:
/// `note:<id>` for `notes_get`, `tenant:<tenant>` otherwise. `*` covers any.
fn resource_covered(claim: &str, tool: &ToolDef, tenant: &str, args: &Map<String, Value>) -> bool {
    if claim == "*" {
        return true;
    }
    match tool.kind {
        ToolKind::NotesGet => claim.strip_prefix("note:") == args.get("id").and_then(Value::as_str),
        _ => claim.strip_prefix("tenant:") == Some(tenant),
    }
}

/// Decides one call. No I/O, no clock, no allocation on the happy path: the token is
/// decoded on the stack and read without a JSON tree. The only state it touches is the
/// policy's verified-token cache: looked up first, and filled with a token that
/// verified but was refused (so a retry of it costs no signature). A mutant's holes are asked at each decision point
/// ([`Holes`](super::mutants::Holes)); without one, this is the policy.
pub fn check<'a>(
    policy: &'a Policy,
    catalogue: &'a Catalogue,
    ctx: &CallContext<'a>,
) -> Result<Authorized<'a>, Denial> {
    let holes = policy.holes();
    let (tool, exact) = match catalogue.get(ctx.tool) {
        Some(t) => (t, true),
        None => (
            holes
                .lenient_lookup(catalogue, ctx.tool)
                .ok_or(Denial::UnknownTool)?,
            false,
        ),
    };
    let session_tenant = policy
        .tenant(ctx.session.tenant())
        .ok_or(Denial::NotEntitled)?;
    let gated = !holes.entitlement_unchecked(exact);
    if gated && !session_tenant.entitled(tool) {
        return Err(Denial::NotEntitled);
    }

    let mut once = None;
    let (tenant, principal) = if holes.call_token_skipped(tool) {
        (session_tenant, ctx.session.principal())
    } else {
        let token = ctx.call_token.ok_or(Denial::MissingToken)?;
        let binding = binding(ctx);
        let cached = match policy.verified().get(token, binding, ctx.now) {
            Some(Verified::Call(claims)) => Some(claims),
            _ => None,
        };
        let mut scratch = Scratch::default();
        let fresh;
        let claims: &Claims<'_> = match &cached {
            Some(c) => c,
            None => {
                fresh = verify_call(policy, token, ctx.now, &mut scratch)?;
                &fresh
            }
        };
        match judge_claims(policy, session_tenant, tool, gated, ctx, claims) {
            Ok((tenant, principal, mut judged)) => {
                judged.verified_now = cached.is_none();
                once = Some(judged);
                (tenant, principal)
            }
            Err(denial) => {
                // Verified, and refused all the same: presented again (a retry), it is
                // refused again without its signature being checked again.
                if cached.is_none() {
                    remember(policy, token, binding, claims.clone().into_owned(), ctx.now);
                }
                return Err(denial);
            }
        }
    };

    let tenant = match holes.tenant_from_arguments(ctx.arguments) {
        Some(taken) => taken,
        None => match ctx.arguments.get("tenant_id").and_then(Value::as_str) {
            Some(label) if label != tenant.id => return Err(Denial::TenantLabelMismatch),
            _ => tenant.id.as_str(),
        },
    };
    Ok(Authorized {
        tool,
        tenant,
        principal,
        once,
    })
}

/// Benchmarks only (feature `bench-ungated`): the call as the session's own, with no
/// decision at all — the tool by its exact name, no token, no entitlement.
#[cfg(feature = "bench-ungated")]
pub fn ungated_for_bench<'a>(
    catalogue: &'a Catalogue,
    ctx: &CallContext<'a>,
) -> Result<Authorized<'a>, Denial> {
    let tool = catalogue.get(ctx.tool).ok_or(Denial::UnknownTool)?;
    Ok(Authorized {
        tool,
        tenant: ctx.session.tenant(),
        principal: ctx.session.principal(),
        once: None,
    })
}

/// The entitlement part of [`check`] alone — may `principal` of `tenant` call `tool`? —
/// with the same lookups in the same order, and no token. For comparisons: the
/// benchmarks set it beside a policy engine deciding the same question.
pub fn entitled(
    policy: &Policy,
    catalogue: &Catalogue,
    tenant: &str,
    principal: &str,
    tool: &str,
) -> bool {
    let (Some(tool), Some(tenant)) = (catalogue.get(tool), policy.tenant(tenant)) else {
        return false;
    };
    tenant.entitled(tool)
        && tenant
            .principal(principal)
            .is_some_and(|p| p.tiers.contains(tool.tier))
}

/// What a call token is verified for in the cache: this session, this tool name.
fn binding<'a>(ctx: &CallContext<'a>) -> Binding<'a> {
    Binding::Call {
        tenant: ctx.session.tenant(),
        principal: ctx.session.principal(),
        channel: ctx.session.channel(),
        tool: ctx.tool,
    }
}

fn verify_call<'s>(
    policy: &Policy,
    token: &str,
    now: u64,
    scratch: &'s mut Scratch,
) -> Result<Claims<'s>, Denial> {
    let validation = policy.validation(CALL_TYP, Some(policy.tokens.max_call_token_secs));
    jws::verify(&policy.tokens.keys, token, &validation, now, scratch).map_err(Denial::Token)
}

fn remember(policy: &Policy, token: &str, binding: Binding<'_>, claims: Claims<'static>, now: u64) {
    let until = claims
        .exp
        .unwrap_or(0)
        .saturating_add(policy.tokens.skew_secs);
    policy
        .verified()
        .insert(token, binding, until, Verified::Call(Arc::new(claims)), now);
}

/// The token's claims against the session, the tool and the principal's entitlement:
/// the tenant and principal the call acts for, and the token's single-use record.
fn judge_claims<'a>(
    policy: &'a Policy,
    session_tenant: &'a TenantPolicy,
    tool: &'a ToolDef,
    gated: bool,
    ctx: &CallContext<'a>,
    claims: &Claims<'_>,
) -> Result<(&'a TenantPolicy, &'a str, Once), Denial> {
    let holes = policy.holes();
    let claimed_tenant = claims.tenant.as_deref().unwrap_or_default();
    let tenant = if claimed_tenant == session_tenant.id {
        session_tenant
    } else if holes.token_tenant_unbound() {
        policy
            .tenant(claimed_tenant)
            .ok_or(Denial::TokenTenantMismatch)?
    } else {
        return Err(Denial::TokenTenantMismatch);
    };
    let sub = claims.sub.as_deref().unwrap_or_default();
    let principal = tenant.principal(sub).ok_or(Denial::UnknownPrincipal)?;
    if !holes.scope_ignored() {
        if !holes.tool_claim_covers(claims.tool.as_deref(), ctx.tool, tool) {
            return Err(Denial::OutOfScope("tool"));
        }
        if claims.action.as_deref() != Some(tool.action) {
            return Err(Denial::OutOfScope("action"));
        }
        let resource = claims.resource.as_deref().unwrap_or_default();
        if !resource_covered(resource, tool, &tenant.id, ctx.arguments) {
            return Err(Denial::OutOfScope("resource"));
        }
    }
    if gated && !principal.tiers.contains(tool.tier) {
        return Err(Denial::PrincipalNotEntitled);
    }
    let jti = claims.jti.as_deref().filter(|j| !j.is_empty());
    let jti = jti.ok_or(Denial::Token(jws::TokenError::MissingClaim("jti")))?;
    let until = claims
        .exp
        .unwrap_or(0)
        .saturating_add(policy.tokens.skew_secs);
    Ok((
        tenant,
        principal.id.as_str(),
        Once {
            jti: replay::JtiKey::of(jti),
            until,
            verified_now: true,
        },
    ))
}

/// A call token the single-use record refused (already spent), whose signature was
/// checked for this call: remembered as verified, so that presenting it again costs no
/// signature check. Its second presentation paid one; the first, successful one paid
/// nothing for the cache.
pub fn remember_spent(policy: &Policy, ctx: &CallContext<'_>) {
    let Some(token) = ctx.call_token else {
        return;
    };
    let binding = binding(ctx);
    let mut scratch = Scratch::default();
    if let Ok(claims) = verify_call(policy, token, ctx.now, &mut scratch) {
        remember(policy, token, binding, claims.into_owned(), ctx.now);
    }
}

/// The authority of a call refused for its token, as the `refusal-carries-data`
/// mutant wrongly takes it: the tool the name resolves to, in the session's tenant —
/// only for a read the tenant is entitled to; `None` without that mutant.
pub fn refused_read_for_mutant<'a>(
    policy: &'a Policy,
    catalogue: &'a Catalogue,
    ctx: &CallContext<'a>,
) -> Option<Authorized<'a>> {
    if !policy.holes().refusal_carries_data() {
        return None;
    }
    let tool = catalogue.get(ctx.tool).filter(|t| t.read_only)?;
    let tenant = policy
        .tenant(ctx.session.tenant())
        .filter(|t| t.entitled(tool))?;
    Some(Authorized {
        tool,
        tenant: tenant.id.as_str(),
        principal: ctx.session.principal(),
        once: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::mutants::Mutant;
    use crate::core::testing::{self as fixtures, AUDIENCE, ISSUER};
    use crate::core::tools;
    use serde_json::json;

    use crate::core::testing::NOW;

    fn decide(
        mutant: Option<Mutant>,
        tenant: &str,
        tool: &str,
        token: Option<&str>,
        args: Value,
    ) -> Result<(String, String), Denial> {
        let policy = fixtures::policy(mutant);
        let catalogue = Catalogue::new(tools::catalogue());
        let session = fixtures::session(&policy, tenant);
        let args = args.as_object().cloned().unwrap_or_default();
        let ctx = CallContext {
            session: &session,
            tool,
            call_token: token,
            arguments: &args,
            now: NOW,
        };
        check(&policy, &catalogue, &ctx).map(|a| (a.tenant().to_owned(), a.principal().to_owned()))
    }

    #[test]
    fn a_scoped_token_for_the_sessions_tenant_is_authorised() {
        let p = fixtures::policy(None);
        let t = fixtures::call_token(
            &p,
            "ed",
            "acme",
            "alice",
            "notes_create",
            "notes:write",
            "tenant:acme",
        );
        assert_eq!(
            decide(
                None,
                "acme",
                "notes_create",
                Some(&t),
                json!({"title": "x"})
            ),
            Ok(("acme".into(), "alice".into()))
        );
    }

    #[test]
    fn another_tenants_tool_is_refused_like_an_unknown_one_whatever_the_token() {
        let p = fixtures::policy(None);
        let t = fixtures::call_token(&p, "ed", "acme", "bob", "admin_export", "admin:export", "*");
        let not_entitled = decide(None, "acme", "admin_export", Some(&t), json!({})).unwrap_err();
        let unknown = decide(None, "acme", "no_such_tool", Some(&t), json!({})).unwrap_err();
        assert_eq!(not_entitled.wire(), unknown.wire());
        assert_eq!(not_entitled.wire(), WireDenial::UnknownTool);
    }

    #[test]
    fn each_token_defect_is_refused() {
        let p = fixtures::policy(None);
        let ok = |t: &str, tool: &str, args: Value| decide(None, "acme", tool, Some(t), args);
        assert_eq!(
            decide(None, "acme", "notes_list", None, json!({})),
            Err(Denial::MissingToken)
        );
        let other_tenant =
            fixtures::call_token(&p, "ed", "globex", "gina", "notes_list", "notes:read", "*");
        assert_eq!(
            ok(&other_tenant, "notes_list", json!({})),
            Err(Denial::TokenTenantMismatch)
        );
        let other_tool =
            fixtures::call_token(&p, "ed", "acme", "alice", "notes_list", "notes:read", "*");
        assert_eq!(
            ok(&other_tool, "notes_get", json!({"id": "n"})),
            Err(Denial::OutOfScope("tool"))
        );
        let wrong_action =
            fixtures::call_token(&p, "ed", "acme", "alice", "notes_list", "notes:write", "*");
        assert_eq!(
            ok(&wrong_action, "notes_list", json!({})),
            Err(Denial::OutOfScope("action"))
        );
        let one_note = fixtures::call_token(
            &p,
            "ed",
            "acme",
            "alice",
            "notes_get",
            "notes:read",
            "note:n1",
        );
        assert!(ok(&one_note, "notes_get", json!({"id": "n1"})).is_ok());
        assert_eq!(
            ok(&one_note, "notes_get", json!({"id": "n2"})),
            Err(Denial::OutOfScope("resource"))
        );
        let narrow =
            fixtures::call_token(&p, "ed", "acme", "alice", "charge", "billing:charge", "*");
        assert_eq!(
            ok(&narrow, "charge", json!({})),
            Err(Denial::PrincipalNotEntitled)
        );
        let stranger =
            fixtures::call_token(&p, "ed", "acme", "gina", "notes_list", "notes:read", "*");
        assert_eq!(
            ok(&stranger, "notes_list", json!({})),
            Err(Denial::UnknownPrincipal)
        );
        let labelled =
            fixtures::call_token(&p, "ed", "acme", "alice", "notes_list", "notes:read", "*");
        assert_eq!(
            ok(&labelled, "notes_list", json!({"tenant_id": "globex"})),
            Err(Denial::TenantLabelMismatch)
        );
    }

    #[test]
    fn mutants_open_exactly_their_hole() {
        let p = fixtures::policy(None);
        assert!(
            decide(
                Some(Mutant::SessionOnlyAuth),
                "acme",
                "notes_list",
                None,
                json!({})
            )
            .is_ok()
        );
        let foreign =
            fixtures::call_token(&p, "ed", "globex", "gina", "notes_list", "notes:read", "*");
        assert_eq!(
            decide(
                Some(Mutant::TokenTenantUnbound),
                "acme",
                "notes_list",
                Some(&foreign),
                json!({})
            ),
            Ok(("globex".into(), "gina".into()))
        );
        let t = fixtures::call_token(
            &p,
            "ed",
            "acme",
            "alice",
            "notes_create",
            "notes:write",
            "*",
        );
        assert_eq!(
            decide(
                Some(Mutant::TenantFromArguments),
                "acme",
                "notes_create",
                Some(&t),
                json!({"tenant_id": "globex"})
            ),
            Ok(("globex".into(), "alice".into()))
        );
        let admin =
            fixtures::call_token(&p, "ed", "acme", "bob", "ADMIN_EXPORT", "admin:export", "*");
        assert!(
            decide(
                Some(Mutant::CaseInsensitiveLookup),
                "acme",
                "ADMIN_EXPORT",
                Some(&admin),
                json!({})
            )
            .is_ok()
        );
        assert_eq!(
            decide(None, "acme", "ADMIN_EXPORT", Some(&admin), json!({})),
            Err(Denial::UnknownTool)
        );
    }

    #[test]
    fn the_new_mutants_open_exactly_their_hole() {
        let p = fixtures::policy(None);
        // A token without a tool claim.
        let toolless = p.tokens.keys.keys[0]
            .sign(
                CALL_TYP,
                &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bob", "tenant": "acme",
                        "action": "notes:read", "resource": "*", "iat": NOW, "exp": NOW + 60,
                        "jti": "toolless"}),
            )
            .unwrap();
        assert_eq!(
            decide(None, "acme", "notes_list", Some(&toolless), json!({})),
            Err(Denial::OutOfScope("tool"))
        );
        assert!(
            decide(
                Some(Mutant::MissingToolClaimWildcard),
                "acme",
                "notes_list",
                Some(&toolless),
                json!({})
            )
            .is_ok()
        );
        // charge without a token; notes_create still gated.
        let ungated = Some(Mutant::SecondWriteUngated);
        assert!(decide(ungated, "acme", "charge", None, json!({})).is_ok());
        assert_eq!(
            decide(ungated, "acme", "notes_create", None, json!({})),
            Err(Denial::MissingToken)
        );
        // The normalising dispatcher: the canonical token reaches the foreign tool.
        let canonical =
            fixtures::call_token(&p, "ed", "acme", "bob", "admin_export", "admin:export", "*");
        let fold = Some(Mutant::FoldAfterGate);
        assert!(decide(fold, "acme", "admin-export", Some(&canonical), json!({})).is_ok());
        assert!(decide(None, "acme", "admin-export", Some(&canonical), json!({})).is_err());
        let spelt =
            fixtures::call_token(&p, "ed", "acme", "bob", "admin-export", "admin:export", "*");
        assert_eq!(
            decide(fold, "acme", "admin-export", Some(&spelt), json!({})),
            Err(Denial::OutOfScope("tool"))
        );
        // A tenant_id nested in `meta`.
        let t = fixtures::call_token(
            &p,
            "ed",
            "acme",
            "alice",
            "notes_create",
            "notes:write",
            "*",
        );
        let nested = json!({"title": "x", "meta": {"tenant_id": "globex"}});
        assert_eq!(
            decide(None, "acme", "notes_create", Some(&t), nested.clone()),
            Ok(("acme".into(), "alice".into()))
        );
        assert_eq!(
            decide(
                Some(Mutant::NestedTenantArgument),
                "acme",
                "notes_create",
                Some(&t),
                nested
            ),
            Ok(("globex".into(), "alice".into()))
        );
    }

    mod properties {
        use super::*;
        use crate::core::jws::{Key, decode_key_text};
        use proptest::prelude::*;

        fn valid_token(p: &Policy) -> String {
            fixtures::call_token(p, "ed", "acme", "alice", "notes_list", "notes:read", "*")
        }

        fn authorised(token: &str) -> bool {
            decide(None, "acme", "notes_list", Some(token), json!({})).is_ok()
        }

        #[test]
        fn the_unmodified_token_is_authorised() {
            // The control for the properties below: they refuse mutations, not everything.
            assert!(authorised(&valid_token(&fixtures::policy(None))));
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

            /// Any single byte of the token changed to any other value: never authorised.
            #[test]
            fn no_single_byte_change_is_authorised(index in any::<prop::sample::Index>(), byte in any::<u8>()) {
                let mut bytes = valid_token(&fixtures::policy(None)).into_bytes();
                let i = index.index(bytes.len());
                prop_assume!(bytes[i] != byte);
                bytes[i] = byte;
                let token = String::from_utf8_lossy(&bytes).into_owned();
                prop_assert!(!authorised(&token), "authorised with byte {} set to {:#04x}: {}", i, byte, token);
            }

            /// A correctly signed token for any other audience: never authorised.
            #[test]
            fn another_audience_is_never_authorised(aud in "[a-z:/.]{0,24}") {
                prop_assume!(aud != AUDIENCE);
                let p = fixtures::policy(None);
                let token = p.tokens.keys.keys[0].sign(CALL_TYP, &json!({
                    "iss": ISSUER, "aud": aud, "sub": "alice", "tenant": "acme", "tool": "notes_list",
                    "action": "notes:read", "resource": "*", "iat": NOW, "exp": NOW + 60})).unwrap();
                prop_assert!(!authorised(&token));
            }

            /// HS256 keyed with the Ed25519 public key (algorithm confusion), under any kid.
            #[test]
            fn hs256_forged_with_the_public_key_is_never_authorised(kid in prop::sample::select(vec!["ed", "hs", "other"])) {
                let p = fixtures::policy(None);
                let public = decode_key_text(&p.tokens.keys.keys[0].public_key_b64().unwrap()).unwrap();
                let forged = Key::hmac(kid, public).sign(CALL_TYP, &json!({
                    "iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "tenant": "acme", "tool": "notes_list",
                    "action": "notes:read", "resource": "*", "iat": NOW, "exp": NOW + 60})).unwrap();
                prop_assert!(!authorised(&forged));
            }
        }
    }

    /// The verified-token cache answers only for the token, session, tool and lifetime
    /// it verified for: tried with another tenant's session, another principal's,
    /// another channel, another tool and after expiry, every one is a miss and the
    /// decision is the full one.
    #[test]
    fn the_verified_token_cache_answers_for_nothing_else() {
        let policy = fixtures::policy(None);
        let catalogue = Catalogue::new(tools::catalogue());
        let acme = fixtures::session(&policy, "acme").on_channel(Some("s1"));
        let args = Map::new();
        // A token naming the wrong action: verified, refused, remembered.
        let token = fixtures::call_token(
            &policy,
            "ed",
            "acme",
            "alice",
            "notes_list",
            "notes:write",
            "*",
        );
        // (The cache holds the fixture sessions' bearers too.)
        let globex = fixtures::session(&policy, "globex").on_channel(Some("s1"));
        let entries = policy.verified().stats().entries;
        let decide = |session: &Session, tool: &str, now: u64| {
            let ctx = CallContext {
                session,
                tool,
                call_token: Some(&token),
                arguments: &args,
                now,
            };
            check(&policy, &catalogue, &ctx).map(|_| ())
        };
        let refused = Err(Denial::OutOfScope("action"));
        assert_eq!(decide(&acme, "notes_list", NOW), refused);
        let stats = policy.verified().stats();
        assert_eq!((stats.hits, stats.entries), (0, entries + 1));
        assert_eq!(decide(&acme, "notes_list", NOW), refused);
        assert_eq!(
            policy.verified().stats().hits,
            1,
            "a retry is answered from the cache"
        );
        // Another tenant's session, another channel, another tool: verified afresh.
        let before = policy.verified().stats();
        assert_eq!(
            decide(&globex, "notes_list", NOW),
            Err(Denial::TokenTenantMismatch)
        );
        let other_channel = acme.clone().on_channel(Some("s2"));
        assert_eq!(decide(&other_channel, "notes_list", NOW), refused);
        assert_eq!(
            decide(&acme, "notes_get", NOW),
            Err(Denial::OutOfScope("tool"))
        );
        // Past its lifetime (60 s + 30 s skew) the entry answers no more: expired.
        assert_eq!(
            decide(&acme, "notes_list", NOW + 91),
            Err(Denial::Token(TokenError::Expired))
        );
        let after = policy.verified().stats();
        assert_eq!(after.hits, before.hits, "no other binding was answered");
        assert_eq!(after.misses, before.misses + 4);
        // A reload starts with an empty cache.
        assert_eq!(policy.clone().verified().stats().entries, 0);
    }

    /// A spent call token, presented again and again: the second presentation verifies
    /// and is refused by the single-use record; from the third on the refusal comes
    /// through the cache, with no signature checked.
    #[test]
    fn a_replayed_call_token_is_refused_from_the_cache() {
        let policy = fixtures::policy(None);
        let core = crate::core::Core::new(policy);
        let p = core.policy();
        let acme = fixtures::session(&p, "acme");
        let (hits, entries) = (p.verified().stats().hits, p.verified().stats().entries);
        let token =
            fixtures::call_token(&p, "ed", "acme", "alice", "notes_list", "notes:read", "*");
        let call = || core.call_tool(&acme, "notes_list", Some(&token), None, NOW);
        assert!(call().is_ok());
        for _ in 0..3 {
            assert_eq!(call(), Err(crate::core::CallError::Unauthorized));
        }
        let stats = p.verified().stats();
        assert_eq!(
            (stats.hits, stats.entries),
            (hits + 2, entries + 1),
            "{stats:?}"
        );
    }
}
