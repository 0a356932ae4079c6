#!/usr/bin/env bash
# The example targets as CI runs them: each must pass the kit clean (its SDK's T0
# defaults listed in its expected-failures file), and with its one defect switched on
# the check of that defect must fail on the property — not on a crash or a refusal of
# the harness's steps. Installs each example's SDK into the cache on first use (Python
# venv + pip, npm). Run from anywhere: bash conformance/targets/examples/check.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
cd "$root"
cargo build --quiet -p mcp-tenancy
kit="${CARGO_TARGET_DIR:-$root/target}/debug/mcp-tenancy"
out="${CARGO_TARGET_DIR:-$root/target}/examples-report"

clean() { # example
  local dir="$here/$1" expected=()
  [ -f "$dir/expected-failures.toml" ] && expected=(--expected-failures "$dir/expected-failures.toml")
  echo "== $1: clean"
  "$kit" run "$dir/profile.toml" "${expected[@]}" --quiet --out "$out/$1"
}

defect() { # example, VAR=value, check id
  local dir="$here/$1"
  echo "== $1: $2 must fail $3"
  if env "$2" "$kit" run "$dir/profile.toml" --only "$3" --quiet --out "$out/$1-defect"; then
    echo "$1 with $2 passed $3: the defect was not caught" >&2
    exit 1
  fi
  python3 - "$out/$1-defect/report.json" "$3" <<'PY'
import json, sys
report, check = json.load(open(sys.argv[1])), sys.argv[2]
c = next(c for c in report["checks"] if c["id"] == check)
found = [d for d in c["details"] if d["outcome"] == "fail" and "obstacle" not in d]
if not found:
    sys.exit(f"{check} failed, but not on its property: {c.get('errorMessage')}")
print(f"caught: {check} {found[0]['case']}")
PY
}

clean python-http
defect python-http NOTES_DEFECT=list-only T6.1
clean typescript-stdio
defect typescript-stdio NOTES_DEFECT=scope-ignored T2.3
