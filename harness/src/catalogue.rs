//! The check catalogue: stable ids (never renumbered, never reused), one-line
//! requirements, spec references. Mirrors `CONFORMANCE.md`.

use crate::model::SpecReference;

/// A property of the catalogue (T0–T7), titled as the seed article's checklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    pub id: &'static str,
    pub title: &'static str,
    /// The seed mistake it answers.
    pub mistake: &'static str,
}

pub const PROPERTIES: &[Property] = &[
    Property {
        id: "T0",
        title: "Protocol baseline (robustness)",
        mistake: "—",
    },
    Property {
        id: "T1",
        title: "Dynamic, tenant-scoped tool lists",
        mistake: "1: tools registered globally",
    },
    Property {
        id: "T2",
        title: "Call-level authorization tokens",
        mistake: "2: session identity as authorization",
    },
    Property {
        id: "T3",
        title: "Untrusted argument principle",
        mistake: "3: tenant_id trusted from arguments",
    },
    Property {
        id: "T4",
        title: "Data-layer tenant scoping",
        mistake: "4: process isolation taken for data isolation",
    },
    Property {
        id: "T5",
        title: "Idempotency keys and retry budgets",
        mistake: "5: retries without tenant-scoped keys",
    },
    Property {
        id: "T6",
        title: "Server-side invocation gates",
        mistake: "6: LLM-level tool filtering as security",
    },
    Property {
        id: "T7",
        title: "Signed and sanitised tool manifests",
        mistake: "7: tool descriptions trusted",
    },
];

/// Where a check can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    Any,
    HttpOnly,
}

/// One catalogue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckDef {
    pub id: &'static str,
    pub name: &'static str,
    pub requirement: &'static str,
    pub applies: Applies,
    pub refs: &'static [(&'static str, &'static str)],
}

impl CheckDef {
    /// Does this version of the harness implement the check (has it a body)?
    pub fn implemented(&self) -> bool {
        crate::checks::runner(self.id).is_some()
    }

    pub fn property(&self) -> &'static str {
        self.id.split('.').next().unwrap_or(self.id)
    }

    pub fn spec_references(&self) -> Vec<SpecReference> {
        self.refs
            .iter()
            .map(|(id, url)| SpecReference {
                id: (*id).to_owned(),
                url: (!url.is_empty()).then(|| (*url).to_owned()),
            })
            .collect()
    }
}

const LIFECYCLE: (&str, &str) = (
    "MCP 2025-11-25 lifecycle",
    "https://modelcontextprotocol.io/specification/2025-11-25/basic/lifecycle",
);
const BASIC: (&str, &str) = (
    "MCP 2025-11-25 base protocol",
    "https://modelcontextprotocol.io/specification/2025-11-25/basic",
);
const JSONRPC: (&str, &str) = (
    "JSON-RPC 2.0 §5.1",
    "https://www.jsonrpc.org/specification#error_object",
);
const TRANSPORTS: (&str, &str) = (
    "MCP 2025-11-25 Streamable HTTP",
    "https://modelcontextprotocol.io/specification/2025-11-25/basic/transports",
);
const TRANSPORTS_2026: (&str, &str) = (
    "MCP 2026-07-28 Streamable HTTP (standard headers)",
    "https://modelcontextprotocol.io/specification/2026-07-28/basic/transports",
);
const RFC8259: (&str, &str) = (
    "RFC 8259 §4, §8.1",
    "https://www.rfc-editor.org/rfc/rfc8259",
);

macro_rules! check {
    ($id:literal, $name:literal, $req:literal, $applies:ident, [$($r:expr),*]) => {
        CheckDef { id: $id, name: $name, requirement: $req, applies: Applies::$applies, refs: &[$($r),*] }
    };
}

