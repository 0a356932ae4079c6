//! The `rmcp` adapter: translates between SDK types and the sans-IO core.
//!
//! The session identity comes from the transport: the HTTP guard verifies the bearer
//! of every request and attaches a [`Session`] to it; over stdio it is the credential
//! verified at launch. The call token travels in `params._meta` under
//! [`CALL_TOKEN_META_KEY`], or over HTTP in the [`CALL_TOKEN_HEADER`] header.

use crate::core::policy::Session;
use crate::core::{CallError, Core, ListError, ToolResult, UNAUTHORIZED};
use axum::http::request::Parts;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, ErrorCode, Implementation,
    ListToolsResult, PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig,
    Tool,
};
use rmcp::service::{NotificationContext, Peer, RequestContext};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// The `params._meta` key that carries a call token.
pub const CALL_TOKEN_META_KEY: &str = "dev.mcp-tenancy/call-token";
/// The HTTP header that may carry a call token instead.
pub const CALL_TOKEN_HEADER: &str = "mcp-tenancy-call-token";

/// Open sessions by tenant, to tell them when their tool list changes.
#[derive(Default)]
pub struct Listeners(Mutex<Vec<(String, Peer<RoleServer>)>>);

impl Listeners {
    fn register(&self, tenant: &str, peer: Peer<RoleServer>) {
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|(_, p)| !p.is_transport_closed());
        all.push((tenant.to_owned(), peer));
    }

    /// Sends `notifications/tools/list_changed` to every open session of `tenants`.
    pub async fn notify(&self, tenants: &[String]) {
        let peers: Vec<Peer<RoleServer>> = {
            let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
            all.retain(|(_, p)| !p.is_transport_closed());
            all.iter()
                .filter(|(t, _)| tenants.contains(t))
                .map(|(_, p)| p.clone())
                .collect()
        };
        for peer in peers {
            let _ = peer.notify_tool_list_changed().await;
        }
    }
}

/// One MCP service instance (one per stdio process or HTTP session), sharing the core.
#[derive(Clone)]
pub struct McpServer {
    core: Arc<Core>,
    /// Tools converted to SDK form once.
    tools: Arc<HashMap<&'static str, Tool>>,
    /// The stdio launch credential's session; HTTP requests carry their own.
    launch_session: Option<Session>,
    listeners: Arc<Listeners>,
}

impl McpServer {
    pub fn new(
        core: Arc<Core>,
        launch_session: Option<Session>,
        listeners: Arc<Listeners>,
    ) -> Self {
        let tools = core
            .catalogue()
            .iter()
            .map(|t| {
                let tool = serde_json::from_value(json!({
                    "name": t.name,
                    "title": t.title,
                    "description": t.description,
                    "inputSchema": t.input_schema,
                    "annotations": {"readOnlyHint": t.read_only},
                }))
                .expect("fixture tool definitions are valid MCP tools");
                (t.name, tool)
            })
            .collect();
        Self {
            core,
            tools: Arc::new(tools),
            launch_session,
            listeners,
        }
    }

    fn parts(context: &RequestContext<RoleServer>) -> Option<&Parts> {
        context.extensions.get::<Parts>()
    }

    /// The verified session a request or notification carries (HTTP), else the launch
    /// session (stdio).
    fn session_in<'a>(&'a self, extensions: &'a rmcp::model::Extensions) -> Option<&'a Session> {
        extensions
            .get::<Parts>()
            .and_then(|parts| parts.extensions.get::<Session>())
            .or(self.launch_session.as_ref())
    }

    /// The verified session of this request (borrowed: nothing is copied per call).
    fn session<'a>(
        &'a self,
        context: &'a RequestContext<RoleServer>,
    ) -> Result<&'a Session, McpError> {
        self.session_in(&context.extensions)
            .ok_or_else(|| McpError::new(ErrorCode(UNAUTHORIZED), "Unauthorized", None))
    }

    /// The call token from `_meta` or the HTTP header; two different ones are refused.
    fn call_token<'a>(
        request: &'a CallToolRequestParams,
        context: &'a RequestContext<RoleServer>,
    ) -> Result<Option<&'a str>, CallError> {
        let in_meta = request
            .meta
            .as_ref()
            .and_then(|m| m.get(CALL_TOKEN_META_KEY))
            .or_else(|| context.meta.get(CALL_TOKEN_META_KEY))
            .map(|v| v.as_str().ok_or(CallError::Unauthorized))
            .transpose()?;
        let in_header = Self::parts(context)
            .and_then(|p| p.headers.get(CALL_TOKEN_HEADER))
            .map(|v| v.to_str().map_err(|_| CallError::Unauthorized))
            .transpose()?;
        match (in_meta, in_header) {
            (Some(a), Some(b)) if a != b => Err(CallError::Unauthorized),
            (a, b) => Ok(a.or(b)),
        }
    }
}

fn to_sdk(result: ToolResult) -> Result<CallToolResult, McpError> {
    serde_json::from_value(result.to_json()).map_err(|e| {
        McpError::internal_error(format!("tool produced an invalid result: {e}"), None)
    })
}

fn call_error(e: CallError) -> McpError {
    match e {
        CallError::UnknownTool(_) => McpError::invalid_params(e.to_string(), None),
        CallError::Unauthorized => McpError::new(ErrorCode(UNAUTHORIZED), e.to_string(), None),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        let mut info = ServerConfig::new(capabilities);
        info.server_info = Implementation::new("mcp-tenancy-server", env!("CARGO_PKG_VERSION"));
        info.instructions = Some(
            "Reference server of the mcp-tenancy conformance kit. Every tool acts for the authenticated tenant only; \
             every tools/call needs its own call token in params._meta[\"dev.mcp-tenancy/call-token\"]."
                .into(),
        );
        info
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Sessions that completed the handshake hear about changes to their tool list.
        if let Some(session) = self.session_in(&context.extensions) {
            self.listeners
                .register(session.tenant(), context.peer.clone());
        }
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let session = self.session(&context)?;
        let cursor = request.as_ref().and_then(|r| r.cursor.as_deref());
        let page = self
            .core
            .list_tools(session, cursor)
            .map_err(|ListError::InvalidCursor| McpError::invalid_params("Invalid cursor", None))?;
        let tools = page
            .tools
            .iter()
            .filter_map(|t| self.tools.get(t.name).cloned())
            .collect();
        let mut result = ListToolsResult::with_all_items(tools);
        result.next_cursor = page.next_cursor;
        let stateless = context
            .protocol_version()
            .is_some_and(|v| v.as_str() >= ProtocolVersion::V_2026_07_28.as_str());
        if stateless {
            // The list is computed per caller: shared caches must not serve it to others.
            result = result.with_cache_scope(CacheScope::Private);
        }
        Ok(result)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let session = self.session(&context)?;
        let token = Self::call_token(&request, &context).map_err(call_error)?;
        let result = self
            .core
            .call_tool(
                session,
                &request.name,
                token,
                request.arguments.as_ref(),
                now(),
            )
            .map_err(call_error)?;
        Ok(CallToolResponse::Complete(to_sdk(result)?))
    }
}
