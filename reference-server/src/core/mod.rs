//! The sans-IO core of the reference server.
//!
//! [`Core`] answers `tools/list` and `tools/call` for a [`Caller`] whose identity the
//! transport has already established. Nothing here performs I/O or knows about `rmcp`:
//! results are plain JSON values in the MCP `CallToolResult` shape, which the adapter in
//! [`crate::mcp`] hands to the SDK.

pub mod schema;
pub mod store;
pub mod tools;

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::fmt;
use store::Store;
use tools::{InteropFixture, ToolDef, ToolKind};

/// The verified identity a request acts for: the tenant and the principal inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Caller {
    pub tenant: String,
    pub principal: String,
}

impl Caller {
    pub fn new(tenant: impl Into<String>, principal: impl Into<String>) -> Self {
        Self {
            tenant: tenant.into(),
            principal: principal.into(),
        }
    }
}

/// A `tools/call` that could not be routed to a tool. Anything a tool itself refuses
/// (bad arguments, not found) is a [`ToolResult`] with `is_error` instead, as the
/// specification asks (2025-11-25, "Error Handling").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// No such tool — the JSON-RPC answer is -32602 with the message from `Display`.
    UnknownTool(String),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::UnknownTool(name) => write!(f, "Unknown tool: {}", name.escape_debug()),
        }
    }
}

/// The result of a tool call, in the MCP `CallToolResult` shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub content: Vec<Value>,
    pub structured: Option<Value>,
    pub is_error: bool,
}

impl ToolResult {
    fn ok(structured: Value) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": structured.to_string()})],
            structured: Some(structured),
            is_error: false,
        }
    }

    fn content(content: Vec<Value>) -> Self {
        Self {
            content,
            structured: None,
            is_error: false,
        }
    }

    fn error(message: impl Into<String>) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": message.into()})],
            structured: None,
            is_error: true,
        }
    }

    /// The `CallToolResult` JSON object.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("content".into(), Value::Array(self.content.clone()));
        if let Some(s) = &self.structured {
            out.insert("structuredContent".into(), s.clone());
        }
        if self.is_error {
            out.insert("isError".into(), Value::Bool(true));
        }
        Value::Object(out)
    }
}

/// The server's state and tool catalogue.
#[derive(Debug)]
pub struct Core {
    tools: Vec<ToolDef>,
    by_name: HashMap<&'static str, usize>,
    store: Store,
}

impl Default for Core {
    fn default() -> Self {
        Self::new(tools::catalogue())
    }
}

impl Core {
    pub fn new(tools: Vec<ToolDef>) -> Self {
        let by_name = tools.iter().enumerate().map(|(i, t)| (t.name, i)).collect();
        Self {
            tools,
            by_name,
            store: Store::default(),
        }
    }

    /// The tools `caller` may see, in catalogue order.
    pub fn list_tools(&self, _caller: &Caller) -> impl Iterator<Item = &ToolDef> {
        self.tools.iter()
    }

    /// Looks a tool up by its exact name (no case folding, no normalisation).
    pub fn tool(&self, name: &str) -> Option<&ToolDef> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// Runs `name` with `arguments` for `caller`. Arguments are validated against the
    /// tool's `inputSchema` before the handler runs.
    pub fn call_tool(
        &self,
        caller: &Caller,
        name: &str,
        arguments: Option<&Map<String, Value>>,
    ) -> Result<ToolResult, CallError> {
        let tool = self
            .tool(name)
            .ok_or_else(|| CallError::UnknownTool(name.to_owned()))?;
        let empty = Map::new();
        let args = arguments.unwrap_or(&empty);
        // Validate a borrowed view; the schema validator needs a Value.
        let as_value = Value::Object(args.clone());
        if let Err(e) = schema::validate(&tool.input_schema, &as_value) {
            return Ok(ToolResult::error(format!(
                "Invalid arguments for {}: {e}",
                tool.name
            )));
        }
        if let Some(label) = args.get("tenant_id")
            && label.as_str() != Some(caller.tenant.as_str())
        {
            return Ok(ToolResult::error(
                "tenant_id does not match the authenticated tenant",
            ));
        }
        Ok(self.run(tool.kind, caller, args))
    }

