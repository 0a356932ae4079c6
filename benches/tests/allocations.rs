//! "No allocation on the hot path", checked rather than claimed: a counting allocator
//! around the gate's decision of an authorised HS256 and EdDSA call, and around a
//! known session bearer answered from the verified-token cache.

use mcp_tenancy_benches as b;
use mcp_tenancy_server::core::gate::{self, CallContext};
use mcp_tenancy_server::core::testing::{self as fixture, NOW};
use mcp_tenancy_server::core::tools::{Catalogue, catalogue};
use serde_json::Map;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made on this thread by `f`.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = ALLOCATIONS.with(Cell::get);
    let out = f();
    (out, ALLOCATIONS.with(Cell::get) - before)
}

#[test]
fn an_authorised_decision_and_a_known_bearer_allocate_nothing() {
    // The counter counts: one string, one allocation.
    assert_eq!(allocations(|| String::from("x")).1, 1);
    let policy = fixture::policy(None);
    let tools = Catalogue::new(catalogue());
    let session = fixture::session(&policy, "acme");
    let args = Map::new();
    for kid in ["hs", "ed"] {
        let token = b::call_token_at(
            &policy,
            kid,
            ("acme", "alice"),
            ("notes_list", "notes:read"),
            NOW,
            "j",
        );
        let ctx = CallContext {
            session: &session,
            tool: "notes_list",
            call_token: Some(&token),
            arguments: &args,
            now: NOW,
        };
        let (ok, n) = allocations(|| gate::check(&policy, &tools, &ctx).is_ok());
        assert!(ok, "{kid}: the call is authorised");
        assert_eq!(n, 0, "{kid}: the gate allocated {n} times");
        let bearer = b::session_bearer(&policy, kid, "acme");
        policy
            .authenticate_on(&bearer, Some("s1"), NOW)
            .expect("the bearer verifies");
        let (ok, n) = allocations(|| policy.authenticate_on(&bearer, Some("s1"), NOW).is_ok());
        assert!(ok);
        assert_eq!(n, 0, "{kid}: a known bearer allocated {n} times");
    }
}
