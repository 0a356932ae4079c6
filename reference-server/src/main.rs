//! `mcp-tenancy-server` — the kit's reference MCP server.
//!
//! ```text
//! mcp-tenancy-server --config conformance/targets/reference-server.toml --http 127.0.0.1:8931
//! MCP_TENANCY_SESSION_TOKEN=$(mcp-tenancy-server mint -c … --tenant acme --session) \
//!     mcp-tenancy-server --config … --stdio
//! mcp-tenancy-server mint -c … --tenant acme --principal alice --tool notes_create
//! mcp-tenancy-server mutants
//! ```

use clap::{Args, Parser, Subcommand};
use mcp_tenancy_server::config::Config;
use mcp_tenancy_server::core::Core;
use mcp_tenancy_server::core::mutants::{MUTANTS, Mutant};
use mcp_tenancy_server::core::policy::{CALL_TYP, Policy, SESSION_TYP};
use mcp_tenancy_server::mcp::handler::Listeners;
use mcp_tenancy_server::mcp::{McpServer, http, stdio};
use serde_json::json;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A tenant-aware reference MCP server: stdio or Streamable HTTP.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: Serve,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print a session or call token signed with a configured key (tests and demos).
    Mint(Mint),
    /// List the deliberate-mistake mutants, with the seed mistake and property of each.
    Mutants,
}

#[derive(Debug, Args)]
struct Serve {
    /// Serve newline-delimited JSON-RPC on stdin/stdout. The session credential (a
    /// session token) is read at launch from MCP_TENANCY_SESSION_TOKEN.
    #[arg(long, conflicts_with = "http")]
    stdio: bool,

    /// Serve Streamable HTTP on ADDR (e.g. 127.0.0.1:8931; port 0 picks a free port).
    /// Every request needs `Authorization: Bearer <session token>`. The bound URL is
    /// printed on stderr.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,

    /// Configuration file (TOML): tenants, entitlements, keys, limits. Required. It is
    /// reloaded on SIGHUP and when it changes; sessions whose tools changed are sent
    /// notifications/tools/list_changed.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "MCP_TENANCY_SERVER_CONFIG"
    )]
    config: Option<PathBuf>,

    /// Start with one deliberate mistake (see `mcp-tenancy-server mutants`). Never in
    /// production.
    #[arg(long, value_name = "NAME")]
    mutant: Option<String>,

    /// Accept this Origin (repeatable; replaces the configured list). `scheme://host:*`
    /// matches any port. Requests with any other Origin get 403.
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    allowed_origins: Vec<String>,

    /// Accept this Host header value (repeatable; replaces the configured list).
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,

    /// Largest JSON-RPC message accepted, in bytes (stdio line or HTTP body).
    #[arg(long, value_name = "BYTES")]
    max_message_bytes: Option<usize>,

    /// Log filter for stderr (tracing `EnvFilter` syntax), e.g. `info` to see deny reasons.
    #[arg(
        long,
        value_name = "FILTER",
        env = "MCP_TENANCY_LOG",
        default_value = "warn"
    )]
    log: String,

    /// Answer `GET /stats` (Streamable HTTP) with the verified-token cache's counters
    /// (aggregate hits and misses, no tenant data), for load runs: `mcp-tenancy load`
    /// reads them through the profile's `[load] stats_url`.
    #[arg(long)]
    publish_stats: bool,

    /// Benchmarks only (a build with the `bench-ungated` feature): serve every call
    /// without the gate — no call token, no entitlement — to measure what the gate
    /// costs a request. Never anywhere else.
    #[cfg(feature = "bench-ungated")]
    #[arg(long)]
    bench_ungated: bool,
}

#[derive(Debug, Args)]
struct Mint {
    /// Configuration file naming the keys, issuer and audience.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "MCP_TENANCY_SERVER_CONFIG"
    )]
    config: PathBuf,
    /// The tenant the token is for.
    #[arg(long)]
    tenant: String,
    /// Mint a session token (bearer / stdio launch credential) instead of a call token.
    #[arg(long)]
    session: bool,
    /// `sub`: the principal (call tokens: required, a principal of the tenant).
    #[arg(long)]
    principal: Option<String>,
    /// Call tokens: the tool the token authorises.
    #[arg(long, required_unless_present_any = ["session", "print_public_key"])]
    tool: Option<String>,
    /// Call tokens: the action (default: the tool's own action).
    #[arg(long)]
    action: Option<String>,
    /// Call tokens: the resource (`*`, `tenant:<id>`, `note:<id>`).
    #[arg(long, default_value = "*")]
    resource: String,
    /// Lifetime in seconds (default: 120 for call tokens, 3600 for session tokens).
    #[arg(long)]
    lifetime: Option<u64>,
    /// The key id to sign with (default: the first key that can sign).
    #[arg(long)]
    kid: Option<String>,
    /// Print the Ed25519 public keys (base64url) and exit.
    #[arg(long)]
    print_public_key: bool,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("mcp-tenancy-server: {message}");
    ExitCode::from(2)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Mutants) => {
            println!(
                "{:<26} {:<8} {:<9} what it gets wrong",
                "mutant", "mistake", "property"
            );
            for m in MUTANTS {
                println!(
                    "{:<26} {:<8} {:<9} {}",
                    m.name, m.mistake, m.property, m.description
                );
            }
            ExitCode::SUCCESS
        }
        Some(Command::Mint(args)) => mint(&args),
        None => serve(cli.serve),
    }
}

