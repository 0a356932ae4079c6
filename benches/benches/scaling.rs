//! The gate's decision as the policy grows, one criterion group per dimension with the
//! size as the parameter (a series, not a grid):
//! - `scaling_tenants`: 10 → 100,000 tenants, 10 tools each;
//! - `scaling_tools`: 10 → 10,000 tools per tenant (10 tenants), each tool in a tier
//!   of its own — the worst case for an entitlement check;
//!   With `--features peers`, Cedar beside it in the same group (`peer_cedar/n`),
//!   deciding the same entitlement with one policy per tool: 100 and 1,000 policies.
//!
//! Why: a server with many tenants or many tools must not pay for them on every call.
//! The target: from the smallest size to the largest the gate's median grows ≤ 1.2×.
//! Each case is an authorised HS256 call (verified in full: successes are not cached),
//! so the fixed cost is the token and the growth is the lookups.

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mcp_tenancy_benches::{self as b, Grown};
use mcp_tenancy_server::core::gate::{self, CallContext};
use mcp_tenancy_server::core::testing::NOW;
use mcp_tenancy_server::core::tools::Catalogue;
use serde_json::Map;
use std::hint::black_box;

fn series(c: &mut Criterion, name: &str, sizes: &[usize], grow: fn(usize) -> Grown, cedar: bool) {
    let mut group = c.benchmark_group(name);
    for &n in sizes {
        let g = grow(n);
        let catalogue = Catalogue::new(g.tools.clone());
        let (session, token) = g.session_and_token();
        let args = Map::new();
        let ctx = CallContext {
            session: &session,
            tool: g.tool,
            call_token: Some(&token),
            arguments: &args,
            now: NOW,
        };
        assert!(
            gate::check(&g.policy, &catalogue, &ctx).is_ok(),
            "the measured call is authorised"
        );
        group.bench_with_input(BenchmarkId::new("gate", n), &ctx, |bench, ctx| {
            bench.iter(|| black_box(gate::check(&g.policy, &catalogue, black_box(ctx)).is_ok()))
        });
        if cedar {
            peers::cedar(&mut group, &g, &catalogue, n);
        }
    }
    group.finish();
}

fn scaling_tenants(c: &mut Criterion) {
    series(
        c,
        "scaling_tenants",
        &[10, 100, 1_000, 10_000, 100_000],
        b::with_tenants,
        false,
    );
}

fn scaling_tools(c: &mut Criterion) {
    series(
        c,
        "scaling_tools",
        &[10, 100, 1_000, 10_000],
        b::with_tools_per_tenant,
        true,
    );
}

#[cfg(feature = "peers")]
mod peers {
    use super::*;
    use criterion::{BenchmarkGroup, measurement::WallTime};
    use mcp_tenancy_benches::peers::Cedar;

    /// Cedar's policy set grows with the tools (a policy per tool, 10 × `n` in all):
    /// measured while it holds at most 1,000 policies, as far as the time budget allows.
    pub fn cedar(
        group: &mut BenchmarkGroup<'_, WallTime>,
        g: &Grown,
        catalogue: &Catalogue,
        n: usize,
    ) {
        if g.tools.len() > 1_000 {
            return;
        }
        let cedar = Cedar::new(&g.policy, &g.tools);
        let request = Cedar::request(&g.tenant, "alice", g.tool);
        assert!(cedar.allows(&request));
        assert!(gate::entitled(
            &g.policy, catalogue, &g.tenant, "alice", g.tool
        ));
        group.bench_with_input(BenchmarkId::new("peer_cedar", n), &n, |bench, _| {
            bench.iter(|| black_box(cedar.allows(black_box(&request))))
        });
    }
}

#[cfg(not(feature = "peers"))]
mod peers {
    use super::*;
    use criterion::{BenchmarkGroup, measurement::WallTime};

    pub fn cedar(_: &mut BenchmarkGroup<'_, WallTime>, _: &Grown, _: &Catalogue, _: usize) {}
}

criterion_group! {
    name = benches;
    config = b::criterion();
    targets = scaling_tenants, scaling_tools
}
criterion_main!(benches);
