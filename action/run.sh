#!/usr/bin/env bash
# The GitHub Action's steps (action.yml), runnable anywhere: install the kit if needed,
# run it against a target profile, write the Markdown summary to the job summary, and
# hand the kit's exit code back. Locally:
#
#   MCP_TENANCY_PROFILE=my-server.toml bash action/run.sh install run
#
# Environment (the action's inputs):
#   MCP_TENANCY_PROFILE            the target profile (required for `run`)
#   MCP_TENANCY_ONLY               --only SPEC (optional)
#   MCP_TENANCY_EXPECTED_FAILURES  --expected-failures FILE (optional)
#   MCP_TENANCY_OUT                the report directory (default mcp-tenancy-report)
#   MCP_TENANCY_ROOT               where the CLI is installed (default ~/.cache/mcp-tenancy/kit)
#   MCP_TENANCY_CLI                a CLI already built (e.g. target/debug/mcp-tenancy): used as
#                                  it is, `install` does nothing (this repository's CI)
#   GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, GITHUB_PATH   set by GitHub; ignored when unset
#
# Steps (in the order given):
#   install   cargo install --locked --path <this repository>/harness into MCP_TENANCY_ROOT,
#             unless the CLI there is already this version
#   run       run the suite; prints the exit code as `exit-code=N` to GITHUB_OUTPUT and
#             returns 0, so that the reports can be published before the job fails
#   finish    exit with the code `run` recorded (MCP_TENANCY_EXIT_CODE)
set -euo pipefail
kit="$(cd "$(dirname "$0")/.." && pwd)"
root="${MCP_TENANCY_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/mcp-tenancy/kit}"
out="${MCP_TENANCY_OUT:-mcp-tenancy-report}"
cli="${MCP_TENANCY_CLI:-$root/bin/mcp-tenancy}"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$kit/Cargo.toml" | head -n 1)"

note() { echo "mcp-tenancy action: $*" >&2; }

install() {
    if [[ -n "${MCP_TENANCY_CLI:-}" ]]; then
        [[ -x "$cli" ]] || {
            note "MCP_TENANCY_CLI=$cli is not an executable"
            exit 2
        }
        note "using the CLI at $cli"
        return 0
    fi
    if [[ -x "$cli" ]] && [[ "$("$cli" --version 2> /dev/null)" == "mcp-tenancy $version" ]]; then
        note "the CLI $version is installed in $root"
    else
        command -v cargo > /dev/null || {
            note "cargo is not on PATH: install a Rust toolchain first (e.g. dtolnay/rust-toolchain@stable)"
            exit 2
        }
        note "installing the CLI $version into $root (cargo install --locked)"
        cargo install --quiet --locked --path "$kit/harness" --root "$root" --force
    fi
    if [[ -n "${GITHUB_PATH:-}" ]]; then echo "$root/bin" >> "$GITHUB_PATH"; fi
    return 0
}

run() {
    [[ -n "${MCP_TENANCY_PROFILE:-}" ]] || {
        note "no profile: set the action's \`profile\` input (MCP_TENANCY_PROFILE)"
        exit 2
    }
    [[ -x "$cli" ]] || install
    local args=(run "$MCP_TENANCY_PROFILE" --out "$out")
    if [[ -n "${MCP_TENANCY_ONLY:-}" ]]; then args+=(--only "$MCP_TENANCY_ONLY"); fi
    if [[ -n "${MCP_TENANCY_EXPECTED_FAILURES:-}" ]]; then
        args+=(--expected-failures "$MCP_TENANCY_EXPECTED_FAILURES")
    fi
    local code=0
    "$cli" "${args[@]}" || code=$?
    if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
        if [[ -f "$out/summary.md" ]]; then
            cat "$out/summary.md" >> "$GITHUB_STEP_SUMMARY"
        else
            echo "mcp-tenancy wrote no report (exit code $code): see the step's log." >> "$GITHUB_STEP_SUMMARY"
        fi
    fi
    if [[ -n "${GITHUB_OUTPUT:-}" ]]; then echo "exit-code=$code" >> "$GITHUB_OUTPUT"; fi
    note "exit code $code (0: every check passed or failed as expected; 1: a check failed; 2: a usage or profile error)"
    MCP_TENANCY_EXIT_CODE=$code
    return 0
}

finish() {
    if [[ -z "${MCP_TENANCY_EXIT_CODE:-}" ]]; then
        note "the run step recorded no exit code (did it run?)"
        exit 2
    fi
    exit "$MCP_TENANCY_EXIT_CODE"
}

[[ $# -gt 0 ]] || set -- install run finish
for step in "$@"; do
    case "$step" in
        install | run | finish) "$step" ;;
        *)
            note "unknown step $step (install, run, finish)"
            exit 2
            ;;
    esac
done
