//! Target profiles: a declarative TOML file that tells the harness how to reach and
//! drive a server it did not write.
//!
//! ```toml
//! name = "reference server over stdio"
//!
//! [target]
//! transport = "stdio"                     # or "http"
//! # stdio: the server command; http: an optional command that starts the server.
//! # `${VAR}` / `${VAR:-default}` expand from the environment; `{port}` is a free
//! # loopback port chosen by the harness (http only). Relative paths are resolved
//! # against the profile's directory.
//! command = ["${CARGO_TARGET_DIR:-../../target}/debug/mcp-tenancy-server", "--stdio"]
//! build = ["cargo", "build", "-q", "-p", "mcp-tenancy-server"]   # run once, optional
//! env = { MCP_TENANCY_LOG = "warn" }
//! # url = "http://127.0.0.1:{port}/mcp"   # http only
//! # headers = { X-Api-Version = "2" }     # http only, non-secret headers
//!
//! [limits]
//! request_timeout_ms = 5000               # one request, before the target is called hung
//!
//! [[tenants]]
//! id = "acme"
//! credential = { env = "ACME_TOKEN" }     # or { file = "secrets/acme.jwt" }; never inline
//! tools = ["notes_create", "notes_list"]  # tools this tenant is entitled to
//! ```
//!
//! Every table refuses unknown fields, so a misspelt field is an error that names the
//! file, line and field — not a silently ignored setting.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed target profile.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Display name in reports.
    pub name: String,
    pub target: Target,
    #[serde(default)]
    pub limits: Limits,
    /// Tenants the harness acts as. The T0 checks need none; tenancy checks need two.
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    /// Where the profile was read from; relative paths resolve against its directory.
    #[serde(skip)]
    pub path: PathBuf,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Stdio,
    Http,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        })
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub transport: Transport,
    /// stdio: the server command (required). http: a command that starts the server
    /// (optional; without it the harness expects `url` to be served already).
    #[serde(default)]
    pub command: Vec<String>,
    /// A command run once before the first launch (e.g. to compile the server).
    #[serde(default)]
    pub build: Vec<String>,
    /// Working directory for `build` and `command`, relative to the profile.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Environment for `command` (non-secret values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// http: the MCP endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// http: extra non-secret headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// http: how long a launched server may take to accept connections.
    #[serde(default = "default_ready_timeout_ms")]
    pub ready_timeout_ms: u64,
}

fn default_ready_timeout_ms() -> u64 {
    20_000
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// How long one request may take before the target counts as hung.
    pub request_timeout_ms: u64,
    /// How long to wait for an answer that a conforming server must send but that a
    /// silent one never will (malformed frames).
    pub silence_timeout_ms: u64,
    /// Size of the oversized message sent by T0.3.
    pub oversized_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            request_timeout_ms: 10_000,
            silence_timeout_ms: 3_000,
            oversized_message_bytes: 8 * 1024 * 1024,
        }
    }
}

/// A tenant the harness acts as.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub id: String,
    /// The session credential (secret): from an environment variable or a file.
    #[serde(default)]
    pub credential: Option<Secret>,
    /// Tools this tenant is entitled to see and call.
    #[serde(default)]
    pub tools: Vec<String>,
}

/// Where a secret comes from. Inline secrets are not accepted.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum Secret {
    /// The value of an environment variable.
    Env(String),
    /// The contents of a file (trailing newline trimmed), relative to the profile.
    File(String),
}

/// A profile that cannot be used. `Display` names the file, and for parse errors the
/// line, column and field.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read profile {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid profile {path}:\n{message}")]
    Parse { path: String, message: String },
    #[error("invalid profile {path}: {message}")]
    Invalid { path: String, message: String },
    #[error("profile {path}: {message}")]
    Secret { path: String, message: String },
}

