//! Bytes as a call token, and structured mutations of a valid one (claims, header,
//! segments): nothing verifies — and the gate runs nothing, first time or from its
//! cache — unless the signer made the token exactly; nothing panics.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mcp_tenancy_server::core::fuzzing::check_call_token(data);
});
