//! Values that change from one answer to the next by design — trace and request ids,
//! timestamps, UUIDs — and must not count as a difference.
//!
//! Two uses. T6.1 *learns* what is volatile: it asks the same unknown tool twice, and
//! only what differs between those two answers is volatile ([`volatile_paths`]); a
//! foreign tool's refusal is then compared with the volatile members blanked
//! ([`blank`]). A snapshot of a listing, taken before and after a write without a
//! marker, is compared [`settled`]: strings with their id- and time-like tokens
//! blanked, members named like ids and times blanked.

use serde_json::Value;
use std::collections::BTreeSet;

const BLANK: &str = "<volatile>";

/// Member names (lower-cased, without `_` and `-`) that hold ids or times.
const VOLATILE_KEYS: &[&str] = &[
    "trace",
    "span",
    "requestid",
    "correlation",
    "timestamp",
    "nonce",
    "uuid",
];

/// Does `token` look like a value that is fresh on every answer: a UUID, a long hex id,
/// a long number (epoch time), an ISO-8601 date?
pub fn volatile_token(token: &str) -> bool {
    let hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
    let groups: Vec<&str> = token.split('-').collect();
    let uuid = groups.len() == 5
        && groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| hex(g));
    let long_hex = token.len() >= 16 && hex(token) && token.chars().any(|c| c.is_ascii_digit());
    let long_number = token.len() >= 10 && token.chars().all(|c| c.is_ascii_digit());
    let b = token.as_bytes();
    let date = b.len() >= 10
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[7] == b'-'
        && b[5..7].iter().all(u8::is_ascii_digit);
    uuid || long_hex || long_number || date
}

/// `s` with its id- and time-like tokens blanked; `None` when it has none.
pub fn blank_tokens(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut token = String::new();
    let mut replaced = false;
    let mut flush = |token: &mut String, out: &mut String| {
        if volatile_token(token.trim_end_matches(['.', ':'])) {
            out.push_str(BLANK);
            replaced = true;
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '.' | '+') {
            token.push(c);
        } else {
            flush(&mut token, &mut out);
            out.push(c);
        }
    }
    flush(&mut token, &mut out);
    replaced.then_some(out)
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The paths (`data.traceId`, `content[0].text`) at which `a` and `b` differ, leaf by
/// leaf; a member present in one only differs at its own path.
pub fn volatile_paths(a: &Value, b: &Value) -> BTreeSet<String> {
    fn walk(a: &Value, b: &Value, path: &str, out: &mut BTreeSet<String>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (k, va) in x {
                    match y.get(k) {
                        Some(vb) => walk(va, vb, &child(path, k), out),
                        None => {
                            out.insert(child(path, k));
                        }
                    }
                }
                for k in y.keys().filter(|k| !x.contains_key(*k)) {
                    out.insert(child(path, k));
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                    walk(va, vb, &format!("{path}[{i}]"), out);
                }
            }
            _ if a != b => {
                out.insert(path.to_owned());
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(a, b, "", &mut out);
    out
}

/// `value` with the members at `paths` blanked: a string keeps its text but for its id-
/// and time-like tokens (so a message that says something else still differs); any
/// other value, or a string whose difference is not such a token, is blanked whole.
/// The paths that were blanked are added to `ignored`.
pub fn blank(value: &Value, paths: &BTreeSet<String>, ignored: &mut BTreeSet<String>) -> Value {
    fn walk(
        v: &Value,
        path: &str,
        paths: &BTreeSet<String>,
        ignored: &mut BTreeSet<String>,
    ) -> Value {
        if paths.contains(path) {
            ignored.insert(path.to_owned());
            return match v {
                Value::String(s) => Value::String(blank_tokens(s).unwrap_or_else(|| BLANK.into())),
                _ => Value::String(BLANK.into()),
            };
        }
        match v {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, x)| (k.clone(), walk(x, &child(path, k), paths, ignored)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| walk(x, &format!("{path}[{i}]"), paths, ignored))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    walk(value, "", paths, ignored)
}

/// Is `key` the name of a member that holds an id or a time?
fn volatile_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .collect::<String>()
        .to_lowercase();
    VOLATILE_KEYS.iter().any(|v| k.contains(v))
}

/// `value` as a listing is compared before and after a write: members named like ids
/// and times, and id- and time-like tokens in strings, blanked.
pub fn settled(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if volatile_key(k) && !v.is_object() && !v.is_array() {
                        Value::String(BLANK.into())
                    } else {
                        settled(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(settled).collect()),
        Value::String(s) => Value::String(blank_tokens(s).unwrap_or_else(|| s.clone())),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_differs_between_two_answers_to_the_same_call_is_volatile() {
        let a = json!({"code": -32602, "message": "Unknown tool (ref 3f2a9c1e-0b4d-4c8e-9f1a-2b3c4d5e6f70)", "data": {"traceId": "a1", "n": 1}});
        let b = json!({"code": -32602, "message": "Unknown tool (ref 0e1d2c3b-4a59-4867-8564-738291a0b0c1)", "data": {"traceId": "b2", "n": 1}});
        let paths = volatile_paths(&a, &b);
        assert_eq!(
            paths.iter().map(String::as_str).collect::<Vec<_>>(),
            ["data.traceId", "message"]
        );
        let mut ignored = BTreeSet::new();
        assert_eq!(
            blank(&a, &paths, &mut ignored),
            blank(&b, &paths, &mut ignored)
        );
        // The message keeps its words: another text still differs.
        let other = json!({"code": -32602, "message": "Not entitled (ref 0e1d2c3b-4a59-4867-8564-738291a0b0c1)", "data": {"traceId": "c3", "n": 1}});
        assert_ne!(
            blank(&a, &paths, &mut ignored),
            blank(&other, &paths, &mut ignored)
        );
        // A member that does not vary between the two is compared as it is.
        let leaky = json!({"code": -32602, "message": "Unknown tool (ref 0e1d2c3b-4a59-4867-8564-738291a0b0c1)", "data": {"traceId": "d4", "n": 2}});
        assert_ne!(
            blank(&a, &paths, &mut ignored),
            blank(&leaky, &paths, &mut ignored)
        );
    }

    #[test]
    fn a_listing_settles_its_ids_and_times_but_not_its_content() {
        let before =
            json!({"notes": [{"title": "a"}], "requestId": "r-1", "at": "2026-12-03T10:00:00Z"});
        let after =
            json!({"notes": [{"title": "a"}], "requestId": "r-2", "at": "2026-12-03T10:00:01Z"});
        assert_eq!(settled(&before), settled(&after));
        let grown = json!({"notes": [{"title": "a"}, {"title": "b"}], "requestId": "r-3", "at": "2026-12-03T10:00:02Z"});
        assert_ne!(settled(&before), settled(&grown));
    }
}
