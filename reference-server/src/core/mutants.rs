//! Deliberate mistakes, one at a time, to measure what the suite catches.
//!
//! `mcp-tenancy-server --mutant NAME` starts the server with exactly one of these; each
//! stands for a seed mistake and must fail the checks of its property. Off by default;
//! starting one prints a loud warning.
//!
//! Every hole a mutant opens is asked through [`Holes`], at the decision points of the
//! gate and the core: with no mutant each answer is the correct policy's, so `gate.rs`
//! reads as the policy itself.

use super::tools::{Catalogue, ToolDef, ToolKind};
use serde_json::{Map, Value};

/// One deliberate mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutant {
    GlobalToolList,
    SessionOnlyAuth,
    TokenScopeIgnored,
    TokenTenantUnbound,
    AlgNoneNoAudience,
    TenantFromArguments,
    SchemaNotEnforced,
    ListOnlyFiltering,
    CaseInsensitiveLookup,
    FoldAfterGate,
    NestedTenantArgument,
    SecondWriteUngated,
    RefusalCarriesData,
    MissingToolClaimWildcard,
    BareIdRouting,
    OldestBindingUnbound,
    NoSessionCaps,
    CritIgnored,
    ReplayableCallTokens,
    UnboundedSessionLifetime,
    SessionIdOracle,
    StreamOutlivesBearer,
}

/// Name, seed mistake, property, and what the server does wrong.
pub struct MutantInfo {
    pub mutant: Mutant,
    pub name: &'static str,
    pub mistake: &'static str,
    pub property: &'static str,
    pub description: &'static str,
}

pub const MUTANTS: &[MutantInfo] = &[
    MutantInfo {
        mutant: Mutant::GlobalToolList,
        name: "global-tool-list",
        mistake: "1",
        property: "T1",
        description: "tools/list returns every registered tool to every tenant",
    },
    MutantInfo {
        mutant: Mutant::SessionOnlyAuth,
        name: "session-only-auth",
        mistake: "2",
        property: "T2.1",
        description: "no call token is required: the authenticated session authorises every call",
    },
    MutantInfo {
        mutant: Mutant::TokenScopeIgnored,
        name: "token-scope-ignored",
        mistake: "2",
        property: "T2.3",
        description: "a valid call token authorises any tool, action and resource",
    },
    MutantInfo {
        mutant: Mutant::TokenTenantUnbound,
        name: "token-tenant-unbound",
        mistake: "2",
        property: "T2.4",
        description: "a call token is not bound to the session's tenant; the call acts for the token's tenant",
    },
    MutantInfo {
        mutant: Mutant::AlgNoneNoAudience,
        name: "alg-none-no-audience",
        mistake: "2",
        property: "T2.5",
        description: "`alg: none` tokens are accepted and the audience is not checked",
    },
    MutantInfo {
        mutant: Mutant::TenantFromArguments,
        name: "tenant-from-arguments",
        mistake: "3",
        property: "T3.1",
        description: "a tenant_id argument decides which tenant the call acts for",
    },
    MutantInfo {
        mutant: Mutant::SchemaNotEnforced,
        name: "schema-not-enforced",
        mistake: "3",
        property: "T3.3",
        description: "arguments are not validated against the tool's inputSchema",
    },
    MutantInfo {
        mutant: Mutant::ListOnlyFiltering,
        name: "list-only-filtering",
        mistake: "6",
        property: "T6.1",
        description: "tools/list is filtered, but tools/call never checks the tenant's entitlement",
    },
    MutantInfo {
        mutant: Mutant::CaseInsensitiveLookup,
        name: "case-insensitive-lookup",
        mistake: "6",
        property: "T6.3",
        description: "the gate denies only exact names of other tenants' tools; dispatch folds case",
    },
    MutantInfo {
        mutant: Mutant::FoldAfterGate,
        name: "fold-after-gate",
        mistake: "6",
        property: "T6.3",
        description: "the gate judges the name as sent; the dispatcher then normalises it (trimmed, lower case, `-` `.` `/` and camelCase as `_`) and checks the token against the tool it found",
    },
    MutantInfo {
        mutant: Mutant::NestedTenantArgument,
        name: "nested-tenant-argument",
        mistake: "3",
        property: "T3.4",
        description: "a tenant_id inside an object-typed argument (notes_create's free-form `meta`) decides which tenant the call acts for",
    },
    MutantInfo {
        mutant: Mutant::SecondWriteUngated,
        name: "second-write-ungated",
        mistake: "2",
        property: "T2.1",
        description: "the second write tool (`charge`) runs without a call token; the first (`notes_create`) is gated",
    },
    MutantInfo {
        mutant: Mutant::RefusalCarriesData,
        name: "refusal-carries-data",
        mistake: "2",
        property: "T2.1",
        description: "a read refused for its call token answers `isError` with what the call would have returned",
    },
    MutantInfo {
        mutant: Mutant::MissingToolClaimWildcard,
        name: "missing-tool-claim-wildcard",
        mistake: "2",
        property: "T2.3",
        description: "a call token without a `tool` claim authorises every tool",
    },
    MutantInfo {
        mutant: Mutant::BareIdRouting,
        name: "bare-id-routing",
        mistake: "—",
        property: "T6.4",
        description: "over HTTP, pending requests are kept in one table keyed by bare JSON-RPC id across sessions: two sessions with the same id in flight get each other's answers",
    },
    MutantInfo {
        mutant: Mutant::OldestBindingUnbound,
        name: "oldest-binding-unbound",
        mistake: "5",
        property: "T5.8",
        description: "over HTTP, sessions are not capped and the session-binding table keeps 1,000 entries by unbinding the oldest without ending its session; an id bound to no one is served to any bearer",
    },
    MutantInfo {
        mutant: Mutant::NoSessionCaps,
        name: "no-session-caps",
        mistake: "5",
        property: "T5.8",
        description: "over HTTP, one tenant may open sessions without limit (only idle expiry ends them)",
    },
    MutantInfo {
        mutant: Mutant::CritIgnored,
        name: "crit-ignored",
        mistake: "2",
        property: "T2.5",
        description: "a token's `crit` header is not looked at: a critical extension nobody understands is taken as if absent",
    },
    MutantInfo {
        mutant: Mutant::ReplayableCallTokens,
        name: "replayable-call-tokens",
        mistake: "2",
        property: "T2.8",
        description: "call tokens are not recorded when used: one token authorises any number of calls, in any session of its tenant, for its whole lifetime",
    },
    MutantInfo {
        mutant: Mutant::UnboundedSessionLifetime,
        name: "unbounded-session-lifetime",
        mistake: "2",
        property: "T2.2",
        description: "session tokens have no maximum lifetime: a bearer valid for years is taken",
    },
    MutantInfo {
        mutant: Mutant::SessionIdOracle,
        name: "session-id-oracle",
        mistake: "2",
        property: "T2.7",
        description: "over HTTP, a live session id of another tenant gets the guard's own 404 while an unknown id reaches the SDK: the answers tell live sessions apart",
    },
    MutantInfo {
        mutant: Mutant::StreamOutlivesBearer,
        name: "stream-outlives-bearer",
        mistake: "2",
        property: "T2.7",
        description: "over HTTP, a GET stream's bearer is judged once, when it opens: the stream goes on after the bearer expires or its key is rotated out (and over stdio the launch token is judged once)",
    },
];

