#!/usr/bin/env bash
# Starts @modelcontextprotocol/server-everything (pinned), installing it into a cache
# directory on first use. Arguments are passed on: `server-everything.sh stdio`.
# Needs Node.js ≥ 18 and npm. Cache: ${XDG_CACHE_HOME:-~/.cache}/mcp-tenancy/server-everything.
set -euo pipefail
version="2026.8.31"
cache="${MCP_TENANCY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-tenancy}/server-everything-$version"
entry="$cache/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
if [ ! -f "$entry" ]; then
  mkdir -p "$cache"
  npm install --silent --no-audit --no-fund --prefix "$cache" \
    "@modelcontextprotocol/server-everything@$version" >&2
fi
exec node "$entry" "$@"
