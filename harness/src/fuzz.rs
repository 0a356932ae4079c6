//! `mcp-tenancy fuzz PROFILE --time 60s [--seed N]`: black-box fuzzing of any target
//! through its profile, over its own transport.
//!
//! Each round does one of:
//! - a **generated call**: a tenant calls one of its entitled tools with arguments
//!   generated from the tool's listed `inputSchema` — every type, enums, bounds broken
//!   now and then, optional members, and in every object the schema leaves open, extra
//!   members named from a dictionary of every property name the target's schemas use,
//!   holding the profile's tenant and principal ids. Every other string carries a fresh
//!   marker of the calling tenant;
//! - an **interleaved round**: two or three such calls of different tenants at once;
//! - a **hostile frame**: a valid `tools/call` frame broken (cut, bytes flipped,
//!   duplicated members, wrong types, deep nesting, a batch), sent as is.
//!
//! After each round the target must still answer a fresh session (liveness), and every
//! tenant is read back through its own list tools: a marker showing in another tenant's
//! read-back — or in another tenant's call result — is a cross-tenant effect. A finding
//! is shrunk (members of its arguments removed while it still reproduces on the live
//! target) and written as a reproducer: the calls as templates (`{marker}` filled, call
//! tokens minted and sessions opened afresh on replay), which
//! `mcp-tenancy fuzz PROFILE --replay FILE` replays against a server in any language.

use crate::catalogue::{Applies, CheckDef};
use crate::checks::{Abort, Ctx, Rng};
use crate::client::{Conn, Target};
use crate::profile::Tenant;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

static FUZZ: CheckDef = CheckDef {
    id: "FUZZ",
    name: "black-box fuzzing",
    requirement: "no generated input makes an effect cross a tenant boundary, and the target keeps serving",
    applies: Applies::Any,
    refs: &[],
};

/// The prefix of the fuzzer's markers (`mcpt-fuzz-<16 hex digits>`).
const MARKER: &str = "mcpt-fuzz-";

/// What a fuzz run does.
#[derive(Debug, Clone)]
pub struct FuzzPlan {
    pub time: Duration,
    pub seed: u64,
    /// Where reproducers are written.
    pub out: PathBuf,
}

/// One call of a round, as a template.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Call {
    pub tenant: String,
    pub tool: String,
    /// `{marker}` in any string is replaced by a fresh marker of `tenant` when sent.
    pub arguments: Value,
}

/// A step of a reproducer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Calls made at once (one session each), tokens minted afresh.
    Calls(Vec<Call>),
    /// A raw frame sent in a session of `tenant` (`{marker}` filled).
    Frame { tenant: String, frame: String },
}

/// What a reproducer shows when replayed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A marker of one tenant showed in another's read-back or call result.
    CrossTenantEffect,
    /// The target stopped answering a fresh session.
    Liveness,
}

/// A finding, replayable.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Reproducer {
    pub kind: Kind,
    /// What was seen when it was found.
    pub seen: String,
    pub profile: String,
    pub seed: u64,
    pub steps: Vec<Step>,
    /// How to replay it.
    pub replay: String,
}

/// The result of a fuzz run.
#[derive(Debug, Clone, Serialize)]
pub struct FuzzReport {
    pub target: String,
    pub seed: u64,
    pub seconds: f64,
    pub rounds: u64,
    pub calls: u64,
    pub calls_refused: u64,
    pub hostile_frames: u64,
    pub read_backs: u64,
    /// Tools called with generated arguments, per tenant.
    pub tools: BTreeMap<String, Vec<String>>,
    /// What could not be checked on this target, and why.
    pub not_checked: Vec<String>,
    pub findings: Vec<Finding>,
}

