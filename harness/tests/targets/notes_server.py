#!/usr/bin/env python3
"""A small multi-tenant notes-and-billing MCP server, written the way another team
would write one: Python's standard library only, its own conventions everywhere.

It is a test target of the harness (harness/tests/foreign_targets.rs), not part of the
kit. It gets tenancy right — tenant from the session's API key, a call token on every
tools/call, closed argument schemas, a gate before every handler — and each switch
below changes one convention or switches on one flaw.

Conventions that differ from the reference server:
- API keys (not JWTs) authenticate a session: stdio `NOTES_API_KEY`, HTTP
  `Authorization: Bearer <key>` on every request.
- Call tokens are HS256 JWTs in `_meta["com.example/authz"]` with claims `tid` (the
  tenant), `sub` (the principal), `scope` (space-separated tool names), `aud`, `iat`,
  `exp`, `jti` (unique, never read: the server keys its record of used tokens by the
  token's digest) — no `kid`, no `iss`, no action claim.
- Gate refusals are JSON-RPC errors; invalid arguments an `isError` result; note ids are
  integers; state lives in SQLite (`NOTES_DB`), shared by every process.

Switches (environment):
- NOTES_TRANSPORT=stdio|http, NOTES_PORT (http)
- NOTES_RATE_LIMIT=N: at most N requests per second per tenant; over it, a tools/call
  answers `isError` "rate limited: retry after 1s", any other request error -32029; over
  HTTP, 429 with Retry-After: 1.
- NOTES_TRACE_IDS=1: every JSON-RPC error carries a fresh `data.traceId` and
  `data.timestamp`.
- NOTES_EXTRA_NULL=1: an oversized line is answered twice: its error, then an extra
  `id: null` parse error for its tail.
- NOTES_SILENT_HOSTILE=1: frames that do not parse get no answer at all.
- NOTES_SIGNED=1 (http): every request must carry X-Notes-Timestamp and
  X-Notes-Signature, the hex HMAC-SHA256 of "<timestamp>.<body>" under the token secret
  (sign.py beside this file makes them).
- NOTES_PRINCIPAL_KEYS=1: every principal has an API key of its own (acme-alice-key,
  acme-bob-key, globex-gina-key), which grants what the principal may call; with
  NOTES_CALL_TOKENS=0 calls carry no call token at all — the key is the grant.
- NOTES_READONLY_TENANT=1: a third tenant, initech (key initech-key-5b7d), on a
  read-only plan: notes_list only, principal ivan.
- NOTES_JWT_SESSIONS=1 (http): the bearer is an HS256 session JWT (claims tid, aud,
  exp) signed with the token secret, not an API key; a session JWT ends at most a day
  ahead. A GET opens a notification stream, held while its bearer verifies.
- NOTES_ENTITLEMENTS=FILE: each tenant's tools from a JSON file (tenant -> tools),
  re-read on every request: an entitlement can be revoked while the server runs.
- NOTES_OPEN_PRINCIPALS=1: no principal roster — any `sub` the issuer signed is taken,
  and the token's scope alone says what it may call.
- NOTES_SESSION_CAP=N (http, default 300): sessions one principal may hold; past it,
  initialize gets 429 with Retry-After: 10. Each session keeps a 64 KiB replay buffer
  (for resumable streams), so sessions cost memory as they do in real servers.
- NOTES_SOFT_REFUSALS=1: a call-token refusal is an ordinary result (`isError: false`)
  saying "Access denied" — as some published servers answer.
- NOTES_FLAW=scope-ignored|scope-missing-wildcard|list-only|tenant-arg|
  principal-ignored|list-unfiltered|charge-ungated|refusal-with-data|nested-tenant|
  header-tenant|fold-names|shared-id-table|validate-first|slow-foreign|
  charge-unvalidated|list-tenant-arg|user-arg|readonly-ungated|bearer-any-audience|
  reason-oracle|revoked-still-callable|tid-ignored|no-session-cap|session-fail-open|
  single-threaded: one deliberate defect (scope-missing-wildcard:
  a token without a scope claim authorises every tool; principal-ignored: a principal
  key grants every tool of its tenant; list-unfiltered: notes_list shows every tenant's
  notes; charge-ungated: charge takes no call token; refusal-with-data: a refused list
  call's error carries the list in `data.preview`; nested-tenant: `context.tenant_id`
  picks the tenant; header-tenant (http): an `X-Tenant-Id` header picks it;
  fold-names: names are trimmed, lower-cased and `-` read as `_` after the gate, and
  the token's scope is checked against the folded name; shared-id-table (http):
  answers are handed out on a 20 ms tick from one table keyed by the bare request id,
  to the request that asked last with that id; validate-first: arguments are checked
  against any tool's schema before the entitlement; slow-foreign: a tool that exists
  for another tenant is refused 300 ms later than an unknown one; charge-unvalidated:
  charge skips its schema; list-tenant-arg: notes_list, and only it, reads the
  tenant from `tenant_id`; user-arg: a `user_id` argument naming a principal of the
  tenant is whose grants the call gets; readonly-ungated: a tenant with no write tool
  is not gated at all; bearer-any-audience: a session JWT's audience is not checked; reason-oracle: an unknown
  or foreign tool is refused in the same words, with `structuredContent.reason`
  `unknown_tool` or `not_entitled`; revoked-still-callable: tools/list follows
  NOTES_ENTITLEMENTS, tools/call the entitlements read at start; tid-ignored: a call
  token's tenant claim is not compared with the session's; no-session-cap (http):
  sessions are not capped; session-fail-open (http): not capped either, and who owns a
  session is kept in a separate 1,000-entry table that forgets the oldest — a session
  with no owner on record is served to any bearer; single-threaded (http): one request
  at a time, so one stalled connection stalls every client; replayable: a call token
  is not recorded when used, so it authorises any number of calls; replayable-elsewhere:
  the record of used tokens is kept per process (per session over stdio, per process
  over http it is still one), so a token replays in another stdio session; crit-ignored:
  a `crit` header is not looked at; session-unbounded (NOTES_JWT_SESSIONS): a session
  JWT may end any time ahead, not at most a day; session-oracle (http): a live session
  of another tenant is refused 403 "Session belongs to another tenant", an unknown one
  404; stream-unjudged (NOTES_JWT_SESSIONS): a GET stream's bearer is judged only when
  the stream opens).

Tokens are single-use: each call token's SHA-256 is recorded in SQLite (shared by every
process) until it could no longer verify, and a second presentation is refused. A token
longer than 8 KiB is refused on its length, one with a `crit` header (no extension is
understood) or an `iat` after its `exp` on its claims.
"""

