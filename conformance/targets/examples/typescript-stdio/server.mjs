// A small multi-tenant notes-and-billing MCP server on the official TypeScript SDK, over
// stdio. One process serves one session of one tenant:
//
//   - the tenant comes from the API key in NOTES_API_KEY at launch;
//   - every tools/call carries an HS256 call token in _meta["example.com/token"] that
//     names the tenant (org), the principal (sub) and a space-separated scope;
//   - writes need an idempotency key in _meta["example.com/idempotency-key"];
//   - a call token is single-use: its digest goes into the tenant's log, and a second
//     presentation, in this process or any other, is refused;
//   - records live in one append-only JSON-lines file per tenant under NOTES_DATA_DIR
//     (shared by every process of the tenant), or in memory without it.
//
// Start it with run.sh (which installs the SDK). NOTES_DEFECT=scope-ignored plants a
// defect for the conformance kit to find: the token's scope is not checked.

import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { JSONRPCMessageSchema } from "@modelcontextprotocol/sdk/types.js";
import { createHash, createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { Transform } from "node:stream";
import * as z from "zod";

// ---------------------------------------------------------------------------------
// Configuration: tenants, principals and what each tool needs.

const ISSUER = "https://auth.example.test";
const AUDIENCE = "notes-ts";
const KEY_ID = "ts-1";
const TOKEN_META = "example.com/token";
const IDEMPOTENCY_META = "example.com/idempotency-key";
const SKEW_SECS = 5;
const MAX_LIFETIME_SECS = 300;

const API_KEYS = { "acme-ts-key": "acme", "globex-ts-key": "globex" };

const TENANTS = {
  acme: {
    tools: ["notes_create", "notes_list", "notes_get", "charge", "charges_list"],
    principals: {
      alice: ["notes_create", "notes_list", "notes_get"],
      bob: ["notes_create", "notes_list", "notes_get", "charge", "charges_list"],
    },
  },
  globex: {
    tools: ["notes_create", "notes_list", "notes_get", "export"],
    principals: {
      gina: ["notes_create", "notes_list", "notes_get", "export"],
    },
  },
};

// The scope item a token must carry for each tool.
const ACTIONS = {
  notes_create: "notes:write",
  notes_list: "notes:read",
  notes_get: "notes:read",
  charge: "billing:charge",
  charges_list: "billing:read",
  export: "admin:export",
};

const log = (...args) => console.error("[notes-ts]", ...args); // stdout is the MCP channel

function fatal(message) {
  log(message);
  process.exit(2);
}

// The API key names the tenant; compared by digest in constant time.
function tenantOf(apiKey) {
  const digest = (s) => createHash("sha256").update(s).digest();
  const given = digest(apiKey ?? "");
  for (const [key, tenant] of Object.entries(API_KEYS)) {
    if (timingSafeEqual(given, digest(key))) return tenant;
  }
  return null;
}

const TENANT = tenantOf(process.env.NOTES_API_KEY);
if (!TENANT) fatal("NOTES_API_KEY is missing or unknown: refusing to start");

const secretFile = process.env.NOTES_TOKEN_SECRET_FILE;
if (!secretFile) fatal("NOTES_TOKEN_SECRET_FILE is not set (run.sh sets it)");
const SECRET = Buffer.from(fs.readFileSync(secretFile, "utf8").trim(), "base64url");
if (SECRET.length < 32) fatal(`${secretFile}: the HMAC secret must be at least 32 bytes`);

const SCOPE_IGNORED = process.env.NOTES_DEFECT === "scope-ignored";
if (SCOPE_IGNORED) log("DEFECT scope-ignored: call tokens' scope is not checked");

// ---------------------------------------------------------------------------------
// Call tokens: compact HS256 JWS, verified strictly. Every reason a token is bad gets
// the same refusal; the reason goes to stderr only.

class Refusal extends Error {}

const UNAUTHORIZED = "Unauthorized: a valid call token is required";
const FORBIDDEN = "Forbidden: the call token does not permit this call";

// Decodes canonical base64url only: no padding, no characters outside the URL-safe
// alphabet, no stray bits — a token has exactly one spelling.
function b64urlDecode(segment) {
  if (!/^[A-Za-z0-9_-]+$/.test(segment)) return null;
  const bytes = Buffer.from(segment, "base64url");
  return bytes.toString("base64url") === segment ? bytes : null;
}

function jsonObject(bytes) {
  try {
    const value = JSON.parse(bytes.toString("utf8"));
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

const isTime = (v) => Number.isSafeInteger(v) && v >= 0;

// Returns the token's claims, or a reason it is not valid for this process.
function verifyToken(token) {
  if (typeof token !== "string" || token.length > 4096) return { why: "no token" };
  const parts = token.split(".");
  if (parts.length !== 3) return { why: "not a compact JWS" };
  const [h, p, s] = parts;
  const headerBytes = b64urlDecode(h);
  const payloadBytes = b64urlDecode(p);
  const signature = b64urlDecode(s);
  if (!headerBytes || !payloadBytes || !signature) return { why: "non-canonical base64url" };
  const header = jsonObject(headerBytes);
  if (!header) return { why: "header is not a JSON object" };
  if (header.alg !== "HS256") return { why: `alg ${JSON.stringify(header.alg)}` };
  if (header.kid !== KEY_ID) return { why: `kid ${JSON.stringify(header.kid)}` };
  if (header.typ !== undefined && header.typ !== "JWT") return { why: "typ" };
  if (header.crit !== undefined) return { why: "crit" };
  const expected = createHmac("sha256", SECRET).update(`${h}.${p}`).digest();
  if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
    return { why: "bad signature" };
  }
  const claims = jsonObject(payloadBytes);
  if (!claims) return { why: "payload is not a JSON object" };
  const now = Math.floor(Date.now() / 1000);
  const { iss, aud, exp, iat, nbf, org, sub, scope } = claims;
  if (iss !== ISSUER) return { why: "iss" };
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(AUDIENCE)) return { why: "aud" };
  if (!isTime(exp) || !isTime(iat)) return { why: "exp/iat missing" };
  if (now > exp + SKEW_SECS) return { why: "expired" };
  if (iat > now + SKEW_SECS) return { why: "iat in the future" };
  if (exp <= iat || exp - iat > MAX_LIFETIME_SECS) return { why: "lifetime" };
  if (nbf !== undefined && (!isTime(nbf) || nbf > now + SKEW_SECS)) return { why: "nbf" };
  if (claims.jti !== undefined && typeof claims.jti !== "string") return { why: "jti" };
  if (org !== TENANT) return { why: `org ${JSON.stringify(org)}` };
  if (typeof sub !== "string" || !Object.hasOwn(TENANTS[TENANT].principals, sub)) {
    return { why: `sub ${JSON.stringify(sub)} is not a principal of ${TENANT}` };
  }
  if (typeof scope !== "string") return { why: "scope" };
  return { claims };
}

// Authorises one call of `tool`: a valid token, a scope carrying the tool's action, a
// principal entitled to the tool. Throws a Refusal otherwise.
function authorize(tool, meta) {
  const { claims, why } = verifyToken(meta?.[TOKEN_META]);
  if (!claims) {
    log(`${tool}: token refused (${why})`);
    throw new Refusal(UNAUTHORIZED);
  }
  const scopes = claims.scope.split(" ").filter(Boolean);
  if (!SCOPE_IGNORED && !scopes.includes(ACTIONS[tool])) {
    log(`${tool}: scope ${JSON.stringify(claims.scope)} lacks ${ACTIONS[tool]}`);
    throw new Refusal(FORBIDDEN);
  }
  if (!TENANTS[TENANT].principals[claims.sub].includes(tool)) {
    log(`${tool}: principal ${claims.sub} is not entitled`);
    throw new Refusal(FORBIDDEN);
  }
  if (!spend(meta[TOKEN_META])) {
    log(`${tool}: token already used`);
    throw new Refusal(UNAUTHORIZED);
  }
  return claims;
}

// Records a call token as used in the tenant's log; false if it was, here or in another
// process (the first line with the token's key wins a race, as for idempotency keys).
function spend(token) {
  const key = `token:${createHash("sha256").update(token).digest("hex")}`;
  const first = () => store.entries().find((e) => e.key === key);
  if (first()) return false;
  const mine = randomUUID();
  store.append({ kind: "token", key, fp: mine });
  return first().fp === mine;
}

// A tenant_id argument is a label to check, never a selector.
function sameTenant(args) {
  if (args.tenant_id !== undefined && args.tenant_id !== TENANT) {
    throw new Refusal("Forbidden: tenant_id does not name this session's tenant");
  }
}

// ---------------------------------------------------------------------------------
// State: an append-only log per tenant. Each write is one line appended with O_APPEND
// (whole lines from several processes never interleave on a local filesystem); a line
// cut short by a crash is skipped. The first line with a given idempotency key is the
// write; any later line with that key (a lost race between two processes) is ignored.

class Log {
  constructor(dir, tenant) {
    this.file = dir ? path.join(dir, `${tenant}.jsonl`) : null;
    this.memory = [];
    if (this.file) fs.mkdirSync(dir, { recursive: true });
  }

  entries() {
    if (!this.file) return this.memory;
    let text = "";
    try {
      text = fs.readFileSync(this.file, "utf8");
    } catch (e) {
      if (e.code !== "ENOENT") throw e;
    }
    const out = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line));
      } catch {
        // a torn line: never completed, so never acknowledged
      }
    }
    return out;
  }

  append(entry) {
    if (!this.file) return void this.memory.push(entry);
    // The leading newline ends a line a crashed writer may have left unfinished.
    fs.appendFileSync(this.file, `\n${JSON.stringify(entry)}\n`);
  }

  // The committed records: the first entry of each idempotency key.
  records(kind) {
    const seen = new Set();
    return this.entries().filter((e) => {
      if (seen.has(e.key)) return false;
      seen.add(e.key);
      return e.kind === kind;
    });
  }

  // Writes `entry` once per key: a replay with the same fingerprint returns the first
  // entry, one with other arguments is a conflict.
  writeOnce(entry) {
    const first = () => this.entries().find((e) => e.key === entry.key);
    let winner = first();
    if (!winner) {
      this.append(entry);
      winner = first();
    }
    if (winner.fp !== entry.fp) {
      throw new Refusal("Conflict: this idempotency key was used with other arguments");
    }
    return winner;
  }
}

