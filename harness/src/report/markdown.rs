//! `summary.md`: the security checklist by property, a table of every check, then the
//! failures and warnings with requirement, expected and actual (h2spec style).

use super::{Counts, Verdict, duration, groups, one_line, visible};
use crate::model::{CheckResult, Outcome, RunReport};
use std::fmt::Write as _;

/// Longest text put in one cell of the checks table, in characters.
const CELL_CHARS: usize = 160;

/// Renders the report as GitHub-flavoured Markdown.
pub(crate) fn render(report: &RunReport) -> String {
    let mut out = String::new();
    let total = Counts::of(&report.checks);
    let _ = writeln!(out, "# mcp-tenancy report: {}\n", inline(&report.target));
    let _ = writeln!(out, "- **Target:** {}", inline(&report.target));
    let _ = writeln!(out, "- **Transport:** {}", inline(&report.transport));
    let _ = writeln!(out, "- **Date:** {}", inline(&report.started));
    let _ = writeln!(out, "- **Profile:** {}", inline(&report.profile));
    let _ = writeln!(
        out,
        "- **Seed:** {} (`--seed {}` replays the run)",
        report.seed, report.seed
    );
    let _ = writeln!(
        out,
        "- **Run:** {} checks in {} by mcp-tenancy {}: {} pass, {} fail, {} warn, {} skip, {} n/a",
        total.total(),
        duration(report.duration_ms),
        inline(&report.tool_version),
        total.pass,
        total.fail,
        total.warn,
        total.skip,
        total.na
    );

    out.push_str("\n## Security checklist\n\n");
    out.push_str("| Property | Checklist item | Verdict | Pass | Fail | Warn | Skip | N/A |\n");
    out.push_str("|---|---|---|--:|--:|--:|--:|--:|\n");
    for g in groups(report) {
        let c = g.counts;
        let verdict = Verdict::of(c);
        let _ = writeln!(
            out,
            "| {} | {} | {} {} | {} | {} | {} | {} | {} |",
            inline(g.id),
            inline(g.title),
            verdict.symbol(),
            verdict.label(),
            c.pass,
            c.fail,
            c.warn,
            c.skip,
            c.na
        );
    }

    out.push_str("\n## Checks\n\n");
    out.push_str("| Id | Name | Status | Result |\n");
    out.push_str("|---|---|---|---|\n");
    for c in &report.checks {
        let result = match (c.outcome, &c.skip_reason) {
            (Outcome::Skip | Outcome::NotApplicable, Some(reason)) => reason,
            _ => &c.actual,
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            inline(&c.id),
            inline(&c.name),
            status(c),
            inline(&one_line(result, CELL_CHARS))
        );
    }

    out.push_str("\n## Failures\n");
    problems(&mut out, report, Outcome::Fail);
    if total.warn > 0 {
        out.push_str("\n## Warnings\n");
        problems(&mut out, report, Outcome::Warn);
    }
    out
}

/// Status cell: symbol and word, with the reason when the failure is an expected one.
fn status(c: &CheckResult) -> String {
    let symbol = match c.outcome {
        Outcome::Pass => "✅",
        Outcome::Fail => "❌",
        Outcome::Warn => "⚠️",
        Outcome::Skip => "⏭",
        Outcome::NotApplicable => "➖",
    };
    match &c.expected_failure {
        Some(reason) => format!(
            "{symbol} {} (expected: {})",
            c.outcome.label(),
            inline(&one_line(reason, CELL_CHARS))
        ),
        None => format!("{symbol} {}", c.outcome.label()),
    }
}

/// One subsection per check with `outcome`: requirement, expected / actual in a code
/// block, and the per-case table.
fn problems(out: &mut String, report: &RunReport, outcome: Outcome) {
    let mut any = false;
    for c in report.checks.iter().filter(|c| c.outcome == outcome) {
        any = true;
        let _ = writeln!(out, "\n### {} {}\n", inline(&c.id), inline(&c.name));
        if let Some(reason) = &c.expected_failure {
            let _ = writeln!(out, "*Expected failure:* {}\n", inline(reason));
        }
        let _ = writeln!(out, "**Requirement:** {}\n", inline(&c.description));
        if !c.retries.is_none() {
            let _ = writeln!(out, "**Retries:** {}\n", inline(&c.retries.describe()));
        }
        let block = format!(
            "{}\n{}",
            labelled("Expected", &c.expected),
            labelled("Actual", &c.actual)
        );
        let _ = writeln!(out, "{}", fenced(&block));
        if !c.details.is_empty() {
            out.push_str("\n| Case | Outcome | Expected | Actual |\n|---|---|---|---|\n");
            for o in &c.details {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} |",
                    inline(&o.case),
                    o.outcome.label(),
                    inline(&o.expected),
                    inline(&o.actual)
                );
            }
        }
    }
    if !any {
        out.push_str("\nNone.\n");
    }
}