import base64
import collections
import datetime
import hashlib
import hmac
import json
import os
import sqlite3
import sys
import threading
import time
import uuid

SECRET = os.environ.get("NOTES_TOKEN_SECRET", "notes-dev-secret-0123456789abcdef").encode()
AUDIENCE = "urn:notes"
META_KEY = "com.example/authz"
MAX_LINE = 1024 * 1024
MAX_LIFETIME = 300
SKEW = 5
MAX_TOKEN = 8192
MAX_SESSION = 86400
VERSIONS = ["2025-06-18", "2025-11-25"]

API_KEYS = {"acme-key-1f3a": ("acme", None), "globex-key-9c2e": ("globex", None)}
if os.environ.get("NOTES_PRINCIPAL_KEYS") == "1":
    API_KEYS = {
        "acme-alice-key": ("acme", "alice"),
        "acme-bob-key": ("acme", "bob"),
        "globex-gina-key": ("globex", "gina"),
    }
if os.environ.get("NOTES_READONLY_TENANT") == "1":
    API_KEYS["initech-key-5b7d"] = ("initech", None)
CALL_TOKENS = os.environ.get("NOTES_CALL_TOKENS", "1") != "0"
TENANTS = {
    "acme": {
        "tools": ["notes_create", "notes_list", "charge", "charges_list"],
        "principals": {
            "alice": ["notes_create", "notes_list"],
            "bob": ["notes_create", "notes_list", "charge", "charges_list"],
        },
    },
    "globex": {
        "tools": ["notes_create", "notes_list", "export"],
        "principals": {"gina": ["notes_create", "notes_list", "export"]},
    },
}

