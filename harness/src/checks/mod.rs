//! The checks, one module per property, and the context they run in.
//!
//! A check records [`Observation`]s — one per case, each with what the catalogue
//! expects and what the target did. It passes only if it observed something and every
//! observation holds. A client error (timeout, exit) ends the check as a failure that
//! carries the target's stderr tail.

pub mod t0;

use crate::catalogue::CheckDef;
use crate::client::{ClientError, Conn, Target, Transcript};
use crate::model::{Observation, Outcome};
use crate::profile::Tenant;

/// Why a check stopped early.
#[derive(Debug)]
pub enum Abort {
    /// The check cannot run against this target; the reason is reported.
    Skip(String),
    /// The target crashed, hung, or could not be reached.
    Client(ClientError),
}

impl From<ClientError> for Abort {
    fn from(e: ClientError) -> Self {
        Abort::Client(e)
    }
}

pub type CheckResult = Result<(), Abort>;

/// What a running check can use and record.
pub struct Ctx<'a> {
    pub target: &'a Target,
    pub def: &'static CheckDef,
    pub transcript: Transcript,
    pub observations: Vec<Observation>,
    connections: usize,
}

impl<'a> Ctx<'a> {
    pub fn new(target: &'a Target, def: &'static CheckDef) -> Self {
        Self {
            target,
            def,
            transcript: Transcript::new(),
            observations: Vec::new(),
            connections: 0,
        }
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

    /// Opens a connection and completes the `initialize` handshake.
    pub async fn initialized(&mut self, who: &str) -> Result<Conn, Abort> {
        let mut conn = self.connect(who, None).await?;
        let answer = conn
            .initialize(crate::client::LATEST_SESSION_VERSION)
            .await?;
        if answer.result().is_none() {
            return Err(Abort::Client(ClientError::Launch(format!(
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

/// Runs the body of check `def`.
pub async fn run_body(ctx: &mut Ctx<'_>) -> CheckResult {
    match ctx.def.id {
        "T0.1" => t0::initialize_lifecycle(ctx).await,
        "T0.2" => t0::json_rpc_error_codes(ctx).await,
        "T0.3" => t0::hostile_frames(ctx).await,
        "T0.4" => t0::streamable_http_sessions(ctx).await,
        "T0.5" => t0::standard_headers(ctx).await,
        other => Err(Abort::Skip(format!(
            "{other} is not implemented in this version of the harness"
        ))),
    }
}