impl Mutant {
    pub fn parse(name: &str) -> Option<Self> {
        MUTANTS.iter().find(|m| m.name == name).map(|m| m.mutant)
    }

    pub fn info(self) -> &'static MutantInfo {
        MUTANTS
            .iter()
            .find(|m| m.mutant == self)
            .expect("every mutant is listed")
    }
}

/// The holes of at most one mutant, asked at each decision point. `Holes(None)` is the
/// correct policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holes(pub Option<Mutant>);

impl Holes {
    fn is(self, mutant: Mutant) -> bool {
        self.0 == Some(mutant)
    }

    /// The tool a name that is no exact tool name reaches: none (correct), or the one
    /// a lenient lookup finds (case folded, or the name normalised).
    pub fn lenient_lookup<'c>(self, catalogue: &'c Catalogue, name: &str) -> Option<&'c ToolDef> {
        match self.0 {
            Some(Mutant::CaseInsensitiveLookup) => catalogue.get_folded(name),
            Some(Mutant::FoldAfterGate) => catalogue.get(&normalised(name)),
            _ => None,
        }
    }

    /// Is the tenant's entitlement left unchecked for this call — `exact`: the name
    /// as sent is the tool's own? (The lenient lookups deny only exact names.)
    pub fn entitlement_unchecked(self, exact: bool) -> bool {
        self.is(Mutant::ListOnlyFiltering) || !exact
    }

    /// Does `tool` run without a call token?
    pub fn call_token_skipped(self, tool: &ToolDef) -> bool {
        self.is(Mutant::SessionOnlyAuth)
            || (self.is(Mutant::SecondWriteUngated) && tool.kind == ToolKind::Charge)
    }

    /// Is a token of another tenant taken as acting for that tenant?
    pub fn token_tenant_unbound(self) -> bool {
        self.is(Mutant::TokenTenantUnbound)
    }

    /// Are the token's tool, action and resource ignored?
    pub fn scope_ignored(self) -> bool {
        self.is(Mutant::TokenScopeIgnored)
    }

    /// Does the token's `tool` claim cover a call of `tool` sent as `sent`? Correct:
    /// it names the tool exactly as sent.
    pub fn tool_claim_covers(self, claim: Option<&str>, sent: &str, tool: &ToolDef) -> bool {
        match self.0 {
            Some(Mutant::MissingToolClaimWildcard) if claim.is_none() => true,
            Some(Mutant::FoldAfterGate) => claim == Some(tool.name),
            _ => claim == Some(sent),
        }
    }

    /// The tenant a mutant takes from the arguments instead of the verified one.
    pub fn tenant_from_arguments(self, args: &Map<String, Value>) -> Option<&str> {
        match self.0 {
            Some(Mutant::TenantFromArguments) => args.get("tenant_id").and_then(Value::as_str),
            Some(Mutant::NestedTenantArgument) => args
                .values()
                .filter_map(Value::as_object)
                .find_map(|o| o.get("tenant_id").and_then(Value::as_str)),
            _ => None,
        }
    }

    /// Does a read refused for its token run anyway, to carry its output in the
    /// refusal?
    pub fn refusal_carries_data(self) -> bool {
        self.is(Mutant::RefusalCarriesData)
    }

    /// Is every registered tool listed to every tenant?
    pub fn global_tool_list(self) -> bool {
        self.is(Mutant::GlobalToolList)
    }

    /// Are arguments left unvalidated?
    pub fn schema_unenforced(self) -> bool {
        self.is(Mutant::SchemaNotEnforced)
    }

    /// Are `alg: none` and any audience accepted?
    pub fn none_and_any_audience(self) -> bool {
        self.is(Mutant::AlgNoneNoAudience)
    }

    /// Are HTTP answers routed by bare JSON-RPC id across sessions?
    pub fn bare_id_routing(self) -> bool {
        self.is(Mutant::BareIdRouting)
    }

    /// Are session caps off (a session is opened whatever a tenant already holds)?
    pub fn session_caps_off(self) -> bool {
        self.is(Mutant::NoSessionCaps)
    }

    /// Is a token's `crit` header ignored?
    pub fn crit_ignored(self) -> bool {
        self.is(Mutant::CritIgnored)
    }

    /// Are call tokens left unrecorded, so that they replay?
    pub fn replayable_call_tokens(self) -> bool {
        self.is(Mutant::ReplayableCallTokens)
    }

    /// Is the session token's lifetime unbounded?
    pub fn unbounded_session_lifetime(self) -> bool {
        self.is(Mutant::UnboundedSessionLifetime)
    }

    /// Does the HTTP guard answer a live foreign session id itself (an oracle)?
    pub fn session_id_oracle(self) -> bool {
        self.is(Mutant::SessionIdOracle)
    }

    /// Is a credential judged only when a stream or a stdio session starts?
    pub fn stream_outlives_bearer(self) -> bool {
        self.is(Mutant::StreamOutlivesBearer)
    }

    /// Is the binding table a bounded cache that unbinds its oldest entry (session left
    /// alive) and serves an unbound id to anyone?
    pub fn oldest_binding_unbound(self) -> bool {
        self.is(Mutant::OldestBindingUnbound)
    }
}