if os.environ.get("NOTES_READONLY_TENANT") == "1":
    # A read-only plan: one list tool, no write tool.
    TENANTS["initech"] = {"tools": ["notes_list"], "principals": {"ivan": ["notes_list"]}}
WRITE_TOOLS = {"notes_create", "charge"}
ENTITLEMENTS = os.environ.get("NOTES_ENTITLEMENTS")


def entitled(tenant, calling=False):
    """The tools `tenant` is entitled to: from NOTES_ENTITLEMENTS (a JSON file of
    tenant -> tools, re-read on every request) when set, else the built-in plans. With
    revoked-still-callable, calls keep the entitlements read at start."""
    if ENTITLEMENTS and not (calling and FLAW == "revoked-still-callable"):
        try:
            with open(ENTITLEMENTS) as f:
                return json.load(f).get(tenant, [])
        except (OSError, ValueError):
            return []
    return STARTUP_ENTITLEMENTS.get(tenant, TENANTS[tenant]["tools"])

TENANT_ARG = {"tenant_id": {"type": "string", "description": "Your tenant (optional)"}}
USER_ARG = {"user_id": {"type": "string", "description": "The acting user, for audit (optional)"}}
TOOLS = {
    "notes_create": {
        "description": "Create a note",
        "inputSchema": {
            "type": "object",
            "properties": {
                "title": {"type": "string", "minLength": 1},
                "context": {"type": "object", "description": "Client context (trace ids); not stored"},
                **TENANT_ARG,
                **USER_ARG,
            },
            "required": ["title"],
            "additionalProperties": False,
        },
    },
    "notes_list": {
        "description": "List your notes",
        "inputSchema": {"type": "object", "properties": dict(TENANT_ARG), "additionalProperties": False},
    },
    "charge": {
        "description": "Charge the account",
        "inputSchema": {
            "type": "object",
            "properties": {"amount_cents": {"type": "integer", "minimum": 1}, **USER_ARG},
            "required": ["amount_cents"],
            "additionalProperties": False,
        },
    },
    "charges_list": {
        "description": "List charges",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
    },
    "export": {
        "description": "Export everything of the tenant",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
    },
}

FLAW = os.environ.get("NOTES_FLAW", "")
RATE_LIMIT = int(os.environ.get("NOTES_RATE_LIMIT", "0") or 0)
TRACE_IDS = os.environ.get("NOTES_TRACE_IDS") == "1"


def startup_entitlements():
    if not ENTITLEMENTS:
        return {}
    try:
        with open(ENTITLEMENTS) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


STARTUP_ENTITLEMENTS = startup_entitlements()


class Store:
    """Notes, charges and the rate-limit log, shared by every process through SQLite."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, tenant TEXT, title TEXT);"
            "CREATE TABLE IF NOT EXISTS charges (id INTEGER PRIMARY KEY, tenant TEXT, cents INTEGER);"
            "CREATE TABLE IF NOT EXISTS calls (tenant TEXT, at REAL);"
            "CREATE TABLE IF NOT EXISTS used_tokens (digest TEXT PRIMARY KEY, until REAL);"
        )
        self.used_here = set()

    def spend(self, token):
        """Records call token `token` as used; False if it was already."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        if FLAW == "replayable":
            return True
        if FLAW == "replayable-elsewhere":
            if digest in self.used_here:
                return False
            self.used_here.add(digest)
            return True
        now = time.time()
        with self.lock:
            self.db.execute("DELETE FROM used_tokens WHERE until < ?", (now,))
            try:
                self.db.execute("INSERT INTO used_tokens VALUES (?, ?)", (digest, now + MAX_LIFETIME + SKEW))
            except sqlite3.IntegrityError:
                return False
        return True

    def query(self, sql, args=()):
        with self.lock:
            return self.db.execute(sql, args).fetchall()

    def insert(self, sql, args):
        with self.lock:
            return self.db.execute(sql, args).lastrowid

    def over_limit(self, tenant):
        """Counts this request; is it over the tenant's requests per second?"""
        if not RATE_LIMIT:
            return False
        now = time.time()
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM calls WHERE at < ?", (now - 1.0,))
            (n,) = self.db.execute("SELECT COUNT(*) FROM calls WHERE tenant = ?", (tenant,)).fetchone()
            if n < RATE_LIMIT:
                self.db.execute("INSERT INTO calls VALUES (?, ?)", (tenant, now))
            self.db.execute("COMMIT")
        return n >= RATE_LIMIT


