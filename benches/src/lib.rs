//! Benchmarks of the per-call authorisation hot path; the groups live in `benches/`.
//! Fixtures come from `mcp_tenancy_server::core::testing`, shared with the server's
//! tests and the fuzz targets, so a benchmark measures the gate and nothing else.
