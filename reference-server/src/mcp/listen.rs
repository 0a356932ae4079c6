//! The HTTP listener: hyper's HTTP/1.1 connections, bounded, so that clients without
//! credentials cannot deny service to authenticated tenants.
//!
//! - A request head must arrive within `header_timeout_secs` (hyper's header-read
//!   timer), and at most `max_header_bytes` of it (431 past that, before any header is
//!   decoded).
//! - A connection is *unauthenticated* until one of its requests carries a valid bearer
//!   ([`ConnTicket::authenticated`], called by the guard). It must get there within
//!   `header_timeout_secs`, or it is closed.
//! - Connections are bounded in total (`max_total`, lowered to fit the open-file
//!   limit), unauthenticated ones apart (`max_unauthenticated`), and per tenant
//!   (`max_per_tenant`). A new connection past the unauthenticated cap or at the total
//!   cap closes the *oldest unauthenticated* one: a flood of idle or half-sent
//!   connections never displaces an authenticated connection; it competes only with
//!   connections that have not yet sent a valid bearer (a client's new connection
//!   sends one within milliseconds, a held flood's never does).
//! - An `accept` that fails (out of file descriptors) backs off and goes on; the
//!   listener never stops on it.
//! - On shutdown the listener stops accepting and waits (up to [`DRAIN`]) for the
//!   requests being served to finish.

use crate::config::ConnectionLimits;
use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tower_service::Service as _;

/// What a connection is to the limits.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Unauthenticated,
    Tenant(String),
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    states: HashMap<u64, State>,
    /// Unauthenticated connections, oldest first, each with the signal that closes it.
    unauthenticated: BTreeMap<u64, oneshot::Sender<()>>,
    per_tenant: HashMap<String, usize>,
}

/// The open connections and their limits.
#[derive(Debug)]
pub struct Conns {
    limits: ConnectionLimits,
    table: Mutex<Table>,
    /// Requests being served (until their response head is ready).
    active: std::sync::atomic::AtomicUsize,
}

/// How long a shutdown waits for the requests being served.
pub const DRAIN: Duration = Duration::from_secs(2);

/// One request being served; dropping it ends it.
struct Active(Arc<Conns>);

impl Active {
    fn start(conns: &Arc<Conns>) -> Self {
        conns
            .active
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(Arc::clone(conns))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A connection's place in the table, given back however its task ends (a panic too).
struct Place(ConnTicket);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.closed();
    }
}

/// A connection's handle, in every request's extensions.
#[derive(Debug, Clone)]
pub struct ConnTicket {
    id: u64,
    conns: Arc<Conns>,
}

/// How many descriptors the process keeps for other things than connections.
const FD_RESERVE: usize = 64;

/// Raises the soft open-file limit towards the hard one (as far as `want`), and returns
/// the soft limit in force, if the platform says.
fn open_file_limit(want: usize) -> Option<usize> {
    #[cfg(unix)]
    {
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit only read and write the struct passed.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) != 0 {
                return None;
            }
            let wanted = (want as libc::rlim_t).min(l.rlim_max);
            if l.rlim_cur < wanted {
                let raised = libc::rlimit {
                    rlim_cur: wanted,
                    rlim_max: l.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    l.rlim_cur = wanted;
                }
            }
        }
        usize::try_from(l.rlim_cur).ok()
    }
    #[cfg(not(unix))]
    {
        let _ = want;
        None
    }
}

impl Conns {
    /// The table for `limits`, its total lowered to what the open-file limit allows.
    pub fn new(mut limits: ConnectionLimits) -> Arc<Self> {
        if let Some(fds) = open_file_limit(limits.max_total + FD_RESERVE) {
            let fits = fds.saturating_sub(FD_RESERVE).max(1);
            if fits < limits.max_total {
                tracing::warn!(
                    configured = limits.max_total,
                    open_file_limit = fds,
                    "connections.max_total lowered to fit the open-file limit"
                );
                limits.max_total = fits;
            }
        }
        limits.max_unauthenticated = limits.max_unauthenticated.min(limits.max_total);
        Arc::new(Self {
            limits,
            table: Mutex::default(),
            active: Default::default(),
        })
    }

    pub fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new connection, closing the oldest unauthenticated one(s) to make room;
    /// `None` when every open connection is authenticated and the total is reached.
    fn open(self: &Arc<Self>) -> Option<(ConnTicket, oneshot::Receiver<()>)> {
        let mut t = self.table();
        while t.unauthenticated.len() >= self.limits.max_unauthenticated
            || t.states.len() >= self.limits.max_total
        {
            let (old, close) = t.unauthenticated.pop_first()?;
            t.states.remove(&old);
            let _ = close.send(());
        }
        t.next += 1;
        let id = t.next;
        let (close, closed) = oneshot::channel();
        t.states.insert(id, State::Unauthenticated);
        t.unauthenticated.insert(id, close);
        Some((
            ConnTicket {
                id,
                conns: Arc::clone(self),
            },
            closed,
        ))
    }

    /// Open connections: (all, unauthenticated).
    pub fn counts(&self) -> (usize, usize) {
        let t = self.table();
        (t.states.len(), t.unauthenticated.len())
    }
}

