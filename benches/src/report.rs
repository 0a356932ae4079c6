//! The published report: criterion's medians and the load results turned into
//! `REPORT.md` and a self-contained `report.html` with SVG charts — every target met
//! or not with its ratio, every end-to-end figure with the server's CPU beside it.
//!
//! Inputs: criterion's output directory (`target/criterion`: each case's
//! `new/benchmark.json` and `new/estimates.json`) and the JSON results of
//! `mcp-tenancy load` (`target/load/*.json`). Nothing is measured here.

use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// Criterion medians by full id (`gate_check/authorised_hs256/gate`), in nanoseconds.
pub type Medians = BTreeMap<String, f64>;

/// Reads every case under `dir` (criterion's layout); an absent directory is empty.
pub fn read_criterion(dir: &Path) -> Result<Medians, String> {
    let mut out = Medians::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "new") {
                    let read = |f: &str| -> Result<Value, String> {
                        let text = std::fs::read_to_string(p.join(f))
                            .map_err(|e| format!("{}: {e}", p.join(f).display()))?;
                        serde_json::from_str(&text)
                            .map_err(|e| format!("{}: {e}", p.join(f).display()))
                    };
                    let (Ok(id), Ok(est)) = (read("benchmark.json"), read("estimates.json")) else {
                        continue;
                    };
                    if let (Some(id), Some(m)) = (
                        id["full_id"].as_str(),
                        est["median"]["point_estimate"].as_f64(),
                    ) {
                        out.insert(id.to_owned(), m);
                    }
                } else {
                    stack.push(p);
                }
            }
        }
    }
    Ok(out)
}

/// Reads every `*.json` load result in `dir`, by file stem.
pub fn read_load(dir: &Path) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let v: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            let stem = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.insert(stem, v);
        }
    }
    Ok(out)
}

/// One target, judged from the medians.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub what: &'static str,
    /// The ratio or figure measured, as text; `None` when a case is missing.
    pub measured: Option<String>,
    pub met: Option<bool>,
}

fn ratio(m: &Medians, a: &str, b: &str) -> Option<f64> {
    Some(m.get(a)? / m.get(b)?)
}

/// Every target of the benchmarks, met or not (or not measured, when a case is absent).
pub fn targets(m: &Medians) -> Vec<Target> {
    let judged =
        |what, value: Option<f64>, text: &dyn Fn(f64) -> String, ok: &dyn Fn(f64) -> bool| Target {
            what,
            measured: value.map(text),
            met: value.map(ok),
        };
    let series = |group: &str| -> Option<f64> {
        let mut points: Vec<(u64, f64)> = m
            .iter()
            .filter_map(|(id, v)| {
                let n = id
                    .strip_prefix(group)?
                    .strip_prefix("/gate/")?
                    .parse()
                    .ok()?;
                Some((n, *v))
            })
            .collect();
        points.sort_by_key(|p| p.0);
        Some(points.last()?.1 / points.first()?.1)
    };
    let times = |what, value, bound: f64| {
        judged(what, value, &|r| format!("{r:.2}×"), &move |r| r <= bound)
    };
    let slower_of = |a: &str, b: &str| Some(m.get(a)?.max(*m.get(b)?));
    let within_a_microsecond = |what, value| {
        judged(
            what,
            value,
            &|ns| format!("{ns:.0} ns (slower of HS256, EdDSA)"),
            &|ns| ns <= 1000.0,
        )
    };
    vec![
        times(
            "gate_check HS256 ≤ 1.5× the raw HMAC floor",
            ratio(
                m,
                "gate_check/authorised_hs256/gate",
                "gate_check/authorised_hs256/floor_hmac",
            ),
            1.5,
        ),
        judged(
            "gate_check HS256 ≥ 4× faster than jsonwebtoken",
            ratio(
                m,
                "gate_check/authorised_hs256/peer_jsonwebtoken",
                "gate_check/authorised_hs256/gate",
            ),
            &|r| format!("{r:.2}× faster"),
            &|r| r >= 4.0,
        ),
        times(
            "gate_check EdDSA ≤ 1.1× the raw Ed25519 verify",
            ratio(
                m,
                "gate_check/authorised_eddsa/gate",
                "gate_check/authorised_eddsa/floor_ed25519",
            ),
            1.1,
        ),
        within_a_microsecond(
            "a retried token through the cache ≤ 1 µs",
            slower_of(
                "full_call/retried_hs256/cached",
                "full_call/retried_eddsa/cached",
            ),
        ),
        within_a_microsecond(
            "a known session bearer through the cache ≤ 1 µs",
            slower_of(
                "gate_check/known_bearer_hs256/cached",
                "gate_check/known_bearer_eddsa/cached",
            ),
        ),
        times(
            "the gate grows ≤ 1.2× from 10 to 100,000 tenants",
            series("scaling_tenants"),
            1.2,
        ),
        times(
            "the gate grows ≤ 1.2× from 10 to 10,000 tools per tenant",
            series("scaling_tools"),
            1.2,
        ),
    ]
}

