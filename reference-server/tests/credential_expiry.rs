//! A credential is judged for as long as it is used, not only when it is first shown:
//! a GET stream ends once its bearer expires (past the skew) or a reload stops trusting
//! its key, and a stdio session ends once its launch token does — each shown against
//! the `stream-outlives-bearer` mutant too, which keeps them going.

mod common;

use mcp_tenancy_server::core::jws::Key;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const SECRET: [u8; 32] = [5; 32];

/// Each credential case, on the clean server and on the mutant that keeps sessions
/// going: the credential expires, or its key is rotated out.
const CASES: [(&str, Option<&str>); 4] = [
    ("expiry", None),
    ("expiry-mutant", Some("stream-outlives-bearer")),
    ("rotation", None),
    ("rotation-mutant", Some("stream-outlives-bearer")),
];

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A session token of acme signed with `secret`, valid for `lifetime` seconds.
fn bearer(secret: &[u8], lifetime: u64) -> String {
    let now = now();
    Key::hmac("k", secret.to_vec())
        .sign(
            "JWT",
            &serde_json::json!({"iss": "https://issuer.test", "aud": "urn:test", "sub": "ops",
                "tenant": "acme", "iat": now, "exp": now + lifetime}),
        )
        .expect("an HMAC key signs")
}

/// A scratch directory with a configuration of one second of clock skew.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mcpt-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hs.secret"), b64(&SECRET)).unwrap();
    std::fs::write(
        dir.join("server.toml"),
        "[auth]\nissuer = \"https://issuer.test\"\naudience = \"urn:test\"\nclock_skew_secs = 1\n\
         [[auth.keys]]\nkid = \"k\"\nalg = \"HS256\"\nsecret_file = \"hs.secret\"\n\
         [[tenants]]\nid = \"acme\"\ntiers = [\"basic\"]\n",
    )
    .unwrap();
    dir
}

/// Replaces the secret file (a later modification time): the reload drops the old key.
fn rotate(dir: &Path) {
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.join("hs.secret"), b64(&[6; 32])).unwrap();
}

fn server(dir: &Path, mutant: Option<&str>, transport: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mcp-tenancy-server"));
    cmd.arg("--config")
        .arg(dir.join("server.toml"))
        .args(transport);
    if let Some(m) = mutant {
        cmd.args(["--mutant", m]);
    }
    cmd
}

/// Starts the server over HTTP; answers it and its `host:port`.
fn http_server(dir: &Path, mutant: Option<&str>) -> (Child, String) {
    common::spawn_http(server(dir, mutant, &["--http", "127.0.0.1:0"]))
}

/// Sends one request on a fresh connection (closed after it) and answers the response
/// head, the stream left to read.
fn send(addr: &str, method: &str, headers: &[(&str, &str)], body: &str) -> (String, TcpStream) {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut req = format!("{method} /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    tcp.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {}
            Err(e) => panic!("no answer to {method}: {e}"),
        }
    }
    (String::from_utf8_lossy(&head).into_owned(), tcp)
}

/// Opens a session with `bearer` and a GET stream on it; answers the stream.
fn open_stream(addr: &str, bearer: &str) -> TcpStream {
    let auth = format!("Bearer {bearer}");
    let json = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let (head, _) = send(addr, "POST", &json, init);
    assert!(head.starts_with("HTTP/1.1 200"), "initialize: {head}");
    let sid = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("mcp-session-id"))
                .map(|(_, v)| v.trim().to_owned())
        })
        .expect("a session id");
    let session = [
        ("Mcp-Session-Id", sid.as_str()),
        ("MCP-Protocol-Version", "2025-11-25"),
    ];
    let mut posting: Vec<(&str, &str)> = json.to_vec();
    posting.extend_from_slice(&session);
    let (head, _) = send(
        addr,
        "POST",
        &posting,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    );
    assert!(head.starts_with("HTTP/1.1 202"), "initialized: {head}");
    let mut getting: Vec<(&str, &str)> = vec![
        ("Authorization", auth.as_str()),
        ("Accept", "text/event-stream"),
    ];
    getting.extend_from_slice(&session);
    let (head, stream) = send(addr, "GET", &getting, "");
    assert!(head.starts_with("HTTP/1.1 200"), "GET stream: {head}");
    stream
}

