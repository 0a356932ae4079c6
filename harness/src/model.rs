//! The result model every report is rendered from.
//!
//! One [`CheckResult`] per catalogue check and target. The JSON form is a superset of
//! the check shape of the official MCP conformance suite (`checks.json`: `id`, `name`,
//! `description`, `status`, `timestamp`, `specReferences`, `details`, `errorMessage`),
//! so tools that read theirs can read ours.

use serde::Serialize;

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
}

impl Outcome {
    /// The official suite's status vocabulary.
    pub fn official_status(self) -> &'static str {
        match self {
            Outcome::Pass => "SUCCESS",
            Outcome::Fail => "FAILURE",
            Outcome::Skip => "SKIPPED",
            Outcome::Warn => "WARNING",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Warn => "warn",
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

/// One exchange recorded for the report. Bodies are kept as text (lossy UTF-8 for
/// hostile frames) and truncated to a bound so a report stays readable.
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
}

/// One assertion inside a check: what the catalogue requires, what was seen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Observation {
    /// Short name of the case, e.g. `malformed JSON`.
    pub case: String,
    pub outcome: Outcome,
    pub expected: String,
    pub actual: String,
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
    /// Why the check could not run (only with `skip`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// Set when the check failed or warned: the first failing case in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    /// Per-case assertions.
    pub details: Vec<Observation>,
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
    pub properties: Vec<PropertySummary>,
    pub checks: Vec<CheckResult>,
}
