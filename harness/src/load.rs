//! `mcp-tenancy load`: authorised `tools/call`s against any target, as several tenants
//! at once, at fixed concurrency levels for a bounded time — and the noisy-neighbour
//! comparison: one tenant's latency alone, and while another floods.
//!
//! Each concurrent caller is one connection (one session) with one request in flight;
//! callers are spread over the tenants in turn. Call tokens are minted ahead, on a
//! thread of their own per tenant, each with a fresh `jti` where the profile's contract
//! carries one, so that minting does not cap the rate (a starved caller is counted).
//! The profile's pacing is respected (the connections pace themselves), and every
//! refusal is counted and reported: a rate-limited call retried by the pacing counts
//! as a retry, a call the target refused as a refusal, never as a success.
//!
//! Beside every figure: the CPU the server used (its process tree, when the harness
//! launched it: over HTTP the server, over stdio each connection's process) and the
//! load generator's own, so that a reader can tell a server-bound figure from one the
//! generator capped.

use crate::client::{self, ClientError, Conn, Target, Transcript};
use crate::profile::{Placement, Role, Tenant, Transport};
use serde::Serialize;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    /// Concurrent callers, per level.
    pub levels: Vec<usize>,
    /// How long each level is measured.
    pub duration: Duration,
    /// How long each level runs before measuring starts.
    pub warmup: Duration,
    /// The tool called (default: the first `list` tool every taking tenant may call).
    pub tool: Option<String>,
    /// How many of the profile's tenants take part (default: all).
    pub tenants: Option<usize>,
    /// The noisy-neighbour comparison, with this many callers flooding (none: skipped).
    pub flood: Option<usize>,
}

/// The JSON result of a load run.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub target: String,
    pub transport: &'static str,
    pub tool: String,
    pub tenants: Vec<String>,
    pub started: String,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    /// The profile paces each tenant to this many calls a second: the rates are bounded
    /// by it, a latency includes the wait for its pacing slot, and each tenant's
    /// `service` latencies leave that wait out.
    pub paced_calls_per_second: Option<f64>,
    pub levels: Vec<Level>,
    /// The noisy-neighbour comparison, or why it was not run.
    pub neighbour: Result<Neighbour, String>,
}

/// One concurrency level.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub concurrency: usize,
    pub seconds: f64,
    pub calls: u64,
    pub per_second: f64,
    pub ok: u64,
    pub refused: u64,
    pub errors: u64,
    /// Calls the pacing re-sent after a rate-limit answer (each also counted once above).
    pub rate_limited_retries: u64,
    /// Times a caller found no minted token waiting.
    pub token_starved: u64,
    /// The first refusal or error, as the target said it.
    pub first_problem: Option<String>,
    pub server_cpu: Cpu,
    pub generator_cpu: Cpu,
    /// What the server's `[load] stats_url` counted during the measured time.
    pub server_stats: ServerStats,
    pub per_tenant: Vec<TenantLatency>,
}

/// The growth of the counters the server publishes (`[load] stats_url`) over a measured
/// phase, and the hit rate of every `X_hits` / `X_misses` pair among them.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum ServerStats {
    Published {
        /// Counter (its JSON path, dotted) → growth over the phase.
        counters: std::collections::BTreeMap<String, f64>,
        /// `X` → hits / (hits + misses) over the phase (only pairs with lookups).
        hit_rates: std::collections::BTreeMap<String, f64>,
    },
    NotPublished {
        reason: String,
    },
}

/// Latency of one tenant's calls (microseconds; every measured call, ok or not).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TenantLatency {
    pub tenant: String,
    pub callers: usize,
    pub calls: u64,
    pub ok: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The same calls without the time their connection waited for a pacing slot or a
    /// rate-limit back-off — the server's service time. Only when there was a wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<Percentiles>,
}