fn time(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn verdict(t: &Target) -> &'static str {
    match t.met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "not measured",
    }
}

/// The server's CPU of a load level, as the report writes it.
fn cpu_note(level: &Value) -> String {
    match level["server_cpu"].get("measured") {
        Some(m) => format!("{:.0} %", m["cores"].as_f64().unwrap_or(0.0) * 100.0),
        None => format!(
            "not measured ({})",
            level["server_cpu"]["not_measured"]["reason"]
                .as_str()
                .unwrap_or("unknown")
        ),
    }
}

/// The cache hit rates the server published for a load level, as the report writes
/// them (`not published` with the reason otherwise).
fn hit_note(level: &Value) -> String {
    let stats = &level["server_stats"];
    match stats.get("published") {
        Some(p) => {
            let rates: Vec<String> = p["hit_rates"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, r)| {
                    let name = k.rsplit('.').next().unwrap_or(k);
                    format!("{name} {:.1} %", r.as_f64().unwrap_or(0.0) * 100.0)
                })
                .collect();
            if rates.is_empty() {
                "no lookups".into()
            } else {
                rates.join(", ")
            }
        }
        None => format!(
            "not published ({})",
            stats["not_published"]["reason"]
                .as_str()
                .unwrap_or("the result predates server statistics")
        ),
    }
}

fn server_cores(level: &Value) -> Option<f64> {
    level["server_cpu"]["measured"]["cores"].as_f64()
}

/// The Markdown report.
pub fn markdown(m: &Medians, load: &BTreeMap<String, Value>) -> String {
    let mut out = String::from("# mcp-tenancy benchmark report\n\n");
    out.push_str(
        "Generated by `cargo run -p mcp-tenancy-benches --bin bench-report` from criterion's \
         latest results and the latest `mcp-tenancy load` results. Ratios are taken within \
         one run; absolute times hold for the machine they were taken on only.\n\n## Targets\n\n\
         | target | measured | |\n|---|---|---|\n",
    );
    for t in targets(m) {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            t.what,
            t.measured.as_deref().unwrap_or("—"),
            verdict(&t)
        );
    }
    out.push_str(&load_targets_markdown(load));
    out.push_str("\n## Criterion medians\n\n| case | median |\n|---|---|\n");
    for (id, ns) in m {
        let _ = writeln!(out, "| `{id}` | {} |", time(*ns));
    }
    out.push_str(&load_markdown(load));
    out
}

/// The end-to-end target: the reference server (HS256) against the bare rmcp server,
/// at the largest level both ran — measured only when the bare server used ≥ 90 % of
/// its core (else the load generator was the bottleneck).
fn end_to_end(load: &BTreeMap<String, Value>) -> Option<(usize, f64, f64, Option<f64>, String)> {
    let (bare, gated) = (
        load.get("bare-rmcp-http")?,
        load.get("reference-http-hs256")?,
    );
    let last = |r: &Value| r["levels"].as_array()?.last().cloned();
    let (b, g) = (last(bare)?, last(gated)?);
    Some((
        b["concurrency"].as_u64()? as usize,
        g["per_second"].as_f64()?,
        b["per_second"].as_f64()?,
        server_cores(&b),
        format!(
            "reference server CPU {}, cache hits {}",
            cpu_note(&g),
            hit_note(&g)
        ),
    ))
}

