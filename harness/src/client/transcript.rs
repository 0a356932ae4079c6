//! The record of every exchange of a check, for the report.

use crate::model::{Direction, Frame, Retries};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Bodies longer than this are cut in the transcript (the count of the rest is kept).
pub const MAX_BODY_CHARS: usize = 4096;

/// A shared, append-only list of frames with a common clock, and the count of the
/// retries the harness made.
#[derive(Debug, Clone)]
pub struct Transcript {
    start: Instant,
    frames: Arc<Mutex<Vec<Frame>>>,
    retries: Arc<Mutex<Retries>>,
    /// Frames are kept (off for load runs, which count retries but keep no frames).
    keep: bool,
}

/// Why the harness sent something again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryKind {
    /// The target signalled a rate limit; the same frame went again after a back-off.
    RateLimited,
    /// A read-back was refused; it was tried again before the channel was judged.
    ReadBack,
}

impl Default for Transcript {
    fn default() -> Self {
        Self::new()
    }
}

impl Transcript {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            frames: Arc::default(),
            retries: Arc::default(),
            keep: true,
        }
    }

    /// A transcript that counts retries and keeps no frame: a load run sends hundreds
    /// of thousands, and must not pay for recording them.
    pub fn discarding() -> Self {
        Self {
            keep: false,
            ..Self::new()
        }
    }

    /// Records a frame; `body` may be any bytes (shown as lossy UTF-8, truncated; the
    /// exact bytes kept beside whenever the text is not them).
    pub fn record(
        &self,
        direction: Direction,
        session: &str,
        channel: impl Into<String>,
        body: &[u8],
    ) {
        if !self.keep {
            return;
        }
        let raw = body;
        let text = String::from_utf8_lossy(raw);
        let body = match text.char_indices().nth(MAX_BODY_CHARS) {
            Some((cut, _)) => format!(
                "{}… [{} more bytes]",
                &text[..cut],
                raw.len().saturating_sub(cut)
            ),
            None => text.into_owned(),
        };
        let exact = body.as_bytes() == raw;
        let frame = Frame {
            direction,
            at_ms: self.start.elapsed().as_millis() as u64,
            session: session.to_owned(),
            channel: channel.into(),
            body,
            bytes_base64: (!exact).then(|| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(raw)
            }),
        };
        self.frames
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(frame);
    }

    /// Records a harness note (a timeout, an exit, stderr).
    pub fn note(&self, session: &str, text: impl AsRef<str>) {
        self.record(
            Direction::Note,
            session,
            "harness",
            text.as_ref().as_bytes(),
        );
    }

    /// Counts one retry.
    pub fn count_retry(&self, kind: RetryKind) {
        let mut r = self.retries.lock().unwrap_or_else(|p| p.into_inner());
        match kind {
            RetryKind::RateLimited => r.rate_limited += 1,
            RetryKind::ReadBack => r.read_back += 1,
        }
    }

    /// The retries counted so far.
    pub fn retries(&self) -> Retries {
        *self.retries.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn frames(&self) -> Vec<Frame> {
        self.frames
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_binary_bodies_are_kept_readable() {
        let t = Transcript::new();
        t.record(
            Direction::Sent,
            "s",
            "stdio",
            &vec![b'x'; MAX_BODY_CHARS + 10],
        );
        t.record(Direction::Sent, "s", "stdio", b"\xff\xfe{");
        let frames = t.frames();
        assert!(frames[0].body.ends_with("… [10 more bytes]"));
        assert_eq!(frames[1].body, "\u{fffd}\u{fffd}{");
        // … and each whole, as bytes.
        assert_eq!(frames[0].bytes(), vec![b'x'; MAX_BODY_CHARS + 10]);
        assert_eq!(frames[1].bytes(), b"\xff\xfe{");
        t.record(Direction::Sent, "s", "stdio", b"{\"ok\":1}");
        let plain = &t.frames()[2];
        assert!(plain.bytes_base64.is_none(), "an exact body needs no copy");
        assert_eq!(plain.bytes(), b"{\"ok\":1}");
    }
}
