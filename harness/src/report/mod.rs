//! Reports rendered from a [`RunReport`]: JSON, JUnit XML, Markdown, a self-contained
//! HTML page, and a short plain-text summary for the terminal.
//!
//! Everything a target sends is hostile input. Every renderer escapes it for its own
//! format, and control characters (terminal escapes, NUL, …) are shown as visible
//! symbols instead of being passed through. Only the JSON report keeps the text exactly
//! as recorded (JSON string escaping is lossless).

mod html;
mod json;
mod junit;
mod markdown;

use crate::model::{CheckResult, Direction, Outcome, PropertySummary, RunReport};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Creates `dir` (and its parents) and writes `report.json`, `junit.xml`, `summary.md`
/// and `report.html` into it. Returns the paths written, in that order.
pub fn write_all(report: &RunReport, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let files = [
        ("report.json", json::render(report)?),
        ("junit.xml", junit::render(report)),
        ("summary.md", markdown::render(report)),
        ("report.html", html::render(report)),
    ];
    let mut written = Vec::with_capacity(files.len());
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// A short plain-text summary for the terminal: a table of counts by property, then one
/// line per failed or warned check (`T0.2 FAIL name — error message`) and one per
/// skipped check with its reason. Control characters from the target are neutralised.
pub fn summary_text(report: &RunReport) -> String {
    let groups = groups(report);
    let width = groups
        .iter()
        .map(|g| g.id.chars().count() + 1 + g.title.chars().count())
        .chain(["property".len()])
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "mcp-tenancy {} — {} ({}), started {}, took {}, seed {}",
        visible(&report.tool_version),
        visible(&report.target),
        visible(&report.transport),
        visible(&report.started),
        duration(report.duration_ms),
        report.seed
    );
    let _ = writeln!(
        out,
        "\n{:<width$}  pass  fail  warn  skip   n/a  verdict",
        "property"
    );
    for g in &groups {
        let c = g.counts;
        let name = visible(&format!("{} {}", g.id, g.title));
        let _ = writeln!(
            out,
            "{name:<width$}  {:>4}  {:>4}  {:>4}  {:>4}  {:>4}  {}",
            c.pass,
            c.fail,
            c.warn,
            c.skip,
            c.na,
            match (Verdict::of(c), c.unimplemented) {
                (Verdict::Partial, n) if n > 0 => format!(
                    "partial ({n} check{} not in this version)",
                    if n == 1 { "" } else { "s" }
                ),
                (v, _) => v.label().to_owned(),
            }
        );
    }
    let t = Counts::of(&report.checks);
    let _ = writeln!(
        out,
        "{:<width$}  {:>4}  {:>4}  {:>4}  {:>4}  {:>4}",
        "total", t.pass, t.fail, t.warn, t.skip, t.na
    );

    let mut problems = String::new();
    for c in &report.checks {
        let why = match c.outcome {
            Outcome::Pass => continue,
            Outcome::Fail | Outcome::Warn => c.error_message.as_deref().unwrap_or(""),
            Outcome::Skip | Outcome::NotApplicable => {
                c.skip_reason.as_deref().unwrap_or("no reason given")
            }
        };
        let _ = write!(
            problems,
            "{} {} {} — {}",
            visible(&c.id),
            c.outcome.label().to_uppercase(),
            visible(&c.name),
            visible(&one_line(why, 200))
        );
        if let Some(reason) = &c.expected_failure {
            let _ = write!(
                problems,
                " (expected failure: {})",
                visible(&one_line(reason, 120))
            );
        }
        problems.push('\n');
    }
    if !problems.is_empty() {
        out.push('\n');
        out.push_str(&problems);
    }
    let retried: Vec<String> = report
        .checks
        .iter()
        .filter(|c| !c.retries.is_none())
        .map(|c| format!("{} ({})", visible(&c.id), c.retries.describe()))
        .collect();
    if !retried.is_empty() {
        let _ = writeln!(out, "\nretries: {}", retried.join("; "));
    }
    out
}

/// Pass / fail / skip / warn counts, of a property or of a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub warn: usize,
    /// Not applicable: a finding another check counts.
    #[serde(rename = "notApplicable")]
    pub na: usize,
    /// Checks of a property this version does not implement.
    #[serde(skip)]
    pub unimplemented: usize,
}