impl FuzzReport {
    fn empty(target: &Target, seed: u64) -> Self {
        Self {
            target: target.profile.name.clone(),
            seed,
            seconds: 0.0,
            rounds: 0,
            calls: 0,
            calls_refused: 0,
            hostile_frames: 0,
            read_backs: 0,
            tools: BTreeMap::new(),
            not_checked: Vec::new(),
            findings: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub kind: Kind,
    pub seen: String,
    pub reproducer: String,
}

/// Progress on a terminal (or nowhere).
pub trait Progress: Send {
    fn note(&mut self, what: &str);
}

/// The tenants' tools and their schemas, as the target lists them.
struct Surface {
    /// tenant id → (tool name → inputSchema), only tools the profile entitles it to.
    tools: BTreeMap<String, BTreeMap<String, Value>>,
    /// Every property name in any schema, and the profile's ids.
    names: Vec<String>,
    values: Vec<String>,
}

/// The markers handed out: each one's tenant, and the play (epoch) that sent it.
#[derive(Default)]
struct Markers {
    of: BTreeMap<String, (String, u64)>,
    /// The play now running.
    epoch: u64,
    /// Markers older than this are not judged (a shrink or replay judges only what its
    /// own steps wrote).
    since: u64,
}

impl Markers {
    fn fresh(&mut self, rng: &mut Rng, tenant: &str) -> String {
        let m = format!("{MARKER}{:016x}", rng.next_u64());
        self.of.insert(m.clone(), (tenant.to_owned(), self.epoch));
        m
    }

    /// Markers in `text` written for a tenant other than `reader` (and not before
    /// `since`).
    fn foreign(&self, text: &str, reader: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (at, _) in text.match_indices(MARKER) {
            let end = (at + MARKER.len() + 16).min(text.len());
            let Some(m) = text.get(at..end) else { continue };
            if let Some((writer, epoch)) = self.of.get(m)
                && writer != reader
                && *epoch >= self.since
                && !out.iter().any(|(x, _): &(String, String)| x == m)
            {
                out.push((m.to_owned(), writer.clone()));
            }
        }
        out
    }

    /// The play that sent the first marker named in `text`.
    fn epoch_in(&self, text: &str) -> Option<u64> {
        text.match_indices(MARKER).find_map(|(at, _)| {
            let m = text.get(at..(at + MARKER.len() + 16).min(text.len()))?;
            self.of.get(m).map(|(_, e)| *e)
        })
    }
}

fn fill(template: &Value, marker: &str) -> Value {
    match template {
        Value::String(s) => Value::String(s.replace("{marker}", marker)),
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, marker)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), fill(v, marker)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Every property name in `schema`, recursively.
fn property_names(schema: &Value, out: &mut BTreeSet<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            out.insert(k.clone());
            property_names(v, out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(v) = schema.get(key).filter(|v| v.is_object()) {
            property_names(v, out);
        }
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        for v in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            property_names(v, out);
        }
    }
}

/// A value for `schema`, `{marker}` in its free strings.
fn generate(schema: &Value, s: &Surface, rng: &mut Rng, depth: usize) -> Value {
    let pick = |rng: &mut Rng, items: &[String]| {
        items[rng
            .below(items.len().max(1))
            .min(items.len().saturating_sub(1))]
        .clone()
    };
    if let Some(options) = schema
        .get("enum")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
    {
        return options[rng.below(options.len())].clone();
    }
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(options) = schema
            .get(key)
            .and_then(Value::as_array)
            .filter(|o| !o.is_empty())
        {
            return generate(&options[rng.below(options.len())], s, rng, depth);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) if !ts.is_empty() => ts[rng.below(ts.len())]
            .as_str()
            .unwrap_or("string")
            .to_owned(),
        _ if schema.get("properties").is_some() => "object".into(),
        _ => ["string", "integer", "boolean", "object"][rng.below(4)].into(),
    };
    let number = |rng: &mut Rng| -> i64 {
        let lo = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
        let hi = schema
            .get("maximum")
            .and_then(Value::as_i64)
            .unwrap_or(lo.saturating_add(1000));
        match rng.below(6) {
            0 => lo,
            1 => hi,
            2 => lo.saturating_sub(1),
            3 => -1,
            _ => lo.saturating_add((rng.next_u64() % (hi.saturating_sub(lo).max(1) as u64)) as i64),
        }
    };
    match ty.as_str() {
        "string" => match rng.below(8) {
            // The dictionary: another tenant's id, a principal's, as a whole value.
            0 | 1 if !s.values.is_empty() => Value::String(pick(rng, &s.values)),
            2 => Value::String(String::new()),
            3 => Value::String(format!("{{marker}}{}", "x".repeat(rng.below(300)))),
            _ => Value::String("{marker}".into()),
        },
        "integer" => json!(number(rng)),
        "number" => json!(number(rng) as f64 + 0.5),
        "boolean" => json!(rng.below(2) == 0),
        "null" => Value::Null,
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            let n = if depth > 3 { 0 } else { rng.below(3) };
            Value::Array(
                (0..n)
                    .map(|_| generate(&items, s, rng, depth + 1))
                    .collect(),
            )
        }
        _ => {
            let mut out = Map::new();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    if required.contains(&k.as_str()) || rng.below(2) == 0 {
                        out.insert(k.clone(), generate(v, s, rng, depth + 1));
                    }
                }
            }
            // An object the schema leaves open takes members it does not name: named
            // like the target's other properties, holding the profile's ids.
            let open = schema.get("additionalProperties") != Some(&Value::Bool(false));
            if open && depth < 4 && !s.names.is_empty() {
                for _ in 0..1 + rng.below(2) {
                    let name = pick(rng, &s.names);
                    let value = if !s.values.is_empty() && rng.below(2) == 0 {
                        Value::String(pick(rng, &s.values))
                    } else {
                        Value::String("{marker}".into())
                    };
                    out.entry(name).or_insert(value);
                }
            }
            Value::Object(out)
        }
    }
}

