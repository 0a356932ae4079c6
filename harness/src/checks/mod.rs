//! The checks, one module per property, and the context they run in.
//!
//! A check records [`Observation`]s — one per case, each with what the catalogue
//! expects and what the target did. It passes only if it observed something and every
//! observation holds. A client error (timeout, exit) ends the check as a failure that
//! carries the target's stderr tail.
//!
//! The tenancy checks (T1–T6) share the helpers of [`Ctx`]: sessions opened as a
//! tenant, call tokens minted for a tenant's principal, argument templates filled with
//! unique markers, and the read-back that judges effects — after a call that must be
//! refused, every tenant's list tools are read with valid tokens, and the marker (or,
//! for a write without one, any change at all) must not be there.

pub mod flood;
pub mod readback;
pub mod t0;
pub mod t1;
pub mod t2;
pub mod t3;
pub mod t5;
pub mod t6;
pub mod volatile;

pub use readback::{Effect, Listings, ReadBackRetry, Seen, Witness, describe_effects};

use crate::catalogue::CheckDef;
use crate::client::token::TokenMinter;
use crate::client::{Answer, ClientError, Conn, Target, Transcript};
use crate::model::{Grant, Observation, Obstacle, Outcome};
use crate::profile::{Principal, Role, Tenant};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Why a check stopped early.
#[derive(Debug)]
pub enum Abort {
    /// The check cannot run against this target; the reason is reported.
    Skip(String),
    /// The check does not apply: what it tests is absent from the target, a finding
    /// that another check reports (named in the reason).
    NotApplicable(String),
    /// The target crashed, hung, or could not be reached.
    Client(ClientError),
    /// A control step (a valid call the profile says works) failed against the target;
    /// the failure is already recorded as an observation, so the check fails.
    ControlFailed,
}

impl From<ClientError> for Abort {
    fn from(e: ClientError) -> Self {
        Abort::Client(e)
    }
}

pub type CheckResult = Result<(), Abort>;

/// A small seeded xorshift generator: markers and interleavings differ per run, and
/// the seed (noted in the transcript) reproduces them.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Does a successful-looking answer read as a refusal — a server that says "denied" in
/// an ordinary result (`isError: false`)? Its text names a refusal and it returns no
/// record.
pub fn reads_as_refusal(answer: &Answer) -> bool {
    const WORDS: &[&str] = &[
        "denied",
        "unauthori",
        "forbidden",
        "not allowed",
        "not permitted",
        "refused",
        "rejected",
        "invalid",
        "unknown tool",
        "not found",
        "error",
    ];
    let Some(result) = answer.result() else {
        return false;
    };
    if result
        .get("structuredContent")
        .is_some_and(|s| !s.is_null())
    {
        return false;
    }
    let text = crate::client::result_text(result).to_lowercase();
    WORDS.iter().any(|w| text.contains(w))
}

/// How much a case weighs: a MUST fails when it does not hold, a SHOULD warns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Must,
    Should,
}

impl Level {
    /// The outcome of a case of this level that did not hold.
    pub fn missed(self) -> Outcome {
        match self {
            Level::Must => Outcome::Fail,
            Level::Should => Outcome::Warn,
        }
    }
}

/// What a running check can use and record.
pub struct Ctx<'a> {
    pub target: &'a Target,
    pub def: &'static CheckDef,
    pub transcript: Transcript,
    pub observations: Vec<Observation>,
    pub rng: Rng,
    connections: usize,
    /// Every marker handed out, for disclosure checks.
    markers: Vec<String>,
    /// Sessions kept open for read-backs, by tenant id.
    readers: BTreeMap<String, Conn>,
    /// Leaks already recorded by this check: (marker, reader).
    leaks_seen: BTreeSet<(String, String)>,
}

impl<'a> Ctx<'a> {
    pub fn new(target: &'a Target, def: &'static CheckDef) -> Self {
        // The run's seed, varied per check: `--seed` replays every check's choices.
        let seed = target.seed
            ^ def
                .id
                .bytes()
                .fold(0u64, |h, b| h.rotate_left(8) ^ b as u64);
        let transcript = Transcript::new();
        transcript.note(
            "harness",
            format!(
                "random seed of the run {} (replay with --seed {})",
                target.seed, target.seed
            ),
        );
        Self {
            target,
            def,
            transcript,
            observations: Vec::new(),
            rng: Rng::new(seed),
            connections: 0,
            markers: Vec::new(),
            readers: BTreeMap::new(),
            leaks_seen: BTreeSet::new(),
        }
    }

