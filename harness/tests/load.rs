//! `mcp-tenancy load` against the reference server over Streamable HTTP: a short run
//! counts every call and reads the server's CPU, and a run whose call tokens the
//! server refuses reports refusals — never successes; the server's published cache
//! counters come back as hit rates, and a paced profile's service latencies leave the
//! pacing wait out.

use mcp_tenancy::client::Target;
use mcp_tenancy::load::{self, Cpu, Level, LoadPlan, Progress, ServerStats};
use mcp_tenancy::profile::Profile;
use std::path::Path;
use std::time::Duration;

struct Quiet;

impl Progress for Quiet {
    fn phase(&mut self, _: &str) {}
    fn level(&mut self, _: &str, _: &Level) {}
}

fn reference() -> Profile {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/targets/reference-http.toml");
    Profile::load(&path).expect("the reference profile loads")
}

/// The reference profile with the server's counters published (`--publish-stats`).
fn publishing() -> Profile {
    let mut p = reference();
    p.target.command.push("--publish-stats".into());
    p.load.stats_url = Some("http://127.0.0.1:{port}/stats".into());
    p
}

fn plan(flood: Option<usize>) -> LoadPlan {
    LoadPlan {
        levels: vec![2],
        duration: Duration::from_millis(600),
        warmup: Duration::from_millis(100),
        tool: None,
        tenants: None,
        flood,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_load_counts_every_call_and_its_cpu_and_a_refused_token_is_never_a_success() {
    let target = Target::new(publishing());
    let report = load::run(&target, &plan(Some(2)), &mut Quiet)
        .await
        .expect("the load runs");
    target.shutdown().await;
    let level = &report.levels[0];
    assert!(level.calls > 0, "{level:?}");
    assert_eq!(
        (level.ok, level.refused, level.errors),
        (level.calls, 0, 0),
        "{level:?}"
    );
    let tenants: Vec<&str> = level.per_tenant.iter().map(|t| t.tenant.as_str()).collect();
    assert_eq!(
        tenants,
        ["acme", "globex"],
        "callers are spread over the tenants"
    );
    assert_eq!(
        level.per_tenant.iter().map(|t| t.calls).sum::<u64>(),
        level.calls
    );
    assert!(
        level
            .per_tenant
            .iter()
            .all(|t| t.p50_us > 0 && t.p50_us <= t.p99_us && t.p99_us <= t.max_us)
    );
    assert!(
        matches!(level.server_cpu, Cpu::Measured { cores } if cores > 0.0),
        "{:?}",
        level.server_cpu
    );
    let neighbour = report
        .neighbour
        .as_ref()
        .expect("two tenants: the neighbour phase runs");
    assert_eq!(
        (neighbour.quiet.as_str(), neighbour.noisy.as_str()),
        ("acme", "globex")
    );
    assert!(neighbour.p99_ratio > 0.0);
    // Every measured call presented a known bearer and a fresh call token: bearers are
    // found, call tokens never (only refused ones are remembered).
    let ServerStats::Published {
        counters,
        hit_rates,
    } = &level.server_stats
    else {
        panic!(
            "the server publishes its counters: {:?}",
            level.server_stats
        )
    };
    assert_eq!(
        hit_rates.get("verified_tokens.call"),
        Some(&0.0),
        "{counters:?}"
    );
    assert!(
        hit_rates
            .get("verified_tokens.bearer")
            .is_some_and(|r| *r > 0.9),
        "{counters:?}"
    );
    assert!(
        counters["verified_tokens.call_misses"] >= level.calls as f64 * 0.9,
        "a call token is looked up once per call: {counters:?} for {} calls",
        level.calls
    );
    assert!(
        level.per_tenant.iter().all(|t| t.service.is_none()),
        "an unpaced profile waits for nothing"
    );

    // Call tokens naming the wrong action: every call is refused, and said to be.
    let mut wrong = reference();
    wrong
        .tools
        .get_mut("notes_list")
        .expect("a notes_list spec")
        .action = Some("notes:write".into());
    let target = Target::new(wrong);
    let report = load::run(&target, &plan(None), &mut Quiet)
        .await
        .expect("the load runs");
    target.shutdown().await;
    let level = &report.levels[0];
    assert!(
        level.calls > 0 && level.ok == 0 && level.refused == level.calls,
        "{level:?}"
    );
    assert!(
        level
            .first_problem
            .as_deref()
            .is_some_and(|p| p.contains("Unauthorized")),
        "{level:?}"
    );
    assert!(report.neighbour.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paced_profile_reports_service_latency_without_the_wait_and_unpublished_stats_say_why() {
    let mut paced = reference();
    // Two callers per tenant at 40 calls/s a tenant: each call waits ≈ 25 ms for a slot.
    paced.limits.calls_per_second = Some(40.0);
    let target = Target::new(paced);
    let mut p = plan(None);
    p.levels = vec![4];
    let report = load::run(&target, &p, &mut Quiet)
        .await
        .expect("the load runs");
    target.shutdown().await;
    assert_eq!(report.paced_calls_per_second, Some(40.0));
    let level = &report.levels[0];
    assert!(level.per_second <= 2.0 * 40.0 * 1.1, "{level:?}");
    for t in &level.per_tenant {
        let service = t.service.as_ref().expect("paced calls waited");
        assert!(
            service.p50_us * 4 < t.p50_us && service.p50_us > 0,
            "the wait dominates a paced call's latency and is left out of its service time: {t:?}"
        );
    }
    assert!(
        matches!(&level.server_stats, ServerStats::NotPublished { reason } if reason.contains("stats_url")),
        "{:?}",
        level.server_stats
    );
}