/// A hostile variant of a valid `tools/call` frame.
fn break_frame(frame: &str, rng: &mut Rng) -> String {
    let bytes = frame.as_bytes();
    match rng.below(8) {
        0 => String::from_utf8_lossy(&bytes[..rng.below(bytes.len().max(1))]).into_owned(),
        1 => {
            let mut b = bytes.to_vec();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(b.len().max(1));
                if let Some(x) = b.get_mut(i) {
                    *x ^= 1 << rng.below(7);
                }
            }
            String::from_utf8_lossy(&b).into_owned()
        }
        2 => frame.replacen("\"method\"", "\"method\":\"tools/list\",\"method\"", 1),
        3 => frame
            .replacen("\"arguments\":", "\"arguments\":[", 1)
            .replacen("}}", "]}}", 1),
        4 => format!("[{frame},{frame}]"),
        5 => format!("{}{}{}", "[".repeat(600), "{}", "]".repeat(600)),
        6 => frame.replacen("\"id\":", "\"id\":{\"x\":", 1).replacen(
            ",\"method\"",
            "},\"method\"",
            1,
        ),
        _ => frame.replacen("\"jsonrpc\":\"2.0\"", "\"jsonrpc\":2", 1),
    }
}

/// The fuzzer's state over one run.
struct Fuzzer<'a, 't> {
    ctx: Ctx<'t>,
    target: &'t Target,
    surface: Surface,
    markers: Markers,
    rng: Rng,
    report: &'a mut FuzzReport,
}

/// What one round saw.
enum Seen {
    Nothing,
    Finding(Kind, String),
}

