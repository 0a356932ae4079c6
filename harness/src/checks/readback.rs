//! The read-back: how every check proves what a call did, and the run-wide leak
//! registry that judges everything read back.
//!
//! Every marker a check hands out is recorded here with the tenant it was written for
//! (the tenant of the session that sent it). Every listing read back, and every refusal,
//! is searched for markers; one written for *another* tenant than the reader's is data
//! that crossed a tenant boundary, and fails the check that saw it — whatever that
//! check was about. No observation of a leak ends in a pass.

use crate::client::transcript::RetryKind;
use crate::client::{Answer, Transcript};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The first wait before a refused read-back is tried again; doubled each time.
const READ_BACK_FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest wait between two tries of a read-back.
const READ_BACK_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Every marker of the run: which tenant it was written for, and by which check.
#[derive(Debug, Default)]
pub struct Registry {
    markers: BTreeMap<String, Written>,
}

/// Who wrote a marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub tenant: String,
    pub check: String,
}

/// A marker of one tenant found in what another tenant was shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leak {
    pub marker: String,
    pub written: Written,
}

/// The prefix of every marker (`mcpt-T2-1-…`).
pub const MARKER_PREFIX: &str = "mcpt-";

impl Registry {
    /// Records `marker` as written for `tenant` by `check`.
    pub fn record(&mut self, marker: &str, tenant: &str, check: &str) {
        self.markers.insert(
            marker.to_owned(),
            Written {
                tenant: tenant.to_owned(),
                check: check.to_owned(),
            },
        );
    }

    /// How many markers the run has handed out.
    pub fn len(&self) -> usize {
        self.markers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.markers.is_empty()
    }

    /// The markers in `text` written for another tenant than `reader`, each once.
    pub fn foreign_in(&self, text: &str, reader: &str) -> Vec<Leak> {
        let mut out: Vec<Leak> = Vec::new();
        for candidate in marker_candidates(text) {
            if let Some(written) = self.markers.get(candidate)
                && written.tenant != reader
                && !out.iter().any(|l| l.marker == candidate)
            {
                out.push(Leak {
                    marker: candidate.to_owned(),
                    written: written.clone(),
                });
            }
        }
        out
    }
}

/// How many hex digits end a marker: 12 from the run's seed, 4 of the run's salt.
pub const MARKER_HEX: usize = 16;