/// Latency percentiles (microseconds).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    fn of(sorted: &[u32]) -> Self {
        Self {
            p50_us: percentile(sorted, 50.0),
            p90_us: percentile(sorted, 90.0),
            p99_us: percentile(sorted, 99.0),
            max_us: sorted.last().copied().map_or(0, u64::from),
        }
    }
}

/// CPU used during a measured phase, as a share of one core.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Cpu {
    Measured { cores: f64 },
    NotMeasured { reason: String },
}

/// The quiet tenant's latency alone, and while the noisy one floods.
#[derive(Debug, Clone, Serialize)]
pub struct Neighbour {
    pub quiet: String,
    pub noisy: String,
    pub flood_callers: usize,
    pub alone: Level,
    pub with_neighbour: Level,
    /// The quiet tenant's p99 with the neighbour over its p99 alone.
    pub p99_ratio: f64,
}

/// Progress on a terminal (or nowhere).
pub trait Progress: Send {
    fn phase(&mut self, what: &str);
    fn level(&mut self, what: &str, level: &Level);
}

/// Calls counted by every caller of a phase.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    refused: AtomicU64,
    errors: AtomicU64,
    starved: AtomicU64,
    first_problem: Mutex<Option<String>>,
}

impl Tally {
    fn problem(&self, text: String) {
        let mut first = self.first_problem.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(text);
    }
}

/// Tokens minted ahead for one tenant's callers, by a thread of its own.
struct Tokens {
    rx: Mutex<mpsc::Receiver<Result<String, String>>>,
}

