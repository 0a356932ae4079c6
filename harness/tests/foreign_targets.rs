//! The checks against a server the kit did not write: `targets/notes_server.py`, a
//! small multi-tenant Python server with its own conventions (API keys, HS256 tokens with
//! `tid` / `sub` / `scope` / `jti` claims and no `kid`, issuer or action, integer ids,
//! SQLite). Each switch changes one convention — a rate limit, trace ids on every error,
//! an extra answer to an oversized line — and the checks must not fail on it; each flaw
//! must be caught. Needs `python3` (standard library only).

use mcp_tenancy::catalogue::{self, Filter};
use mcp_tenancy::client::Target;
use mcp_tenancy::model::{CheckResult, Outcome, RunReport};
use mcp_tenancy::profile::Profile;
use mcp_tenancy::runner::{self, Quiet};
use std::io::{Read, Write as _};
use std::path::Path;

/// The notes server as `profile` describes it, with `env` switched on.
fn notes(profile: &str, env: &[(&str, &str)], tweak: impl FnOnce(&mut Profile)) -> Target {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/targets")
        .join(profile);
    let mut p = Profile::load(&path).expect("the test profile is valid");
    for (k, v) in env {
        p.target.env.insert((*k).to_owned(), (*v).to_owned());
    }
    tweak(&mut p);
    Target::new(p)
}

async fn run(target: &Target, only: &str) -> RunReport {
    let checks = runner::selected(&Filter::parse(only).expect("a valid selection"));
    runner::run(target, &checks, &mut Quiet).await
}

fn check<'r>(report: &'r RunReport, id: &str) -> &'r CheckResult {
    report
        .checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} ran"))
}

/// Every check passed, warned or was skipped; a failure is shown with its cases.
fn clean(report: &RunReport) {
    let failed: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.outcome == Outcome::Fail)
        .map(|c| {
            let cases: Vec<String> = c
                .details
                .iter()
                .filter(|o| o.outcome == Outcome::Fail)
                .map(|o| format!("  {}: expected {}, got {}", o.case, o.expected, o.actual))
                .collect();
            format!("{} failed:\n{}", c.id, cases.join("\n"))
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{} — a false failure:\n{}",
        report.target,
        failed.join("\n")
    );
}

/// `id` warned, each warning on a case named by one of `cases`.
fn warns_only_on(report: &RunReport, id: &str, cases: &[&str]) {
    let c = check(report, id);
    assert_eq!(c.outcome, Outcome::Warn, "{id}: {:?}", c.error_message);
    for o in c.details.iter().filter(|o| o.outcome == Outcome::Warn) {
        assert!(
            cases.iter().any(|case| o.case.contains(case)),
            "{id} warned on {:?}: {}",
            o.case,
            o.actual
        );
    }
}

#[tokio::test]
async fn a_correct_server_with_other_conventions_passes_over_stdio_and_http() {
    let profiles = ["notes-stdio.toml", "notes-http.toml"];
    let targets: Vec<Target> = profiles.iter().map(|p| notes(p, &[], |_| {})).collect();
    // Both transports at once: each run mostly waits on its server.
    let reports =
        mcp_tenancy::client::join_all(targets.iter().map(|t| run(t, "T0,T1,T2,T3,T6"))).await;
    for (profile, report) in profiles.into_iter().zip(reports) {
        clean(&report);
        // The contract has no action or resource claim: the seed's reason, as a warning.
        warns_only_on(&report, "T2.3", &["binds the action", "binds the resource"]);
        // No kid and no issuer in the contract: neither is forged.
        let t25 = check(&report, "T2.5");
        assert_eq!(
            t25.outcome,
            Outcome::Pass,
            "{profile}: {:?}",
            t25.error_message
        );
        for forged in ["unknown kid", "another issuer"] {
            let case = t25
                .details
                .iter()
                .find(|o| o.case.contains(forged))
                .unwrap();
            assert_eq!(case.outcome, Outcome::Skip, "{forged}: {}", case.actual);
        }
        for id in [
            "T1.1", "T1.2", "T1.3", "T2.1", "T2.2", "T2.4", "T2.6", "T2.8", "T3.1", "T3.2", "T3.3",
            "T3.4", "T6.1", "T6.2", "T6.3",
        ] {
            assert_eq!(check(&report, id).outcome, Outcome::Pass, "{profile} {id}");
        }
        // Answers cannot cross between stdio processes; over HTTP they must not.
        let t64 = check(&report, "T6.4");
        let want = if profile.contains("http") {
            Outcome::Pass
        } else {
            Outcome::Skip
        };
        assert_eq!(t64.outcome, want, "{profile} T6.4: {:?}", t64.skip_reason);
    }
}