fn load_targets_markdown(load: &BTreeMap<String, Value>) -> String {
    let mut out = String::new();
    match end_to_end(load) {
        Some((n, gated, bare, cores, gated_note)) if cores.is_some_and(|c| c >= 0.9) => {
            let r = gated / bare;
            let _ = writeln!(
                out,
                "| reference server (HS256) ≥ 0.9× the bare rmcp server, end to end ({n} callers) | {r:.2}× ({gated:.0}/s against {bare:.0}/s; bare server CPU {:.0} %; {gated_note}) | {} |",
                cores.unwrap_or(0.0) * 100.0,
                if r >= 0.9 { "met" } else { "**not met**" }
            );
        }
        Some((n, _, _, cores, _)) => {
            let _ = writeln!(
                out,
                "| reference server (HS256) ≥ 0.9× the bare rmcp server, end to end ({n} callers) | not measured: the bare server used {} of its core, so the load generator was the bottleneck | not measured |",
                cores.map_or("an unknown share".to_owned(), |c| format!("{:.0} %", c * 100.0))
            );
        }
        None => out.push_str("| reference server (HS256) ≥ 0.9× the bare rmcp server, end to end | no load results (`bash benches/load/run.sh`) | not measured |\n"),
    }
    for (name, r) in load {
        if let Some(n) = r["neighbour"].get("Ok") {
            let ratio = n["p99_ratio"].as_f64().unwrap_or(0.0);
            let _ = writeln!(
                out,
                "| {name}: quiet tenant's p99 under a noisy neighbour ≤ 2× alone (a reported figure) | {ratio:.2}× | {} |",
                if ratio <= 2.0 { "met" } else { "**not met**" }
            );
        }
    }
    out
}

