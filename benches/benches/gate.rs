//! The gate's decision per `tools/call` (`core::gate::check`).
//!
//! What it measures and why: every `tools/call` pays this before any handler runs, so
//! it bounds the server's call rate. The happy path is dominated by signature
//! verification (Ed25519 ≫ HMAC-SHA256); the unknown-tool path must stay cheap, since
//! it is judged before any token work (no existence oracle, no amplification).
//! Compare the ratios, not the absolute numbers, across machines.

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mcp_tenancy_server::core::gate::{self, CallContext};
use mcp_tenancy_server::core::replay::UsedTokens;
use mcp_tenancy_server::core::testing::{self as fixture, NOW};
use mcp_tenancy_server::core::tools::{Catalogue, catalogue};
use serde_json::Map;
use std::hint::black_box;

fn gate_decision(c: &mut Criterion) {
    let policy = fixture::policy(None);
    let tools = Catalogue::new(catalogue());
    let session = fixture::session(&policy, "acme");
    let args = Map::new();
    let mut group = c.benchmark_group("gate");
    for (label, tool, kid) in [
        ("authorised_eddsa", "notes_list", Some("ed")),
        ("authorised_hs256", "notes_list", Some("hs")),
        ("denied_no_token", "notes_list", None),
        ("denied_unknown_tool", "no_such_tool", Some("hs")),
        ("denied_other_tenants_tool", "admin_export", Some("hs")),
    ] {
        let token = kid.map(|k| {
            fixture::call_token(&policy, k, "acme", "alice", "notes_list", "notes:read", "*")
        });
        group.bench_function(label, |b| {
            b.iter(|| {
                let ctx = CallContext {
                    session: &session,
                    tool: black_box(tool),
                    call_token: token.as_deref(),
                    arguments: &args,
                    now: NOW,
                };
                black_box(gate::check(&policy, &tools, &ctx).is_ok())
            })
        });
    }
    group.finish();
}

/// The single-use record (`core::replay`): what an authorised call pays after the gate
/// to record its token's `jti` — and to find a replay. Measured in steady state: tokens
/// live 300 s, the clock moves one second every 100 calls, so about 30,000 tokens are
/// live and expired ones are swept as the record fills (100,000 per tenant). Set it
/// beside `gate/authorised_hs256`: the record must stay a small share of the decision.
fn replay_record(c: &mut Criterion) {
    let record = UsedTokens::default();
    let mut group = c.benchmark_group("replay_record");
    let mut n: u64 = 0;
    group.bench_function("spend_fresh_jti", |b| {
        b.iter_batched(
            || {
                n += 1;
                (format!("mcpt-{n:x}-bench"), NOW + n / 100)
            },
            |(jti, now)| black_box(record.spend("acme", jti, now + 300, now)),
            BatchSize::SmallInput,
        )
    });
    let _ = record.spend("acme", "replayed".into(), u64::MAX, NOW);
    group.bench_function("refuse_replay", |b| {
        b.iter_batched(
            || "replayed".to_owned(),
            |jti| black_box(record.spend("acme", jti, u64::MAX, NOW)),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, gate_decision, replay_record);
criterion_main!(benches);
