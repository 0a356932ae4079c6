//! Benchmarks of the per-call authorisation hot path; the groups live in `benches/`.
//!
//! This library holds what the groups share: fixtures from
//! `mcp_tenancy_server::core::testing` (the server's tests and fuzz targets use the
//! same), call tokens minted at a given time, the floors (raw HMAC-SHA256 and Ed25519
//! verification of the very bytes the gate verifies), policies grown for the scaling
//! series, and — behind the `peers` feature — the peers deciding the same question.

pub mod report;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, VerifyingKey};
use hmac::{Hmac, KeyInit, Mac};
use mcp_tenancy_server::core::jws::{Key, KeyMaterial};
use mcp_tenancy_server::core::policy::{
    CALL_TYP, Policy, Principal, SESSION_TYP, TenantPolicy, Tiers,
};
use mcp_tenancy_server::core::testing::{self as fixture, AUDIENCE, ISSUER, NOW};
use mcp_tenancy_server::core::tools::{ToolDef, ToolKind};
use serde_json::json;
use sha2::Sha256;

/// The configuration of every group: about 3 s per case, so that the whole run (some
/// 50 cases, peers included) stays well inside 15 minutes on a 2-core machine.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(700))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(60)
}

/// A call token signed with the fixture key `kid` (`ed` or `hs`), issued at `now`,
/// living 60 s, with `jti`.
pub fn call_token_at(
    policy: &Policy,
    kid: &str,
    (tenant, sub): (&str, &str),
    (tool, action): (&str, &str),
    now: u64,
    jti: &str,
) -> String {
    key(policy, kid)
        .sign(
            CALL_TYP,
            &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "tenant": tenant, "tool": tool,
                    "action": action, "resource": "*", "iat": now, "exp": now + 60, "jti": jti}),
        )
        .expect("the fixture key signs")
}

/// A session bearer of `tenant` signed with `kid`, living ten minutes from [`NOW`].
pub fn session_bearer(policy: &Policy, kid: &str, tenant: &str) -> String {
    key(policy, kid)
        .sign(
            SESSION_TYP,
            &json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "orchestrator", "tenant": tenant,
                    "iat": NOW, "exp": NOW + 600}),
        )
        .expect("the fixture key signs")
}

pub fn key<'p>(policy: &'p Policy, kid: &str) -> &'p Key {
    policy.tokens.keys.get(kid).expect("a fixture key id")
}

/// A token's signing input and its decoded signature: what a floor verifies.
pub struct Signed {
    pub input: Vec<u8>,
    pub signature: Vec<u8>,
}

impl Signed {
    pub fn of(token: &str) -> Self {
        let (input, signature) = token.rsplit_once('.').expect("a compact token");
        Self {
            input: input.as_bytes().to_vec(),
            signature: URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
        }
    }
}

/// The HMAC-SHA256 floor: key the MAC, absorb the signing input, compare in constant
/// time — what any HS256 verification must at least do.
pub struct HmacFloor {
    secret: Vec<u8>,
    keyed: Hmac<Sha256>,
}

impl HmacFloor {
    pub fn new(policy: &Policy) -> Self {
        let KeyMaterial::Hmac(secret) = &key(policy, "hs").material else {
            panic!("the fixture `hs` key is an HMAC key")
        };
        Self {
            secret: secret.clone(),
            keyed: Hmac::new_from_slice(secret).expect("any key length"),
        }
    }

    /// Keyed per call, as a plain `Hmac::new_from_slice` + `verify_slice`.
    pub fn verify(&self, signed: &Signed) -> bool {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        mac.update(&signed.input);
        mac.verify_slice(&signed.signature).is_ok()
    }

    /// With the key's pads absorbed once (the stricter floor: what the gate does).
    pub fn verify_prekeyed(&self, signed: &Signed) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(&signed.input);
        mac.verify_slice(&signed.signature).is_ok()
    }
}

/// The Ed25519 floor: `verify_strict` of the signing input, as the gate calls it.
pub struct Ed25519Floor(VerifyingKey);

impl Ed25519Floor {
    pub fn new(policy: &Policy) -> Self {
        let KeyMaterial::Ed25519 { public, .. } = &key(policy, "ed").material else {
            panic!("the fixture `ed` key is an Ed25519 key")
        };
        Self(*public)
    }

