//! T3 — arguments are untrusted input (seed mistake 3).
//!
//! A tenant id in the arguments is a label, never authority. Every case is judged by
//! its effect: the write tool is called with a unique marker, then the caller's tenant
//! (and, where the target lets one session observe another's writes, the named tenant)
//! is read back through its list tool. A call that acted on the named tenant fails; a
//! call that was accepted must have acted on the caller; a call that was refused must
//! have left no trace anywhere.
//!
//! The read-back happens in the caller's own session as well as the other tenant's:
//! over stdio every connection is its own process with its own state, so only the
//! session that made a call can see its effect. Whether the other tenant's session
//! can observe anything is probed first (a second session of the caller must see the
//! caller's control write); where it cannot, the report says so and the cases are
//! judged on the caller's side — an accepted call must show there.
//!
//! The staging helpers here ([`Stage`], [`Stage::call`], [`Stage::judge`]) are shared
//! with T6, which judges refusals the same way.

pub(super) use super::readback::shows;
use super::readback::{Listings, Witness};
use super::{Abort, CheckResult, Ctx};
use crate::client::{Answer, ClientError, Conn, shorten};
use crate::model::Outcome;
use crate::profile::{Role, Tenant};
use crate::variants::{self, visible};
use serde_json::{Map, Value, json};

/// Is `answer` a refusal: a JSON-RPC error, an `isError` result, or an HTTP error?
pub(super) fn refused(answer: &Answer) -> bool {
    !answer.succeeded()
}

/// One tenant's session.
pub(super) struct Side {
    pub tenant: Tenant,
    pub conn: Conn,
    /// The list tools this tenant's state is read back with.
    pub lists: Vec<String>,
}

/// What a case requires of the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// Refused, or accepted and acting on the caller's own tenant (T3.1, T3.2).
    RefusedOrScoped,
    /// Refused, with no effect anywhere (T3.3, T6).
    Refused,
}

/// A call made, waiting for the read-back that judges it ([`Stage::settle`]).
pub(super) struct Deferred {
    case: String,
    answer: Answer,
    witness: Witness,
    expect: Expect,
}

/// The stage of a T3/T6 check: the caller, the other tenant, the caller's write tool,
/// and whether the other tenant's read-back can observe anything.
pub(super) struct Stage {
    pub caller: Side,
    pub other: Side,
    /// The caller's write tool (role `write`) — or, on a stage opened for a caller
    /// without one ([`Stage::open_any`]), the other tenant's.
    pub write: String,
    /// Does the caller have a write tool of its own (`write` is the caller's)?
    pub caller_writes: bool,
    /// Can the other tenant's session observe what the caller's session wrote? False
    /// when separate connections share no state (a stdio process per connection) or
    /// when the other tenant's list already shows the caller's own writes.
    pub other_observable: bool,
    /// The other tenant's own write, made once for misdirected reads to show: the
    /// record id it returned (`Some(None)`: written, no id returned).
    other_record: Option<Result<Option<Value>, String>>,
    /// Write tool → does a valid call of it show in the caller's lists (proved once)?
    proven: std::collections::BTreeMap<String, bool>,
}

/// Does a second session of `side`'s tenant see `marker`, written in `side`'s session?
/// Then the tenant's sessions share state, and its read-back is evidence.
async fn second_session_sees(ctx: &mut Ctx<'_>, side: &Side, marker: &str) -> Result<bool, Abort> {
    let mut again = Side {
        tenant: side.tenant.clone(),
        conn: ctx.session(&side.tenant).await?,
        lists: side.lists.clone(),
    };
    let seen = shows(&lists(ctx, &mut again).await?, marker);
    again.conn.close().await;
    Ok(seen)
}

/// Picks the caller (`caller`, or the first tenant that fits) with a write tool it may
/// call (with a tenant argument when `tenant_argument`) and a list tool, and another
/// tenant with a list tool.
fn cast(
    ctx: &Ctx<'_>,
    tenant_argument: bool,
    caller: Option<&str>,
) -> Result<(Tenant, Tenant, String), Abort> {
    let profile = &ctx.target.profile;
    if profile.tenants.len() < 2 {
        return Err(Abort::Skip(
            "the profile lists fewer than two [[tenants]]: there is no other tenant to protect"
                .into(),
        ));
    }
    let write_of = |t: &Tenant| {
        profile
            .tools_with_role(t, Role::Write)
            .into_iter()
            .filter(|w| t.principal_for(w).is_some() && ctx.takes_marker(w))
            .find(|w| {
                !tenant_argument || profile.tool(w).is_some_and(|s| s.tenant_argument.is_some())
            })
    };
    for a in profile
        .tenants
        .iter()
        .filter(|t| caller.is_none_or(|c| c == t.id))
    {
        let Some(write) = write_of(a).filter(|_| !ctx.target.profile.readable_lists(a).is_empty())
        else {
            continue;
        };
        if let Some(b) = profile
            .tenants
            .iter()
            .find(|t| t.id != a.id && !ctx.target.profile.readable_lists(t).is_empty())
        {
            return Ok((a.clone(), b.clone(), write));
        }
    }
    let whom = caller.map_or("no tenant".to_owned(), |c| format!("tenant {c}"));
    Err(Abort::Skip(format!(
        "{whom} has a [tools.X] with role = \"write\"{} whose arguments carry {{marker}}, plus a role = \"list\" tool, beside another tenant with a list tool: effects cannot be proved",
        if tenant_argument {
            " and a tenant_argument"
        } else {
            ""
        }
    )))
}

impl Stage {
    /// Opens a session as `a` (the caller) and one as `b`; nothing is sent yet.
    async fn connect(
        ctx: &mut Ctx<'_>,
        a: Tenant,
        b: Tenant,
        write: String,
        caller_writes: bool,
    ) -> Result<Self, Abort> {
        let caller_conn = ctx.session(&a).await?;
        let other_conn = ctx.session(&b).await?;
        Ok(Stage {
            caller: Side {
                lists: ctx.target.profile.readable_lists(&a),
                tenant: a,
                conn: caller_conn,
            },
            other: Side {
                lists: ctx.target.profile.readable_lists(&b),
                tenant: b,
                conn: other_conn,
            },
            write,
            caller_writes,
            other_observable: false,
            other_record: None,
            proven: std::collections::BTreeMap::new(),
        })
    }