impl<'t> Fuzzer<'_, 't> {
    fn tenant(&self, id: &str) -> Option<Tenant> {
        self.target
            .profile
            .tenants
            .iter()
            .find(|t| t.id == id)
            .cloned()
    }

    /// Makes `calls` at once, each in a session of its own; returns the markers sent and
    /// any call result that shows another tenant's marker.
    async fn calls(&mut self, calls: &[Call]) -> Result<Option<String>, Abort> {
        let mut conns: Vec<(Conn, Call, Value, Option<String>)> = Vec::new();
        for call in calls {
            let tenant = self
                .tenant(&call.tenant)
                .ok_or_else(|| Abort::Skip(format!("no tenant {}", call.tenant)))?;
            let marker = self.markers.fresh(&mut self.rng, &tenant.id);
            let arguments = fill(&call.arguments, &marker);
            let token = match self.ctx.token_for(&tenant, &call.tool, "").await {
                Ok(t) => t,
                Err(Abort::Skip(_)) => None,
                Err(e) => return Err(e),
            };
            let conn = self.ctx.session(&tenant).await?;
            conns.push((conn, call.clone(), arguments, token));
        }
        let sends = conns.iter_mut().map(|(conn, call, arguments, token)| {
            conn.call_tool(&call.tool, arguments.clone(), token.as_deref())
        });
        let answers = crate::client::join_all(sends).await;
        let mut seen = None;
        for ((conn, call, _, _), answer) in conns.into_iter().zip(answers) {
            self.report.calls += 1;
            let answer = answer?;
            if !answer.succeeded() {
                self.report.calls_refused += 1;
            }
            let text = answer.raw.clone();
            if let Some((m, writer)) = self.markers.foreign(&text, &call.tenant).into_iter().next()
            {
                seen.get_or_insert(format!(
                    "{}'s call of {} answered with {m}, written for {writer}",
                    call.tenant, call.tool
                ));
            }
            conn.close().await;
        }
        Ok(seen)
    }

    /// Reads every tenant back through its own list tools; the first foreign marker.
    async fn read_back(&mut self) -> Result<Option<String>, Abort> {
        for tenant in self.target.profile.tenants.clone() {
            if self.target.profile.readable_lists(&tenant).is_empty() {
                continue;
            }
            let lists = self.ctx.read_lists(&tenant, None).await?;
            self.report.read_backs += 1;
            for (tool, answer) in &lists {
                let text = answer.to_string();
                if let Some((m, writer)) =
                    self.markers.foreign(&text, &tenant.id).into_iter().next()
                {
                    return Ok(Some(format!(
                        "{m}, written in a call of {writer}, shows in {}'s {tool}",
                        tenant.id
                    )));
                }
            }
        }
        Ok(None)
    }

    /// Does the target still open and serve a fresh session?
    async fn alive(&mut self) -> Option<String> {
        let tenant = self.target.profile.tenants.first().cloned()?;
        match self.ctx.session(&tenant).await {
            Ok(mut conn) => {
                let ping = conn.ping().await;
                conn.close().await;
                match ping {
                    Ok(a) if a.result().is_some() => None,
                    Ok(a) => Some(format!("a fresh session's ping answered {}", a.describe())),
                    Err(e) => Some(format!("a fresh session's ping failed: {e}")),
                }
            }
            Err(Abort::Client(e)) => Some(format!("a fresh session could not be opened: {e}")),
            Err(_) => None,
        }
    }

    /// Runs `steps` and judges them: a cross-tenant effect, the target's liveness (after
    /// a hostile frame, and every tenth round).
    async fn play(&mut self, steps: &[Step], strict: bool) -> Result<Seen, Abort> {
        self.markers.epoch += 1;
        self.markers.since = if strict { self.markers.epoch } else { 0 };
        let mut check_alive = self.report.rounds.is_multiple_of(10);
        for step in steps {
            match step {
                Step::Calls(calls) => {
                    if let Some(seen) = self.calls(calls).await? {
                        return Ok(Seen::Finding(Kind::CrossTenantEffect, seen));
                    }
                }
                Step::Frame { tenant, frame } => {
                    let t = self
                        .tenant(tenant)
                        .ok_or_else(|| Abort::Skip(format!("no tenant {tenant}")))?;
                    let marker = self.markers.fresh(&mut self.rng, tenant);
                    let mut conn = self.ctx.session(&t).await?;
                    self.report.hostile_frames += 1;
                    let wait = self.target.silence_timeout();
                    let _ = conn
                        .send_raw(frame.replace("{marker}", &marker).as_bytes(), wait)
                        .await;
                    conn.close().await;
                    check_alive = true;
                }
            }
        }
        if check_alive && let Some(why) = self.alive().await {
            return Ok(Seen::Finding(Kind::Liveness, why));
        }
        match self.read_back().await? {
            Some(seen) => Ok(Seen::Finding(Kind::CrossTenantEffect, seen)),
            None => Ok(Seen::Nothing),
        }
    }

    /// One round of generated steps.
    fn round(&mut self) -> Option<Vec<Step>> {
        let tenants: Vec<String> = self
            .surface
            .tools
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        let tenant_ids: Vec<String> = self
            .target
            .profile
            .tenants
            .iter()
            .map(|t| t.id.clone())
            .collect();
        if tenants.is_empty() {
            return None;
        }
        let profile = &self.target.profile;
        let call_of = |rng: &mut Rng, tenant: &str| -> Call {
            let tools = &self.surface.tools[tenant];
            // Writes are where effects come from: the profile's write tools weigh four.
            let weight = |name: &str| if profile.writes(name) { 4 } else { 1 };
            let total: usize = tools.keys().map(|t| weight(t)).sum();
            let mut at = rng.below(total.max(1));
            let (tool, schema) = tools
                .iter()
                .find(|(t, _)| {
                    let w = weight(t);
                    if at < w {
                        true
                    } else {
                        at -= w;
                        false
                    }
                })
                .expect("not empty");
            Call {
                tenant: tenant.to_owned(),
                tool: tool.clone(),
                arguments: generate(schema, &self.surface, rng, 0),
            }
        };
        let mut rng = Rng::new(self.rng.next_u64());
        Some(match rng.below(10) {
            0 | 1 if tenant_ids.len() > 1 => {
                let mut calls = Vec::new();
                for t in tenants.iter().take(3) {
                    calls.push(call_of(&mut rng, t));
                }
                vec![Step::Calls(calls)]
            }
            2 => {
                let t = &tenants[rng.below(tenants.len())];
                let call = call_of(&mut rng, t);
                let frame = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                    "params": {"name": call.tool, "arguments": call.arguments}})
                .to_string();
                vec![Step::Frame {
                    tenant: t.clone(),
                    frame: break_frame(&frame, &mut rng),
                }]
            }
            _ => {
                let t = &tenants[rng.below(tenants.len())];
                vec![Step::Calls(vec![call_of(&mut rng, t)])]
            }
        })
    }

    /// Removes what a finding does not need, replaying each candidate on the target.
    async fn shrink(&mut self, kind: &Kind, steps: Vec<Step>) -> Result<Vec<Step>, Abort> {
        let mut best = steps;
        let mut attempts = 0;
        'outer: loop {
            for candidate in smaller(&best) {
                attempts += 1;
                if attempts > 40 {
                    break 'outer;
                }
                if matches!(self.play(&candidate, true).await?, Seen::Finding(k, _) if &k == kind) {
                    best = candidate;
                    continue 'outer;
                }
            }
            break;
        }
        Ok(best)
    }
}