pub const CHECKS: &[CheckDef] = &[
    check!(
        "T0.1",
        "initialize-lifecycle",
        "`initialize` negotiates a protocol version; requests before it are refused.",
        Any,
        [LIFECYCLE]
    ),
    check!(
        "T0.2",
        "json-rpc-error-codes",
        "Malformed JSON → -32700; not a request → -32600; unknown method → -32601; bad params → -32602. The server keeps serving afterwards.",
        Any,
        [JSONRPC, BASIC]
    ),
    check!(
        "T0.3",
        "hostile-frames",
        "Oversized messages, deep nesting, invalid UTF-8, huge numbers, duplicate keys: a clear error, bounded memory, no crash, no hang.",
        Any,
        [RFC8259, JSONRPC]
    ),
    check!(
        "T0.4",
        "streamable-http-sessions",
        "Streamable HTTP: `Mcp-Session-Id` issued and required, unknown session → 404, `MCP-Protocol-Version` honoured, foreign `Origin` refused (DNS rebinding).",
        HttpOnly,
        [TRANSPORTS]
    ),
    check!(
        "T0.5",
        "standard-headers-match-body",
        "Under 2026-07-28: `Mcp-Method` / `Mcp-Name` headers that disagree with the body are refused.",
        HttpOnly,
        [TRANSPORTS_2026]
    ),
    check!(
        "T0.6",
        "unauthenticated-flood-tolerated",
        "Streamable HTTP: while many half-open and slow connections without credentials are held, an authenticated tenant is still served.",
        HttpOnly,
        [TRANSPORTS]
    ),
    check!(
        "T1.1",
        "list-exactly-entitled",
        "`tools/list` in a tenant's session returns exactly that tenant's entitled tools.",
        Any,
        []
    ),
    check!(
        "T1.2",
        "no-foreign-tool-on-any-page",
        "No tool entitled only to another tenant appears — name, title, description or schema — on any page; a cursor from one tenant reveals nothing in another's.",
        Any,
        []
    ),
    check!(
        "T1.3",
        "no-list-cache-bleed",
        "Concurrent sessions of different tenants never see each other's lists, under random interleavings.",
        Any,
        []
    ),
    check!(
        "T1.4",
        "revocation-updates-list",
        "Revoking an entitlement removes the tool from the next listing and sends `notifications/tools/list_changed` where declared.",
        Any,
        []
    ),
    check!(
        "T1.5",
        "private-cache-scope",
        "Under 2026-07-28, a `tools/list` result that varies by authorisation carries `cacheScope: \"private\"`.",
        HttpOnly,
        []
    ),
    check!(
        "T2.1",
        "call-token-required",
        "A call without a call token is refused, even in an authenticated session.",
        Any,
        []
    ),
    check!(
        "T2.2",
        "token-lifetime-bounded",
        "Expired, not-yet-valid, or over-long-lived tokens are refused (bounded clock skew), and so is a token issued after it expires, one without `iat` where the contract requires it, and a session token living beyond the lifetime the profile declares.",
        Any,
        []
    ),
    check!(
        "T2.3",
        "token-scope-enforced",
        "A token scoped to tool X, action A or resource R does not authorise Y, A' or R', and a token lacking a bound claim (missing, null, empty, another type, a wildcard) authorises nothing — each binding the target's token contract declares; one the seed asks for and the contract lacks is a warning.",
        Any,
        []
    ),
    check!(
        "T2.4",
        "token-bound-to-tenant",
        "A token minted for tenant B (or another principal) is refused in tenant A's session, and the reverse.",
        Any,
        []
    ),
    check!(
        "T2.5",
        "tampered-token-refused",
        "Tampered tokens are refused: flipped bits, `alg: none`, algorithm confusion, wrong audience (and issuer, `kid`, where the contract uses them), truncated encodings, an unknown `crit` extension; a padded encoding of validly signed bytes, and a validly signed token of 400 kB, are warnings (the report gives the time its refusal took).",
        Any,
        []
    ),
    check!(
        "T2.6",
        "per-principal-judgement",
        "One session fanning out for several principals: each call is judged by its own token, never by the session's widest grant.",
        Any,
        []
    ),
    check!(
        "T2.7",
        "every-http-request-authenticated",
        "On HTTP every request is authenticated: a missing or invalid bearer gets 401 with `WWW-Authenticate` (the session bearer gets the forgeries of T2.5; a 400 kB one is refused); a session id alone authorises nothing; a live session id of another tenant is answered exactly like an unknown one — status, headers and body, for every method and `Accept`.",
        HttpOnly,
        []
    ),
    check!(
        "T2.8",
        "call-token-single-use",
        "A call token presented again after a call that took effect takes no further effect (another session: a failure; the same session: a warning).",
        Any,
        []
    ),
    check!(
        "T3.1",
        "tenant-argument-untrusted",
        "A tenant or user id in the arguments that names another tenant never acts on that tenant.",
        Any,
        []
    ),
    check!(
        "T3.2",
        "smuggled-id-spellings",
        "The same holds for every spelling of the smuggled id: case, confusables, normalisation, whitespace, nesting, arrays, duplicate keys, type swaps.",
        Any,
        []
    ),
    check!(
        "T3.3",
        "schema-enforced",
        "Arguments that do not match the tool's `inputSchema` are refused with no partial effect.",
        Any,
        []
    ),
    check!(
        "T3.4",
        "nothing-else-selects-the-tenant",
        "Nothing else the client supplies selects the tenant: not a nested object the schema leaves open, not `_meta` members, not HTTP headers.",
        Any,
        []
    ),
    check!(
        "T4.1",
        "data-isolated",
        "Interleaved CRUD by several tenants: each sees exactly its own state; another tenant's record id reads as not-found.",
        Any,
        []
    ),
    check!(
        "T4.2",
        "shared-database-isolated",
        "Two server instances on one shared database stay isolated.",
        Any,
        []
    ),
    check!(
        "T4.3",
        "row-security-audit",
        "Every tenant table has RLS enabled and forced; the app role cannot bypass it; policies have USING and WITH CHECK.",
        Any,
        []
    ),
    check!(
        "T4.4",
        "tenant-setting-transaction-local",
        "A pooled connection reused by another tenant inherits nothing.",
        Any,
        []
    ),
    check!(
        "T4.5",
        "no-aggregate-leak",
        "Counts, totals and error texts reveal nothing of other tenants.",
        Any,
        []
    ),
    check!(
        "T5.1",
        "idempotent-replay",
        "Same tenant, key and arguments → one side effect, the first result replayed.",
        Any,
        []
    ),
    check!(
        "T5.2",
        "keys-tenant-scoped",
        "The same key from another tenant is independent.",
        Any,
        []
    ),
    check!(
        "T5.3",
        "key-conflict",
        "Same key, different arguments → refused as a conflict.",
        Any,
        []
    ),
    check!(
        "T5.4",
        "key-required",
        "A non-idempotent tool called without a key is refused.",
        Any,
        []
    ),
    check!(
        "T5.5",
        "concurrent-duplicates",
        "N concurrent duplicates → exactly one side effect.",
        Any,
        []
    ),
    check!(
        "T5.6",
        "retry-budget",
        "A tenant past its retry budget is throttled; other tenants keep succeeding.",
        Any,
        []
    ),
    check!(
        "T5.7",
        "durable-keys",
        "Keys survive a server restart when the store is durable.",
        Any,
        []
    ),
    check!(
        "T5.8",
        "tenant-flood-bounded",
        "Streamable HTTP: one tenant's flood of sessions, calls and large bodies is bounded per tenant, starves no other tenant and loosens no binding.",
        HttpOnly,
        [TRANSPORTS]
    ),
    check!(
        "T6.1",
        "unlisted-tool-refused",
        "Calling a tool the tenant was not shown is refused exactly like an unknown tool (volatile members such as trace ids aside), with no effect.",
        Any,
        []
    ),
    check!(
        "T6.2",
        "every-path-gated",
        "Calls that never listed first, batched calls and pipelined calls pass the same gate.",
        Any,
        []
    ),
    check!(
        "T6.3",
        "name-variants-gated",
        "Tool-name variants (case, Unicode, whitespace, namespace prefixes) do not bypass the gate.",
        Any,
        []
    ),
    check!(
        "T6.4",
        "answers-reach-their-session",
        "Every answer reaches only the session that asked: concurrent sessions of several tenants with identical JSON-RPC ids each receive exactly their own results.",
        Any,
        []
    ),
    check!(
        "T7.1",
        "manifest-signed",
        "Every listed tool carries a signature over its canonical form that verifies against the publisher's key.",
        Any,
        []
    ),
    check!(
        "T7.2",
        "rug-pull-detected",
        "A changed description or schema after pinning is detected.",
        Any,
        []
    ),
    check!(
        "T7.3",
        "poisoned-descriptions-flagged",
        "Poisoned descriptions are refused at publication and flagged by the harness.",
        Any,
        []
    ),
    check!(
        "T7.4",
        "publisher-collision-flagged",
        "The same tool name from two publishers in one registry is flagged.",
        Any,
        []
    ),
];