    /// The profile's tenants.
    pub fn tenants(&self) -> Vec<Tenant> {
        self.target.profile.tenants.clone()
    }

    /// The tenants a covering check acts as ([`Profile::acting_tenants`]); those a
    /// `[coverage]` cap left out are named in the report.
    ///
    /// [`Profile::acting_tenants`]: crate::profile::Profile::acting_tenants
    pub fn acting_tenants(&mut self) -> Vec<Tenant> {
        let covered = self.target.profile.acting_tenants();
        self.left_out("tenants", &covered.left_out);
        covered.items
    }

    /// The tools of `role` that `tenant` may call, capped by the profile's
    /// `[coverage]`; what the cap left out is named in the report.
    pub fn covered_tools(&mut self, tenant: &Tenant, role: Role) -> Vec<String> {
        let covered = self.target.profile.covered_tools(tenant, role);
        self.left_out(
            &format!("{} tools of {}", role.name(), tenant.id),
            &covered.left_out,
        );
        covered.items
    }

    /// The tools `tenant` lacks that other tenants have, capped by the profile's
    /// `[coverage]`; what the cap left out is named in the report.
    pub fn covered_foreign(&mut self, tenant: &Tenant) -> Vec<String> {
        let covered = self.target.profile.covered_foreign_tools(tenant);
        self.left_out(
            &format!("foreign tools for {}", tenant.id),
            &covered.left_out,
        );
        covered.items
    }

    /// Records what a `[coverage]` cap left out (nothing: no record).
    fn left_out(&mut self, what: &str, names: &[String]) {
        if names.is_empty() {
            return;
        }
        self.observe(
            &format!("coverage: {what} left out"),
            Outcome::Skip,
            format!("every one of the {what} is covered"),
            format!(
                "left out by the profile's [coverage] cap: {}",
                names.join(", ")
            ),
        );
    }

    /// The first two tenants, or a skip when the profile names fewer.
    pub fn two_tenants(&self) -> Result<(Tenant, Tenant), Abort> {
        match self.target.profile.tenants.as_slice() {
            [a, b, ..] => Ok((a.clone(), b.clone())),
            _ => Err(Abort::Skip(
                "the profile names fewer than two tenants ([[tenants]])".into(),
            )),
        }
    }

    /// Does the profile's server take call tokens (`tokens.placement` not "none")?
    pub fn tokens_placed(&self) -> bool {
        TokenMinter::placed(&self.target.profile)
    }

    /// A marker no other call of this run carries (`mcpt-T2-1-…`), to be sent in a
    /// session of `tenant`: the run's registry records it as `tenant`'s, and any
    /// read-back of another tenant that shows it fails the check that sees it.
    pub fn marker_for(&mut self, tenant: &str) -> String {
        // Twelve hex digits from the run's seed (a replay repeats them), four of the
        // run's salt: a replay against a server that kept the first run's records
        // writes markers of its own.
        let marker = format!(
            "{}{}-{:012x}{:04x}",
            readback::MARKER_PREFIX,
            self.def.id.replace('.', "-"),
            self.rng.next_u64() & 0xffff_ffff_ffff,
            self.target.salt
        );
        self.target
            .markers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .record(&marker, tenant, self.def.id);
        self.markers.push(marker.clone());
        marker
    }

    /// Does `answer` carry any marker this check wrote — data a refusal must not
    /// disclose?
    pub fn discloses(&self, answer: &Answer) -> bool {
        let text = readback::answer_text(answer);
        self.markers.iter().any(|m| text.contains(m.as_str()))
    }

    /// Searches what `reader` was shown (`text`, through `via`) for markers the run
    /// wrote for other tenants; each one found fails this check (once per marker and
    /// reader), with where it was written and where it showed. Returns whether any
    /// leak was found.
    pub fn screen(&mut self, reader: &str, via: &str, text: &str) -> bool {
        let leaks = self
            .target
            .markers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .foreign_in(text, reader);
        for leak in &leaks {
            if !self
                .leaks_seen
                .insert((leak.marker.clone(), reader.to_owned()))
            {
                continue;
            }
            let at = text.find(&leak.marker).unwrap_or(0);
            let from = text[..at]
                .char_indices()
                .rev()
                .nth(60)
                .map_or(0, |(i, _)| i);
            let excerpt = crate::client::shorten(&text[from..], 160);
            self.observe(
                &format!(
                    "leak: {}'s data in what {reader} was shown ({via})",
                    leak.written.tenant
                ),
                Outcome::Fail,
                format!(
                    "{reader} is shown nothing written for another tenant (every read-back of the run is searched for every marker)"
                ),
                format!(
                    "{:?}, written for {} (in {}), appears in {via} as {reader} saw it: …{excerpt}",
                    leak.marker, leak.written.tenant, leak.written.check
                ),
            );
        }
        !leaks.is_empty()
    }