const store = new Log(process.env.NOTES_DATA_DIR, TENANT);

function idempotencyKey(meta) {
  const key = meta?.[IDEMPOTENCY_META];
  if (typeof key !== "string" || !/^[\x21-\x7e]{1,200}$/.test(key)) {
    throw new Refusal(`Bad request: writes need an idempotency key in _meta["${IDEMPOTENCY_META}"]`);
  }
  return key;
}

// The arguments' fingerprint, tenant_id aside (it can only name this tenant).
function fingerprint(tool, args) {
  const { tenant_id: _, ...rest } = args;
  const sorted = Object.fromEntries(Object.entries(rest).sort(([a], [b]) => (a < b ? -1 : 1)));
  return createHash("sha256").update(JSON.stringify([tool, sorted])).digest("base64url");
}

// ---------------------------------------------------------------------------------
// Tools. Only the tenant's tools are registered, so a tool of another tenant is
// exactly as unknown as a tool that does not exist.

const reply = (data) => ({
  content: [{ type: "text", text: JSON.stringify(data) }],
  structuredContent: data,
});

const refused = (message) => ({ content: [{ type: "text", text: message }], isError: true });

const tenantId = z.string().max(64).optional();
const note = z.object({ id: z.string(), title: z.string() });
const charge = z.object({ id: z.string(), amount_cents: z.number().int() });

