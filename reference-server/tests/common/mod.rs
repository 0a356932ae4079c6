//! What the tests that start the server binary share.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `cmd` (the server with `--http 127.0.0.1:0`) and answers it with the
/// `host:port` it says it listens on; the rest of its stderr is drained.
pub fn spawn_http(mut cmd: Command) -> (Child, String) {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("the server starts");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the server exited"
        );
        if let Some(url) = line
            .trim()
            .strip_prefix("mcp-tenancy-server: listening on http://")
        {
            break url.trim_end_matches("/mcp").to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, addr)
}
