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

/// Is process `pid` still running, 3 s after its group was told to stop? (A zombie
/// waiting for its reaper has stopped.)
fn alive(pid: &str) -> bool {
    let running = || {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .ok()
            .and_then(|s| s.rsplit(')').next().map(|r| r.trim_start().to_owned()))
            .is_some_and(|state| !state.starts_with('Z') && !state.starts_with('X'))
    };
    for _ in 0..150 {
        if !running() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}

/// Waits up to 5 s for the wrapper to write its child's pid.
fn pid_in(file: &Path) -> String {
    for _ in 0..250 {
        if let Ok(pid) = std::fs::read_to_string(file)
            && !pid.trim().is_empty()
        {
            return pid;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("the wrapper wrote no pid to {}", file.display());
}

#[tokio::test]
async fn what_a_wrapper_started_is_stopped_with_it_over_stdio_and_http() {
    let dir = std::env::temp_dir().join(format!("mcpt-group-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // stdio: a wrapper that starts a helper and then serves nothing.
    let stdio_pid = dir.join("stdio.pid");
    let t = target(&format!(
        "sleep 600 & echo $! > {}; while read -r line; do :; done",
        stdio_pid.display()
    ));
    runner::run(&t, &checks(&["T0.1"]), &mut Quiet).await;
    let helper = pid_in(&stdio_pid);
    assert!(
        !alive(&helper),
        "the stdio wrapper's helper {helper} outlived it"
    );

    // http: a launched wrapper that starts a helper, then a server that answers nothing
    // useful; it is stopped when the run ends.
    let http_pid = dir.join("http.pid");
    let text = format!(
        "name = \"wrapper\"\n[target]\ntransport = \"http\"\nurl = \"http://127.0.0.1:{{port}}/mcp\"\n\
         command = [\"sh\", \"-c\", \"sleep 600 & echo $! > {}; exec python3 -m http.server {{port}} --bind 127.0.0.1\"]\n\
         stop_grace_ms = 2000\n[limits]\nrequest_timeout_ms = 1000\n",
        http_pid.display()
    );
    let t = Target::new(Profile::parse(&text, Path::new("wrapper.toml")).unwrap());
    runner::run(&t, &checks(&["T0.1"]), &mut Quiet).await;
    let helper = pid_in(&http_pid);
    assert!(
        !alive(&helper),
        "the http wrapper's helper {helper} outlived it"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
