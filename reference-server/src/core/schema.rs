//! A small JSON Schema validator for the fixture tools' `inputSchema`s.
//!
//! It implements the keywords the fixtures use — `type`, `properties`, `required`,
//! `additionalProperties` (boolean), `enum`, `minLength`/`maxLength`,
//! `minimum`/`maximum`, `items`, `maxItems` — and refuses a schema that uses any other
//! keyword, so a fixture can never rely on a keyword that is silently ignored.
//! A general validator (e.g. `jsonschema`) would cost a large dependency tree for five
//! schemas we write ourselves.

use serde_json::{Map, Value};
use std::fmt;

/// Why arguments do not match a schema. `path` is a JSON Pointer into the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        write!(f, "{path}: {}", self.message)
    }
}

const KNOWN_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "enum",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "items",
    "maxItems",
    "description",
    "title",
    "$schema",
];

/// Checks that `schema` only uses keywords this validator implements.
pub fn check_supported(schema: &Value) -> Result<(), String> {
    let Some(obj) = schema.as_object() else {
        return Err("a schema must be an object".into());
    };
    for (key, sub) in obj {
        if !KNOWN_KEYWORDS.contains(&key.as_str()) {
            return Err(format!("unsupported schema keyword `{key}`"));
        }
        match key.as_str() {
            "properties" => {
                for s in sub.as_object().into_iter().flat_map(|m| m.values()) {
                    check_supported(s)?;
                }
            }
            "items" => check_supported(sub)?,
            _ => {}
        }
    }
    Ok(())
}

/// Validates `value` against `schema`.
pub fn validate(schema: &Value, value: &Value) -> Result<(), SchemaError> {
    validate_at(schema, value, &mut String::new())
}

/// Validates a `tools/call`'s arguments (an object) against a tool's `inputSchema`
/// without copying them.
pub fn validate_arguments(
    schema: &Value,
    arguments: &Map<String, Value>,
) -> Result<(), SchemaError> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if let Some(ty) = schema.get("type")
        && ty != "object"
    {
        return fail("", format!("expected {ty}, found object"));
    }
    check_object(schema, arguments, &mut String::new())
}

fn fail(path: &str, message: impl Into<String>) -> Result<(), SchemaError> {
    Err(SchemaError {
        path: path.to_owned(),
        message: message.into(),
    })
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        // 1.0 is an integer in JSON Schema; 1.5 is not.
        "integer" => {
            value.as_i64().is_some()
                || value.as_u64().is_some()
                || value
                    .as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.is_finite())
        }
        _ => false,
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn validate_at(schema: &Value, value: &Value, path: &mut String) -> Result<(), SchemaError> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    if let Some(ty) = schema.get("type") {
        let ok = match ty {
            Value::String(name) => type_matches(name, value),
            Value::Array(names) => names
                .iter()
                .filter_map(Value::as_str)
                .any(|n| type_matches(n, value)),
            _ => true,
        };
        if !ok {
            return fail(path, format!("expected {ty}, found {}", type_name(value)));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        return fail(
            path,
            format!("must be one of {}", Value::Array(allowed.clone())),
        );
    }
    match value {
        Value::String(s) => check_string(schema, s, path)?,
        Value::Number(n) => check_number(schema, n.as_f64().unwrap_or(f64::NAN), path)?,
        Value::Array(items) => check_array(schema, items, path)?,
        Value::Object(members) => check_object(schema, members, path)?,
        _ => {}
    }
    Ok(())
}

fn check_string(schema: &Map<String, Value>, s: &str, path: &str) -> Result<(), SchemaError> {
    let len = s.chars().count() as u64;
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && len < min
    {
        return fail(path, format!("must be at least {min} characters"));
    }
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && len > max
    {
        return fail(path, format!("must be at most {max} characters"));
    }
    Ok(())
}

