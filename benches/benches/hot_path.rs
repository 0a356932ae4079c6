//! The per-call hot path of the reference server, each group beside its floor and its
//! peers measured in the same run on the same bytes (peers with `--features peers`).
//!
//! Compare ratios, not absolute numbers, across machines: the record in
//! `benches/record/` gives both, with the machine and the load it was taken under.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mcp_tenancy_benches::{self as b, Ed25519Floor, HmacFloor, Signed};
use mcp_tenancy_server::core::gate::{self, CallContext};
use mcp_tenancy_server::core::jws::{self, Scratch};
use mcp_tenancy_server::core::policy::{CALL_TYP, SESSION_TYP};
use mcp_tenancy_server::core::replay::{JtiKey, UsedTokens};
use mcp_tenancy_server::core::schema;
use mcp_tenancy_server::core::testing::{self as fixture, NOW};
use mcp_tenancy_server::core::tools::{Catalogue, catalogue};
use mcp_tenancy_server::core::{CallError, Core};
use serde_json::{Map, Value, json};
use std::hint::black_box;

const ALICE: (&str, &str) = ("acme", "alice");
const NOTES_LIST: (&str, &str) = ("notes_list", "notes:read");

/// `token_verify` — signature and claims of one token, nothing else (`jws::verify`, no
/// cache): call tokens and session bearers, HS256 and EdDSA. Why: it is the floor of
/// every authorised call, and the only part whose cost grows with the token. Beside it
/// the floors — the raw MAC or signature check of the very same signing input — and
/// `jsonwebtoken` decoding and validating the same bytes into a typed claims struct.
fn token_verify(c: &mut Criterion) {
    let policy = fixture::policy(None);
    let call = policy.validation(CALL_TYP, Some(policy.tokens.max_call_token_secs));
    let session = policy.validation(SESSION_TYP, Some(policy.tokens.max_session_token_secs));
    let (hmac, ed25519) = (HmacFloor::new(&policy), Ed25519Floor::new(&policy));
    let mut group = c.benchmark_group("token_verify");
    for kid in ["hs", "ed"] {
        let alg = if kid == "hs" { "hs256" } else { "eddsa" };
        let token = b::call_token_at(&policy, kid, ALICE, NOTES_LIST, NOW, "bench-jti");
        let bearer = b::session_bearer(&policy, kid, "acme");
        for (what, token, validation) in [("call", &token, &call), ("session", &bearer, &session)] {
            assert!(
                jws::verify(
                    &policy.tokens.keys,
                    token,
                    validation,
                    NOW,
                    &mut Scratch::default()
                )
                .is_ok()
            );
            group.bench_function(format!("{alg}_{what}/gate"), |bench| {
                bench.iter(|| {
                    let mut scratch = Scratch::default();
                    black_box(
                        jws::verify(
                            &policy.tokens.keys,
                            black_box(token),
                            validation,
                            NOW,
                            &mut scratch,
                        )
                        .is_ok(),
                    )
                })
            });
        }
        let signed = Signed::of(&token);
        if kid == "hs" {
            assert!(hmac.verify(&signed));
            group.bench_function("hs256_call/floor_hmac", |bench| {
                bench.iter(|| black_box(hmac.verify(black_box(&signed))))
            });
            group.bench_function("hs256_call/floor_hmac_prekeyed", |bench| {
                bench.iter(|| black_box(hmac.verify_prekeyed(black_box(&signed))))
            });
        } else {
            assert!(ed25519.verify(&signed));
            group.bench_function("eddsa_call/floor_ed25519", |bench| {
                bench.iter(|| black_box(ed25519.verify(black_box(&signed))))
            });
        }
        peers::jwt(&mut group, &policy, kid, &format!("{alg}_call"));
    }
    group.finish();
}

