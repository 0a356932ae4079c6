//! Soak: the reference server's memory under a session flood, measured (ignored by
//! default: it takes about a minute and is a measurement, not a check).
//!
//! ```text
//! cargo test -p mcp-tenancy-conformance --test soak -- --ignored --nocapture
//! MCP_TENANCY_SERVER_BIN=target/release/mcp-tenancy-server cargo test … # a release build
//! ```
//!
//! Sixteen bearers (eight subjects in each of the two tenants) open 100,000 sessions in
//! all, in two rounds of 50,000, with the server's idle expiry (set to 20 s here) waited
//! out between. The server runs with its default caps: 2,048 sessions in all, 1,024
//! per tenant, 256 per principal. The test prints what each round got and the
//! resident memory after each, and asserts the documented bound: under 200 MB after
//! both rounds, and the second round's growth under 16 MB.

use mcp_tenancy::checks::flood::{Flooder, Reply, Tally, many, mb};
use mcp_tenancy::client::Target;
use mcp_tenancy::profile::Profile;
use mcp_tenancy_server::core::jws::{Key, decode_key_text};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SESSIONS: usize = 100_000;
const BOUND: u64 = 200 * 1024 * 1024;
const SECOND_ROUND_GROWTH: u64 = 16 * 1024 * 1024;

fn bearer(key: &Key, tenant: &str, subject: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    key.sign(
        "JWT",
        &serde_json::json!({"iss": "https://issuer.mcp-tenancy.test",
            "aud": "urn:mcp-tenancy:reference-server", "sub": subject, "tenant": tenant,
            "iat": now, "exp": now + 3600}),
    )
    .expect("the development key signs")
}

#[test]
#[ignore = "a measurement of about a minute: run with --ignored"]
fn a_hundred_thousand_sessions_in_two_rounds_leave_memory_bounded() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        let path = mcp_tenancy_conformance::reference_profile("http");
        let mut profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        if let Some(bin) = mcp_tenancy_conformance::path_from_env("MCP_TENANCY_SERVER_BIN") {
            profile.target.command[0] = bin.to_string_lossy().into_owned();
        }
        profile.target.setup.push(
            [
                "sh",
                "-c",
                "printf '\\n[sessions]\\nidle_secs = 20\\n' >> {scratch}/reference-server.toml",
            ]
            .map(str::to_owned)
            .to_vec(),
        );
        let target = Target::new(profile);
        let url = target.endpoint().await.unwrap_or_else(|e| panic!("{e}"));
        let key_text = std::fs::read_to_string(
            mcp_tenancy_conformance::workspace_root()
                .join("conformance/targets/dev-keys/ed25519.key"),
        )
        .expect("the development key");
        let seed: [u8; 32] = decode_key_text(&key_text)
            .expect("base64url")
            .try_into()
            .expect("a 32-byte seed");
        let key = Key::ed25519_from_seed("dev-ed25519", &seed);
        let flooders: Arc<Vec<Arc<Flooder>>> = Arc::new(
            ["acme", "globex"]
                .iter()
                .flat_map(|t| (0..8).map(move |i| (t, format!("soak-{i}"))))
                .map(|(t, s)| {
                    let headers = vec![
                        (
                            "Authorization".to_owned(),
                            format!("Bearer {}", bearer(&key, t, &s)),
                        ),
                        ("Content-Type".to_owned(), "application/json".to_owned()),
                        (
                            "Accept".to_owned(),
                            "application/json, text/event-stream".to_owned(),
                        ),
                    ];
                    Flooder::new(&url, headers, Duration::from_secs(30))
                })
                .collect(),
        );
        let before = target
            .server_memory()
            .await
            .expect("memory of the launched server");
        println!("before: {}", mb(before));
        let mut after = Vec::new();
        for round in 1..=2 {
            if round == 2 {
                // Idle expiry (20 s) and the sweeper's tick (5 s).
                tokio::time::sleep(Duration::from_secs(28)).await;
            }
            let started = std::time::Instant::now();
            let f = Arc::clone(&flooders);
            let replies: Vec<Reply> = many(SESSIONS / 2, 32, move |i| {
                let f = Arc::clone(&f[i % f.len()]);
                async move { f.initialize().await }
            })
            .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let memory = target.server_memory().await.expect("memory");
            let accepted = replies.iter().filter(|r| r.session.is_some()).count();
            println!(
                "round {round}: {accepted} sessions accepted in {:.1} s ({}); resident memory {}",
                started.elapsed().as_secs_f64(),
                Tally::of(&replies).describe(),
                mb(memory)
            );
            after.push(memory);
        }
        target.shutdown().await;
        assert!(
            after.iter().all(|m| *m < BOUND),
            "over {}: {after:?}",
            mb(BOUND)
        );
        let growth = after[1].saturating_sub(after[0]);
        assert!(
            growth < SECOND_ROUND_GROWTH,
            "the second round grew memory by {}",
            mb(growth)
        );
    });
}
