#!/usr/bin/env bash
# Lints the GitHub workflows and the composite action (action.yml), installing the
# linters itself into a cached virtual environment (needs Python ≥ 3.10 and PyPI):
#   check-jsonschema  every file against the GitHub workflow / action schemas (SchemaStore,
#                     vendored in the package: no network at check time)
#   zizmor            the GitHub Actions linter: expressions, injection, permissions,
#                     credentials, triggers (offline audits)
# actionlint itself ships only as a Go binary fetched from GitHub, which this project's
# machines cannot reach; these two cover its schema and expression checks.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MCP_TENANCY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-tenancy}/workflow-linters-1"
if ! "$venv/bin/zizmor" --version > /dev/null 2>&1 || ! "$venv/bin/check-jsonschema" --version > /dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "check-jsonschema==0.39.0" "zizmor==1.33.1"
fi
workflows=(.github/workflows/*.yml)
echo "check-jsonschema: ${workflows[*]} action.yml"
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
"$venv/bin/check-jsonschema" --builtin-schema vendor.github-actions action.yml
echo "zizmor: ${workflows[*]} action.yml"
"$venv/bin/zizmor" --offline --no-progress "${workflows[@]}" action.yml
