//! Any bytes as a target profile, through the harness's loader: a clear error that
//! names the file, or a profile that meets the loader's invariants — never a panic.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mcp_tenancy::profile::fuzzing::check_parse(data);
});
