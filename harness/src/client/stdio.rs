//! A stdio connection: the target as a child process speaking newline-delimited JSON.

use super::{Awaited, ClientError, Transcript, is_response};
use crate::model::Direction;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// How much of the target's stderr is kept for reports.
const STDERR_TAIL_BYTES: usize = 4096;
/// Lines longer than this from the target are cut (the target is not trusted either).
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// Keeps the last bytes of a stream.
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<u8>>>);

impl Tail {
    pub(crate) fn push(&self, bytes: &[u8]) {
        let mut q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        q.extend(bytes);
        while q.len() > STDERR_TAIL_BYTES {
            q.pop_front();
        }
    }

    pub fn text(&self) -> String {
        let q = self.0.lock().unwrap_or_else(|p| p.into_inner());
        String::from_utf8_lossy(&q.iter().copied().collect::<Vec<_>>()).into_owned()
    }
}

/// One running child process and its pipes.
pub struct StdioConn {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Vec<u8>>,
    stderr: Tail,
    /// Reads stderr into `stderr` until the process closes it.
    stderr_reader: tokio::task::JoinHandle<()>,
    /// Notifications read while waiting for responses, for [`StdioConn::notifications`].
    pending: Vec<Value>,
    /// Responses that answered no pending request (unsolicited or late).
    strays: Vec<Value>,
    label: String,
    transcript: Transcript,
    /// The process (and group) id while the process has not been stopped.
    pid: Option<u32>,
    /// How long the group may take to stop after SIGTERM.
    grace: Duration,
}

