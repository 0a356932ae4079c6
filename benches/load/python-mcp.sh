#!/usr/bin/env bash
# Starts the Python `mcp` peer (python-mcp-server.py) on 127.0.0.1:PORT, installing the
# pinned SDK into a virtual environment in a cache directory on first use. Needs
# Python ≥ 3.10 with venv and pip. Cache: ${XDG_CACHE_HOME:-~/.cache}/mcp-tenancy/python-mcp-<version>.
set -euo pipefail
version="2.3.0"
cache="${MCP_TENANCY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-tenancy}/python-mcp-$version"
if [ ! -x "$cache/bin/python" ] || ! "$cache/bin/python" -c "import mcp.server.mcpserver" 2> /dev/null; then
  python3 -m venv "$cache" >&2
  "$cache/bin/pip" install --quiet --disable-pip-version-check "mcp==$version" >&2
fi
exec "$cache/bin/python" "$(dirname "$0")/python-mcp-server.py" "$@"