fn load_markdown(load: &BTreeMap<String, Value>) -> String {
    if load.is_empty() {
        return "\n## End to end\n\nNo load results: run `bash benches/load/run.sh`.\n".into();
    }
    let mut out = String::from(
        "\n## End to end (`mcp-tenancy load`)\n\nServer CPU is the share of one core the server used while measured; cache hits are the \
         rates the server published (`[load] stats_url`). A paced target's latencies include the \
         wait for a pacing slot; \"service\" leaves it out.\n\n\
         | target | tool | callers | calls/s | refused | errors | server CPU | cache hits | p50 / p99 per tenant |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    for (name, r) in load {
        for l in r["levels"].as_array().into_iter().flatten() {
            let tenants: Vec<String> = l["per_tenant"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| {
                    let ms = |v: &Value| v.as_f64().unwrap_or(0.0) / 1000.0;
                    let service = t.get("service").map_or(String::new(), |s| {
                        format!(
                            " (service {:.2} / {:.2} ms)",
                            ms(&s["p50_us"]),
                            ms(&s["p99_us"])
                        )
                    });
                    format!(
                        "{} {:.2} / {:.2} ms{service}",
                        t["tenant"].as_str().unwrap_or(""),
                        ms(&t["p50_us"]),
                        ms(&t["p99_us"])
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "| {name} | `{}` | {} | {:.0} | {} | {} | {} | {} | {} |",
                r["tool"].as_str().unwrap_or(""),
                l["concurrency"],
                l["per_second"].as_f64().unwrap_or(0.0),
                l["refused"],
                l["errors"],
                cpu_note(l),
                hit_note(l),
                tenants.join("; ")
            );
        }
    }
    out.push_str("\n### Noisy neighbour\n\n| target | quiet | noisy (callers) | p99 alone | p99 with the flood | ratio |\n|---|---|---|---|---|---|\n");
    for (name, r) in load {
        match r["neighbour"].get("Ok") {
            Some(n) => {
                let p99 = |l: &Value| {
                    l["per_tenant"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|t| t["tenant"] == n["quiet"])
                        .and_then(|t| t["p99_us"].as_f64())
                        .unwrap_or(0.0)
                        / 1000.0
                };
                let _ = writeln!(
                    out,
                    "| {name} | {} | {} ({}) | {:.2} ms | {:.2} ms | {:.2}× |",
                    n["quiet"].as_str().unwrap_or(""),
                    n["noisy"].as_str().unwrap_or(""),
                    n["flood_callers"],
                    p99(&n["alone"]),
                    p99(&n["with_neighbour"]),
                    n["p99_ratio"].as_f64().unwrap_or(0.0)
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "| {name} | not run: {} | | | | |",
                    r["neighbour"]["Err"].as_str().unwrap_or("unknown")
                );
            }
        }
    }
    out
}

/// A line chart: each series a list of (x label, value); values share one y axis.
pub fn svg_lines(title: &str, unit: &str, series: &[(String, Vec<(String, f64)>)]) -> String {
    let (w, h, left, bottom) = (640.0, 300.0, 70.0, 40.0);
    let max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, v)| *v))
        .fold(0.0, f64::max)
        .max(1e-9);
    let n = series
        .iter()
        .map(|(_, p)| p.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let x = |i: usize| left + (w - left - 20.0) * (i as f64 + 0.5) / n as f64;
    let y = |v: f64| (h - bottom) - (h - bottom - 30.0) * v / max;
    let colours = [
        "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    ];
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\">",
        escape(title)
    );
    let _ = write!(
        s,
        "<text x=\"{left}\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">{}</text>",
        escape(title)
    );
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#999\"/><text x=\"4\" y=\"{}\" font-size=\"11\" font-family=\"sans-serif\">{} {}</text><text x=\"4\" y=\"{}\" font-size=\"11\" font-family=\"sans-serif\">0</text>",
        h - bottom,
        w - 20.0,
        h - bottom,
        y(max) + 4.0,
        fmt_value(max),
        escape(unit),
        h - bottom
    );
    if let Some((_, points)) = series.iter().max_by_key(|(_, p)| p.len()) {
        for (i, (label, _)) in points.iter().enumerate() {
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" font-family=\"sans-serif\">{}</text>",
                x(i),
                h - bottom + 16.0,
                escape(label)
            );
        }
    }
    for (k, (name, points)) in series.iter().enumerate() {
        let colour = colours[k % colours.len()];
        let path: Vec<String> = points
            .iter()
            .enumerate()
            .map(|(i, (_, v))| format!("{:.1},{:.1}", x(i), y(*v)))
            .collect();
        let _ = write!(
            s,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
            path.join(" ")
        );
        for (i, (_, v)) in points.iter().enumerate() {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"><title>{}: {}</title></circle>",
                x(i),
                y(*v),
                escape(name),
                fmt_value(*v)
            );
        }
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{colour}\" font-family=\"sans-serif\">{}</text>",
            left + 10.0 + 150.0 * (k % 4) as f64,
            h - 4.0 - 12.0 * (k / 4) as f64,
            escape(name)
        );
    }
    s.push_str("</svg>");
    s
}

