//! The `mcp-tenancy` command line.
//!
//! ```text
//! mcp-tenancy run conformance/targets/reference-http.toml --out mcp-tenancy-report
//! mcp-tenancy run my-server.toml --only T0,-T0.3 --expected-failures known.toml
//! mcp-tenancy list
//! ```

use clap::{Parser, Subcommand};
use mcp_tenancy::catalogue::{self, Filter};
use mcp_tenancy::client::Target;
use mcp_tenancy::expected::{self, ExpectedFailures};
use mcp_tenancy::model::CheckResult;
use mcp_tenancy::profile::Profile;
use mcp_tenancy::{report, runner};
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
    },
    /// List the check catalogue.
    List,
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
        eprintln!("{painted} ({:.1} s)", result.duration_ms as f64 / 1000.0);
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::List => {
            list();
            ExitCode::SUCCESS
        }
        Command::Run {
            profile,
            only,
            out,
            expected_failures,
            quiet,
        } => run(profile, &only, out, expected_failures, quiet),
    }
}

fn list() {
    for p in catalogue::PROPERTIES {
        println!("{} — {}  (seed mistake {})", p.id, p.title, p.mistake);
        for c in catalogue::CHECKS.iter().filter(|c| c.property() == p.id) {
            let mark = if c.implemented { " " } else { "·" };
            println!("  {mark} {:<5} {:<34} {}", c.id, c.name, c.requirement);
        }
    }
    println!("\n· = in the catalogue, not yet implemented by this version of the harness");
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
    let target = Target::new(profile);
    eprintln!(
        "mcp-tenancy {}: {} check(s) against {} ({})",
        env!("CARGO_PKG_VERSION"),
        checks.len(),
        target.profile.name,
        target.transport()
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