const TOOLS = {
  notes_create: {
    title: "Create a note",
    description: "Creates a note in your workspace.",
    inputSchema: z.object({ title: z.string().min(1).max(200), tenant_id: tenantId }).strict(),
    outputSchema: note,
    run(args, meta) {
      const e = store.writeOnce({
        kind: "note",
        id: randomUUID(),
        title: args.title,
        key: idempotencyKey(meta),
        fp: fingerprint("notes_create", args),
      });
      return { id: e.id, title: e.title };
    },
  },
  notes_list: {
    title: "List notes",
    description: "Lists the notes in your workspace.",
    inputSchema: z.object({ tenant_id: tenantId }).strict(),
    outputSchema: z.object({ notes: z.array(note) }),
    run: () => ({ notes: store.records("note").map(({ id, title }) => ({ id, title })) }),
  },
  notes_get: {
    title: "Get a note",
    description: "Reads one note by its id.",
    inputSchema: z.object({ id: z.string().min(1).max(100), tenant_id: tenantId }).strict(),
    outputSchema: note,
    run(args) {
      const found = store.records("note").find((n) => n.id === args.id);
      if (!found) throw new Refusal("Not found: no such note");
      return { id: found.id, title: found.title };
    },
  },
  charge: {
    title: "Book a charge",
    description: "Books a charge, in cents, to your account.",
    inputSchema: z.object({ amount_cents: z.number().int().min(1).max(100_000_000) }).strict(),
    outputSchema: charge,
    run(args, meta) {
      const e = store.writeOnce({
        kind: "charge",
        id: randomUUID(),
        amount_cents: args.amount_cents,
        key: idempotencyKey(meta),
        fp: fingerprint("charge", args),
      });
      return { id: e.id, amount_cents: e.amount_cents };
    },
  },
  charges_list: {
    title: "List charges",
    description: "Lists the charges booked to your account.",
    inputSchema: z.object({}).strict(),
    outputSchema: z.object({ charges: z.array(charge) }),
    run: () => ({
      charges: store.records("charge").map(({ id, amount_cents }) => ({ id, amount_cents })),
    }),
  },
  export: {
    title: "Export",
    description: "Exports every note of your workspace.",
    inputSchema: z.object({}).strict(),
    outputSchema: z.object({ tenant: z.string(), notes: z.array(note) }),
    run: () => ({
      tenant: TENANT,
      notes: store.records("note").map(({ id, title }) => ({ id, title })),
    }),
  },
};

