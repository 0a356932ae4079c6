//! `mcp-tenancy-server` — the kit's reference MCP server.
//!
//! ```text
//! mcp-tenancy-server --stdio
//! mcp-tenancy-server --http 127.0.0.1:8931
//! ```

use clap::Parser;
use mcp_tenancy_server::config::Config;
use mcp_tenancy_server::core::{Caller, Core};
use mcp_tenancy_server::mcp::{McpServer, http, stdio};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// A tenant-aware reference MCP server: stdio or Streamable HTTP.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Serve newline-delimited JSON-RPC on stdin/stdout.
    #[arg(long, conflicts_with = "http", required_unless_present = "http")]
    stdio: bool,

    /// Serve Streamable HTTP on ADDR (e.g. 127.0.0.1:8931; port 0 picks a free port).
    /// The bound URL is printed on stderr.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,

    /// Configuration file (TOML). Flags override it.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "MCP_TENANCY_SERVER_CONFIG"
    )]
    config: Option<PathBuf>,

    /// Accept this Origin (repeatable; replaces the configured list). `scheme://host:*`
    /// matches any port. Requests with any other Origin get 403.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,

    /// Accept this Host header value (repeatable; replaces the configured list).
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,

    /// Largest JSON-RPC message accepted, in bytes (stdio line or HTTP body).
    #[arg(long, value_name = "BYTES")]
    max_message_bytes: Option<usize>,

    /// Log filter for stderr (tracing `EnvFilter` syntax), e.g. `info` or `mcp_tenancy_server=debug`.
    #[arg(
        long,
        value_name = "FILTER",
        env = "MCP_TENANCY_LOG",
        default_value = "warn"
    )]
    log: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("mcp-tenancy-server: {e}");
                return ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    if !cli.allowed_origins.is_empty() {
        config.http.allowed_origins = cli.allowed_origins.clone();
    }
    if !cli.allowed_hosts.is_empty() {
        config.http.allowed_hosts = cli.allowed_hosts.clone();
    }
    if let Some(n) = cli.max_message_bytes {
        config.limits.max_message_bytes = n;
    }
    if let Some(addr) = cli.http {
        config.http.addr = addr;
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(run(&cli, config));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-tenancy-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: &Cli, config: Config) -> std::io::Result<()> {
    let core = Arc::new(Core::default());
    let caller = Caller::new("default", "default");
    let server = McpServer::new(core, caller.clone());
    if cli.stdio {
        stdio::serve_stdio(server, config.limits.max_message_bytes).await
    } else {
        let guard = http::Guard::new(&config.http, config.limits.max_message_bytes, caller);
        let app = http::router(server, &config.http, guard);
        http::serve_http(app, config.http.addr, &config.http.path).await
    }
}
