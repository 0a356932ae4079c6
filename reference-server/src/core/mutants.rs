//! Deliberate mistakes, one at a time, to measure what the suite catches.
//!
//! `mcp-tenancy-server --mutant NAME` starts the server with exactly one of these; each
//! stands for a seed mistake and must fail the checks of its property. Off by default;
//! starting one prints a loud warning.

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