class Refused(Exception):
    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


def b64decode(segment):
    if "=" in segment or not all(c.isalnum() or c in "-_" for c in segment):
        raise ValueError("not canonical base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verified_claims(token):
    """The claims of an HS256 JWT signed with SECRET, or None."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64decode(parts[0]))
        claims = json.loads(b64decode(parts[1]))
        signature = b64decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        return None
    if "crit" in header and FLAW != "crit-ignored":
        return None
    expected = hmac.new(SECRET, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    return claims if hmac.compare_digest(expected, signature) else None


def verify_call_token(token, tenant, tool, check_grants=True, acting=None):
    """The token's principal, or Refused. `acting` (the user-arg flaw) replaces the
    token's principal in the grants check."""
    unauthorized = Refused(-32001, "Unauthorized")
    claims = verified_claims(token)
    if claims is None:
        raise unauthorized
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
        raise unauthorized
    aud = claims.get("aud")
    if not (aud == AUDIENCE or (isinstance(aud, list) and AUDIENCE in aud)):
        raise unauthorized
    if exp < now - SKEW or iat > now + SKEW or iat > exp or exp - iat > MAX_LIFETIME:
        raise unauthorized
    if claims.get("tid") != tenant and FLAW != "tid-ignored":
        raise unauthorized
    principal = claims.get("sub")
    grants = TENANTS[tenant]["principals"].get(principal) if isinstance(principal, str) else None
    if os.environ.get("NOTES_OPEN_PRINCIPALS") == "1" and isinstance(principal, str) and principal:
        # No roster: the issuer vouches for the principal; the scope alone grants.
        grants = list(TOOLS)
    if grants is None:
        raise unauthorized
    if acting is not None:
        grants = TENANTS[tenant]["principals"][acting]
    scope = claims.get("scope")
    if FLAW == "scope-missing-wildcard" and scope is None:
        scope = tool
    if FLAW != "scope-ignored":
        if not isinstance(scope, str) or tool not in scope.split(" "):
            raise unauthorized
    if check_grants and tool not in grants:
        raise unauthorized
    return principal


def invalid_arguments(schema, args):
    """Why `args` breaks the tool's closed schema, or None."""
    if not isinstance(args, dict):
        return "arguments must be an object"
    props = schema.get("properties", {})
    for key in args:
        if key not in props:
            return f"unexpected argument {key!r}"
    for key in schema.get("required", []):
        if key not in args:
            return f"missing argument {key!r}"
    for key, value in args.items():
        spec = props[key]
        if spec["type"] == "string" and (not isinstance(value, str) or len(value) < spec.get("minLength", 0)):
            return f"{key} must be a string"
        if spec["type"] == "object" and not isinstance(value, dict):
            return f"{key} must be an object"
        if spec["type"] == "integer" and (
            not isinstance(value, int) or isinstance(value, bool) or value < spec.get("minimum", value)
        ):
            return f"{key} must be an integer"
    return None


def text_result(payload, is_error=False):
    text = payload if isinstance(payload, str) else json.dumps(payload)
    result = {"content": [{"type": "text", "text": text}], "isError": is_error}
    if not is_error and not isinstance(payload, str):
        result["structuredContent"] = payload
    return result


class Session:
    def __init__(self, store, who, limited=True):
        self.store = store
        # header-tenant: the tenant an X-Tenant-Id header named on this request.
        self.header_tenant = None
        self.tenant, self.principal = who
        self.initialized = False
        # Over HTTP the handler enforces the rate limit (429) before the session sees a
        # request.
        self.limited = limited

    def handle(self, msg):
        """The response to one parsed request (None for a notification)."""
        rid = msg.get("id")
        method = msg.get("method")
        if not isinstance(method, str) or msg.get("jsonrpc") != "2.0":
            return error(rid, -32600, "Invalid Request")
        params = msg.get("params", {})
        if not isinstance(params, dict):
            return error(rid, -32602, "params must be an object")
        if "id" not in msg:
            if method == "notifications/initialized":
                self.initialized = True
            return None
        try:
            return {"jsonrpc": "2.0", "id": rid, "result": self.dispatch(method, params)}
        except Refused as r:
            return error(rid, r.code, r.message, r.data)

    def dispatch(self, method, params):
        if method == "initialize":
            asked = params.get("protocolVersion")
            self.initialized = True
            return {
                "protocolVersion": asked if asked in VERSIONS else VERSIONS[-1],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "notes-server", "version": "1.4.2"},
            }
        if method == "ping":
            return {}
        if not self.initialized:
            raise Refused(-32002, "Server not initialized")
        if self.limited and self.store.over_limit(self.tenant):
            if method == "tools/call":
                return text_result("rate limited: retry after 1s", True)
            raise Refused(-32029, "rate limited: retry after 1s")
        if method == "tools/list":
            tools = [dict(name=n, **TOOLS[n]) for n in entitled(self.tenant)]
            return {"tools": tools}
        if method == "tools/call":
            return self.call(params)
        raise Refused(-32601, f"Method not found: {method}")

    def call(self, params):
        name = params.get("name")
        if not isinstance(name, str):
            raise Refused(-32602, "tools/call needs a tool name")
        folded = False
        if FLAW == "validate-first" and name in TOOLS:
            why = invalid_arguments(TOOLS[name]["inputSchema"], params.get("arguments", {}))
            if why:
                return text_result(f"Invalid arguments for {name}: {why}", True)
        if FLAW == "slow-foreign" and name in TOOLS and name not in entitled(self.tenant, calling=True):
            # An entitlement lookup in a slow store, made only for tools that exist.
            time.sleep(0.3)
        if FLAW == "fold-names":
            # The gate refuses the exact names of other tenants' tools; the dispatcher
            # then folds the name it was given.
            foreign = {t for o, spec in TENANTS.items() if o != self.tenant for t in spec["tools"]}
            if name in foreign and name not in entitled(self.tenant, calling=True):
                raise Refused(-32602, f"Unknown tool: {name}")
            folded = name != name.strip().lower().replace("-", "_")
            name = name.strip().lower().replace("-", "_")
            known = name in TOOLS
        else:
            # readonly-ungated: "a read-only plan cannot write anyway" — its calls skip
            # the entitlement.
            readonly = not WRITE_TOOLS & set(entitled(self.tenant, calling=True))
            unchecked = FLAW == "list-only" or (FLAW == "readonly-ungated" and readonly)
            known = name in TOOLS if unchecked else name in entitled(self.tenant, calling=True)
            folded = folded or (FLAW == "readonly-ungated" and readonly)
        if not known:
            if FLAW == "reason-oracle":
                # The same words for both; the machine-readable reason tells them apart.
                reason = "not_entitled" if name in TOOLS else "unknown_tool"
                return {
                    "content": [{"type": "text", "text": f"Unknown tool: {name}"}],
                    "structuredContent": {"reason": reason},
                    "isError": True,
                }
            raise Refused(-32602, f"Unknown tool: {params.get('name')}")
        if self.principal is not None and FLAW != "principal-ignored":
            if name not in TENANTS[self.tenant]["principals"][self.principal]:
                raise Refused(-32001, "Unauthorized")
        if CALL_TOKENS and not (FLAW == "charge-ungated" and name == "charge"):
            meta = params.get("_meta") or {}
            try:
                token = meta.get(META_KEY) if isinstance(meta, dict) else None
                # fold-names: the principal's grants were judged on the name as sent.
                args = params.get("arguments")
                acting = args.get("user_id") if FLAW == "user-arg" and isinstance(args, dict) else None
                if acting not in TENANTS[self.tenant]["principals"]:
                    acting = None
                verify_call_token(token, self.tenant, name, check_grants=not folded, acting=acting)
                if not self.store.spend(token):
                    raise Refused(-32001, "Unauthorized: call token already used")
            except Refused as refused:
                if os.environ.get("NOTES_SOFT_REFUSALS") == "1":
                    return text_result("Access denied: a valid call token is required")
                if FLAW == "refusal-with-data" and name.endswith("_list"):
                    # A "helpful" refusal: what the caller would have seen.
                    preview = self.run(name, {}, self.tenant)
                    raise Refused(refused.code, refused.message, {"preview": preview["content"][0]["text"]})
                raise
        args = params.get("arguments", {})
        why = invalid_arguments(TOOLS[name]["inputSchema"], args)
        if why and not (FLAW == "charge-unvalidated" and name == "charge"):
            return text_result(f"Invalid arguments for {name}: {why}", True)
        tenant = self.tenant
        context = args.get("context")
        if FLAW == "nested-tenant" and isinstance(context, dict) and context.get("tenant_id") in TENANTS:
            tenant = context["tenant_id"]
        if FLAW == "header-tenant" and self.header_tenant in TENANTS:
            tenant = self.header_tenant
        claimed = args.get("tenant_id")
        if claimed is not None and claimed != tenant:
            if claimed in TENANTS and (FLAW == "tenant-arg" or (FLAW == "list-tenant-arg" and name == "notes_list")):
                tenant = claimed
            else:
                return text_result("tenant_id does not match your tenant", True)
        return self.run(name, args, tenant)

    def run(self, name, args, tenant):
        if name == "notes_create":
            nid = self.store.insert("INSERT INTO notes (tenant, title) VALUES (?, ?)", (tenant, args["title"]))
            return text_result({"id": nid, "title": args["title"]})
        if name == "notes_list":
            if FLAW == "list-unfiltered":
                rows = self.store.query("SELECT id, title FROM notes ORDER BY id")
            else:
                rows = self.store.query("SELECT id, title FROM notes WHERE tenant = ? ORDER BY id", (tenant,))
            return text_result({"notes": [{"id": i, "title": t} for i, t in rows]})
        if name == "charge":
            cents = args.get("amount_cents")
            if not isinstance(cents, (int, str)):
                # Only reachable with charge-unvalidated: stored as it came.
                cents = json.dumps(cents)
            cid = self.store.insert("INSERT INTO charges (tenant, cents) VALUES (?, ?)", (tenant, cents))
            return text_result({"charge": cid, "amount_cents": cents})
        if name == "charges_list":
            rows = self.store.query("SELECT id, cents FROM charges WHERE tenant = ? ORDER BY id", (tenant,))
            return text_result({"charges": [{"id": i, "amount_cents": c} for i, c in rows]})
        rows = self.store.query("SELECT id, title FROM notes WHERE tenant = ?", (tenant,))
        return text_result({"export": [{"id": i, "title": t} for i, t in rows]})


