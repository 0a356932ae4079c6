//! `junit.xml`: one `<testsuite>` per property, one `<testcase>` per check, for CI
//! systems. Written by hand; every piece of report text goes through
//! [`escape_text`] / [`escape_attr`].

use super::{arrow, escape_attr, escape_text, groups};
use crate::model::{CheckResult, Outcome, RunReport};
use std::fmt::Write as _;

/// How a check reads in JUnit terms.
enum Kind {
    Passed,
    /// Passed, but with SHOULD-level warnings (noted in `<system-out>`).
    Warned,
    Failed,
    /// Skipped, with this message.
    Skipped(String),
    /// A failure listed as expected, with the listed reason: reported as skipped.
    ExpectedFailure(String),
}

impl Kind {
    fn of(c: &CheckResult) -> Kind {
        match (c.outcome, &c.expected_failure) {
            (Outcome::Pass, _) => Kind::Passed,
            (Outcome::Warn, _) => Kind::Warned,
            (Outcome::Fail, Some(reason)) => Kind::ExpectedFailure(reason.clone()),
            (Outcome::Fail, None) => Kind::Failed,
            (Outcome::Skip, _) => Kind::Skipped(
                c.skip_reason
                    .clone()
                    .unwrap_or_else(|| "skipped".to_owned()),
            ),
            (Outcome::NotApplicable, _) => Kind::Skipped(format!(
                "not applicable: {}",
                c.skip_reason.as_deref().unwrap_or("no reason given")
            )),
        }
    }
}

/// Renders the report as a JUnit XML document.
pub(crate) fn render(report: &RunReport) -> String {
    let kinds: Vec<Kind> = report.checks.iter().map(Kind::of).collect();
    let (failures, skipped) = tally(kinds.iter());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\" timestamp=\"{}\">",
        escape_attr(&format!("mcp-tenancy {}", report.target)),
        report.checks.len(),
        seconds(report.duration_ms),
        escape_attr(&report.started),
    );
    for group in groups(report) {
        let kinds: Vec<Kind> = group.checks.iter().map(|c| Kind::of(c)).collect();
        let (failures, skipped) = tally(kinds.iter());
        let time: u64 = group.checks.iter().map(|c| c.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\" timestamp=\"{}\">",
            escape_attr(&format!("{} {}", group.id, group.title)),
            group.checks.len(),
            seconds(time),
            escape_attr(&report.started),
        );
        for (check, kind) in group.checks.iter().zip(&kinds) {
            testcase(&mut out, check, kind);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// Counts failures and skips among `kinds`.
fn tally<'a>(kinds: impl Iterator<Item = &'a Kind>) -> (usize, usize) {
    kinds.fold((0, 0), |(f, s), k| match k {
        Kind::Failed => (f + 1, s),
        Kind::Skipped(_) | Kind::ExpectedFailure(_) => (f, s + 1),
        Kind::Passed | Kind::Warned => (f, s),
    })
}

/// Writes one `<testcase>` element.
fn testcase(out: &mut String, c: &CheckResult, kind: &Kind) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        escape_attr(&format!("{} {}", c.id, c.name)),
        escape_attr(&format!("mcp-tenancy.{}", c.property)),
        seconds(c.duration_ms),
    );
    match kind {
        Kind::Passed => out.push_str("/>\n"),
        Kind::Warned => {
            let mut text = format!("WARNING: {}\n\n", c.error_message.as_deref().unwrap_or(""));
            text.push_str(&failure_text(c));
            let _ = write!(
                out,
                ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                escape_text(&text)
            );
        }
        Kind::Failed => {
            let _ = write!(
                out,
                ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                escape_attr(c.error_message.as_deref().unwrap_or("failed")),
                c.status,
                escape_text(&failure_text(c)),
            );
            if !c.transcript.is_empty() {
                let _ = writeln!(
                    out,
                    "      <system-out>{}</system-out>",
                    escape_text(&transcript_text(c))
                );
            }
            out.push_str("    </testcase>\n");
        }
        Kind::ExpectedFailure(reason) => {
            // Skipped, but the failure stays readable.
            let _ = write!(
                out,
                ">\n      <skipped message=\"{}\">{}</skipped>\n    </testcase>\n",
                escape_attr(&format!("expected failure: {reason}")),
                escape_text(&failure_text(c)),
            );
        }
        Kind::Skipped(message) => {
            let _ = write!(
                out,
                ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                escape_attr(message)
            );
        }
    }
}

/// Requirement, expected, actual and every case, as plain text.
fn failure_text(c: &CheckResult) -> String {
    let mut text = format!(
        "Requirement: {}\n\nExpected:\n{}\n\nActual:\n{}\n",
        c.description, c.expected, c.actual
    );
    if !c.details.is_empty() {
        text.push_str("\nCases:\n");
        for o in &c.details {
            let _ = writeln!(
                text,
                "  [{}] {}: expected {}; got {}",
                o.outcome.label(),
                o.case,
                o.expected,
                o.actual
            );
        }
    }
    for r in &c.spec_references {
        let _ = writeln!(text, "Spec: {} {}", r.id, r.url.as_deref().unwrap_or(""));
    }
    text
}

/// The frames of a check, one header line and the body each.
fn transcript_text(c: &CheckResult) -> String {
    let mut text = String::new();
    for f in &c.transcript {
        let _ = writeln!(
            text,
            "{} +{} ms {} [{}]\n{}\n",
            arrow(f.direction),
            f.at_ms,
            f.session,
            f.channel,
            f.body
        );
    }
    text
}

/// Milliseconds as JUnit's decimal seconds.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::assert_well_formed;
    use super::*;
    use crate::report::sample_report;

    #[test]
    fn junit_is_well_formed_and_safe() {
        let xml = render(&sample_report());
        assert_well_formed(&xml);
        assert!(!xml.contains("<script>"));
        assert!(xml.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!xml.contains('\u{1b}') && !xml.contains('\0'));
    }

    #[test]
    fn junit_maps_outcomes() {
        let xml = render(&sample_report());
        assert!(xml.contains(
            "<testsuites name=\"mcp-tenancy reference &lt;server&gt;\" tests=\"7\" failures=\"2\" errors=\"0\" skipped=\"3\" time=\"1.234\""
        ));
        assert!(xml.contains(
            "<testsuite name=\"T0 Protocol baseline (robustness)\" tests=\"2\" failures=\"1\""
        ));
        assert!(xml.contains("<testsuite name=\"T3 Untrusted argument principle\" tests=\"0\""));
        assert!(xml.contains(
            "<testcase name=\"T0.1 initialize-lifecycle\" classname=\"mcp-tenancy.T0\" time=\"0.012\"/>"
        ));
        assert!(
            xml.contains("<failure message=\"malformed JSON: expected -32700, got &lt;/pre&gt;")
        );
        assert!(xml.contains("<skipped message=\"the profile declares no entitlements\"/>"));
        assert!(
            xml.contains("<skipped message=\"expected failure: clock skew not configurable yet\">")
        );
        assert!(xml.contains("<system-out>WARNING: refusal code: expected -32001, got -32603"));
        assert_eq!(xml.matches("<failure ").count(), 2);
        assert!(xml.contains("<skipped message=\"not applicable: the target takes no call tokens"));
    }
}