#[tokio::test]
async fn a_rate_limit_of_20_calls_per_second_is_honoured_with_and_without_pacing() {
    let limited = [("NOTES_RATE_LIMIT", "20")];
    // At 20 calls a second the run is capped to one tool per role: what is left out is
    // named in the report.
    let capped = |p: &mut Profile| p.coverage.max_tools_per_role = Some(1);
    // With the rate declared, the harness paces itself.
    let paced = notes("notes-stdio.toml", &limited, |p| {
        capped(p);
        p.limits.calls_per_second = Some(20.0)
    });
    // Without it, the limiter's answers ("rate limited: retry after 1s") are waited out.
    let unpaced = notes("notes-stdio.toml", &limited, capped);
    let (paced, unpaced) = tokio::join!(
        run(&paced, "T2.1,T3.2,T3.3,T6.1"),
        run(&unpaced, "T2.1,T3.2,T3.3,T6.1")
    );
    for report in [&paced, &unpaced] {
        clean(report);
        for c in &report.checks {
            assert_eq!(c.outcome, Outcome::Pass, "{}: {:?}", c.id, c.error_message);
        }
    }
    let t21 = check(&paced, "T2.1");
    assert!(
        t21.details.iter().any(|o| o.outcome == Outcome::Skip
            && o.case == "coverage: write tools of acme left out"
            && o.actual.contains("charge")),
        "the cap's omissions are reported: {:?}",
        t21.details
    );
    let retried: u32 = unpaced.checks.iter().map(|c| c.retries.rate_limited).sum();
    assert!(
        retried > 0,
        "the unpaced run met the rate limit and said so"
    );
}

#[tokio::test]
async fn a_rate_limited_flawed_server_still_has_its_flaw_caught() {
    let target = notes(
        "notes-stdio.toml",
        &[("NOTES_RATE_LIMIT", "20"), ("NOTES_FLAW", "scope-ignored")],
        |_| {},
    );
    let report = run(&target, "T2.3").await;
    let c = check(&report, "T2.3");
    assert_eq!(c.outcome, Outcome::Fail);
    assert!(
        c.details
            .iter()
            .any(|o| o.outcome == Outcome::Fail && o.case.contains("a token for")),
        "{:?}",
        c.error_message
    );
}

#[tokio::test]
async fn every_flaw_is_caught_by_the_check_of_its_property() {
    let flaws = [
        ("scope-ignored", "T2.3", "a token for"),
        ("scope-missing-wildcard", "T2.3", "scope claim missing"),
        ("list-only", "T6.1", "calls export"),
        ("tenant-arg", "T3.1", "globex"),
        // A list query without its tenant filter: the control write shows in the other
        // tenant's list, and that fails the check instead of skipping it.
        ("list-unfiltered", "T2.1", "stays in acme"),
        // The same leak, seen by a check about something else: every read-back is
        // searched for other tenants' markers.
        (
            "list-unfiltered",
            "T3.1",
            "leak: acme's data in what globex was shown",
        ),
        // The second write tool is not gated while the first is.
        (
            "charge-ungated",
            "T2.1",
            "charge by acme without a call token",
        ),
        // A refused read whose error hands over what it refused.
        (
            "refusal-with-data",
            "T2.1",
            "notes_list by acme without a call token",
        ),
        // The tenant from an object nested in the arguments.
        (
            "nested-tenant",
            "T3.4",
            "nested in the open property \"context\"",
        ),
        // A name folded after the gate, the token checked against the folded name.
        ("fold-names", "T6.3", "token naming export"),
        // Arguments validated before the entitlement: an existence oracle.
        (
            "validate-first",
            "T6.1",
            "calls export (a tool of globex) with invalid arguments",
        ),
        // A foreign tool refused 300 ms later than an unknown one.
        ("slow-foreign", "T6.1", "refusal latency"),
        // The second write tool skips its schema.
        (
            "charge-unvalidated",
            "T3.3",
            "charge: amount_cents: wrong type",
        ),
        // A list tool (only) takes the tenant from its arguments.
        (
            "list-tenant-arg",
            "T3.1",
            "notes_list: tenant_id names the other tenant",
        ),
        // Refusals alike in words, apart in their structured reason.
        ("reason-oracle", "T6.1", "calls export (a tool of globex)"),
        // The acting principal from a user_id argument.
        (
            "user-arg",
            "T3.1",
            "alice of acme calls charge with user_id",
        ),
    ];
    // Four servers at a time: each flaw is a server process of its own, mostly waiting.
    for group in flaws.chunks(4) {
        mcp_tenancy::client::join_all(
            group
                .iter()
                .map(|(flaw, id, case)| caught("notes-stdio.toml", flaw, id, case)),
        )
        .await;
    }
}