const server = new McpServer(
  { name: "notes-ts", version: "1.0.0" },
  { maxToolInputElements: 1000 },
);

for (const name of TENANTS[TENANT].tools) {
  const { run, ...config } = TOOLS[name];
  server.registerTool(name, config, async (args, extra) => {
    try {
      authorize(name, extra._meta);
      sameTenant(args);
      return reply(run(args, extra._meta));
    } catch (e) {
      if (e instanceof Refusal) return refused(e.message);
      log(`${name}: ${e.stack ?? e}`);
      return refused("Internal error");
    }
  });
}

// ---------------------------------------------------------------------------------
// stdin guard. The SDK's stdio transport drops a line it cannot parse without an
// answer, and a client then waits for nothing. This guard passes every JSON-RPC
// message on unchanged and answers the rest itself: -32700 for a line that is not
// UTF-8 JSON, -32600 for JSON that is not one JSON-RPC message (a batch, which MCP no
// longer has, included) and for a line over MAX_LINE_BYTES (skipped unbuffered).

const MAX_LINE_BYTES = 1024 * 1024;

function guard(send) {
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  const answer = (code, message) =>
    send(`${JSON.stringify({ jsonrpc: "2.0", id: null, error: { code, message } })}\n`);
  let parts = []; // the current line so far
  let size = 0;
  let skipping = false; // inside a line already refused as too large

  function judge(line) {
    let message;
    try {
      const text = utf8.decode(line);
      if (!text.trim()) return false;
      message = JSON.parse(text);
    } catch {
      answer(-32700, "Parse error");
      return false;
    }
    if (!JSONRPCMessageSchema.safeParse(message).success) {
      answer(-32600, Array.isArray(message) ? "Invalid Request: batches are not supported" : "Invalid Request");
      return false;
    }
    return true;
  }

  function take(piece) {
    if (skipping) return;
    size += piece.length;
    if (size > MAX_LINE_BYTES) {
      answer(-32600, `Invalid Request: a message is limited to ${MAX_LINE_BYTES} bytes`);
      parts = [];
      skipping = true;
    } else if (piece.length) {
      parts.push(piece);
    }
  }

  return new Transform({
    transform(chunk, _encoding, done) {
      let start = 0;
      let at;
      while ((at = chunk.indexOf(0x0a, start)) !== -1) {
        take(chunk.subarray(start, at));
        start = at + 1;
        const line = Buffer.concat(parts);
        const refused = skipping;
        parts = [];
        size = 0;
        skipping = false;
        if (!refused && judge(line)) this.push(Buffer.concat([line, Buffer.from("\n")]));
      }
      take(chunk.subarray(start));
      done();
    },
  });
}

const input = process.stdin.pipe(guard((text) => process.stdout.write(text)));
await server.connect(new StdioServerTransport(input, process.stdout));
log(`serving tenant ${TENANT}${process.env.NOTES_DATA_DIR ? ` (data in ${process.env.NOTES_DATA_DIR})` : " (in memory)"}`);