impl ConnTicket {
    /// A request on this connection carried `tenant`'s valid bearer. `false` when the
    /// tenant already holds its share of connections (or this one was closed): the
    /// request is refused and the connection closed.
    pub fn authenticated(&self, tenant: &str) -> bool {
        let limits = self.conns.limits;
        let mut t = self.conns.table();
        match t.states.get(&self.id) {
            None => false,
            Some(State::Tenant(_)) => true,
            Some(State::Unauthenticated) => {
                let held = t.per_tenant.get(tenant).copied().unwrap_or(0);
                if held >= limits.max_per_tenant {
                    return false;
                }
                t.unauthenticated.remove(&self.id);
                t.states.insert(self.id, State::Tenant(tenant.to_owned()));
                *t.per_tenant.entry(tenant.to_owned()).or_default() += 1;
                true
            }
        }
    }

    fn is_unauthenticated(&self) -> bool {
        self.conns.table().states.get(&self.id) == Some(&State::Unauthenticated)
    }

    fn closed(&self) {
        let mut t = self.conns.table();
        t.unauthenticated.remove(&self.id);
        if let Some(State::Tenant(tenant)) = t.states.remove(&self.id)
            && let Some(n) = t.per_tenant.get_mut(&tenant)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.per_tenant.remove(&tenant);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    conns: Arc<Conns>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = &mut shutdown => {
                let until = tokio::time::Instant::now() + DRAIN;
                while conns.active.load(std::sync::atomic::Ordering::Relaxed) > 0
                    && tokio::time::Instant::now() < until
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                return Ok(());
            }
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // EMFILE and the like: the connection waits in the backlog; try again
                // once some have closed.
                tracing::warn!(error = %e, "accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Without TCP_NODELAY every response waits for the peer's delayed ACK (~40 ms).
        let _ = tcp.set_nodelay(true);
        match conns.open() {
            Some((ticket, close)) => {
                tokio::spawn(serve_one(tcp, app.clone(), ticket, close));
            }
            None => {
                tracing::info!(
                    "connection refused: every connection slot is authenticated and in use"
                );
                drop(tcp);
            }
        }
    }
}

/// Serves one connection until it ends, is displaced, or stays unauthenticated too long.
async fn serve_one(
    tcp: TcpStream,
    app: Router,
    ticket: ConnTicket,
    mut displaced: oneshot::Receiver<()>,
) {
    let limits = ticket.conns.limits;
    let header_timeout = Duration::from_secs(limits.header_timeout_secs);
    let for_requests = ticket.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(for_requests.clone());
        let mut app = app.clone();
        let active = Active::start(&for_requests.conns);
        async move {
            let response = app.call(request.map(Body::new)).await;
            drop(active);
            response
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_header_size(limits.max_header_bytes);
    let place = Place(ticket.clone());
    let connection = builder.serve_connection(TokioIo::new(tcp), service);
    tokio::pin!(connection);
    let deadline = tokio::time::sleep(header_timeout);
    tokio::pin!(deadline);
    let (mut watching, mut timing) = (true, true);
    loop {
        tokio::select! {
            _ = &mut connection => break,
            signal = &mut displaced, if watching => {
                if signal.is_ok() {
                    tracing::debug!("unauthenticated connection displaced by a newer one");
                    break;
                }
                // Authenticated: nothing will displace it any more.
                watching = false;
            }
            () = &mut deadline, if timing => {
                if ticket.is_unauthenticated() {
                    tracing::debug!("connection closed: no authenticated request in time");
                    break;
                }
                timing = false;
            }
        }
    }
    drop(place);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conns(total: usize, unauthenticated: usize, per_tenant: usize) -> Arc<Conns> {
        Arc::new(Conns {
            limits: ConnectionLimits {
                max_total: total,
                max_unauthenticated: unauthenticated,
                max_per_tenant: per_tenant,
                ..ConnectionLimits::default()
            },
            table: Mutex::default(),
            active: Default::default(),
        })
    }

    #[test]
    fn unauthenticated_connections_displace_only_each_other() {
        let c = conns(3, 2, 4);
        let (a, mut a_closed) = c.open().unwrap();
        assert!(a.authenticated("acme"));
        let (_b, mut b_closed) = c.open().unwrap();
        let (d, mut d_closed) = c.open().unwrap();
        // Past the unauthenticated cap: the oldest unauthenticated (b) goes, never a.
        let (_e, mut e_closed) = c.open().unwrap();
        assert!(b_closed.try_recv().is_ok());
        assert!(d_closed.try_recv().is_err());
        assert!(a_closed.try_recv().is_err());
        assert_eq!(c.counts(), (3, 2));
        // At the total: again the oldest unauthenticated (e, once d authenticated).
        assert!(d.authenticated("globex"));
        let (f, _) = c.open().unwrap();
        assert!(e_closed.try_recv().is_ok());
        assert_eq!(c.counts(), (3, 1));
        assert!(f.authenticated("globex"));
        assert!(a_closed.try_recv().is_err() && d_closed.try_recv().is_err());
    }

    #[test]
    fn when_every_slot_is_authenticated_a_new_connection_is_refused() {
        let c = conns(2, 2, 2);
        for _ in 0..2 {
            let (t, _) = c.open().unwrap();
            assert!(t.authenticated("acme"));
        }
        assert!(c.open().is_none());
    }

    #[test]
    fn a_tenant_past_its_share_of_connections_is_refused_and_others_are_not() {
        let c = conns(8, 8, 1);
        let (a1, _) = c.open().unwrap();
        let (a2, _) = c.open().unwrap();
        assert!(a1.authenticated("acme"));
        assert!(!a2.authenticated("acme"));
        let (g, _) = c.open().unwrap();
        assert!(g.authenticated("globex"));
        a1.closed();
        assert!(a2.authenticated("acme"));
    }
}