impl Counts {
    /// Counts the outcomes of `checks`.
    pub fn of<'a>(checks: impl IntoIterator<Item = &'a CheckResult>) -> Counts {
        let mut counts = Counts::default();
        for c in checks {
            match c.outcome {
                Outcome::Pass => counts.pass += 1,
                Outcome::Fail => counts.fail += 1,
                Outcome::Skip => counts.skip += 1,
                Outcome::Warn => counts.warn += 1,
                Outcome::NotApplicable => counts.na += 1,
            }
        }
        counts
    }

    /// The counts a [`PropertySummary`] carries.
    pub fn of_property(p: &PropertySummary) -> Counts {
        Counts {
            pass: p.pass,
            fail: p.fail,
            skip: p.skip,
            warn: p.warn,
            na: p.not_applicable,
            unimplemented: p.not_implemented,
        }
    }

    /// All checks counted.
    pub fn total(self) -> usize {
        self.pass + self.fail + self.skip + self.warn + self.na
    }
}

/// How a property reads on the security checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Every check ran and passed.
    Holds,
    /// At least one check failed.
    Broken,
    /// No failure, but at least one SHOULD-level warning.
    Warnings,
    /// Nothing ran: every check was skipped, or none was selected.
    NotChecked,
    /// Every check that ran passed, but some were skipped, or this version does not
    /// implement them all.
    Partial,
}

impl Verdict {
    /// The verdict for a property with these counts (see [`Counts::of_property`]).
    pub fn of(c: Counts) -> Verdict {
        if c.fail > 0 {
            Verdict::Broken
        } else if c.pass + c.warn == 0 {
            Verdict::NotChecked
        } else if c.warn > 0 {
            Verdict::Warnings
        } else if c.skip > 0 || c.unimplemented > 0 {
            Verdict::Partial
        } else {
            Verdict::Holds
        }
    }

    /// Plain words, e.g. `holds`, `not checked`.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Broken => "broken",
            Verdict::Warnings => "warnings",
            Verdict::NotChecked => "not checked",
            Verdict::Partial => "partial",
        }
    }

    /// A symbol to put before the label.
    pub fn symbol(self) -> &'static str {
        match self {
            Verdict::Holds => "✅",
            Verdict::Broken => "❌",
            Verdict::Warnings => "⚠️",
            Verdict::NotChecked => "⏭",
            Verdict::Partial => "◐",
        }
    }

    /// A token usable as a CSS class, e.g. `not-checked`.
    pub fn key(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Broken => "broken",
            Verdict::Warnings => "warnings",
            Verdict::NotChecked => "not-checked",
            Verdict::Partial => "partial",
        }
    }
}

/// The checks of one property, as the reports show them.
pub(crate) struct Group<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub counts: Counts,
    pub checks: Vec<&'a CheckResult>,
}

/// Title of a group made for checks whose property is missing from `report.properties`.
const UNLISTED_TITLE: &str = "(property not in the checklist)";

/// Checks grouped by property: one group per entry of `report.properties`, in that
/// order, with the summary's counts; then, so that no check is ever dropped from a
/// report, one group per property id that has checks but no summary (counted from the
/// checks). Checks keep their order within a group.
pub(crate) fn groups(report: &RunReport) -> Vec<Group<'_>> {
    let mut groups: Vec<Group<'_>> = report
        .properties
        .iter()
        .map(|p| Group {
            id: &p.id,
            title: &p.title,
            counts: Counts::of_property(p),
            checks: report
                .checks
                .iter()
                .filter(|c| c.property == p.id)
                .collect(),
        })
        .collect();
    let listed = groups.len();
    for c in &report.checks {
        if groups[..listed].iter().any(|g| g.id == c.property) {
            continue;
        }
        match groups[listed..].iter_mut().find(|g| g.id == c.property) {
            Some(g) => g.checks.push(c),
            None => groups.push(Group {
                id: &c.property,
                title: UNLISTED_TITLE,
                counts: Counts::default(),
                checks: vec![c],
            }),
        }
    }
    for g in &mut groups[listed..] {
        g.counts = Counts::of(g.checks.iter().copied());
    }
    groups
}

/// Replaces characters that must not reach a terminal, a Markdown file or an XML 1.0
/// document with visible stand-ins: C0 controls other than tab, newline and carriage
/// return become their Control Pictures (NUL → `␀`, ESC → `␛`), DEL becomes `␡`, and
/// C1 controls and the non-characters U+FFFE / U+FFFF become `�`.
pub(crate) fn visible(s: &str) -> String {
    s.chars().map(visible_char).collect()
}

