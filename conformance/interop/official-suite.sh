#!/usr/bin/env bash
# Interop run: the official MCP conformance suite (npm @modelcontextprotocol/conformance, pinned
# by package.json + package-lock.json beside this script) against the reference server over
# Streamable HTTP, judged against expected-failures.yaml.
#
# usage: conformance/interop/official-suite.sh [-o OUTDIR]
#
# Environment:
#   OFFICIAL_SUITE_OUT     output dir (default <repo>/target/official-suite; -o wins)
#   OFFICIAL_SUITE_CACHE   install cache (default ${XDG_CACHE_HOME:-$HOME/.cache}/mcp-tenancy/official-suite)
#   OFFICIAL_SUITE_URL     test this already-running server instead of building and starting
#                          the reference server (debugging the script or another server)
#   OFFICIAL_SUITE_BASELINE  expected-failures file (default: expected-failures.yaml beside this)
#   CARGO_TARGET_DIR       respected when locating the built server
#
# Exit status: 0 iff every failing scenario is listed in the baseline and every listed one
# still fails (the suite's own rule), and check-results.mjs agrees from the written results.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

NODE_VERSION=22.23.3          # npm package `node`, used only when the system node is < 22
BASELINE="${OFFICIAL_SUITE_BASELINE:-$HERE/expected-failures.yaml}"
OUT="${OFFICIAL_SUITE_OUT:-$REPO/target/official-suite}"
CACHE="${OFFICIAL_SUITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-tenancy/official-suite}"
SERVER_WAIT_SECS=60

while [[ $# -gt 0 ]]; do
  case "$1" in
    -o | --output-dir) OUT="$2"; shift 2 ;;
    -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) echo "official-suite: unknown argument: $1" >&2; exit 2 ;;
  esac
done

log() { printf 'official-suite: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

command -v npm >/dev/null || die "npm not found (needed to install the pinned suite)"
mkdir -p "$CACHE" "$OUT"
OUT="$(cd "$OUT" && pwd)"

# --- 1. Node >= 22 --------------------------------------------------------------------------
# The suite needs fs.globSync (Node 22+).
NODE=""
if command -v node >/dev/null; then
  sys_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [[ "$sys_major" -ge 22 ]]; then NODE="$(command -v node)"; fi
fi
if [[ -z "$NODE" ]]; then
  node_dir="$CACHE/node-$NODE_VERSION"
  if [[ ! -x "$node_dir/node_modules/node/bin/node" ]] ||
    ! "$node_dir/node_modules/node/bin/node" --version >/dev/null 2>&1; then
    log "installing node@$NODE_VERSION into $node_dir"
    rm -rf "$node_dir.tmp.$$"
    mkdir -p "$node_dir.tmp.$$"
    # Its preinstall script fetches the matching node-<os>-<arch> package from the registry.
    npm install --prefix "$node_dir.tmp.$$" --no-audit --no-fund --no-save --loglevel=error \
      "node@$NODE_VERSION" >&2
    rm -rf "$node_dir"
    mv "$node_dir.tmp.$$" "$node_dir"
  fi
  NODE="$node_dir/node_modules/node/bin/node"
fi
"$NODE" -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 22 ? 0 : 1)' ||
  die "$NODE is not Node >= 22"

# --- 2. The suite, pinned by the lockfile (cache key = its hash) ---------------------------
lock_hash="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -c1-16)"
suite_dir="$CACHE/suite-$lock_hash"
SUITE_JS="$suite_dir/node_modules/@modelcontextprotocol/conformance/dist/index.js"
if [[ ! -f "$suite_dir/.installed" ]]; then
  log "installing the pinned conformance suite into $suite_dir"
  rm -rf "$suite_dir.tmp.$$"
  mkdir -p "$suite_dir.tmp.$$"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$suite_dir.tmp.$$/"
  (cd "$suite_dir.tmp.$$" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  rm -rf "$suite_dir"
  mv "$suite_dir.tmp.$$" "$suite_dir"
  touch "$suite_dir/.installed"
fi
[[ -f "$SUITE_JS" ]] || die "suite not found at $SUITE_JS (remove $suite_dir and retry)"
suite_version="$("$NODE" -p "require('$suite_dir/node_modules/@modelcontextprotocol/conformance/package.json').version")"

# --- 3. Build and start the reference server ------------------------------------------------
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -n "${OFFICIAL_SUITE_URL:-}" ]]; then
  URL="$OFFICIAL_SUITE_URL"
  log "testing the server already running at $URL (OFFICIAL_SUITE_URL)"