def error(rid, code, message, data=None):
    err = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    elif TRACE_IDS:
        err["data"] = {
            "traceId": uuid.uuid4().hex,
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        }
    return {"jsonrpc": "2.0", "id": rid, "error": err}


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise ValueError("duplicate member")
    return dict(pairs)


def parse(raw):
    """The message in `raw`, or an error response for it."""
    if len(raw) > MAX_LINE:
        return None, error(None, -32600, "Request too large")
    try:
        msg = json.loads(raw.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, RecursionError):
        return None, error(None, -32700, "Parse error")
    except ValueError as e:
        code = -32600 if "duplicate" in str(e) else -32700
        return None, error(None, code, "Parse error" if code == -32700 else "Invalid Request")
    if isinstance(msg, list):
        return None, error(None, -32600, "Batch requests are not supported")
    if not isinstance(msg, dict):
        return None, error(None, -32600, "Invalid Request")
    return msg, None


def serve_stdio(store):
    who = API_KEYS.get(os.environ.get("NOTES_API_KEY", ""))
    if who is None:
        sys.stderr.write("notes-server: NOTES_API_KEY is missing or unknown\n")
        sys.exit(2)
    session = Session(store, who)
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        raw = raw.rstrip(b"\r\n")
        if not raw:
            continue
        msg, refusal = parse(raw)
        if refusal is not None:
            if os.environ.get("NOTES_SILENT_HOSTILE") == "1":
                continue
            answers = [refusal]
            if len(raw) > MAX_LINE and os.environ.get("NOTES_EXTRA_NULL") == "1":
                answers.append(error(None, -32700, "Parse error"))
        else:
            answers = [session.handle(msg)]
        for answer in answers:
            if answer is not None:
                out.write(json.dumps(answer).encode() + b"\n")
                out.flush()