/// `Expected: first line` with further lines aligned under the first, h2spec style.
fn labelled(label: &str, text: &str) -> String {
    let mut lines = text.lines();
    let mut out = format!("{label:>8}: {}", lines.next().unwrap_or(""));
    for line in lines {
        let _ = write!(out, "\n          {line}");
    }
    out
}

/// `text` in a fenced code block whose fence is longer than any backtick run inside, so
/// the text cannot close it.
fn fenced(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat((longest_run + 1).max(3));
    format!("{fence}text\n{}\n{fence}", visible(text))
}

/// Text for a table cell or a line of prose: control characters made visible, Markdown
/// and HTML punctuation backslash-escaped (so a `|` cannot end a cell and a `<script>`
/// is literal text), line breaks as `<br>`.
fn inline(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in visible(text).chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("<br>"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_report;

    #[test]
    fn markdown_has_the_checklist_with_one_row_per_property() {
        let report = sample_report();
        let md = render(&report);
        assert!(md.starts_with("# mcp-tenancy report: reference \\<server\\>\n"));
        let checklist = md
            .split("## Security checklist")
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap();
        let rows: Vec<&str> = checklist.lines().filter(|l| l.starts_with("| T")).collect();
        assert_eq!(rows.len(), report.properties.len());
        assert_eq!(
            rows[0],
            "| T0 | Protocol baseline (robustness) | ❌ broken | 1 | 1 | 0 | 0 | 0 |"
        );
        assert!(rows[1].contains("⏭ not checked"));
        assert!(rows[2].contains("❌ broken"));
        assert!(rows[3].contains("⏭ not checked"));
    }

    #[test]
    fn markdown_lists_checks_and_failures() {
        let md = render(&sample_report());
        assert!(md.contains(
            "| T1.1 | list-exactly-entitled | ⏭ skip | the profile declares no entitlements |"
        ));
        assert!(md.contains("| T0.1 | initialize-lifecycle | ✅ pass | case: as required |"));
        assert!(md.contains("❌ fail (expected: clock skew not configurable yet)"));
        assert!(md.contains("### T0.2 json-rpc-error-codes"));
        assert!(md.contains("**Requirement:** requirement of T0.2"));
        assert!(md.contains("Expected: malformed JSON: -32700\n          unknown method: -32601"));
        assert!(md.contains("## Warnings\n\n### T2.1 call-token-required"));
        // Hostile text: no raw controls anywhere; outside code blocks no live markup.
        assert!(!md.contains('\u{1b}') && !md.contains('\0') && !md.contains('\u{9b}'));
        let prose = outside_fences(&md);
        assert!(!prose.contains("<script>") && prose.contains("\\<script\\>"));
        assert!(prose.contains("\\|"));
        // The hostile ``` in the actual text cannot close the fence around it.
        assert!(md.contains("````text\nExpected:"));
        assert!(prose.contains("| Case | Outcome | Expected | Actual |"));
    }

    /// The lines of `md` outside fenced code blocks.
    fn outside_fences(md: &str) -> String {
        let mut fence: Option<&str> = None;
        let mut prose = String::new();
        for line in md.lines() {
            let ticks = &line[..line.len() - line.trim_start_matches('`').len()];
            match fence {
                Some(open) if line == open => fence = None,
                Some(_) => {}
                None if ticks.len() >= 3 => fence = Some(ticks),
                None => {
                    prose.push_str(line);
                    prose.push('\n');
                }
            }
        }
        assert!(fence.is_none(), "unclosed code block");
        prose
    }

    #[test]
    fn inline_escapes_cells() {
        assert_eq!(inline("a|b\nc"), "a\\|b<br>c");
        assert_eq!(inline("<b>_x_</b>"), "\\<b\\>\\_x\\_\\</b\\>");
    }
}