fn fmt_value(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The charts: scaling, throughput per concurrency, latency per tenant, neighbour.
pub fn charts(m: &Medians, load: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    let series_of = |group: &str, f: &str| -> Vec<(String, f64)> {
        let mut p: Vec<(u64, f64)> = m
            .iter()
            .filter_map(|(id, v)| {
                let n = id
                    .strip_prefix(group)?
                    .strip_prefix(&format!("/{f}/"))?
                    .parse()
                    .ok()?;
                Some((n, *v / 1000.0))
            })
            .collect();
        p.sort_by_key(|x| x.0);
        p.into_iter().map(|(n, v)| (n.to_string(), v)).collect()
    };
    for (group, what) in [
        ("scaling_tenants", "tenants"),
        ("scaling_tools", "tools per tenant"),
    ] {
        let gate = series_of(group, "gate");
        if !gate.is_empty() {
            out.push(svg_lines(
                &format!("The gate's decision by {what}"),
                "µs",
                &[("gate".into(), gate)],
            ));
        }
    }
    let throughput: Vec<(String, Vec<(String, f64)>)> = load
        .iter()
        .map(|(name, r)| {
            let points = r["levels"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| {
                    (
                        l["concurrency"].to_string(),
                        l["per_second"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect();
            (name.clone(), points)
        })
        .collect();
    if !throughput.is_empty() {
        out.push(svg_lines(
            "Calls per second by concurrent callers",
            "calls/s",
            &throughput,
        ));
        let latency: Vec<(String, Vec<(String, f64)>)> = load
            .iter()
            .filter_map(|(name, r)| {
                let last = r["levels"].as_array()?.last()?;
                let t = last["per_tenant"].as_array()?.first()?;
                Some((
                    format!("{name} ({} callers)", last["concurrency"]),
                    ["p50_us", "p90_us", "p99_us", "max_us"]
                        .iter()
                        .map(|k| {
                            (
                                k.trim_end_matches("_us").to_owned(),
                                t[*k].as_f64().unwrap_or(0.0) / 1000.0,
                            )
                        })
                        .collect(),
                ))
            })
            .collect();
        out.push(svg_lines(
            "Latency of the first tenant at the largest level",
            "ms",
            &latency,
        ));
        let neighbour: Vec<(String, Vec<(String, f64)>)> = load
            .iter()
            .filter_map(|(name, r)| {
                let n = r["neighbour"].get("Ok")?;
                let p99 = |l: &Value| {
                    l["per_tenant"]
                        .as_array()?
                        .iter()
                        .find(|t| t["tenant"] == n["quiet"])?["p99_us"]
                        .as_f64()
                        .map(|v| v / 1000.0)
                };
                Some((
                    name.clone(),
                    vec![
                        ("alone".into(), p99(&n["alone"])?),
                        ("with the flood".into(), p99(&n["with_neighbour"])?),
                    ],
                ))
            })
            .collect();
        if !neighbour.is_empty() {
            out.push(svg_lines(
                "Quiet tenant's p99: alone and with a noisy neighbour",
                "ms",
                &neighbour,
            ));
        }
    }
    out
}

/// The self-contained HTML page: the Markdown report's tables as text, and the charts.
pub fn html(m: &Medians, load: &BTreeMap<String, Value>) -> String {
    let md = markdown(m, load);
    let mut body = String::new();
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("### ") {
            let _ = writeln!(body, "<h3>{}</h3>", escape(h));
        } else if let Some(h) = line.strip_prefix("## ") {
            let _ = writeln!(body, "<h2>{}</h2>", escape(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = writeln!(body, "<h1>{}</h1>", escape(h));
        } else if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            let cells: Vec<String> = line
                .trim_matches('|')
                .split(" | ")
                .map(|c| format!("<td>{}</td>", escape(c.trim()).replace("**", "")))
                .collect();
            let _ = writeln!(body, "<tr>{}</tr>", cells.join(""));
        } else if !line.trim().is_empty() {
            let _ = writeln!(body, "<p>{}</p>", escape(line));
        }
    }
    // Consecutive rows into tables.
    let body = body
        .replace("</p>\n<tr>", "</p>\n<table><tr>")
        .replace("</h2>\n<tr>", "</h2>\n<table><tr>")
        .replace("</h3>\n<tr>", "</h3>\n<table><tr>")
        .replace("</tr>\n<h", "</tr></table>\n<h")
        .replace("</tr>\n<p>", "</tr></table>\n<p>");
    let body = if body.trim_end().ends_with("</tr>") {
        format!("{body}</table>")
    } else {
        body
    };
    let charts: String = charts(m, load)
        .into_iter()
        .map(|c| format!("<figure>{c}</figure>\n"))
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>mcp-tenancy benchmark report</title>\
         <style>body{{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}}table{{border-collapse:collapse;margin:1em 0}}\
         td{{border:1px solid #ccc;padding:.2em .5em;font-size:.9em}}tr:first-child td{{font-weight:bold;background:#f4f4f4}}figure{{margin:1em 0}}</style>\
         </head><body>\n{body}\n<h2>Charts</h2>\n{charts}</body></html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn medians() -> Medians {
        [
            ("gate_check/authorised_hs256/gate", 1500.0),
            ("gate_check/authorised_hs256/floor_hmac", 400.0),
            ("gate_check/authorised_hs256/peer_jsonwebtoken", 3000.0),
            ("gate_check/authorised_eddsa/gate", 51_000.0),
            ("gate_check/authorised_eddsa/floor_ed25519", 50_000.0),
            ("scaling_tenants/gate/10", 1000.0),
            ("scaling_tenants/gate/100000", 1100.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    #[test]
    fn targets_are_judged_from_the_same_run_and_missing_cases_are_not_measured() {
        let t = targets(&medians());
        let by = |w: &str| t.iter().find(|t| t.what.starts_with(w)).unwrap().clone();
        assert_eq!(by("gate_check HS256 ≤").met, Some(false));
        assert_eq!(by("gate_check HS256 ≤").measured.as_deref(), Some("3.75×"));
        assert_eq!(by("gate_check HS256 ≥").met, Some(false));
        assert_eq!(by("gate_check EdDSA").met, Some(true));
        assert_eq!(
            by("the gate grows ≤ 1.2× from 10 to 100,000").met,
            Some(true)
        );
        assert_eq!(
            by("a retried token").met,
            None,
            "absent cases are not measured, never met"
        );
        assert_eq!(by("the gate grows ≤ 1.2× from 10 to 10,000").met, None);
    }

    #[test]
    fn an_end_to_end_ratio_needs_a_busy_bare_server() {
        let level = |rate: f64, cores: f64| {
            json!({"concurrency": 16, "per_second": rate, "refused": 0, "errors": 0,
            "server_cpu": {"measured": {"cores": cores}}, "per_tenant": []})
        };
        let mut load = BTreeMap::new();
        load.insert(
            "bare-rmcp-http".to_owned(),
            json!({"tool": "t", "levels": [level(1000.0, 0.5)], "neighbour": {"Err": "x"}}),
        );
        load.insert(
            "reference-http-hs256".to_owned(),
            json!({"tool": "t", "levels": [level(950.0, 0.95)], "neighbour": {"Err": "x"}}),
        );
        let md = markdown(&Medians::new(), &load);
        assert!(
            md.contains("not measured: the bare server used 50 % of its core"),
            "{md}"
        );
        load.insert(
            "bare-rmcp-http".to_owned(),
            json!({"tool": "t", "levels": [level(1000.0, 0.95)], "neighbour": {"Err": "x"}}),
        );
        let md = markdown(&Medians::new(), &load);
        assert!(
            md.contains("0.95× (950/s against 1000/s; bare server CPU 95 %; reference server CPU 95 %, cache hits not published (the result predates server statistics)) | met"),
            "{md}"
        );
        let mut gated = level(950.0, 0.95);
        gated["server_stats"] = json!({"published": {"counters": {},
            "hit_rates": {"verified_tokens.bearer": 1.0, "verified_tokens.call": 0.0}}});
        gated["per_tenant"] = json!([{"tenant": "acme", "p50_us": 500, "p99_us": 2000,
            "service": {"p50_us": 400, "p90_us": 450, "p99_us": 900, "max_us": 1000}}]);
        load.insert(
            "reference-http-hs256".to_owned(),
            json!({"tool": "t", "levels": [gated], "neighbour": {"Err": "x"}}),
        );
        let md = markdown(&Medians::new(), &load);
        assert!(
            md.contains("cache hits bearer 100.0 %, call 0.0 %) | met"),
            "{md}"
        );
        assert!(
            md.contains("acme 0.50 / 2.00 ms (service 0.40 / 0.90 ms)"),
            "{md}"
        );
        let page = html(&Medians::new(), &load);
        assert!(page.contains("<svg") && page.contains("<table>") && page.ends_with("</html>\n"));
    }
}
