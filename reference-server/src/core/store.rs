//! The in-memory store behind the fixture tools.
//!
//! Every record lives under the tenant that wrote it, and every accessor takes the
//! [`TenantScope`] of an authorised call: there is no way to list or read across
//! tenants, and no way to reach the store without passing the gate. Record ids are
//! drawn from one global sequence, so an id minted for one tenant is a valid-looking id
//! in another tenant's session — which is what lets the suite prove that such an id
//! reads as not-found there.
//!
//! What one tenant stores is bounded ([`StorageLimits`]: records and bytes); a write
//! past the quota stores nothing and says so. A list answers at most `list_limit`
//! records, the newest, and how many it left out.

use super::gate::TenantScope;
use crate::config::StorageLimits;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Note {
    pub id: String,
    pub title: String,
    pub body: String,
    /// The principal that wrote it.
    pub author: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Charge {
    pub id: String,
    pub amount_cents: u64,
    pub currency: String,
    pub principal: String,
}

#[derive(Debug, Default)]
struct Tenant {
    notes: Vec<Note>,
    charges: Vec<Charge>,
    /// Bytes of stored text, counted against the quota.
    bytes: usize,
}

impl Tenant {
    fn records(&self) -> usize {
        self.notes.len() + self.charges.len()
    }
}

/// A write refused because the tenant's storage quota is reached; nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub records: usize,
    pub bytes: usize,
    pub limits: StorageLimits,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Storage quota reached: this tenant holds {} records and {} bytes (quota: {} records, {} bytes); nothing was stored",
            self.records,
            self.bytes,
            self.limits.max_records_per_tenant,
            self.limits.max_bytes_per_tenant
        )
    }
}

/// The newest records of a list, and how many older ones it left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub omitted: usize,
}

impl<T: Clone> Page<T> {
    fn newest(all: &[T], limit: usize) -> Self {
        let omitted = all.len().saturating_sub(limit);
        Self {
            items: all[omitted..].to_vec(),
            omitted,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<String, Tenant>,
    next_id: u64,
}

/// Thread-safe tenant-partitioned store.
#[derive(Debug, Default)]
pub struct Store {
    state: Mutex<State>,
    limits: StorageLimits,
}

impl Store {
    pub fn new(limits: StorageLimits) -> Self {
        Self {
            state: Mutex::default(),
            limits,
        }
    }

    /// Room for one more record of `bytes` in `tenant`, or why not.
    fn admit(&self, tenant: &Tenant, bytes: usize) -> Result<(), QuotaExceeded> {
        let l = self.limits;
        if tenant.records() >= l.max_records_per_tenant
            || tenant.bytes.saturating_add(bytes) > l.max_bytes_per_tenant
        {
            return Err(QuotaExceeded {
                records: tenant.records(),
                bytes: tenant.bytes,
                limits: l,
            });
        }
        Ok(())
    }

    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        // A poisoned lock means a handler panicked mid-update; the data is still
        // consistent (each update is a single push), so keep serving.
        let mut guard = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn next_id(state: &mut State, prefix: &str) -> String {
        state.next_id += 1;
        format!("{prefix}-{:06}", state.next_id)
    }

    pub fn create_note(
        &self,
        scope: TenantScope<'_>,
        author: &str,
        title: &str,
        body: &str,
    ) -> Result<Note, QuotaExceeded> {
        let tenant = scope.tenant();
        let bytes = title.len() + body.len() + author.len();
        self.with(|s| {
            self.admit(s.tenants.entry(tenant.to_owned()).or_default(), bytes)?;
            let note = Note {
                id: Self::next_id(s, "note"),
                title: title.to_owned(),
                body: body.to_owned(),
                author: author.to_owned(),
            };
            let t = s.tenants.get_mut(tenant).expect("entered above");
            t.bytes += bytes;
            t.notes.push(note.clone());
            Ok(note)
        })
    }

    /// The tenant's newest notes, at most `list_limit`.
    pub fn notes(&self, scope: TenantScope<'_>) -> Page<Note> {
        let tenant = scope.tenant();
        let limit = self.limits.list_limit;
        self.with(|s| match s.tenants.get(tenant) {
            Some(t) => Page::newest(&t.notes, limit),
            None => Page::newest(&[], limit),
        })
    }

    pub fn note(&self, scope: TenantScope<'_>, id: &str) -> Option<Note> {
        let tenant = scope.tenant();
        self.with(|s| {
            s.tenants
                .get(tenant)
                .and_then(|t| t.notes.iter().find(|n| n.id == id).cloned())
        })
    }

    pub fn charge(
        &self,
        scope: TenantScope<'_>,
        principal: &str,
        amount_cents: u64,
        currency: &str,
    ) -> Result<Charge, QuotaExceeded> {
        let tenant = scope.tenant();
        let bytes = currency.len() + principal.len() + 8;
        self.with(|s| {
            self.admit(s.tenants.entry(tenant.to_owned()).or_default(), bytes)?;
            let charge = Charge {
                id: Self::next_id(s, "ch"),
                amount_cents,
                currency: currency.to_owned(),
                principal: principal.to_owned(),
            };
            let t = s.tenants.get_mut(tenant).expect("entered above");
            t.bytes += bytes;
            t.charges.push(charge.clone());
            Ok(charge)
        })
    }

    /// The tenant's newest charges, at most `list_limit`.
    pub fn charges(&self, scope: TenantScope<'_>) -> Page<Charge> {
        let tenant = scope.tenant();
        let limit = self.limits.list_limit;
        self.with(|s| match s.tenants.get(tenant) {
            Some(t) => Page::newest(&t.charges, limit),
            None => Page::newest(&[], limit),
        })
    }
}
