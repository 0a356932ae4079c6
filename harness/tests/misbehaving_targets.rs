//! A target that crashes or hangs is a failed check carrying the tail of its stderr,
//! and the run goes on to the next check.

use mcp_tenancy::catalogue;
use mcp_tenancy::client::Target;
use mcp_tenancy::model::Outcome;
use mcp_tenancy::profile::Profile;
use mcp_tenancy::runner::{self, Quiet};
use std::path::Path;

fn target(command: &str) -> Target {
    let text = format!(
        "name = \"misbehaving\"\n[target]\ntransport = \"stdio\"\ncommand = [\"sh\", \"-c\", {command:?}]\n\
         [limits]\nrequest_timeout_ms = 400\nsilence_timeout_ms = 200\n"
    );
    Target::new(Profile::parse(&text, Path::new("misbehaving.toml")).expect("valid profile"))
}

fn checks(ids: &[&str]) -> Vec<&'static catalogue::CheckDef> {
    ids.iter()
        .map(|id| catalogue::check(id).expect("catalogue id"))
        .collect()
}

#[tokio::test]
async fn a_crashing_target_fails_each_check_with_its_stderr_and_the_run_goes_on() {
    let t = target("echo 'panicked at src/main.rs:1' >&2; exit 3");
    let report = runner::run(&t, &checks(&["T0.1", "T0.2"]), &mut Quiet).await;
    assert_eq!(
        report.checks.len(),
        2,
        "the run went on after the first crash"
    );
    for check in &report.checks {
        assert_eq!(check.outcome, Outcome::Fail, "{}", check.id);
        let message = check.error_message.clone().unwrap_or_default();
        assert!(message.contains("exited"), "{}: {message}", check.id);
        assert!(
            message.contains("panicked at src/main.rs:1"),
            "{}: {message}",
            check.id
        );
    }
}

#[tokio::test]
async fn a_silent_target_is_a_failure_not_a_pass() {
    // Reads every frame, answers none.
    let t = target("while read -r line; do :; done");
    let report = runner::run(&t, &checks(&["T0.1", "T0.2"]), &mut Quiet).await;
    for check in &report.checks {
        assert_eq!(check.outcome, Outcome::Fail, "{}", check.id);
        let message = check.error_message.clone().unwrap_or_default();
        assert!(
            message.contains("timed out") || message.contains("no answer"),
            "{}: {message}",
            check.id
        );
    }
}