/// `gate_check` — the whole per-call decision (`gate::check`): the tool and the
/// tenant's entitlement, the call token (signature, claims, binding to the session's
/// tenant, the principal's entitlement, scope), the tenant label in the arguments.
/// Why: every `tools/call` pays it before any handler runs. Beside it, in the same run:
/// the raw-signature floors (the targets are ratios to them), the refusals that must
/// stay near-free (judged before any token work: no oracle, no amplification), the
/// entitlement question alone, and Cedar deciding that same question.
fn gate_check(c: &mut Criterion) {
    let policy = fixture::policy(None);
    let tools = Catalogue::new(catalogue());
    let session = fixture::session(&policy, "acme");
    let args = Map::new();
    let (hmac, ed25519) = (HmacFloor::new(&policy), Ed25519Floor::new(&policy));
    let mut group = c.benchmark_group("gate_check");
    for (label, tool, kid) in [
        ("authorised_hs256", "notes_list", Some("hs")),
        ("authorised_eddsa", "notes_list", Some("ed")),
        ("denied_no_token", "notes_list", None),
        ("denied_unknown_tool", "no_such_tool", Some("hs")),
        ("denied_other_tenants_tool", "admin_export", Some("hs")),
    ] {
        // A successful decision is never cached: the same token is verified in full
        // on every iteration (only refused tokens are remembered, see `core::verified`).
        let token = kid.map(|k| b::call_token_at(&policy, k, ALICE, NOTES_LIST, NOW, "bench-jti"));
        let ctx = CallContext {
            session: &session,
            tool,
            call_token: token.as_deref(),
            arguments: &args,
            now: NOW,
        };
        assert_eq!(
            gate::check(&policy, &tools, &ctx).is_ok(),
            label.starts_with("authorised")
        );
        group.bench_function(format!("{label}/gate"), |bench| {
            bench.iter(|| black_box(gate::check(&policy, &tools, black_box(&ctx)).is_ok()))
        });
        if let Some(token) = &token
            && label.starts_with("authorised")
        {
            let signed = Signed::of(token);
            if kid == Some("hs") {
                group.bench_function(format!("{label}/floor_hmac"), |bench| {
                    bench.iter(|| black_box(hmac.verify(black_box(&signed))))
                });
                group.bench_function(format!("{label}/floor_hmac_prekeyed"), |bench| {
                    bench.iter(|| black_box(hmac.verify_prekeyed(black_box(&signed))))
                });
            } else {
                group.bench_function(format!("{label}/floor_ed25519"), |bench| {
                    bench.iter(|| black_box(ed25519.verify(black_box(&signed))))
                });
            }
        }
    }
    peers::jwt(&mut group, &policy, "hs", "authorised_hs256");
    peers::jwt(&mut group, &policy, "ed", "authorised_eddsa");
    assert!(gate::entitled(&policy, &tools, "acme", "bob", "charge"));
    group.bench_function("entitlement/gate", |bench| {
        bench.iter(|| {
            black_box(gate::entitled(
                &policy,
                &tools,
                "acme",
                black_box("bob"),
                "charge",
            ))
        })
    });
    peers::cedar(&mut group, &policy, &tools);
    // Session bearers as HTTP presents them on every request: verified once per bearer
    // and channel, then answered from the verified-token cache.
    for kid in ["hs", "ed"] {
        let alg = if kid == "hs" { "hs256" } else { "eddsa" };
        let bearer = b::session_bearer(&policy, kid, "acme");
        policy
            .authenticate_on(&bearer, Some("s1"), NOW)
            .expect("the bearer verifies");
        group.bench_function(format!("known_bearer_{alg}/cached"), |bench| {
            bench.iter(|| {
                black_box(
                    policy
                        .authenticate_on(black_box(&bearer), Some("s1"), NOW)
                        .is_ok(),
                )
            })
        });
    }
    group.finish();
}