    /// Does refusal `answer` carry data the caller may not see — a marker the run
    /// wrote other than `own` (the markers the request itself sent, which an error may
    /// echo): another tenant's, or what the refused call would have returned; or one of
    /// `returned`, strings of what the call returns when it is allowed (a string the
    /// request sent aside)? Names it.
    pub fn refusal_carries(
        &self,
        answer: &Answer,
        own: &[&str],
        returned: &[String],
    ) -> Option<String> {
        let text = readback::answer_text(answer);
        let registry = self
            .target
            .markers
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        // Every marker in the refusal: the scan finds those of any tenant ("" reads
        // none as its own).
        let carried = registry
            .foreign_in(&text, "")
            .into_iter()
            .find(|l| !own.contains(&l.marker.as_str()));
        drop(registry);
        if let Some(leak) = carried {
            return Some(format!(
                "the refusal carries {:?}, written for {} (in {}), which the request did not send",
                leak.marker, leak.written.tenant, leak.written.check
            ));
        }
        returned
            .iter()
            .find(|s| text.contains(s.as_str()) && !own.iter().any(|o| o.contains(s.as_str())))
            .map(|s| {
                format!(
                    "the refusal carries {:?}, from what the call returns when it is allowed",
                    crate::client::shorten(s, 60)
                )
            })
    }

    /// Opens a session as `tenant` and completes `initialize`.
    pub async fn session(&mut self, tenant: &Tenant) -> Result<Conn, Abort> {
        let conn = self.connect(&tenant.id, Some(tenant)).await?;
        Self::initialized_as(conn, &tenant.id).await
    }

    /// Opens a session as `principal` of `tenant` — with the principal's own
    /// credential, if the profile gives it one — and completes `initialize`.
    pub async fn session_as(
        &mut self,
        tenant: &Tenant,
        principal: &Principal,
    ) -> Result<Conn, Abort> {
        self.connections += 1;
        let label = format!("{}/{}#{}", tenant.id, principal.id, self.connections);
        let conn = self
            .target
            .connect_as(&label, tenant, principal, &self.transcript)
            .await?;
        Self::initialized_as(conn, &format!("{} ({})", tenant.id, principal.id)).await
    }

    async fn initialized_as(mut conn: Conn, who: &str) -> Result<Conn, Abort> {
        let answer = conn
            .initialize(crate::client::LATEST_SESSION_VERSION)
            .await?;
        if answer.result().is_none() {
            return Err(Abort::Client(ClientError::Refused(format!(
                "initialize as tenant {who} failed: {}",
                answer.describe()
            ))));
        }
        Ok(conn)
    }

    /// `tool`'s arguments from the profile's template, with `{marker}`, `{id}` and
    /// `{tenant}` filled in (`{}` without a template).
    pub fn arguments(&self, tool: &str, marker: &str, id: &str, tenant: &str) -> Value {
        self.arguments_for(tool, marker, &Value::String(id.to_owned()), tenant)
    }

    /// [`Ctx::arguments`] for the record `id` as a write returned it: a template string
    /// that is exactly `"{id}"` becomes the id's own JSON value (an integer stays an
    /// integer); inside longer strings it is spelt out.
    pub fn arguments_for(&self, tool: &str, marker: &str, id: &Value, tenant: &str) -> Value {
        let template = self
            .target
            .profile
            .tool(tool)
            .map(|t| serde_json::to_value(&t.arguments).unwrap_or_default())
            .unwrap_or_else(|| Value::Object(Default::default()));
        fill(template, marker, id, tenant)
    }

    /// Does `tool`'s argument template carry `{marker}`?
    pub fn takes_marker(&self, tool: &str) -> bool {
        let probe = self.arguments(tool, "\u{1}marker", "", "");
        crate::client::mentions(&probe, "\u{1}marker")
    }

    /// Does `tool`'s argument template carry `{id}`?
    pub fn takes_id(&self, tool: &str) -> bool {
        let probe = self.arguments(tool, "", "\u{1}id", "");
        crate::client::mentions(&probe, "\u{1}id")
    }

