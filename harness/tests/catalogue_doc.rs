//! CONFORMANCE.md at the project's root is the catalogue as `mcp-tenancy list
//! --markdown` prints it: a change to `harness/src/catalogue.rs` must come with it.

#[test]
fn conformance_md_is_the_catalogue_as_generated() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../CONFORMANCE.md");
    let shipped = std::fs::read_to_string(&path).expect("CONFORMANCE.md at the project's root");
    assert!(
        shipped == mcp_tenancy::catalogue::markdown(),
        "CONFORMANCE.md is out of date: run `cargo run -p mcp-tenancy -- list --markdown > CONFORMANCE.md`"
    );
}