fn visible_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        '\0'..='\u{1f}' => char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}'),
        '\u{7f}' => '\u{2421}',
        '\u{80}'..='\u{9f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
        _ => c,
    }
}

/// Escapes text for the content of an HTML or XML element (after [`visible`]).
pub(crate) fn escape_text(s: &str) -> String {
    escape(s, false)
}

/// Escapes text for a double- or single-quoted HTML or XML attribute value (after
/// [`visible`]); tabs and line breaks are written as character references so XML
/// attribute normalisation keeps them.
pub(crate) fn escape_attr(s: &str) -> String {
    escape(s, true)
}

fn escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars().map(visible_char) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' if attribute => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
    out
}

/// The first non-blank line of `s`, trimmed and cut to `max_chars` characters; `…`
/// marks a cut or further lines. Not escaped.
pub(crate) fn one_line(s: &str, max_chars: usize) -> String {
    let mut lines = s.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    let mut out: String = first.chars().take(max_chars).collect();
    if out.len() < first.len() || lines.next().is_some() {
        out.push('…');
    }
    out
}

/// A duration for people: `850 ms`, `12.3 s`.
pub(crate) fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// The arrow shown before a frame: `→` sent, `←` received, `·` a note.
pub(crate) fn arrow(d: Direction) -> &'static str {
    match d {
        Direction::Sent => "→",
        Direction::Received => "←",
        Direction::Note => "·",
    }
}

/// Test fixtures and a minimal XML well-formedness checker shared by the renderers'
/// tests.
#[cfg(test)]
pub(crate) mod fixture {
    use crate::model::{
        CheckResult, Direction, Frame, Observation, Outcome, PropertySummary, RunReport,
        SpecReference,
    };

    /// A body a hostile target might send: markup, a terminal escape, NUL, DEL, a C1 CSI.
    pub const HOSTILE: &str = "</pre><script>alert(1)</script>\u{1b}[31m red \u{0} nul \u{7f} \u{9b}2J & 'q' \"d\" | ``` ]]>";

    fn check(id: &str, name: &str, outcome: Outcome) -> CheckResult {
        CheckResult {
            id: id.into(),
            name: name.into(),
            description: format!("requirement of {id}"),
            status: outcome.official_status(),
            outcome,
            property: id[..2].into(),
            timestamp: "2026-11-23T21:04:58Z".into(),
            duration_ms: 12,
            spec_references: vec![SpecReference {
                id: "MCP-LIFECYCLE".into(),
                url: Some("https://modelcontextprotocol.io/specification".into()),
            }],
            expected: "case: as required".into(),
            actual: "case: as required".into(),
            skip_reason: None,
            error_message: None,
            details: vec![Observation {
                case: "case".into(),
                outcome,
                expected: "as required".into(),
                actual: "as required".into(),
                obstacle: None,
            }],
            retries: Default::default(),
            transcript: vec![Frame {
                direction: Direction::Sent,
                at_ms: 0,
                session: "acme#1".into(),
                channel: "stdio".into(),
                body: r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#.into(),
                bytes_base64: None,
            }],
            expected_failure: None,
        }
    }

    fn property(
        id: &str,
        title: &str,
        pass: usize,
        fail: usize,
        skip: usize,
        warn: usize,
    ) -> PropertySummary {
        PropertySummary {
            id: id.into(),
            title: title.into(),
            pass,
            fail,
            skip,
            warn,
            not_applicable: 0,
            not_implemented: 0,
        }
    }

