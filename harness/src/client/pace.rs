//! Rate limits are the target's right. The harness paces each tenant's requests to the
//! rate the profile declares, and when the target still signals a rate limit — HTTP 429
//! (with `Retry-After`), the profile's JSON-RPC error code, or one of its texts in an
//! error or an `isError` result — it backs off and sends the same frame again, within a
//! bounded budget. So a rate limit never passes for a gate's refusal, and a read-back
//! is never judged on the limiter's answer. Every retry is counted for the report.

use super::{ClientError, Transcript};
use crate::profile::Limits;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The longest single back-off the harness takes, whatever the target's hint says.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Pacing runs this much slower than the declared rate.
const PACING_MARGIN: f64 = 1.05;
/// The first back-off without a hint; doubled on every attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// How a target signals a rate limit, and how long the harness may wait it out.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// The time between two requests of one tenant (`None`: no pacing).
    pub interval: Option<Duration>,
    /// A JSON-RPC error code that means "rate limited".
    pub code: Option<i64>,
    /// Lower-cased texts that mean "rate limited" in an error message or an `isError`
    /// result.
    pub texts: Vec<String>,
    /// The time budget of the retries of one frame (and of one read-back).
    pub budget: Duration,
}

impl RateLimits {
    pub fn from_limits(limits: &Limits) -> Self {
        Self {
            interval: limits
                .calls_per_second
                .filter(|r| *r > 0.0)
                // A little under the declared rate: a limiter that counts a sliding
                // second would otherwise see one request too many now and then.
                .map(|r| Duration::from_secs_f64(PACING_MARGIN / r)),
            code: limits.rate_limit_code,
            texts: limits
                .rate_limit_text
                .iter()
                .map(|t| t.to_lowercase())
                .collect(),
            budget: Duration::from_millis(limits.retry_budget_ms),
        }
    }
}

/// One connection's share of the target's rate limits: its tenant's pacing slots
/// (shared by every connection of the tenant) and the signals to retry on.
#[derive(Debug, Clone)]
pub struct Throttle {
    limits: Arc<RateLimits>,
    /// Tenant id → the earliest time its next request may go out.
    slots: Arc<Mutex<HashMap<String, Instant>>>,
    tenant: String,
    /// Nanoseconds this connection (every clone of its throttle) waited for pacing
    /// slots and rate-limit back-offs.
    waited: Arc<AtomicU64>,
}

/// The retries of one frame: the caller sends at [`Throttle::pace`], asks
/// [`Throttle::limited`] of each answer (with [`Retries::attempt`]) and lets
/// [`Retries::wait_out`] decide whether to send again.
pub struct Retries<'t> {
    throttle: &'t Throttle,
    started: Instant,
    attempt: u32,
}

impl Retries<'_> {
    /// How many times the frame was sent again so far.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// `false` when the answer was no rate limit (it is the answer); after a limit,
    /// waits it out, notes the retry in `transcript` and returns `true` (send again) —
    /// or [`ClientError::RateLimited`] when the wait would pass the budget.
    pub async fn wait_out(
        &mut self,
        limited: Option<Limited>,
        transcript: &Transcript,
        label: &str,
    ) -> Result<bool, ClientError> {
        let Some(limited) = limited else {
            return Ok(false);
        };
        if self.started.elapsed() + limited.wait > self.throttle.budget() {
            return Err(ClientError::RateLimited {
                why: limited.why,
                after_ms: self.started.elapsed().as_millis() as u64,
            });
        }
        self.throttle.note(transcript, label, &limited);
        tokio::time::sleep(limited.wait).await;
        self.throttle.add_wait(limited.wait);
        self.attempt += 1;
        Ok(true)
    }
}

/// Why an answer is a rate limit, and how long to wait before trying again.
#[derive(Debug, Clone, PartialEq)]
pub struct Limited {
    pub wait: Duration,
    pub why: String,
}