/// Candidates one step smaller than `steps`: a step dropped, a call dropped from a
/// round, a member dropped from a call's arguments (at any depth).
fn smaller(steps: &[Step]) -> Vec<Vec<Step>> {
    let mut out = Vec::new();
    if steps.len() > 1 {
        for i in 0..steps.len() {
            let mut s = steps.to_vec();
            s.remove(i);
            out.push(s);
        }
    }
    for (i, step) in steps.iter().enumerate() {
        if let Step::Calls(calls) = step {
            if calls.len() > 1 {
                for j in 0..calls.len() {
                    let mut s = steps.to_vec();
                    let mut c = calls.clone();
                    c.remove(j);
                    s[i] = Step::Calls(c);
                    out.push(s);
                }
            }
            for (j, call) in calls.iter().enumerate() {
                for args in without_one_member(&call.arguments) {
                    let mut s = steps.to_vec();
                    let mut c = calls.clone();
                    c[j].arguments = args;
                    s[i] = Step::Calls(c);
                    out.push(s);
                }
            }
        }
    }
    out
}

fn without_one_member(v: &Value) -> Vec<Value> {
    let Value::Object(o) = v else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for k in o.keys() {
        let mut smaller = o.clone();
        smaller.remove(k);
        out.push(Value::Object(smaller));
        for inner in without_one_member(&o[k]) {
            let mut nested = o.clone();
            nested.insert(k.clone(), inner);
            out.push(Value::Object(nested));
        }
    }
    out
}