/// A tool name as the `fold-after-gate` dispatcher normalises it: trimmed, camelCase
/// split, lower case, and `-` `.` `/` and spaces as `_`.
pub fn normalised(name: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in name.trim().chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('_');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        out.push(match c {
            '-' | '.' | '/' | ' ' => '_',
            c => c.to_ascii_lowercase(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_normalising_dispatcher_folds_case_separators_and_camel_case() {
        for name in [
            "admin_export",
            " admin_export ",
            "ADMIN_EXPORT",
            "admin-export",
            "admin.export",
            "admin/export",
            "adminExport",
            "AdminExport",
        ] {
            assert_eq!(normalised(name), "admin_export", "{name}");
        }
    }

    #[test]
    fn no_mutant_opens_no_hole() {
        let holes = Holes(None);
        let catalogue = Catalogue::new(super::super::tools::catalogue());
        assert!(holes.lenient_lookup(&catalogue, "ADMIN_EXPORT").is_none());
        assert!(!holes.entitlement_unchecked(true));
        let charge = catalogue.get("charge").expect("charge");
        assert!(!holes.call_token_skipped(charge));
        assert!(!holes.tool_claim_covers(None, "charge", charge));
        assert!(holes.tool_claim_covers(Some("charge"), "charge", charge));
        let args = serde_json::json!({"tenant_id": "globex", "meta": {"tenant_id": "globex"}});
        assert!(
            holes
                .tenant_from_arguments(args.as_object().unwrap())
                .is_none()
        );
    }
}
