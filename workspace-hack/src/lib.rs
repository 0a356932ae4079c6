//! Build-only: this crate has no code. It depends on some of the workspace's
//! dependencies with the features `cargo test --workspace` builds them with, so that
//! `cargo run -p mcp-tenancy` and `cargo build -p mcp-tenancy-server` build the very same
//! units and the README's two commands share one build (see its `Cargo.toml`).