    /// What a call of `tool` by `principal` of `tenant` on record `id` needs granted:
    /// the profile's action (default the tool name) and resource template (default `*`).
    pub fn grant(&self, tenant: &str, principal: &str, tool: &str, id: &str) -> Grant {
        self.target.profile.grant(tenant, principal, tool, id)
    }

    /// A valid call token for `grant`; `None` when the server takes no call tokens.
    pub async fn mint(&self, grant: &Grant) -> Result<Option<String>, Abort> {
        if !self.tokens_placed() {
            return Ok(None);
        }
        let minter = self
            .target
            .minter()?
            .ok_or_else(|| Abort::Skip("the profile gives no way to mint call tokens".into()))?;
        let lifetime = self.target.profile.tokens.lifetime_secs;
        minter
            .call_token(grant, lifetime)
            .await
            .map(Some)
            .map_err(|e| {
                Abort::Client(ClientError::Harness(format!(
                    "cannot mint a call token: {e}"
                )))
            })
    }

    /// A valid call token for `tool` on record `id`, for the first principal of
    /// `tenant` that may call it (`None` when the server takes no call tokens).
    pub async fn token_for(
        &self,
        tenant: &Tenant,
        tool: &str,
        id: &str,
    ) -> Result<Option<String>, Abort> {
        let principal = tenant.principal_for(tool).ok_or_else(|| {
            Abort::Skip(format!(
                "no principal of tenant {} may call {tool} (principals in the profile)",
                tenant.id
            ))
        })?;
        self.mint(&self.grant(&tenant.id, &principal.id, tool, id))
            .await
    }

    /// The tools of `role` in the profile that every one of `tenants` is entitled to
    /// and some principal of each may call, those taking a `{marker}` first.
    pub fn shared_tools(&self, role: Role, tenants: &[&Tenant]) -> Vec<String> {
        let profile = &self.target.profile;
        let mut tools: Vec<String> = profile
            .tools
            .iter()
            .filter(|(name, spec)| {
                spec.role == role
                    && tenants
                        .iter()
                        .all(|t| t.entitled(name) && t.principal_for(name).is_some())
            })
            .map(|(name, _)| name.clone())
            .collect();
        tools.sort_by_key(|t| !self.takes_marker(t));
        tools
    }

    /// A write tool every one of `tenants` may call, plus a list tool for each to read
    /// back through — or a skip naming what the profile lacks.
    pub fn write_tool(&self, tenants: &[&Tenant]) -> Result<String, Abort> {
        let write = self.shared_tools(Role::Write, tenants).into_iter().next();
        let Some(write) = write else {
            let names: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
            return Err(Abort::Skip(format!(
                "the profile names no write tool ([tools.NAME] role = \"write\") that tenant(s) {} may call, so no refusal can be proved by its effects",
                names.join(" and ")
            )));
        };
        for t in &self.target.profile.tenants {
            if self.target.profile.readable_lists(t).is_empty() {
                return Err(Abort::Skip(format!(
                    "the profile names no list tool (role = \"list\") that tenant {} may call, so nothing can be read back",
                    t.id
                )));
            }
        }
        Ok(write)
    }

    /// Reads every list tool of `tenant` with valid tokens: through `via` (a session
    /// of `tenant` — over stdio the only one that shares the call's process), else in a
    /// session kept open for read-backs. A list call that does not succeed is an `Err`
    /// naming it.
    pub(crate) async fn read_lists(
        &mut self,
        tenant: &Tenant,
        mut via: Option<&mut Conn>,
    ) -> Result<Listings, Abort> {
        // A session of a principal with a key of its own reads only what that
        // principal may; the rest is read in the tenant's own session.
        let narrow = via
            .as_deref()
            .and_then(Conn::own_principal)
            .and_then(|p| tenant.principals().into_iter().find(|x| x.id == p));
        let via_reads = |tool: &str| {
            narrow
                .as_ref()
                .is_none_or(|p| p.tools.iter().any(|t| t == tool))
        };
        let lists = self.target.profile.readable_lists(tenant);
        if (via.is_none() || !lists.iter().all(|t| via_reads(t)))
            && !self.readers.contains_key(&tenant.id)
        {
            let conn = self.session(tenant).await?;
            self.readers.insert(tenant.id.clone(), conn);
        }
        let mut out = BTreeMap::new();
        for tool in lists {
            let mut retry = self.read_back_retry();
            let answer = loop {
                let token = self.token_for(tenant, &tool, "").await?;
                let args = self.arguments(&tool, "", "", &tenant.id);
                let conn = match via.as_deref_mut() {
                    Some(conn) if via_reads(&tool) => conn,
                    _ => self.readers.get_mut(&tenant.id).expect("opened above"),
                };
                let answer = conn.call_tool(&tool, args, token.as_deref()).await?;
                if !retry
                    .again(&self.transcript, &tenant.id, &tool, &answer)
                    .await
                {
                    break answer;
                }
            };
            self.screen(
                &tenant.id,
                &format!("{}'s {tool}", tenant.id),
                &readback::answer_text(&answer),
            );
            let result = answer.result().cloned().unwrap_or(Value::Null);
            if !answer.succeeded() {
                return Err(Abort::Client(ClientError::Refused(format!(
                    "the read-back through {}'s {tool} failed for {} ms: {}",
                    tenant.id,
                    retry.elapsed_ms(),
                    answer.describe()
                ))));
            }
            out.insert(tool, result);
        }
        Ok(out)
    }