    /// Opens both sessions (as `caller`, or the first tenant that fits) and proves the
    /// write tool and the read-back work: a legitimate write by the caller must show in
    /// the caller's list. Then decides whether the other tenant's read-back can observe
    /// anything. Neither session sends `tools/list`.
    pub async fn open(
        ctx: &mut Ctx<'_>,
        tenant_argument: bool,
        caller: Option<&str>,
    ) -> Result<Self, Abort> {
        let (a, b, write) = cast(ctx, tenant_argument, caller)?;
        let mut stage = Stage::connect(ctx, a, b, write, true).await?;
        let control = ctx.marker_for(&stage.caller.tenant.id);
        let write = stage.write.clone();
        let args = stage.arguments(ctx, &write, &control);
        let answer = stage.call(ctx, &write, &write, Value::Object(args)).await?;
        let (a, b) = (
            stage.caller.tenant.id.clone(),
            stage.other.tenant.id.clone(),
        );
        // The profile says this write works; a target that disagrees fails the check
        // (or its profile does) — never a reason to skip, nor to pass quietly.
        let case = format!("control: a valid {write} call by {a} takes effect");
        let expected = "succeeds, and the read-back shows it";
        if refused(&answer) {
            ctx.must(
                &case,
                false,
                expected,
                format!(
                    "{} — without a working write, no refusal proves anything",
                    answer.describe()
                ),
            );
            stage.close().await;
            return Err(Abort::ControlFailed);
        }
        let shown = match lists(ctx, &mut stage.caller).await {
            Ok(listed) => shows(&listed, &control),
            Err(e) => {
                stage.close().await;
                return Err(e);
            }
        };
        if !shown {
            // Not in the caller's lists: did it land in the other tenant's?
            let landed = match lists(ctx, &mut stage.other).await {
                Ok(listed) => shows(&listed, &control),
                Err(e) => {
                    stage.close().await;
                    return Err(e);
                }
            };
            if landed {
                ctx.must(
                    &format!("control: a valid {write} call by {a} stays in {a}"),
                    false,
                    format!("the write shows in {a}'s lists only"),
                    format!(
                        "{}, and its marker {control} shows in {b}'s lists, not in {a}'s — {a}'s write reached another tenant",
                        answer.describe()
                    ),
                );
                stage.close().await;
                return Err(Abort::ControlFailed);
            }
            // The write works, but nothing the profile names can show it: no effect can
            // be proved either way on this target.
            let lists = stage.caller.lists.join(", ");
            stage.close().await;
            return Err(Abort::Skip(format!(
                "a valid {write} call by {a} succeeded ({}), but none of {a}'s list tools ({lists}) shows its marker {control}: what {write} writes cannot be read back, so no refusal can be proved by its effects",
                answer.describe()
            )));
        }
        // Does a second session of the caller see the control write? Then sessions
        // share state and the other tenant's read-back is evidence.
        let shared = second_session_sees(ctx, &stage.caller, &control).await?;
        let case = format!("{b}'s read-back");
        if !shared {
            ctx.observe(
                &case,
                Outcome::Skip,
                format!("a second session of {a} sees {a}'s own write, so that {b}'s session can observe writes too"),
                format!("sessions of this target share no state (e.g. one stdio process per connection): {b}'s read-back would prove nothing, so every case is judged on {a}'s side — an accepted call must show in {a}'s lists, a refused one must not"),
            );
        } else if shows(&lists(ctx, &mut stage.other).await?, &control) {
            ctx.observe(
                &case,
                Outcome::Skip,
                format!("{b}'s lists do not show {a}'s writes"),
                format!("{b}'s lists show {a}'s legitimate write (a data-layer leak, see T4): a write into {b} cannot be told apart, so every case is judged on {a}'s side"),
            );
        } else {
            stage.other_observable = true;
        }
        Ok(stage)
    }

    /// [`Stage::open`] for `caller`; for a caller without a write tool of its own, a
    /// stage whose control is the other tenant's: a tenant that may write nothing can
    /// still call what it must not, and the effects are read back in both tenants
    /// (in the other tenant's lists where its sessions share state, and in the
    /// caller's, where a marker that shows is proof by itself).
    pub async fn open_any(ctx: &mut Ctx<'_>, caller: &str) -> Result<Self, Abort> {
        let why = match Self::open(ctx, false, Some(caller)).await {
            Err(Abort::Skip(why)) => why,
            other => return other,
        };
        let profile = &ctx.target.profile;
        let Some(a) = profile.tenants.iter().find(|t| t.id == caller).cloned() else {
            return Err(Abort::Skip(why));
        };
        if !profile.tools_with_role(&a, Role::Write).is_empty()
            || profile.readable_lists(&a).is_empty()
        {
            // It has a write tool that cannot be proved, or no list to read its own
            // tenant back through: the skip stands.
            return Err(Abort::Skip(why));
        }
        let other = profile.tenants.iter().find_map(|t| {
            let write = profile
                .tools_with_role(t, Role::Write)
                .into_iter()
                .find(|w| t.principal_for(w).is_some() && ctx.takes_marker(w))?;
            (t.id != a.id && !profile.readable_lists(t).is_empty()).then(|| (t.clone(), write))
        });
        let Some((b, write)) = other else {
            return Err(Abort::Skip(why));
        };
        let mut stage = Stage::connect(ctx, a, b, write, false).await?;
        let (a, b) = (
            stage.caller.tenant.id.clone(),
            stage.other.tenant.id.clone(),
        );
        // The control: the other tenant's own write shows in its lists, from a second
        // session of it too (then its sessions share state and its read-back is
        // evidence of what the caller's calls did).
        let control = ctx.marker_for(&b);
        let args = Value::Object(tool_arguments(ctx, &stage.write, &b, &control));
        let token = call_token(ctx, &stage.other.tenant, &stage.write, &stage.write).await?;
        let answer = stage
            .other
            .conn
            .call_tool(&stage.write, args, token.as_deref())
            .await?;
        let shared = second_session_sees(ctx, &stage.other, &control).await?;
        let own = shows(&lists(ctx, &mut stage.other).await?, &control);
        let case = format!("control: a valid {} call by {b} takes effect", stage.write);
        ctx.must(
            &case,
            answer.succeeded() && own,
            format!("succeeds, and {b}'s read-back shows it ({a} has no write tool of its own)"),
            format!(
                "{}{}",
                answer.describe(),
                if own {
                    ", and its marker shows"
                } else {
                    ", but its marker does not show"
                }
            ),
        );
        if !(answer.succeeded() && own) {
            stage.close().await;
            return Err(Abort::ControlFailed);
        }
        stage.other_observable = shared;
        if !shared {
            ctx.observe(
                &format!("{b}'s read-back"),
                Outcome::Skip,
                format!("a second session of {b} sees {b}'s own write"),
                format!("sessions of this target share no state: {a} has no write tool, so effects are judged by {a}'s own lists only"),
            );
        }
        // The other tenant's marker is now written: a misdirected read shows it.
        stage.other_record = Some(Ok(super::t2::record_id(&answer)));
        Ok(stage)
    }

    /// The profile's arguments for `tool` as the caller, with `marker`.
    pub fn arguments(&self, ctx: &Ctx<'_>, tool: &str, marker: &str) -> Map<String, Value> {
        tool_arguments(ctx, tool, &self.caller.tenant.id, marker)
    }

    /// Calls `name` as the caller with a call token naming `name`, minted for the
    /// caller's tenant with the action and resource of the tool `canonical` (`name`
    /// itself, or the tool a variant spells).
    pub async fn call(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &str,
        canonical: &str,
        arguments: Value,
    ) -> Result<Answer, Abort> {
        self.call_named(ctx, name, name, canonical, arguments).await
    }

    /// Calls `name` as the caller with a call token naming `token_name` (the name as
    /// sent, or the tool it spells), with the action and resource of `canonical`.
    pub async fn call_named(
        &mut self,
        ctx: &mut Ctx<'_>,
        name: &str,
        token_name: &str,
        canonical: &str,
        arguments: Value,
    ) -> Result<Answer, Abort> {
        let token = call_token(ctx, &self.caller.tenant, token_name, canonical).await?;
        Ok(self
            .caller
            .conn
            .call_tool_as(name, canonical, arguments, token.as_deref())
            .await?)
    }

    /// Sends `text` as one raw frame on the caller's session, waiting up to `wait`,
    /// with `headers` over HTTP (the call's per-tool headers and a call token that
    /// travels in a header; see [`Stage::frame`]).
    pub async fn send_raw(
        &mut self,
        text: &str,
        headers: &[(String, String)],
        wait: std::time::Duration,
    ) -> Result<Answer, ClientError> {
        match self.caller.conn.http() {
            Some(h) => Ok(Conn::answer_of(
                h.post(text.as_bytes(), headers, wait).await?,
                text.as_bytes(),
            )),
            None => self.caller.conn.send_raw(text.as_bytes(), wait).await,
        }
    }

