//! `report.json`: the whole [`RunReport`], lossless, plus a top-level `summary` of counts.

use super::Counts;
use crate::model::RunReport;
use serde::Serialize;

/// The JSON document: `summary` first, then every field of the report.
#[derive(Serialize)]
struct Document<'a> {
    summary: Summary,
    #[serde(flatten)]
    report: &'a RunReport,
}

/// Outcome counts over every check of the run.
#[derive(Serialize)]
struct Summary {
    #[serde(flatten)]
    counts: Counts,
    total: usize,
}

/// Renders the report as pretty-printed JSON.
pub(crate) fn render(report: &RunReport) -> serde_json::Result<String> {
    let counts = Counts::of(&report.checks);
    let document = Document {
        summary: Summary {
            counts,
            total: counts.total(),
        },
        report,
    };
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::super::fixture::HOSTILE;
    use super::*;
    use crate::report::sample_report;
    use serde_json::{Value, json};

    #[test]
    fn json_parses_and_has_the_fields() {
        let report = sample_report();
        let value: Value = serde_json::from_str(&render(&report).unwrap()).unwrap();
        assert_eq!(
            value["summary"],
            json!({"pass": 1, "fail": 3, "skip": 1, "warn": 1, "notApplicable": 1, "total": 7})
        );
        for key in [
            "toolVersion",
            "target",
            "profile",
            "transport",
            "started",
            "durationMs",
            "properties",
        ] {
            assert!(value.get(key).is_some(), "missing {key}");
        }
        let checks = value["checks"].as_array().unwrap();
        assert_eq!(checks.len(), report.checks.len());
        let fail = &checks[1];
        assert_eq!(fail["id"], "T0.2");
        assert_eq!(fail["status"], "FAILURE");
        assert_eq!(fail["outcome"], "fail");
        assert_eq!(fail["specReferences"][0]["id"], "MCP-LIFECYCLE");
        assert_eq!(fail["details"][0]["actual"], HOSTILE);
        // Hostile bytes survive exactly: JSON escaping is lossless.
        assert_eq!(fail["transcript"][1]["body"], HOSTILE);
        assert_eq!(fail["transcript"][1]["direction"], "received");
        assert!(fail.get("skipReason").is_none());
        assert_eq!(
            checks[2]["skipReason"],
            "the profile declares no entitlements"
        );
        assert_eq!(
            checks[4]["expectedFailure"],
            "clock skew not configurable yet"
        );
    }
}