/// `full_call` — one `tools/call` through the server core in process
/// (`Core::call_tool`): the gate, argument validation against the tool's schema, the
/// single-use record, the store, the result as JSON. Steady state: a fresh call token
/// per call (minted outside the measurement), the clock moving one second every 100
/// calls, so about 9,000 tokens are live on the record. And a retried token — spent, so
/// refused — answered through the verified-token cache (target: ≤ 1 µs).
fn full_call(c: &mut Criterion) {
    let policy = fixture::policy(None);
    let core = Core::new(policy.clone());
    let policy = core.policy();
    let session = fixture::session(&policy, "acme");
    for i in 0..10 {
        let token = b::call_token_at(
            &policy,
            "hs",
            ALICE,
            ("notes_create", "notes:write"),
            NOW,
            &format!("seed-{i}"),
        );
        let args = json!({"title": format!("note {i}"), "body": "x".repeat(100)});
        core.call_tool(
            &session,
            "notes_create",
            Some(&token),
            args.as_object(),
            NOW,
        )
        .expect("a note is created");
    }
    let mut group = c.benchmark_group("full_call");
    for kid in ["hs", "ed"] {
        let alg = if kid == "hs" { "hs256" } else { "eddsa" };
        let mut n: u64 = 0;
        group.bench_function(format!("notes_list_10_notes_{alg}/core"), |bench| {
            bench.iter_batched(
                || {
                    n += 1;
                    let now = NOW + n / 100;
                    let jti = format!("{alg}-{n}");
                    (
                        b::call_token_at(&policy, kid, ALICE, NOTES_LIST, now, &jti),
                        now,
                    )
                },
                |(token, now)| {
                    black_box(
                        core.call_tool(&session, "notes_list", Some(&token), None, now)
                            .is_ok(),
                    )
                },
                BatchSize::SmallInput,
            )
        });
        let retried = b::call_token_at(
            &policy,
            kid,
            ALICE,
            NOTES_LIST,
            NOW,
            &format!("retried-{alg}"),
        );
        let call = || core.call_tool(&session, "notes_list", Some(&retried), None, NOW);
        assert!(call().is_ok());
        assert_eq!(call(), Err(CallError::Unauthorized));
        let hits = policy.verified().stats().hits;
        assert_eq!(call(), Err(CallError::Unauthorized));
        assert_eq!(
            policy.verified().stats().hits,
            hits + 1,
            "the retry is answered from the cache"
        );
        group.bench_function(format!("retried_{alg}/cached"), |bench| {
            bench.iter(|| black_box(call().is_err()))
        });
    }
    group.finish();
}

/// `list_tools` — per-tenant discovery (`Core::list_tools`): the tenant's entitled
/// tools, four to a page, and the second page through its tenant-bound cursor (an
/// HMAC checked on the way in). Why: `tools/list` is the first thing every session
/// asks, and it is filtered per tenant on every call.
fn list_tools(c: &mut Criterion) {
    let core = Core::new(fixture::policy(None));
    let policy = core.policy();
    let session = fixture::session(&policy, "acme");
    let first = core.list_tools(&session, None).expect("a first page");
    let cursor = first.next_cursor.expect("a second page");
    let mut group = c.benchmark_group("list_tools");
    group.bench_function("first_page", |bench| {
        bench.iter(|| black_box(core.list_tools(black_box(&session), None).is_ok()))
    });
    group.bench_function("next_page", |bench| {
        bench.iter(|| black_box(core.list_tools(&session, Some(black_box(&cursor))).is_ok()))
    });
    group.finish();
}

/// `argument_validation` — a call's arguments against the tool's `inputSchema`
/// (`schema::validate_arguments`): `notes_create` with a title, a body and metadata;
/// and refused, for a member the closed schema does not name. Why: it runs on every
/// authorised call, on input the caller controls.
fn argument_validation(c: &mut Criterion) {
    let tools = Catalogue::new(catalogue());
    let schema = &tools
        .get("notes_create")
        .expect("a fixture tool")
        .input_schema;
    let object = |v: Value| v.as_object().cloned().expect("an object");
    let valid =
        object(json!({"title": "a note", "body": "x".repeat(200), "meta": {"request": "r-1"}}));
    let extra = object(json!({"title": "a note", "tenant": "globex"}));
    assert!(schema::validate_arguments(schema, &valid).is_ok());
    assert!(schema::validate_arguments(schema, &extra).is_err());
    let mut group = c.benchmark_group("argument_validation");
    group.bench_function("notes_create_valid", |bench| {
        bench.iter(|| black_box(schema::validate_arguments(schema, black_box(&valid)).is_ok()))
    });
    group.bench_function("notes_create_unknown_member", |bench| {
        bench.iter(|| black_box(schema::validate_arguments(schema, black_box(&extra)).is_ok()))
    });
    group.finish();
}

