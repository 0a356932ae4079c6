//! The mutation matrix: the suite's power, measured on the reference server's
//! deliberate mistakes.
//!
//! For every mutant (`mcp-tenancy-server mutants`), start the server over Streamable
//! HTTP with `--mutant NAME`, run the checks of the mutant's property, and require at
//! least one to fail. The clean server runs every implemented check and must fail none.
//! The matrix (mutant × property, with the ids that caught it) is printed and written to
//! `target/mutation-matrix.md`; the README shows a copy.

use mcp_tenancy::catalogue::Filter;
use mcp_tenancy::client::Target;
use mcp_tenancy::model::{CheckResult, Outcome};
use mcp_tenancy::profile::Profile;
use mcp_tenancy::runner;
use mcp_tenancy_server::core::mutants::MUTANTS;

fn profile(mutant: Option<&str>) -> Profile {
    let path = mcp_tenancy_conformance::reference_profile("http");
    let mut profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    if let Some(name) = mutant {
        profile
            .target
            .command
            .extend(["--mutant".to_owned(), name.to_owned()]);
        profile.name = format!("{} — mutant {name}", profile.name);
    }
    profile
}

/// The property a mutant stands for: `T2.1` → `T2`.
fn property_of(check: &str) -> &str {
    check.split('.').next().unwrap_or(check)
}

async fn run(profile: Profile, only: &str, built: bool) -> Vec<CheckResult> {
    let target = Target::new(profile);
    if built {
        target.assume_built();
    } else {
        target
            .prepare()
            .await
            .unwrap_or_else(|e| panic!("cannot build the reference server: {e}"));
    }
    let filter = Filter::parse(only).expect("valid filter");
    let mut results = Vec::new();
    for def in runner::selected(&filter) {
        results.push(runner::run_check(&target, def).await);
    }
    target.shutdown().await;
    results
}

/// The checks that failed on an observation of their property (a crash or hang of the
/// mutant does not count as catching it).
fn caught(results: &[CheckResult]) -> Vec<&str> {
    results
        .iter()
        .filter(|r| runner::failed_on_property(r))
        .map(|r| r.id.as_str())
        .collect()
}

#[test]
fn every_mutant_fails_its_property_and_the_clean_server_fails_none() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let clean = run(profile(None), "", false).await;
        // The clean server must pass every check: a skip or a warning is not "fails none".
        let clean_failures: Vec<String> = clean
            .iter()
            .filter(|r| r.outcome != Outcome::Pass)
            .map(|r| {
                let why = r.error_message.clone().or(r.skip_reason.clone()).unwrap_or_default();
                format!("{} {} ({why})", r.id, r.outcome.label())
            })
            .collect();

        // The mutants run three at a time (each its own server; most checks wait on the
        // server more than they use the CPU), their rows in catalogue order.
        let mut all = Vec::new();
        for group in MUTANTS.chunks(3) {
            let runs = group
                .iter()
                .map(|m| run(profile(Some(m.name)), property_of(m.property), true));
            all.extend(mcp_tenancy::client::join_all(runs).await);
        }
        let mut rows = Vec::new();
        let mut uncaught = Vec::new();
        for (results, m) in all.into_iter().zip(MUTANTS) {
            let property = property_of(m.property);
            let caught_by = caught(&results);
            let ran = results.iter().filter(|r| r.outcome != Outcome::Skip).count();
            // A mutant named for one check (T2.5) must fail that check; one named for a
            // property (T1) any check of it.
            let named = m.property.contains('.');
            if caught_by.is_empty() || (named && !caught_by.contains(&m.property)) {
                uncaught.push(format!(
                    "{} (expected {} to fail; {ran} checks ran, failing on the property: {caught_by:?})",
                    m.name, m.property
                ));
            }
            let first = results
                .iter()
                .find(|r| runner::failed_on_property(r))
                .and_then(|r| r.error_message.clone())
                .unwrap_or_default();
            rows.push(format!(
                "| `{}` | {} | {} | {} | {} |",
                m.name,
                m.mistake,
                property,
                if caught_by.is_empty() { "**not caught**".to_owned() } else { caught_by.join(", ") },
                first.replace('|', "\\|").chars().take(140).collect::<String>()
            ));
        }
        let clean_row = format!(
            "| (clean server) | — | all | {} | {} checks, {} not passed |",
            if clean_failures.is_empty() { "none" } else { "**FAILED**" },
            clean.len(),
            clean_failures.len()
        );
        let matrix = format!(
            "| mutant | seed mistake | property | failing checks | first failure |\n|---|---|---|---|---|\n{}\n{clean_row}\n",
            rows.join("\n")
        );
        println!("{matrix}");
        let out = mcp_tenancy_conformance::workspace_root().join("target/mutation-matrix.md");
        let _ = std::fs::write(out, &matrix);
        assert!(clean_failures.is_empty(), "the clean server failed: {clean_failures:#?}");
        assert!(uncaught.is_empty(), "mutants the suite did not catch: {uncaught:#?}\n{matrix}");
    });
}
