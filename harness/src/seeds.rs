//! `mcp-tenancy seeds REPORT.json --out fuzz/seeds`: fuzz seeds from the frames a run
//! really sent. Every frame the harness sent is in the report's transcripts, whole (see
//! [`Frame::bytes`](crate::model::Frame::bytes)), hostile ones included; from them:
//!
//! - `jsonrpc_frame/` every sent frame, as sent;
//! - `call_arguments/` the `arguments` object of every `tools/call`;
//! - `call_token/` every call token a `tools/call` carried (in `params._meta` or its
//!   arguments), as `T` followed by the token — the raw-token mode of that target's
//!   input.
//!
//! A run sends thousands of frames that differ only in their markers, ids and fresh
//! tokens: of each check, only frames of a shape not seen yet are kept (the shape of a
//! JSON frame is its structure with every string and number blanked; of a token, its
//! header and claim names), at most `per_check` per target, and none over `max_bytes`
//! (libFuzzer's inputs are small; the oversized frames are the checks' business).
//! Files are named `<check id>-<first 12 hex digits of the content's SHA-256>.<ext>`, so
//! the same content is written once, and a re-run adds only what is new.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// How many seeds of each target were found, and how many of them were new files.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Written {
    /// target → (found, new)
    pub per_target: BTreeMap<&'static str, (usize, usize)>,
}

/// How many seeds to keep.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Seeds of one shape-distinct kind per check and target.
    pub per_check: usize,
    /// The largest seed kept, in bytes.
    pub max_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_check: 4,
            max_bytes: 64 * 1024,
        }
    }
}

/// The structure of a JSON value with its strings and numbers blanked.
fn shape(v: &Value) -> Value {
    match v {
        Value::String(_) => Value::String(String::new()),
        Value::Number(_) => Value::from(0),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(members) => {
            Value::Object(members.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        other => other.clone(),
    }
}

/// A token's shape: its header, and the names of its claims.
fn token_shape(token: &str) -> String {
    use base64::Engine as _;
    let decode = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    };
    let mut parts = token.split('.');
    let header = parts
        .next()
        .and_then(decode)
        .map(|h| h.to_string())
        .unwrap_or_default();
    let claims = parts
        .next()
        .and_then(decode)
        .and_then(|c| {
            c.as_object()
                .map(|o| o.keys().cloned().collect::<Vec<_>>().join(","))
        })
        .unwrap_or_default();
    format!("{header}|{claims}")
}

/// One seed: its fuzz target, its file name, its bytes.
pub type Seed = (&'static str, String, Vec<u8>);

/// Every seed in `report` (a `report.json`).
pub fn seeds(report: &Value) -> Result<Vec<Seed>, String> {
    seeds_within(report, Limits::default())
}

/// [`seeds`] within `limits`.
pub fn seeds_within(report: &Value, limits: Limits) -> Result<Vec<Seed>, String> {
    let checks = report["checks"]
        .as_array()
        .ok_or("not a mcp-tenancy report.json: no \"checks\" array")?;
    let mut out = Vec::new();
    for check in checks {
        let id = check["id"].as_str().unwrap_or("check");
        let mut seen: std::collections::HashSet<(&'static str, String)> = Default::default();
        let mut kept: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut keep = |target: &'static str, shape: String, bytes: Vec<u8>, ext: &str| {
            let n = kept.entry(target).or_default();
            if bytes.len() <= limits.max_bytes
                && *n < limits.per_check
                && seen.insert((target, shape))
            {
                *n += 1;
                out.push((target, named(id, &bytes, ext), bytes));
            }
        };
        for frame in check["transcript"].as_array().into_iter().flatten() {
            if frame["direction"] != "sent" {
                continue;
            }
            let frame: crate::model::Frame = match frame_of(frame) {
                Some(f) => f,
                None => continue,
            };
            let bytes = frame.bytes();
            if bytes.is_empty() {
                continue;
            }
            let parsed = serde_json::from_slice::<Value>(&bytes);
            let frame_shape = match &parsed {
                Ok(v) => shape(v).to_string(),
                Err(_) => String::from_utf8_lossy(&bytes).into_owned(),
            };
            keep("jsonrpc_frame", frame_shape, bytes.clone(), "json");
            let Ok(message) = parsed else {
                continue;
            };
            for m in message.as_array().cloned().unwrap_or_else(|| vec![message]) {
                if m["method"] != "tools/call" {
                    continue;
                }
                let params = &m["params"];
                if let Some(args) = params.get("arguments").filter(|a| a.is_object()) {
                    let text = serde_json::to_vec(args).expect("a JSON value serialises");
                    keep("call_arguments", shape(args).to_string(), text, "json");
                }
                let mut tokens = Vec::new();
                collect_tokens(&params["_meta"], &mut tokens);
                collect_tokens(&params["arguments"], &mut tokens);
                for t in tokens {
                    let mut seed = b"T".to_vec();
                    seed.extend_from_slice(t.as_bytes());
                    keep("call_token", token_shape(&t), seed, "token");
                }
            }
        }
    }
    Ok(out)
}

fn frame_of(v: &Value) -> Option<crate::model::Frame> {
    Some(crate::model::Frame {
        direction: crate::model::Direction::Sent,
        at_ms: 0,
        session: String::new(),
        channel: String::new(),
        body: v["body"].as_str()?.to_owned(),
        bytes_base64: v["bytes_base64"].as_str().map(str::to_owned),
    })
}

fn named(check: &str, bytes: &[u8], ext: &str) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let check: String = check
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{check}-{hex}.{ext}")
}

/// Strings shaped like a JWS compact token (three base64url segments), anywhere in `v`.
fn collect_tokens(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if looks_like_jws(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|i| collect_tokens(i, out)),
        Value::Object(members) => members.values().for_each(|m| collect_tokens(m, out)),
        _ => {}
    }
}

