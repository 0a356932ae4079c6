//! Argument injection: any JSON object as the arguments of every tool one tenant may
//! call, with valid call tokens — nothing may ever land in the other tenant.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mcp_tenancy_server::core::testing::check_call_arguments(data);
});