fn check_number(schema: &Map<String, Value>, n: f64, path: &str) -> Result<(), SchemaError> {
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
        && n < min
    {
        return fail(path, format!("must be ≥ {min}"));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
        && n > max
    {
        return fail(path, format!("must be ≤ {max}"));
    }
    Ok(())
}

fn check_array(
    schema: &Map<String, Value>,
    items: &[Value],
    path: &mut String,
) -> Result<(), SchemaError> {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        return fail(path, format!("must have at most {max} items"));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            let len = path.len();
            path.push_str(&format!("/{i}"));
            validate_at(item_schema, item, path)?;
            path.truncate(len);
        }
    }
    Ok(())
}

fn check_object(
    schema: &Map<String, Value>,
    members: &Map<String, Value>,
    path: &mut String,
) -> Result<(), SchemaError> {
    let properties = schema.get("properties").and_then(Value::as_object);
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !members.contains_key(name) {
                return fail(path, format!("missing required property `{name}`"));
            }
        }
    }
    let closed = schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, member) in members {
        match properties.and_then(|p| p.get(name)) {
            Some(sub) => {
                let len = path.len();
                path.push('/');
                path.push_str(&name.replace('~', "~0").replace('/', "~1"));
                validate_at(sub, member, path)?;
                path.truncate(len);
            }
            None if closed => {
                return fail(
                    path,
                    format!("unexpected property `{}`", name.escape_debug()),
                );
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "title": {"type": "string", "minLength": 1, "maxLength": 5},
                "n": {"type": "integer", "minimum": 1, "maximum": 10},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
                "currency": {"type": "string", "enum": ["USD", "EUR"]}
            },
            "required": ["title"],
            "additionalProperties": false
        })
    }

    #[test]
    fn accepts_matching_arguments() {
        let args = json!({"title": "abc", "n": 3, "tags": ["x"], "currency": "EUR"});
        assert_eq!(validate(&schema(), &args), Ok(()));
        assert_eq!(
            validate_arguments(&schema(), args.as_object().unwrap()),
            Ok(())
        );
        let bad = json!({"title": ""});
        assert_eq!(
            validate_arguments(&schema(), bad.as_object().unwrap())
                .unwrap_err()
                .to_string(),
            "/title: must be at least 1 characters"
        );
    }

    #[test]
    fn refuses_each_kind_of_mismatch_with_its_path() {
        let cases = [
            (json!({}), "/", "missing required property `title`"),
            (
                json!({"title": 5}),
                "/title",
                "expected \"string\", found number",
            ),
            (
                json!({"title": ""}),
                "/title",
                "must be at least 1 characters",
            ),
            (
                json!({"title": "toolong"}),
                "/title",
                "must be at most 5 characters",
            ),
            (
                json!({"title": "a", "n": 1.5}),
                "/n",
                "expected \"integer\", found number",
            ),
            (json!({"title": "a", "n": 11}), "/n", "must be ≤ 10"),
            (
                json!({"title": "a", "tags": ["a", "b", "c"]}),
                "/tags",
                "must have at most 2 items",
            ),
            (
                json!({"title": "a", "tags": [1]}),
                "/tags/0",
                "expected \"string\", found number",
            ),
            (
                json!({"title": "a", "currency": "usd"}),
                "/currency",
                "must be one of [\"USD\",\"EUR\"]",
            ),
            (
                json!({"title": "a", "tenant": "x"}),
                "/",
                "unexpected property `tenant`",
            ),
            (json!([]), "/", "expected \"object\", found array"),
        ];
        for (args, path, message) in cases {
            let err = validate(&schema(), &args).expect_err(&args.to_string());
            assert_eq!(err.to_string(), format!("{path}: {message}"), "{args}");
        }
    }

    #[test]
    fn unsupported_keywords_are_refused_up_front() {
        assert_eq!(check_supported(&schema()), Ok(()));
        let bad = json!({"type": "object", "properties": {"a": {"pattern": "x"}}});
        assert_eq!(
            check_supported(&bad),
            Err("unsupported schema keyword `pattern`".into())
        );
    }
}