/// Every marker-shaped slice of `text`: [`MARKER_PREFIX`], a check id spelt
/// `T<digits>-<digits>-`, then exactly [`MARKER_HEX`] hex digits — whatever follows (a
/// server's `-1` suffix, more letters). Markers are recognised by a scan, not by trying
/// each one, so a read-back costs one pass whatever the run has written.
fn marker_candidates(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices(MARKER_PREFIX)
        .filter_map(move |(at, _)| {
            let rest = &text.as_bytes()[at + MARKER_PREFIX.len()..];
            let digits = |from: usize| {
                rest[from.min(rest.len())..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count()
            };
            if rest.first() != Some(&b'T') {
                return None;
            }
            let major = digits(1);
            let mut i = 1 + major;
            if major == 0 || rest.get(i) != Some(&b'-') {
                return None;
            }
            let minor = digits(i + 1);
            i += 1 + minor;
            if minor == 0 || rest.get(i) != Some(&b'-') {
                return None;
            }
            i += 1;
            let hex = rest.get(i..i + MARKER_HEX)?;
            hex.iter()
                .all(u8::is_ascii_hexdigit)
                .then(|| &text[at..at + MARKER_PREFIX.len() + i + MARKER_HEX])
        })
}

/// Everything an answer carries, as one text: the parsed message when there is one
/// (a marker inside an error's `data` counts), else the raw body.
pub fn answer_text(answer: &Answer) -> String {
    match &answer.message {
        Some(m) => m.to_string(),
        None => answer.raw.clone(),
    }
}

/// The leaf strings of `value` long enough to be data rather than vocabulary (at
/// least `min` characters), each once — what a refusal must not repeat of the result
/// the refused call would have returned.
pub fn data_strings(value: &Value, min: usize) -> Vec<String> {
    fn walk(value: &Value, min: usize, out: &mut Vec<String>) {
        match value {
            Value::String(s) => {
                // A text content that is JSON is searched as its members.
                if let Ok(inner @ (Value::Object(_) | Value::Array(_))) =
                    serde_json::from_str::<Value>(s)
                {
                    walk(&inner, min, out);
                } else if s.chars().count() >= min && !out.contains(s) {
                    out.push(s.clone());
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, min, out)),
            Value::Object(map) => map.values().for_each(|v| walk(v, min, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, min, &mut out);
    out
}

/// One tenant's listings: list tool → its result.
pub type Listings = BTreeMap<String, Value>;

/// What the read-back after a call compares against: the call's marker, which must (or
/// must not) show, or — for a write without a marker — the listings taken before it.
/// The one witness of every check (T2 reads every tenant back, T3 and T6 the two of
/// their stage).
#[derive(Debug, Clone)]
pub struct Witness {
    /// Does the witnessed tool write (so that its effects are read back)?
    pub writes: bool,
    pub marker: Option<String>,
    /// The tenant of the session the call is made in.
    pub session_tenant: String,
    /// Tenant id → its listings before the call (marker-less writes only).
    pub before: BTreeMap<String, Listings>,
    /// Markers of valid calls sent together with the witnessed one (a batch, a
    /// pipeline): the records they made are no change of the witnessed call's.
    pub beside: Vec<String>,
}

impl Witness {
    pub fn writes(&self) -> bool {
        self.writes
    }

    /// The markers the request (and the valid calls sent with it) carried: an error
    /// may echo them.
    pub fn sent(&self) -> Vec<&str> {
        self.marker
            .iter()
            .chain(&self.beside)
            .map(String::as_str)
            .collect()
    }

    /// What `now`, `tenant`'s listings after the call, show of it: its marker, or a
    /// listing that changed since `before` (fresh ids and times aside). A tenant not
    /// read before shows no change.
    pub fn seen_in(&self, tenant: &str, now: &Listings) -> Vec<Seen> {
        let mut out = Vec::new();
        for (tool, result) in now {
            match &self.marker {
                Some(m) if crate::client::mentions(result, m) => out.push(Seen::Marker {
                    marker: m.clone(),
                    tool: tool.clone(),
                }),
                Some(_) => {}
                None => {
                    let settled =
                        |v: &Value| super::volatile::settled(&without_records(v, &self.beside));
                    let changed = self
                        .before
                        .get(tenant)
                        .and_then(|b| b.get(tool))
                        .is_some_and(|before| settled(before) != settled(result));
                    if changed {
                        out.push(Seen::Changed { tool: tool.clone() });
                    }
                }
            }
        }
        out
    }
}

/// The innermost object of `listings` that carries `marker` in one of its own string
/// members — the record a write made (a text content that is JSON is searched too).
pub fn record_with(listings: &Listings, marker: &str) -> Option<Value> {
    fn find(v: &Value, marker: &str) -> Option<Value> {
        match v {
            Value::Object(map) => map.values().find_map(|x| find(x, marker)).or_else(|| {
                map.values()
                    .any(|x| x.as_str().is_some_and(|s| s.contains(marker)))
                    .then(|| v.clone())
            }),
            Value::Array(items) => items.iter().find_map(|x| find(x, marker)),
            Value::String(s) if s.contains(marker) => serde_json::from_str::<Value>(s)
                .ok()
                .filter(|inner| inner.is_object() || inner.is_array())
                .and_then(|inner| find(&inner, marker)),
            _ => None,
        }
    }
    listings.values().find_map(|v| find(v, marker))
}

/// Does `record` hold `value` as one of its own string members?
pub fn record_names(record: &Value, value: &str) -> bool {
    record
        .as_object()
        .is_some_and(|m| m.values().any(|v| v.as_str() == Some(value)))
}

/// `value` without the array elements that mention any of `markers` (inside a text
/// content that is JSON too, which is re-serialised): a listing as it would be without
/// the records those markers' writes made.
pub fn without_records(value: &Value, markers: &[String]) -> Value {
    if markers.is_empty() {
        return value.clone();
    }
    let mentions = |v: &Value| markers.iter().any(|m| crate::client::mentions(v, m));
    match value {
        // Inner records first: an element that still mentions a marker is one.
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| without_records(v, markers))
                .filter(|v| !mentions(v))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), without_records(v, markers)))
                .collect(),
        ),
        // Both sides of a comparison go through here: a JSON text is re-serialised
        // whether or not it mentions a marker.
        Value::String(s) if s.starts_with(['{', '[']) => match serde_json::from_str::<Value>(s) {
            Ok(inner @ (Value::Object(_) | Value::Array(_))) => {
                Value::String(without_records(&inner, markers).to_string())
            }
            _ => value.clone(),
        },
        other => other.clone(),
    }
}

/// Does any listing of `listings` mention `marker`?
pub fn shows(listings: &Listings, marker: &str) -> bool {
    listings
        .values()
        .any(|r| crate::client::mentions(r, marker))
}

/// A refused read-back is tried again with a back-off (a rate limit the profile does
/// not name, a moment of overload) before the channel is judged.
pub struct ReadBackRetry {
    started: Instant,
    backoff: Duration,
    budget: Duration,
}

impl ReadBackRetry {
    /// Retries within `budget`.
    pub fn within(budget: Duration) -> Self {
        Self {
            started: Instant::now(),
            backoff: READ_BACK_FIRST_BACKOFF,
            budget,
        }
    }

    /// After `answer` of the read-back through `tool`: `true` (having waited, the retry
    /// counted) when it was refused and the budget allows another try.
    pub async fn again(
        &mut self,
        transcript: &Transcript,
        who: &str,
        tool: &str,
        answer: &Answer,
    ) -> bool {
        if answer.succeeded() || self.started.elapsed() + self.backoff > self.budget {
            return false;
        }
        transcript.count_retry(RetryKind::ReadBack);
        transcript.note(
            who,
            format!(
                "the read-back through {tool} was refused ({}): again in {} ms",
                answer.describe(),
                self.backoff.as_millis()
            ),
        );
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(READ_BACK_MAX_BACKOFF);
        true
    }