/// Lists each tenant's tools (the profile's entitlements, as the target lists them).
async fn surface(
    ctx: &mut Ctx<'_>,
    target: &Target,
    not_checked: &mut Vec<String>,
) -> Result<Surface, Abort> {
    let mut tools = BTreeMap::new();
    let mut names = BTreeSet::new();
    for tenant in target.profile.tenants.clone() {
        let mut conn = ctx.session(&tenant).await?;
        let listing = conn.list_all_tools().await?;
        conn.close().await;
        let mut mine = BTreeMap::new();
        for tool in &listing.tools {
            let Some(name) = tool["name"].as_str() else {
                continue;
            };
            let schema = tool
                .get("inputSchema")
                .cloned()
                .unwrap_or(json!({"type": "object"}));
            property_names(&schema, &mut names);
            if tenant.entitled(name) && tenant.principal_for(name).is_some() {
                mine.insert(name.to_owned(), schema);
            }
        }
        if mine.is_empty() {
            not_checked.push(format!(
                "tenant {} lists none of the tools the profile entitles it to",
                tenant.id
            ));
        }
        tools.insert(tenant.id.clone(), mine);
    }
    // The dictionary of values: every tenant id twice (the ids that select a tenant
    // matter most), every principal id once.
    let mut values: Vec<String> = target
        .profile
        .tenants
        .iter()
        .map(|t| t.id.clone())
        .collect();
    values.extend(values.clone());
    for t in &target.profile.tenants {
        for p in t.principals() {
            if !values.contains(&p.id) {
                values.push(p.id);
            }
        }
    }
    Ok(Surface {
        tools,
        names: names.into_iter().collect(),
        values,
    })
}

