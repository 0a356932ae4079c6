#!/usr/bin/env bash
# Starts the example server (server.mjs) on the official TypeScript SDK over stdio,
# installing the pinned SDK (and zod, its peer dependency) into a cache on first use.
# `run.sh --install` only installs. Needs Node.js >= 20 and npm.
# Cache: ${XDG_CACHE_HOME:-~/.cache}/mcp-tenancy/ts-sdk-<version>.
set -euo pipefail
version="1.32.2"
zod="4.6.7"
here="$(cd "$(dirname "$0")" && pwd -P)"
cache="${MCP_TENANCY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-tenancy}/ts-sdk-$version"
if [ ! -f "$cache/node_modules/@modelcontextprotocol/sdk/package.json" ]; then
  # Install beside the cache and rename it into place (rename(2) is atomic and fails on
  # an existing cache): servers started at once never see a half-installed SDK.
  mkdir -p "$(dirname "$cache")"
  tmp="$(mktemp -d "$cache.XXXXXX")"
  npm install --silent --no-audit --no-fund --prefix "$tmp" \
    "@modelcontextprotocol/sdk@$version" "zod@$zod" >&2
  node -e 'try { require("fs").renameSync(process.argv[1], process.argv[2]) } catch {}' "$tmp" "$cache"
  rm -rf "$tmp"
fi
if [ "${1:-}" = "--install" ]; then exit 0; fi
# ESM resolves `import ... from "@modelcontextprotocol/sdk/..."` from the importing file's
# own directory, and NODE_PATH does not apply to ESM. So server.mjs is started through a
# symlink inside the cache, with --preserve-symlinks-main: its plain package imports then
# resolve from the cache's node_modules, and the file itself stays here (edits apply at
# once). The link's name is derived from this directory, so checkouts sharing one cache
# do not collide; it is replaced by an atomic rename.
link="$cache/entry-$(printf %s "$here" | cksum | cut -d' ' -f1).mjs"
if [ "$(readlink "$link" 2>/dev/null || true)" != "$here/server.mjs" ]; then
  ln -sf "$here/server.mjs" "$link.$$"
  mv -f "$link.$$" "$link"
fi
export NOTES_TOKEN_SECRET_FILE="${NOTES_TOKEN_SECRET_FILE:-$here/secret.key}"
exec node --preserve-symlinks-main "$link" "$@"