    /// A `tools/call` frame of `name` — the profile's `_meta` for the tool, the call
    /// token in `_meta` when the profile puts it there — and the HTTP headers that go
    /// with it ([`Conn::call_params`]).
    pub fn frame(
        &self,
        id: i64,
        name: &str,
        arguments: Value,
        token: Option<&str>,
    ) -> (Value, Vec<(String, String)>) {
        let (params, headers) = self.caller.conn.call_params(name, arguments, token);
        (
            json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}),
            headers,
        )
    }

    /// Prepares the judgement of a call of `tool` carrying `marker` (if its arguments
    /// take one): a marker-less write snapshots both tenants' lists first.
    pub async fn witness(
        &mut self,
        ctx: &mut Ctx<'_>,
        tool: &str,
        marker: Option<&str>,
    ) -> Result<Witness, Abort> {
        let writes = ctx.target.profile.writes(tool);
        let mut before = std::collections::BTreeMap::new();
        if writes && marker.is_none() {
            before.insert(
                self.caller.tenant.id.clone(),
                lists(ctx, &mut self.caller).await?,
            );
            if self.other_observable {
                before.insert(
                    self.other.tenant.id.clone(),
                    lists(ctx, &mut self.other).await?,
                );
            }
        }
        Ok(Witness {
            writes,
            marker: marker.map(str::to_owned),
            session_tenant: self.caller.tenant.id.clone(),
            before,
            beside: Vec::new(),
        })
    }

    /// Reads both tenants back and records the case: `answer` (`None`: no answer came)
    /// must meet `expect`.
    pub async fn judge(
        &mut self,
        ctx: &mut Ctx<'_>,
        case: &str,
        answer: Option<&Answer>,
        witness: &Witness,
        expect: Expect,
    ) -> CheckResult {
        let read = self.read_back(ctx, witness.writes).await?;
        self.judge_read_back(ctx, case, answer, witness, expect, &read);
        Ok(())
    }

    /// Both tenants' listings now (the other's only where it can observe anything);
    /// `None` when nothing needs reading.
    pub async fn read_back(
        &mut self,
        ctx: &mut Ctx<'_>,
        needed: bool,
    ) -> Result<Option<(Listings, Option<Listings>)>, Abort> {
        if !needed {
            return Ok(None);
        }
        let mine = lists(ctx, &mut self.caller).await?;
        let theirs = if self.other_observable {
            Some(lists(ctx, &mut self.other).await?)
        } else {
            None
        };
        Ok(Some((mine, theirs)))
    }

    /// [`Stage::judge`] with the read-back `read` made already — one read-back for
    /// several calls, each with a marker of its own, judges them all.
    pub fn judge_read_back(
        &mut self,
        ctx: &mut Ctx<'_>,
        case: &str,
        answer: Option<&Answer>,
        witness: &Witness,
        expect: Expect,
        read: &Option<(Listings, Option<Listings>)>,
    ) {
        let (a, b) = (self.caller.tenant.id.clone(), self.other.tenant.id.clone());
        let (mut in_caller, mut in_other) = (false, false);
        if let (true, Some((mine, theirs))) = (witness.writes, read) {
            in_caller = !witness.seen_in(&a, mine).is_empty();
            in_other = theirs
                .as_ref()
                .is_some_and(|t| !witness.seen_in(&b, t).is_empty());
        }
        let trace = match &witness.marker {
            Some(m) => format!("the marker {m}"),
            None => "a change".to_owned(),
        };
        let answered = answer.map_or("no answer".into(), Answer::describe);
        let was_refused = answer.is_none_or(refused);
        let own = witness.sent();
        let carries = answer
            .filter(|a| refused(a))
            .and_then(|a| ctx.refusal_carries(a, &own, &[]));
        if let Some(a) = answer {
            ctx.screen(
                &self.caller.tenant.id,
                &format!("the answer to {case}"),
                &super::readback::answer_text(a),
            );
        }
        let expected = match expect {
            Expect::RefusedOrScoped => {
                format!("refused, or acting on {a} only (the caller's tenant) — never on {b}")
            }
            Expect::Refused if witness.writes => {
                "refused, with no effect in either tenant (read back)".to_owned()
            }
            Expect::Refused => "refused".to_owned(),
        };
        let (ok, actual) = if let Some(carried) = carries {
            (
                false,
                format!("{answered}, but {carried} — a refusal that discloses data"),
            )
        } else if in_other {
            (
                false,
                format!(
                    "{answered}, and {b}'s lists now show {trace}: the call acted on another tenant"
                ),
            )
        } else if was_refused && in_caller {
            (
                false,
                format!(
                    "{answered}, yet {a}'s lists show {trace}: refused on the wire but carried out anyway"
                ),
            )
        } else if was_refused {
            let read = if witness.writes {
                format!("; read back: no trace in {}", self.observed())
            } else {
                String::new()
            };
            (true, format!("{answered}{read}"))
        } else if expect == Expect::Refused {
            let wrote = if in_caller {
                format!(", and {a}'s lists show {trace}")
            } else {
                String::new()
            };
            (
                false,
                format!(
                    "accepted: {answered}{wrote} — the server carried out a call it had to refuse"
                ),
            )
        } else if in_caller {
            (
                true,
                format!("{answered}; the write landed in {a} (the caller's tenant) only"),
            )
        } else {
            (
                false,
                format!(
                    "{answered}, but {a}'s lists do not show {trace}: the accepted write went somewhere other than the caller's tenant (presumably the tenant the argument named)"
                ),
            )
        };
        ctx.must(case, ok, expected, actual);
    }

    /// Writes a marker as the other tenant (once per stage, with the caller's write
    /// tool if the other tenant may call it), so that a read that reaches the other
    /// tenant shows it. The record id the write returned, if any — or why the other
    /// tenant has no data of its own to find.
    pub async fn seed_other(
        &mut self,
        ctx: &mut Ctx<'_>,
    ) -> Result<Result<Option<Value>, String>, Abort> {
        if let Some(known) = &self.other_record {
            return Ok(known.clone());
        }
        let other = self.other.tenant.clone();
        let write = self.write.clone();
        let seeded = if other.entitled(&write) && other.principal_for(&write).is_some() {
            let m = ctx.marker_for(&other.id);
            let args = Value::Object(tool_arguments(ctx, &write, &other.id, &m));
            let token = call_token(ctx, &other, &write, &write).await?;
            let answer = self
                .other
                .conn
                .call_tool(&write, args, token.as_deref())
                .await?;
            if !answer.succeeded() {
                Err(format!(
                    "{}'s own valid {write} call was refused ({}), so it has no data of its own to find",
                    other.id,
                    answer.describe()
                ))
            } else if !shows(&lists(ctx, &mut self.other).await?, &m) {
                Err(format!(
                    "{}'s own {write} does not show in its lists, so a read of it could not be recognised",
                    other.id
                ))
            } else {
                Ok(super::t2::record_id(&answer))
            }
        } else {
            Err(format!(
                "{} may not call {write}, so it has no data of its own to find",
                other.id
            ))
        };
        self.other_record = Some(seeded.clone());
        Ok(seeded)
    }

    /// The record a read as the caller goes for: the other tenant's own (written now if
    /// not yet). `None`, with `case` recorded as skipped and why, when no read could
    /// show the other tenant's data.
    pub async fn read_target(
        &mut self,
        ctx: &mut Ctx<'_>,
        case: &str,
    ) -> Result<Option<Value>, Abort> {
        let (a, b) = (self.caller.tenant.id.clone(), self.other.tenant.id.clone());
        let why = if !self.other_observable {
            format!(
                "{b}'s writes cannot be observed from {a}'s session on this target (sessions share no state), so a read of {b} could not be told apart"
            )
        } else {
            match self.seed_other(ctx).await? {
                Ok(id) => return Ok(Some(id.unwrap_or(Value::String(String::new())))),
                Err(why) => why,
            }
        };
        ctx.observe(
            case,
            Outcome::Skip,
            format!("answers with {a}'s data only"),
            format!("skipped: {why}"),
        );
        Ok(None)
    }

    /// Calls `tool` as the caller with `fields` merged into its arguments and records
    /// case `case`: a write judged by its effects (`expect`), any other tool by what it
    /// returns — nothing of the other tenant's (whose own write is made first, and whose
    /// record id fills `{id}`).
    pub async fn try_fields(
        &mut self,
        ctx: &mut Ctx<'_>,
        tool: &str,
        case: &str,
        fields: &Map<String, Value>,
        expect: Expect,
    ) -> CheckResult {
        let writes = ctx.target.profile.writes(tool);
        let a = self.caller.tenant.id.clone();
        if writes {
            if !self.proves(ctx, tool).await? {
                self.unproven(ctx, case, tool);
                return Ok(());
            }
            let marker = ctx.takes_marker(tool).then(|| ctx.marker_for(&a));
            let m = marker.clone().unwrap_or_default();
            let witness = self.witness(ctx, tool, marker.as_deref()).await?;
            let args = variants::merged(&self.arguments(ctx, tool, &m), fields);
            let answer = self.call(ctx, tool, tool, Value::Object(args)).await?;
            return self.judge(ctx, case, Some(&answer), &witness, expect).await;
        }
        let Some(id) = self.read_target(ctx, case).await? else {
            return Ok(());
        };
        let base = match ctx.arguments_for(tool, "", &id, &a) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let args = variants::merged(&base, fields);
        let token =
            call_token_on(ctx, &self.caller.tenant, tool, tool, &super::id_text(&id)).await?;
        let answer = self
            .caller
            .conn
            .call_tool(tool, Value::Object(args), token.as_deref())
            .await?;
        self.judge_read(ctx, case, &answer);
        Ok(())
    }

    /// Does a valid call of write tool `tool` by the caller show in the caller's lists?
    /// Proved once per tool (the stage's own write was proved by its control); a write
    /// that shows nowhere cannot be judged as "acting on the caller".
    pub async fn proves(&mut self, ctx: &mut Ctx<'_>, tool: &str) -> Result<bool, Abort> {
        if self.caller_writes && tool == self.write {
            return Ok(true);
        }
        if let Some(known) = self.proven.get(tool) {
            return Ok(*known);
        }
        let a = self.caller.tenant.id.clone();
        let marker = ctx.takes_marker(tool).then(|| ctx.marker_for(&a));
        let m = marker.clone().unwrap_or_default();
        let witness = self.witness(ctx, tool, marker.as_deref()).await?;
        let args = Value::Object(self.arguments(ctx, tool, &m));
        let answer = self.call(ctx, tool, tool, args).await?;
        let read = self.read_back(ctx, true).await?;
        let shown = answer.succeeded()
            && read
                .as_ref()
                .is_some_and(|(mine, _)| !witness.seen_in(&a, mine).is_empty());
        self.proven.insert(tool.to_owned(), shown);
        Ok(shown)
    }

    /// Records `case` as skipped: `tool`'s valid call shows in none of the caller's
    /// lists.
    fn unproven(&self, ctx: &mut Ctx<'_>, case: &str, tool: &str) {
        let a = &self.caller.tenant.id;
        ctx.observe(
            case,
            Outcome::Skip,
            format!("refused, or acting on {a} only"),
            format!("skipped: a valid {tool} call by {a} shows in none of {a}'s list tools ({}), so what it did cannot be told apart", self.caller.lists.join(", ")),
        );
    }

    /// [`Stage::try_fields`], where `tool` writes with a marker, deferred: the call is
    /// made now and its judgement waits in `pending` for one read-back that judges
    /// every pending call by its own marker ([`Stage::settle`]).
    pub async fn try_fields_deferred(
        &mut self,
        ctx: &mut Ctx<'_>,
        tool: &str,
        case: &str,
        fields: &Map<String, Value>,
        expect: Expect,
        pending: &mut Vec<Deferred>,
    ) -> CheckResult {
        let writes = ctx.target.profile.writes(tool);
        if !(writes && ctx.takes_marker(tool)) {
            return self.try_fields(ctx, tool, case, fields, expect).await;
        }
        if !self.proves(ctx, tool).await? {
            self.unproven(ctx, case, tool);
            return Ok(());
        }
        let m = ctx.marker_for(&self.caller.tenant.id.clone());
        let witness = self.witness(ctx, tool, Some(&m)).await?;
        let args = variants::merged(&self.arguments(ctx, tool, &m), fields);
        let answer = self.call(ctx, tool, tool, Value::Object(args)).await?;
        pending.push(Deferred {
            case: case.to_owned(),
            answer,
            witness,
            expect,
        });
        Ok(())
    }

    /// Reads both tenants back once and judges every call of `pending`.
    pub async fn settle(&mut self, ctx: &mut Ctx<'_>, pending: Vec<Deferred>) -> CheckResult {
        if pending.is_empty() {
            return Ok(());
        }
        let read = self.read_back(ctx, true).await?;
        for d in pending {
            self.judge_read_back(ctx, &d.case, Some(&d.answer), &d.witness, d.expect, &read);
        }
        Ok(())
    }

    /// Records case `case` of a read made as the caller: refused or answered, it must
    /// carry nothing written for the other tenant.
    pub fn judge_read(&self, ctx: &mut Ctx<'_>, case: &str, answer: &Answer) {
        let (a, b) = (&self.caller.tenant.id, &self.other.tenant.id);
        let leaked = ctx.screen(
            a,
            &format!("the answer to {case}"),
            &super::readback::answer_text(answer),
        );
        ctx.must(
            case,
            !leaked,
            format!("refused, or answered with {a}'s data only"),
            if leaked {
                format!(
                    "{} — it carries another tenant's data (see the leak above)",
                    answer.describe()
                )
            } else {
                format!("{}; nothing of {b}'s in it", answer.describe())
            },
        );
    }

    /// The caller's tools (every role, capped by `[coverage]`) for which the profile
    /// names a tenant argument, with it.
    pub fn tenant_argument_tools(&self, ctx: &mut Ctx<'_>) -> Vec<(String, String)> {
        let caller = self.caller.tenant.clone();
        let mut out = Vec::new();
        for role in [Role::Write, Role::List, Role::Read, Role::Other] {
            for tool in ctx.covered_tools(&caller, role) {
                if let Some(key) = ctx
                    .target
                    .profile
                    .tool(&tool)
                    .and_then(|s| s.tenant_argument.clone())
                {
                    out.push((tool, key));
                }
            }
        }
        out
    }

    fn observed(&self) -> String {
        if self.other_observable {
            format!("{} or {}", self.caller.tenant.id, self.other.tenant.id)
        } else {
            self.caller.tenant.id.clone()
        }
    }

    pub async fn close(self) {
        self.caller.conn.close().await;
        self.other.conn.close().await;
    }
}

