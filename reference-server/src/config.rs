//! Server configuration: a TOML file, overridden by command-line flags.
//!
//! ```toml
//! [http]
//! addr = "127.0.0.1:8931"         # --http ADDR overrides
//! path = "/mcp"
//! allowed_hosts = ["localhost", "127.0.0.1", "::1"]
//! allowed_origins = ["http://localhost:*", "http://127.0.0.1:*"]
//!
//! [limits]
//! max_message_bytes = 1048576     # one JSON-RPC message, stdio line or HTTP body
//! ```

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;

/// The whole configuration file. Unknown fields are refused.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub http: HttpConfig,
    pub limits: Limits,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Listen address; loopback by default.
    pub addr: SocketAddr,
    /// Path of the MCP endpoint.
    pub path: String,
    /// `Host` header values accepted (DNS-rebinding protection). Entries may carry a port.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted; a request with any other Origin gets 403. `:*` matches
    /// any port. Requests without an Origin (non-browser clients) pass.
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// The largest JSON-RPC message accepted, in bytes (stdio line or HTTP body).
    pub max_message_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 8931)),
            path: "/mcp".into(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_bytes: 1024 * 1024,
        }
    }
}

/// A configuration file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.display().to_string(),
            message,
        })
    }

    /// Parses configuration text; the error names line, column and field.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Config =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())?;
        if config.limits.max_message_bytes < 1024 {
            return Err("limits.max_message_bytes must be at least 1024".into());
        }
        if !config.http.path.starts_with('/') {
            return Err("http.path must start with `/`".into());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_field_is_refused_with_its_line() {
        let err =
            Config::parse("[http]\naddr = \"127.0.0.1:1\"\nalowed_origins = []\n").unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("alowed_origins"), "{err}");
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }
}
