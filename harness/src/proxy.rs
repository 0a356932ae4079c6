//! A loopback proxy that plays the orchestrator for a client that cannot: it adds one
//! tenant's session credential to every request and a freshly minted call token to
//! every `tools/call`, and passes everything else through untouched (`Host` and
//! `Origin` included, so the server's own checks still face the client).
//!
//! Its use: the official MCP conformance suite cannot send an `Authorization` header
//! or call tokens; behind this proxy it drives a server that requires both, without the
//! server being weakened for it. `mcp-tenancy proxy PROFILE --tenant T --principal P`.

use crate::client::token::TokenMinter;
use crate::profile::Profile;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use tokio::net::TcpListener;

/// What the proxy adds and where it forwards.
pub struct Proxy {
    /// The MCP endpoint requests are forwarded to.
    pub upstream: String,
    /// The session credential header (e.g. `Authorization: Bearer …`).
    pub session_header: Option<(String, String)>,
    pub profile: Profile,
    pub minter: TokenMinter,
    pub tenant: String,
    pub principal: String,
    client: reqwest::Client,
}

impl Proxy {
    pub fn new(
        upstream: String,
        session_header: Option<(String, String)>,
        profile: Profile,
        minter: TokenMinter,
        tenant: String,
        principal: String,
    ) -> Self {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .build()
            .expect("HTTP client");
        Self {
            upstream,
            session_header,
            profile,
            minter,
            tenant,
            principal,
            client,
        }
    }

    /// The body to forward: a `tools/call` gains a call token in `params._meta`.
    async fn rewrite(&self, body: Bytes) -> Result<Bytes, String> {
        let Some(tool) = called_tool(&body) else {
            return Ok(body);
        };
        let grant = self.profile.grant(&self.tenant, &self.principal, &tool, "");
        let token = self
            .minter
            .call_token(&grant, self.profile.tokens.lifetime_secs)
            .await?;
        Ok(with_call_token(&body, &self.profile.tokens.meta_key, &token).into())
    }
}

/// Hop-by-hop headers (RFC 9110 §7.6.1) are the proxy's own, never forwarded.
fn hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "content-length"
    )
}

/// The tool a `tools/call` request body calls; `None` for anything else.
pub fn called_tool(body: &[u8]) -> Option<String> {
    let message: Value = serde_json::from_slice(body).ok()?;
    if message.get("method")?.as_str()? != "tools/call" {
        return None;
    }
    Some(message.get("params")?.get("name")?.as_str()?.to_owned())
}

/// `body` (a `tools/call`) with `token` in `params._meta[meta_key]`.
pub fn with_call_token(body: &[u8], meta_key: &str, token: &str) -> Vec<u8> {
    let Ok(mut message) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    if let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) {
        let meta = params
            .entry("_meta")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(meta) = meta.as_object_mut() {
            meta.insert(meta_key.to_owned(), Value::String(token.to_owned()));
        }
    }
    serde_json::to_vec(&message).unwrap_or_else(|_| body.to_vec())
}

async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "proxy: body too large").into_response();
    };
    let bytes = match proxy.rewrite(bytes).await {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("proxy: cannot mint a call token: {e}"),
            )
                .into_response();
        }
    };
    let mut upstream = proxy.client.request(parts.method.clone(), &proxy.upstream);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name.as_str()) && name != "authorization" {
            upstream = upstream.header(name, value);
        }
    }
    if let Some((name, value)) = &proxy.session_header {
        upstream = upstream.header(name.as_str(), value.as_str());
    }
    let response = match upstream.body(bytes).send().await {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_GATEWAY,
                format!("proxy: upstream unreachable: {e}"),
            )
                .into_response();
        }
    };
    let mut out = Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        if !hop_by_hop(name.as_str())
            && let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_str().as_bytes()),
                HeaderValue::from_bytes(value.as_bytes()),
            )
        {
            out = out.header(n, v);
        }
    }
    // Streamed: SSE responses may stay open.
    out.body(Body::from_stream(response.bytes_stream()))
        .unwrap_or_else(|_| {
            (StatusCode::BAD_GATEWAY, "proxy: bad upstream response").into_response()
        })
}

/// Serves the proxy on `listener` until the process ends.
pub async fn serve(listener: TcpListener, proxy: Proxy) -> std::io::Result<()> {
    let app = Router::new().fallback(forward).with_state(Arc::new(proxy));
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tools_call_gets_a_token() {
        let call = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{}}}"#;
        assert_eq!(called_tool(call).as_deref(), Some("t"));
        let out: Value = serde_json::from_slice(&with_call_token(call, "k/ey", "tok")).unwrap();
        assert_eq!(out["params"]["_meta"]["k/ey"], "tok");
        assert_eq!(out["params"]["arguments"], serde_json::json!({}));
        assert_eq!(
            called_tool(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#),
            None
        );
        assert_eq!(called_tool(b"not json"), None);
    }
}