fn looks_like_jws(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts[0].starts_with("eyJ")
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'=')
        })
}

/// Writes the seeds of the report at `report` under `out/<target>/`.
pub fn write(report: &Path, out: &Path, limits: Limits) -> Result<Written, String> {
    let text =
        std::fs::read(report).map_err(|e| format!("cannot read {}: {e}", report.display()))?;
    let value: Value = serde_json::from_slice(&text)
        .map_err(|e| format!("{} is not JSON: {e}", report.display()))?;
    let mut written = Written::default();
    for (target, name, bytes) in seeds_within(&value, limits)? {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join(&name);
        let entry = written.per_target.entry(target).or_default();
        entry.0 += 1;
        if !path.exists() {
            std::fs::write(&path, &bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            entry.1 += 1;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use serde_json::json;

    #[test]
    fn sent_frames_become_seeds_whole_with_their_arguments_and_tokens() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
        let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "notes_create", "arguments": {"title": "x"},
                       "_meta": {"dev.example/call-token": token}}});
        let hostile = [b'{', 0xff, b'}'];
        let report = json!({"checks": [{"id": "T2.1", "transcript": [
            {"direction": "sent", "body": call.to_string()},
            {"direction": "received", "body": "{\"result\":{}}"},
            {"direction": "sent", "body": "{\u{fffd}}",
             "bytes_base64": base64::engine::general_purpose::STANDARD.encode(hostile)},
        ]}]});
        let seeds = seeds(&report).expect("a report");
        let of = |t: &str| -> Vec<&Vec<u8>> {
            seeds.iter().filter(|s| s.0 == t).map(|s| &s.2).collect()
        };
        assert_eq!(of("jsonrpc_frame").len(), 2, "received frames are no seeds");
        assert_eq!(
            of("jsonrpc_frame")[1],
            &hostile.to_vec(),
            "the hostile frame, exactly"
        );
        assert_eq!(of("call_arguments"), vec![&b"{\"title\":\"x\"}".to_vec()]);
        assert_eq!(of("call_token"), vec![&format!("T{token}").into_bytes()]);
        assert!(seeds.iter().all(|s| s.1.starts_with("T2.1-")), "{seeds:?}");
        assert!(super::seeds(&json!({"no": "checks"})).is_err());
        // Frames of one shape (another marker, another token) count once per check.
        let again = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "notes_create", "arguments": {"title": "y"},
                       "_meta": {"dev.example/call-token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiIn0.c2lo"}}});
        let report = json!({"checks": [{"id": "T2.1", "transcript": [
            {"direction": "sent", "body": call.to_string()},
            {"direction": "sent", "body": again.to_string()}]}]});
        assert_eq!(super::seeds(&report).expect("a report").len(), 3);
    }
}