impl Throttle {
    /// A throttle for connections of `tenant` (any label for the tenant-less ones).
    pub fn new(
        limits: Arc<RateLimits>,
        slots: Arc<Mutex<HashMap<String, Instant>>>,
        tenant: &str,
    ) -> Self {
        Self {
            limits,
            slots,
            tenant: tenant.to_owned(),
            waited: Arc::default(),
        }
    }

    /// How long this connection has waited, in all, for pacing slots and rate-limit
    /// back-offs: a load run takes it out of a call's latency to give the service time.
    pub fn waited(&self) -> Duration {
        Duration::from_nanos(self.waited.load(Relaxed))
    }

    fn add_wait(&self, wait: Duration) {
        let nanos = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        self.waited.fetch_add(nanos, Relaxed);
    }

    pub fn budget(&self) -> Duration {
        self.limits.budget
    }

    /// Waits for this tenant's next slot, when the profile declares a rate.
    pub async fn pace(&self) {
        let Some(interval) = self.limits.interval else {
            return;
        };
        let at = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let slot = slots.get(&self.tenant).copied().unwrap_or(now).max(now);
            slots.insert(self.tenant.clone(), slot + interval);
            slot
        };
        let now = Instant::now();
        if at > now {
            tokio::time::sleep_until(at).await;
            self.add_wait(at - now);
        }
    }

    /// Is this answer (HTTP `status` and `retry_after` header, or the JSON-RPC
    /// `message`) a rate limit? `attempt` counts the retries so far.
    pub fn limited(
        &self,
        status: Option<u16>,
        retry_after: Option<&str>,
        message: Option<&Value>,
        attempt: u32,
    ) -> Option<Limited> {
        let hinted = |text: &str| retry_hint(text);
        let fallback = FIRST_BACKOFF * 2u32.saturating_pow(attempt.min(4));
        if status == Some(429) {
            let wait = retry_after
                .and_then(|v| v.trim().parse::<f64>().ok())
                .and_then(seconds)
                .unwrap_or(fallback);
            return Some(Limited {
                wait: wait.min(MAX_BACKOFF),
                why: format!(
                    "HTTP 429{}",
                    retry_after
                        .map(|r| format!(", Retry-After: {r}"))
                        .unwrap_or_default()
                ),
            });
        }
        let message = message?;
        let error = message.get("error");
        let code = error.and_then(|e| e.get("code")).and_then(Value::as_i64);
        let text = refusal_text(message)?;
        let lower = text.to_lowercase();
        let by_code = code.is_some() && code == self.limits.code;
        let by_text = self.limits.texts.iter().any(|t| lower.contains(t.as_str()));
        if !(by_code || by_text) {
            return None;
        }
        Some(Limited {
            wait: hinted(&lower).unwrap_or(fallback).min(MAX_BACKOFF),
            why: format!("{:?}", super::shorten(&text, 100)),
        })
    }

    /// The retries of one frame, started now: see [`Retries::wait_out`].
    pub fn retries(&self) -> Retries<'_> {
        Retries {
            throttle: self,
            started: Instant::now(),
            attempt: 0,
        }
    }

    /// Records a retry in `transcript`.
    fn note(&self, transcript: &Transcript, label: &str, limited: &Limited) {
        transcript.count_retry(super::transcript::RetryKind::RateLimited);
        transcript.note(
            label,
            format!(
                "rate limited ({}): the same frame again in {} ms",
                limited.why,
                limited.wait.as_millis()
            ),
        );
    }
}

/// A wait of `secs` seconds, if that is a sane number (not negative, not NaN, not
/// beyond any back-off the harness would take).
fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && secs >= 0.0)
        .then(|| Duration::try_from_secs_f64(secs.min(MAX_BACKOFF.as_secs_f64())).ok())
        .flatten()
}

/// The text of a refusal: an error's message (not its data, where a limiter's counters
/// may sit beside a gate's refusal), or the text content of an `isError` result. `None`
/// for a success.
fn refusal_text(message: &Value) -> Option<String> {
    if let Some(error) = message.get("error") {
        return Some(
            error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        );
    }
    let result = message.get("result")?;
    if result.get("isError") != Some(&Value::Bool(true)) {
        return None;
    }
    Some(super::result_text(result))
}

