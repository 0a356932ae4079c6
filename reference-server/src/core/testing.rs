//! Shared fixtures for tests, benchmarks and fuzz targets: a two-tenant policy with
//! fixed (public!) keys, sessions and call tokens. Never for a real deployment.

use super::jws::{Key, KeySet};
use super::mutants::Mutant;
use super::policy::{
    CALL_TYP, Policy, Principal, SESSION_TYP, Session, TenantPolicy, Tiers, TokenRules,
};
use serde_json::json;

/// A fixed "now" (2027-01-15) so that tokens never expire under a test.
pub const NOW: u64 = 1_800_000_000;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "urn:test:server";

/// acme: basic+billing+interop (alice basic, bob basic+billing);
/// globex: basic+admin+interop (gina basic+admin, hank basic).
pub fn policy(mutant: Option<Mutant>) -> Policy {
    let p = |id: &str, tiers: &[&str]| Principal {
        id: id.into(),
        tiers: Tiers::from(tiers.iter().map(|t| t.to_string()).collect::<Vec<_>>()),
    };
    let tiers = |t: &[&str]| Tiers::from(t.iter().map(|t| t.to_string()).collect::<Vec<_>>());
    Policy::new(
        vec![
            TenantPolicy {
                id: "acme".into(),
                tiers: tiers(&["basic", "billing", "interop"]),
                principals: vec![p("alice", &["basic"]), p("bob", &["basic", "billing"])],
            },
            TenantPolicy {
                id: "globex".into(),
                tiers: tiers(&["basic", "admin", "interop"]),
                principals: vec![p("gina", &["basic", "admin"]), p("hank", &["basic"])],
            },
        ],
        TokenRules {
            keys: KeySet {
                keys: vec![
                    Key::ed25519_from_seed("ed", &[7; 32]),
                    Key::hmac("hs", vec![9; 32]),
                ],
            },
            issuer: ISSUER.into(),
            audience: AUDIENCE.into(),
            skew_secs: 30,
            max_call_token_secs: 300,
            max_session_token_secs: 86_400,
        },
        4,
        mutant,
    )
}

/// A verified session of `tenant`.
pub fn session(policy: &Policy, tenant: &str) -> Session {
    let token = policy.tokens.keys.keys[0]
        .sign(SESSION_TYP, &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "orchestrator", "tenant": tenant, "iat": NOW, "exp": NOW + 600}))
        .expect("the fixture key signs");
    policy
        .authenticate(&token, NOW)
        .expect("the fixture session verifies")
}

/// A `jti` no other fixture token of this process carries (call tokens are single-use).
fn fresh_jti() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "fixture-{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

/// A call token signed with key `kid` (`ed` or `hs`).
pub fn call_token(
    policy: &Policy,
    kid: &str,
    tenant: &str,
    sub: &str,
    tool: &str,
    action: &str,
    resource: &str,
) -> String {
    policy
        .tokens
        .keys
        .get(kid)
        .expect("a fixture key id")
        .sign(
            CALL_TYP,
            &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "tenant": tenant, "tool": tool,
                    "action": action, "resource": resource, "iat": NOW, "exp": NOW + 60, "jti": fresh_jti()}),
        )
        .expect("the fixture key signs")
}

/// The fuzz oracle for argument injection: any JSON object as the arguments of every
/// tool `acme` may call, with valid call tokens. Whatever happens to `acme`, nothing
/// may land in `globex` — proved by `globex`'s own export — and nothing may panic.
pub fn check_call_arguments(data: &[u8]) {
    check_call_arguments_against(data, None);
}

/// [`check_call_arguments`] against a server started with `mutant`.
pub fn check_call_arguments_against(data: &[u8], mutant: Option<Mutant>) {
    let Ok(serde_json::Value::Object(args)) = crate::wire::parse_strict(data) else {
        return;
    };
    let policy = policy(mutant);
    let core = super::Core::new(policy.clone());
    let acme = session(&policy, "acme");
    for tool in core.catalogue().iter().filter(|t| t.tier != "admin") {
        let token = call_token(&policy, "hs", "acme", "bob", tool.name, tool.action, "*");
        let _ = core.call_tool(&acme, tool.name, Some(&token), Some(&args), NOW);
    }
    let globex = session(&policy, "globex");
    let token = call_token(
        &policy,
        "hs",
        "globex",
        "gina",
        "admin_export",
        "admin:export",
        "*",
    );
    let export = core
        .call_tool(&globex, "admin_export", Some(&token), None, NOW)
        .expect("globex may export its own data");
    let data = export.structured.expect("export is structured");
    assert_eq!(
        data["notes"],
        json!([]),
        "arguments {args:?} wrote into globex"
    );
    assert_eq!(
        data["charges"],
        json!([]),
        "arguments {args:?} charged globex"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "wrote into globex")]
    fn the_argument_oracle_catches_a_server_that_trusts_tenant_arguments() {
        check_call_arguments_against(
            br#"{"title":"t","tenant_id":"globex"}"#,
            Some(Mutant::TenantFromArguments),
        );
    }
}