    pub fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }
}

/// What a read-back found after a call that had to have no effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effect {
    /// The tenant whose lists show it.
    pub tenant: String,
    pub what: Seen,
}

/// What one tenant's read-back showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The call's marker, in one of the tenant's list tools.
    Marker { marker: String, tool: String },
    /// A list tool's result changed (a write without a marker).
    Changed { tool: String },
    /// The tenant could not be read back: nothing is disproved.
    NoReadBack(String),
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.what {
            Seen::Marker { marker, tool } => {
                write!(f, "{marker:?} appears in {}'s {tool}", self.tenant)
            }
            Seen::Changed { tool } => write!(f, "{}'s {tool} changed", self.tenant),
            Seen::NoReadBack(why) => write!(f, "no read-back of {} possible: {why}", self.tenant),
        }
    }
}

/// `effects` as one line for a report.
pub fn describe_effects(effects: &[Effect]) -> String {
    effects
        .iter()
        .map(Effect::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markers_of_other_tenants_are_found_once_and_the_readers_own_are_not() {
        let mut r = Registry::default();
        r.record("mcpt-T2-1-00000000abcd1234", "acme", "T2.1");
        r.record("mcpt-T3-1-0000000000ef5678", "globex", "T3.1");
        let listing = json!({"notes": [
            {"title": "mcpt-T2-1-00000000abcd1234"},
            {"title": "mcpt-T2-1-00000000abcd1234 again"},
            {"title": "mcpt-T3-1-0000000000ef5678"},
            {"title": "mcpt-T9-9-unknown"}
        ]})
        .to_string();
        let seen_by_globex = r.foreign_in(&listing, "globex");
        assert_eq!(seen_by_globex.len(), 1);
        assert_eq!(seen_by_globex[0].marker, "mcpt-T2-1-00000000abcd1234");
        assert_eq!(seen_by_globex[0].written.tenant, "acme");
        assert_eq!(r.foreign_in(&listing, "acme").len(), 1);
        assert_eq!(r.foreign_in(&listing, "initech").len(), 2);
    }

    #[test]
    fn a_marker_inside_escaped_json_text_is_found() {
        let mut r = Registry::default();
        r.record("mcpt-T2-1-00000000abcd1234", "acme", "T2.1");
        let text = json!({"content": [{"type": "text",
            "text": json!({"title": "mcpt-T2-1-00000000abcd1234"}).to_string()}]})
        .to_string();
        assert_eq!(r.foreign_in(&text, "globex").len(), 1);
        // Whatever follows a marker (a server's suffix) does not hide it.
        assert_eq!(
            r.foreign_in("mcpt-T2-1-00000000abcd1234-1", "globex").len(),
            1
        );
        assert_eq!(
            r.foreign_in("mcpt-T2-1-00000000abcd1234ff", "globex").len(),
            1
        );
        // A shorter one is no marker.
        assert!(r.foreign_in("mcpt-T2-1-00000000abcd", "globex").is_empty());
    }

    #[test]
    fn the_record_carrying_a_marker_is_found_inside_json_text() {
        let mut l = Listings::new();
        l.insert(
            "notes_list".into(),
            json!({"content": [{"type": "text", "text": json!({"notes": [
                {"id": 1, "title": "other", "author": "bob"},
                {"id": 2, "title": "mcpt-x-1", "author": "alice"}]}).to_string()}]}),
        );
        let r = record_with(&l, "mcpt-x-1").unwrap();
        assert!(record_names(&r, "alice") && !record_names(&r, "bob"));
        assert!(record_with(&l, "mcpt-x-2").is_none());
    }

    #[test]
    fn records_of_calls_sent_beside_are_no_change() {
        let before = json!({"content": [{"type": "text", "text": json!({"charges": [{"id": 1}]}).to_string()}],
                            "structuredContent": {"notes": [{"id": 1, "title": "old"}]}});
        let after = json!({"content": [{"type": "text", "text": json!({"charges": [{"id": 1}, {"id": 2, "memo": "mcpt-a-1"}]}).to_string()}],
                           "structuredContent": {"notes": [{"id": 1, "title": "old"}, {"id": 2, "title": "mcpt-a-1"}]}});
        let beside = vec!["mcpt-a-1".to_owned()];
        assert_eq!(
            without_records(&after, &beside),
            without_records(&before, &beside)
        );
        assert_ne!(without_records(&after, &[]), without_records(&before, &[]));
    }

    #[test]
    fn data_strings_are_long_leaves_including_json_text() {
        let v = json!({"content": [{"type": "text", "text": "{\"id\":\"n-0123456789ab\",\"t\":\"x\"}"}],
                       "structuredContent": {"notes": [{"id": "n-0123456789ab", "title": "mcpt-x-123456"}]}});
        assert_eq!(
            data_strings(&v, 12),
            vec!["n-0123456789ab".to_owned(), "mcpt-x-123456".to_owned()]
        );
    }
}