impl Tokens {
    /// Starts minting for `grant`; the thread ends when the pool is dropped.
    fn start(target: &Target, grant: crate::model::Grant) -> Result<Option<Arc<Tokens>>, String> {
        let Some(minter) = target.minter().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let minter = minter.clone();
        let lifetime = target.profile.tokens.lifetime_secs;
        let (tx, rx) = mpsc::sync_channel(512);
        let handle = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name(format!("mint-{}", grant.tenant))
            .spawn(move || {
                loop {
                    let token = handle.block_on(minter.call_token(&grant, lifetime));
                    if tx.send(token).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start a minting thread: {e}"))?;
        Ok(Some(Arc::new(Tokens { rx: Mutex::new(rx) })))
    }

    async fn take(&self, tally: &Tally) -> Result<String, String> {
        loop {
            let next = self.rx.lock().unwrap_or_else(|p| p.into_inner()).try_recv();
            match next {
                Ok(token) => return token,
                Err(mpsc::TryRecvError::Empty) => {
                    tally.starved.fetch_add(1, Relaxed);
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err("the minting thread stopped".into());
                }
            }
        }
    }
}

/// One caller's part: a connection of a tenant, its tool and arguments, its tokens.
struct Caller {
    conn: Conn,
    tenant: usize,
    tokens: Option<Arc<Tokens>>,
}

/// The tenants, tool, arguments and token pools of a run.
struct Setup {
    tenants: Vec<Tenant>,
    tool: String,
    arguments: Vec<Value>,
    tokens: Vec<Option<Arc<Tokens>>>,
}

fn choose(target: &Target, plan: &LoadPlan) -> Result<(Vec<Tenant>, String), String> {
    let all = &target.profile.tenants;
    let n = plan.tenants.unwrap_or(all.len()).clamp(1, all.len().max(1));
    let tenants: Vec<Tenant> = all.iter().take(n).cloned().collect();
    if tenants.is_empty() {
        return Err("the profile lists no tenant".into());
    }
    let tool = match &plan.tool {
        Some(t) => t.clone(),
        None => target
            .profile
            .tools
            .iter()
            .filter(|(_, spec)| spec.role == Role::List)
            .map(|(name, _)| name.clone())
            .find(|name| tenants.iter().all(|t| t.entitled(name)))
            .ok_or("no `list` tool every taking tenant may call: name one with --tool")?,
    };
    if let Some(t) = tenants.iter().find(|t| !t.entitled(&tool)) {
        return Err(format!(
            "tenant {:?} is not entitled to {tool:?} in the profile: choose another tool, or fewer tenants (--tenants)",
            t.id
        ));
    }
    Ok((tenants, tool))
}

impl Setup {
    fn new(target: &Target, plan: &LoadPlan) -> Result<Self, String> {
        let (tenants, tool) = choose(target, plan)?;
        let template = target
            .profile
            .tool(&tool)
            .map(|t| serde_json::to_value(&t.arguments).unwrap_or_default())
            .unwrap_or_else(|| Value::Object(Default::default()));
        let mut arguments = Vec::new();
        let mut tokens = Vec::new();
        for t in &tenants {
            arguments.push(crate::checks::fill(
                template.clone(),
                &format!("load-{}", target.salt),
                &Value::String(String::new()),
                &t.id,
            ));
            let principal = t
                .principal_for(&tool)
                .unwrap_or_else(|| t.session_principal());
            let grant = target.profile.grant(&t.id, &principal.id, &tool, "");
            let placed = target.profile.tokens.placement != Placement::None;
            tokens.push(if placed {
                Tokens::start(target, grant)?
            } else {
                None
            });
        }
        Ok(Self {
            tenants,
            tool,
            arguments,
            tokens,
        })
    }

    /// `n` callers of tenant `tenant`, connected and initialised.
    async fn callers(
        &self,
        target: &Target,
        tenant: usize,
        n: usize,
        transcript: &Transcript,
    ) -> Result<Vec<Caller>, ClientError> {
        let t = &self.tenants[tenant];
        let principal = t
            .principal_for(&self.tool)
            .unwrap_or_else(|| t.session_principal());
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let mut conn = target
                .connect_as(&format!("{}#load{i}", t.id), t, &principal, transcript)
                .await?;
            let answer = conn.initialize(client::LATEST_SESSION_VERSION).await?;
            if answer.result().is_none() {
                return Err(ClientError::Refused(format!(
                    "initialize as tenant {} failed: {}",
                    t.id,
                    answer.describe()
                )));
            }
            out.push(Caller {
                conn,
                tenant,
                tokens: self.tokens[tenant].clone(),
            });
        }
        Ok(out)
    }
}

/// The load generator's own CPU seconds (not the server it launched).
fn own_cpu() -> Option<f64> {
    client::own_cpu_secs(std::process::id())
}

fn percentile(sorted: &[u32], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    u64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Runs `callers` for `warmup`, then measures for `duration`.
async fn phase(
    target: &Target,
    setup: &Setup,
    callers: Vec<Caller>,
    warmup: Duration,
    duration: Duration,
    transcript: &Transcript,
) -> (Level, Vec<Caller>) {
    let tally = Arc::new(Tally::default());
    let start = Instant::now();
    let measure_from = start + warmup;
    let deadline = measure_from + duration;
    let concurrency = callers.len();
    let mut per_tenant_callers = vec![0usize; setup.tenants.len()];
    for c in &callers {
        per_tenant_callers[c.tenant] += 1;
    }
    let retries_before = transcript.retries().rate_limited;
    let mut tasks = Vec::new();
    let pids: Vec<Option<u32>> = callers.iter().map(|c| c.conn.server_pid()).collect();
    for mut caller in callers {
        let tally = Arc::clone(&tally);
        let tool = setup.tool.clone();
        let arguments = setup.arguments[caller.tenant].clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies: Vec<u32> = Vec::new();
            let mut service: Vec<u32> = Vec::new();
            let mut waited_any = false;
            let mut ok = 0u64;
            while Instant::now() < deadline {
                let token = match &caller.tokens {
                    Some(pool) => match pool.take(&tally).await {
                        Ok(t) => Some(t),
                        Err(e) => {
                            tally.errors.fetch_add(1, Relaxed);
                            tally.problem(format!("minting a call token: {e}"));
                            break;
                        }
                    },
                    None => None,
                };
                let sent = Instant::now();
                let waited_before = caller.conn.paced_wait();
                let answer = caller
                    .conn
                    .call_tool(&tool, arguments.clone(), token.as_deref())
                    .await;
                let took = sent.elapsed();
                if sent < measure_from {
                    continue;
                }
                let waited = caller.conn.paced_wait().saturating_sub(waited_before);
                waited_any |= !waited.is_zero();
                let micros = |d: Duration| d.as_micros().min(u128::from(u32::MAX)) as u32;
                latencies.push(micros(took));
                service.push(micros(took.saturating_sub(waited)));
                match answer {
                    Ok(a)
                        if a.result()
                            .is_some_and(|r| r.get("isError") != Some(&Value::Bool(true))) =>
                    {
                        tally.ok.fetch_add(1, Relaxed);
                        ok += 1;
                    }
                    Ok(a) => {
                        tally.refused.fetch_add(1, Relaxed);
                        tally.problem(a.describe());
                    }
                    Err(e) => {
                        tally.errors.fetch_add(1, Relaxed);
                        tally.problem(e.to_string());
                        break;
                    }
                }
            }
            (caller, latencies, waited_any.then_some(service), ok)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let before_server = server_cpu(target, &pids).await;
    let before_own = own_cpu();
    let before_stats = stats(target).await;
    let mut latencies: Vec<Vec<u32>> = vec![Vec::new(); setup.tenants.len()];
    let mut service: Vec<Option<Vec<u32>>> = vec![None; setup.tenants.len()];
    let mut oks = vec![0u64; setup.tenants.len()];
    let mut callers = Vec::new();
    for task in tasks {
        if let Ok((caller, mine, waited, ok)) = task.await {
            latencies[caller.tenant].extend(mine);
            if let Some(w) = waited {
                service[caller.tenant].get_or_insert_default().extend(w);
            }
            oks[caller.tenant] += ok;
            callers.push(caller);
        }
    }
    // From the start of measuring to the last answer of a call sent before the deadline.
    let seconds = Instant::now()
        .saturating_duration_since(measure_from)
        .as_secs_f64()
        .max(1e-9);
    let after_server = server_cpu(target, &pids).await;
    let after_own = own_cpu();
    let server_stats = match (before_stats, stats(target).await) {
        (Ok(b), Ok(a)) => growth(&b, &a),
        (Err(reason), _) | (_, Err(reason)) => ServerStats::NotPublished { reason },
    };
    let cpu = |before: Result<f64, String>, after: Result<f64, String>| match (before, after) {
        (Ok(b), Ok(a)) => Cpu::Measured {
            cores: ((a - b) / seconds * 100.0).round() / 100.0,
        },
        (Err(reason), _) | (_, Err(reason)) => Cpu::NotMeasured { reason },
    };
    let server_cpu = cpu(before_server, after_server);
    let generator_cpu = cpu(
        before_own.ok_or_else(|| "cannot read /proc/self".to_owned()),
        after_own.ok_or_else(|| "cannot read /proc/self".to_owned()),
    );
    let per_tenant = setup
        .tenants
        .iter()
        .enumerate()
        .filter(|(i, _)| per_tenant_callers[*i] > 0)
        .map(|(i, t)| {
            let mut l = std::mem::take(&mut latencies[i]);
            l.sort_unstable();
            let all = Percentiles::of(&l);
            TenantLatency {
                tenant: t.id.clone(),
                callers: per_tenant_callers[i],
                calls: l.len() as u64,
                ok: oks[i],
                p50_us: all.p50_us,
                p90_us: all.p90_us,
                p99_us: all.p99_us,
                max_us: all.max_us,
                service: service[i].take().map(|mut w| {
                    w.sort_unstable();
                    Percentiles::of(&w)
                }),
            }
        })
        .collect();
    let (ok, refused, errors) = (
        tally.ok.load(Relaxed),
        tally.refused.load(Relaxed),
        tally.errors.load(Relaxed),
    );
    let calls = ok + refused + errors;
    let first_problem = tally
        .first_problem
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let level = Level {
        concurrency,
        seconds: (seconds * 1000.0).round() / 1000.0,
        calls,
        per_second: (calls as f64 / seconds * 10.0).round() / 10.0,
        ok,
        refused,
        errors,
        rate_limited_retries: u64::from(transcript.retries().rate_limited - retries_before),
        token_starved: tally.starved.load(Relaxed),
        first_problem,
        server_cpu,
        generator_cpu,
        server_stats,
        per_tenant,
    };
    (level, callers)
}

/// The server's CPU seconds so far: its process tree (HTTP, launched by the harness)
/// or the processes of the connections with these ids (stdio).
async fn server_cpu(target: &Target, pids: &[Option<u32>]) -> Result<f64, String> {
    match target.transport() {
        Transport::Http => {
            let pid = target
                .server_pid()
                .await
                .ok_or("the harness did not launch the target (the profile gives only a URL)")?;
            client::tree_cpu_secs(pid).ok_or_else(|| "cannot read /proc (not Linux?)".into())
        }
        Transport::Stdio => pids
            .iter()
            .map(|p| {
                p.and_then(client::tree_cpu_secs)
                    .ok_or_else(|| "cannot read a connection's process in /proc".to_owned())
            })
            .sum(),
    }
}

/// The counters at the profile's `[load] stats_url`, flattened to dotted paths.
async fn stats(target: &Target) -> Result<Vec<(String, f64)>, String> {
    if target.profile.load.stats_url.is_none() {
        return Err("the profile names no [load] stats_url".into());
    }
    let url = target
        .stats_url()
        .await
        .ok_or("the server that [load] stats_url names by its port is not running")?;
    let answer = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = answer.status();
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}"));
    }
    let text = answer.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    let body: Value =
        serde_json::from_str(&text).map_err(|e| format!("GET {url}: not JSON: {e}"))?;
    let mut out = Vec::new();
    flatten("", &body, &mut out);
    if out.is_empty() {
        return Err(format!("GET {url}: no numeric counter in the answer"));
    }
    Ok(out)
}

fn flatten(prefix: &str, value: &Value, out: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(n) => out.extend(n.as_f64().map(|n| (prefix.to_owned(), n))),
        Value::Object(members) => {
            for (k, v) in members {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&path, v, out);
            }
        }
        _ => {}
    }
}

