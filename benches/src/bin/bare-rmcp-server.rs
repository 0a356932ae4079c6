//! The baseline of the end-to-end load runs: a bare rmcp server — no tenants, no
//! tokens, no gate — with the same trivial tool the reference server's load profile
//! calls (`test_simple_text`, a constant text block), over Streamable HTTP
//! (`--http ADDR`, loopback only) or stdio (the default). What the reference server
//! reaches beside it, on the same load, is what authorisation costs end to end.
//!
//! `cargo run --release -p mcp-tenancy-benches --bin bare-rmcp-server -- --http 127.0.0.1:8931`

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, Implementation, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler, ServiceExt};
use serde_json::json;
use std::sync::Arc;

const TEXT: &str = "This is a simple text response for testing.";

#[derive(Clone)]
struct Bare {
    tool: Arc<Tool>,
}

impl Bare {
    fn new() -> Self {
        let tool = serde_json::from_value(json!({
            "name": "test_simple_text",
            "description": "Returns a simple text content block.",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": false},
            "annotations": {"readOnlyHint": true},
        }))
        .expect("a valid MCP tool");
        Self {
            tool: Arc::new(tool),
        }
    }
}

impl ServerHandler for Bare {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("bare-rmcp-server", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(vec![(*self.tool).clone()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        if request.name != "test_simple_text" {
            return Err(McpError::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            ));
        }
        let result: CallToolResult =
            serde_json::from_value(json!({"content": [{"type": "text", "text": TEXT}]}))
                .expect("a valid tool result");
        Ok(CallToolResponse::Complete(result))
    }
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let http = match args.as_slice() {
        [] => None,
        [flag, addr] if flag == "--http" => match addr.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_loopback() => Some(a),
            _ => {
                eprintln!("bare-rmcp-server: --http takes a loopback address, like 127.0.0.1:8931");
                return std::process::ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("usage: bare-rmcp-server [--http 127.0.0.1:PORT]   (stdio without --http)");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let served = runtime.block_on(async move {
        match http {
            None => {
                let service = Bare::new()
                    .serve((tokio::io::stdin(), tokio::io::stdout()))
                    .await
                    .map_err(|e| e.to_string())?;
                service.waiting().await.map_err(|e| e.to_string())?;
                Ok::<(), String>(())
            }
            Some(addr) => {
                let service = StreamableHttpService::new(
                    || Ok(Bare::new()),
                    Arc::new(LocalSessionManager::default()),
                    StreamableHttpServerConfig::default(),
                );
                let app = axum::Router::new().route_service("/mcp", service);
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                eprintln!("bare-rmcp-server: listening on http://{addr}/mcp");
                // Without TCP_NODELAY every response waits ~40 ms for the peer's ACK.
                loop {
                    let (socket, _) = listener.accept().await.map_err(|e| e.to_string())?;
                    let _ = socket.set_nodelay(true);
                    let app = app.clone();
                    tokio::spawn(async move {
                        let service = hyper_util::service::TowerToHyperService::new(app);
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(socket), service)
                            .await;
                    });
                }
            }
        }
    });
    match served {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bare-rmcp-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