/// The notes server of `profile` with `flaw` switched on fails `id`, on a case whose
/// name contains `case`.
async fn caught(profile: &str, flaw: &str, id: &str, case: &str) {
    let target = notes(profile, &[("NOTES_FLAW", flaw)], |_| {});
    let report = run(&target, id).await;
    let c = check(&report, id);
    assert_eq!(c.outcome, Outcome::Fail, "{flaw} passed {id}");
    assert!(
        c.details
            .iter()
            .any(|o| o.outcome == Outcome::Fail && o.case.contains(case)),
        "{flaw}: {id} failed on another case: {:?} {:?}",
        c.error_message,
        c.details
    );
}

#[tokio::test]
async fn token_and_session_flaws_are_caught_by_their_checks() {
    let flaws = [
        // A call token not recorded when used.
        (
            "notes-stdio.toml",
            "replayable",
            "T2.8",
            "another session of acme",
        ),
        // Recorded per process: over stdio each session is a process of its own, over a
        // shared database.
        (
            "notes-stdio.toml",
            "replayable-elsewhere",
            "T2.8",
            "another session of acme",
        ),
        // A critical header extension nobody understands, taken as absent.
        ("notes-stdio.toml", "crit-ignored", "T2.5", "crit header"),
        // A session JWT ending years ahead.
        (
            "notes-jwt-http.toml",
            "session-unbounded",
            "T2.2",
            "beyond the declared maximum",
        ),
        // A GET stream held on after its bearer expired.
        (
            "notes-jwt-http.toml",
            "stream-unjudged",
            "T2.7",
            "a GET stream whose session bearer expires",
        ),
        // 403 for another tenant's live session, 404 for an unknown one.
        (
            "notes-http.toml",
            "session-oracle",
            "T2.7",
            "bearer on acme's live session id",
        ),
    ];
    // Three servers at a time (T2.7's stream case waits for its bearer to expire).
    for group in flaws.chunks(3) {
        mcp_tenancy::client::join_all(
            group
                .iter()
                .map(|(profile, flaw, id, case)| caught(profile, flaw, id, case)),
        )
        .await;
    }
}

#[tokio::test]
async fn flaws_only_http_can_have_are_caught_over_http() {
    for (flaw, id, case) in [
        // A proxy-style header picks the tenant.
        ("header-tenant", "T3.4", "HTTP header X-Tenant-Id"),
        // One table of pending requests keyed by the bare id, across sessions.
        ("shared-id-table", "T6.4", "same JSON-RPC id in flight"),
        // No session cap: the declared cap is exceeded, memory grows round after round.
        ("no-session-cap", "T5.8", "within the declared cap"),
        ("no-session-cap", "T5.8", "memory across the two rounds"),
        // A bounded owner table that forgets: an old session serves another bearer.
        (
            "session-fail-open",
            "T5.8",
            "first session with globex's bearer",
        ),
        // One request at a time: a stalled connection without credentials stalls all.
        ("single-threaded", "T0.6", "an authenticated tenant while"),
    ] {
        caught("notes-http.toml", flaw, id, case).await;
    }
}