    /// The retries of one read-back, within the profile's retry budget.
    pub fn read_back_retry(&self) -> ReadBackRetry {
        ReadBackRetry::within(Duration::from_millis(
            self.target.profile.limits.retry_budget_ms,
        ))
    }

    /// Prepares the read-back for a call of `tool` to be made in `conn`, a session of
    /// `tenant`, that must have no effect. A write with `marker` is judged by the
    /// marker's absence; a write without one by every tenant's lists staying unchanged
    /// (they are read now).
    pub async fn witness(
        &mut self,
        tool: &str,
        marker: Option<&str>,
        conn: &mut Conn,
        tenant: &Tenant,
    ) -> Result<Witness, Abort> {
        let writes = self.target.profile.writes(tool);
        let mut before = BTreeMap::new();
        if writes && marker.is_none() {
            for t in self.tenants() {
                let via = (t.id == tenant.id).then_some(&mut *conn);
                before.insert(t.id.clone(), self.read_lists(&t, via).await?);
            }
        }
        Ok(Witness {
            writes,
            marker: marker.map(str::to_owned),
            session_tenant: tenant.id.clone(),
            before,
            beside: Vec::new(),
        })
    }

    /// Reads every tenant back (the session's tenant through `conn`, the session the
    /// call was made in) and lists the effects the witnessed call had (empty: nothing
    /// happened). A read-back that fails counts as an effect not disproved.
    pub async fn effects(
        &mut self,
        witness: &Witness,
        conn: &mut Conn,
    ) -> Result<Vec<Effect>, Abort> {
        let mut effects = Vec::new();
        if !witness.writes {
            return Ok(effects);
        }
        for t in self.tenants() {
            let via = (t.id == witness.session_tenant).then_some(&mut *conn);
            let now = match self.read_lists(&t, via).await {
                Ok(now) => now,
                Err(Abort::Client(e)) => {
                    effects.push(Effect {
                        tenant: t.id.clone(),
                        what: Seen::NoReadBack(e.to_string()),
                    });
                    continue;
                }
                Err(skip) => return Err(skip),
            };
            for what in witness.seen_in(&t.id, &now) {
                effects.push(Effect {
                    tenant: t.id.clone(),
                    what,
                });
            }
        }
        Ok(effects)
    }

    /// Records case `case`: the call that produced `answer` in `conn` had to be refused
    /// with no effect. `accepted` says what a success means, for the report.
    pub async fn expect_refused(
        &mut self,
        case: &str,
        answer: &Answer,
        witness: &Witness,
        conn: &mut Conn,
        expected: &str,
        accepted: &str,
    ) -> CheckResult {
        self.expect_refused_at(Level::Must, case, answer, witness, conn, expected, accepted)
            .await
    }