/// The opening of `CONFORMANCE.md`: how the catalogue judges a target.
const MARKDOWN_INTRO: &str = "\
The seven tenant-isolation properties of mcp-tenancy, with the protocol baseline T0
they stand on. Every check has a stable id (`T2.5`) that reports, test names, fuzz
targets and mutants use; ids are never renumbered or reused.

- **Effects, not messages.** A check passes only when the harness has read back,
  through an authorised channel, that nothing crossed a tenant boundary. A server that
  answers \"denied\" but wrote the row has failed; a refusal answered as an ordinary
  result (`isError: false`) is a warning, because clients and models read it as success.
- **The target as it is.** A check assumes nothing of a target beyond what its profile
  declares: its token contract, rate limits, id types, endpoints, credentials, tools and
  their roles. A binding the seed asks for and the contract lacks is a warning with the
  seed's reason, never a failure.
- **Cover, do not sample.** Every tool of a role, every tenant whose entitlements differ.
- **Honest outcomes.** *pass*: every case held, proved on the wire. *fail*: a MUST did
  not hold, or the target crashed or hung. *warn*: only SHOULD-level deviations.
  *skip*: the check cannot run against this target, with the reason. *n/a*: what the
  check tests is absent from the target — a finding another check reports once.
";

/// The catalogue as Markdown (`mcp-tenancy list --markdown`, shipped as
/// `CONFORMANCE.md`).
pub fn markdown() -> String {
    use std::fmt::Write as _;
    let mut out = String::from(
        "<!-- Generated by `mcp-tenancy list --markdown` from harness/src/catalogue.rs; edit that file, not this one. -->\n\n# The conformance catalogue\n\n",
    );
    out.push_str(MARKDOWN_INTRO);
    for p in PROPERTIES {
        let _ = write!(out, "\n## {} — {}\n\n", p.id, p.title);
        if p.mistake != "—" {
            let _ = writeln!(out, "Seed mistake {}.\n", p.mistake);
        }
        out.push_str("| id | name | requirement | runs on | in this version | references |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for c in CHECKS.iter().filter(|c| c.property() == p.id) {
            let refs: Vec<String> = c
                .refs
                .iter()
                .map(|(id, url)| {
                    if url.is_empty() {
                        (*id).to_owned()
                    } else {
                        format!("[{id}]({url})")
                    }
                })
                .collect();
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} |",
                c.id,
                c.name,
                c.requirement.replace('|', "\\|"),
                match c.applies {
                    Applies::Any => "stdio, HTTP",
                    Applies::HttpOnly => "HTTP",
                },
                if c.implemented() {
                    "checked"
                } else {
                    "not yet"
                },
                refs.join(", ")
            );
        }
    }
    out
}

