//! Helpers shared by the test files in `tests/`: which target they run against.
//!
//! `cargo test` runs each test binary in this package's directory, not where cargo was
//! invoked; a relative path in `MCP_TENANCY_TARGET` or `MCP_TENANCY_EXPECTED_FAILURES`
//! is therefore taken relative to the workspace root.

use std::path::{Path, PathBuf};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the conformance package sits in the workspace")
        .to_path_buf()
}

/// A path from environment variable `var`, relative paths resolved against the
/// workspace root.
pub fn path_from_env(var: &str) -> Option<PathBuf> {
    std::env::var_os(var).map(|p| workspace_root().join(p))
}

/// The profiles shipped for the reference server.
pub fn reference_profile(transport: &str) -> PathBuf {
    workspace_root().join(format!("conformance/targets/reference-{transport}.toml"))
}