    /// [`Ctx::expect_refused`] at `level`: reads every tenant back and judges the
    /// answer with its effects ([`Ctx::judge_refusal`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn expect_refused_at(
        &mut self,
        level: Level,
        case: &str,
        answer: &Answer,
        witness: &Witness,
        conn: &mut Conn,
        expected: &str,
        accepted: &str,
    ) -> CheckResult {
        let effects = self.effects(witness, conn).await?;
        self.judge_refusal(level, case, answer, witness, &effects, expected, accepted);
        Ok(())
    }

    /// Records case `case` from `answer` and the read-back's `effects`: refused with no
    /// effect passes; an effect, or a success, misses at `level`. A write that left
    /// nothing anywhere and whose ordinary result (`isError: false`) itself reads as a
    /// refusal is a warning: clients and models read such an answer as success. (An
    /// ordinary success that merely left nothing visible is not given that benefit: the
    /// write may have gone where no list shows it.)
    #[allow(clippy::too_many_arguments)]
    pub fn judge_refusal(
        &mut self,
        level: Level,
        case: &str,
        answer: &Answer,
        witness: &Witness,
        effects: &[Effect],
        expected: &str,
        accepted: &str,
    ) {
        let tenants: Vec<String> = self.tenants().into_iter().map(|t| t.id).collect();
        let read_back = if witness.writes {
            match effects.is_empty() {
                true => format!("; read back: nothing changed in {}", tenants.join(" or ")),
                false => format!("; read back: {}", describe_effects(effects)),
            }
        } else {
            String::new()
        };
        let refused = !answer.succeeded();
        let own = witness.sent();
        let carries = if refused {
            self.refusal_carries(answer, &own, &[])
        } else {
            None
        };
        self.screen(
            &witness.session_tenant,
            &format!("the answer to {case}"),
            &readback::answer_text(answer),
        );
        let refused_in_effect = witness.writes
            && effects.is_empty()
            && !refused
            && reads_as_refusal(answer)
            && !self.discloses(answer);
        let actual = if let Some(carried) = &carries {
            format!(
                "refused ({}), but {carried} — a refusal that discloses data{read_back}",
                answer.describe()
            )
        } else if refused {
            format!("refused ({}){read_back}", answer.describe())
        } else if refused_in_effect {
            format!(
                "refused in effect, but answered as an ordinary result ({}) that clients and models read as success{read_back}",
                answer.describe()
            )
        } else {
            format!("{accepted} ({}){read_back}", answer.describe())
        };
        let expected = if witness.writes {
            format!("{expected}, and nothing written in any tenant (read back)")
        } else {
            expected.to_owned()
        };
        let outcome = if refused_in_effect {
            Outcome::Warn
        } else if refused && effects.is_empty() && carries.is_none() {
            Outcome::Pass
        } else {
            level.missed()
        };
        self.observe(case, outcome, expected, actual);
    }

    /// The positive control of an effect check: a valid call of write tool `tool` in
    /// `conn` (tenant `tenant`) must succeed and be visible in the read-back; otherwise
    /// no absence proves anything. Returns whether it held (the case is recorded).
    pub async fn control_write(
        &mut self,
        conn: &mut Conn,
        tenant: &Tenant,
        tool: &str,
    ) -> Result<bool, Abort> {
        Ok(self.control_call(conn, tenant, tool).await?.is_some())
    }

    /// [`Ctx::control_write`], answering the call that held (its arguments, token and
    /// marker) — `None` when it did not.
    pub async fn control_call(
        &mut self,
        conn: &mut Conn,
        tenant: &Tenant,
        tool: &str,
    ) -> Result<Option<ControlCall>, Abort> {
        let marker = self.takes_marker(tool).then(|| self.marker_for(&tenant.id));
        let m = marker.clone().unwrap_or_default();
        let witness = self.witness(tool, marker.as_deref(), conn, tenant).await?;
        let token = self.token_for(tenant, tool, "").await?;
        let args = self.arguments(tool, &m, "", &tenant.id);
        let answer = conn.call_tool(tool, args.clone(), token.as_deref()).await?;
        let effects = self.effects(&witness, conn).await?;
        let own = |e: &&Effect| e.tenant == tenant.id;
        let seen = effects
            .iter()
            .filter(own)
            .any(|e| !matches!(e.what, Seen::NoReadBack(_)));
        let read_back_failed = effects
            .iter()
            .any(|e| matches!(e.what, Seen::NoReadBack(_)));
        let elsewhere: Vec<&Effect> = effects
            .iter()
            .filter(|e| e.tenant != tenant.id && !matches!(e.what, Seen::NoReadBack(_)))
            .collect();
        if !elsewhere.is_empty() {
            // A valid write of one tenant that shows in another's lists: data crossed
            // the tenant boundary, whatever the caller was allowed.
            let shown: Vec<String> = elsewhere.iter().map(|e| e.to_string()).collect();
            self.must(
                &format!(
                    "control: a valid {tool} call by {} stays in {}",
                    tenant.id, tenant.id
                ),
                false,
                format!("the write shows in {}'s lists only", tenant.id),
                format!(
                    "{}; read back: {} — {}'s write reached another tenant",
                    answer.describe(),
                    shown.join("; "),
                    tenant.id
                ),
            );
            return Ok(None);
        }
        if answer.succeeded() && !seen && !read_back_failed {
            // The write works, but nothing the profile names can show it: no effect can
            // be proved either way on this target.
            return Err(Abort::Skip(format!(
                "a valid {tool} call by {} succeeded ({}), but none of its list tools ({}) shows it: what {tool} writes cannot be read back, so no refusal can be proved by its effects",
                tenant.id,
                answer.describe(),
                self.target.profile.readable_lists(tenant).join(", ")
            )));
        }
        let ok = answer.succeeded() && seen;
        self.must(
            &format!("control: a valid {tool} call by {} takes effect", tenant.id),
            ok,
            "succeeds, and the read-back shows it (otherwise no absence proves anything)",
            format!(
                "{}; read back: {}",
                answer.describe(),
                if effects.is_empty() {
                    "nothing visible".into()
                } else {
                    describe_effects(&effects)
                }
            ),
        );
        Ok(ok.then_some(ControlCall {
            marker,
            token,
            args,
        }))
    }

    /// Opens a new connection; labels are numbered per check (`client#1`, `acme#2`).
    pub async fn connect(
        &mut self,
        who: &str,
        tenant: Option<&Tenant>,
    ) -> Result<Conn, ClientError> {
        self.connections += 1;
        let label = format!("{who}#{}", self.connections);
        self.target.connect(&label, tenant, &self.transcript).await
    }

    /// Opens a connection of `tenant`'s session principal presenting `bearer` as its
    /// session credential (a token the check minted), without `initialize`.
    pub async fn connect_bearing(
        &mut self,
        tenant: &Tenant,
        bearer: &str,
    ) -> Result<Conn, ClientError> {
        self.connections += 1;
        let label = format!("{}#{}", tenant.id, self.connections);
        let principal = tenant.session_principal().id;
        self.target
            .connect_with(
                &label,
                Some(tenant),
                Some(&principal),
                Some(bearer),
                &self.transcript,
            )
            .await
    }

    /// Opens a connection and completes the `initialize` handshake.
    pub async fn initialized(&mut self, who: &str) -> Result<Conn, Abort> {
        let mut conn = self.connect(who, None).await?;
        let answer = conn
            .initialize(crate::client::LATEST_SESSION_VERSION)
            .await?;
        if answer.result().is_none() {
            return Err(Abort::Client(ClientError::Refused(format!(
                "initialize failed: {}",
                answer.describe()
            ))));
        }
        Ok(conn)
    }

    pub fn observe(
        &mut self,
        case: &str,
        outcome: Outcome,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) {
        self.observations.push(Observation {
            case: case.to_owned(),
            outcome,
            expected: expected.into(),
            actual: actual.into(),
            obstacle: None,
        });
    }

    /// Records a failed case that is an obstacle to the check, not an observation of
    /// its property (the target went down, refused a step; the harness could not go
    /// on).
    pub fn obstacle(
        &mut self,
        obstacle: Obstacle,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) {
        self.observations.push(Observation {
            case: obstacle.case().to_owned(),
            outcome: Outcome::Fail,
            expected: expected.into(),
            actual: actual.into(),
            obstacle: Some(obstacle),
        });
    }

    /// Records a MUST-level case: pass when `ok`, fail otherwise.
    pub fn must(
        &mut self,
        case: &str,
        ok: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) {
        let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
        self.observe(case, outcome, expected, actual);
    }

    /// Records a SHOULD-level case: pass when `ok`, warn otherwise.
    pub fn should(
        &mut self,
        case: &str,
        ok: bool,
        expected: impl Into<String>,
        actual: impl Into<String>,
    ) {
        let outcome = if ok { Outcome::Pass } else { Outcome::Warn };
        self.observe(case, outcome, expected, actual);
    }
}

