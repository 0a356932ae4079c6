//! `mcp-tenancy`: drives any MCP server — any language, stdio or Streamable HTTP — as
//! several tenants, and checks that they stay apart.
//!
//! - [`profile`]: the declarative target profile (TOML).
//! - [`client`]: the MCP client for both transports, well-formed and hostile, with a
//!   transcript of every exchange.
//! - [`catalogue`]: the stable check ids (T0–T7), requirements, spec references.
//! - [`checks`]: the checks themselves, one module per property.
//! - [`runner`]: runs checks, folds observations into outcomes.
//! - [`expected`]: the expected-failures file.
//! - [`init`]: a first draft profile from a server's tools/list.
//! - [`report`]: JSON, JUnit XML, Markdown and HTML reports.
//! - [`proxy`]: a loopback proxy adding credentials and call tokens (interop).
//! - [`variants`]: hostile spellings of tenant ids and tool names (T3.2, T6.3).

pub mod catalogue;
pub mod checks;
pub mod client;
pub mod expected;
pub mod fuzz;
pub mod init;
pub mod load;
pub mod model;
pub mod profile;
pub mod proxy;
pub mod report;
pub mod runner;
pub mod seeds;
pub mod timefmt;
pub mod variants;
