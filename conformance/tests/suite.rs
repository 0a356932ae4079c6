//! The suite as `cargo test`: one test per catalogue check and target.
//!
//! ```text
//! cargo test -p mcp-tenancy-conformance                      # the reference server, stdio + HTTP
//! MCP_TENANCY_TARGET=my-server.toml cargo test -p mcp-tenancy-conformance   # relative to the workspace root
//! MCP_TENANCY_EXPECTED_FAILURES=known.toml MCP_TENANCY_TARGET=… cargo test -p mcp-tenancy-conformance
//! cargo test -p mcp-tenancy-conformance -- T0.3              # the usual name filter
//! ```
//!
//! A check that cannot run against the target is reported as ignored with its reason
//! (never as passed). A listed expected failure that fails is ignored with its reason;
//! one that passes fails the test (stale entry).

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use mcp_tenancy::catalogue::Filter;
use mcp_tenancy::client::Target;
use mcp_tenancy::expected::ExpectedFailures;
use mcp_tenancy::model::{CheckResult, Outcome};
use mcp_tenancy::profile::Profile;
use mcp_tenancy::runner;
use std::path::PathBuf;
use std::sync::Arc;

fn profiles() -> Vec<PathBuf> {
    match mcp_tenancy_conformance::path_from_env("MCP_TENANCY_TARGET") {
        Some(p) => vec![p],
        None => vec![
            mcp_tenancy_conformance::reference_profile("stdio"),
            mcp_tenancy_conformance::reference_profile("http"),
        ],
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Turns a check result into a test verdict.
fn verdict(result: &CheckResult, expected: Option<&str>) -> Result<Completion, Failed> {
    let explain = || {
        let mut text = format!("{} {} — {}\n", result.id, result.name, result.description);
        for d in &result.details {
            text.push_str(&format!(
                "  [{}] {}\n      expected: {}\n      actual:   {}\n",
                d.outcome.label(),
                d.case,
                d.expected,
                d.actual
            ));
        }
        text
    };
    match (result.outcome, expected) {
        (Outcome::Fail, Some(reason)) => Ok(Completion::ignored_with(format!(
            "expected failure: {reason}"
        ))),
        (Outcome::Fail, None) => Err(explain().into()),
        (Outcome::Pass | Outcome::Warn, Some(_)) => Err(format!(
            "listed as an expected failure but now {}: remove the entry\n{}",
            result.outcome.label(),
            explain()
        )
        .into()),
        (Outcome::Skip, _) => Ok(Completion::ignored_with(
            result
                .skip_reason
                .clone()
                .unwrap_or_else(|| "skipped".into()),
        )),
        (Outcome::NotApplicable, _) => Ok(Completion::ignored_with(format!(
            "not applicable: {}",
            result.skip_reason.as_deref().unwrap_or("no reason given")
        ))),
        (Outcome::Pass, None) => Ok(Completion::Completed),
        (Outcome::Warn, None) => {
            eprintln!("warning: {}", explain());
            Ok(Completion::Completed)
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let expected =
        mcp_tenancy_conformance::path_from_env("MCP_TENANCY_EXPECTED_FAILURES").map(|p| {
            ExpectedFailures::load(&p)
                .unwrap_or_else(|e| panic!("MCP_TENANCY_EXPECTED_FAILURES: {e}"))
        });
    let expected = Arc::new(expected);
    let mut trials = Vec::new();
    for path in profiles() {
        let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Build once per profile, not once per check.
        let built = if args.list {
            Ok(())
        } else {
            runtime()
                .block_on(Target::new(profile.clone()).prepare())
                .map_err(|e| e.to_string())
        };
        for def in runner::selected(&Filter::default()) {
            let profile = profile.clone();
            let built = built.clone();
            let expected = Arc::clone(&expected);
            let name = format!("{stem}::{} {}", def.id, def.name);
            trials.push(Trial::ignorable_test(name, move || {
                built.map_err(|e| format!("the target could not be built: {e}"))?;
                let target = Target::new(profile);
                target.assume_built();
                let result = runtime().block_on(async {
                    let result = runner::run_check(&target, def).await;
                    target.shutdown().await;
                    result
                });
                let reason = expected
                    .as_ref()
                    .as_ref()
                    .and_then(|e| e.expected.iter().find(|x| x.id == def.id))
                    .map(|x| x.reason.as_str());
                verdict(&result, reason)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
