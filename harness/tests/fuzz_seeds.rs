//! The `profile_parse` fuzz target's seeds and regressions replay under plain
//! `cargo test`: every file under `fuzz/seeds/profile_parse/` and
//! `fuzz/regressions/profile_parse/` goes through the target's oracle — and the oracle
//! holds on hostile variants generated from them (every prefix and byte flips).

use mcp_tenancy::profile::fuzzing::check_parse;
use std::path::{Path, PathBuf};

fn files(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join("profile_parse");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn profile_parse_seeds_and_regressions_replay() {
    let seeds = files("seeds");
    assert!(!seeds.is_empty(), "no profile_parse seeds");
    for file in seeds.iter().chain(&files("regressions")) {
        let data = std::fs::read(file).expect("a readable seed");
        let run = std::panic::catch_unwind(|| check_parse(&data));
        assert!(run.is_ok(), "{} fails its oracle", file.display());
    }
}

#[test]
fn every_prefix_and_byte_flip_of_a_seed_gets_a_clear_answer() {
    let seed = std::fs::read(files("seeds").first().expect("a seed")).expect("readable");
    for cut in (0..seed.len()).step_by(7) {
        check_parse(&seed[..cut]);
    }
    for at in (0..seed.len()).step_by(11) {
        let mut flipped = seed.clone();
        flipped[at] ^= 0x20;
        check_parse(&flipped);
    }
}