/// The profile's arguments for `tool` as `tenant`, with `marker`, as an object.
pub(super) fn tool_arguments(
    ctx: &Ctx<'_>,
    tool: &str,
    tenant: &str,
    marker: &str,
) -> Map<String, Value> {
    match ctx.arguments(tool, marker, "", tenant) {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A call token for `tenant` naming the tool `name` as sent, with the action and
/// resource of `canonical` (the tool `name` spells, or `name` itself) and a principal
/// of the tenant that may call `canonical` — else its first principal, for a tool the
/// tenant is not entitled to. `None` when the server takes no call tokens.
pub async fn call_token(
    ctx: &Ctx<'_>,
    tenant: &Tenant,
    name: &str,
    canonical: &str,
) -> Result<Option<String>, Abort> {
    call_token_on(ctx, tenant, name, canonical, "").await
}

/// [`call_token`] for a call on record `id` (the resource the profile's template
/// names for it).
pub async fn call_token_on(
    ctx: &Ctx<'_>,
    tenant: &Tenant,
    name: &str,
    canonical: &str,
    id: &str,
) -> Result<Option<String>, Abort> {
    let principal = tenant
        .principal_for(canonical)
        .or_else(|| tenant.principals().into_iter().next())
        .map(|p| p.id)
        .unwrap_or_default();
    let mut grant = ctx.grant(&tenant.id, &principal, canonical, id);
    grant.tool = name.to_owned();
    ctx.mint(&grant).await
}

/// Reads `side`'s state through each of its list tools, in its own session (the only
/// one that sees its writes when connections share no state). A listing that fails is
/// recorded as a failure and stops the check: nothing can be judged without it.
pub(super) async fn lists(ctx: &mut Ctx<'_>, side: &mut Side) -> Result<Listings, Abort> {
    let mut out = Listings::new();
    for list in side.lists.clone() {
        let mut retry = ctx.read_back_retry();
        let answer = loop {
            let args = ctx.arguments(&list, "", "", &side.tenant.id);
            let token = call_token(ctx, &side.tenant, &list, &list).await?;
            let answer = side.conn.call_tool(&list, args, token.as_deref()).await?;
            if !retry
                .again(&ctx.transcript, &side.tenant.id, &list, &answer)
                .await
            {
                break answer;
            }
        };
        ctx.screen(
            &side.tenant.id,
            &format!("{}'s {list}", side.tenant.id),
            &super::readback::answer_text(&answer),
        );
        if !answer.succeeded() {
            let case = format!("read back {} through {list}", side.tenant.id);
            ctx.must(
                &case,
                false,
                "a successful listing (the read-back channel)",
                answer.describe(),
            );
            return Err(Abort::ControlFailed);
        }
        out.insert(list, answer.result().cloned().unwrap_or(Value::Null));
    }
    Ok(out)
}

/// A case label: the variant's label and the smuggled fields, invisible characters
/// spelt out.
fn case_label(label: &str, fields: &Map<String, Value>) -> String {
    let shown = Value::Object(fields.clone()).to_string();
    format!("{label}: {}", shorten(&visible(&shown), 90))
}

/// T3.1: a tenant argument naming another tenant never acts on it — on every tool
/// of the caller whose tenant argument the profile names: a write by its effects, a
/// read by what it returns.
pub async fn tenant_argument_untrusted(ctx: &mut Ctx<'_>) -> CheckResult {
    // Without a tenant argument anywhere (the better design) the principal part runs
    // all the same.
    let mut stage = match open_for_tenant_arguments(ctx).await {
        Ok(stage) => stage,
        Err(Abort::Skip(why)) => {
            ctx.observe(
                "a tenant argument naming the other tenant",
                Outcome::Skip,
                "refused, or acting on the caller's tenant only",
                format!("skipped: {why}"),
            );
            return principal_arguments(ctx).await;
        }
        Err(e) => return Err(e),
    };
    let (a, b) = (
        stage.caller.tenant.id.clone(),
        stage.other.tenant.id.clone(),
    );
    let tools = stage.tenant_argument_tools(ctx);
    for (tool, key) in tools {
        for (label, named) in [
            (format!("{tool}: {key} names the other tenant ({b})"), &b),
            (
                format!("{tool}: {key} names the caller's own tenant ({a})"),
                &a,
            ),
        ] {
            let mut fields = Map::new();
            fields.insert(key.clone(), json!(named));
            stage
                .try_fields(ctx, &tool, &label, &fields, Expect::RefusedOrScoped)
                .await?;
        }
    }
    stage.close().await;
    principal_arguments(ctx).await
}

/// The stage of T3.1 and T3.2: the first acting tenant with a tool whose tenant
/// argument the profile names is the caller — or a skip saying that no tool has one.
async fn open_for_tenant_arguments(ctx: &mut Ctx<'_>) -> Result<Stage, Abort> {
    let profile = &ctx.target.profile;
    let caller = profile.acting_tenants().items.into_iter().find(|t| {
        t.tools.iter().any(|tool| {
            t.principal_for(tool).is_some()
                && profile
                    .tool(tool)
                    .is_some_and(|s| s.tenant_argument.is_some())
        })
    });
    let Some(caller) = caller else {
        return Err(Abort::Skip(
            "no tool of any tenant has a tenant argument in the profile ([tools.X] tenant_argument)"
                .into(),
        ));
    };
    let kept = [Role::Write, Role::List, Role::Read, Role::Other]
        .into_iter()
        .flat_map(|role| profile.covered_tools(&caller, role).items)
        .any(|tool| {
            profile
                .tool(&tool)
                .is_some_and(|s| s.tenant_argument.is_some())
        });
    if !kept {
        return Err(Abort::Skip(format!(
            "no tool of {} that the coverage keeps has a tenant argument ([coverage], [tools.X] tenant_argument)",
            caller.id
        )));
    }
    Stage::open(ctx, false, Some(&caller.id)).await
}

/// Argument names under which servers take the acting user (seed mistake 3 names
/// `user_id` beside `tenant_id`).
const PRINCIPAL_ARGUMENTS: &[&str] = &["user_id", "principal", "on_behalf_of", "acting_as"];

/// T3.1 for principals: for every tenant with a tool one principal may call and
/// another may not, the narrow principal calls it — with its own valid call token —
/// naming the wide principal in every principal argument. Who acts never changes: the
/// call is refused, and nothing is written anywhere.
async fn principal_arguments(ctx: &mut Ctx<'_>) -> CheckResult {
    for (tenant, tool, wide, narrow) in super::t2::narrow_and_wide(ctx) {
        let principal = tenant
            .principals()
            .into_iter()
            .find(|p| p.id == narrow)
            .expect("narrow_and_wide names principals of the tenant");
        let mut keys: Vec<String> = ctx
            .target
            .profile
            .tool(&tool)
            .and_then(|s| s.principal_argument.clone())
            .into_iter()
            .collect();
        for k in PRINCIPAL_ARGUMENTS {
            if !keys.iter().any(|x| x == k) {
                keys.push((*k).to_owned());
            }
        }
        let mut conn = ctx.session_as(&tenant, &principal).await?;
        for key in keys.clone() {
            let writes = ctx.target.profile.writes(&tool);
            let marker = (writes && ctx.takes_marker(&tool)).then(|| ctx.marker_for(&tenant.id));
            let m = marker.clone().unwrap_or_default();
            let witness = ctx
                .witness(&tool, marker.as_deref(), &mut conn, &tenant)
                .await?;
            let mut args = match ctx.arguments(&tool, &m, "", &tenant.id) {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            args.insert(key.clone(), json!(wide));
            let token = ctx.mint(&ctx.grant(&tenant.id, &narrow, &tool, "")).await?;
            let answer = conn
                .call_tool(&tool, Value::Object(args), token.as_deref())
                .await?;
            ctx.expect_refused(
                &format!("{narrow} of {} calls {tool} with {key} = {wide:?} ({wide} may call it, {narrow} may not)", tenant.id),
                &answer,
                &witness,
                &mut conn,
                &format!("refused: the call acts for {narrow}, whatever {key} names"),
                &format!("the call succeeded: {key} made {narrow}'s call act as {wide}"),
            )
            .await?;
        }
        recorded_author(ctx, &mut conn, &tenant, &narrow, &wide, &keys).await?;
        conn.close().await;
    }
    Ok(())
}

/// Where the target records who wrote (a write by `narrow` shows `narrow` in its
/// record), a principal argument naming `wide` must not make the record `wide`'s.
async fn recorded_author(
    ctx: &mut Ctx<'_>,
    conn: &mut Conn,
    tenant: &Tenant,
    narrow: &str,
    wide: &str,
    keys: &[String],
) -> CheckResult {
    let principals = tenant.principals();
    let may = |who: &str, tool: &str| {
        principals
            .iter()
            .any(|p| p.id == who && p.tools.iter().any(|t| t == tool))
    };
    let Some(write) = ctx
        .shared_tools(Role::Write, &[tenant])
        .into_iter()
        .find(|w| ctx.takes_marker(w) && may(narrow, w) && may(wide, w))
    else {
        return Ok(());
    };
    let write_as = |ctx: &mut Ctx<'_>, extra: Option<&str>| {
        let m = ctx.marker_for(&tenant.id);
        let mut args = match ctx.arguments(&write, &m, "", &tenant.id) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        if let Some(key) = extra {
            args.insert(key.to_owned(), json!(wide));
        }
        (m, Value::Object(args))
    };
    let (m, args) = write_as(ctx, None);
    let token = ctx.mint(&ctx.grant(&tenant.id, narrow, &write, "")).await?;
    conn.call_tool(&write, args, token.as_deref()).await?;
    let lists = ctx.read_lists(tenant, Some(&mut *conn)).await?;
    let records = super::readback::record_with(&lists, &m)
        .is_some_and(|r| super::readback::record_names(&r, narrow));
    if !records {
        ctx.observe(
            &format!("{write}'s recorded author"),
            Outcome::Skip,
            format!("a principal argument does not change who {write} records"),
            format!("skipped: a write by {narrow} does not show {narrow:?} in its record, so the target records no author the harness can see"),
        );
        return Ok(());
    }
    for key in keys {
        let (m, args) = write_as(ctx, Some(key));
        let token = ctx.mint(&ctx.grant(&tenant.id, narrow, &write, "")).await?;
        let answer = conn.call_tool(&write, args, token.as_deref()).await?;
        let lists = ctx.read_lists(tenant, Some(&mut *conn)).await?;
        let record = super::readback::record_with(&lists, &m);
        let as_wide = record.as_ref().is_some_and(|r| {
            super::readback::record_names(r, wide) && !super::readback::record_names(r, narrow)
        });
        ctx.must(
            &format!(
                "{narrow} of {} writes {write} with {key} = {wide:?}: the recorded author",
                tenant.id
            ),
            !as_wide,
            format!("refused, or recorded as {narrow}'s"),
            match (&record, as_wide) {
                (_, true) => format!(
                    "{}; the record names {wide}, not {narrow}: {key} changed who acts",
                    answer.describe()
                ),
                (Some(_), false) => format!("{}; recorded as {narrow}'s", answer.describe()),
                (None, false) => format!("{}; nothing written", answer.describe()),
            },
        );
    }
    Ok(())
}

/// The write tool's tenant argument (the profile names it).
fn tenant_key(ctx: &Ctx<'_>, write: &str) -> String {
    ctx.target
        .profile
        .tool(write)
        .and_then(|s| s.tenant_argument.clone())
        .unwrap_or_else(|| "tenant_id".into())
}

/// T3.2: every spelling of a smuggled tenant id, on every tool of the caller whose
/// tenant argument the profile names (a write by its effects, a read by what it
/// returns), and duplicate keys.
pub async fn smuggled_id_spellings(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut stage = open_for_tenant_arguments(ctx).await?;
    let (a, b) = (
        stage.caller.tenant.id.clone(),
        stage.other.tenant.id.clone(),
    );
    let tools = stage.tenant_argument_tools(ctx);
    // Duplicate keys go in a write that takes a marker, judged by its effects.
    let spliced = tools
        .iter()
        .find(|(t, _)| ctx.takes_marker(t) && ctx.target.profile.writes(t))
        .cloned();
    for (tool, key) in &tools {
        let mut pending = Vec::new();
        for spelling in variants::smuggled_spellings(&b, &a, key) {
            let case = format!("{tool}: {}", case_label(&spelling.label, &spelling.value));
            stage
                .try_fields_deferred(
                    ctx,
                    tool,
                    &case,
                    &spelling.value,
                    Expect::RefusedOrScoped,
                    &mut pending,
                )
                .await?;
        }
        stage.settle(ctx, pending).await?;
    }
    let Some((write, key)) = spliced else {
        ctx.observe(
            "duplicate keys",
            Outcome::Skip,
            "refused, or acting on the caller only",
            format!("skipped: no write tool of {a} that takes {{marker}} has a tenant argument in the profile"),
        );
        stage.close().await;
        return Ok(());
    };
    for dup in variants::duplicate_keys(&b, &a, &key) {
        let m = ctx.marker_for(&stage.caller.tenant.id);
        let args = Value::Object(stage.arguments(ctx, &write, &m));
        let token = call_token(ctx, &stage.caller.tenant, &write, &write).await?;
        let id = stage.caller.conn.next_id();
        let (frame, headers) = stage.frame(id, &write, args, token.as_deref());
        let Some(text) = variants::splice_duplicate_key(&frame, &dup) else {
            continue;
        };
        let witness = stage.witness(ctx, &write, Some(&m)).await?;
        let wait = ctx.target.request_timeout();
        let answer = stage.send_raw(&text, &headers, wait).await?;
        stage
            .judge(
                ctx,
                &dup.label,
                Some(&answer),
                &witness,
                Expect::RefusedOrScoped,
            )
            .await?;
    }
    stage.close().await;
    Ok(())
}

/// T3.3: arguments that do not match a tool's listed `inputSchema` are refused with no
/// partial effect — for every tool of the caller (capped by `[coverage]`): a write
/// judged by its effects, any other tool by its answer.
pub async fn schema_enforced(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut stage = Stage::open(ctx, false, None).await?;
    let a = stage.caller.tenant.id.clone();
    let listing = stage.caller.conn.list_all_tools().await?;
    let caller = stage.caller.tenant.clone();
    let mut tools = Vec::new();
    for role in [Role::Write, Role::List, Role::Read, Role::Other] {
        tools.extend(ctx.covered_tools(&caller, role));
    }
    let mut judged = 0;
    for tool in tools {
        let Some(schema) = listing
            .tools
            .iter()
            .find(|t| t.get("name").and_then(Value::as_str) == Some(tool.as_str()))
            .and_then(|t| t.get("inputSchema"))
            .cloned()
        else {
            ctx.observe(
                &format!("{tool}: its inputSchema"),
                Outcome::Skip,
                "arguments that break the listed schema are refused",
                format!("{tool} is not in {a}'s tools/list, so its inputSchema is unknown"),
            );
            continue;
        };
        let tenant_argument = ctx
            .target
            .profile
            .tool(&tool)
            .and_then(|s| s.tenant_argument.clone());
        let writes = ctx.target.profile.writes(&tool);
        // A read of one record names one that does not exist: only the schema can
        // refuse it before the lookup does.
        let record = json!("mcpt-no-such-record");
        for violation in schema_violations(&schema, tenant_argument.as_deref()) {
            let marker = (writes && ctx.takes_marker(&tool)).then(|| ctx.marker_for(&a));
            let m = marker.clone().unwrap_or_default();
            let base = match ctx.arguments_for(&tool, &m, &record, &a) {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            let args = violation.apply(&base, &m);
            let witness = stage.witness(ctx, &tool, marker.as_deref()).await?;
            let token = call_token_on(ctx, &caller, &tool, &tool, &super::id_text(&record)).await?;
            let answer = stage
                .caller
                .conn
                .call_tool(&tool, args, token.as_deref())
                .await?;
            stage
                .judge(
                    ctx,
                    &format!("{tool}: {}", violation.label),
                    Some(&answer),
                    &witness,
                    Expect::Refused,
                )
                .await?;
            judged += 1;
        }
    }
    stage.close().await;
    if judged == 0 {
        return Err(Abort::Skip(format!(
            "no listed inputSchema of {a}'s tools admits a violation the harness can make (closed objects, typed properties, bounds)"
        )));
    }
    Ok(())
}

/// One way to break a tool's `inputSchema`.
#[derive(Debug, Clone, PartialEq)]
struct Violation {
    label: String,
    edit: Edit,
}

#[derive(Debug, Clone, PartialEq)]
enum Edit {
    /// Set a property to a value (wrong type, out of range, too long, junk).
    Set(String, Value),
    /// Remove a required property.
    Remove(String),
    /// Arguments that are not an object at all.
    Replace(Value),
}

/// The marker placeholder inside violation values, replaced per case.
const MARK: &str = "{marker}";

impl Violation {
    fn new(label: impl Into<String>, edit: Edit) -> Self {
        Self {
            label: label.into(),
            edit,
        }
    }

    /// The violating arguments, built on the valid `base`; the marker stays in every
    /// string the violation leaves, so a partial effect remains visible.
    fn apply(&self, base: &Map<String, Value>, marker: &str) -> Value {
        let mut args = base.clone();
        match &self.edit {
            Edit::Set(k, v) => {
                args.insert(k.clone(), with_marker(v, marker));
            }
            Edit::Remove(k) => {
                args.remove(k);
            }
            Edit::Replace(v) => return with_marker(v, marker),
        }
        Value::Object(args)
    }
}

/// `value` with [`MARK`] replaced by `marker` in every string.
fn with_marker(value: &Value, marker: &str) -> Value {
    match value {
        Value::String(s) => Value::String(s.replace(MARK, marker)),
        Value::Array(items) => Value::Array(items.iter().map(|v| with_marker(v, marker)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_marker(v, marker)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The JSON type names a schema property allows.
fn types_of(prop: &Value) -> Vec<&str> {
    match prop.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// A value of none of `types`, carrying the marker where it can.
fn wrong_type(types: &[&str]) -> Option<Value> {
    let candidates = [
        ("array", json!([MARK])),
        ("object", json!({"value": MARK})),
        ("integer", json!(12345)),
        ("number", json!(1.5)),
        ("boolean", json!(true)),
        ("string", json!(MARK)),
    ];
    candidates
        .into_iter()
        .find(|(t, _)| {
            // An integer is a number: never offer one where numbers are allowed.
            let allowed = types.contains(t) || (*t == "integer" && types.contains(&"number"));
            !allowed
        })
        .map(|(_, v)| v)
}

/// The violations of `schema` the harness knows how to produce: a wrong type for every
/// typed property, every required property missing, an extra property when
/// `additionalProperties` is false, strings beyond `maxLength`, numbers outside
/// `minimum`/`maximum`, values outside an `enum`, nested junk, and arguments that are
/// not an object. The tenant argument is left alone (T3.1 covers it).
fn schema_violations(schema: &Value, tenant_argument: Option<&str>) -> Vec<Violation> {
    let mut out = Vec::new();
    let empty = Map::new();
    let props = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (name, prop) in props {
        if Some(name.as_str()) == tenant_argument {
            continue;
        }
        let types = types_of(prop);
        if !types.is_empty()
            && let Some(v) = wrong_type(&types)
        {
            out.push(Violation::new(
                format!("{name}: wrong type (schema says {})", types.join(" or ")),
                Edit::Set(name.clone(), v),
            ));
        }
        if let Some(max) = prop.get("maxLength").and_then(Value::as_u64) {
            let filler = "x".repeat(max as usize + 1);
            out.push(Violation::new(
                format!("{name}: {} characters or more (maxLength {max})", max + 1),
                Edit::Set(name.clone(), json!(format!("{MARK}{filler}"))),
            ));
        }
        if let Some(max) = prop.get("maximum").and_then(Value::as_f64) {
            out.push(Violation::new(
                format!("{name}: above maximum {max}"),
                Edit::Set(name.clone(), json!(max + 1.0)),
            ));
        }
        if let Some(min) = prop.get("minimum").and_then(Value::as_f64) {
            out.push(Violation::new(
                format!("{name}: below minimum {min}"),
                Edit::Set(name.clone(), json!(min - 1.0)),
            ));
        }
        if prop.get("enum").is_some() {
            out.push(Violation::new(
                format!("{name}: a value outside its enum"),
                Edit::Set(name.clone(), json!(format!("NOT-IN-ENUM-{MARK}"))),
            ));
        }
    }
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        out.push(Violation::new(
            format!("required property {r} missing"),
            Edit::Remove(r.to_owned()),
        ));
    }
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        out.push(Violation::new(
            "an extra property (additionalProperties is false)",
            Edit::Set("mcp_tenancy_extra".into(), json!(MARK)),
        ));
        out.push(Violation::new(
            "nested junk in an extra property",
            Edit::Set(
                "mcp_tenancy_junk".into(),
                json!({"a": [{"b": {"c": [MARK, null, {"$ref": "#"}]}}], "__proto__": {"admin": true}}),
            ),
        ));
    }
    out.push(Violation::new(
        "arguments are an array, not an object",
        Edit::Replace(json!([MARK])),
    ));
    out.push(Violation::new(
        "arguments are a string, not an object",
        Edit::Replace(json!(MARK)),
    ));
    out
}

/// The listed `inputSchema` of `tool`, as `tenant` sees it (an empty schema when the
/// listing does not show the tool).
async fn listed_schema(
    ctx: &mut Ctx<'_>,
    tenant: &Tenant,
    tools: &[String],
) -> Result<Vec<Value>, Abort> {
    let mut conn = ctx.session(tenant).await?;
    let listing = conn.list_all_tools().await?;
    conn.close().await;
    Ok(tools
        .iter()
        .map(|name| {
            listing
                .tools
                .iter()
                .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|t| t.get("inputSchema"))
                .cloned()
                .unwrap_or_else(|| json!({}))
        })
        .collect())
}

/// Where a T3.4 case puts the victim's id.
enum Placement {
    /// Merged into the arguments.
    Arguments(Map<String, Value>),
    /// Merged into `params._meta`.
    Meta(Map<String, Value>),
    /// An HTTP request header.
    Header(String),
}

/// Every T3.4 placement of `victim` for a tool with `schema`, labelled.
/// `declared`: the profile names the tool's tenant argument (T3.1 and T3.2 try it);
/// otherwise the victim's id also goes in as a top-level argument the profile does not
/// declare. `taken`: the arguments the profile's template fills (the marker among
/// them), never replaced by a nested object.
fn placements(
    schema: &Value,
    key: &str,
    victim: &str,
    http: bool,
    declared: bool,
    taken: &[String],
) -> Vec<(String, Placement)> {
    let mut out: Vec<(String, Placement)> = Vec::new();
    if !declared {
        let mut top = Map::new();
        top.insert(key.to_owned(), json!(victim));
        out.push((
            format!("as a top-level {key} the profile does not declare"),
            Placement::Arguments(top),
        ));
    }
    out.extend(
        variants::nested_placements(schema, key, victim)
            .into_iter()
            .filter(|v| !v.value.keys().any(|k| taken.contains(k)))
            .map(|v| (v.label, Placement::Arguments(v.value))),
    );
    out.extend(
        variants::meta_placements(key, victim)
            .into_iter()
            .map(|v| (v.label, Placement::Meta(v.value))),
    );
    if http {
        out.extend(variants::TENANT_HEADERS.iter().map(|h| {
            (
                format!("HTTP header {h}"),
                Placement::Header((*h).to_owned()),
            )
        }));
    }
    out
}

/// Sends a call of `tool` as the caller — `marker` in its arguments, `{id}` filled
/// with `id` (its call token minted for that record) — with the victim's id placed by
/// `placement`.
async fn call_placed(
    ctx: &mut Ctx<'_>,
    stage: &mut Stage,
    tool: &str,
    marker: &str,
    id: &Value,
    victim: &str,
    placement: &Placement,
) -> Result<Answer, Abort> {
    let a = stage.caller.tenant.id.clone();
    let mut args = match ctx.arguments_for(tool, marker, id, &a) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Placement::Arguments(fields) = placement {
        args = variants::merged(&args, fields);
    }
    let token = call_token_on(ctx, &stage.caller.tenant, tool, tool, &super::id_text(id)).await?;
    let rid = stage.caller.conn.next_id();
    let (mut frame, mut headers) = stage.frame(rid, tool, Value::Object(args), token.as_deref());
    match placement {
        Placement::Arguments(_) => {}
        Placement::Meta(fields) => {
            let params = &mut frame["params"];
            if !params.get("_meta").is_some_and(Value::is_object) {
                params["_meta"] = json!({});
            }
            if let Some(meta) = params["_meta"].as_object_mut() {
                meta.extend(fields.clone());
            }
        }
        Placement::Header(name) => headers.push((name.clone(), victim.to_owned())),
    }
    let wait = ctx.target.request_timeout();
    Ok(stage.send_raw(&frame.to_string(), &headers, wait).await?)
}

/// T3.4: nothing else the client supplies selects the tenant — not an object nested
/// where a tool's listed `inputSchema` leaves room (or under the usual envelope
/// names), not `params._meta` members, not HTTP headers — for every tool of the caller
/// (capped by `[coverage]`). A write is judged by its effects (acting on the caller
/// only, or refused); any other tool by what it returns: nothing of the other tenant,
/// whose own write is made first so that a read of the wrong tenant shows.
pub async fn nothing_else_selects_the_tenant(ctx: &mut Ctx<'_>) -> CheckResult {
    let mut stage = Stage::open(ctx, false, None).await?;
    let (a, b) = (
        stage.caller.tenant.id.clone(),
        stage.other.tenant.id.clone(),
    );
    let http = stage.caller.conn.http().is_some();
    let caller = stage.caller.tenant.clone();
    let mut tools = Vec::new();
    for role in [Role::Write, Role::List, Role::Read, Role::Other] {
        tools.extend(ctx.covered_tools(&caller, role));
    }
    let schemas = listed_schema(ctx, &caller, &tools).await?;
    for (tool, schema) in tools.iter().zip(&schemas) {
        let key = tenant_key(ctx, tool);
        let declared = ctx
            .target
            .profile
            .tool(tool)
            .is_some_and(|s| s.tenant_argument.is_some());
        let writes = ctx.target.profile.writes(tool);
        // Writes with a marker are judged together, by one read-back per tool.
        let mut pending = Vec::new();
        let taken: Vec<String> = match ctx.arguments(tool, "", "", &a) {
            Value::Object(map) => map.keys().cloned().collect(),
            _ => Vec::new(),
        };
        for (label, placement) in placements(schema, &key, &b, http, declared, &taken) {
            let case = format!("{tool}: {b}'s id {label}");
            if writes {
                if !stage.proves(ctx, tool).await? {
                    stage.unproven(ctx, &case, tool);
                    continue;
                }
                let marker = ctx.takes_marker(tool).then(|| ctx.marker_for(&a));
                let m = marker.clone().unwrap_or_default();
                let witness = stage.witness(ctx, tool, marker.as_deref()).await?;
                let none = Value::String(String::new());
                let answer = call_placed(ctx, &mut stage, tool, &m, &none, &b, &placement).await?;
                if marker.is_some() {
                    pending.push(Deferred {
                        case,
                        answer,
                        witness,
                        expect: Expect::RefusedOrScoped,
                    });
                } else {
                    stage
                        .judge(ctx, &case, Some(&answer), &witness, Expect::RefusedOrScoped)
                        .await?;
                }
                continue;
            }
            let Some(id) = stage.read_target(ctx, &case).await? else {
                continue;
            };
            let answer = call_placed(ctx, &mut stage, tool, "", &id, &b, &placement).await?;
            stage.judge_read(ctx, &case, &answer);
        }
        stage.settle(ctx, pending).await?;
    }
    stage.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_values_carry_the_marker() {
        assert_eq!(
            with_marker(&json!({"a": [MARK, 1], "b": "x{marker}y"}), "m1"),
            json!({"a": ["m1", 1], "b": "xm1y"})
        );
    }

    #[test]
    fn violations_cover_the_notes_schema() {
        let schema = json!({
            "type": "object",
            "properties": {
                "tenant_id": {"type": "string", "maxLength": 128},
                "title": {"type": "string", "minLength": 1, "maxLength": 200},
                "body": {"type": "string", "maxLength": 10000}
            },
            "required": ["title"],
            "additionalProperties": false
        });
        let v = schema_violations(&schema, Some("tenant_id"));
        let labels: Vec<&str> = v.iter().map(|v| v.label.as_str()).collect();
        assert!(labels.contains(&"title: wrong type (schema says string)"));
        assert!(labels.contains(&"required property title missing"));
        assert!(labels.contains(&"an extra property (additionalProperties is false)"));
        assert!(!labels.iter().any(|l| l.starts_with("tenant_id")));
        let base = json!({"title": "m"}).as_object().cloned().unwrap();
        let long = v.iter().find(|v| v.label.starts_with("title: 2")).unwrap();
        let args = long.apply(&base, "mk");
        let title = args["title"].as_str().unwrap();
        assert!(title.starts_with("mk") && title.len() == 2 + 201);
        let missing = v.iter().find(|v| v.label.contains("missing")).unwrap();
        assert_eq!(missing.apply(&base, "mk"), json!({}));
        let wrong = v
            .iter()
            .find(|v| v.label.starts_with("title: wrong"))
            .unwrap();
        assert_eq!(wrong.apply(&base, "mk"), json!({"title": ["mk"]}));
    }

    #[test]
    fn wrong_types_avoid_every_allowed_type() {
        assert_eq!(wrong_type(&["array"]), Some(json!({"value": MARK})));
        assert_eq!(wrong_type(&["string"]), Some(json!([MARK])));
        assert_eq!(
            wrong_type(&["number", "array", "object"]),
            Some(json!(true))
        );
    }
}
