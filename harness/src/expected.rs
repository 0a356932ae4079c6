//! The expected-failures file: adopt the kit before the target is green.
//!
//! ```toml
//! [[expected]]
//! id = "T0.2"
//! reason = "answers malformed JSON over stdio with silence (upstream issue #123)"
//! ```
//!
//! A listed check that fails is reported as an expected failure. The run still fails
//! on any unlisted failure, and on a listed check that now passes (a stale entry: delete
//! it, so that a regression cannot hide behind it).

use crate::catalogue;
use crate::model::{Outcome, RunReport};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFailures {
    #[serde(default)]
    pub expected: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub id: String,
    pub reason: String,
}

/// What the expected-failures file says of a finished run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    /// Failed and not listed.
    pub unexpected: Vec<String>,
    /// Listed but passed (or warned): the entry must go.
    pub stale: Vec<String>,
    /// Listed and failed, as expected.
    pub expected: Vec<String>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.unexpected.is_empty() && self.stale.is_empty()
    }
}

impl ExpectedFailures {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text)
            .map_err(|e| format!("invalid expected-failures file {}:\n{e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: Self = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        for (i, entry) in file.expected.iter().enumerate() {
            if catalogue::check(&entry.id).is_none() {
                return Err(format!("entry {}: unknown check id {:?}", i + 1, entry.id));
            }
            if entry.reason.trim().is_empty() {
                return Err(format!(
                    "entry {} ({}): every entry needs a reason",
                    i + 1,
                    entry.id
                ));
            }
            if file.expected[..i].iter().any(|e| e.id == entry.id) {
                return Err(format!("entry {} ({}): listed twice", i + 1, entry.id));
            }
        }
        Ok(file)
    }

    /// Marks expected failures in `report` and judges the run.
    pub fn apply(&self, report: &mut RunReport) -> Verdict {
        let mut verdict = Verdict::default();
        for check in &mut report.checks {
            let entry = self.expected.iter().find(|e| e.id == check.id);
            match (entry, check.outcome) {
                (Some(e), Outcome::Fail) => {
                    check.expected_failure = Some(e.reason.clone());
                    verdict.expected.push(check.id.clone());
                }
                (Some(_), Outcome::Pass | Outcome::Warn) => verdict.stale.push(check.id.clone()),
                (None, Outcome::Fail) => verdict.unexpected.push(check.id.clone()),
                _ => {}
            }
        }
        verdict
    }
}

/// The verdict without an expected-failures file: every failure is unexpected.
pub fn strict(report: &RunReport) -> Verdict {
    ExpectedFailures {
        expected: Vec::new(),
    }
    .apply(&mut report.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_need_a_known_id_and_a_reason() {
        assert!(
            ExpectedFailures::parse("[[expected]]\nid = \"T0.2\"\nreason = \"silent\"\n").is_ok()
        );
        assert!(
            ExpectedFailures::parse("[[expected]]\nid = \"T9.9\"\nreason = \"x\"\n")
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            ExpectedFailures::parse("[[expected]]\nid = \"T0.2\"\nreason = \" \"\n")
                .unwrap_err()
                .contains("reason")
        );
        assert!(
            ExpectedFailures::parse("[[expected]]\nid = \"T0.2\"\n")
                .unwrap_err()
                .contains("reason")
        );
    }
}
