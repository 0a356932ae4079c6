//! Strict JSON-RPC 2.0 framing, shared by the stdio and HTTP transports.
//!
//! `rmcp` is lenient at the frame level (over stdio it drops malformed JSON silently;
//! over HTTP it answers 415 in plain text). Every inbound message therefore passes
//! [`inspect`] first, which either hands it on or produces the JSON-RPC error the
//! specification asks for:
//!
//! | input | code |
//! |---|---|
//! | larger than the bound | -32600 (HTTP: 413) |
//! | not UTF-8, not JSON, nested too deeply, number out of range | -32700 |
//! | JSON but not a JSON-RPC 2.0 message, a batch, a duplicate member | -32600 |
//! | `params` not an object; `tools/call` without a string `name` | -32602 |
//!
//! The error's `id` is the request's when it can be recovered, `null` otherwise
//! (JSON-RPC 2.0 §5).

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value, json};
use std::fmt;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;

/// A message that passed framing.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The parsed message (an object).
    pub message: Value,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Request { method: String },
    Notification { method: String },
    Response,
}

/// A frame refused before dispatch.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    pub code: i64,
    pub message: String,
    /// The request id when it could be recovered; `Value::Null` otherwise.
    pub id: Value,
    /// The frame exceeded the size bound (HTTP answers 413).
    pub too_large: bool,
}

impl FrameError {
    fn new(code: i64, message: impl Into<String>, id: Value) -> Self {
        Self {
            code,
            message: message.into(),
            id,
            too_large: false,
        }
    }

    /// A frame of `len` bytes over the `max` bound.
    pub fn oversized(len: usize, max: usize) -> Self {
        Self {
            too_large: true,
            ..Self::new(
                INVALID_REQUEST,
                format!("Invalid Request: message of {len} bytes exceeds the limit of {max}"),
                Value::Null,
            )
        }
    }

    /// The JSON-RPC error response for this frame.
    pub fn to_response(&self) -> Value {
        json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": {"code": self.code, "message": self.message}
        })
    }
}

/// A JSON value parsed with duplicate object members refused. serde_json keeps the last
/// of duplicate members, which lets `{"tenant_id":"a","tenant_id":"b"}` mean different
/// things to different parsers on the way — so duplicates are an error here.
pub(crate) struct Strict(pub(crate) Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

pub(crate) struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(v) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!(
                    "duplicate member {:?}",
                    key
                )));
            }
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses JSON with duplicate members refused (and serde_json's nesting bound of 128).
pub fn parse_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let Strict(v) = Strict::deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

fn recover_id(bytes: &[u8]) -> Value {
    // Best effort: a lenient parse to echo the id of a request refused for a
    // duplicate member, so the client can correlate the error.
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => match m.get("id") {
            Some(id @ (Value::String(_) | Value::Number(_))) => id.clone(),
            _ => Value::Null,
        },
        _ => Value::Null,
    }
}

/// Checks one inbound frame. `max_bytes` bounds its size.
pub fn inspect(bytes: &[u8], max_bytes: usize) -> Result<Inbound, FrameError> {
    if bytes.len() > max_bytes {
        return Err(FrameError::oversized(bytes.len(), max_bytes));
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(FrameError::new(
            PARSE_ERROR,
            "Parse error: invalid UTF-8",
            Value::Null,
        ));
    }
    let value = match parse_strict(bytes) {
        Ok(v) => v,
        Err(e) if e.is_data() => {
            // Syntactically JSON, semantically refused (a duplicate member). A
            // duplicated `id` is ambiguous: answer with `null` then.
            let message = e.to_string();
            let id = if message.contains("duplicate member \"id\"") {
                Value::Null
            } else {
                recover_id(bytes)
            };
            return Err(FrameError::new(
                INVALID_REQUEST,
                format!("Invalid Request: {message}"),
                id,
            ));
        }
        Err(e) => {
            return Err(FrameError::new(
                PARSE_ERROR,
                format!("Parse error: {e}"),
                Value::Null,
            ));
        }
    };
    classify(value)
}

