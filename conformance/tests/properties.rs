//! Property tests against a live server (the reference server over stdio by default;
//! `MCP_TENANCY_TARGET=profile.toml` for another): generated smuggled tenant-id
//! spellings (T3.2), generated tool-name spellings (T6.3), and generated interleavings
//! of two tenants' sessions (T1.3/T4.1 territory: each sees only its own writes).
//!
//! The generators combine the building blocks of `mcp_tenancy::variants` at random
//! (one edit per character, padding, key spellings, wrappers), where the T3.2 and T6.3
//! checks walk a fixed list. Every case talks to the server, so the case counts are
//! modest.
//!
//! On a failure, proptest shrinks the case and the message carries the frames of the
//! minimal case, in order, ready to replay. Failure persistence is off: a case is only
//! meaningful against the server state it ran on, and the reproducer in the message is
//! the exact wire exchange — a seed file would replay generator choices, not frames.

use mcp_tenancy::catalogue;
use mcp_tenancy::checks::{Abort, Ctx};
use mcp_tenancy::client::{Answer, Conn, Target};
use mcp_tenancy::model::Direction;
use mcp_tenancy::profile::{Profile, Role, Tenant, Transport};
use mcp_tenancy::variants::{self, CharEdit, PADDING};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};
use std::path::PathBuf;

/// Cases per property: each case spawns sessions on the real server.
const CASES: u32 = 24;

