#!/usr/bin/env bash
# The end-to-end load runs (benches/README.md): each profile of this directory at the
# concurrency levels below, after a warm-up, then the noisy-neighbour phases — the
# server on one CPU, the load generator on the other. Results: target/load/<name>.json.
#
#   bash benches/load/run.sh                       # every profile, 1,4,16 callers, 5 s each
#   PROFILES="bare-rmcp-http reference-http-hs256" DURATION=10s bash benches/load/run.sh
set -euo pipefail
cd "$(dirname "$0")"
target=${CARGO_TARGET_DIR:-../../target}
cargo build --quiet --release --package mcp-tenancy
out=${OUT:-$target/load}
mkdir -p "$out"
server_cpu=${SERVER_CPU:-0}
load_cpu=${LOAD_CPU:-1}
for p in ${PROFILES:-bare-rmcp-http reference-http-hs256 reference-http-eddsa reference-http-ungated bare-rmcp-stdio reference-stdio-hs256}; do
    echo "== $p"
    # Over stdio every caller is a server process of its own: those are not pinned.
    pin_server=()
    [[ $p == *-http* ]] && pin_server=(--server-pin "$server_cpu")
    "$target/release/mcp-tenancy" load "$p.toml" \
        --concurrency "${CONCURRENCY:-1,4,16}" --duration "${DURATION:-5s}" --warmup "${WARMUP:-2s}" \
        --pin "$load_cpu" "${pin_server[@]}" --out "$out/$p.json"
done
# The Python `mcp` peer when Python is here (python-mcp.sh installs the SDK on first use).
if [[ -z "${PROFILES:-}" ]] && command -v python3 > /dev/null; then
    echo "== python-mcp-http"
    "$target/release/mcp-tenancy" load python-mcp-http.toml \
        --concurrency "${CONCURRENCY:-1,4,16}" --duration "${DURATION:-5s}" --warmup "${WARMUP:-2s}" \
        --pin "$load_cpu" --server-pin "$server_cpu" --out "$out/python-mcp-http.json"
fi
# server-everything (TypeScript SDK, stdio, one process per caller) when Node is here:
# its profile's tenants call different tools, so one tenant and no neighbour phase.
if [[ -z "${PROFILES:-}" ]] && command -v npm > /dev/null; then
    echo "== server-everything-stdio"
    "$target/release/mcp-tenancy" load ../../conformance/targets/server-everything-stdio.toml \
        --tool echo --tenants 1 --flood 0 \
        --concurrency "${CONCURRENCY:-1,4,16}" --duration "${DURATION:-5s}" --warmup "${WARMUP:-2s}" \
        --pin "$load_cpu" --out "$out/server-everything-stdio.json"
fi