fn load(path: &Path, mutant: Option<Mutant>) -> Result<(Config, Policy), String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    let policy = config
        .policy(mutant)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((config, policy))
}

fn mint(args: &Mint) -> ExitCode {
    let (_, policy) = match load(&args.config, None) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if args.print_public_key {
        for key in &policy.tokens.keys.keys {
            if let Some(public) = key.public_key_b64() {
                println!("{} {public}", key.kid);
            }
        }
        return ExitCode::SUCCESS;
    }
    let Some(tenant) = policy.tenant(&args.tenant) else {
        return fail(format!("tenant {:?} is not configured", args.tenant));
    };
    let key = policy.tokens.keys.keys.iter().find(|k| match &args.kid {
        Some(kid) => &k.kid == kid,
        None => k.sign("probe", &json!({})).is_some(),
    });
    let Some(key) = key else {
        return fail("no configured key can sign (EdDSA keys need private_key_file)");
    };
    let iat = now();
    let (typ, claims) = if args.session {
        let sub = args
            .principal
            .clone()
            .unwrap_or_else(|| "mcp-tenancy-cli".into());
        let exp = iat + args.lifetime.unwrap_or(3600);
        (
            SESSION_TYP,
            json!({"iss": policy.tokens.issuer, "aud": policy.tokens.audience, "sub": sub,
                   "tenant": tenant.id, "iat": iat, "exp": exp}),
        )
    } else {
        let Some(principal) = &args.principal else {
            return fail("a call token needs --principal");
        };
        let tool = args.tool.clone().unwrap_or_default();
        let core = Core::new(policy.clone());
        let action = match (&args.action, core.catalogue().get(&tool)) {
            (Some(a), _) => a.clone(),
            (None, Some(t)) => t.action.to_owned(),
            (None, None) => return fail(format!("unknown tool {tool:?}: give --action")),
        };
        let mut jti = [0u8; 12];
        mcp_tenancy_server::core::random_fill(&mut jti).expect("the OS random number generator");
        let jti: String = jti.iter().map(|b| format!("{b:02x}")).collect();
        let exp = iat + args.lifetime.unwrap_or(120);
        (
            CALL_TYP,
            json!({"iss": policy.tokens.issuer, "aud": policy.tokens.audience, "sub": principal,
                   "tenant": tenant.id, "tool": tool, "action": action, "resource": args.resource,
                   "iat": iat, "exp": exp, "jti": jti}),
        )
    };
    match key.sign(typ, &claims) {
        Some(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        None => fail(format!("key {} cannot sign", key.kid)),
    }
}

fn serve(args: Serve) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&args.log))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    if !args.stdio && args.http.is_none() {
        return fail("choose a transport: --stdio or --http ADDR (see --help)");
    }
    if args.stdio && args.publish_stats {
        return fail(
            "--publish-stats answers over Streamable HTTP (GET /stats): use it with --http ADDR",
        );
    }
    let Some(config_path) = args.config.clone() else {
        return fail(
            "--config FILE is required: tenants, entitlements and keys (e.g. conformance/targets/reference-server.toml)",
        );
    };
    let mutant = match args.mutant.as_deref().map(|n| Mutant::parse(n).ok_or(n)) {
        None => None,
        Some(Ok(m)) => Some(m),
        Some(Err(n)) => {
            return fail(format!(
                "unknown mutant {n:?} (see `mcp-tenancy-server mutants`)"
            ));
        }
    };
    if let Some(m) = mutant {
        let info = m.info();
        eprintln!("!!! ============================================================== !!!");
        eprintln!(
            "!!! MUTANT {}: {} (seed mistake {}, {})",
            info.name, info.description, info.mistake, info.property
        );
        eprintln!("!!! This server is deliberately insecure. Never use it for real data. !!!");
        eprintln!("!!! ============================================================== !!!");
    }
    let (mut config, policy) = match load(&config_path, mutant) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let shipped: Vec<&str> = policy
        .tokens
        .keys
        .keys
        .iter()
        .filter(|k| k.is_shipped_development_key())
        .map(|k| k.kid.as_str())
        .collect();
    if !shipped.is_empty() {
        eprintln!("!!! ============================================================== !!!");
        eprintln!(
            "!!! DEVELOPMENT KEYS TRUSTED: {} — shipped with mcp-tenancy and public,",
            shipped.join(", ")
        );
        eprintln!("!!! so anyone can mint tokens this server accepts. Tests and demos only. !!!");
        eprintln!("!!! ============================================================== !!!");
    }
    if !args.allowed_origins.is_empty() {
        config.http.allowed_origins = args.allowed_origins.clone();
    }
    if !args.allowed_hosts.is_empty() {
        config.http.allowed_hosts = args.allowed_hosts.clone();
    }
    if let Some(n) = args.max_message_bytes {
        config.limits.max_message_bytes = n;
    }
    if let Some(addr) = args.http {
        config.http.addr = addr;
    }
    let core = Core::with_limits(
        policy,
        config.storage,
        config.limits.max_in_flight_per_tenant,
    );
    #[cfg(feature = "bench-ungated")]
    let core = if args.bench_ungated {
        eprintln!(
            "mcp-tenancy-server: WARNING: --bench-ungated: every call is served WITHOUT the gate (benchmarks only)"
        );
        core.ungated_for_bench()
    } else {
        core
    };
    let core = Arc::new(core);
    let listeners = Arc::new(Listeners::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = runtime.block_on(async {
        tokio::spawn(watch_config(config_path, mutant, Arc::clone(&core), Arc::clone(&listeners)));
        if args.stdio {
            let token = std::env::var("MCP_TENANCY_SESSION_TOKEN").map_err(|_| {
                "--stdio needs the session credential in MCP_TENANCY_SESSION_TOKEN (mint one with `mcp-tenancy-server mint --session`)"
                    .to_owned()
            })?;
            let session = core
                .policy()
                .authenticate(token.trim(), now())
                .map_err(|e| format!("the launch credential in MCP_TENANCY_SESSION_TOKEN is refused: {e}"))?;
            let server = McpServer::new(Arc::clone(&core), Some(session), listeners);
            let serving = stdio::serve_stdio(server, config.limits.max_message_bytes);
            if mutant.is_some_and(|m| m == Mutant::StreamOutlivesBearer) {
                return serving.await.map_err(|e| e.to_string());
            }
            // The launch credential is judged again every second: once it expires past
            // the skew, or a reload stops trusting its key or its tenant, the session ends.
            let revoked = async {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Err(e) = core.policy().authenticate(token.trim(), now()) {
                        return e;
                    }
                }
            };
            tokio::select! {
                served = serving => served.map_err(|e| e.to_string()),
                why = revoked => {
                    eprintln!("mcp-tenancy-server: session ended: the launch credential in MCP_TENANCY_SESSION_TOKEN no longer verifies ({why})");
                    Ok(())
                }
            }
        } else {
            let server = McpServer::new(Arc::clone(&core), None, listeners);
            let guard = http::Guard::new(
                &config.http,
                config.sessions,
                config.connections,
                config.limits.max_message_bytes,
                Arc::clone(&core),
            );
            let mut app = http::router(server, &config.http, guard);
            if args.publish_stats {
                if config.http.path == http::STATS_PATH {
                    return Err(format!(
                        "--publish-stats answers at {} — the MCP endpoint cannot be there too ([http] path)",
                        http::STATS_PATH
                    ));
                }
                app = http::with_stats(app, Arc::clone(&core));
            }
            http::serve_http(app, config.http.addr, &config.http.path).await.map_err(|e| e.to_string())
        }
    });
    // A stdio session ended by its credential leaves a thread blocked reading stdin:
    // the runtime does not wait for it.
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// What the watcher compares each second: the modification times of the configuration
/// file and of every key file it names — a rotated secret is a changed configuration.
fn fingerprint(path: &Path) -> Vec<Option<std::time::SystemTime>> {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut out = vec![modified(path)];
    if let Ok(config) = Config::load(path) {
        out.extend(config.key_files().iter().map(|f| modified(f)));
    }
    out
}

/// Reloads the configuration on SIGHUP and when the file or one of its key files
/// changes (polled each second).
/// A new policy applies from the next request; sessions whose tools changed are told.
/// A configuration that does not load is logged and the old policy stays.
async fn watch_config(
    path: PathBuf,
    mutant: Option<Mutant>,
    core: Arc<Core>,
    listeners: Arc<Listeners>,
) {
    let mut last = fingerprint(&path);
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        let tick = tokio::time::sleep(Duration::from_secs(1));
        #[cfg(unix)]
        let signalled = async {
            match hup.as_mut() {
                Some(h) => h.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        #[cfg(not(unix))]
        let signalled = std::future::pending::<bool>();
        let forced = tokio::select! { _ = tick => false, s = signalled => s };
        let now_modified = fingerprint(&path);
        if !forced && now_modified == last {
            continue;
        }
        last = now_modified;
        match load(&path, mutant) {
            Ok((_, policy)) => {
                let changed = core.replace_policy(policy);
                tracing::warn!(?changed, "configuration reloaded");
                listeners.notify(&changed).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "configuration reload failed; keeping the previous policy")
            }
        }
    }
}