    /// A run with a pass, a fail whose transcript and actual text are hostile, a skip,
    /// a warn and an expected failure, over four properties (T3 with no checks).
    pub fn sample_report() -> RunReport {
        let pass = check("T0.1", "initialize-lifecycle", Outcome::Pass);

        let mut fail = check("T0.2", "json-rpc-error-codes", Outcome::Fail);
        fail.expected = "malformed JSON: -32700\nunknown method: -32601".into();
        fail.actual = format!("malformed JSON: got {HOSTILE}\nunknown method: -32601");
        fail.error_message = Some(format!("malformed JSON: expected -32700, got {HOSTILE}"));
        fail.details = vec![
            Observation {
                case: "malformed JSON".into(),
                outcome: Outcome::Fail,
                expected: "-32700".into(),
                actual: HOSTILE.into(),
                obstacle: None,
            },
            Observation {
                case: "unknown method".into(),
                outcome: Outcome::Pass,
                expected: "-32601".into(),
                actual: "-32601".into(),
                obstacle: None,
            },
        ];
        fail.transcript.push(Frame {
            direction: Direction::Received,
            at_ms: 3,
            session: "acme#1".into(),
            channel: "stdio".into(),
            body: HOSTILE.into(),
            bytes_base64: None,
        });
        fail.transcript.push(Frame {
            direction: Direction::Note,
            at_ms: 5,
            session: "acme#1".into(),
            channel: "stderr".into(),
            body: "server said \u{1b}[2K goodbye".into(),
            bytes_base64: None,
        });

        let mut skip = check("T1.1", "list-exactly-entitled", Outcome::Skip);
        skip.skip_reason = Some("the profile declares no entitlements".into());
        skip.expected = String::new();
        skip.actual = String::new();
        skip.details.clear();
        skip.transcript.clear();

        let mut warn = check("T2.1", "call-token-required", Outcome::Warn);
        warn.error_message = Some("refusal code: expected -32001, got -32603".into());
        warn.details[0].case = "refusal code".into();

        let mut expected = check("T2.2", "token-lifetime-bounded", Outcome::Fail);
        expected.error_message = Some("expired token: expected refused, got accepted".into());
        expected.expected_failure = Some("clock skew not configurable yet".into());

        let mut na = check("T2.3", "token-scope-enforced", Outcome::NotApplicable);
        na.skip_reason = Some(
            "the target takes no call tokens (T2.1: notes_create was served without one), so scoping a call cannot be tested".into(),
        );
        na.expected = String::new();
        na.actual = String::new();
        na.details.clear();
        na.transcript.clear();

        // Warned for a named reason, after retries the rate limiter asked for; and a
        // read-back the target refused, an obstacle rather than a finding.
        let mut retried = check("T2.4", "token-bound-to-tenant", Outcome::Fail);
        retried.retries = crate::model::Retries {
            rate_limited: 3,
            read_back: 1,
        };
        retried.details.push(Observation {
            case: crate::model::Obstacle::StepRefused.case().into(),
            outcome: Outcome::Fail,
            expected: "a valid session and read-back are served".into(),
            actual: "the read-back through acme's notes_list failed for 10012 ms".into(),
            obstacle: Some(crate::model::Obstacle::StepRefused),
        });
        retried.error_message = Some(format!(
            "{}: expected a valid session and read-back are served, got the read-back through acme's notes_list failed for 10012 ms",
            crate::model::Obstacle::StepRefused.case()
        ));

        RunReport {
            seed: 42,
            tool_version: "0.1.0".into(),
            target: "reference <server>".into(),
            profile: "profiles/reference.toml".into(),
            transport: "stdio".into(),
            started: "2026-11-23T21:04:58Z".into(),
            duration_ms: 1234,
            properties: vec![
                property("T0", "Protocol baseline (robustness)", 1, 1, 0, 0),
                property("T1", "Dynamic, tenant-scoped tool lists", 0, 0, 1, 0),
                PropertySummary {
                    not_applicable: 1,
                    not_implemented: 0,
                    ..property("T2", "Call-level authorization tokens", 0, 2, 0, 1)
                },
                property("T3", "Untrusted argument principle", 0, 0, 0, 0),
            ],
            checks: vec![pass, fail, skip, warn, expected, na, retried],
        }
    }

