//! The stdio transport: newline-delimited JSON-RPC, strictly framed.
//!
//! ```text
//! stdin ──▶ bounded line reader ──▶ wire::inspect ──ok──▶ rmcp (duplex pipe)
//!                                          │ error              │
//!                                          ▼                    ▼
//!                                   JSON-RPC error ──▶ one stdout writer (whole lines)
//! ```
//! A line longer than the bound is discarded as it streams (memory stays bounded) and
//! answered with -32600. Everything `rmcp` writes is forwarded line by line, so an
//! error line never lands inside another message.

use super::McpServer;
use crate::wire;
use rmcp::ServiceExt;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// One inbound line, or the fact that it overflowed the bound.
enum Line {
    Complete(Vec<u8>),
    TooLong(usize),
}

/// Reads one `\n`-terminated line of at most `max` bytes; `None` at end of input.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> std::io::Result<Option<Line>> {
    let mut line = Vec::new();
    let mut seen = 0usize;
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(match seen {
                0 => None,
                _ if seen > max => Some(Line::TooLong(seen)),
                _ => Some(Line::Complete(line)),
            });
        }
        let (chunk, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        seen += chunk.len();
        if seen <= max {
            line.extend_from_slice(chunk);
        } else {
            line = Vec::new();
        }
        let consumed = done.unwrap_or(chunk.len());
        reader.consume(consumed);
        if done.is_some() {
            return Ok(Some(if seen > max {
                Line::TooLong(seen)
            } else {
                Line::Complete(line)
            }));
        }
    }
}

/// Serves MCP on `input`/`output` until the input closes.
pub async fn serve<R, W>(
    server: McpServer,
    input: R,
    output: W,
    max_message_bytes: usize,
) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(64);

    // The single writer: whole lines only.
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(mut line) = out_rx.recv().await {
            line.push(b'\n');
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                break;
            }
        }
    });

    // rmcp speaks to us through two in-memory pipes.
    let (to_sdk, sdk_in) = tokio::io::duplex(max_message_bytes + 64 * 1024);
    let (sdk_out, from_sdk) = tokio::io::duplex(64 * 1024);
    let sdk = tokio::spawn(async move {
        match server.serve((sdk_in, sdk_out)).await {
            Ok(running) => {
                let _ = running.waiting().await;
            }
            Err(e) => tracing::warn!(error = %e, "MCP session ended before initialisation"),
        }
    });
    let forward_tx = out_tx.clone();
    let forwarder = tokio::spawn(async move {
        let mut lines = BufReader::new(from_sdk).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if forward_tx.send(line.into_bytes()).await.is_err() {
                break;
            }
        }
    });

    let mut reader = BufReader::new(input);
    let mut to_sdk = to_sdk;
    while let Some(line) = read_line(&mut reader, max_message_bytes).await? {
        let bytes = match line {
            Line::Complete(bytes) => bytes,
            Line::TooLong(n) => {
                let e = wire::FrameError::oversized(n, max_message_bytes);
                let _ = out_tx.send(e.to_response().to_string().into_bytes()).await;
                continue;
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match wire::inspect(&bytes, max_message_bytes) {
            Ok(_) => {
                // The line as validated (one message, no duplicate members), unchanged.
                let mut frame = bytes;
                frame.push(b'\n');
                if to_sdk.write_all(&frame).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                tracing::debug!(code = e.code, message = %e.message, "frame refused");
                let _ = out_tx.send(e.to_response().to_string().into_bytes()).await;
            }
        }
    }
    drop(to_sdk);
    let _ = sdk.await;
    let _ = forwarder.await;
    drop(out_tx);
    let _ = writer.await;
    Ok(())
}

/// Serves MCP on the process's stdin and stdout.
pub async fn serve_stdio(server: McpServer, max_message_bytes: usize) -> std::io::Result<()> {
    serve(
        server,
        tokio::io::stdin(),
        tokio::io::stdout(),
        max_message_bytes,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_skipped_without_buffering_them() {
        let input = format!("{}\nshort\n", "x".repeat(10_000));
        let mut r = BufReader::with_capacity(64, input.as_bytes());
        assert!(matches!(
            read_line(&mut r, 100).await.unwrap(),
            Some(Line::TooLong(10_000))
        ));
        match read_line(&mut r, 100).await.unwrap() {
            Some(Line::Complete(b)) => assert_eq!(b, b"short"),
            _ => panic!("expected the next line"),
        }
        assert!(read_line(&mut r, 100).await.unwrap().is_none());
    }
}
