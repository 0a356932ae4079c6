"""A multi-tenant notes-and-billing MCP server on the official Python SDK (`mcp` 2.3,
`MCPServer`) over Streamable HTTP — an example target of mcp-tenancy, written the way a
team using the SDK would write it. Start it with `./run.sh --port 8000`.

Its conventions (none of them the kit's own):
- The tenant is the bearer: `Authorization: Bearer <API key>` on every request; a session
  is bound to the tenant that opened it.
- Every tools/call carries a call token in `_meta["notes.example/call-token"]`: HS256,
  no `kid`, claims `tnt` (tenant), `azp` (principal), `tool`, `res` (`tenant:<id>` or
  `note:<id>`), `iss`, `aud`, `iat`, `exp`. A call token is single-use: its digest is
  kept until it expires and a second presentation is refused. Tokens over 8 KiB, with a
  `crit` header, or issued after they expire are refused.
- Note ids are integers. Each tenant may make NOTES_RATE_LIMIT requests per second
  (default 20); over it: HTTP 429 with Retry-After.

NOTES_DEFECT=list-only switches on one deliberate mistake: tools/list is filtered by
tenant, tools/call is not — seed mistake 6, which the kit's T6.1 catches.
"""

import argparse
import base64
import contextvars
import hashlib
import hmac
import json
import os
import threading
import time
from typing import Annotated

import uvicorn
from pydantic import Field

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent

SECRET = os.environ.get("NOTES_SECRET", "python-example-secret-0123456789ab").encode()
ISSUER, AUDIENCE, META_KEY = "https://auth.notes.example", "urn:notes-py", "notes.example/call-token"
DEFECT = os.environ.get("NOTES_DEFECT", "")
RATE_LIMIT = int(os.environ.get("NOTES_RATE_LIMIT", "20"))

API_KEYS = {"py-acme-7d1c": "acme", "py-globex-52aa": "globex"}
TENANTS = {
    "acme": {
        "tools": {"notes_create", "notes_list", "notes_get", "charge", "charges_list"},
        "principals": {
            "alice": {"notes_create", "notes_list", "notes_get"},
            "bob": {"notes_create", "notes_list", "notes_get", "charge", "charges_list"},
        },
    },
    "globex": {
        "tools": {"notes_create", "notes_list", "notes_get", "export"},
        "principals": {"gina": {"notes_create", "notes_list", "notes_get", "export"}},
    },
}

tenant_of_request: contextvars.ContextVar[str] = contextvars.ContextVar("tenant")
notes: dict[str, dict[int, str]] = {t: {} for t in TENANTS}
charges: dict[str, list[int]] = {t: [] for t in TENANTS}
next_id = iter(range(1, 1 << 62))
lock = threading.Lock()