    /// Panics unless `doc` is a well-formed XML document as far as this small checker
    /// can tell: one root element, balanced and properly nested tags, quoted
    /// attributes, no `<` in text or attribute values, only the five predefined or
    /// numeric entity references, and no character illegal in XML 1.0. The prolog, a
    /// doctype and comments are skipped.
    pub fn assert_well_formed(doc: &str) {
        let mut stack: Vec<&str> = Vec::new();
        let mut roots = 0;
        let mut rest = doc;
        while !rest.is_empty() {
            let next = rest.find('<').unwrap_or(rest.len());
            let text = &rest[..next];
            check_chars(text);
            assert!(
                !stack.is_empty() || text.trim().is_empty(),
                "text outside the root element: {text:?}"
            );
            rest = &rest[next..];
            if rest.is_empty() {
                break;
            }
            let skip_to = |end: &str| {
                rest.find(end)
                    .map(|i| i + end.len())
                    .expect("unterminated markup")
            };
            if rest.starts_with("<?") {
                rest = &rest[skip_to("?>")..];
            } else if rest.starts_with("<!--") {
                rest = &rest[skip_to("-->")..];
            } else if rest.starts_with("<!") {
                assert!(
                    stack.is_empty() && roots == 0,
                    "doctype inside the document"
                );
                rest = &rest[skip_to(">")..];
            } else if let Some(after) = rest.strip_prefix("</") {
                let end = after.find('>').expect("unterminated end tag");
                let name = after[..end].trim_end();
                assert_eq!(stack.pop(), Some(name), "mismatched end tag </{name}>");
                rest = &after[end + 1..];
            } else {
                rest = start_tag(&rest[1..], &mut stack, &mut roots);
            }
        }
        assert!(stack.is_empty(), "unclosed elements: {stack:?}");
        assert_eq!(roots, 1, "expected exactly one root element");
    }

    /// Parses a start tag after its `<`; returns what follows it.
    fn start_tag<'a>(tag: &'a str, stack: &mut Vec<&'a str>, roots: &mut usize) -> &'a str {
        let name_end = tag
            .find(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .expect("unterminated start tag");
        let name = &tag[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "-_:.".contains(c)),
            "bad element name {name:?}"
        );
        if stack.is_empty() {
            *roots += 1;
        }
        let mut rest = &tag[name_end..];
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix("/>") {
                return after;
            }
            if let Some(after) = rest.strip_prefix('>') {
                stack.push(name);
                return after;
            }
            let eq = rest.find('=').expect("attribute without a value");
            let attr = rest[..eq].trim_end();
            assert!(
                !attr.is_empty()
                    && attr
                        .chars()
                        .all(|c| c.is_alphanumeric() || "-_:".contains(c)),
                "bad attribute name {attr:?} in <{name}>"
            );
            rest = rest[eq + 1..].trim_start();
            let quote = rest.chars().next().expect("attribute value missing");
            assert!(
                quote == '"' || quote == '\'',
                "unquoted attribute {attr} in <{name}>"
            );
            let end = rest[1..].find(quote).expect("unterminated attribute value") + 1;
            let value = &rest[1..end];
            assert!(!value.contains('<'), "`<` in attribute {attr} of <{name}>");
            check_chars(value);
            rest = &rest[end + 1..];
        }
    }

    /// Checks entity references and XML 1.0 character legality in text.
    fn check_chars(text: &str) {
        for c in text.chars() {
            assert!(
                matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..),
                "character illegal in XML 1.0: {c:?}"
            );
        }
        let mut rest = text;
        while let Some(i) = rest.find('&') {
            let after = &rest[i + 1..];
            let end = after.find(';').expect("unterminated entity reference");
            let name = &after[..end];
            let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
                || name
                    .strip_prefix("#x")
                    .is_some_and(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
                || name
                    .strip_prefix('#')
                    .is_some_and(|d| !d.is_empty() && d.chars().all(|c| c.is_ascii_digit()));
            assert!(ok, "bad entity reference &{name};");
            rest = &after[end + 1..];
        }
    }
}

#[cfg(test)]
pub(crate) use fixture::sample_report;

#[cfg(test)]
mod tests {
    use super::fixture::{HOSTILE, assert_well_formed};
    use super::*;

    /// What users read, in every format, for one fixed run with every status (pass,
    /// fail, warn, skip, n/a, an expected failure, retries, an obstacle): a change to
    /// any of it shows in review as a snapshot diff (`cargo insta review`, or
    /// `INSTA_UPDATE=always cargo test -p mcp-tenancy --lib report`).
    #[test]
    fn every_format_reads_as_reviewed() {
        let report = fixture::sample_report();
        insta::with_settings!({
            description => "the fixed sample run of report::fixture, rendered",
            omit_expression => true,
        }, {
            insta::assert_snapshot!("report.json", json::render(&report).unwrap());
            insta::assert_snapshot!("junit.xml", junit::render(&report));
            insta::assert_snapshot!("summary.md", markdown::render(&report));
            insta::assert_snapshot!("report.html", html::render(&report));
            insta::assert_snapshot!("terminal.txt", summary_text(&report));
        });
    }

