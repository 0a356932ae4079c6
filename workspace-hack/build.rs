// Empty: [build-dependencies] need a build script to be resolved (see Cargo.toml).
fn main() {}
