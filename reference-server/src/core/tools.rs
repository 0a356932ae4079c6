//! The fixture tools the suite drives, with their input schemas.
//!
//! Each tool has a role the harness relies on (write / read / list / charge / admin) and
//! a tier that entitlements are expressed in. Schemas are closed
//! (`additionalProperties: false`): an argument the schema does not name is refused.
//! `tenant_id` is declared on the notes tools on purpose — seed mistake 3 is a schema
//! that carries the tenant; the server must treat it as an untrusted label. So is the
//! open `meta` object of `notes_create`: a `tenant_id` inside it selects nothing.

use super::hashing::FxMap;
use serde_json::{Value, json};

/// The tools with an index by exact name.
#[derive(Debug)]
pub struct Catalogue {
    tools: Vec<ToolDef>,
    by_name: FxMap<&'static str, usize>,
}

impl Catalogue {
    pub fn new(tools: Vec<ToolDef>) -> Self {
        let by_name = tools.iter().enumerate().map(|(i, t)| (t.name, i)).collect();
        Self { tools, by_name }
    }

    /// Exact lookup: no case folding, no normalisation.
    pub fn get(&self, name: &str) -> Option<&ToolDef> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// ASCII-case-insensitive lookup — the `case-insensitive-lookup` mutant's mistake.
    pub fn get_folded(&self, name: &str) -> Option<&ToolDef> {
        self.tools
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name.trim()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &ToolDef> {
        self.tools.iter()
    }
}

/// What a fixture tool does; the handler dispatches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ToolKind {
    NotesCreate,
    NotesList,
    NotesGet,
    Charge,
    ChargesList,
    AdminExport,
    /// Fixtures of the official MCP conformance suite (`test_*`).
    Interop(InteropFixture),
}

/// The official conformance suite's server fixtures that the reference server provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InteropFixture {
    SimpleText,
    ImageContent,
    AudioContent,
    EmbeddedResource,
    MultipleContentTypes,
    ErrorHandling,
}

/// A tool as the server declares it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub input_schema: Value,
    /// Annotation: the tool changes state.
    pub read_only: bool,
    /// Entitlement tier the tool belongs to.
    pub tier: &'static str,
    /// The action a call token must name to call it (`notes:write`, …).
    pub action: &'static str,
    pub kind: ToolKind,
}

fn notes_tool_schema(extra: Value) -> Value {
    let mut properties = json!({
        "tenant_id": {
            "type": "string",
            "maxLength": 128,
            "description": "Optional label. The server acts for the authenticated tenant only; a different value is refused."
        }
    });
    if let (Some(p), Some(extra)) = (properties.as_object_mut(), extra.as_object()) {
        p.extend(extra.clone());
    }
    properties
}

/// The full catalogue, in listing order.
pub fn catalogue() -> Vec<ToolDef> {
    let mut tools = vec![
        ToolDef {
            name: "notes_create",
            title: "Create a note",
            description: "Creates a note in the caller's tenant and returns its id.",
            input_schema: json!({
                "type": "object",
                "properties": notes_tool_schema(json!({
                    "title": {"type": "string", "minLength": 1, "maxLength": 200},
                    "body": {"type": "string", "maxLength": 10000},
                    "meta": {
                        "type": "object",
                        "description": "Free-form client metadata (a request id, a trace context). Not stored, and never read for the tenant."
                    }
                })),
                "required": ["title"],
                "additionalProperties": false
            }),
            read_only: false,
            tier: "basic",
            action: "notes:write",
            kind: ToolKind::NotesCreate,
        },
        ToolDef {
            name: "notes_list",
            title: "List notes",
            description: "Lists the notes of the caller's tenant.",
            input_schema: json!({
                "type": "object",
                "properties": notes_tool_schema(json!({})),
                "additionalProperties": false
            }),
            read_only: true,
            tier: "basic",
            action: "notes:read",
            kind: ToolKind::NotesList,
        },
        ToolDef {
            name: "notes_get",
            title: "Read a note",
            description: "Reads one note of the caller's tenant by id.",
            input_schema: json!({
                "type": "object",
                "properties": notes_tool_schema(json!({
                    "id": {"type": "string", "minLength": 1, "maxLength": 64}
                })),
                "required": ["id"],
                "additionalProperties": false
            }),
            read_only: true,
            tier: "basic",
            action: "notes:read",
            kind: ToolKind::NotesGet,
        },
        ToolDef {
            name: "charge",
            title: "Charge the account",
            description: "Charges the caller's tenant account. Not idempotent: every successful call books a charge.",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "amount_cents": {"type": "integer", "minimum": 1, "maximum": 1000000},
                    "currency": {"type": "string", "enum": ["USD", "EUR"]}
                },
                "required": ["amount_cents", "currency"],
                "additionalProperties": false
            }),
            read_only: false,
            tier: "billing",
            action: "billing:charge",
            kind: ToolKind::Charge,
        },
        ToolDef {
            name: "charges_list",
            title: "List charges",
            description: "Lists the charges booked for the caller's tenant.",
            input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            read_only: true,
            tier: "billing",
            action: "billing:read",
            kind: ToolKind::ChargesList,
        },
        ToolDef {
            name: "admin_export",
            title: "Export tenant data",
            description: "Exports every note and charge of the caller's tenant (admin tier).",
            input_schema: json!({"type": "object", "properties": {}, "additionalProperties": false}),
            read_only: true,
            tier: "admin",
            action: "admin:export",
            kind: ToolKind::AdminExport,
        },
    ];
    tools.extend(interop_fixtures());
    tools
}

fn interop_fixtures() -> Vec<ToolDef> {
    let empty = || json!({"type": "object", "properties": {}, "additionalProperties": false});
    let fixture = |name, description, kind| ToolDef {
        name,
        title: name,
        description,
        input_schema: empty(),
        read_only: true,
        tier: "interop",
        action: "interop:call",
        kind: ToolKind::Interop(kind),
    };
    vec![
        fixture(
            "test_simple_text",
            "Returns a simple text content block (official conformance suite fixture).",
            InteropFixture::SimpleText,
        ),
        fixture(
            "test_image_content",
            "Returns an image content block (official conformance suite fixture).",
            InteropFixture::ImageContent,
        ),
        fixture(
            "test_audio_content",
            "Returns an audio content block (official conformance suite fixture).",
            InteropFixture::AudioContent,
        ),
        fixture(
            "test_embedded_resource",
            "Returns an embedded resource content block (official conformance suite fixture).",
            InteropFixture::EmbeddedResource,
        ),
        fixture(
            "test_multiple_content_types",
            "Returns text, image and resource content blocks (official conformance suite fixture).",
            InteropFixture::MultipleContentTypes,
        ),
        fixture(
            "test_error_handling",
            "Always fails with an isError result (official conformance suite fixture).",
            InteropFixture::ErrorHandling,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::schema;

    #[test]
    fn every_fixture_schema_uses_only_supported_keywords() {
        for tool in catalogue() {
            schema::check_supported(&tool.input_schema)
                .unwrap_or_else(|e| panic!("{}: {e}", tool.name));
        }
    }

    #[test]
    fn tool_names_are_unique() {
        let tools = catalogue();
        let mut names: Vec<_> = tools.iter().map(|t| t.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), tools.len());
    }
}