    #[test]
    fn verdicts_read_like_the_checklist() {
        let c = |pass, fail, skip, warn| Counts {
            pass,
            fail,
            skip,
            warn,
            na: 0,
            unimplemented: 0,
        };
        assert_eq!(Verdict::of(c(3, 0, 0, 0)), Verdict::Holds);
        // Every check that ran passed, but the version has not all of them: partial.
        let some_missing = Counts {
            unimplemented: 7,
            ..c(1, 0, 0, 0)
        };
        assert_eq!(Verdict::of(some_missing), Verdict::Partial);
        assert_eq!(Verdict::of(c(3, 1, 1, 1)), Verdict::Broken);
        assert_eq!(Verdict::of(c(3, 0, 1, 1)), Verdict::Warnings);
        assert_eq!(Verdict::of(c(0, 0, 4, 0)), Verdict::NotChecked);
        assert_eq!(Verdict::of(c(0, 0, 0, 0)), Verdict::NotChecked);
        assert_eq!(Verdict::of(c(2, 0, 1, 0)), Verdict::Partial);
    }

    #[test]
    fn escaping_neutralises_markup_and_controls() {
        let text = escape_text(HOSTILE);
        assert!(!text.contains('<') && !text.contains('\u{1b}') && !text.contains('\0'));
        assert!(text.contains("&lt;/pre&gt;&lt;script&gt;") && text.contains("␛[31m"));
        assert!(text.contains("␀") && text.contains("␡") && text.contains("\u{fffd}2J"));
        assert_eq!(escape_attr("a\"b'\n\t"), "a&quot;b&#39;&#10;&#9;");
        assert_eq!(escape_text("a\nb"), "a\nb");
        assert_eq!(visible("x\u{1b}y\tz"), "x␛y\tz");
    }

    #[test]
    fn one_line_cuts_and_marks() {
        assert_eq!(one_line("\n  first  \nsecond", 80), "first…");
        assert_eq!(one_line("abcdef", 3), "abc…");
        assert_eq!(one_line("é", 1), "é");
        assert_eq!(one_line("", 5), "");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
    }

    #[test]
    fn groups_follow_the_property_list_and_keep_unlisted_checks() {
        let mut report = sample_report();
        let mut stray = report.checks[0].clone();
        stray.id = "T9.1".into();
        stray.property = "T9".into();
        report.checks.push(stray);
        let groups = groups(&report);
        let ids: Vec<&str> = groups.iter().map(|g| g.id).collect();
        assert_eq!(ids, ["T0", "T1", "T2", "T3", "T9"]);
        assert_eq!(groups[0].checks.len(), 2);
        assert!(groups[3].checks.is_empty());
        assert_eq!(groups[4].title, UNLISTED_TITLE);
        assert_eq!(
            groups[4].counts,
            Counts {
                pass: 1,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn summary_text_lists_counts_problems_and_skips() {
        let text = summary_text(&sample_report());
        assert!(text.contains("T0 Protocol baseline (robustness)"));
        assert!(text.contains("T0.2 FAIL json-rpc-error-codes — malformed JSON: expected -32700"));
        assert!(text.contains("T2.1 WARN call-token-required — refusal code"));
        assert!(
            text.contains("T1.1 SKIP list-exactly-entitled — the profile declares no entitlements")
        );
        assert!(text.contains("(expected failure: clock skew not configurable yet)"));
        assert!(!text.contains('\u{1b}') && !text.contains('\0') && !text.contains('\u{9b}'));
        assert!(!text.contains("T0.1 PASS"));
    }

    #[test]
    fn write_all_writes_four_files() {
        let dir =
            std::env::temp_dir().join(format!("mcp-tenancy-report-test-{}", std::process::id()));
        let paths = write_all(&sample_report(), &dir.join("nested")).unwrap();
        let names: Vec<_> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["report.json", "junit.xml", "summary.md", "report.html"]
        );
        for p in &paths {
            assert!(std::fs::metadata(p).unwrap().len() > 0);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_checker_rejects_broken_xml() {
        assert_well_formed("<?xml version=\"1.0\"?>\n<a x=\"1\"><b/>t &amp; &#10;</a>\n");
        for bad in [
            "<a><b></a></b>",
            "<a>&nbsp;</a>",
            "<a>\u{1b}</a>",
            "<a x=1/>",
            "<a/><b/>",
            "<a>",
        ] {
            assert!(
                std::panic::catch_unwind(|| assert_well_formed(bad)).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
