//! The sans-IO core of the reference server.
//!
//! [`Core`] answers `tools/list` and `tools/call` for a [`Caller`] whose identity the
//! transport has already established. Nothing here performs I/O or knows about `rmcp`:
//! results are plain JSON values in the MCP `CallToolResult` shape, which the adapter in
//! [`crate::mcp`] hands to the SDK.

pub mod budget;
pub mod fuzzing;
pub mod gate;
pub mod hashing;
pub mod jws;
pub mod mutants;
pub mod policy;
pub mod replay;
pub mod schema;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod tools;
pub mod verified;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gate::{Authorized, CallContext, WireDenial};
use hmac::{Hmac, KeyInit, Mac};
use policy::{Policy, Session};
use serde_json::{Map, Value, json};
use sha2::Sha256;
use std::fmt;
use std::sync::{Arc, RwLock};
use store::Store;
use tools::{Catalogue, InteropFixture, ToolDef, ToolKind};

/// A `tools/call` refused before any tool ran. Anything a tool itself refuses (bad
/// arguments, not found) is a [`ToolResult`] with `is_error` instead, as the
/// specification asks (2025-11-25, "Error Handling").
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallError {
    /// No such tool, or not one of this tenant's — one answer for both: JSON-RPC
    /// -32602 with the message from `Display`.
    UnknownTool(String),
    /// The call token is missing, invalid, or does not cover the call — one answer for
    /// every reason: JSON-RPC -32001 `Unauthorized call`.
    Unauthorized,
}

/// Fills `buf` from the OS random number generator.
pub fn random_fill(buf: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::fill(buf)
}

/// JSON-RPC error code of [`CallError::Unauthorized`].
pub const UNAUTHORIZED: i32 = -32001;

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::UnknownTool(name) => write!(f, "Unknown tool: {}", name.escape_debug()),
            CallError::Unauthorized => f.write_str("Unauthorized call"),
        }
    }
}

/// A `tools/list` refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// The cursor was not minted for this tenant (or not by this process).
    InvalidCursor,
}

/// The result of a tool call, in the MCP `CallToolResult` shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub content: Vec<Value>,
    pub structured: Option<Value>,
    pub is_error: bool,
}

impl ToolResult {
    fn ok(structured: Value) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": structured.to_string()})],
            structured: Some(structured),
            is_error: false,
        }
    }

    fn content(content: Vec<Value>) -> Self {
        Self {
            content,
            structured: None,
            is_error: false,
        }
    }

    fn error(message: impl Into<String>) -> Self {
        Self {
            content: vec![json!({"type": "text", "text": message.into()})],
            structured: None,
            is_error: true,
        }
    }

    /// The `CallToolResult` JSON object.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("content".into(), Value::Array(self.content.clone()));
        if let Some(s) = &self.structured {
            out.insert("structuredContent".into(), s.clone());
        }
        if self.is_error {
            out.insert("isError".into(), Value::Bool(true));
        }
        Value::Object(out)
    }
}

/// One page of a tenant's tool list.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolPage<'a> {
    pub tools: Vec<&'a ToolDef>,
    pub next_cursor: Option<String>,
}

/// The server's state: the tool catalogue, the store, the current policy.
#[derive(Debug)]
pub struct Core {
    catalogue: Catalogue,
    store: Store,
    policy: RwLock<Arc<Policy>>,
    /// Keys the HMAC that binds pagination cursors to a tenant; random per process.
    cursor_key: [u8; 32],
    /// What one tenant may hold at once (requests in flight).
    budgets: Arc<budget::Budgets>,
    /// Call tokens already used (single-use call tokens).
    used_tokens: replay::UsedTokens,
    /// Benchmarks only (feature `bench-ungated`): calls skip the gate.
    #[cfg(feature = "bench-ungated")]
    ungated: bool,
}

impl Core {
    /// A core with the default storage quotas and budgets.
    pub fn new(policy: Policy) -> Self {
        Self::with_limits(
            policy,
            crate::config::StorageLimits::default(),
            crate::config::Limits::default().max_in_flight_per_tenant,
        )
    }