fn profile_path() -> PathBuf {
    mcp_tenancy_conformance::path_from_env("MCP_TENANCY_TARGET")
        .unwrap_or_else(|| mcp_tenancy_conformance::reference_profile("stdio"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// A prepared target for one test. Owned, so that a server it launches is stopped
/// when the test ends (a static would never be dropped, and the server would outlive
/// the test binary).
fn target() -> Target {
    let profile = Profile::load(&profile_path()).unwrap_or_else(|e| panic!("{e}"));
    let target = Target::new(profile);
    runtime()
        .block_on(target.prepare())
        .unwrap_or_else(|e| panic!("cannot build the target: {e}"));
    target
}

/// What the properties drive, read from the profile.
struct Cast {
    caller: Tenant,
    other: Tenant,
    /// The caller's write tool with a tenant argument, and that argument.
    write: String,
    tenant_key: String,
    list: String,
    /// A tool of the other tenant the caller is not entitled to.
    foreign: String,
}

fn cast(target: &Target) -> Cast {
    let p = &target.profile;
    let (caller, other) = match p.tenants.as_slice() {
        [a, b, ..] => (a.clone(), b.clone()),
        _ => panic!("the profile needs two tenants"),
    };
    let write = p
        .tools_with_role(&caller, Role::Write)
        .into_iter()
        .find(|w| p.tool(w).is_some_and(|s| s.tenant_argument.is_some()))
        .expect("a write tool with a tenant_argument");
    let tenant_key = p
        .tool(&write)
        .and_then(|s| s.tenant_argument.clone())
        .expect("checked");
    let list = p
        .tools_with_role(&caller, Role::List)
        .into_iter()
        .find(|l| other.entitled(l))
        .expect("a list tool both tenants may call");
    let foreign = other
        .tools
        .iter()
        .find(|t| !caller.entitled(t))
        .cloned()
        .expect("a tool of the second tenant the first lacks");
    Cast {
        caller,
        other,
        write,
        tenant_key,
        list,
        foreign,
    }
}

fn abort(e: Abort) -> TestCaseError {
    TestCaseError::fail(match e {
        Abort::Skip(reason) => format!("cannot run: {reason}"),
        Abort::NotApplicable(reason) => format!("does not apply: {reason}"),
        Abort::Client(e) => e.to_string(),
        Abort::ControlFailed => "a control call failed (the transcript shows it)".into(),
    })
}

/// Calls `name` as `tenant` with a valid token naming `name` (the action, resource
/// and principal of `canonical`).
async fn call(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    tenant: &Tenant,
    name: &str,
    canonical: &str,
    arguments: Value,
) -> Result<Answer, TestCaseError> {
    let token = mcp_tenancy::checks::t3::call_token(ctx, tenant, name, canonical)
        .await
        .map_err(abort)?;
    conn.call_tool(name, arguments, token.as_deref())
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))
}

/// Lists `tenant`'s state in `conn`; the listing must succeed.
async fn listing(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    tenant: &Tenant,
    list: &str,
) -> Result<Answer, TestCaseError> {
    let args = ctx.arguments(list, "", "", &tenant.id);
    let answer = call(ctx, conn, tenant, list, list, args).await?;
    if answer.succeeded() {
        Ok(answer)
    } else {
        Err(TestCaseError::fail(format!(
            "the read-back {list} as {} failed: {}",
            tenant.id,
            answer.describe()
        )))
    }
}

/// The frames the harness sent in this case, in order, for a reproducer.
fn reproducer(ctx: &Ctx<'_>, target: &Target) -> String {
    let mut text = format!(
        "reproducer — replay these frames in order, one session per label ({}; each session presents its tenant's credential as the profile says: {}):\n",
        target.profile.name,
        match target.transport() {
            Transport::Stdio =>
                "stdio, a process per session with the session token in its environment",
            Transport::Http => "HTTP, the session token as a bearer on every request",
        }
    );
    for f in ctx.transcript.frames() {
        let arrow = match f.direction {
            Direction::Sent => "→",
            Direction::Received => "←",
            Direction::Note => "#",
        };
        text.push_str(&format!("{arrow} [{}] {}\n", f.session, f.body));
    }
    text
}

/// Runs `body` for each generated case with a fresh context; a failure carries the
/// case's frames.
fn check<S: Strategy>(
    target: &Target,
    id: &'static str,
    strategy: S,
    body: impl AsyncCase<S::Value>,
) where
    S::Value: Clone,
{
    let def = catalogue::check(id).expect("a catalogue id");
    let rt = runtime();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |value| {
        let mut ctx = Ctx::new(target, def);
        match rt.block_on(body.run(&mut ctx, value)) {
            Ok(()) => Ok(()),
            Err(TestCaseError::Fail(why)) => Err(TestCaseError::fail(format!(
                "{why}\n{}",
                reproducer(&ctx, target)
            ))),
            Err(reject) => Err(reject),
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A case body: async, borrowing the case's context.
trait AsyncCase<V> {
    fn run(
        &self,
        ctx: &mut Ctx<'_>,
        value: V,
    ) -> impl std::future::Future<Output = Result<(), TestCaseError>>;
}

/// One kind of edit at one to three positions of a string of `len` characters, the
/// rest kept: a subtle spelling is likelier to slip through a lenient lookup than a
/// string edited everywhere.
fn edits(len: usize) -> impl Strategy<Value = Vec<CharEdit>> {
    let positions =
        proptest::sample::subsequence((0..len).collect::<Vec<_>>(), 1..=len.clamp(1, 3));
    (proptest::sample::select(CharEdit::ALL.to_vec()), positions).prop_map(move |(edit, at)| {
        let mut edits = vec![CharEdit::Keep; len];
        for i in at {
            edits[i] = edit;
        }
        edits
    })
}

/// Padding (usually none) before and after.
fn padding() -> impl Strategy<Value = (Option<&'static str>, Option<&'static str>)> {
    let pad = proptest::option::weighted(
        0.3,
        proptest::sample::select(PADDING.iter().map(|(_, p)| *p).collect::<Vec<_>>()),
    );
    (pad.clone(), pad)
}

fn padded(s: &str, (before, after): (Option<&str>, Option<&str>)) -> String {
    format!("{}{s}{}", before.unwrap_or(""), after.unwrap_or(""))
}

/// A generated smuggled spelling: the victim's id respelt and padded, under the real
/// tenant key or one of its spellings, plain, in an array, or nested.
#[derive(Debug, Clone)]
struct Smuggled {
    edits: Vec<CharEdit>,
    pad: (Option<&'static str>, Option<&'static str>),
    key: Option<usize>,
    wrap: u8,
}

impl Smuggled {
    fn fields(&self, victim: &str, key: &str) -> Map<String, Value> {
        let id = padded(&variants::respell(victim, &self.edits), self.pad);
        let keys = variants::key_spellings(key);
        let key = self
            .key
            .map(|i| keys[i % keys.len()].value.clone())
            .unwrap_or_else(|| key.to_owned());
        let value = match self.wrap {
            0 => json!(id),
            1 => json!([id]),
            _ => json!({"id": id}),
        };
        let mut m = Map::new();
        m.insert(key, value);
        m
    }
}

struct SmuggledCase;

impl AsyncCase<Smuggled> for SmuggledCase {
    async fn run(&self, ctx: &mut Ctx<'_>, s: Smuggled) -> Result<(), TestCaseError> {
        let target = ctx.target;
        let c = cast(target);
        let fields = s.fields(&c.other.id, &c.tenant_key);
        let marker = ctx.marker_for(&c.caller.id);
        let args = match ctx.arguments(&c.write, &marker, "", &c.caller.id) {
            Value::Object(base) => variants::merged(&base, &fields),
            _ => fields.clone(),
        };
        let mut mine = ctx.session(&c.caller).await.map_err(abort)?;
        let answer = call(
            ctx,
            &mut mine,
            &c.caller,
            &c.write,
            &c.write,
            Value::Object(args),
        )
        .await?;
        let in_caller = listing(ctx, &mut mine, &c.caller, &c.list)
            .await?
            .mentions(&marker);
        // Over HTTP one server holds every session: the victim's read-back is evidence.
        let in_victim = if target.transport() == Transport::Http {
            let mut theirs = ctx.session(&c.other).await.map_err(abort)?;
            let seen = listing(ctx, &mut theirs, &c.other, &c.list)
                .await?
                .mentions(&marker);
            theirs.close().await;
            seen
        } else {
            false
        };
        mine.close().await;
        let shown = variants::visible(&Value::Object(fields).to_string());
        prop_assert!(!in_victim, "{shown}: the write landed in {}", c.other.id);
        if answer.succeeded() {
            prop_assert!(
                in_caller,
                "{shown}: accepted ({}) but not written into the caller's tenant {}",
                answer.describe(),
                c.caller.id
            );
        } else {
            prop_assert!(
                !in_caller,
                "{shown}: refused ({}) but written anyway",
                answer.describe()
            );
        }
        Ok(())
    }
}

#[test]
fn t3_2_generated_spellings_never_act_on_the_named_tenant() {
    let target = target();
    let c = cast(&target);
    let len = c.other.id.chars().count();
    let keys = variants::key_spellings(&c.tenant_key).len();
    let strategy = (
        edits(len),
        padding(),
        proptest::option::weighted(0.3, 0..keys),
        0u8..3,
    )
        .prop_map(|(edits, pad, key, wrap)| Smuggled {
            edits,
            pad,
            key,
            wrap,
        });
    check(&target, "T3.2", strategy, SmuggledCase);
}

/// A generated tool-name spelling of the foreign tool (`foreign`) or the caller's own
/// write tool.
#[derive(Debug, Clone)]
struct NameVariant {
    foreign: bool,
    edits: Vec<CharEdit>,
    pad: (Option<&'static str>, Option<&'static str>),
    prefix: Option<&'static str>,
}

impl NameVariant {
    fn name(&self, tool: &str) -> String {
        format!(
            "{}{}",
            self.prefix.unwrap_or(""),
            padded(&variants::respell(tool, &self.edits), self.pad)
        )
    }
}

struct NameCase;

impl AsyncCase<NameVariant> for NameCase {
    async fn run(&self, ctx: &mut Ctx<'_>, v: NameVariant) -> Result<(), TestCaseError> {
        let c = cast(ctx.target);
        let tool = if v.foreign { &c.foreign } else { &c.write };
        let name = v.name(tool);
        prop_assume!(&name != tool, "the unchanged name");
        let marker = ctx.marker_for(&c.caller.id);
        let args = ctx.arguments(tool, &marker, "", &c.caller.id);
        let mut conn = ctx.session(&c.caller).await.map_err(abort)?;
        let answer = call(ctx, &mut conn, &c.caller, &name, tool, args).await?;
        let written = listing(ctx, &mut conn, &c.caller, &c.list)
            .await?
            .mentions(&marker);
        conn.close().await;
        let shown = variants::visible(&name);
        prop_assert!(
            !answer.succeeded(),
            "{tool} spelt {shown:?} was accepted: {}",
            answer.describe()
        );
        prop_assert!(
            !written,
            "{tool} spelt {shown:?} was refused but wrote into {}",
            c.caller.id
        );
        Ok(())
    }
}

#[test]
fn t6_3_generated_tool_names_do_not_pass_the_gate() {
    let target = target();
    let c = cast(&target);
    let len = c.foreign.chars().count().max(c.write.chars().count());
    let prefixes = vec!["tools/", "mcp__server__", "/", "acme/", "globex.", "x:"];
    let strategy = (
        any::<bool>(),
        edits(len),
        padding(),
        proptest::option::weighted(0.3, proptest::sample::select(prefixes)),
    )
        .prop_map(|(foreign, edits, pad, prefix)| NameVariant {
            foreign,
            edits,
            pad,
            prefix,
        });
    check(&target, "T6.3", strategy, NameCase);
}

/// One step of an interleaving: tenant 0 or 1 writes a note, or lists.
#[derive(Debug, Clone, Copy)]
enum Step {
    Write(usize),
    List(usize),
}

struct InterleavingCase;

impl AsyncCase<Vec<Step>> for InterleavingCase {
    async fn run(&self, ctx: &mut Ctx<'_>, steps: Vec<Step>) -> Result<(), TestCaseError> {
        let c = cast(ctx.target);
        let tenants = [c.caller.clone(), c.other.clone()];
        let mut conns = Vec::new();
        for t in &tenants {
            conns.push(ctx.session(t).await.map_err(abort)?);
        }
        let mut written: [Vec<String>; 2] = [Vec::new(), Vec::new()];
        for step in steps {
            match step {
                Step::Write(i) => {
                    let marker = ctx.marker_for(&tenants[i].id);
                    let args = ctx.arguments(&c.write, &marker, "", &tenants[i].id);
                    let answer =
                        call(ctx, &mut conns[i], &tenants[i], &c.write, &c.write, args).await?;
                    prop_assert!(
                        answer.succeeded(),
                        "{} could not write: {}",
                        tenants[i].id,
                        answer.describe()
                    );
                    written[i].push(marker);
                }
                Step::List(i) => {
                    let answer = listing(ctx, &mut conns[i], &tenants[i], &c.list).await?;
                    for m in &written[i] {
                        prop_assert!(
                            answer.mentions(m),
                            "{} does not see its own {m}",
                            tenants[i].id
                        );
                    }
                    for m in &written[1 - i] {
                        prop_assert!(
                            !answer.mentions(m),
                            "{} sees {}'s {m}",
                            tenants[i].id,
                            tenants[1 - i].id
                        );
                    }
                }
            }
        }
        for conn in conns {
            conn.close().await;
        }
        Ok(())
    }
}

#[test]
fn interleaved_sessions_each_see_only_their_own_writes() {
    let step = prop_oneof![
        (0usize..2).prop_map(Step::Write),
        (0usize..2).prop_map(Step::List)
    ];
    check(
        &target(),
        "T1.3",
        proptest::collection::vec(step, 1..10),
        InterleavingCase,
    );
}
