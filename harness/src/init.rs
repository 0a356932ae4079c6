//! `mcp-tenancy init`: a first, commented draft profile for a server — connect, list
//! its tools, guess each tool's role and arguments from its name and `inputSchema`,
//! and mark every guess for the user to confirm.

use crate::client::{LATEST_SESSION_VERSION, Target, Transcript};
use crate::profile::{Profile, Target as TargetSpec, Transport};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// How to reach the server a draft is made for.
#[derive(Debug, Clone)]
pub enum Reach {
    /// A Streamable HTTP endpoint that is already served.
    Url(String),
    /// A command speaking stdio.
    Command(Vec<String>),
}

/// What `init` learnt, and the draft it wrote.
#[derive(Debug, Clone)]
pub struct Draft {
    pub server: String,
    pub tools: Vec<String>,
    pub text: String,
}

/// Connects as `reach` says (with `bearer` as `Authorization: Bearer` over HTTP, and
/// `env` for a stdio command), lists every tool and writes the draft.
pub async fn draft(
    reach: &Reach,
    bearer: Option<&str>,
    env: &[(String, String)],
) -> Result<Draft, String> {
    let (transport, command, url) = match reach {
        Reach::Url(url) => (Transport::Http, Vec::new(), Some(url.clone())),
        Reach::Command(cmd) => (Transport::Stdio, cmd.clone(), None),
    };
    let mut profile = Profile {
        extends: None,
        name: "draft".into(),
        target: TargetSpec {
            transport,
            command,
            build: Vec::new(),
            setup: Vec::new(),
            cwd: None,
            env: env.iter().cloned().collect(),
            url,
            multiplexes_sessions: false,
            headers: BTreeMap::new(),
            ready_timeout_ms: 20_000,
            stop_grace_ms: 3_000,
        },
        limits: Default::default(),
        coverage: Default::default(),
        load: Default::default(),
        auth: Default::default(),
        tokens: Default::default(),
        tenants: Vec::new(),
        tools: BTreeMap::new(),
        revocation: None,
        path: Path::new("draft.toml").to_path_buf(),
    };
    if let Some(b) = bearer {
        profile
            .target
            .headers
            .insert("Authorization".into(), format!("Bearer {b}"));
    }
    let target = Target::new(profile);
    let transcript = Transcript::new();
    let mut conn = target
        .connect("init", None, &transcript)
        .await
        .map_err(|e| e.to_string())?;
    let answer = conn
        .initialize(LATEST_SESSION_VERSION)
        .await
        .map_err(|e| e.to_string())?;
    let Some(result) = answer.result() else {
        return Err(format!("initialize was refused: {}", answer.describe()));
    };
    let server = result
        .pointer("/serverInfo/name")
        .and_then(Value::as_str)
        .unwrap_or("my server")
        .to_owned();
    let listing = conn.list_all_tools().await.map_err(|e| e.to_string())?;
    if let Some(problem) = &listing.problem {
        return Err(format!("tools/list failed: {problem}"));
    }
    conn.close().await;
    target.shutdown().await;
    let text = render(reach, &server, &listing.tools);
    Ok(Draft {
        server,
        tools: listing.names(),
        text,
    })
}

/// A tool's guessed role, with the reason shown to the user.
fn guess_role(name: &str, schema: &Value) -> (&'static str, &'static str) {
    let n = name.to_ascii_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    let props = properties(schema);
    let id_like = props
        .keys()
        .any(|k| k == "id" || k.ends_with("_id") || k.ends_with("Id"));
    if has(&[
        "list", "search", "query", "find", "all", "history", "export",
    ]) {
        ("list", "its name reads like a listing")
    } else if has(&[
        "create", "add", "insert", "write", "save", "store", "post", "send", "charge", "append",
        "upsert", "put", "new", "set", "update", "remember",
    ]) {
        ("write", "its name reads like a write")
    } else if has(&["get", "read", "fetch", "show", "describe", "view", "open"]) && id_like {
        (
            "read",
            "its name reads like a read of one record, and it takes an id",
        )
    } else {
        ("other", "nothing in its name says what it does")
    }
}

fn properties(schema: &Value) -> serde_json::Map<String, Value> {
    schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn required(schema: &Value) -> Vec<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// A property that looks like it names a tenant.
fn tenant_property(schema: &Value) -> Option<String> {
    properties(schema)
        .keys()
        .find(|k| {
            let k = k.to_ascii_lowercase().replace(['_', '-'], "");
            [
                "tenant",
                "tenantid",
                "org",
                "orgid",
                "organization",
                "organizationid",
                "accountid",
                "workspace",
                "workspaceid",
                "customerid",
            ]
            .contains(&k.as_str())
        })
        .cloned()
}

/// The argument template of a tool of `role`: `{marker}` in the first required string
/// of a write (where a list can show it), `{id}` for a read's id, a placeholder value
/// for every other required property.
fn guess_arguments(role: &str, schema: &Value) -> Vec<(String, String)> {
    let props = properties(schema);
    let mut out = Vec::new();
    let mut marked = false;
    for key in required(schema) {
        let spec = props.get(&key).cloned().unwrap_or(Value::Null);
        let kind = spec.get("type").and_then(Value::as_str).unwrap_or("string");
        let id_like = key == "id" || key.ends_with("_id") || key.ends_with("Id");
        let value = match kind {
            "string" if role == "read" && id_like => "\"{id}\"".to_owned(),
            "integer" | "number" if role == "read" && id_like => "\"{id}\"".to_owned(),
            "string" if role == "write" && !marked => {
                marked = true;
                "\"{marker}\"".to_owned()
            }
            "string" => "\"x\"".to_owned(),
            "integer" | "number" => "1".to_owned(),
            "boolean" => "true".to_owned(),
            "array" => "[]".to_owned(),
            _ => "{}".to_owned(),
        };
        out.push((key, value));
    }
    out
}

/// A TOML key: bare when it can be, quoted otherwise.
fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_owned()
    } else {
        Value::String(k.to_owned()).to_string()
    }
}

