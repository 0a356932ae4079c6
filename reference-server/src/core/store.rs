//! The in-memory store behind the fixture tools.
//!
//! Every record lives under the tenant that wrote it, and every accessor takes the
//! [`TenantScope`] of an authorised call: there is no way to list or read across
//! tenants, and no way to reach the store without passing the gate. Record ids are
//! drawn from one global sequence, so an id minted for one tenant is a valid-looking id
//! in another tenant's session — which is what lets the suite prove that such an id
//! reads as not-found there.

use super::gate::TenantScope;
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
}

impl Store {
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
    ) -> Note {
        let tenant = scope.tenant();
        self.with(|s| {
            let note = Note {
                id: Self::next_id(s, "note"),
                title: title.to_owned(),
                body: body.to_owned(),
                author: author.to_owned(),
            };
            s.tenants
                .entry(tenant.to_owned())
                .or_default()
                .notes
                .push(note.clone());
            note
        })
    }

    pub fn notes(&self, scope: TenantScope<'_>) -> Vec<Note> {
        let tenant = scope.tenant();
        self.with(|s| {
            s.tenants
                .get(tenant)
                .map(|t| t.notes.clone())
                .unwrap_or_default()
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
    ) -> Charge {
        let tenant = scope.tenant();
        self.with(|s| {
            let charge = Charge {
                id: Self::next_id(s, "ch"),
                amount_cents,
                currency: currency.to_owned(),
                principal: principal.to_owned(),
            };
            s.tenants
                .entry(tenant.to_owned())
                .or_default()
                .charges
                .push(charge.clone());
            charge
        })
    }

    pub fn charges(&self, scope: TenantScope<'_>) -> Vec<Charge> {
        let tenant = scope.tenant();
        self.with(|s| {
            s.tenants
                .get(tenant)
                .map(|t| t.charges.clone())
                .unwrap_or_default()
        })
    }
}
