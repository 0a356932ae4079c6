//! Per-tenant budgets: how much of the server one tenant may hold at once, so that one
//! tenant's storm never starves another (the seed's mistake 5).
//!
//! Today one budget: requests in flight per tenant. A request takes an [`InFlight`]
//! permit before it is served and gives it back when it is dropped; past the budget
//! the request is refused at once with a retry hint, never queued (a queue would let
//! the storm's latency reach the other tenants through shared workers). Retry budgets
//! belong here too, keyed the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Requests in flight, per tenant, bounded.
#[derive(Debug)]
pub struct Budgets {
    max_in_flight: usize,
    in_flight: Mutex<HashMap<String, usize>>,
}

/// One request of one tenant in flight; dropping it ends it.
#[derive(Debug)]
pub struct InFlight {
    budgets: Arc<Budgets>,
    tenant: String,
}

/// A request refused because its tenant is at its budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverBudget {
    pub tenant: String,
    pub limit: usize,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Too many requests in flight for this tenant (limit {}); retry later",
            self.limit
        )
    }
}

impl Budgets {
    pub fn new(max_in_flight: usize) -> Arc<Self> {
        Arc::new(Self {
            max_in_flight: max_in_flight.max(1),
            in_flight: Mutex::default(),
        })
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A permit for one more request of `tenant`, or why not.
    pub fn try_start(self: &Arc<Self>, tenant: &str) -> Result<InFlight, OverBudget> {
        let mut table = self.table();
        let n = table.entry(tenant.to_owned()).or_default();
        if *n >= self.max_in_flight {
            return Err(OverBudget {
                tenant: tenant.to_owned(),
                limit: self.max_in_flight,
            });
        }
        *n += 1;
        Ok(InFlight {
            budgets: Arc::clone(self),
            tenant: tenant.to_owned(),
        })
    }

    /// Requests of `tenant` in flight now.
    pub fn in_flight(&self, tenant: &str) -> usize {
        self.table().get(tenant).copied().unwrap_or(0)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut table = self.budgets.table();
        if let Some(n) = table.get_mut(&self.tenant) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                table.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tenant_at_its_budget_leaves_the_others_theirs() {
        let budgets = Budgets::new(2);
        let a1 = budgets.try_start("acme").unwrap();
        let _a2 = budgets.try_start("acme").unwrap();
        assert_eq!(
            budgets.try_start("acme").unwrap_err(),
            OverBudget {
                tenant: "acme".into(),
                limit: 2
            }
        );
        let _g = budgets
            .try_start("globex")
            .expect("another tenant is not starved");
        drop(a1);
        assert_eq!(budgets.in_flight("acme"), 1);
        assert!(budgets.try_start("acme").is_ok());
    }
}