fn write_reproducer(out: &Path, n: usize, r: &Reproducer) -> Result<PathBuf, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let path = out.join(format!("reproducer-{n:03}.json"));
    let text = serde_json::to_string_pretty(r).expect("a reproducer serialises");
    std::fs::write(&path, text + "\n")
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Fuzzes `target` for `plan.time`.
pub async fn run(
    target: &Target,
    profile_path: &Path,
    plan: &FuzzPlan,
    progress: &mut dyn Progress,
) -> Result<FuzzReport, String> {
    target.prepare().await.map_err(|e| e.to_string())?;
    let mut report = FuzzReport::empty(target, plan.seed);
    let started = Instant::now();
    let mut ctx = Ctx::new(target, &FUZZ);
    let surface = surface(&mut ctx, target, &mut report.not_checked)
        .await
        .map_err(abort_text)?;
    report.tools = surface
        .tools
        .iter()
        .map(|(k, v)| (k.clone(), v.keys().cloned().collect()))
        .collect();
    if target.profile.tenants.len() < 2 {
        report
            .not_checked
            .push("cross-tenant effects: the profile has fewer than two tenants".into());
    }
    let readers = target
        .profile
        .tenants
        .iter()
        .filter(|t| !target.profile.readable_lists(t).is_empty())
        .count();
    if readers == 0 {
        report.not_checked.push("cross-tenant effects in stored data: no tenant has a list tool ([tools.X] role = \"list\") to read back through; call results are still searched".into());
    }
    let mut f = Fuzzer {
        ctx,
        target,
        surface,
        markers: Markers::default(),
        rng: Rng::new(plan.seed),
        report: &mut report,
    };
    let mut last_note = Instant::now();
    // The steps of every play so far, by epoch: a leak found now may have been written
    // by an earlier round, which its reproducer then replays first.
    let mut history: BTreeMap<u64, Vec<Step>> = BTreeMap::new();
    while started.elapsed() < plan.time {
        let Some(steps) = f.round() else {
            f.report
                .not_checked
                .push("no tenant has a tool to call".into());
            break;
        };
        f.report.rounds += 1;
        history.insert(f.markers.epoch + 1, steps.clone());
        let seen = match f.play(&steps, false).await {
            Ok(s) => s,
            Err(Abort::Client(e)) => {
                Seen::Finding(Kind::Liveness, format!("the target failed: {e}"))
            }
            Err(e) => return Err(abort_text(e)),
        };
        if let Seen::Finding(kind, why) = seen {
            progress.note(&format!("finding ({kind:?}): {why} — shrinking"));
            let mut steps = steps;
            if let Some(writer) = f.markers.epoch_in(&why)
                && writer != f.markers.epoch
                && let Some(earlier) = history.get(&writer)
            {
                steps = earlier.iter().cloned().chain(steps).collect();
            }
            let shrunk = match kind {
                Kind::CrossTenantEffect => f.shrink(&kind, steps).await.map_err(abort_text)?,
                Kind::Liveness => steps,
            };
            let reproduces = matches!(
                f.play(&shrunk, true).await,
                Ok(Seen::Finding(ref k, _)) if *k == kind
            );
            let reproducer = Reproducer {
                kind: kind.clone(),
                seen: if reproduces {
                    why.clone()
                } else {
                    format!(
                        "{why} (did not reproduce on its own steps: it may need state of earlier rounds)"
                    )
                },
                profile: profile_path.display().to_string(),
                seed: plan.seed,
                steps: shrunk,
                replay: String::new(),
            };
            let n = f.report.findings.len() + 1;
            let path = plan.out.join(format!("reproducer-{n:03}.json"));
            let reproducer = Reproducer {
                replay: format!(
                    "mcp-tenancy fuzz {} --replay {}",
                    profile_path.display(),
                    path.display()
                ),
                ..reproducer
            };
            let path = write_reproducer(&plan.out, n, &reproducer)?;
            f.report.findings.push(Finding {
                kind: kind.clone(),
                seen: why,
                reproducer: path.display().to_string(),
            });
            if kind == Kind::Liveness || f.report.findings.len() >= 5 {
                break;
            }
        }
        if last_note.elapsed() > Duration::from_secs(5) {
            last_note = Instant::now();
            progress.note(&format!(
                "{:.0} s: {} rounds, {} calls ({} refused), {} hostile frames, {} read-backs, {} finding(s)",
                started.elapsed().as_secs_f64(),
                f.report.rounds,
                f.report.calls,
                f.report.calls_refused,
                f.report.hostile_frames,
                f.report.read_backs,
                f.report.findings.len()
            ));
        }
    }
    report.seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    Ok(report)
}

