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

use super::jws::{self, TokenError};
use super::policy::{CALL_TYP, Policy, Session};
use super::tools::{Catalogue, ToolDef, ToolKind};
use serde_json::{Map, Value};
use std::fmt;

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
    /// The call token's `jti` and the last second it verifies: a call token is good
    /// for one call, which the core enforces (the gate itself keeps no state).
    once: Option<(String, u64)>,
}

impl<'a> Authorized<'a> {
    pub fn tool(&self) -> &'a ToolDef {
        self.tool
    }

    /// Takes the call token's `jti` and expiry (with skew), when the call carried one.
    pub fn take_once(&mut self) -> Option<(String, u64)> {
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

/// Decides one call. Pure: no I/O, no clock, no allocation on the happy path beyond
/// decoding the token. A mutant's holes are asked at each decision point
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
        let validation = policy.validation(CALL_TYP, Some(policy.tokens.max_call_token_secs));
        let claims =
            jws::verify(&policy.tokens.keys, token, &validation, ctx.now).map_err(Denial::Token)?;
        let claimed_tenant = claims.str("tenant").unwrap_or_default();
        let tenant = if claimed_tenant == session_tenant.id {
            session_tenant
        } else if holes.token_tenant_unbound() {
            policy
                .tenant(claimed_tenant)
                .ok_or(Denial::TokenTenantMismatch)?
        } else {
            return Err(Denial::TokenTenantMismatch);
        };
        let sub = claims.str("sub").unwrap_or_default();
        let principal = tenant.principal(sub).ok_or(Denial::UnknownPrincipal)?;
        if !holes.scope_ignored() {
            if !holes.tool_claim_covers(claims.str("tool"), ctx.tool, tool) {
                return Err(Denial::OutOfScope("tool"));
            }
            if claims.str("action") != Some(tool.action) {
                return Err(Denial::OutOfScope("action"));
            }
            let resource = claims.str("resource").unwrap_or_default();
            if !resource_covered(resource, tool, &tenant.id, ctx.arguments) {
                return Err(Denial::OutOfScope("resource"));
            }
        }
        if gated && !principal.tiers.iter().any(|t| t == tool.tier) {
            return Err(Denial::PrincipalNotEntitled);
        }
        let jti = claims.str("jti").filter(|j| !j.is_empty());
        let jti = jti.ok_or(Denial::Token(jws::TokenError::MissingClaim("jti")))?;
        let exp = claims.0.get("exp").and_then(Value::as_u64).unwrap_or(0);
        once = Some((jti.to_owned(), exp.saturating_add(policy.tokens.skew_secs)));
        (tenant, principal.id.as_str())
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
}