def session_of_jwt(token):
    """NOTES_JWT_SESSIONS: (tenant, None) of an HS256 session JWT (claims tid, aud,
    exp), or None."""
    claims = verified_claims(token)
    if claims is None:
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int) or exp < time.time() - SKEW:
        return None
    # No iat in this contract: a session JWT may not end more than a day ahead.
    if exp > time.time() + MAX_SESSION + SKEW and FLAW != "session-unbounded":
        return None
    aud = claims.get("aud")
    if FLAW != "bearer-any-audience" and not (aud == AUDIENCE or (isinstance(aud, list) and AUDIENCE in aud)):
        return None
    tenant = claims.get("tid")
    return (tenant, None) if tenant in TENANTS else None


class SharedIdTable:
    """The shared-id-table flaw: one table of waiting requests keyed by the bare JSON-RPC
    id, across every session; each answer, after the dispatcher's 20 ms tick, goes to
    the request that most recently asked with that id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.waiting = {}

    def route(self, rid, answer):
        mine = {"event": threading.Event(), "answer": None}
        with self.lock:
            self.waiting.setdefault(rid, []).append(mine)
        time.sleep(0.02)
        with self.lock:
            queue = self.waiting.get(rid, [])
            taker = queue.pop() if queue else mine
            if not queue:
                self.waiting.pop(rid, None)
        taker["answer"] = answer
        taker["event"].set()
        mine["event"].wait(5)
        return mine["answer"]


shared_table = SharedIdTable()


def serve_http(store, port):
    from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer

    sessions = {}
    held = {}  # (tenant, principal) -> open sessions
    owners = collections.OrderedDict()  # session-fail-open: sid -> (tenant, principal)
    cap = int(os.environ.get("NOTES_SESSION_CAP", "300"))
    capped = FLAW not in ("no-session-cap", "session-fail-open")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this each answer waits ~40 ms.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def reply(self, status, body=None, headers=()):
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            if body is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def who(self):
            """(tenant, principal) of the bearer, or None."""
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer "):
                return None
            if os.environ.get("NOTES_JWT_SESSIONS") == "1":
                return session_of_jwt(auth[7:])
            return API_KEYS.get(auth[7:])

        def signed(self, body):
            """Is the request signed, when signatures are required?"""
            if os.environ.get("NOTES_SIGNED") != "1":
                return True
            stamp = self.headers.get("X-Notes-Timestamp", "")
            given = self.headers.get("X-Notes-Signature", "")
            if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
                return False
            want = hmac.new(SECRET, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            return hmac.compare_digest(want, given)

        def guard(self, body=b""):
            """The tenant, or None after an error answer was sent."""
            host = self.headers.get("Host", "")
            if host not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                self.reply(421, error(None, -32600, "Misdirected request"))
                return None
            origin = self.headers.get("Origin")
            if origin and not origin.startswith(("http://127.0.0.1", "http://localhost")):
                self.reply(403, error(None, -32600, "Forbidden origin"))
                return None
            tenant = self.who()
            if tenant is None or not self.signed(body):
                self.reply(401, error(None, -32001, "Unauthorized"), [("WWW-Authenticate", 'Bearer realm="notes"')])
                return None
            version = self.headers.get("MCP-Protocol-Version")
            if version is not None and version not in VERSIONS:
                self.reply(400, error(None, -32600, f"Unsupported protocol version {version}"))
                return None
            return tenant

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0") or 0)
            if length > MAX_LINE:
                # Drain what comes (lingering close), then refuse.
                self.rfile.read(length)
                self.reply(413, error(None, -32600, "Request too large"), [("Connection", "close")])
                self.close_connection = True
                return
            raw = self.rfile.read(length)
            tenant = self.guard(raw)
            if tenant is None:
                return
            msg, refusal = parse(raw)
            if refusal is not None:
                self.reply(400, refusal)
                return
            sid = self.headers.get("Mcp-Session-Id")
            if msg.get("method") == "initialize":
                session, sid = Session(store, tenant, limited=False), uuid.uuid4().hex
                session.replay = b"\x01" * 65536
                with lock:
                    if capped and held.get(tenant, 0) >= cap:
                        self.reply(429, error(msg.get("id"), -32000, f"too many sessions (at most {cap}); close one"), [("Retry-After", "10")])
                        return
                    sessions[sid] = session
                    held[tenant] = held.get(tenant, 0) + 1
                    if FLAW == "session-fail-open":
                        owners[sid] = tenant
                        while len(owners) > 1000:
                            owners.popitem(last=False)
            else:
                if sid is None:
                    self.reply(400, error(msg.get("id"), -32600, "Mcp-Session-Id required"))
                    return
                with lock:
                    session = sessions.get(sid)
                    owner = owners.get(sid, tenant) if FLAW == "session-fail-open" else None
                if FLAW == "session-fail-open":
                    mismatch = session is None or owner != tenant
                else:
                    mismatch = session is None or (session.tenant, session.principal) != tenant
                if mismatch and session is not None and FLAW == "session-oracle":
                    self.reply(403, error(msg.get("id"), -32600, "Session belongs to another tenant"))
                    return
                if mismatch:
                    self.reply(404, error(msg.get("id"), -32600, "Session not found"))
                    return
            if store.over_limit(tenant[0]):
                self.reply(429, error(msg.get("id"), -32029, "rate limited"), [("Retry-After", "1")])
                return
            session.header_tenant = self.headers.get("X-Tenant-Id")
            answer = session.handle(msg)
            if FLAW == "shared-id-table" and msg.get("method") == "tools/call":
                answer = shared_table.route(json.dumps(msg.get("id")), answer)
            if answer is None:
                self.reply(202)
            else:
                self.reply(200, answer, [("Mcp-Session-Id", sid)])

        def do_GET(self):
            if os.environ.get("NOTES_JWT_SESSIONS") != "1":
                self.reply(405, None, [("Allow", "POST, DELETE")])
                return
            tenant = self.guard()
            if tenant is None:
                return
            sid = self.headers.get("Mcp-Session-Id")
            with lock:
                session = sessions.get(sid)
            if session is None or (session.tenant, session.principal) != tenant:
                self.reply(404, error(None, -32600, "Session not found"))
                return
            # A notification stream (it carries only comments here), held while its
            # bearer verifies: judged again every half second.
            bearer = self.headers.get("Authorization", "")[len("Bearer "):]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            started = time.time()
            try:
                while time.time() - started < 120:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    time.sleep(0.5)
                    if session_of_jwt(bearer) is None and FLAW != "stream-unjudged":
                        return
            except OSError:
                return

        def do_DELETE(self):
            tenant = self.guard()
            if tenant is None:
                return
            sid = self.headers.get("Mcp-Session-Id")
            with lock:
                session = sessions.get(sid)
                if session is None or (session.tenant, session.principal) != tenant:
                    self.reply(404, error(None, -32600, "Session not found"))
                    return
                del sessions[sid]
                held[tenant] = held.get(tenant, 1) - 1
            self.reply(204)

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 256

    class OneAtATime(HTTPServer):
        request_queue_size = 256

    (OneAtATime if FLAW == "single-threaded" else Server)(("127.0.0.1", port), Handler).serve_forever()


def main():
    store = Store(os.environ.get("NOTES_DB", ":memory:"))
    if os.environ.get("NOTES_TRANSPORT", "stdio") == "http":
        serve_http(store, int(os.environ["NOTES_PORT"]))
    else:
        serve_stdio(store)


if __name__ == "__main__":
    main()