fn classify(value: Value) -> Result<Inbound, FrameError> {
    let invalid =
        |m: &str, id: Value| FrameError::new(INVALID_REQUEST, format!("Invalid Request: {m}"), id);
    let obj = match &value {
        Value::Object(obj) => obj,
        Value::Array(_) => return Err(invalid("JSON-RPC batches are not supported", Value::Null)),
        _ => return Err(invalid("a JSON-RPC message must be an object", Value::Null)),
    };
    let id = match obj.get("id") {
        None => None,
        Some(id @ Value::String(_)) => Some(id.clone()),
        // Integers only, and only those every peer can echo exactly.
        Some(id @ Value::Number(n)) if n.is_i64() || n.is_u64() => Some(id.clone()),
        Some(Value::Number(_)) => {
            return Err(invalid(
                "a numeric id must be an integer within 64 bits",
                Value::Null,
            ));
        }
        Some(_) => return Err(invalid("id must be a string or an integer", Value::Null)),
    };
    let echo = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return Err(invalid("jsonrpc must be \"2.0\"", echo));
    }
    let kind = match (obj.get("method"), &id) {
        (Some(Value::String(m)), Some(_)) => Kind::Request { method: m.clone() },
        (Some(Value::String(m)), None) => Kind::Notification { method: m.clone() },
        (Some(_), _) => return Err(invalid("method must be a string", echo)),
        (None, Some(_)) if obj.contains_key("result") || obj.contains_key("error") => {
            Kind::Response
        }
        (None, _) => return Err(invalid("not a request, notification or response", echo)),
    };
    if let Kind::Request { method } | Kind::Notification { method } = &kind {
        let bad_params = |m: String| {
            FrameError::new(INVALID_PARAMS, format!("Invalid params: {m}"), echo.clone())
        };
        match obj.get("params") {
            None | Some(Value::Object(_)) => {}
            Some(_) => return Err(bad_params("params must be an object".into())),
        }
        if method == "tools/call" {
            let params = obj.get("params").and_then(Value::as_object);
            match params.and_then(|p| p.get("name")) {
                Some(Value::String(_)) => {}
                _ => return Err(bad_params("tools/call needs a string `name`".into())),
            }
            match params.and_then(|p| p.get("arguments")) {
                None | Some(Value::Object(_)) => {}
                Some(_) => return Err(bad_params("`arguments` must be an object".into())),
            }
        }
    }
    Ok(Inbound {
        message: value,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(bytes: &[u8]) -> (i64, Value) {
        let e = inspect(bytes, 1024).unwrap_err();
        (e.code, e.id)
    }

    #[test]
    fn each_bad_frame_gets_its_code() {
        assert_eq!(code(b"{not json"), (PARSE_ERROR, Value::Null));
        assert_eq!(code(b"\xff\xfe"), (PARSE_ERROR, Value::Null));
        assert_eq!(code(b"1e999"), (PARSE_ERROR, Value::Null));
        assert_eq!(code(b"[]"), (INVALID_REQUEST, Value::Null));
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}"#),
            (INVALID_REQUEST, Value::Null)
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
            (INVALID_REQUEST, Value::Null)
        );
        assert_eq!(code(b"\"hello\""), (INVALID_REQUEST, Value::Null));
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1}"#),
            (INVALID_REQUEST, json!(1))
        );
        assert_eq!(
            code(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            (INVALID_REQUEST, json!(1))
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":7,"method":"ping","id":8}"#),
            (INVALID_REQUEST, Value::Null)
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"a","name":"b"}}"#),
            (INVALID_REQUEST, json!(3))
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"arguments":{}}}"#),
            (INVALID_PARAMS, json!(2))
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":2,"method":"ping","params":[1]}"#),
            (INVALID_PARAMS, json!(2))
        );
    }

    #[test]
    fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(code_big(deep.as_bytes()), PARSE_ERROR);
    }

    fn code_big(bytes: &[u8]) -> i64 {
        inspect(bytes, usize::MAX).unwrap_err().code
    }

    #[test]
    fn oversized_frames_are_flagged() {
        let e = inspect(&[b' '; 2048], 1024).unwrap_err();
        assert!(e.too_large);
        assert_eq!(e.code, INVALID_REQUEST);
    }

    #[test]
    fn well_formed_messages_pass() {
        let ok = inspect(br#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#, 1024).unwrap();
        assert_eq!(
            ok.kind,
            Kind::Request {
                method: "tools/list".into()
            }
        );
        let n = inspect(
            br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            1024,
        )
        .unwrap();
        assert_eq!(
            n.kind,
            Kind::Notification {
                method: "notifications/initialized".into()
            }
        );
        let r = inspect(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#, 1024).unwrap();
        assert_eq!(r.kind, Kind::Response);
    }
}

/// Entry points shared by the fuzz targets and the tests that replay their seeds.
#[doc(hidden)]
pub mod fuzzing {
    use super::*;

    /// The oracle for one frame: no panic; an error is a JSON-RPC error response with a
    /// known code; an accepted message is an object that re-parses to itself.
    pub fn check_frame(data: &[u8]) {
        match inspect(data, 64 * 1024) {
            Ok(inbound) => {
                assert!(inbound.message.is_object());
                let text = serde_json::to_vec(&inbound.message).expect("serialises");
                let again = parse_strict(&text).expect("a re-serialised message parses");
                assert_eq!(again, inbound.message);
            }
            Err(e) => {
                assert!([PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS].contains(&e.code));
                let response = e.to_response();
                assert_eq!(response["jsonrpc"], "2.0");
                assert!(
                    response["id"].is_null()
                        || response["id"].is_string()
                        || response["id"].is_i64()
                        || response["id"].is_u64()
                );
            }
        }
    }
}