/// A control write that held ([`Ctx::control_call`]): what it sent.
#[derive(Debug, Clone)]
pub struct ControlCall {
    pub marker: Option<String>,
    pub token: Option<String>,
    pub args: Value,
}

/// A check's body: what runs for one catalogue id. Boxed, because the checks' state
/// machines are large and a test thread's stack is small.
pub type Runner =
    for<'c, 'a> fn(
        &'c mut Ctx<'a>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = CheckResult> + 'c>>;

/// The body of every implemented check, by catalogue id. A check is implemented
/// exactly when it has a row here ([`crate::catalogue::CheckDef::implemented`]), so an
/// implemented id without a body cannot exist.
pub const RUNNERS: &[(&str, Runner)] = &[
    ("T0.1", |ctx| Box::pin(t0::initialize_lifecycle(ctx))),
    ("T0.2", |ctx| Box::pin(t0::json_rpc_error_codes(ctx))),
    ("T0.3", |ctx| Box::pin(t0::hostile_frames(ctx))),
    ("T0.4", |ctx| Box::pin(t0::streamable_http_sessions(ctx))),
    ("T0.5", |ctx| Box::pin(t0::standard_headers(ctx))),
    ("T0.6", |ctx| {
        Box::pin(t0::unauthenticated_flood_tolerated(ctx))
    }),
    ("T1.1", |ctx| Box::pin(t1::entitled_tools_listed(ctx))),
    ("T1.2", |ctx| Box::pin(t1::no_foreign_tool_anywhere(ctx))),
    ("T1.3", |ctx| Box::pin(t1::concurrent_lists_apart(ctx))),
    ("T1.4", |ctx| Box::pin(t1::revocation(ctx))),
    ("T1.5", |ctx| Box::pin(t1::cache_scope_private(ctx))),
    ("T2.1", |ctx| Box::pin(t2::call_token_required(ctx))),
    ("T2.2", |ctx| Box::pin(t2::token_lifetime(ctx))),
    ("T2.3", |ctx| Box::pin(t2::token_scope(ctx))),
    ("T2.4", |ctx| Box::pin(t2::token_tenant(ctx))),
    ("T2.5", |ctx| Box::pin(t2::tampered_tokens(ctx))),
    ("T2.6", |ctx| Box::pin(t2::per_principal(ctx))),
    ("T2.7", |ctx| {
        Box::pin(t2::every_http_request_authenticated(ctx))
    }),
    ("T2.8", |ctx| Box::pin(t2::call_token_single_use(ctx))),
    ("T3.1", |ctx| Box::pin(t3::tenant_argument_untrusted(ctx))),
    ("T3.2", |ctx| Box::pin(t3::smuggled_id_spellings(ctx))),
    ("T3.3", |ctx| Box::pin(t3::schema_enforced(ctx))),
    ("T3.4", |ctx| {
        Box::pin(t3::nothing_else_selects_the_tenant(ctx))
    }),
    ("T5.8", |ctx| Box::pin(t5::tenant_flood_bounded(ctx))),
    ("T6.1", |ctx| Box::pin(t6::unlisted_tool_refused(ctx))),
    ("T6.2", |ctx| Box::pin(t6::every_path_gated(ctx))),
    ("T6.3", |ctx| Box::pin(t6::name_variants_gated(ctx))),
    ("T6.4", |ctx| Box::pin(t6::answers_reach_their_session(ctx))),
];

/// The body of check `id`, if this version of the harness implements it.
pub fn runner(id: &str) -> Option<Runner> {
    RUNNERS.iter().find(|(i, _)| *i == id).map(|(_, r)| *r)
}

/// Runs the body of check `def`.
pub async fn run_body(ctx: &mut Ctx<'_>) -> CheckResult {
    match runner(ctx.def.id) {
        Some(run) => run(ctx).await,
        None => Err(Abort::Skip(format!(
            "{} is not implemented in this version of the harness",
            ctx.def.id
        ))),
    }
}

/// A record id as text: a string as it is, any other JSON value as JSON.
pub fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `template` with `{marker}`, `{id}` and `{tenant}` replaced in every string.
pub(crate) fn fill(template: Value, marker: &str, id: &Value, tenant: &str) -> Value {
    match template {
        Value::String(s) if s == "{id}" => id.clone(),
        Value::String(s) => Value::String(
            s.replace("{marker}", marker)
                .replace("{id}", &id_text(id))
                .replace("{tenant}", tenant),
        ),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| fill(v, marker, id, tenant))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k, fill(v, marker, id, tenant)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn templates_fill_every_string() {
        let t =
            json!({"title": "{marker}", "n": 3, "tags": ["{tenant}"], "o": {"id": "note:{id}"}});
        assert_eq!(
            fill(t, "m1", &Value::String("7".into()), "acme"),
            json!({"title": "m1", "n": 3, "tags": ["acme"], "o": {"id": "note:7"}})
        );
    }

    #[test]
    fn an_id_keeps_its_json_type_where_the_template_is_the_id_alone() {
        let t = json!({"id": "{id}", "path": "notes/{id}"});
        assert_eq!(
            fill(t, "", &json!(42), "acme"),
            json!({"id": 42, "path": "notes/42"})
        );
    }

    #[test]
    fn the_rng_is_reproducible_and_shuffles_everything() {
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        assert_eq!(a.next_u64(), b.next_u64());
        let mut items: Vec<u32> = (0..10).collect();
        a.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert!((0..100).all(|_| a.below(3) < 3));
    }
}
