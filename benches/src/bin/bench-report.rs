//! Writes `benches/report/REPORT.md` and `benches/report/report.html` from criterion's
//! latest results (`target/criterion`) and the latest load results (`target/load`).
//!
//! `cargo run -p mcp-tenancy-benches --bin bench-report [-- --criterion DIR --load DIR --out DIR]`

use mcp_tenancy_benches::report;
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest.parent().map_or(manifest.clone(), PathBuf::from);
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), PathBuf::from);
    let (mut criterion, mut load, mut out) = (
        target.join("criterion"),
        target.join("load"),
        root.join("benches/report"),
    );
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let Some(value) = args.next() else {
            eprintln!("bench-report: {flag} needs a directory");
            return std::process::ExitCode::from(2);
        };
        match flag.as_str() {
            "--criterion" => criterion = value.into(),
            "--load" => load = value.into(),
            "--out" => out = value.into(),
            _ => {
                eprintln!("usage: bench-report [--criterion DIR] [--load DIR] [--out DIR]");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let result = (|| -> Result<(), String> {
        let medians = report::read_criterion(&criterion)?;
        let loads = report::read_load(&load)?;
        if medians.is_empty() && loads.is_empty() {
            return Err(format!(
                "no results in {} or {}: run `cargo bench -p mcp-tenancy-benches --features peers` and `bash benches/load/run.sh` first",
                criterion.display(),
                load.display()
            ));
        }
        std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        for (name, text) in [
            ("REPORT.md", report::markdown(&medians, &loads)),
            ("report.html", report::html(&medians, &loads)),
        ] {
            std::fs::write(out.join(name), text)
                .map_err(|e| format!("{}: {e}", out.join(name).display()))?;
        }
        eprintln!(
            "bench-report: {} criterion case(s), {} load result(s) → {}/REPORT.md, report.html",
            medians.len(),
            loads.len(),
            out.display()
        );
        Ok(())
    })();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-report: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
