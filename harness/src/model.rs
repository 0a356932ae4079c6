//! The result model every report is rendered from.
//!
//! One [`CheckResult`] per catalogue check and target. The JSON form is a superset of
//! the check shape of the official MCP conformance suite (`checks.json`: `id`, `name`,
//! `description`, `status`, `timestamp`, `specReferences`, `details`, `errorMessage`),
//! so tools that read theirs can read ours.

use serde::Serialize;

/// What one call needs authorised: the tenant and principal acting, the tool, the
/// action and the resource. The profile says what a call needs ([`crate::profile::Profile::grant`]);
/// the token minter encodes it as the target's token contract says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub tenant: String,
    pub principal: String,
    pub tool: String,
    pub action: String,
    pub resource: String,
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Every assertion held, proved on the wire.
    Pass,
    /// At least one MUST-level assertion did not hold.
    Fail,
    /// The check could not run against this target; `skip_reason` says why.
    Skip,
    /// Only SHOULD-level deviations were seen.
    Warn,
    /// The check does not apply: what it tests is absent from the target, a finding
    /// another check already reports (e.g. no call tokens at all: T2.1). `skip_reason`
    /// names it; it is counted once, there.
    #[serde(rename = "not_applicable")]
    NotApplicable,
}

impl Outcome {
    /// The official suite's status vocabulary.
    pub fn official_status(self) -> &'static str {
        match self {
            Outcome::Pass => "SUCCESS",
            Outcome::Fail => "FAILURE",
            Outcome::Skip | Outcome::NotApplicable => "SKIPPED",
            Outcome::Warn => "WARNING",
        }
    }

    /// A key for machines and style sheets: `pass`, `fail`, `skip`, `warn`, `na`.
    pub fn key(self) -> &'static str {
        match self {
            Outcome::NotApplicable => "na",
            other => other.label(),
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Warn => "warn",
            Outcome::NotApplicable => "n/a",
        }
    }
}

/// A reference into a specification or into the kit's own catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpecReference {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Which way a frame travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Harness → target.
    Sent,
    /// Target → harness.
    Received,
    /// Something the harness observed that is not a frame (a timeout, an exit, stderr).
    Note,
}

/// One exchange recorded for the report. The body is kept as text to read (lossy
/// UTF-8 for hostile frames, cut at a bound so a report stays readable), and whenever
/// that text is not the frame exactly, the whole frame as bytes beside it (base64), so
/// that the hostile frames can be replayed and turned into fuzz seeds
/// (`mcp-tenancy seeds`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Frame {
    pub direction: Direction,
    /// Milliseconds since the check started.
    pub at_ms: u64,
    /// Which session / tenant the frame belongs to, e.g. `acme#1`.
    pub session: String,
    /// Transport detail: `stdio`, `POST /mcp → 200 text/event-stream`, …
    pub channel: String,
    pub body: String,
    /// The whole frame, standard base64, when `body` is cut or not its exact bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_base64: Option<String>,
}

impl Frame {
    /// The frame's exact bytes.
    pub fn bytes(&self) -> Vec<u8> {
        use base64::Engine as _;
        match &self.bytes_base64 {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_else(|_| self.body.clone().into_bytes()),
            None => self.body.clone().into_bytes(),
        }
    }
}

/// What the harness sent again during a check, for the report: rate-limited frames
/// re-sent after a back-off, and refused read-backs tried again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Retries {
    pub rate_limited: u32,
    pub read_back: u32,
}

impl Retries {
    pub fn is_none(&self) -> bool {
        self.rate_limited == 0 && self.read_back == 0
    }

    /// `3 rate-limited frames re-sent, 1 read-back retried`; empty when none.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.rate_limited > 0 {
            parts.push(format!(
                "{} rate-limited frame(s) re-sent after a back-off",
                self.rate_limited
            ));
        }
        if self.read_back > 0 {
            parts.push(format!("{} refused read-back(s) retried", self.read_back));
        }
        parts.join(", ")
    }
}

/// What kept a check from observing its property, when it was not the property: the
/// case a failure of the run itself is recorded under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Obstacle {
    /// The target crashed, hung or could not be reached mid-check.
    TargetDown,
    /// A launched server process died during the check.
    ServerDied,
    /// The target refused a step the check needs (a valid session, a read-back), or
    /// kept rate-limiting it.
    StepRefused,
    /// The harness itself could not go on (a launch, a token).
    Harness,
}

impl Obstacle {
    /// The case name reports show.
    pub fn case(self) -> &'static str {
        match self {
            Obstacle::TargetDown => "the target stays up and answers",
            Obstacle::ServerDied => "the server process stays up",
            Obstacle::StepRefused => "the target serves the steps the check needs",
            Obstacle::Harness => "the harness runs the check",
        }
    }
}

/// One assertion inside a check: what the catalogue requires, what was seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// Short name of the case, e.g. `malformed JSON`.
    pub case: String,
    pub outcome: Outcome,
    pub expected: String,
    pub actual: String,
    /// Set when the case records an obstacle to the check, not its property.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub obstacle: Option<Obstacle>,
}

/// The result of one catalogue check against one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// Stable catalogue id, e.g. `T0.2`.
    pub id: String,
    /// Short name, e.g. `json-rpc-error-codes`.
    pub name: String,
    /// The requirement (one-line MUST statement from the catalogue).
    pub description: String,
    /// Official-suite status vocabulary: SUCCESS / FAILURE / WARNING / SKIPPED.
    pub status: &'static str,
    /// Our outcome (`pass` / `fail` / `skip` / `warn`).
    pub outcome: Outcome,
    /// The property this check belongs to, e.g. `T0`.
    pub property: String,
    /// RFC 3339 UTC time the check started.
    pub timestamp: String,
    pub duration_ms: u64,
    pub spec_references: Vec<SpecReference>,
    /// Summary of what was expected (all cases).
    pub expected: String,
    /// Summary of what was seen (the failing cases first).
    pub actual: String,
    /// Why the check could not run (with `skip`), or why it does not apply (with
    /// `not_applicable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Set when the check failed or warned: the first failing case in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Per-case assertions.
    pub details: Vec<Observation>,
    /// What the harness sent again (rate limits, refused read-backs).
    pub retries: Retries,
    /// Every frame exchanged during the check.
    pub transcript: Vec<Frame>,
    /// Set when the outcome is listed in the expected-failures file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_failure: Option<String>,
}

/// A property (T0–T7) as the checklist shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertySummary {
    pub id: String,
    /// The seed's checklist line, e.g. "Dynamic, tenant-scoped tool lists".
    pub title: String,
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub warn: usize,
    /// Checks that do not apply (a finding counted by another check).
    #[serde(rename = "notApplicable")]
    pub not_applicable: usize,
    /// Checks of the property this version of the harness does not implement: while
    /// any remain, the property reads as *partial*, never as holding.
    #[serde(rename = "notImplemented")]
    pub not_implemented: usize,
}

/// A whole run against one target.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunReport {
    /// `mcp-tenancy` version that produced the report.
    pub tool_version: String,
    /// The target's display name (from the profile).
    pub target: String,
    /// Path of the profile that described the target.
    pub profile: String,
    /// `stdio` or `http`.
    pub transport: String,
    pub started: String,
    pub duration_ms: u64,
    /// The run's random seed: `--seed` with it replays the run's markers and orders.
    #[serde(default)]
    pub seed: u64,
    pub properties: Vec<PropertySummary>,
    pub checks: Vec<CheckResult>,
}