    pub fn verify(&self, signed: &Signed) -> bool {
        let Ok(bytes) = <[u8; 64]>::try_from(signed.signature.as_slice()) else {
            return false;
        };
        self.0
            .verify_strict(&signed.input, &Signature::from_bytes(&bytes))
            .is_ok()
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A tool of the scaling series (a `notes_list`-like read with a closed schema).
fn tool(name: &'static str, tier: &'static str) -> ToolDef {
    ToolDef {
        name,
        title: name,
        description: "A tool of the scaling series.",
        input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        read_only: true,
        tier,
        action: "notes:read",
        kind: ToolKind::NotesList,
    }
}

/// A grown policy and catalogue, and the tenant and tool a measured call uses.
pub struct Grown {
    pub policy: Policy,
    pub tools: Vec<ToolDef>,
    pub tenant: String,
    pub tool: &'static str,
}

fn grown(
    tenants: Vec<TenantPolicy>,
    tools: Vec<ToolDef>,
    tenant: String,
    tool: &'static str,
) -> Grown {
    let base = fixture::policy(None);
    Grown {
        policy: Policy::new(tenants, base.tokens.clone(), base.page_size, None),
        tools,
        tenant,
        tool,
    }
}

impl Grown {
    /// A verified session of the measured tenant, and an authorised call token for
    /// the measured tool (HS256, living from [`NOW`]).
    pub fn session_and_token(&self) -> (mcp_tenancy_server::core::policy::Session, String) {
        let bearer = session_bearer(&self.policy, "hs", &self.tenant);
        let session = self
            .policy
            .authenticate(&bearer, NOW)
            .expect("the bearer verifies");
        let token = call_token_at(
            &self.policy,
            "hs",
            (&self.tenant, "alice"),
            (self.tool, "notes:read"),
            NOW,
            "bench-jti",
        );
        (session, token)
    }
}

/// `n` tenants, each entitled to the same 10 tools (two tiers of five), each with
/// one principal entitled to both; the measured call is the middle tenant's.
pub fn with_tenants(n: usize) -> Grown {
    let tools = (0..10)
        .map(|i| tool(leak(format!("tool_{i}")), if i < 5 { "a" } else { "b" }))
        .collect();
    let tiers = || Tiers::from(vec!["a".to_owned(), "b".to_owned()]);
    let tenants = (0..n)
        .map(|i| TenantPolicy {
            id: format!("tenant-{i}"),
            tiers: tiers(),
            principals: vec![Principal {
                id: "alice".into(),
                tiers: tiers(),
            }],
        })
        .collect();
    grown(tenants, tools, format!("tenant-{}", n / 2), "tool_7")
}

/// 10 tenants with `n` tools each, each tool in a tier of its own (the worst case for
/// an entitlement check: `n` tiers per tenant and principal); the measured call is the
/// middle tool of the middle tenant.
pub fn with_tools_per_tenant(n: usize) -> Grown {
    let mut tools = Vec::with_capacity(10 * n);
    let mut tenants = Vec::new();
    for t in 0..10 {
        let mut tiers = Vec::with_capacity(n);
        for i in 0..n {
            let tier = leak(format!("tier-{t}-{i}"));
            tools.push(tool(leak(format!("t{t}_tool_{i}")), tier));
            tiers.push(tier.to_owned());
        }
        tenants.push(TenantPolicy {
            id: format!("tenant-{t}"),
            tiers: Tiers::from(tiers.clone()),
            principals: vec![Principal {
                id: "alice".into(),
                tiers: Tiers::from(tiers),
            }],
        });
    }
    let tool = tools[5 * n + n / 2].name;
    grown(tenants, tools, "tenant-5".into(), tool)
}

/// The peers, compiled only with `--features peers`.
#[cfg(feature = "peers")]
pub mod peers {
    use super::*;
    use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request};
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    use std::str::FromStr;

    /// The claims a call token carries, as a `jsonwebtoken` user would declare them.
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct CallClaims {
        iss: String,
        sub: String,
        tenant: String,
        tool: String,
        action: String,
        resource: String,
        jti: String,
        iat: u64,
        exp: u64,
    }

    /// `jsonwebtoken` decode + validate: signature, `exp` (30 s leeway), `iss`, `aud`,
    /// into a typed claims struct — the same token bytes the gate verifies.
    pub struct Jwt {
        hs: (DecodingKey, Validation),
        ed: (DecodingKey, Validation),
    }

    impl Jwt {
        pub fn new(policy: &Policy) -> Self {
            let validation = |alg| {
                let mut v = Validation::new(alg);
                v.leeway = 30;
                v.set_issuer(&[ISSUER]);
                v.set_audience(&[AUDIENCE]);
                v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
                v
            };
            let KeyMaterial::Hmac(secret) = &key(policy, "hs").material else {
                panic!("an HMAC key")
            };
            let public = key(policy, "ed").public_key_b64().expect("an Ed25519 key");
            Self {
                hs: (
                    DecodingKey::from_secret(secret).expect("an HMAC secret"),
                    validation(Algorithm::HS256),
                ),
                ed: (
                    DecodingKey::from_ed_components(&public).expect("an Ed25519 public key"),
                    validation(Algorithm::EdDSA),
                ),
            }
        }

        /// At the real clock: `jsonwebtoken` reads the system time, so a peer token
        /// must be minted around now (see [`Jwt::now`]).
        pub fn decode(&self, token: &str, kid: &str) -> bool {
            let (key, validation) = if kid == "hs" { &self.hs } else { &self.ed };
            jsonwebtoken::decode::<CallClaims>(token, key, validation).is_ok()
        }

        pub fn now() -> u64 {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        }
    }

    /// Cedar deciding the gate's entitlement question — may this principal of this
    /// tenant call this tool? — with one policy per tool:
    /// `permit(principal, action == Action::"call", resource == Tool::"<name>") when
    /// { principal.tenant.tiers.contains("<tier>") && principal.tiers.contains("<tier>") };`
    pub struct Cedar {
        authorizer: Authorizer,
        policies: PolicySet,
        entities: Entities,
    }

    impl Cedar {
        /// The policy set and entities for `tools` (name, tier) and `tenants`
        /// (id, tiers, principals with their tiers).
        pub fn new(policy: &Policy, tools: &[ToolDef]) -> Self {
            let mut text = String::new();
            let mut entities = Vec::new();
            for t in tools {
                text.push_str(&format!(
                    "permit(principal, action == Action::\"call\", resource == Tool::{name:?}) when {{ principal.tenant.tiers.contains({tier:?}) && principal.tiers.contains({tier:?}) }};\n",
                    name = t.name,
                    tier = t.tier
                ));
                entities.push(json!({"uid": {"type": "Tool", "id": t.name}, "attrs": {"tier": t.tier}, "parents": []}));
            }
            for tenant in policy.tenants() {
                let tiers: Vec<&String> = tenant.tiers.iter().collect();
                entities.push(json!({"uid": {"type": "Tenant", "id": tenant.id}, "attrs": {"tiers": tiers}, "parents": []}));
                for p in &tenant.principals {
                    let tiers: Vec<&String> = p.tiers.iter().collect();
                    entities.push(json!({
                        "uid": {"type": "User", "id": format!("{}/{}", tenant.id, p.id)},
                        "attrs": {"tenant": {"__entity": {"type": "Tenant", "id": tenant.id}}, "tiers": tiers},
                        "parents": []
                    }));
                }
            }
            Self {
                authorizer: Authorizer::new(),
                policies: PolicySet::from_str(&text).expect("the generated policies parse"),
                entities: Entities::from_json_value(serde_json::Value::Array(entities), None)
                    .expect("the generated entities parse"),
            }
        }

        /// The request for `principal` of `tenant` calling `tool` (built once, outside
        /// a measured loop: in Cedar's favour).
        pub fn request(tenant: &str, principal: &str, tool: &str) -> Request {
            let uid = |s: String| EntityUid::from_str(&s).expect("an entity uid");
            Request::new(
                uid(format!("User::{:?}", format!("{tenant}/{principal}"))),
                uid("Action::\"call\"".into()),
                uid(format!("Tool::{tool:?}")),
                Context::empty(),
                None,
            )
            .expect("a request without a schema")
        }

        pub fn allows(&self, request: &Request) -> bool {
            self.authorizer
                .is_authorized(request, &self.policies, &self.entities)
                .decision()
                == Decision::Allow
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_tenancy_server::core::gate::{self, CallContext};
    use mcp_tenancy_server::core::tools::{Catalogue, catalogue};
    use serde_json::Map;

    /// The floors accept exactly what the gate accepts: the fixture tokens, and not a
    /// token with one byte of its signature changed.
    #[test]
    fn the_floors_verify_the_gates_tokens_and_refuse_a_changed_one() {
        let policy = fixture::policy(None);
        let hs = Signed::of(&call_token_at(
            &policy,
            "hs",
            ("acme", "alice"),
            ("notes_list", "notes:read"),
            NOW,
            "j1",
        ));
        let ed = Signed::of(&call_token_at(
            &policy,
            "ed",
            ("acme", "alice"),
            ("notes_list", "notes:read"),
            NOW,
            "j2",
        ));
        let (hmac, ed25519) = (HmacFloor::new(&policy), Ed25519Floor::new(&policy));
        assert!(hmac.verify(&hs) && hmac.verify_prekeyed(&hs) && ed25519.verify(&ed));
        let mut bad = Signed {
            input: hs.input.clone(),
            signature: hs.signature.clone(),
        };
        bad.signature[0] ^= 1;
        assert!(!hmac.verify(&bad) && !hmac.verify_prekeyed(&bad));
        let mut bad = Signed {
            input: ed.input.clone(),
            signature: ed.signature.clone(),
        };
        bad.signature[0] ^= 1;
        assert!(!ed25519.verify(&bad));
    }

    /// The scaling series' measured calls are authorised (a benchmark of a refusal
    /// would measure the wrong thing).
    #[test]
    fn the_scaling_fixtures_authorise_their_measured_call() {
        for g in [with_tenants(10), with_tools_per_tenant(10)] {
            let catalogue = Catalogue::new(g.tools.clone());
            // The very session and token the scaling series measures.
            let (session, token) = g.session_and_token();
            let args = Map::new();
            let ctx = CallContext {
                session: &session,
                tool: g.tool,
                call_token: Some(&token),
                arguments: &args,
                now: NOW,
            };
            assert!(gate::check(&g.policy, &catalogue, &ctx).is_ok());
            assert!(gate::entitled(
                &g.policy, &catalogue, &g.tenant, "alice", g.tool
            ));
        }
        let policy = fixture::policy(None);
        let catalogue = Catalogue::new(catalogue());
        assert!(gate::entitled(&policy, &catalogue, "acme", "bob", "charge"));
        assert!(!gate::entitled(
            &policy, &catalogue, "acme", "alice", "charge"
        ));
    }
}