fn toml_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn render(reach: &Reach, server: &str, tools: &[Value]) -> String {
    let mut out = String::new();
    let names: Vec<&str> = tools
        .iter()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    let _ = writeln!(
        out,
        "# A draft target profile for {server}, written by `mcp-tenancy init` from its tools/list.\n\
         # Every line marked CONFIRM is a guess: read it, correct it, then delete the mark.\n\
         # The format is in the README (\"The target profile\")."
    );
    let _ = writeln!(out, "name = {}\n", toml_str(server));
    out.push_str("[target]\n");
    match reach {
        Reach::Url(url) => {
            let _ = writeln!(out, "transport = \"http\"\nurl = {}", toml_str(url));
            out.push_str("# command = [\"./start-server\", \"--port\", \"{port}\"]  # let the harness start it on {port}\n");
        }
        Reach::Command(cmd) => {
            let parts: Vec<String> = cmd.iter().map(|p| toml_str(p)).collect();
            let _ = writeln!(
                out,
                "transport = \"stdio\"\ncommand = [{}]",
                parts.join(", ")
            );
        }
    }
    out.push_str(
        "\n# [limits]\n# calls_per_second = 20               # if the server rate-limits each tenant\n\n\
         # How each tenant's session is authenticated.\n[auth]\n",
    );
    match reach {
        Reach::Url(_) => out.push_str("http_header = \"Authorization\"\nhttp_format = \"Bearer {token}\"\n"),
        Reach::Command(_) => out.push_str("stdio_env = \"MCP_SERVER_TOKEN\"  # CONFIRM: the variable the server reads its credential from\n"),
    }
    out.push_str(
        "\n# Call tokens: \"none\" until you describe them ([tokens] in the README: placement,\n\
         # meta_key or header, audience, alg, key, and the claim names of [tokens.claims]).\n\
         [tokens]\nplacement = \"none\"\n\n",
    );
    let list = names
        .iter()
        .map(|n| toml_str(n))
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "# Two tenants at least. The session above saw these tools; give each tenant the\n\
         # tools it is entitled to — the checks need tenants whose entitlements differ.\n\
         [[tenants]]\nid = \"tenant-a\"                      # CONFIRM\n\
         credential = {{ env = \"TENANT_A_TOKEN\" }}\ntools = [{list}]  # CONFIRM\n\n\
         [[tenants]]\nid = \"tenant-b\"                      # CONFIRM\n\
         credential = {{ env = \"TENANT_B_TOKEN\" }}\ntools = [{list}]  # CONFIRM\n"
    );
    for tool in tools {
        let Some(name) = tool.get("name").and_then(Value::as_str) else {
            continue;
        };
        let schema = tool.get("inputSchema").cloned().unwrap_or(Value::Null);
        let (role, why) = guess_role(name, &schema);
        let _ = writeln!(out, "\n[tools.{}]", key(name));
        let _ = writeln!(out, "role = \"{role}\"  # CONFIRM: guessed, {why}");
        let args = guess_arguments(role, &schema);
        if !args.is_empty() {
            let body: Vec<String> = args
                .iter()
                .map(|(k, v)| format!("{} = {v}", key(k)))
                .collect();
            let _ = writeln!(
                out,
                "arguments = {{ {} }}  # CONFIRM: from its required properties",
                body.join(", ")
            );
        }
        if let Some(t) = tenant_property(&schema) {
            let _ = writeln!(
                out,
                "tenant_argument = {}  # CONFIRM: it looks like a tenant",
                toml_str(&t)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_and_arguments_are_guessed_from_names_and_schemas() {
        let create = json!({"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "integer"}, "tenant_id": {"type": "string"}}, "required": ["title", "n"]});
        assert_eq!(guess_role("notes_create", &create).0, "write");
        assert_eq!(
            guess_arguments("write", &create),
            [
                ("title".into(), "\"{marker}\"".into()),
                ("n".into(), "1".into())
            ]
        );
        assert_eq!(tenant_property(&create).as_deref(), Some("tenant_id"));
        let get = json!({"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]});
        assert_eq!(guess_role("get_note", &get).0, "read");
        assert_eq!(
            guess_arguments("read", &get),
            [("id".into(), "\"{id}\"".into())]
        );
        assert_eq!(guess_role("notes_list", &json!({})).0, "list");
        assert_eq!(guess_role("frobnicate", &json!({})).0, "other");
    }

    #[test]
    fn the_draft_is_a_valid_profile_with_every_guess_marked() {
        let tools = [
            json!({"name": "notes_create", "inputSchema": {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}}),
            json!({"name": "notes list", "inputSchema": {"type": "object"}}),
        ];
        let text = render(
            &Reach::Command(vec!["python3".into(), "s.py".into()]),
            "notes",
            &tools,
        );
        let profile = Profile::parse(&text, Path::new("draft.toml")).expect("the draft parses");
        assert_eq!(profile.tenants.len(), 2);
        assert_eq!(profile.tools.len(), 2);
        assert!(text.matches("CONFIRM").count() >= 6, "{text}");
    }
}