/// Reads `stream` until it ends or `within` passes; answers when it ended.
fn ended_within(mut stream: TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    while started.elapsed() < within {
        match stream.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

fn stop(mut child: Child, dir: &Path) {
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_get_stream_ends_when_its_bearer_expires_or_its_key_is_rotated_out() {
    let runs: Vec<_> = CASES
        .into_iter()
        .map(|(name, mutant)| {
            std::thread::spawn(move || {
                let dir = scratch(&format!("stream-{name}"));
                let (child, addr) = http_server(&dir, mutant);
                // Expiry: 2 s of life and 1 s of skew; rotation: an hour of life.
                let expiring = name.starts_with("expiry");
                let stream = open_stream(&addr, &bearer(&SECRET, if expiring { 2 } else { 3600 }));
                if !expiring {
                    rotate(&dir);
                }
                let ended = ended_within(stream, Duration::from_secs(8));
                stop(child, &dir);
                (name, mutant, ended)
            })
        })
        .collect();
    for run in runs {
        let (name, mutant, ended) = run.join().expect("the case ran");
        match mutant {
            None => {
                let ended = ended.unwrap_or_else(|| panic!("{name}: still open 8 s later"));
                // Not before the bearer expired: the stream was served until then.
                if name == "expiry" {
                    assert!(
                        ended >= Duration::from_secs(1),
                        "{name}: ended after {ended:?}"
                    );
                }
            }
            Some(_) => assert!(
                ended.is_none(),
                "{name}: the mutant's stream ended ({ended:?})"
            ),
        }
    }
}

#[test]
fn a_stdio_session_ends_when_its_launch_token_expires_or_its_key_is_rotated_out() {
    let runs: Vec<_> = CASES
        .into_iter()
        .map(|(name, mutant)| {
            std::thread::spawn(move || {
                let dir = scratch(&format!("stdio-{name}"));
                let expiring = name.starts_with("expiry");
                let token = bearer(&SECRET, if expiring { 2 } else { 3600 });
                let mut child = server(&dir, mutant, &["--stdio"])
                    .env("MCP_TENANCY_SESSION_TOKEN", token)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("the server starts");
                let mut stdin = child.stdin.take().unwrap();
                let mut stdout = BufReader::new(child.stdout.take().unwrap());
                writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"t","version":"1"}}}}}}"#).unwrap();
                let mut line = String::new();
                stdout.read_line(&mut line).unwrap();
                assert!(line.contains("\"result\""), "{name}: initialize: {line}");
                if !expiring {
                    rotate(&dir);
                }
                let started = Instant::now();
                let exited = loop {
                    if let Some(status) = child.try_wait().unwrap() {
                        break Some(status);
                    }
                    if started.elapsed() > Duration::from_secs(8) {
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                };
                let mut stderr = String::new();
                if exited.is_some() {
                    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
                }
                drop(stdin);
                stop(child, &dir);
                (name, mutant, exited, stderr)
            })
        })
        .collect();
    for run in runs {
        let (name, mutant, exited, stderr) = run.join().expect("the case ran");
        match mutant {
            None => {
                let status = exited.unwrap_or_else(|| panic!("{name}: still serving 8 s later"));
                assert!(status.success(), "{name}: {status}: {stderr}");
                assert!(
                    stderr.contains("session ended: the launch credential"),
                    "{name}: {stderr}"
                );
            }
            Some(_) => assert!(
                exited.is_none(),
                "{name}: the mutant's session ended: {stderr}"
            ),
        }
    }
}