impl Profile {
    /// Reads and validates a profile file.
    pub fn load(path: &Path) -> Result<Self, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses profile text; `path` is used for messages and relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ProfileError> {
        let shown = path.display().to_string();
        let mut profile: Profile = toml::from_str(text).map_err(|e| ProfileError::Parse {
            path: shown.clone(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        profile.path = path.to_path_buf();
        let invalid = |message: String| ProfileError::Invalid {
            path: shown.clone(),
            message,
        };
        let t = &profile.target;
        match t.transport {
            Transport::Stdio if t.command.is_empty() => {
                return Err(invalid(
                    "target.command is required for transport = \"stdio\"".into(),
                ));
            }
            Transport::Stdio if t.url.is_some() => {
                return Err(invalid(
                    "target.url is only for transport = \"http\"".into(),
                ));
            }
            Transport::Http if t.url.is_none() => {
                return Err(invalid(
                    "target.url is required for transport = \"http\"".into(),
                ));
            }
            _ => {}
        }
        if let Some(url) = &t.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(format!(
                "target.url must be an http:// or https:// URL, got {url:?}"
            )));
        }
        if t.url.as_deref().is_some_and(|u| u.contains("{port}")) && t.command.is_empty() {
            return Err(invalid(
                "target.url uses {port} but there is no target.command to start the server on it"
                    .into(),
            ));
        }
        let mut ids: Vec<&str> = profile.tenants.iter().map(|t| t.id.as_str()).collect();
        ids.sort_unstable();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return Err(invalid(format!("tenant id {:?} appears twice", w[0])));
        }
        Ok(profile)
    }

    /// The directory relative paths resolve against (absolute).
    pub fn base_dir(&self) -> PathBuf {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        match &self.target.cwd {
            Some(cwd) => dir.join(cwd),
            None => dir,
        }
    }

    /// Reads a tenant's secret.
    pub fn secret(&self, secret: &Secret) -> Result<String, ProfileError> {
        let err = |message: String| ProfileError::Secret {
            path: self.path.display().to_string(),
            message,
        };
        match secret {
            Secret::Env(var) => std::env::var(var)
                .map_err(|_| err(format!("environment variable {var} is not set"))),
            Secret::File(file) => {
                let full = self.base_dir().join(file);
                std::fs::read_to_string(&full)
                    .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
                    .map_err(|e| err(format!("cannot read secret file {}: {e}", full.display())))
            }
        }
    }
}

/// Expands `${VAR}` and `${VAR:-default}` from the environment, and `{port}`.
pub fn expand(template: &str, port: Option<u16>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => out.push_str(&v),
            _ => out.push_str(default.unwrap_or("")),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    match port {
        Some(p) => out.replace("{port}", &p.to_string()),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "x"
[target]
transport = "stdio"
command = ["srv", "--stdio"]
[[tenants]]
id = "acme"
credential = { env = "ACME" }
tools = ["a"]
"#;

    #[test]
    fn a_good_profile_parses() {
        let p = Profile::parse(GOOD, Path::new("p.toml")).unwrap();
        assert_eq!(p.target.transport, Transport::Stdio);
        assert_eq!(p.tenants[0].credential, Some(Secret::Env("ACME".into())));
    }

    #[test]
    fn a_misspelt_field_names_file_line_and_field() {
        let bad = GOOD.replace("tools = [\"a\"]", "tool = [\"a\"]");
        let err = Profile::parse(&bad, Path::new("dir/p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dir/p.toml"), "{err}");
        assert!(err.contains("line 9"), "{err}");
        assert!(err.contains("unknown field `tool`"), "{err}");
    }

    #[test]
    fn an_inline_secret_is_refused() {
        let bad = GOOD.replace("{ env = \"ACME\" }", "\"s3cret\"");
        let err = Profile::parse(&bad, Path::new("p.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("credential"), "{err}");
    }

    #[test]
    fn http_needs_a_url_and_port_templates_need_a_command() {
        let http = "name='x'\n[target]\ntransport='http'\n";
        assert!(
            Profile::parse(http, Path::new("p"))
                .unwrap_err()
                .to_string()
                .contains("target.url is required")
        );
        let port = "name='x'\n[target]\ntransport='http'\nurl='http://127.0.0.1:{port}/mcp'\n";
        assert!(
            Profile::parse(port, Path::new("p"))
                .unwrap_err()
                .to_string()
                .contains("{port}")
        );
    }

    #[test]
    fn templates_expand_env_defaults_and_port() {
        assert_eq!(
            expand("${MCPT_SURELY_UNSET:-a/b}/x:{port}", Some(9)),
            "a/b/x:9"
        );
        assert_eq!(expand("plain", None), "plain");
    }
}