    /// A core whose store is bounded by `storage` and whose tenants may each have
    /// `max_in_flight` requests served at once.
    pub fn with_limits(
        policy: Policy,
        storage: crate::config::StorageLimits,
        max_in_flight: usize,
    ) -> Self {
        let mut cursor_key = [0u8; 32];
        getrandom::fill(&mut cursor_key).expect("the OS random number generator");
        Self {
            catalogue: Catalogue::new(tools::catalogue()),
            store: Store::new(storage),
            policy: RwLock::new(Arc::new(policy)),
            cursor_key,
            budgets: budget::Budgets::new(max_in_flight),
            used_tokens: Default::default(),
            #[cfg(feature = "bench-ungated")]
            ungated: false,
        }
    }

    /// Benchmarks only: this core serves every call without the gate.
    #[cfg(feature = "bench-ungated")]
    pub fn ungated_for_bench(mut self) -> Self {
        self.ungated = true;
        self
    }

    /// The per-tenant budgets.
    pub fn budgets(&self) -> &Arc<budget::Budgets> {
        &self.budgets
    }

    /// The policy in force now; a request keeps the one it started with.
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Swaps in a new policy (configuration reload). Returns the tenants whose visible
    /// tools changed, so their sessions can be told (`notifications/tools/list_changed`).
    pub fn replace_policy(&self, new: Policy) -> Vec<String> {
        let old = self.policy();
        let mut changed: Vec<String> = Vec::new();
        for tenant in old
            .tenants()
            .iter()
            .map(|t| &t.id)
            .chain(new.tenants().iter().map(|t| &t.id))
        {
            let before: Vec<&str> = self.visible(&old, tenant).map(|t| t.name).collect();
            let after: Vec<&str> = self.visible(&new, tenant).map(|t| t.name).collect();
            if before != after && !changed.contains(tenant) {
                changed.push(tenant.clone());
            }
        }
        *self.policy.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
        changed
    }

    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The tools `tenant` may see, in catalogue order.
    fn visible<'a>(
        &'a self,
        policy: &'a Policy,
        tenant: &'a str,
    ) -> impl Iterator<Item = &'a ToolDef> + 'a {
        let entitled = policy.tenant(tenant);
        let global = policy.holes().global_tool_list();
        self.catalogue
            .iter()
            .filter(move |t| global || entitled.is_some_and(|e| e.entitled(t)))
    }

    fn cursor_tag(&self, tenant: &str, offset: u32) -> [u8; 16] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cursor_key).expect("any key length");
        mac.update(tenant.as_bytes());
        mac.update(&[0]);
        mac.update(&offset.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&full[..16]);
        tag
    }

    fn mint_cursor(&self, tenant: &str, offset: u32) -> String {
        let mut bytes = offset.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.cursor_tag(tenant, offset));
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn open_cursor(&self, tenant: &str, cursor: &str) -> Result<u32, ListError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(cursor)
            .map_err(|_| ListError::InvalidCursor)?;
        if bytes.len() != 4 + 16 {
            return Err(ListError::InvalidCursor);
        }
        let (offset, tag) = bytes.split_at(4);
        let offset = u32::from_be_bytes(offset.try_into().map_err(|_| ListError::InvalidCursor)?);
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.cursor_key).expect("any key length");
        mac.update(tenant.as_bytes());
        mac.update(&[0]);
        mac.update(&offset.to_be_bytes());
        mac.verify_truncated_left(tag)
            .map_err(|_| ListError::InvalidCursor)?;
        Ok(offset)
    }

    /// One page of the tools `session`'s tenant may see. Cursors are bound to the
    /// tenant: one minted in another tenant's session is refused.
    pub fn list_tools(
        &self,
        session: &Session,
        cursor: Option<&str>,
    ) -> Result<ToolPage<'_>, ListError> {
        let policy = self.policy();
        let offset = match cursor {
            Some(c) => self.open_cursor(session.tenant(), c)?,
            None => 0,
        } as usize;
        let page = policy.page_size.max(1);
        let all: Vec<&ToolDef> = self.visible(&policy, session.tenant()).collect();
        // `visible` borrows the policy; re-borrow the tools from the catalogue.
        let tools: Vec<&ToolDef> = all
            .iter()
            .skip(offset)
            .take(page)
            .filter_map(|t| self.catalogue.get(t.name))
            .collect();
        let next = offset + tools.len();
        let next_cursor =
            (next < all.len()).then(|| self.mint_cursor(session.tenant(), next as u32));
        Ok(ToolPage { tools, next_cursor })
    }

    /// Runs one `tools/call`: the gate decides, then the arguments are validated
    /// against the tool's `inputSchema`, then the handler runs in the call's scope.
    pub fn call_tool(
        &self,
        session: &Session,
        name: &str,
        call_token: Option<&str>,
        arguments: Option<&Map<String, Value>>,
        now: u64,
    ) -> Result<ToolResult, CallError> {
        let policy = self.policy();
        let empty = Map::new();
        let args = arguments.unwrap_or(&empty);
        let ctx = CallContext {
            session,
            tool: name,
            call_token,
            arguments: args,
            now,
        };
        #[cfg(feature = "bench-ungated")]
        let decided = if self.ungated {
            gate::ungated_for_bench(&self.catalogue, &ctx)
        } else {
            gate::check(&policy, &self.catalogue, &ctx)
        };
        #[cfg(not(feature = "bench-ungated"))]
        let decided = gate::check(&policy, &self.catalogue, &ctx);
        let mut authorized = match decided {
            Ok(a) => a,
            Err(denial) if denial.wire() == WireDenial::Unauthorized => {
                tracing::info!(tenant = session.tenant(), tool = %name.escape_debug(), reason = %denial, "call denied");
                // The `refusal-carries-data` mutant decorates the refusal with the
                // refused read's output.
                return match gate::refused_read_for_mutant(&policy, &self.catalogue, &ctx) {
                    Some(wrongly) => {
                        let out = self.run(&wrongly, args);
                        let mut refusal = ToolResult::error("Unauthorized call");
                        refusal.structured = out.structured;
                        Ok(refusal)
                    }
                    None => Err(CallError::Unauthorized),
                };
            }
            Err(denial) => {
                tracing::info!(tenant = session.tenant(), tool = %name.escape_debug(), reason = %denial, "call denied");
                return match denial.wire() {
                    WireDenial::UnknownTool => Err(CallError::UnknownTool(name.to_owned())),
                    WireDenial::Unauthorized => Err(CallError::Unauthorized),
                    WireDenial::BadArguments => Ok(ToolResult::error(
                        "tenant_id does not match the authenticated tenant",
                    )),
                };
            }
        };
        let tool = authorized.tool();
        if !policy.holes().schema_unenforced()
            && let Err(e) = schema::validate_arguments(&tool.input_schema, args)
        {
            return Ok(ToolResult::error(format!(
                "Invalid arguments for {}: {e}",
                tool.name
            )));
        }
        if let Some(once) = authorized.take_once()
            && !policy.holes().replayable_call_tokens()
            && !self
                .used_tokens
                .spend(session.tenant(), once.jti, once.until, now)
        {
            tracing::info!(tenant = session.tenant(), tool = %name.escape_debug(), "call denied: call token already used");
            if once.verified_now {
                gate::remember_spent(&policy, &ctx);
            }
            return Err(CallError::Unauthorized);
        }
        Ok(self.run(&authorized, args))
    }

    fn run(&self, call: &Authorized<'_>, args: &Map<String, Value>) -> ToolResult {
        let s = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or_default();
        let scope = call.scope();
        match call.tool().kind {
            ToolKind::NotesCreate => {
                match self
                    .store
                    .create_note(scope, call.principal(), s("title"), s("body"))
                {
                    Ok(note) => ToolResult::ok(json!({"id": note.id, "title": note.title})),
                    Err(full) => ToolResult::error(full.to_string()),
                }
            }
            ToolKind::NotesList => ToolResult::ok(listed("notes", self.store.notes(scope))),
            ToolKind::NotesGet => match self.store.note(scope, s("id")) {
                Some(note) => ToolResult::ok(json!({"note": note})),
                None => ToolResult::error("note not found"),
            },
            ToolKind::Charge => {
                // The schema admits 5.0 as an integer: take the number's integral value.
                let amount = args
                    .get("amount_cents")
                    .and_then(|v| {
                        v.as_u64()
                            .or_else(|| v.as_f64().filter(|f| *f >= 1.0).map(|f| f as u64))
                    })
                    .unwrap_or_default();
                match self
                    .store
                    .charge(scope, call.principal(), amount, s("currency"))
                {
                    Ok(charge) => ToolResult::ok(json!({"charge": charge})),
                    Err(full) => ToolResult::error(full.to_string()),
                }
            }
            ToolKind::ChargesList => ToolResult::ok(listed("charges", self.store.charges(scope))),
            ToolKind::AdminExport => {
                let (notes, charges) = (self.store.notes(scope), self.store.charges(scope));
                let mut out = json!({
                    "tenant": scope.tenant(),
                    "notes": notes.items,
                    "charges": charges.items,
                });
                for (key, omitted) in [
                    ("notes_omitted", notes.omitted),
                    ("charges_omitted", charges.omitted),
                ] {
                    if omitted > 0 {
                        out[key] = json!(omitted);
                    }
                }
                ToolResult::ok(out)
            }
            ToolKind::Interop(fixture) => interop(fixture),
        }
    }
}