#[tokio::test]
async fn a_correct_server_holds_under_floods_of_connections_and_sessions() {
    // Its own cap (429 with Retry-After past 300 sessions per principal), threads per
    // connection, 64 KiB per session: T0.6 and T5.8 pass, memory measured.
    let target = notes("notes-http.toml", &[], |_| {});
    let report = run(&target, "T0.6,T5.8").await;
    clean(&report);
    for id in ["T0.6", "T5.8"] {
        assert_eq!(check(&report, id).outcome, Outcome::Pass, "{id}");
    }
    let memory = check(&report, "T5.8")
        .details
        .iter()
        .find(|o| o.case.contains("memory"))
        .expect("memory judged");
    assert_eq!(memory.outcome, Outcome::Pass, "{}", memory.actual);
    // A profile that opts out is skipped with the reason, never passed.
    let target = notes("notes-http.toml", &[], |p| p.limits.flood = false);
    let report = run(&target, "T0.6,T5.8").await;
    for id in ["T0.6", "T5.8"] {
        let c = check(&report, id);
        assert_eq!(c.outcome, Outcome::Skip, "{id}");
        assert!(
            c.skip_reason
                .as_deref()
                .unwrap_or("")
                .contains("flood = false")
        );
    }
}

#[tokio::test]
async fn a_fresh_trace_id_on_every_error_is_not_an_existence_oracle() {
    let target = notes("notes-stdio.toml", &[("NOTES_TRACE_IDS", "1")], |_| {});
    let report = run(&target, "T0,T1,T2,T3,T6").await;
    clean(&report);
    let t61 = check(&report, "T6.1");
    assert_eq!(t61.outcome, Outcome::Pass, "{:?}", t61.error_message);
    assert!(
        t61.details.iter().any(|o| o
            .actual
            .contains("volatile members ignored: error.data.timestamp, error.data.traceId")),
        "the report says what was ignored"
    );
}

#[tokio::test]
async fn an_extra_null_id_error_after_an_oversized_line_warns_and_is_not_taken_for_the_next_answer()
{
    let target = notes("notes-stdio.toml", &[("NOTES_EXTRA_NULL", "1")], |_| {});
    let report = run(&target, "T0.3").await;
    warns_only_on(&report, "T0.3", &["one answer to oversized message"]);
}

#[tokio::test]
async fn a_server_silent_on_hostile_frames_fails_t0_3() {
    let target = notes("notes-stdio.toml", &[("NOTES_SILENT_HOSTILE", "1")], |p| {
        p.limits.request_timeout_ms = 1500
    });
    let report = run(&target, "T0.3").await;
    let c = check(&report, "T0.3");
    assert_eq!(c.outcome, Outcome::Fail);
    assert!(
        c.details
            .iter()
            .any(|o| o.outcome == Outcome::Fail && o.actual.contains("no answer")),
        "{:?}",
        c.error_message
    );
}

/// A server that answers 413 as soon as it has read the headers and closes: the answer
/// is read and judged, not reported as a broken pipe.
#[tokio::test]
async fn an_http_answer_sent_before_the_body_was_read_is_judged() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let body =
                r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"too large"}}"#;
            let answer = format!(
                "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes());
        }
    });
    let conn = mcp_tenancy::client::http::HttpConn::new(
        format!("http://127.0.0.1:{port}/mcp"),
        Vec::new(),
        "client",
        Default::default(),
    );
    for _ in 0..3 {
        let answer = conn
            .post(
                &vec![b'x'; 8 << 20],
                &[],
                std::time::Duration::from_secs(10),
            )
            .await
            .expect("the early answer is read");
        assert_eq!(answer.status, 413);
    }
}

#[test]
fn the_catalogue_knows_every_id_these_tests_use() {
    for id in [
        "T0.2", "T0.3", "T2.1", "T2.3", "T3.1", "T3.2", "T3.3", "T6.1", "T6.3",
    ] {
        assert!(
            catalogue::check(id).is_some_and(|c| c.implemented()),
            "{id}"
        );
    }
}

#[tokio::test]
async fn a_server_that_wants_every_request_signed_is_driven_through_the_profiles_signer() {
    let signed = [("NOTES_SIGNED", "1")];
    let target = notes("notes-http.toml", &signed, |p| {
        p.auth.sign = vec!["python3".into(), "sign.py".into()]
    });
    let report = run(&target, "T0.1,T0.4,T2.1,T2.7,T6.1").await;
    clean(&report);
    for c in &report.checks {
        assert_eq!(c.outcome, Outcome::Pass, "{}: {:?}", c.id, c.error_message);
    }
    // Without the signer the same server refuses every request: the signer is what
    // made the run possible.
    let unsigned = notes("notes-http.toml", &signed, |_| {});
    let report = run(&unsigned, "T0.1").await;
    assert_eq!(check(&report, "T0.1").outcome, Outcome::Fail);
}

