//! Runs catalogue checks against a target and builds the [`RunReport`].

use crate::catalogue::{self, Applies, CheckDef, Filter};
use crate::checks::{self, Abort, Ctx};
use crate::client::{ClientError, Target};
use crate::model::{CheckResult, Observation, Obstacle, Outcome, PropertySummary, RunReport};
use crate::profile::Transport;
use crate::timefmt;
use std::time::{Duration, Instant, SystemTime};

/// Did `result` fail on an observation of its property, not (only) because the target
/// crashed, hung or refused a step, or the harness could not go on?
pub fn failed_on_property(result: &CheckResult) -> bool {
    result.outcome == Outcome::Fail
        && result
            .details
            .iter()
            .any(|o| o.outcome == Outcome::Fail && o.obstacle.is_none())
}

/// How long one check may run before it counts as hung.
pub const CHECK_DEADLINE: Duration = Duration::from_secs(300);

/// Receives progress as checks start and finish.
pub trait Progress {
    fn started(&mut self, index: usize, total: usize, def: &CheckDef);
    fn finished(&mut self, index: usize, total: usize, result: &CheckResult);
}

/// No progress output.
pub struct Quiet;

impl Progress for Quiet {
    fn started(&mut self, _: usize, _: usize, _: &CheckDef) {}
    fn finished(&mut self, _: usize, _: usize, _: &CheckResult) {}
}

/// The checks that flood the target: they run after every other check, so that what
/// they leave behind (sessions not yet expired, a server under strain) touches nothing
/// else the run observes.
pub const FLOODS: &[&str] = &["T0.6", "T5.8"];

/// The checks a filter selects that this harness implements, in catalogue order —
/// except the [`FLOODS`], which come last.
pub fn selected(filter: &Filter) -> Vec<&'static CheckDef> {
    let (mut calm, floods): (Vec<_>, Vec<_>) = catalogue::CHECKS
        .iter()
        .filter(|c| c.implemented() && filter.selects(c))
        .partition(|c| !FLOODS.contains(&c.id));
    calm.extend(floods);
    calm
}

/// Folds observations into one outcome: any fail → fail; else any warn → warn; no
/// passing or warning observation at all → fail (a check that saw nothing proves
/// nothing).
pub fn fold(observations: &[Observation]) -> Outcome {
    let any = |outcome: Outcome| observations.iter().any(|o| o.outcome == outcome);
    if any(Outcome::Fail) || !(any(Outcome::Pass) || any(Outcome::Warn)) {
        Outcome::Fail
    } else if any(Outcome::Warn) {
        Outcome::Warn
    } else {
        Outcome::Pass
    }
}

