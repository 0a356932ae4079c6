//! `mcp-tenancy-server`: the kit's reference MCP server.
//!
//! Layout:
//! - [`core`]: the sans-IO server — fixture tools, their input schemas, the in-memory
//!   store. No `rmcp` type appears in its signatures, so it can be fuzzed and benchmarked
//!   without I/O.
//! - [`wire`]: strict JSON-RPC framing shared by both transports (parse errors,
//!   invalid requests, duplicate keys, size bounds) — the part `rmcp` leaves lenient.
//! - [`mcp`]: the `rmcp` adapter at the edge, and the stdio and Streamable HTTP
//!   transports.
//! - [`config`]: the TOML configuration file and its defaults.

pub mod config;
pub mod core;
pub mod mcp;
pub mod wire;