/// `replay_record` — the single-use record (`core::replay`): what an authorised call
/// pays after the gate to record its token's `jti`, and what finding a replay costs.
/// Steady state: tokens live 300 s, the clock moves one second every 100 calls, so
/// about 30,000 tokens are live. Set it beside `gate_check/authorised_hs256/gate`.
fn replay_record(c: &mut Criterion) {
    let record = UsedTokens::default();
    let mut group = c.benchmark_group("replay_record");
    let mut n: u64 = 0;
    group.bench_function("spend_fresh_jti", |bench| {
        bench.iter_batched(
            || {
                n += 1;
                (JtiKey::of(&format!("mcpt-{n:x}-bench")), NOW + n / 100)
            },
            |(jti, now)| black_box(record.spend("acme", jti, now + 300, now)),
            BatchSize::SmallInput,
        )
    });
    let replayed = JtiKey::of("replayed");
    let _ = record.spend("acme", replayed, u64::MAX, NOW);
    group.bench_function("refuse_replay", |bench| {
        bench.iter(|| black_box(record.spend("acme", black_box(replayed), u64::MAX, NOW)))
    });
    group.bench_function("jti_key", |bench| {
        bench.iter(|| black_box(JtiKey::of(black_box("mcpt-18f3a2b4c5d6e7f8-0001"))))
    });
    group.finish();
}

#[cfg(feature = "peers")]
mod peers {
    use super::*;
    use criterion::{BenchmarkGroup, measurement::WallTime};
    use mcp_tenancy_benches::peers::{Cedar, Jwt};
    use mcp_tenancy_server::core::policy::Policy;

    /// `jsonwebtoken` decoding and validating the gate's token bytes (re-minted at the
    /// real clock: the library reads the system time).
    pub fn jwt(group: &mut BenchmarkGroup<'_, WallTime>, policy: &Policy, kid: &str, label: &str) {
        let jwt = Jwt::new(policy);
        let token = b::call_token_at(policy, kid, ALICE, NOTES_LIST, Jwt::now(), "bench-jti");
        assert!(
            jwt.decode(&token, kid),
            "jsonwebtoken accepts the gate's token"
        );
        group.bench_function(format!("{label}/peer_jsonwebtoken"), |bench| {
            bench.iter(|| black_box(jwt.decode(black_box(&token), kid)))
        });
    }

    /// Cedar deciding `entitlement/gate`'s question, a policy per tool.
    pub fn cedar(group: &mut BenchmarkGroup<'_, WallTime>, policy: &Policy, tools: &Catalogue) {
        let tools: Vec<_> = tools.iter().cloned().collect();
        let cedar = Cedar::new(policy, &tools);
        for (principal, tool) in [
            ("bob", "charge"),
            ("alice", "charge"),
            ("alice", "notes_list"),
        ] {
            let request = Cedar::request("acme", principal, tool);
            let gate = gate::entitled(
                policy,
                &Catalogue::new(tools.clone()),
                "acme",
                principal,
                tool,
            );
            assert_eq!(
                cedar.allows(&request),
                gate,
                "Cedar decides as the gate: {principal} {tool}"
            );
        }
        let request = Cedar::request("acme", "bob", "charge");
        group.bench_function("entitlement/peer_cedar", |bench| {
            bench.iter(|| black_box(cedar.allows(black_box(&request))))
        });
    }
}

#[cfg(not(feature = "peers"))]
mod peers {
    //! Without `--features peers` the peers are not compiled, and say so once.
    use super::*;
    use criterion::{BenchmarkGroup, measurement::WallTime};
    use mcp_tenancy_server::core::policy::Policy;

    fn note() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| eprintln!("peers not measured: build with `--features peers`"));
    }

    pub fn jwt(_: &mut BenchmarkGroup<'_, WallTime>, _: &Policy, _: &str, _: &str) {
        note()
    }

    pub fn cedar(_: &mut BenchmarkGroup<'_, WallTime>, _: &Policy, _: &Catalogue) {
        note()
    }
}

criterion_group! {
    name = benches;
    config = b::criterion();
    targets = token_verify, gate_check, full_call, list_tools, argument_validation, replay_record
}
criterion_main!(benches);
