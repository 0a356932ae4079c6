//! The `mcp-tenancy` command line.
//!
//! ```text
//! mcp-tenancy run conformance/targets/reference-http.toml --out mcp-tenancy-report
//! mcp-tenancy run my-server.toml --only T0,-T0.3 --expected-failures known.toml
//! mcp-tenancy init -- python3 server.py        # a draft profile from its tools/list
//! mcp-tenancy list [--markdown]
//! mcp-tenancy load conformance/targets/reference-http.toml --concurrency 1,4,16
//! mcp-tenancy seeds mcp-tenancy-report/report.json --out fuzz/seeds
//! mcp-tenancy fuzz conformance/targets/reference-http.toml --time 60s [--seed N]
//! ```

use clap::{Parser, Subcommand};
use mcp_tenancy::catalogue::{self, Filter};
use mcp_tenancy::client::Target;
use mcp_tenancy::expected::{self, ExpectedFailures};
use mcp_tenancy::model::CheckResult;
use mcp_tenancy::profile::Profile;
use mcp_tenancy::{load, report, runner};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Checks that a multi-tenant MCP server keeps its tenants apart.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the suite against the target a profile describes.
    Run {
        /// The target profile (TOML). See the README for the format.
        profile: PathBuf,
        /// Select checks: comma-separated ids or properties; `-X` excludes
        /// (e.g. `T0,-T0.3`). Default: every implemented check.
        #[arg(long, value_name = "SPEC", default_value = "")]
        only: String,
        /// Directory for report.json, junit.xml, summary.md and report.html.
        #[arg(long, value_name = "DIR", default_value = "mcp-tenancy-report")]
        out: PathBuf,
        /// Checks known to fail, each with its reason (TOML). Unlisted failures fail
        /// the run, and so does a listed check that now passes.
        #[arg(long, value_name = "FILE")]
        expected_failures: Option<PathBuf>,
        /// No per-check progress lines on stderr.
        #[arg(long, short)]
        quiet: bool,
        /// The random seed (markers, orders); every run prints its own, and this
        /// replays it.
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
    },
    /// Write a first, commented draft profile for a server: connect, list its tools,
    /// guess each tool's role and arguments, and mark every guess to confirm.
    /// `mcp-tenancy init --url http://127.0.0.1:8000/mcp` or
    /// `mcp-tenancy init -- python3 server.py`.
    Init {
        /// A Streamable HTTP endpoint that is served already.
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// HTTP: send `Authorization: Bearer` with the value of this environment
        /// variable.
        #[arg(long, value_name = "VAR")]
        bearer_env: Option<String>,
        /// stdio: `KEY=VALUE` added to the command's environment (repeatable).
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// Write the draft to this file (default: print it).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Overwrite `--out` if it exists.
        #[arg(long)]
        force: bool,
        /// The stdio server command, after `--`.
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Load a target with authorised tools/calls as several tenants at once: requests
    /// per second and per-tenant latency at each concurrency level, and one tenant's
    /// latency alone and while another floods (noisy neighbour). Writes a JSON result.
    Load {
        /// The target profile (TOML).
        profile: PathBuf,
        /// Concurrent callers (one session each), per level, comma-separated.
        #[arg(long, value_name = "N,N,…", default_value = "1,4,16")]
        concurrency: String,
        /// How long each level is measured (10s, 500ms, 2m).
        #[arg(long, value_name = "TIME", default_value = "10s")]
        duration: String,
        /// How long each level runs before it is measured.
        #[arg(long, value_name = "TIME", default_value = "2s")]
        warmup: String,
        /// The tool to call (default: the first `list` tool every taking tenant may call).
        #[arg(long, value_name = "NAME")]
        tool: Option<String>,
        /// How many of the profile's tenants take part (default: all).
        #[arg(long, value_name = "N")]
        tenants: Option<usize>,
        /// Callers of the noisy tenant in the noisy-neighbour phase (0: skip it).
        /// Default: the largest concurrency level.
        #[arg(long, value_name = "N")]
        flood: Option<usize>,
        /// The JSON result.
        #[arg(long, value_name = "FILE", default_value = "mcp-tenancy-load.json")]
        out: PathBuf,
        /// Put the load generator on these CPUs (0, 0,2 or 1-3).
        #[arg(long, value_name = "CPUS")]
        pin: Option<String>,
        /// Put the server the harness launches (HTTP) on these CPUs.
        #[arg(long, value_name = "CPUS")]
        server_pin: Option<String>,
        /// No progress lines on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Fuzz a target through its profile: generated calls (arguments from each tool's
    /// inputSchema), interleaved calls of several tenants and hostile frames, each
    /// round judged by liveness and by reading every tenant back. Findings are shrunk
    /// and written as reproducers that mint their tokens afresh (`--replay FILE`).
    /// Exit code 1 when something was found (or a replay reproduces).
    Fuzz {
        /// The target profile (TOML).
        profile: PathBuf,
        /// How long to fuzz (60s, 5m).
        #[arg(long, value_name = "TIME", default_value = "60s")]
        time: String,
        /// The random seed (default: from the clock; printed, so a run can be repeated).
        #[arg(long, value_name = "N")]
        seed: Option<u64>,
        /// Where reproducers and fuzz.json are written.
        #[arg(long, value_name = "DIR", default_value = "mcp-tenancy-fuzz")]
        out: PathBuf,
        /// Replay a reproducer instead of fuzzing.
        #[arg(long, value_name = "FILE")]
        replay: Option<PathBuf>,
        /// No progress lines on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Turn the frames a run sent (its report.json) into fuzz seeds: every sent frame,
    /// every tools/call's arguments and every call token, under OUT/<target>/, each
    /// named by its check and a hash of its content (written once).
    Seeds {
        /// A report.json written by `mcp-tenancy run`.
        report: PathBuf,
        /// The seed directory (one subdirectory per fuzz target).
        #[arg(long, value_name = "DIR", default_value = "fuzz/seeds")]
        out: PathBuf,
        /// Seeds of distinct shape kept per check and target.
        #[arg(long, value_name = "N", default_value_t = 4)]
        per_check: usize,
        /// The largest seed kept, in bytes.
        #[arg(long, value_name = "BYTES", default_value_t = 65536)]
        max_bytes: usize,
    },
    /// List the check catalogue.
    List {
        /// Print it as Markdown (the project's CONFORMANCE.md is this output).
        #[arg(long)]
        markdown: bool,
    },
    /// Serve a loopback proxy in front of an HTTP target that adds one tenant's session
    /// credential to every request and a fresh call token to every tools/call — so a
    /// client that cannot (e.g. the official MCP conformance suite) can drive a server
    /// that requires both. Starts the target as its profile says. Prints
    /// `proxy listening on http://ADDR/mcp` on stdout.
    Proxy {
        /// The target profile (transport "http").
        profile: PathBuf,
        /// The tenant to act for (default: the profile's first).
        #[arg(long)]
        tenant: Option<String>,
        /// The principal call tokens name (default: the tenant's first).
        #[arg(long)]
        principal: Option<String>,
        /// Where to listen (loopback only).
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
}

/// Progress lines on stderr: `[2/5] T0.2 json-rpc-error-codes … pass (0.4 s)`.
struct Terminal {
    color: bool,
}

impl runner::Progress for Terminal {
    fn started(&mut self, index: usize, total: usize, def: &catalogue::CheckDef) {
        eprint!("[{}/{total}] {} {} … ", index + 1, def.id, def.name);
        let _ = std::io::stderr().flush();
    }

    fn finished(&mut self, _: usize, _: usize, result: &CheckResult) {
        let label = result.outcome.label();
        let painted = match (self.color, label) {
            (false, _) => label.to_owned(),
            (true, "pass") => format!("\x1b[32m{label}\x1b[0m"),
            (true, "fail") => format!("\x1b[31m{label}\x1b[0m"),
            (true, _) => format!("\x1b[33m{label}\x1b[0m"),
        };
        let retries = if result.retries.is_none() {
            String::new()
        } else {
            format!("; {}", result.retries.describe())
        };
        eprintln!(
            "{painted} ({:.1} s{retries})",
            result.duration_ms as f64 / 1000.0
        );
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::List { .. }) {
        // `list | head` ends quietly, as a Unix tool should: Rust ignores SIGPIPE, so
        // `println!` would panic on the closed pipe. Only here — the commands that drive
        // servers must see a server's closed stdin as an error, not die of it.
        // SAFETY: restoring the default disposition of one signal, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match cli.command {
        Command::Init {
            url,
            bearer_env,
            env,
            out,
            force,
            command,
        } => init(url, bearer_env, &env, out, force, command),
        Command::List { markdown } => {
            list(markdown);
            ExitCode::SUCCESS
        }
        Command::Fuzz {
            profile,
            time,
            seed,
            out,
            replay,
            quiet,
        } => fuzz(profile, &time, seed, out, replay, quiet),
        Command::Seeds {
            report,
            out,
            per_check,
            max_bytes,
        } => match mcp_tenancy::seeds::write(
            &report,
            &out,
            mcp_tenancy::seeds::Limits {
                per_check,
                max_bytes,
            },
        ) {
            Ok(written) => {
                for (target, (found, new)) in &written.per_target {
                    eprintln!(
                        "seeds: {target}: {found} found, {new} new in {}",
                        out.join(target).display()
                    );
                }
                if written.per_target.is_empty() {
                    eprintln!("seeds: the report holds no sent frame");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mcp-tenancy seeds: {e}");
                ExitCode::from(2)
            }
        },
        Command::Run {
            profile,
            only,
            out,
            expected_failures,
            quiet,
            seed,
        } => run(profile, &only, out, expected_failures, quiet, seed),
        Command::Proxy {
            profile,
            tenant,
            principal,
            listen,
        } => proxy(profile, tenant, principal, listen),
        Command::Load {
            profile,
            concurrency,
            duration,
            warmup,
            tool,
            tenants,
            flood,
            out,
            pin,
            server_pin,
            quiet,
        } => {
            let parsed = (|| -> Result<_, String> {
                let levels = concurrency
                    .split(',')
                    .map(|n| match n.trim().parse::<usize>() {
                        Ok(n) if (1..=4096).contains(&n) => Ok(n),
                        _ => Err(format!(
                            "--concurrency {concurrency:?}: each level is a number of callers from 1 to 4096"
                        )),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let plan = load::LoadPlan {
                    flood: match flood {
                        Some(0) => None,
                        Some(n) => Some(n),
                        None => levels.iter().copied().max(),
                    },
                    levels,
                    duration: load::parse_duration(&duration)
                        .map_err(|e| format!("--duration: {e}"))?,
                    warmup: if warmup.trim() == "0" {
                        std::time::Duration::ZERO
                    } else {
                        load::parse_duration(&warmup).map_err(|e| format!("--warmup: {e}"))?
                    },
                    tool,
                    tenants,
                };
                let pin = pin
                    .as_deref()
                    .map(load::parse_cpus)
                    .transpose()
                    .map_err(|e| format!("--pin: {e}"))?;
                let server_pin = server_pin
                    .as_deref()
                    .map(load::parse_cpus)
                    .transpose()
                    .map_err(|e| format!("--server-pin: {e}"))?;
                Ok((plan, pin, server_pin))
            })();
            match parsed {
                Ok((plan, pin, server_pin)) => load(profile, &plan, out, pin, server_pin, quiet),
                Err(e) => fail_usage(e),
            }
        }
    }
}

/// Progress of a load run on stderr.
struct LoadTerminal {
    quiet: bool,
}

impl load::Progress for LoadTerminal {
    fn phase(&mut self, what: &str) {
        if !self.quiet {
            eprintln!("load: {what} …");
        }
    }

    fn level(&mut self, what: &str, level: &load::Level) {
        if self.quiet {
            return;
        }
        let cpu = |c: &load::Cpu| match c {
            load::Cpu::Measured { cores } => format!("{:.0} %", cores * 100.0),
            load::Cpu::NotMeasured { .. } => "not measured".to_owned(),
        };
        eprintln!(
            "  {what}: {} calls in {:.1} s = {:.0}/s ({} refused, {} errors, {} rate-limit retries); server CPU {}, generator CPU {}",
            level.calls,
            level.seconds,
            level.per_second,
            level.refused,
            level.errors,
            level.rate_limited_retries,
            cpu(&level.server_cpu),
            cpu(&level.generator_cpu)
        );
        for t in &level.per_tenant {
            eprintln!(
                "    {:<16} {:>3} caller(s) {:>8} calls  p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms",
                t.tenant,
                t.callers,
                t.calls,
                t.p50_us as f64 / 1000.0,
                t.p90_us as f64 / 1000.0,
                t.p99_us as f64 / 1000.0,
                t.max_us as f64 / 1000.0
            );
            if let Some(s) = &t.service {
                eprintln!(
                    "    {:<16} without pacing waits: p50 {:>7.2} ms  p90 {:>7.2} ms  p99 {:>7.2} ms  max {:>8.2} ms",
                    "",
                    s.p50_us as f64 / 1000.0,
                    s.p90_us as f64 / 1000.0,
                    s.p99_us as f64 / 1000.0,
                    s.max_us as f64 / 1000.0
                );
            }
        }
        if let load::ServerStats::Published { hit_rates, .. } = &level.server_stats {
            let rates: Vec<String> = hit_rates
                .iter()
                .map(|(k, r)| format!("{k} {:.1} %", r * 100.0))
                .collect();
            eprintln!(
                "    server's hit rates: {}",
                if rates.is_empty() {
                    "no lookups".to_owned()
                } else {
                    rates.join(", ")
                }
            );
        }
        if let Some(p) = &level.first_problem {
            eprintln!(
                "    first refusal or error: {}",
                mcp_tenancy::client::shorten(p, 300)
            );
        }
    }
}

fn load(
    profile: PathBuf,
    plan: &load::LoadPlan,
    out: PathBuf,
    pin: Option<Vec<usize>>,
    server_pin: Option<Vec<usize>>,
    quiet: bool,
) -> ExitCode {
    let profile = match Profile::load(&profile) {
        Ok(p) => p,
        Err(e) => return fail_usage(e),
    };
    // Pinned before the runtime starts: its threads inherit the set.
    if let Some(cpus) = &pin
        && let Err(e) = load::pin(0, cpus)
    {
        return fail_usage(format!("--pin: {e}"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result: Result<load::LoadReport, String> = runtime.block_on(async {
        let target = Target::new(profile);
        target.prepare().await.map_err(|e| e.to_string())?;
        if target.transport() == mcp_tenancy::profile::Transport::Http {
            // Launched now (if the profile says how), so that it can be pinned.
            target.endpoint().await.map_err(|e| e.to_string())?;
        }
        if let Some(cpus) = &server_pin {
            let pid = target.server_pid().await.ok_or(
                "--server-pin: the harness did not launch the server (a stdio target, or a URL-only profile)",
            )?;
            load::pin(pid, cpus).map_err(|e| format!("--server-pin: {e}"))?;
        }
        let mut progress = LoadTerminal { quiet };
        let report = load::run(&target, plan, &mut progress).await;
        target.shutdown().await;
        report
    });
    match result {
        Ok(report) => {
            let json = serde_json::to_string_pretty(&report).expect("a load report serialises");
            if let Err(e) = std::fs::write(&out, json + "\n") {
                eprintln!("mcp-tenancy: cannot write {}: {e}", out.display());
                return ExitCode::from(2);
            }
            if !quiet {
                if let Ok(n) = &report.neighbour {
                    eprintln!(
                        "load: noisy neighbour: {}'s p99 with {} flooding is {:.2}× its p99 alone",
                        n.quiet, n.noisy, n.p99_ratio
                    );
                }
                eprintln!("load: result in {}", out.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mcp-tenancy: load: {e}");
            ExitCode::from(2)
        }
    }
}

fn proxy(
    profile: PathBuf,
    tenant: Option<String>,
    principal: Option<String>,
    listen: std::net::SocketAddr,
) -> ExitCode {
    if !listen.ip().is_loopback() {
        return fail_usage(format!(
            "--listen {listen}: the proxy binds loopback addresses only"
        ));
    }
    let profile = match Profile::load(&profile) {
        Ok(p) => p,
        Err(e) => return fail_usage(e),
    };
    if profile.target.transport != mcp_tenancy::profile::Transport::Http {
        return fail_usage("the proxy needs an HTTP target (transport = \"http\")");
    }
    let Some(tenant) = tenant.or_else(|| profile.tenants.first().map(|t| t.id.clone())) else {
        return fail_usage("the profile lists no tenant to act for");
    };
    let Some(spec) = profile.tenants.iter().find(|t| t.id == tenant).cloned() else {
        return fail_usage(format!("tenant {tenant:?} is not in the profile"));
    };
    let Some(principal) = principal.or_else(|| spec.principals.first().map(|p| p.id.clone()))
    else {
        return fail_usage(format!(
            "tenant {tenant:?} lists no principal to name in call tokens"
        ));
    };
    let minter = match mcp_tenancy::client::token::TokenMinter::from_profile(&profile) {
        Ok(Some(m)) => m,
        Ok(None) => return fail_usage("the profile gives no way to mint tokens ([tokens])"),
        Err(e) => return fail_usage(e),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result: Result<(), String> = runtime.block_on(async {
        let target = Target::new(profile.clone());
        let upstream = target.endpoint().await.map_err(|e| e.to_string())?;
        let credential = target.session_credential(&spec).map_err(|e| e.to_string())?;
        let header = credential.map(|c| (profile.auth.http_header.clone(), profile.auth.http_format.replace("{token}", &c)));
        let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        println!("proxy listening on http://{local}/mcp (tenant {tenant}, principal {principal}) → {upstream}");
        let _ = std::io::stdout().flush();
        let proxy = mcp_tenancy::proxy::Proxy::new(upstream, header, profile, minter, tenant, principal);
        let served = mcp_tenancy::proxy::serve(listener, proxy);
        // On Ctrl-C or SIGTERM, stop the server the profile launched before exiting.
        #[cfg(unix)]
        let terminated = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let terminated = std::future::pending::<()>();
        let outcome = tokio::select! {
            r = served => r.map_err(|e| e.to_string()),
            _ = tokio::signal::ctrl_c() => Ok(()),
            _ = terminated => Ok(()),
        };
        target.shutdown().await;
        outcome
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail_usage(e),
    }
}

fn list(markdown: bool) {
    if markdown {
        print!("{}", catalogue::markdown());
        return;
    }
    for p in catalogue::PROPERTIES {
        println!("{} — {}  (seed mistake {})", p.id, p.title, p.mistake);
        for c in catalogue::CHECKS.iter().filter(|c| c.property() == p.id) {
            let mark = if c.implemented() { " " } else { "·" };
            println!("  {mark} {:<5} {:<34} {}", c.id, c.name, c.requirement);
        }
    }
    println!("\n· = in the catalogue, not yet implemented by this version of the harness");
}

fn init(
    url: Option<String>,
    bearer_env: Option<String>,
    env: &[String],
    out: Option<PathBuf>,
    force: bool,
    command: Vec<String>,
) -> ExitCode {
    use mcp_tenancy::init::{Reach, draft};
    let reach = match (url, command.is_empty()) {
        (Some(_), false) => return fail_usage("give either --url or a command after --, not both"),
        (None, true) => {
            return fail_usage(
                "say how to reach the server: --url URL, or -- COMMAND… for a stdio server",
            );
        }
        (Some(url), true) => Reach::Url(url),
        (None, false) => Reach::Command(command),
    };
    let mut pairs = Vec::new();
    for e in env {
        match e.split_once('=') {
            Some((k, v)) if !k.is_empty() => pairs.push((k.to_owned(), v.to_owned())),
            _ => return fail_usage(format!("--env {e:?}: expected KEY=VALUE")),
        }
    }
    let bearer = match &bearer_env {
        Some(var) => match std::env::var(var) {
            Ok(v) => Some(v),
            Err(_) => return fail_usage(format!("--bearer-env {var}: the variable is not set")),
        },
        None => None,
    };
    if let Some(path) = &out
        && path.exists()
        && !force
    {
        return fail_usage(format!(
            "{} exists; choose another --out or add --force",
            path.display()
        ));
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let drafted = match runtime.block_on(draft(&reach, bearer.as_deref(), &pairs)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("mcp-tenancy init: could not read the server's tools: {e}");
            return ExitCode::from(1);
        }
    };
    match out {
        Some(path) => {
            if let Err(e) = std::fs::write(&path, &drafted.text) {
                return fail_usage(format!("cannot write {}: {e}", path.display()));
            }
            eprintln!(
                "wrote {} — {} tool(s) of {}; confirm every line marked CONFIRM, then: mcp-tenancy run {}",
                path.display(),
                drafted.tools.len(),
                drafted.server,
                path.display()
            );
        }
        None => print!("{}", drafted.text),
    }
    ExitCode::SUCCESS
}

fn fail_usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mcp-tenancy: {message}");
    ExitCode::from(2)
}

fn run(
    profile: PathBuf,
    only: &str,
    out: PathBuf,
    expected: Option<PathBuf>,
    quiet: bool,
    seed: Option<u64>,
) -> ExitCode {
    let profile = match Profile::load(&profile) {
        Ok(p) => p,
        Err(e) => return fail_usage(e),
    };
    let filter = match Filter::parse(only) {
        Ok(f) => f,
        Err(e) => return fail_usage(e),
    };
    let expected = match expected.as_deref().map(ExpectedFailures::load).transpose() {
        Ok(e) => e,
        Err(e) => return fail_usage(e),
    };
    let checks = runner::selected(&filter);
    if checks.is_empty() {
        return fail_usage(format!(
            "--only {only:?} selects no implemented check (see `mcp-tenancy list`)"
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut target = Target::new(profile);
    if let Some(seed) = seed {
        target = target.with_seed(seed);
    }
    eprintln!(
        "mcp-tenancy {}: {} check(s) against {} ({}), seed {} (replay with --seed {})",
        env!("CARGO_PKG_VERSION"),
        checks.len(),
        target.profile.name,
        target.transport(),
        target.seed,
        target.seed
    );
    let outcome = runtime.block_on(async {
        target.prepare().await?;
        let mut quiet_progress = runner::Quiet;
        let mut terminal = Terminal {
            color: std::io::stderr().is_terminal(),
        };
        let progress: &mut dyn runner::Progress = if quiet {
            &mut quiet_progress
        } else {
            &mut terminal
        };
        Ok::<_, mcp_tenancy::client::ClientError>(runner::run(&target, &checks, progress).await)
    });
    let mut report = match outcome {
        Ok(r) => r,
        Err(e) => return fail_usage(e),
    };
    let verdict = match &expected {
        Some(file) => file.apply(&mut report),
        None => expected::strict(&report),
    };
    println!("{}", report::summary_text(&report));
    match report::write_all(&report, &out) {
        Ok(paths) => {
            println!("reports:");
            for p in paths {
                println!("  {}", p.display());
            }
        }
        Err(e) => {
            eprintln!(
                "mcp-tenancy: cannot write reports to {}: {e}",
                out.display()
            );
            return ExitCode::from(2);
        }
    }
    if !verdict.expected.is_empty() {
        println!(
            "expected failures (listed): {}",
            verdict.expected.join(", ")
        );
    }
    if !verdict.stale.is_empty() {
        println!(
            "stale expected failures — these now pass, remove them from the file: {}",
            verdict.stale.join(", ")
        );
    }
    if !verdict.unexpected.is_empty() {
        println!("FAILED: {}", verdict.unexpected.join(", "));
    }
    if verdict.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

struct FuzzProgress {
    quiet: bool,
}

impl mcp_tenancy::fuzz::Progress for FuzzProgress {
    fn note(&mut self, what: &str) {
        if !self.quiet {
            eprintln!("fuzz: {what}");
        }
    }
}

fn fuzz(
    profile_path: PathBuf,
    time: &str,
    seed: Option<u64>,
    out: PathBuf,
    replay: Option<PathBuf>,
    quiet: bool,
) -> ExitCode {
    use mcp_tenancy::fuzz;
    let profile = match Profile::load(&profile_path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("mcp-tenancy fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let time = match load::parse_duration(time) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("mcp-tenancy fuzz: --time {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let target = Target::new(profile);
    if let Some(file) = replay {
        let reproducer: fuzz::Reproducer = match std::fs::read_to_string(&file)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "mcp-tenancy fuzz: cannot read the reproducer {}: {e}",
                    file.display()
                );
                return ExitCode::from(2);
            }
        };
        let result = runtime.block_on(async {
            let r = fuzz::replay(&target, &reproducer).await;
            target.shutdown().await;
            r
        });
        return match result {
            Ok(Some(seen)) => {
                eprintln!(
                    "fuzz: the finding reproduces ({:?}): {seen}",
                    reproducer.kind
                );
                ExitCode::from(1)
            }
            Ok(None) => {
                eprintln!("fuzz: the finding does not reproduce on this target");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("mcp-tenancy fuzz: {e}");
                ExitCode::from(2)
            }
        };
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    let plan = fuzz::FuzzPlan {
        time,
        seed,
        out: out.clone(),
    };
    if !quiet {
        eprintln!(
            "fuzz: {} for {:.0} s, seed {seed} (repeat with --seed {seed})",
            target.profile.name,
            time.as_secs_f64()
        );
    }
    let mut progress = FuzzProgress { quiet };
    let result = runtime.block_on(async {
        let r = fuzz::run(&target, &profile_path, &plan, &mut progress).await;
        target.shutdown().await;
        r
    });
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcp-tenancy fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = std::fs::create_dir_all(&out);
    let json_path = out.join("fuzz.json");
    if let Err(e) = std::fs::write(
        &json_path,
        serde_json::to_string_pretty(&report).expect("a report serialises") + "\n",
    ) {
        eprintln!(
            "mcp-tenancy fuzz: cannot write {}: {e}",
            json_path.display()
        );
        return ExitCode::from(2);
    }
    eprintln!(
        "fuzz: {:.0} s, {} rounds: {} calls ({} refused), {} hostile frames, {} read-backs",
        report.seconds,
        report.rounds,
        report.calls,
        report.calls_refused,
        report.hostile_frames,
        report.read_backs
    );
    for (tenant, tools) in &report.tools {
        eprintln!(
            "fuzz: {tenant} called {}",
            if tools.is_empty() {
                "no tool".to_owned()
            } else {
                tools.join(", ")
            }
        );
    }
    for n in &report.not_checked {
        eprintln!("fuzz: not checked: {n}");
    }
    eprintln!("fuzz: result in {}", json_path.display());
    if report.findings.is_empty() {
        eprintln!("fuzz: nothing found");
        ExitCode::SUCCESS
    } else {
        for f in &report.findings {
            eprintln!(
                "FINDING ({:?}): {}\n  reproducer: {}",
                f.kind, f.seen, f.reproducer
            );
        }
        ExitCode::from(1)
    }
}
