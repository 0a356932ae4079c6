//! A rotated key file is picked up like a changed configuration: after the HS256
//! secret file is replaced, a bearer signed with the old secret is refused and one
//! signed with the new secret accepted — without SIGHUP.

mod common;

use mcp_tenancy_server::core::jws::Key;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn bearer(secret: &[u8]) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    Key::hmac("rotating", secret.to_vec())
        .sign(
            "JWT",
            &serde_json::json!({"iss": "https://issuer.test", "aud": "urn:test", "sub": "ops",
                "tenant": "acme", "iat": now, "exp": now + 600}),
        )
        .expect("an HMAC key signs")
}

/// The status of an `initialize` with `bearer`.
fn status(addr: &str, bearer: &str) -> u16 {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        tcp,
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {bearer}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut head = [0u8; 12];
    let _ = tcp.read_exact(&mut head);
    String::from_utf8_lossy(&head[9..12]).parse().unwrap_or(0)
}

#[test]
fn a_rotated_secret_refuses_the_old_one_without_a_signal() {
    let dir = std::env::temp_dir().join(format!("mcpt-rotation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (old, new) = ([1u8; 32], [2u8; 32]);
    std::fs::write(dir.join("hs.secret"), b64(&old)).unwrap();
    std::fs::write(
        dir.join("server.toml"),
        "[auth]\nissuer = \"https://issuer.test\"\naudience = \"urn:test\"\n\
         [[auth.keys]]\nkid = \"rotating\"\nalg = \"HS256\"\nsecret_file = \"hs.secret\"\n\
         [[tenants]]\nid = \"acme\"\ntiers = [\"basic\"]\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-tenancy-server"));
    cmd.args(["--config"])
        .arg(dir.join("server.toml"))
        .args(["--http", "127.0.0.1:0"]);
    let (mut server, addr) = common::spawn_http(cmd);

    assert_eq!(status(&addr, &bearer(&old)), 200);
    assert_eq!(status(&addr, &bearer(&new)), 401);
    // Rotate: a new secret in the same file (a later modification time).
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.join("hs.secret"), b64(&new)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let rotated = loop {
        let (o, n) = (status(&addr, &bearer(&old)), status(&addr, &bearer(&new)));
        if (o, n) == (401, 200) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        rotated,
        "the old secret still verified (or the new one did not) 10 s after rotation"
    );
}