/// Each counter's growth from `before` to `after`, and the hit rate of every
/// `X_hits` / `X_misses` pair whose lookups grew.
fn growth(before: &[(String, f64)], after: &[(String, f64)]) -> ServerStats {
    let before: std::collections::BTreeMap<&str, f64> =
        before.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let counters: std::collections::BTreeMap<String, f64> = after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v - before.get(k.as_str()).copied().unwrap_or(0.0),
            )
        })
        .collect();
    let hit_rates = counters
        .iter()
        .filter_map(|(k, hits)| {
            let stem = k.strip_suffix("_hits")?;
            let misses = counters.get(&format!("{stem}_misses"))?;
            let lookups = hits + misses;
            (lookups > 0.0).then(|| {
                (
                    stem.to_owned(),
                    (hits / lookups * 10_000.0).round() / 10_000.0,
                )
            })
        })
        .collect();
    ServerStats::Published {
        counters,
        hit_rates,
    }
}

async fn close(callers: Vec<Caller>) {
    for c in callers {
        c.conn.close().await;
    }
}

/// Runs `plan` against `target` (already prepared or not: it is prepared here).
pub async fn run(
    target: &Target,
    plan: &LoadPlan,
    progress: &mut dyn Progress,
) -> Result<LoadReport, String> {
    target.prepare().await.map_err(|e| e.to_string())?;
    let setup = Setup::new(target, plan)?;
    let transcript = Transcript::discarding();
    let started = crate::timefmt::rfc3339(std::time::SystemTime::now());
    let paced = target.profile.limits.calls_per_second;
    if let Some(rate) = paced {
        progress.phase(&format!(
            "the profile paces each tenant to {rate} calls/s: rates are bounded by it; latencies include the wait for a pacing slot, service latencies leave it out"
        ));
    }
    let mut levels = Vec::new();
    for &n in &plan.levels {
        progress.phase(&format!(
            "{n} caller(s) over {} tenant(s): {} s warm-up, {} s measured",
            setup.tenants.len(),
            plan.warmup.as_secs_f64(),
            plan.duration.as_secs_f64()
        ));
        let mut callers = Vec::new();
        for i in 0..n {
            let tenant = i % setup.tenants.len();
            let mut one = setup
                .callers(target, tenant, 1, &transcript)
                .await
                .map_err(|e| {
                    format!(
                        "connecting caller {} as {:?}: {e}",
                        i + 1,
                        setup.tenants[tenant].id
                    )
                })?;
            callers.append(&mut one);
        }
        let (level, callers) = phase(
            target,
            &setup,
            callers,
            plan.warmup,
            plan.duration,
            &transcript,
        )
        .await;
        progress.level(&format!("{n} caller(s)"), &level);
        levels.push(level);
        close(callers).await;
    }
    let neighbour = match plan.flood {
        None => Err("not asked for (--flood 0)".to_owned()),
        Some(_) if setup.tenants.len() < 2 => {
            Err("needs two tenants in the profile (and --tenants ≥ 2)".to_owned())
        }
        Some(flood) => neighbour(target, &setup, plan, flood, &transcript, progress).await,
    };
    Ok(LoadReport {
        target: target.profile.name.clone(),
        transport: match target.transport() {
            Transport::Http => "http",
            Transport::Stdio => "stdio",
        },
        tool: setup.tool.clone(),
        tenants: setup.tenants.iter().map(|t| t.id.clone()).collect(),
        started,
        warmup_secs: plan.warmup.as_secs_f64(),
        duration_secs: plan.duration.as_secs_f64(),
        paced_calls_per_second: paced,
        levels,
        neighbour,
    })
}

