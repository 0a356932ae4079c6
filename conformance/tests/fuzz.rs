//! `mcp-tenancy fuzz` (black box) against the reference server over Streamable HTTP:
//! the correct server yields nothing; the `tenant-from-arguments` and
//! `nested-tenant-argument` mutants are found from arguments generated from the tools'
//! `inputSchema`s (no spelling table is involved), and each reproducer replays on a
//! fresh server — new sessions, call tokens minted afresh.

use mcp_tenancy::client::Target;
use mcp_tenancy::fuzz::{self, FuzzPlan, Kind, Progress, Step};
use mcp_tenancy::profile::Profile;
use std::time::Duration;

struct Quiet;

impl Progress for Quiet {
    fn note(&mut self, _: &str) {}
}

fn profile(mutant: Option<&str>) -> Profile {
    let path = mcp_tenancy_conformance::reference_profile("http");
    let mut profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    if let Some(name) = mutant {
        profile
            .target
            .command
            .extend(["--mutant".to_owned(), name.to_owned()]);
    }
    profile
}

fn plan(secs: u64, out: &str) -> FuzzPlan {
    FuzzPlan {
        time: Duration::from_secs(secs),
        seed: 20_261_204,
        out: std::env::temp_dir().join(format!(
            "mcp-tenancy-fuzz-test-{out}-{}",
            std::process::id()
        )),
    }
}

async fn fuzz(mutant: Option<&str>, secs: u64) -> fuzz::FuzzReport {
    let target = Target::new(profile(mutant));
    let path = mcp_tenancy_conformance::reference_profile("http");
    let report = fuzz::run(
        &target,
        &path,
        &plan(secs, mutant.unwrap_or("clean")),
        &mut Quiet,
    )
    .await
    .unwrap_or_else(|e| panic!("the fuzz run failed: {e}"));
    target.shutdown().await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_correct_server_yields_nothing() {
    let report = fuzz(None, 12).await;
    assert!(report.rounds > 20 && report.read_backs > 20, "{report:?}");
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert!(report.not_checked.is_empty(), "{:?}", report.not_checked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_arguments_are_found_from_the_schemas_and_replay_on_a_fresh_server() {
    for mutant in ["tenant-from-arguments", "nested-tenant-argument"] {
        let report = fuzz(Some(mutant), 30).await;
        let finding = report
            .findings
            .iter()
            .find(|f| f.kind == Kind::CrossTenantEffect)
            .unwrap_or_else(|| panic!("{mutant}: nothing found in {} rounds", report.rounds));
        let text = std::fs::read_to_string(&finding.reproducer).expect("the reproducer is written");
        let reproducer: fuzz::Reproducer = serde_json::from_str(&text).expect("a reproducer");
        // Shrunk to the calls that matter (a write and, at most, the read that shows
        // it), as templates: marker placeholders, no token.
        let calls: usize = reproducer
            .steps
            .iter()
            .map(|s| match s {
                Step::Calls(c) => c.len(),
                Step::Frame { .. } => 1,
            })
            .sum();
        assert!(
            (1..=2).contains(&calls),
            "{mutant}: shrunk to one or two calls: {text}"
        );
        let steps = serde_json::to_string(&reproducer.steps).expect("steps serialise");
        assert!(
            !steps.contains("mcpt-fuzz-") && !steps.contains("eyJ"),
            "{mutant}: the steps are templates (no marker, no token): {text}"
        );
        // A fresh server: new process, new sessions, new tokens.
        let target = Target::new(profile(Some(mutant)));
        let again = fuzz::replay(&target, &reproducer)
            .await
            .expect("the replay runs");
        target.shutdown().await;
        assert!(again.is_some(), "{mutant}: the reproducer replays: {text}");
        let clean = Target::new(profile(None));
        let not = fuzz::replay(&clean, &reproducer)
            .await
            .expect("the replay runs");
        clean.shutdown().await;
        assert!(
            not.is_none(),
            "{mutant}: the correct server does not reproduce it: {not:?}"
        );
    }
}