impl StdioConn {
    /// The process id, while the process has not been stopped.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Starts `command` in `cwd` with `env` added.
    pub fn spawn(
        command: &[String],
        cwd: &Path,
        env: &[(String, String)],
        label: &str,
        transcript: Transcript,
        grace: Duration,
    ) -> Result<Self, ClientError> {
        let (program, args) = command
            .split_first()
            .ok_or_else(|| ClientError::Launch("empty command".into()))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(cwd)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| {
            ClientError::Launch(format!(
                "cannot start {program:?} (in {}): {e}",
                cwd.display()
            ))
        })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let tail = Tail::default();
        let stderr_tail = tail.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                stderr_tail.push(&buf[..n]);
            }
        });
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = Vec::new();
                match (&mut reader)
                    .take(MAX_LINE_BYTES as u64)
                    .read_until(b'\n', &mut line)
                    .await
                {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                            line.pop();
                        }
                        if tx.send(line).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        Ok(Self {
            pid: child.id(),
            grace,
            child,
            stdin,
            lines: rx,
            stderr: tail,
            stderr_reader,
            pending: Vec::new(),
            strays: Vec::new(),
            label: label.to_owned(),
            transcript,
        })
    }

    pub fn stderr_tail(&self) -> String {
        self.stderr.text()
    }

    async fn exited(&mut self) -> ClientError {
        // Give the process a moment to be reaped so the status is known.
        let status = tokio::time::timeout(Duration::from_millis(500), self.child.wait()).await;
        let status = match status {
            Ok(Ok(s)) => s.to_string(),
            _ => "closed its stdout".into(),
        };
        // Its last words: let the reader take in what the process wrote before exiting.
        if !self.stderr_reader.is_finished() {
            let _ = tokio::time::timeout(Duration::from_millis(500), &mut self.stderr_reader).await;
        }
        let err = ClientError::Exited {
            status,
            stderr_tail: self.stderr_tail(),
        };
        self.transcript.note(&self.label, err.to_string());
        err
    }

    /// Writes `bytes` followed by a newline.
    pub async fn send(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), ClientError> {
        self.transcript
            .record(Direction::Sent, &self.label, "stdio", bytes);
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.exited().await);
        };
        let write = async {
            stdin.write_all(bytes).await?;
            stdin.write_all(b"\n").await?;
            stdin.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.exited().await),
            Err(_) => {
                let err = ClientError::Timeout {
                    what: format!("writing {} bytes to the target's stdin", bytes.len()),
                    after_ms: timeout.as_millis() as u64,
                    stderr_tail: self.stderr_tail(),
                };
                self.transcript.note(&self.label, err.to_string());
                Err(err)
            }
        }
    }

    /// Waits for the response `awaited` names, recording and skipping notifications,
    /// unparsable lines and responses to other ids (kept as strays: an unsolicited
    /// `id: null` error is never taken as the answer to a pending request).
    pub async fn next_response(
        &mut self,
        awaited: &Awaited,
        timeout: Duration,
    ) -> Result<(Value, String), ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let line = match tokio::time::timeout_at(deadline, self.lines.recv()).await {
                Ok(Some(line)) => line,
                Ok(None) => return Err(self.exited().await),
                Err(_) => {
                    let err = ClientError::Timeout {
                        what: format!("waiting for {}", awaited.describe()),
                        after_ms: timeout.as_millis() as u64,
                        stderr_tail: self.stderr_tail(),
                    };
                    self.transcript.note(
                        &self.label,
                        format!(
                            "no response to {} within {} ms",
                            awaited.describe(),
                            timeout.as_millis()
                        ),
                    );
                    return Err(err);
                }
            };
            self.transcript
                .record(Direction::Received, &self.label, "stdio", &line);
            let Ok(msg) = serde_json::from_slice::<Value>(&line) else {
                continue;
            };
            if awaited.answered_by(&msg) {
                return Ok((msg, String::from_utf8_lossy(&line).into_owned()));
            }
            if is_response(&msg) {
                self.transcript.note(
                    &self.label,
                    format!(
                        "an answer to no pending request (waiting for {}) — kept aside",
                        awaited.describe()
                    ),
                );
                self.strays.push(msg);
            } else if msg.get("id").is_none() && msg.get("method").is_some() {
                self.pending.push(msg);
            }
        }
    }

    /// Responses that answered no pending request, since the last call.
    pub fn take_strays(&mut self) -> Vec<Value> {
        std::mem::take(&mut self.strays)
    }

    /// The notifications received so far and those arriving within `wait`.
    pub async fn notifications(&mut self, wait: Duration) -> Result<Vec<Value>, ClientError> {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(next) = tokio::time::timeout_at(deadline, self.lines.recv()).await {
            let Some(line) = next else {
                return Err(self.exited().await);
            };
            self.transcript
                .record(Direction::Received, &self.label, "stdio", &line);
            if let Ok(msg) = serde_json::from_slice::<Value>(&line)
                && msg.get("id").is_none()
                && msg.get("method").is_some()
            {
                self.pending.push(msg);
            }
        }
        Ok(std::mem::take(&mut self.pending))
    }

    /// Closes stdin and waits briefly for the process to exit; then stops its process
    /// group: SIGTERM, the grace period for every member, SIGKILL for what is left.
    pub async fn close(mut self) {
        self.stdin.take();
        let _ = tokio::time::timeout(EOF_WAIT, self.child.wait()).await;
        let Some(pid) = self.pid.take() else {
            return;
        };
        // What the process started may outlive it: the group is stopped either way.
        super::signal_group(pid, libc::SIGTERM);
        let deadline = tokio::time::Instant::now() + self.grace;
        while tokio::time::Instant::now() < deadline {
            let leader_gone = matches!(self.child.try_wait(), Ok(Some(_)));
            if leader_gone && !super::group_alive(pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        super::signal_group(pid, libc::SIGKILL);
        let _ = self.child.wait().await;
    }
}

impl Drop for StdioConn {
    /// Dropped without [`StdioConn::close`] (a check ended early): the process group is
    /// told to stop; the process itself is killed by `kill_on_drop`.
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            super::signal_group(pid, libc::SIGTERM);
        }
    }
}

/// How long a stdio target may take to exit once its stdin is closed.
const EOF_WAIT: Duration = Duration::from_secs(1);