async fn neighbour(
    target: &Target,
    setup: &Setup,
    plan: &LoadPlan,
    flood: usize,
    transcript: &Transcript,
    progress: &mut dyn Progress,
) -> Result<Neighbour, String> {
    let (quiet, noisy) = (0, 1);
    let name = |i: usize| setup.tenants[i].id.clone();
    progress.phase(&format!("noisy neighbour: {} alone", name(quiet)));
    let alone_callers = setup
        .callers(target, quiet, 1, transcript)
        .await
        .map_err(|e| e.to_string())?;
    let (alone, alone_callers) = phase(
        target,
        setup,
        alone_callers,
        plan.warmup,
        plan.duration,
        transcript,
    )
    .await;
    progress.level(&format!("{} alone", name(quiet)), &alone);
    progress.phase(&format!(
        "noisy neighbour: {} while {} floods with {flood} caller(s)",
        name(quiet),
        name(noisy)
    ));
    let mut both = alone_callers;
    both.append(
        &mut setup
            .callers(target, noisy, flood, transcript)
            .await
            .map_err(|e| e.to_string())?,
    );
    let (with_neighbour, callers) =
        phase(target, setup, both, plan.warmup, plan.duration, transcript).await;
    progress.level(&format!("{} with the flood", name(quiet)), &with_neighbour);
    close(callers).await;
    let p99 = |l: &Level| {
        l.per_tenant
            .iter()
            .find(|t| t.tenant == name(quiet))
            .map_or(0, |t| t.p99_us)
    };
    let p99_ratio = if p99(&alone) == 0 {
        0.0
    } else {
        (p99(&with_neighbour) as f64 / p99(&alone) as f64 * 100.0).round() / 100.0
    };
    Ok(Neighbour {
        quiet: name(quiet),
        noisy: name(noisy),
        flood_callers: flood,
        alone,
        with_neighbour,
        p99_ratio,
    })
}