def b64(segment: str) -> bytes:
    if "=" in segment or not all(c.isalnum() or c in "-_" for c in segment):
        raise ValueError("not canonical base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


used_tokens: dict[str, float] = {}  # digest -> until when it is remembered


def spend(token: str, exp: int) -> bool:
    """Records `token` as used; False if it was."""
    digest, now = hashlib.sha256(token.encode()).hexdigest(), time.time()
    with lock:
        for d in [d for d, until in used_tokens.items() if until < now]:
            del used_tokens[d]
        if digest in used_tokens:
            return False
        used_tokens[digest] = exp + 5
    return True


def authorised(token: object, tenant: str, tool: str, resource: str) -> bool:
    """Is `token` a valid, unused call token of `tenant` for `tool` on `resource`?"""
    if not isinstance(token, str) or len(token) > 8192 or token.count(".") != 2:
        return False
    head, body, sig = token.split(".")
    try:
        header, claims, signature = json.loads(b64(head)), json.loads(b64(body)), b64(sig)
    except ValueError:
        return False
    if not isinstance(header, dict) or header.get("alg") != "HS256" or "crit" in header or not isinstance(claims, dict):
        return False
    if not hmac.compare_digest(hmac.new(SECRET, f"{head}.{body}".encode(), hashlib.sha256).digest(), signature):
        return False
    now, iat, exp = time.time(), claims.get("iat"), claims.get("exp")
    if not (type(iat) is int and type(exp) is int and exp >= now - 5 and iat <= now + 5 and iat <= exp and exp - iat <= 300):
        return False
    if claims.get("iss") != ISSUER or claims.get("aud") != AUDIENCE or claims.get("tnt") != tenant:
        return False
    grants = TENANTS[tenant]["principals"].get(claims.get("azp"))
    if grants is None or claims.get("tool") != tool or tool not in grants or claims.get("res") != resource:
        return False
    return spend(token, exp)


def refusal(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


async def tenancy(ctx, call_next):
    """The gate, as SDK middleware: the tenant from the bearer, the list filtered by it,
    every call checked against the tenant's entitlements and its own call token."""
    tenant = API_KEYS.get((ctx.request.headers.get("authorization") or "")[7:]) if ctx.request else None
    if tenant is None:
        return await call_next(ctx)
    tenant_of_request.set(tenant)
    params = dict(ctx.params or {})
    if ctx.method == "tools/call":
        name = params.get("name")
        if not isinstance(name, str):
            return await call_next(ctx)
        if name not in TENANTS[tenant]["tools"] and not (DEFECT == "list-only" and name in TOOLS):
            # Exactly what the SDK answers for a tool it does not have.
            return refusal(f"Unknown tool: {name}")
        args = params.get("arguments") or {}
        resource = f"note:{args.get('id')}" if name == "notes_get" else f"tenant:{tenant}"
        meta = params.get("_meta") or {}
        if not authorised(meta.get(META_KEY) if isinstance(meta, dict) else None, tenant, name, resource):
            return refusal("Not authorised")
    result = await call_next(ctx)
    if ctx.method == "tools/list" and isinstance(result, dict):
        # The listing is computed per request from the tenant's entitlements.
        result["tools"] = [t for t in result.get("tools", []) if t.get("name") in TENANTS[tenant]["tools"]]
    return result


mcp = MCPServer("notes-python", version="1.0.0", middleware=[tenancy])
TOOLS = {"notes_create", "notes_list", "notes_get", "charge", "charges_list", "export"}
TenantId = Annotated[str | None, Field(description="Your tenant; optional, checked against your credential")]


def own_tenant(claimed: str | None) -> str:
    tenant = tenant_of_request.get()
    if claimed is not None and claimed != tenant:
        raise ValueError("tenant_id is not your tenant")
    return tenant


@mcp.tool()
def notes_create(title: Annotated[str, Field(min_length=1)], tenant_id: TenantId = None) -> dict:
    """Create a note."""
    tenant = own_tenant(tenant_id)
    with lock:
        nid = next(next_id)
        notes[tenant][nid] = title
    return {"id": nid, "title": title}


@mcp.tool()
def notes_list(tenant_id: TenantId = None) -> dict:
    """List your notes."""
    tenant = own_tenant(tenant_id)
    return {"notes": [{"id": i, "title": t} for i, t in sorted(notes[tenant].items())]}


@mcp.tool()
def notes_get(id: int, tenant_id: TenantId = None) -> dict:
    """Read one note."""
    tenant = own_tenant(tenant_id)
    if id not in notes[tenant]:
        raise ValueError("no such note")
    return {"id": id, "title": notes[tenant][id]}


@mcp.tool()
def charge(amount_cents: Annotated[int, Field(ge=1)]) -> dict:
    """Charge your account."""
    tenant = tenant_of_request.get()
    with lock:
        charges[tenant].append(amount_cents)
    return {"charge": len(charges[tenant]), "amount_cents": amount_cents}


@mcp.tool()
def charges_list() -> dict:
    """List your charges."""
    return {"charges": charges[tenant_of_request.get()]}


@mcp.tool()
def export() -> dict:
    """Export every note of your tenant."""
    return {"export": sorted(notes[tenant_of_request.get()].items())}


class Guard:
    """ASGI: every request needs a known bearer (401 otherwise); a session id answers only
    to the tenant that opened it — any other id, another tenant's or one never issued, gets
    the same 404, so a live id cannot be told from an unknown one; each tenant is
    rate-limited (429)."""

    def __init__(self, app):
        self.app, self.owners, self.calls = app, {}, {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        tenant = API_KEYS.get(headers.get("authorization", "")[7:]) if headers.get("authorization", "").startswith("Bearer ") else None
        if tenant is None:
            return await self.answer(send, 401, {"error": "unauthorized"}, [(b"www-authenticate", b'Bearer realm="notes"')])
        sid = headers.get("mcp-session-id")
        if sid is not None and self.owners.get(sid) != tenant:
            return await self.answer(send, 404, {"error": "session not found"})
        window = [t for t in self.calls.get(tenant, []) if t > time.time() - 1]
        if len(window) >= RATE_LIMIT:
            return await self.answer(send, 429, {"error": "rate limited"}, [(b"retry-after", b"1")])
        self.calls[tenant] = window + [time.time()]

        async def remember(message):
            if message["type"] == "http.response.start":
                for k, v in message.get("headers", []):
                    if k.lower() == b"mcp-session-id":
                        self.owners.setdefault(v.decode(), tenant)
            await send(message)

        await self.app(scope, receive, remember)

    @staticmethod
    async def answer(send, status, body, headers=()):
        data = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), *headers]})
        await send({"type": "http.response.body", "body": data})


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    port = parser.parse_args().port
    security = TransportSecuritySettings(
        allowed_hosts=[f"127.0.0.1:{port}", f"localhost:{port}"],
        allowed_origins=[f"http://127.0.0.1:{port}", f"http://localhost:{port}"],
    )
    app = Guard(mcp.streamable_http_app(transport_security=security))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