/// A wait named in a rate-limit text: the first number after "retry" (`retry after 1s`,
/// `retry in 250 ms`, `"retryAfter": 2`), in seconds unless `ms` follows.
fn retry_hint(lower: &str) -> Option<Duration> {
    let rest = &lower[lower.find("retry")?..];
    let start = rest.find(|c: char| c.is_ascii_digit())?;
    let digits: String = rest[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let n: f64 = digits.parse().ok()?;
    let unit = rest[start + digits.len()..].trim_start();
    if unit.starts_with("ms") || unit.starts_with("milli") {
        seconds(n / 1000.0)
    } else {
        seconds(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn throttle(code: Option<i64>) -> Throttle {
        let limits = RateLimits {
            interval: Some(Duration::from_millis(50)),
            code,
            texts: vec!["rate limit".into(), "too many requests".into()],
            budget: Duration::from_secs(10),
        };
        Throttle::new(Arc::new(limits), Arc::default(), "acme")
    }

    #[test]
    fn rate_limits_are_recognised_by_status_code_and_text_with_their_hints() {
        let t = throttle(Some(-32029));
        let l = t.limited(Some(429), Some("2"), None, 0).unwrap();
        assert_eq!(l.wait, Duration::from_secs(2));
        let text = json!({"jsonrpc": "2.0", "id": 1, "result": {"isError": true,
            "content": [{"type": "text", "text": "Rate limited: retry after 1s"}]}});
        assert_eq!(
            t.limited(None, None, Some(&text), 0).unwrap().wait,
            Duration::from_secs(1)
        );
        let code =
            json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32029, "message": "slow down"}});
        assert_eq!(
            t.limited(None, None, Some(&code), 2).unwrap().wait,
            Duration::from_secs(1),
            "no hint: 250 ms doubled twice"
        );
        let ms = json!({"id": 1, "error": {"code": -1, "message": "Too many requests, retry in 300 ms"}});
        assert_eq!(
            t.limited(None, None, Some(&ms), 0).unwrap().wait,
            Duration::from_millis(300)
        );
    }

    #[test]
    fn refusals_and_successes_that_are_not_rate_limits_are_left_alone() {
        let t = throttle(None);
        let denied = json!({"id": 1, "error": {"code": -32001, "message": "Unauthorized call"}});
        assert!(t.limited(Some(200), None, Some(&denied), 0).is_none());
        let ok =
            json!({"id": 1, "result": {"content": [{"type": "text", "text": "rate limit docs"}]}});
        assert!(t.limited(Some(200), None, Some(&ok), 0).is_none());
        let huge =
            json!({"id": 1, "error": {"code": 1, "message": "rate limit, retry after 3600s"}});
        assert_eq!(
            t.limited(None, None, Some(&huge), 0).unwrap().wait,
            MAX_BACKOFF
        );
        // Hostile hints are no reason to panic or to wait forever.
        let absurd = json!({"id": 1, "error": {"code": 1, "message": "rate limit, retry after 99999999999999999999999s"}});
        assert_eq!(
            t.limited(None, None, Some(&absurd), 0).unwrap().wait,
            MAX_BACKOFF
        );
        for header in ["-1", "NaN", "inf", "1e30", "soon"] {
            let l = t.limited(Some(429), Some(header), None, 0).unwrap();
            assert!(l.wait <= MAX_BACKOFF, "{header}");
        }
        // A limiter's counters in a gate refusal's data are not a rate limit.
        let counters = json!({"id": 1, "error": {"code": -32001, "message": "Unauthorized", "data": {"rateLimit": {"remaining": 99}}}});
        assert!(t.limited(None, None, Some(&counters), 0).is_none());
    }

    #[tokio::test]
    async fn pacing_spaces_one_tenants_requests_by_the_interval() {
        let t = throttle(None);
        let start = Instant::now();
        for _ in 0..4 {
            t.pace().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(150));
    }
}