/// Runs one check and returns its result.
pub async fn run_check(target: &Target, def: &'static CheckDef) -> CheckResult {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut ctx = Ctx::new(target, def);
    let mut skip_reason = None;
    let mut not_applicable = false;
    let body = if def.applies == Applies::HttpOnly && target.transport() == Transport::Stdio {
        Err(Abort::Skip(format!(
            "{} applies to Streamable HTTP only; this target is stdio",
            def.id
        )))
    } else {
        match tokio::time::timeout(CHECK_DEADLINE, checks::run_body(&mut ctx)).await {
            Ok(r) => r,
            Err(_) => Err(Abort::Client(ClientError::Timeout {
                what: format!("for the whole of {}", def.id),
                after_ms: CHECK_DEADLINE.as_millis() as u64,
                stderr_tail: target.server_stderr().await,
            })),
        }
    };
    match body {
        Ok(()) => {}
        Err(Abort::Skip(reason)) => skip_reason = Some(reason),
        Err(Abort::NotApplicable(reason)) => {
            skip_reason = Some(reason);
            not_applicable = true;
        }
        // Already recorded as a failed observation.
        Err(Abort::ControlFailed) => {}
        Err(Abort::Client(e)) => {
            let (obstacle, expected) = match &e {
                ClientError::Refused(_) | ClientError::RateLimited { .. } => (
                    Obstacle::StepRefused,
                    "a valid session and read-back are served",
                ),
                ClientError::Harness(_) | ClientError::Launch(_) => (
                    Obstacle::Harness,
                    "the target starts and tokens can be minted",
                ),
                _ => (Obstacle::TargetDown, "answers within the time limit"),
            };
            ctx.obstacle(obstacle, expected, e.to_string())
        }
    }
    if let Some(e) = target.server_exit().await {
        ctx.obstacle(
            Obstacle::ServerDied,
            "still running after the check",
            e.to_string(),
        );
    }
    let observations = std::mem::take(&mut ctx.observations);
    // A check whose every case was skipped, each with its reason, had nothing to
    // observe on this target: a skip, not a failure to observe.
    if skip_reason.is_none()
        && !observations.is_empty()
        && observations.iter().all(|o| o.outcome == Outcome::Skip)
    {
        let reasons: Vec<String> = observations
            .iter()
            .map(|o| format!("{}: {}", o.case, o.actual.trim_start_matches("skipped: ")))
            .collect();
        skip_reason = Some(format!(
            "nothing to observe on this target — {}",
            reasons.join("; ")
        ));
    }
    // A check that stopped with a reason before any case held or failed is skipped,
    // whatever warnings it noted on the way (they stay in its details).
    let undecided = !observations
        .iter()
        .any(|o| matches!(o.outcome, Outcome::Pass | Outcome::Fail));
    let outcome = match &skip_reason {
        Some(_) if undecided && not_applicable => Outcome::NotApplicable,
        Some(_) if undecided => Outcome::Skip,
        _ => fold(&observations),
    };
    let firsts: Vec<&Observation> = observations
        .iter()
        .filter(|o| o.outcome == Outcome::Fail)
        .chain(observations.iter().filter(|o| o.outcome == Outcome::Warn))
        .collect();
    let error_message = match outcome {
        Outcome::Fail | Outcome::Warn => firsts
            .first()
            .map(|o| format!("{}: expected {}, got {}", o.case, o.expected, o.actual))
            .or_else(|| Some("the check made no observation".into())),
        _ => None,
    };
    let summarise = |pick: fn(&Observation) -> &str| {
        let mut ordered: Vec<&Observation> = firsts.clone();
        ordered.extend(
            observations
                .iter()
                .filter(|o| matches!(o.outcome, Outcome::Pass | Outcome::Skip)),
        );
        ordered
            .iter()
            .map(|o| format!("{}: {}", o.case, pick(o)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    CheckResult {
        id: def.id.to_owned(),
        name: def.name.to_owned(),
        description: def.requirement.to_owned(),
        status: outcome.official_status(),
        outcome,
        property: def.property().to_owned(),
        timestamp: timefmt::rfc3339(started_at),
        duration_ms: started.elapsed().as_millis() as u64,
        spec_references: def.spec_references(),
        expected: summarise(|o| &o.expected),
        actual: summarise(|o| &o.actual),
        skip_reason,
        error_message,
        details: observations,
        retries: ctx.transcript.retries(),
        transcript: ctx.transcript.frames(),
        expected_failure: None,
    }
}

/// Runs `checks` against `target` in order.
pub async fn run(
    target: &Target,
    checks: &[&'static CheckDef],
    progress: &mut dyn Progress,
) -> RunReport {
    let started_at = SystemTime::now();
    let started = Instant::now();
    let mut results = Vec::with_capacity(checks.len());
    for (i, def) in checks.iter().enumerate() {
        progress.started(i, checks.len(), def);
        let result = run_check(target, def).await;
        progress.finished(i, checks.len(), &result);
        results.push(result);
    }
    target.shutdown().await;
    RunReport {
        seed: target.seed,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        target: target.profile.name.clone(),
        profile: target.profile.path.display().to_string(),
        transport: target.transport().to_string(),
        started: timefmt::rfc3339(started_at),
        duration_ms: started.elapsed().as_millis() as u64,
        properties: summarise_properties(&results),
        checks: results,
    }
}

/// Counts by property, every property listed (T1–T7 read as the seed's checklist).
pub fn summarise_properties(results: &[CheckResult]) -> Vec<PropertySummary> {
    catalogue::PROPERTIES
        .iter()
        .map(|p| {
            let of = |o: Outcome| {
                results
                    .iter()
                    .filter(|r| r.property == p.id && r.outcome == o)
                    .count()
            };
            PropertySummary {
                id: p.id.to_owned(),
                title: p.title.to_owned(),
                pass: of(Outcome::Pass),
                fail: of(Outcome::Fail),
                skip: of(Outcome::Skip),
                warn: of(Outcome::Warn),
                not_applicable: of(Outcome::NotApplicable),
                not_implemented: catalogue::CHECKS
                    .iter()
                    .filter(|c| c.property() == p.id && !c.implemented())
                    .count(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(outcome: Outcome) -> Observation {
        Observation {
            case: "c".into(),
            outcome,
            expected: "e".into(),
            actual: "a".into(),
            obstacle: None,
        }
    }

    #[test]
    fn a_check_that_observed_nothing_fails() {
        assert_eq!(fold(&[]), Outcome::Fail);
        assert_eq!(fold(&[obs(Outcome::Skip)]), Outcome::Fail);
    }

    #[test]
    fn warnings_alone_are_a_warning_not_a_failure_to_observe() {
        assert_eq!(
            fold(&[obs(Outcome::Warn), obs(Outcome::Skip)]),
            Outcome::Warn
        );
    }

    #[test]
    fn fail_beats_warn_beats_pass() {
        assert_eq!(fold(&[obs(Outcome::Pass)]), Outcome::Pass);
        assert_eq!(
            fold(&[obs(Outcome::Pass), obs(Outcome::Warn)]),
            Outcome::Warn
        );
        assert_eq!(
            fold(&[obs(Outcome::Warn), obs(Outcome::Fail), obs(Outcome::Pass)]),
            Outcome::Fail
        );
    }
}
