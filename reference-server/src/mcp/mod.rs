//! The edge: `rmcp` as the protocol layer, and the two transports.
//!
//! - [`handler`]: [`ServerHandler`](rmcp::ServerHandler) over [`crate::core::Core`].
//! - [`stdio`]: newline-delimited JSON-RPC on stdin/stdout, strictly framed.
//! - [`http`]: Streamable HTTP (axum + `rmcp`'s `StreamableHttpService`) behind a guard
//!   that validates Origin, size and framing before the SDK sees a byte.
//! - [`listen`]: the bounded accept loop under it (timeouts, connection caps).

pub mod handler;
pub mod http;
pub mod listen;
pub mod stdio;

pub use handler::McpServer;