    fn run(&self, kind: ToolKind, caller: &Caller, args: &Map<String, Value>) -> ToolResult {
        let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
        let tenant = caller.tenant.as_str();
        match kind {
            ToolKind::NotesCreate => {
                let note = self
                    .store
                    .create_note(tenant, &caller.principal, s("title"), s("body"));
                ToolResult::ok(json!({"id": note.id, "title": note.title}))
            }
            ToolKind::NotesList => ToolResult::ok(json!({"notes": self.store.notes(tenant)})),
            ToolKind::NotesGet => match self.store.note(tenant, s("id")) {
                Some(note) => ToolResult::ok(json!({"note": note})),
                None => ToolResult::error("note not found"),
            },
            ToolKind::Charge => {
                let amount = args
                    .get("amount_cents")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0) as u64;
                let charge = self
                    .store
                    .charge(tenant, &caller.principal, amount, s("currency"));
                ToolResult::ok(json!({"charge": charge}))
            }
            ToolKind::ChargesList => ToolResult::ok(json!({"charges": self.store.charges(tenant)})),
            ToolKind::AdminExport => ToolResult::ok(json!({
                "tenant": tenant,
                "notes": self.store.notes(tenant),
                "charges": self.store.charges(tenant),
            })),
            ToolKind::Interop(fixture) => interop(fixture),
        }
    }
}

/// A 1×1 PNG and a tiny WAV, base64, for the content fixtures.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV_TINY: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==";

fn interop(fixture: InteropFixture) -> ToolResult {
    let text = |t: &str| json!({"type": "text", "text": t});
    let image = || json!({"type": "image", "data": PNG_1X1, "mimeType": "image/png"});
    match fixture {
        InteropFixture::SimpleText => {
            ToolResult::content(vec![text("This is a simple text response for testing.")])
        }
        InteropFixture::ImageContent => ToolResult::content(vec![image()]),
        InteropFixture::AudioContent => ToolResult::content(vec![
            json!({"type": "audio", "data": WAV_TINY, "mimeType": "audio/wav"}),
        ]),
        InteropFixture::EmbeddedResource => ToolResult::content(vec![json!({
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content."
            }
        })]),
        InteropFixture::MultipleContentTypes => ToolResult::content(vec![
            text("Multiple content types test:"),
            image(),
            json!({
                "type": "resource",
                "resource": {
                    "uri": "test://mixed-content-resource",
                    "mimeType": "application/json",
                    "text": "{\"test\":\"data\",\"value\":123}"
                }
            }),
        ]),
        InteropFixture::ErrorHandling => {
            ToolResult::error("This tool intentionally returns an error for testing")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> Caller {
        Caller::new("acme", "alice")
    }

    #[test]
    fn invalid_arguments_are_an_error_result_and_write_nothing() {
        let core = Core::default();
        let args = json!({"title": 42}).as_object().cloned();
        let out = core
            .call_tool(&acme(), "notes_create", args.as_ref())
            .unwrap();
        assert!(out.is_error);
        assert!(core.store.notes("acme").is_empty());
    }

    #[test]
    fn unknown_tool_is_a_call_error() {
        let core = Core::default();
        assert_eq!(
            core.call_tool(&acme(), "Notes_Create", None),
            Err(CallError::UnknownTool("Notes_Create".into()))
        );
    }

    #[test]
    fn a_foreign_tenant_label_is_refused_without_effect() {
        let core = Core::default();
        let args = json!({"title": "x", "tenant_id": "globex"})
            .as_object()
            .cloned();
        let out = core
            .call_tool(&acme(), "notes_create", args.as_ref())
            .unwrap();
        assert!(out.is_error);
        assert!(core.store.notes("acme").is_empty());
        assert!(core.store.notes("globex").is_empty());
    }
}