/// The notes server where each principal has a key of its own that is its grant, and
/// calls carry no call token: the profile gives the keys per principal.
fn per_principal_keys(flaw: Option<&str>) -> Target {
    let mut env = vec![("NOTES_PRINCIPAL_KEYS", "1"), ("NOTES_CALL_TOKENS", "0")];
    if let Some(flaw) = flaw {
        env.push(("NOTES_FLAW", flaw));
    }
    notes("notes-stdio.toml", &env, |p| {
        p.tokens.placement = mcp_tenancy::profile::Placement::None;
        for tenant in &mut p.tenants {
            tenant.credential = None;
            for principal in &mut tenant.principals {
                principal.credential = Some(mcp_tenancy::profile::Secret::File(format!(
                    "{}-{}.key",
                    tenant.id, principal.id
                )));
            }
        }
    })
}

#[tokio::test]
async fn principals_with_keys_of_their_own_are_judged_by_their_keys() {
    let report = run(&per_principal_keys(None), "T1,T2,T3,T6").await;
    // No call tokens at all: T2.1 reports it, once; T2.2–T2.5 do not apply.
    assert_eq!(check(&report, "T2.1").outcome, Outcome::Fail);
    for id in ["T2.2", "T2.3", "T2.4", "T2.5"] {
        let c = check(&report, id);
        assert_eq!(
            c.outcome,
            Outcome::NotApplicable,
            "{id}: {:?}",
            c.skip_reason
        );
        assert!(
            c.skip_reason
                .as_deref()
                .unwrap_or("")
                .contains("takes no call tokens (T2.1"),
            "{id}: {:?}",
            c.skip_reason
        );
    }
    // The reader's key grants no charge, and that holds.
    let t26 = check(&report, "T2.6");
    assert_eq!(t26.outcome, Outcome::Pass, "{:?}", t26.error_message);
    assert!(
        t26.details
            .iter()
            .any(|o| o.case.contains("in its own session"))
    );
    for c in report.checks.iter().filter(|c| c.id != "T2.1") {
        assert_ne!(c.outcome, Outcome::Fail, "{}: {:?}", c.id, c.error_message);
    }
    let flawed = run(&per_principal_keys(Some("principal-ignored")), "T2.6").await;
    assert_eq!(check(&flawed, "T2.6").outcome, Outcome::Fail);
}

#[tokio::test]
async fn init_drafts_a_valid_profile_from_the_servers_tools() {
    use mcp_tenancy::init::{Reach, draft};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/targets");
    let script = dir.join("notes_server.py").display().to_string();
    let d = draft(
        &Reach::Command(vec!["python3".into(), script]),
        None,
        &[("NOTES_API_KEY".into(), "acme-key-1f3a".into())],
    )
    .await
    .expect("init reads the tools");
    assert_eq!(d.server, "notes-server");
    assert_eq!(
        d.tools,
        ["charge", "charges_list", "notes_create", "notes_list"]
    );
    let profile = Profile::parse(&d.text, &dir.join("draft.toml")).expect("the draft parses");
    let role = |t: &str| profile.tool(t).map(|s| s.role);
    use mcp_tenancy::profile::Role;
    assert_eq!(role("notes_create"), Some(Role::Write));
    assert_eq!(role("notes_list"), Some(Role::List));
    assert_eq!(
        profile
            .tool("notes_create")
            .unwrap()
            .tenant_argument
            .as_deref(),
        Some("tenant_id")
    );
}

#[tokio::test]
async fn refusals_answered_as_ordinary_results_warn_and_never_pass_a_leak() {
    let soft = [("NOTES_SOFT_REFUSALS", "1")];
    let report = run(&notes("notes-stdio.toml", &soft, |_| {}), "T2.1,T2.5").await;
    clean(&report);
    for id in ["T2.1", "T2.5"] {
        let c = check(&report, id);
        assert_eq!(c.outcome, Outcome::Warn, "{id}: {:?}", c.error_message);
        assert!(
            c.details
                .iter()
                .any(|o| o.outcome == Outcome::Warn && o.actual.contains("refused in effect")),
            "{id}: {:?}",
            c.error_message
        );
    }
    // The same answers from a server whose scope check is off: the write lands, and
    // that is a failure, not a warning.
    let flawed = [
        ("NOTES_SOFT_REFUSALS", "1"),
        ("NOTES_FLAW", "scope-ignored"),
    ];
    let report = run(&notes("notes-stdio.toml", &flawed, |_| {}), "T2.3").await;
    assert_eq!(check(&report, "T2.3").outcome, Outcome::Fail);
}

