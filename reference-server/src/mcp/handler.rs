//! The `rmcp` adapter: translates between SDK types and the sans-IO core.

use crate::core::{CallError, Caller, Core, ToolResult};
use axum::http::request::Parts;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, Implementation,
    ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::json;
use std::sync::Arc;

/// One MCP service instance (one per stdio process or HTTP session), sharing the core.
#[derive(Clone)]
pub struct McpServer {
    core: Arc<Core>,
    /// Tools converted to SDK form once, in catalogue order.
    tools: Arc<Vec<Tool>>,
    /// Who this instance acts for when the request carries no identity of its own.
    default_caller: Caller,
}

impl McpServer {
    pub fn new(core: Arc<Core>, default_caller: Caller) -> Self {
        let tools = core
            .list_tools(&default_caller)
            .map(|t| {
                serde_json::from_value(json!({
                    "name": t.name,
                    "title": t.title,
                    "description": t.description,
                    "inputSchema": t.input_schema,
                    "annotations": {"readOnlyHint": t.read_only},
                }))
                .expect("fixture tool definitions are valid MCP tools")
            })
            .collect();
        Self {
            core,
            tools: Arc::new(tools),
            default_caller,
        }
    }

    /// The caller of this request: an identity the HTTP guard attached to the request,
    /// else the instance's launch identity.
    fn caller<'a>(&'a self, context: &'a RequestContext<RoleServer>) -> &'a Caller {
        context
            .extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<Caller>())
            .unwrap_or(&self.default_caller)
    }
}

fn to_sdk(result: ToolResult) -> Result<CallToolResult, McpError> {
    serde_json::from_value(result.to_json()).map_err(|e| {
        McpError::internal_error(format!("tool produced an invalid result: {e}"), None)
    })
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let mut info = ServerConfig::new(ServerCapabilities::builder().enable_tools().build());
        info.server_info = Implementation::new("mcp-tenancy-server", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Reference server of the mcp-tenancy conformance kit. Every tool acts for the authenticated tenant only."
                .into(),
        );
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.caller(&context);
        let visible: Vec<Tool> = self
            .core
            .list_tools(caller)
            .filter_map(|def| self.tools.iter().find(|t| t.name == def.name).cloned())
            .collect();
        // The list is computed per caller: shared caches must not serve it to others.
        Ok(ListToolsResult::with_all_items(visible).with_cache_scope(CacheScope::Private))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&context);
        match self
            .core
            .call_tool(caller, &request.name, request.arguments.as_ref())
        {
            Ok(result) => Ok(CallToolResponse::Complete(to_sdk(result)?)),
            Err(e @ CallError::UnknownTool(_)) => {
                Err(McpError::invalid_params(e.to_string(), None))
            }
        }
    }
}
