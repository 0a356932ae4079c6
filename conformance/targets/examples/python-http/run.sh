#!/usr/bin/env bash
# Starts the example server on the official Python SDK (mcp 2.3.0, pinned), installing the
# SDK into a virtual environment in a cache directory on first use. Arguments are passed
# on: `run.sh --port 8000`. Needs Python >= 3.10 with venv.
# Cache: ${XDG_CACHE_HOME:-~/.cache}/mcp-tenancy/python-mcp-<version>.
set -euo pipefail
version="2.3.0"
cache="${MCP_TENANCY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-tenancy}/python-mcp-$version"
if [ ! -x "$cache/bin/python" ] || ! "$cache/bin/python" -c "import mcp" 2>/dev/null; then
  python3 -m venv "$cache" >&2
  "$cache/bin/pip" install --quiet --disable-pip-version-check "mcp==$version" >&2
fi
exec "$cache/bin/python" "$(dirname "$0")/server.py" "$@"
