//! Generated sequences of multi-tenant operations (sessions of both tenants, good and
//! bad call tokens, replays, tenant labels, revocations) against the server core,
//! checked against a model: each tenant sees exactly its own state, and no effect lands
//! on a tenant other than the token's.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mcp_tenancy_server::core::fuzzing::check_call_sequence(data);
});
