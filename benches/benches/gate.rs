//! The gate's decision per `tools/call` (`core::gate::check`).
//!
//! What it measures and why: every `tools/call` pays this before any handler runs, so
//! it bounds the server's call rate. The happy path is dominated by signature
//! verification (Ed25519 ≫ HMAC-SHA256); the unknown-tool path must stay cheap, since
//! it is judged before any token work (no existence oracle, no amplification).
//! Compare the ratios, not the absolute numbers, across machines.

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_tenancy_server::core::gate::{self, CallContext};
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

criterion_group!(benches, gate_decision);
criterion_main!(benches);