pub fn property(id: &str) -> Option<&'static Property> {
    PROPERTIES.iter().find(|p| p.id == id)
}

pub fn check(id: &str) -> Option<&'static CheckDef> {
    CHECKS.iter().find(|c| c.id == id)
}

/// A `--only` filter: comma-separated ids or property prefixes; `-X` excludes.
/// `T0,-T0.3` selects T0.1, T0.2, T0.4, T0.5. An empty filter selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl Filter {
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut f = Filter::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (list, id) = match part.strip_prefix('-') {
                Some(rest) => (&mut f.exclude, rest),
                None => (&mut f.include, part),
            };
            let known = property(id).is_some() || check(id).is_some();
            if !known {
                return Err(format!(
                    "unknown check or property {id:?} in --only (see `mcp-tenancy list`)"
                ));
            }
            list.push(id.to_owned());
        }
        Ok(f)
    }

    fn matches(pattern: &str, check: &CheckDef) -> bool {
        pattern == check.id || pattern == check.property()
    }

    pub fn selects(&self, check: &CheckDef) -> bool {
        let included =
            self.include.is_empty() || self.include.iter().any(|p| Self::matches(p, check));
        included && !self.exclude.iter().any(|p| Self::matches(p, check))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_belong_to_a_property() {
        let mut ids: Vec<_> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
        for c in CHECKS {
            assert!(property(c.property()).is_some(), "{}", c.id);
        }
    }

    #[test]
    fn every_runner_is_a_catalogue_check_and_every_body_is_reachable() {
        for (id, _) in crate::checks::RUNNERS {
            assert!(
                check(id).is_some(),
                "{id} has a body but no catalogue entry"
            );
        }
        let implemented = CHECKS.iter().filter(|c| c.implemented()).count();
        assert_eq!(
            implemented,
            crate::checks::RUNNERS.len(),
            "one row per check"
        );
    }

    #[test]
    fn filters_include_and_exclude() {
        let f = Filter::parse("T0,-T0.3").unwrap();
        let picked: Vec<_> = CHECKS
            .iter()
            .filter(|c| f.selects(c))
            .map(|c| c.id)
            .collect();
        assert_eq!(picked, ["T0.1", "T0.2", "T0.4", "T0.5", "T0.6"]);
        assert!(Filter::parse("T9").unwrap_err().contains("unknown"));
        assert!(Filter::parse("").unwrap().selects(&CHECKS[0]));
    }
}