/// Replays a reproducer on `target`: `Ok(Some(seen))` when the finding reproduces.
pub async fn replay(target: &Target, reproducer: &Reproducer) -> Result<Option<String>, String> {
    target.prepare().await.map_err(|e| e.to_string())?;
    let mut report = FuzzReport::empty(target, reproducer.seed);
    let ctx = Ctx::new(target, &FUZZ);
    let mut f = Fuzzer {
        ctx,
        target,
        surface: Surface {
            tools: BTreeMap::new(),
            names: Vec::new(),
            values: Vec::new(),
        },
        markers: Markers::default(),
        rng: Rng::new(reproducer.seed ^ 0x5eed),
        report: &mut report,
    };
    match f.play(&reproducer.steps, true).await {
        Ok(Seen::Finding(kind, why)) if kind == reproducer.kind => Ok(Some(why)),
        Ok(_) => Ok(None),
        Err(Abort::Client(e)) if reproducer.kind == Kind::Liveness => {
            Ok(Some(format!("the target failed: {e}")))
        }
        Err(e) => Err(abort_text(e)),
    }
}

fn abort_text(e: Abort) -> String {
    match e {
        Abort::Skip(s) | Abort::NotApplicable(s) => s,
        Abort::Client(e) => e.to_string(),
        Abort::ControlFailed => "a control call the profile says works failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn surface() -> Surface {
        Surface {
            tools: BTreeMap::new(),
            names: vec!["tenant_id".into(), "title".into()],
            values: vec!["acme".into(), "globex".into()],
        }
    }

    #[test]
    fn generated_arguments_follow_the_schema_and_fill_open_objects_from_the_dictionary() {
        let schema = json!({"type": "object", "properties": {
            "title": {"type": "string"}, "n": {"type": "integer", "minimum": 1, "maximum": 5},
            "kind": {"enum": ["a", "b"]}, "meta": {"type": "object"}},
            "required": ["title"], "additionalProperties": false});
        let mut rng = Rng::new(7);
        let (mut nested_tenant, mut marked) = (false, false);
        for _ in 0..400 {
            let v = generate(&schema, &surface(), &mut rng, 0);
            let o = v.as_object().expect("an object");
            assert!(
                o.contains_key("title"),
                "required members are always there: {v}"
            );
            assert!(
                o.keys()
                    .all(|k| ["title", "n", "kind", "meta"].contains(&k.as_str())),
                "a closed object gets no extra member: {v}"
            );
            if let Some(k) = o.get("kind") {
                assert!(k == "a" || k == "b", "{v}");
            }
            nested_tenant |= o
                .get("meta")
                .and_then(|m| m.get("tenant_id"))
                .is_some_and(|t| t == "globex");
            marked |= o["title"].as_str().is_some_and(|t| t.contains("{marker}"));
        }
        assert!(
            nested_tenant,
            "an open object is given the target's property names, holding tenant ids"
        );
        assert!(marked, "free strings carry the marker");
    }

    #[test]
    fn markers_are_found_only_where_another_tenant_reads_them() {
        let mut m = Markers::default();
        let mut rng = Rng::new(1);
        let a = m.fresh(&mut rng, "acme");
        let text = format!("{{\"notes\":[{{\"title\":\"{a}xyz\"}}]}}");
        assert!(m.foreign(&text, "acme").is_empty());
        assert_eq!(
            m.foreign(&text, "globex"),
            vec![(a.clone(), "acme".to_owned())]
        );
    }

    #[test]
    fn shrinking_candidates_drop_calls_and_nested_members() {
        let steps = vec![Step::Calls(vec![
            Call {
                tenant: "acme".into(),
                tool: "t".into(),
                arguments: json!({"a": 1, "meta": {"x": 1, "y": 2}}),
            },
            Call {
                tenant: "globex".into(),
                tool: "t".into(),
                arguments: json!({}),
            },
        ])];
        let c = smaller(&steps);
        assert!(
            c.iter()
                .any(|s| matches!(&s[0], Step::Calls(calls) if calls.len() == 1))
        );
        assert!(c.iter().any(|s| matches!(&s[0], Step::Calls(calls) if calls[0].arguments == json!({"a": 1, "meta": {"y": 2}}))));
    }
}