/// A list answer: `{key: [...]}`, with `omitted` when older records were left out.
fn listed<T: serde::Serialize>(key: &str, page: store::Page<T>) -> Value {
    let mut out = json!({ key: page.items });
    if page.omitted > 0 {
        out["omitted"] = json!(page.omitted);
    }
    out
}

/// A 1×1 PNG and a tiny WAV, base64, for the content fixtures.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV_TINY: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQIAAAAAAA==";

fn interop(fixture: InteropFixture) -> ToolResult {
    let text = |t: &str| json!({"type": "text", "text": t});
    let image = || json!({"type": "image", "data": PNG_1X1, "mimeType": "image/png"});
    match fixture {
        InteropFixture::SimpleText => {
            ToolResult::content(vec![text("This is a simple text response for testing.")])
        }
        InteropFixture::ImageContent => ToolResult::content(vec![image()]),
        InteropFixture::AudioContent => ToolResult::content(vec![
            json!({"type": "audio", "data": WAV_TINY, "mimeType": "audio/wav"}),
        ]),
        InteropFixture::EmbeddedResource => ToolResult::content(vec![json!({
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content."
            }
        })]),
        InteropFixture::MultipleContentTypes => ToolResult::content(vec![
            text("Multiple content types test:"),
            image(),
            json!({
                "type": "resource",
                "resource": {
                    "uri": "test://mixed-content-resource",
                    "mimeType": "application/json",
                    "text": "{\"test\":\"data\",\"value\":123}"
                }
            }),
        ]),
        InteropFixture::ErrorHandling => {
            ToolResult::error("This tool intentionally returns an error for testing")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testing::{self as fixtures, NOW};

    fn session(core: &Core, tenant: &str) -> Session {
        fixtures::session(&core.policy(), tenant)
    }

    fn token(core: &Core, tenant: &str, sub: &str, tool: &str, action: &str) -> String {
        fixtures::call_token(&core.policy(), "ed", tenant, sub, tool, action, "*")
    }

    fn call(
        core: &Core,
        tenant: &str,
        sub: &str,
        tool: &str,
        action: &str,
        args: Value,
    ) -> Result<ToolResult, CallError> {
        let s = session(core, tenant);
        let t = token(core, tenant, sub, tool, action);
        core.call_tool(&s, tool, Some(&t), args.as_object(), NOW)
    }

    #[test]
    fn a_two_thousand_note_flood_is_refused_at_the_quota_and_lists_stay_bounded() {
        let core = Core::new(fixtures::policy(None));
        // 10 000 four-byte characters: 40 kB a note, the longest body the schema allows.
        let body = "\u{1D11E}".repeat(10_000);
        let (mut stored, mut refusals, mut said) = (0usize, 0usize, String::new());
        for i in 0..2_000 {
            let args = json!({"title": format!("n{i}"), "body": body});
            let out = call(&core, "acme", "alice", "notes_create", "notes:write", args).unwrap();
            if out.is_error {
                refusals += 1;
                said = out.content[0]["text"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
            } else {
                assert_eq!(refusals, 0, "a write succeeded after the quota refused one");
                stored += 1;
            }
        }
        // 8 MiB of text at 40 kB a note: about 209 stored, the rest refused.
        assert!((150..=210).contains(&stored), "{stored} stored");
        assert_eq!(stored + refusals, 2_000);
        assert!(said.starts_with("Storage quota reached"), "{said}");
        assert!(said.contains("nothing was stored"), "{said}");
        // The other tenant's quota is its own.
        let other = call(
            &core,
            "globex",
            "gina",
            "notes_create",
            "notes:write",
            json!({"title": "g"}),
        );
        assert!(!other.unwrap().is_error);
        // One list answers the newest 200 and says how many it left out.
        let list = call(
            &core,
            "acme",
            "alice",
            "notes_list",
            "notes:read",
            json!({}),
        )
        .unwrap();
        let listed = list.structured.expect("structured");
        assert_eq!(listed["notes"].as_array().map(Vec::len), Some(200));
        assert_eq!(listed["omitted"], json!(stored - 200));
        assert_eq!(
            listed["notes"][199]["title"],
            json!(format!("n{}", stored - 1))
        );
    }

    #[test]
    fn a_call_token_is_good_for_one_call_in_any_session() {
        let core = Core::new(fixtures::policy(None));
        let token = token(&core, "acme", "bob", "charge", "billing:charge");
        let args = json!({"amount_cents": 5, "currency": "USD"});
        let charge = |session: &Session| {
            core.call_tool(session, "charge", Some(&token), args.as_object(), NOW)
        };
        let first = session(&core, "acme");
        assert!(!charge(&first).unwrap().is_error);
        // The same token again: in the same session, and in a second one of the tenant.
        assert_eq!(charge(&first), Err(CallError::Unauthorized));
        assert_eq!(
            charge(&session(&core, "acme")),
            Err(CallError::Unauthorized)
        );
        // One charge booked, not three; a fresh token books the next.
        let list = call(
            &core,
            "acme",
            "bob",
            "charges_list",
            "billing:read",
            json!({}),
        )
        .unwrap();
        assert_eq!(
            list.structured.unwrap()["charges"].as_array().map(Vec::len),
            Some(1)
        );
        let again = call(
            &core,
            "acme",
            "bob",
            "charge",
            "billing:charge",
            args.clone(),
        )
        .unwrap();
        assert!(!again.is_error);
        // A token without a jti authorises nothing.
        let no_jti = core.policy().tokens.keys.keys[0]
            .sign(
                policy::CALL_TYP,
                &json!({"iss": fixtures::ISSUER, "aud": fixtures::AUDIENCE, "sub": "bob",
                    "tenant": "acme", "tool": "charge", "action": "billing:charge",
                    "resource": "*", "iat": NOW, "exp": NOW + 60}),
            )
            .unwrap();
        let refused = core.call_tool(&first, "charge", Some(&no_jti), args.as_object(), NOW);
        assert_eq!(refused, Err(CallError::Unauthorized));
    }

    #[test]
    fn invalid_arguments_are_an_error_result_and_write_nothing() {
        let core = Core::new(fixtures::policy(None));
        let out = call(
            &core,
            "acme",
            "alice",
            "notes_create",
            "notes:write",
            json!({"title": 42}),
        )
        .unwrap();
        assert!(out.is_error);
        let list = call(
            &core,
            "acme",
            "alice",
            "notes_list",
            "notes:read",
            json!({}),
        )
        .unwrap();
        assert_eq!(list.structured, Some(json!({"notes": []})));
    }

    #[test]
    fn another_tenants_note_id_reads_as_not_found() {
        let core = Core::new(fixtures::policy(None));
        let made = call(
            &core,
            "acme",
            "alice",
            "notes_create",
            "notes:write",
            json!({"title": "t"}),
        )
        .unwrap();
        let id = made.structured.unwrap()["id"].clone();
        let mine = call(
            &core,
            "acme",
            "alice",
            "notes_get",
            "notes:read",
            json!({"id": id}),
        )
        .unwrap();
        assert!(!mine.is_error);
        let theirs = call(
            &core,
            "globex",
            "gina",
            "notes_get",
            "notes:read",
            json!({"id": id}),
        )
        .unwrap();
        assert!(theirs.is_error);
    }

    #[test]
    fn lists_are_per_tenant_and_cursors_are_bound_to_the_tenant() {
        let core = Core::new(fixtures::policy(None));
        let (acme, globex) = (session(&core, "acme"), session(&core, "globex"));
        let mut names = Vec::new();
        let mut cursor = None;
        loop {
            let page = core.list_tools(&acme, cursor.as_deref()).unwrap();
            names.extend(page.tools.iter().map(|t| t.name));
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert!(names.contains(&"charge") && !names.contains(&"admin_export"));
        let first = core.list_tools(&acme, None).unwrap().next_cursor.unwrap();
        assert_eq!(
            core.list_tools(&globex, Some(&first)),
            Err(ListError::InvalidCursor)
        );
    }

    #[test]
    fn a_revoked_tier_is_reported_as_a_change_for_its_tenant() {
        let core = Core::new(fixtures::policy(None));
        let mut next = fixtures::policy(None);
        next.tenant_mut("acme")
            .unwrap()
            .tiers
            .retain(|t| t != "billing");
        assert_eq!(core.replace_policy(next), vec!["acme".to_owned()]);
    }
}