/// `10s`, `500ms`, `2m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((t, "s"), |i| t.split_at(i));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (say 10s, 500ms or 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    if !(secs > 0.0 && secs < 86_400.0) {
        return Err(format!("{text:?}: a duration between 1 ms and a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `0`, `0,2`, `1-3`: a CPU list as `taskset` writes it.
pub fn parse_cpus(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = || format!("{text:?} is not a CPU list (say 0, 0,2 or 1-3)");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                cpus.extend(a..=b);
            }
            None => cpus.push(part.parse().map_err(|_| bad())?),
        }
    }
    if cpus.is_empty() || cpus.iter().any(|&c| c >= libc::CPU_SETSIZE as usize) {
        return Err(format!("{text:?} is not a CPU list (say 0, 0,2 or 1-3)"));
    }
    Ok(cpus)
}

/// Puts every thread of process `pid` (0: this one) on `cpus`.
pub fn pin(pid: u32, cpus: &[usize]) -> Result<(), String> {
    let pid = if pid == 0 { std::process::id() } else { pid };
    // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET writes inside it for
    // indices below CPU_SETSIZE (checked by `parse_cpus`).
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| format!("cannot list the threads of process {pid}: {e}"))?;
    for task in tasks.flatten() {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        let rc =
            unsafe { libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set) };
        if rc != 0 {
            return Err(format!(
                "cannot pin thread {tid} of process {pid} to CPUs {cpus:?}: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_cpu_lists_parse_or_say_why() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("ten").is_err() && parse_duration("1h").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_cpus("0,2-3"), Ok(vec![0, 2, 3]));
        assert!(parse_cpus("3-1").is_err() && parse_cpus("").is_err() && parse_cpus("x").is_err());
    }

    #[test]
    fn published_counters_grow_and_pairs_give_hit_rates() {
        let mut before = Vec::new();
        flatten(
            "",
            &serde_json::json!({"cache": {"bearer_hits": 10, "bearer_misses": 2, "call_hits": 0,
                "call_misses": 5, "entries": 7}, "version": "x", "idle_hits": 3, "idle_misses": 1}),
            &mut before,
        );
        let mut after = Vec::new();
        flatten(
            "",
            &serde_json::json!({"cache": {"bearer_hits": 40, "bearer_misses": 2, "call_hits": 0,
                "call_misses": 35, "entries": 9, "new_hits": 1}, "idle_hits": 3, "idle_misses": 1}),
            &mut after,
        );
        let ServerStats::Published {
            counters,
            hit_rates,
        } = growth(&before, &after)
        else {
            panic!("published")
        };
        assert_eq!(counters["cache.bearer_hits"], 30.0);
        assert_eq!(counters["cache.entries"], 2.0);
        assert_eq!(
            counters["cache.new_hits"], 1.0,
            "a counter first seen after counts from 0"
        );
        assert!(!counters.contains_key("version"), "text is no counter");
        assert_eq!(hit_rates["cache.bearer"], 1.0);
        assert_eq!(hit_rates["cache.call"], 0.0);
        assert!(
            !hit_rates.contains_key("idle"),
            "no lookups in the phase: no rate"
        );
        assert!(
            !hit_rates.contains_key("cache.new"),
            "no misses counter: no pair"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l: Vec<u32> = (1..=100).collect();
        assert_eq!(
            [50.0, 90.0, 99.0, 100.0].map(|p| percentile(&l, p)),
            [50, 90, 99, 100]
        );
        assert_eq!(percentile(&[7], 99.0), 7);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