#[tokio::test]
async fn a_run_replays_with_its_seed() {
    let markers = |report: &RunReport| -> Vec<String> {
        report
            .checks
            .iter()
            .flat_map(|c| c.details.iter())
            .flat_map(|o| {
                // The part a replay repeats: up to the run's own salt (4 hex digits).
                o.actual
                    .match_indices("mcpt-")
                    .map(|(at, _)| o.actual[at..].chars().take(22).collect::<String>())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let first = notes("notes-stdio.toml", &[], |_| {}).with_seed(1234);
    let again = notes("notes-stdio.toml", &[], |_| {}).with_seed(1234);
    let other = notes("notes-stdio.toml", &[], |_| {}).with_seed(1235);
    let (a, b, c) = tokio::join!(
        run(&first, "T2.1"),
        run(&again, "T2.1"),
        run(&other, "T2.1")
    );
    assert_eq!(a.seed, 1234);
    assert!(!markers(&a).is_empty(), "T2.1 reports its markers");
    assert_eq!(markers(&a), markers(&b), "the same seed, the same markers");
    // ... each with the run's own salt, so that a replay writes records of its own.
    assert_ne!(first.salt, again.salt, "two runs, two salts");
    assert_ne!(markers(&a), markers(&c), "another seed, other markers");
}

#[tokio::test]
async fn a_tenant_without_write_tools_is_a_caller_too() {
    let target = notes("notes-readonly-stdio.toml", &[], |_| {});
    let report = run(&target, "T2.1,T6.1,T6.3").await;
    clean_report_has_initech(&report);
    let flawed = notes(
        "notes-readonly-stdio.toml",
        &[("NOTES_FLAW", "readonly-ungated")],
        |_| {},
    );
    let report = run(&flawed, "T6.1").await;
    let c = check(&report, "T6.1");
    assert_eq!(c.outcome, Outcome::Fail, "readonly-ungated passed T6.1");
    assert!(
        c.details
            .iter()
            .any(|o| o.outcome == Outcome::Fail && o.case.starts_with("initech calls")),
        "{:?}",
        c.details
    );
}

/// The clean server with a read-only tenant: no false failure, and initech was a
/// caller of every tool it lacks.
fn clean_report_has_initech(report: &RunReport) {
    clean(report);
    let t61 = check(report, "T6.1");
    for tool in ["notes_create", "charge", "export"] {
        assert!(
            t61.details.iter().any(|o| o.outcome == Outcome::Pass
                && o.case.starts_with(&format!("initech calls {tool} "))),
            "initech calls {tool}: {:?}",
            t61.details
        );
    }
}

/// The `tools/call` requests a check sent: (session, parsed frame).
fn calls_sent(c: &CheckResult) -> Vec<(String, serde_json::Value)> {
    c.transcript
        .iter()
        .filter(|f| f.direction == mcp_tenancy::model::Direction::Sent)
        .filter_map(|f| {
            let v: serde_json::Value = serde_json::from_str(&f.body).ok()?;
            (v.get("method")? == "tools/call").then(|| (f.session.clone(), v))
        })
        .collect()
}

/// The claims of a compact JWS (unverified: the test reads what the harness minted).
fn claims_of(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("three segments");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn the_new_frames_are_really_sent() {
    let target = notes("notes-http.toml", &[], |_| {});
    let report = run(&target, "T6.3,T6.4,T3.4").await;
    // T6.3: a spelling of another tenant's tool goes with a token naming the spelling
    // and with one naming the tool itself.
    let scopes: Vec<String> = calls_sent(check(&report, "T6.3"))
        .into_iter()
        .filter(|(_, f)| f["params"]["name"] == "EXPORT")
        .map(|(_, f)| {
            claims_of(f["params"]["_meta"]["com.example/authz"].as_str().unwrap())["scope"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(scopes.contains(&"EXPORT".to_owned()), "{scopes:?}");
    assert!(scopes.contains(&"export".to_owned()), "{scopes:?}");
    // Separator aliases are among the spellings.
    let names: Vec<String> = calls_sent(check(&report, "T6.3"))
        .into_iter()
        .filter_map(|(_, f)| f["params"]["name"].as_str().map(str::to_owned))
        .collect();
    for alias in ["notesCreate", "NotesCreate", "notes/create", "notes-create"] {
        assert!(names.iter().any(|n| n == alias), "{alias} sent");
    }
    // T6.4: the same ids, integers and strings, from sessions of two tenants.
    let t64 = calls_sent(check(&report, "T6.4"));
    for id in [serde_json::json!(7000), serde_json::json!("mcpt-request-1")] {
        let sessions: std::collections::BTreeSet<String> = t64
            .iter()
            .filter(|(_, f)| f["id"] == id)
            .map(|(s, _)| s.split('#').next().unwrap_or_default().to_owned())
            .collect();
        assert!(
            sessions.contains("acme") && sessions.contains("globex"),
            "id {id}: {sessions:?}"
        );
    }
    // T3.4: the victim's id nested in the open object, in params._meta and in a header.
    let t34 = calls_sent(check(&report, "T3.4"));
    assert!(
        t34.iter()
            .any(|(_, f)| f["params"]["arguments"]["context"]["tenant_id"] == "globex")
    );
    assert!(
        t34.iter()
            .any(|(_, f)| f["params"]["_meta"]["tenant_id"] == "globex")
    );
    // (Request headers are not kept in the transcript; the header case ran.)
    assert!(
        check(&report, "T3.4")
            .details
            .iter()
            .any(|o| o.case.contains("HTTP header X-Tenant-Id") && o.outcome == Outcome::Pass)
    );
}

#[tokio::test]
async fn a_session_jwt_is_forged_like_a_call_token() {
    let target = notes("notes-jwt-http.toml", &[], |_| {});
    let report = run(&target, "T2.7").await;
    clean(&report);
    let t27 = check(&report, "T2.7");
    assert_eq!(t27.outcome, Outcome::Pass, "{:?}", t27.details);
    caught(
        "notes-jwt-http.toml",
        "bearer-any-audience",
        "T2.7",
        "audience",
    )
    .await;
}

#[tokio::test]
async fn a_revoked_tool_that_still_runs_fails_t1_4() {
    let target = notes("notes-revocable-stdio.toml", &[], |_| {});
    let report = run(&target, "T1.4").await;
    let t14 = check(&report, "T1.4");
    assert_eq!(t14.outcome, Outcome::Pass, "{:?}", t14.details);
    caught(
        "notes-revocable-stdio.toml",
        "revoked-still-callable",
        "T1.4",
        "acme calls charge after the revocation",
    )
    .await;
}

#[tokio::test]
async fn a_target_without_a_principal_roster_is_judged_by_its_contract() {
    // No roster: any principal the issuer signed is taken; the profile says so.
    let open = [("NOTES_OPEN_PRINCIPALS", "1")];
    let no_roster = |p: &mut Profile| p.tokens.roster = false;
    let target = notes("notes-stdio.toml", &open, no_roster);
    let report = run(&target, "T2.4").await;
    clean(&report);
    let t24 = check(&report, "T2.4");
    assert!(
        t24.details
            .iter()
            .any(|o| o.outcome == Outcome::Skip && o.actual.contains("tokens.roster = false")),
        "{:?}",
        t24.details
    );
    // The tenant claim is still bound: a token of globex in acme's session is caught.
    let flawed = notes(
        "notes-stdio.toml",
        &[open[0], ("NOTES_FLAW", "tid-ignored")],
        no_roster,
    );
    let report = run(&flawed, "T2.4").await;
    let c = check(&report, "T2.4");
    assert_eq!(c.outcome, Outcome::Fail, "tid-ignored passed T2.4");
}

#[tokio::test]
async fn an_http_429_is_waited_out_and_its_resent_answer_taken() {
    // Unpaced: the server answers 429 with Retry-After; each frame goes again under an
    // id of its own, and that answer is the call's — T6.4's same-id rounds included.
    let target = notes("notes-http.toml", &[("NOTES_RATE_LIMIT", "10")], |_| {});
    let report = run(&target, "T2.1,T6.2,T6.4").await;
    clean(&report);
    for c in &report.checks {
        assert_eq!(c.outcome, Outcome::Pass, "{}: {:?}", c.id, c.details);
    }
    let retried: u32 = report.checks.iter().map(|c| c.retries.rate_limited).sum();
    assert!(retried > 0, "the run met the rate limit");
}
