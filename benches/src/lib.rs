//! Benchmarks of the per-call authorisation hot path; the groups live in `benches/`.
//!
//! [`fixture`] builds the policy, session and tokens the benchmarks share, so a
//! benchmark measures the gate and nothing else.

pub mod fixture {
    use mcp_tenancy_server::core::jws::{Key, KeySet};
    use mcp_tenancy_server::core::policy::{
        CALL_TYP, Policy, Principal, Session, TenantPolicy, TokenRules,
    };
    use serde_json::json;

    pub const NOW: u64 = 1_800_000_000;
    const ISSUER: &str = "https://issuer.bench";
    const AUDIENCE: &str = "urn:bench";

    /// Two tenants, an EdDSA key (`ed`) and an HS256 key (`hs`).
    pub fn policy() -> Policy {
        let tenant = |id: &str, tiers: &[&str]| TenantPolicy {
            id: id.into(),
            tiers: tiers.iter().map(|t| t.to_string()).collect(),
            principals: vec![Principal {
                id: "alice".into(),
                tiers: tiers.iter().map(|t| t.to_string()).collect(),
            }],
        };
        Policy {
            tenants: vec![
                tenant("acme", &["basic", "billing"]),
                tenant("globex", &["basic", "admin"]),
            ],
            tokens: TokenRules {
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
            },
            page_size: 50,
            mutant: None,
        }
    }

    pub fn session(policy: &Policy) -> Session {
        let token = policy.tokens.keys.keys[0]
            .sign("JWT", &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "o", "tenant": "acme", "exp": NOW + 600}))
            .expect("signing key");
        policy.authenticate(&token, NOW).expect("valid session")
    }

    /// A call token for `notes_list` signed with key `kid`.
    pub fn call_token(policy: &Policy, kid: &str) -> String {
        let key = policy.tokens.keys.get(kid).expect("configured key");
        key.sign(
            CALL_TYP,
            &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "tenant": "acme", "tool": "notes_list",
                    "action": "notes:read", "resource": "*", "iat": NOW, "exp": NOW + 60, "jti": "bench"}),
        )
        .expect("signing key")
    }
}
