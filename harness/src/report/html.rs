//! `report.html`: one self-contained page (inline CSS, no script, no external
//! resources). The security checklist first, then a section per property with every
//! check: requirement, expected vs actual, cases, and the transcript in a `<details>`.
//!
//! The page is written as well-formed XML (void elements self-closed) so the tests can
//! check its structure, and a Content-Security-Policy forbids scripts as a second line
//! of defence behind the escaping.

use super::{Counts, Group, Verdict, arrow, duration, escape_attr, escape_text, groups};
use crate::model::{CheckResult, Direction, Outcome, RunReport};
use std::fmt::Write as _;

const STYLE: &str = "
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', sans-serif;
  color: #1f2328; background: #fff; max-width: 1200px; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: .5rem; }
h2 { font-size: 1.3rem; border-bottom: 1px solid #d0d7de; padding-bottom: .25rem; margin-top: 2.5rem; }
h3 { font-size: 1.05rem; margin: 0 0 .5rem; }
h4 { font-size: .85rem; margin: .75rem 0 .25rem; color: #57606a; text-transform: uppercase; letter-spacing: .03em; }
a { color: #0969da; }
pre, code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace; font-size: 12.5px; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; border: 1px solid #d0d7de;
  border-radius: 4px; padding: .5rem .6rem; margin: 0; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
td pre { border: 0; padding: 0; background: none; }
table.meta { width: auto; }
table.meta th { font-weight: 600; }
.badge { display: inline-block; padding: 0 .55em; border-radius: 1em; font-size: .8rem; font-weight: 600;
  white-space: nowrap; border: 1px solid currentColor; vertical-align: middle; }
.pass, .holds { background: #dafbe1; color: #116329; }
.fail, .broken { background: #ffebe9; color: #a40e26; }
.warn, .warnings { background: #fff8c5; color: #7d4e00; }
.skip, .na, .not-checked { background: #eaeef2; color: #57606a; }
.partial { background: #ddf4ff; color: #0550ae; }
.xfail { background: #fbefff; color: #6e40c9; }
article.check { border: 1px solid #d0d7de; border-left: 6px solid #8c959f; border-radius: 6px;
  padding: .75rem 1rem; margin: 1rem 0; }
article.c-pass { border-left-color: #1a7f37; }
article.c-fail { border-left-color: #cf222e; }
article.c-warn { border-left-color: #bf8700; }
article.c-skip, article.c-na { border-left-color: #8c959f; }
.cid { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; color: #57606a; margin-right: .4rem; }
.muted { color: #57606a; font-size: .85rem; }
.sides { display: grid; grid-template-columns: 1fr 1fr; gap: .75rem; }
details { margin: .5rem 0; }
summary { cursor: pointer; font-weight: 600; color: #57606a; }
.frames td.dir { font-size: 1.1rem; text-align: center; width: 1.5rem; }
.frames tr.sent td.dir { color: #0969da; }
.frames tr.received td.dir { color: #1a7f37; }
.frames tr.note td.dir { color: #57606a; }
.frames td.at { white-space: nowrap; width: 5rem; }
.frames td.ch { width: 14rem; overflow-wrap: anywhere; }
@media (max-width: 800px) { .sides { grid-template-columns: 1fr; } }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  a { color: inherit; text-decoration: none; }
  article.check, tr { break-inside: avoid; }
  .badge { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
";

/// Renders the report as a self-contained HTML page.
pub(crate) fn render(report: &RunReport) -> String {
    let groups = groups(report);
    let total = Counts::of(&report.checks);
    let mut out = String::new();
    let title = escape_text(&format!("mcp-tenancy report: {}", report.target));
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"/>\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    out.push_str("<table class=\"meta\">\n");
    meta_row(&mut out, "Target", &escape_text(&report.target));
    meta_row(&mut out, "Transport", &escape_text(&report.transport));
    meta_row(&mut out, "Started", &escape_text(&report.started));
    meta_row(&mut out, "Duration", &duration(report.duration_ms));
    meta_row(&mut out, "Seed", &report.seed.to_string());
    meta_row(
        &mut out,
        "Profile",
        &format!("<code>{}</code>", escape_text(&report.profile)),
    );
    meta_row(
        &mut out,
        "Tool",
        &format!("mcp-tenancy {}", escape_text(&report.tool_version)),
    );
    meta_row(
        &mut out,
        "Checks",
        &format!(
            "{} — <span class=\"badge pass\">{} pass</span> <span class=\"badge fail\">{} fail</span> \
             <span class=\"badge warn\">{} warn</span> <span class=\"badge skip\">{} skip</span> \
             <span class=\"badge skip\">{} n/a</span>",
            total.total(),
            total.pass,
            total.fail,
            total.warn,
            total.skip,
            total.na
        ),
    );
    out.push_str("</table>\n");

    checklist(&mut out, &groups);
    for group in &groups {
        property_section(&mut out, group);
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// One row of the run's metadata table; `value` is already HTML.
fn meta_row(out: &mut String, label: &str, value: &str) {
    let _ = writeln!(out, "<tr><th>{label}</th><td>{value}</td></tr>");
}

/// A verdict badge.
fn verdict_badge(v: Verdict) -> String {
    format!(
        "<span class=\"badge {}\">{} {}</span>",
        v.key(),
        v.symbol(),
        v.label()
    )
}

/// The outcome badge of a check, plus an "expected failure" badge when listed as one.
fn status_badge(c: &CheckResult) -> String {
    let mut badge = format!(
        "<span class=\"badge {0}\">{1}</span>",
        c.outcome.key(),
        c.outcome.label().to_uppercase()
    );
    if let Some(reason) = &c.expected_failure {
        let _ = write!(
            badge,
            " <span class=\"badge xfail\">expected failure: {}</span>",
            escape_text(reason)
        );
    }
    badge
}

/// The security checklist: one row per property with its verdict and counts.
fn checklist(out: &mut String, groups: &[Group<'_>]) {
    out.push_str(
        "<h2 id=\"checklist\">Security checklist</h2>\n<table class=\"checklist\">\n\
         <tr><th>Property</th><th>Checklist item</th><th>Verdict</th>\
         <th>Pass</th><th>Fail</th><th>Warn</th><th>Skip</th><th>N/A</th></tr>\n",
    );
    for g in groups {
        let c = g.counts;
        let _ = writeln!(
            out,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
             <td class=\"n\">{}</td></tr>",
            escape_attr(&anchor("prop", g.id)),
            escape_text(g.id),
            escape_text(g.title),
            verdict_badge(Verdict::of(c)),
            c.pass,
            c.fail,
            c.warn,
            c.skip,
            c.na
        );
    }
    out.push_str("</table>\n");
}

/// A fragment id: `prefix-` then `id` with anything but ASCII letters, digits, `.`,
/// `_` and `-` replaced by `_`.
fn anchor(prefix: &str, id: &str) -> String {
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{prefix}-{safe}")
}

/// A section for one property and all its checks.
fn property_section(out: &mut String, g: &Group<'_>) {
    let _ = writeln!(
        out,
        "<section id=\"{}\">\n<h2>{} — {} {}</h2>",
        escape_attr(&anchor("prop", g.id)),
        escape_text(g.id),
        escape_text(g.title),
        verdict_badge(Verdict::of(g.counts))
    );
    if g.checks.is_empty() {
        out.push_str("<p class=\"muted\">No check of this property was run.</p>\n");
    }
    for c in &g.checks {
        check_article(out, c);
    }
    out.push_str("</section>\n");
}

/// Everything about one check.
fn check_article(out: &mut String, c: &CheckResult) {
    let _ = writeln!(
        out,
        "<article class=\"check c-{}\" id=\"{}\">\n<h3><span class=\"cid\">{}</span>{} {} \
         <span class=\"muted\">{}</span></h3>",
        c.outcome.key(),
        escape_attr(&anchor("check", &c.id)),
        escape_text(&c.id),
        escape_text(&c.name),
        status_badge(c),
        duration(c.duration_ms)
    );
    let _ = writeln!(
        out,
        "<p><strong>Requirement:</strong> {}</p>",
        escape_text(&c.description)
    );
    if !c.spec_references.is_empty() {
        out.push_str("<p class=\"muted\">Spec: ");
        for (i, r) in c.spec_references.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            match r.url.as_deref().filter(|u| is_web_url(u)) {
                Some(url) => {
                    let _ = write!(
                        out,
                        "<a href=\"{}\">{}</a>",
                        escape_attr(url),
                        escape_text(&r.id)
                    );
                }
                None => out.push_str(&escape_text(&r.id)),
            }
        }
        out.push_str("</p>\n");
    }
    if let Some(reason) = &c.skip_reason {
        let label = if c.outcome == Outcome::NotApplicable {
            "Not applicable"
        } else {
            "Skipped"
        };
        let _ = writeln!(
            out,
            "<p><strong>{label}:</strong> {}</p>",
            escape_text(reason)
        );
    }
    if !c.retries.is_none() {
        let _ = writeln!(
            out,
            "<p><strong>Retries:</strong> {}</p>",
            escape_text(&c.retries.describe())
        );
    }
    if let Some(message) = &c.error_message {
        let _ = writeln!(
            out,
            "<p><strong>First problem:</strong> {}</p>",
            escape_text(message)
        );
    }
    if !c.expected.is_empty() || !c.actual.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"sides\"><div><h4>Expected</h4><pre>{}</pre></div>\
             <div><h4>Actual</h4><pre>{}</pre></div></div>",
            escape_text(&c.expected),
            escape_text(&c.actual)
        );
    }
    cases(out, c);
    transcript(out, c);
    out.push_str("</article>\n");
}

/// Only `http:` and `https:` references become links; anything else stays text.
fn is_web_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://")
}

/// The per-case table, open when the check failed or warned.
fn cases(out: &mut String, c: &CheckResult) {
    if c.details.is_empty() {
        return;
    }
    let open = if matches!(c.outcome, Outcome::Fail | Outcome::Warn) {
        " open=\"open\""
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "<details{open}><summary>Cases ({})</summary>\n<table class=\"cases\">\n\
         <tr><th>Case</th><th>Outcome</th><th>Expected</th><th>Actual</th></tr>",
        c.details.len()
    );
    for o in &c.details {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td><span class=\"badge {}\">{}</span></td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
            escape_text(&o.case),
            o.outcome.key(),
            o.outcome.label(),
            escape_text(&o.expected),
            escape_text(&o.actual)
        );
    }
    out.push_str("</table>\n</details>\n");
}

/// The frames exchanged, collapsed: direction, time, session, channel, body.
fn transcript(out: &mut String, c: &CheckResult) {
    if c.transcript.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "<details><summary>Transcript ({} frames; → sent, ← received, · note)</summary>\n\
         <table class=\"frames\">\n<tr><th></th><th>Time</th><th>Session</th><th>Channel</th><th>Body</th></tr>",
        c.transcript.len()
    );
    for f in &c.transcript {
        let direction = match f.direction {
            Direction::Sent => "sent",
            Direction::Received => "received",
            Direction::Note => "note",
        };
        let _ = writeln!(
            out,
            "<tr class=\"{direction}\"><td class=\"dir\" title=\"{direction}\">{}</td><td class=\"at\">+{} ms</td>\
             <td class=\"mono\">{}</td><td class=\"ch mono\">{}</td><td><pre>{}</pre></td></tr>",
            arrow(f.direction),
            f.at_ms,
            escape_text(&f.session),
            escape_text(&f.channel),
            escape_text(&f.body)
        );
    }
    out.push_str("</table>\n</details>\n");
}

#[cfg(test)]
mod tests {
    use super::super::fixture::assert_well_formed;
    use super::*;
    use crate::report::sample_report;

    #[test]
    fn html_escapes_hostile_bodies() {
        let html = render(&sample_report());
        assert!(
            !html.contains("<script"),
            "a hostile <script> reached the page"
        );
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains('\u{1b}') && !html.contains('\0') && !html.contains('\u{9b}'));
        assert!(html.contains("␛[31m"));
        assert!(html.contains("<title>mcp-tenancy report: reference &lt;server&gt;</title>"));
    }

    #[test]
    fn html_is_well_formed_and_self_contained() {
        let html = render(&sample_report());
        assert_well_formed(&html);
        for external in ["<link", "<img", "<iframe", "src=", "@import", "url("] {
            assert!(!html.contains(external), "external resource: {external}");
        }
    }

    #[test]
    fn html_opens_with_the_checklist_then_a_section_per_property() {
        let report = sample_report();
        let html = render(&report);
        let checklist = html
            .find("<h2 id=\"checklist\">Security checklist</h2>")
            .unwrap();
        let first_section = html.find("<section").unwrap();
        assert!(checklist < first_section);
        assert!(html.contains(
            "<td><a href=\"#prop-T0\">T0</a></td><td>Protocol baseline (robustness)</td>\
             <td><span class=\"badge broken\">❌ broken</span></td>"
        ));
        assert_eq!(html.matches("<section").count(), report.properties.len());
        assert_eq!(html.matches("<article").count(), report.checks.len());
        assert!(html.contains("<article class=\"check c-fail\" id=\"check-T0.2\">"));
        assert!(html.contains("<strong>Skipped:</strong> the profile declares no entitlements"));
        assert!(html.contains("expected failure: clock skew not configurable yet"));
        assert!(html.contains(
            "<a href=\"https://modelcontextprotocol.io/specification\">MCP-LIFECYCLE</a>"
        ));
        assert!(
            html.contains("<tr class=\"received\"><td class=\"dir\" title=\"received\">←</td>")
        );
        assert!(html.contains("No check of this property was run."));
    }

    #[test]
    fn only_web_urls_become_links() {
        assert!(is_web_url("HTTPS://example.org"));
        assert!(!is_web_url("javascript:alert(1)"));
        assert_eq!(anchor("check", "T0.2 \"x\""), "check-T0.2__x_");
    }
}
