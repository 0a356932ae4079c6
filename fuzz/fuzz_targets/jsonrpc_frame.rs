//! Any byte string through the strict JSON-RPC framing: never a panic, and every
//! verdict is a well-formed JSON-RPC error or a message that re-parses to itself.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mcp_tenancy_server::wire::fuzzing::check_frame(data);
});