else
  # The reference server requires a session bearer on every request and a call token on
  # every tools/call; the suite can send neither. `mcp-tenancy proxy` plays the
  # orchestrator on loopback: it starts the server as reference-http.toml says (auth on,
  # nothing weakened) and adds tenant acme's bearer and, per tools/call, a call token for
  # principal bob. Host and Origin pass through untouched, so DNS-rebinding protection
  # is still the server's own.
  log "building mcp-tenancy and mcp-tenancy-server"
  (cd "$REPO" && cargo build -q -p mcp-tenancy -p mcp-tenancy-server)
  target_dir="${CARGO_TARGET_DIR:-$REPO/target}"
  [[ "$target_dir" = /* ]] || target_dir="$REPO/$target_dir"
  HARNESS="$target_dir/debug/mcp-tenancy"
  [[ -x "$HARNESS" ]] || die "built harness not found at $HARNESS"

  log "starting the server behind mcp-tenancy proxy (log: $OUT/server.log)"
  "$HARNESS" proxy "$REPO/conformance/targets/reference-http.toml" --tenant acme --principal bob \
    >"$OUT/server.log" 2>&1 &
  SERVER_PID=$!

  deadline=$((SECONDS + SERVER_WAIT_SECS))
  URL=""
  until [[ -n "$URL" ]]; do
    URL="$(sed -n 's/^proxy listening on \(http:[^ ]*\).*/\1/p' "$OUT/server.log" | head -n 1)"
    [[ -n "$URL" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 30 "$OUT/server.log" >&2 || true
      die "the proxy exited before listening"
    fi
    if [[ $SECONDS -ge $deadline ]]; then
      tail -n 30 "$OUT/server.log" >&2 || true
      die "the proxy did not listen within ${SERVER_WAIT_SECS}s"
    fi
    sleep 0.2
  done
  log "$(head -n 1 "$OUT/server.log")"
fi

# --- 4. Run the active suite against the baseline -------------------------------------------
RESULTS="$OUT/results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
log "running @modelcontextprotocol/conformance@$suite_version (--suite active) against $URL"
set +e
"$NODE" "$SUITE_JS" server --url "$URL" --suite active \
  --expected-failures "$BASELINE" -o "$RESULTS" >"$OUT/suite.log" 2>&1
suite_rc=$?
set -e

# The per-scenario verdicts and the suite's baseline report (not the per-scenario chatter, nor
# its "Total:" line, which counts checks and ignores the baseline).
sed -n '/^=== SUMMARY ===/,$p' "$OUT/suite.log" | grep -v '^Total: ' || true

if [[ -n "$SERVER_PID" ]] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
  log "warning: the server died during the run (see $OUT/server.log)"
fi

# --- 5. Our own strictness check from the written results -----------------------------------
mapfile -t scenarios < <(sed -n 's/^=== Running scenario: \(.*\) ===$/\1/p' "$OUT/suite.log")
announced="$(sed -n 's/^Running active suite (\([0-9]*\) scenarios).*/\1/p' "$OUT/suite.log")"
check_rc=0
if [[ ${#scenarios[@]} -eq 0 ]]; then
  tail -n 30 "$OUT/suite.log" >&2
  log "the suite ran no scenario (see $OUT/suite.log)"
  check_rc=1
else
  if [[ "$announced" != "${#scenarios[@]}" ]]; then
    log "the suite announced ${announced:-?} scenarios but ran ${#scenarios[@]}"
    check_rc=1
  fi
  echo
  echo "results: $RESULTS/*/checks.json, full log: $OUT/suite.log"
  "$NODE" "$HERE/check-results.mjs" "$suite_dir/node_modules" "$RESULTS" "$BASELINE" \
    "${scenarios[@]}" || check_rc=1
fi

# On success the checker's "official-suite: N passed, N failed, N skipped" stays the last line.
if [[ $suite_rc -ne 0 || $check_rc -ne 0 ]]; then
  log "FAILED (suite exit $suite_rc, result check exit $check_rc)"
  exit 1
fi
