#!/usr/bin/env python3
"""One build for the README's two commands (issue 13): every compilation unit the main
command builds — `cargo run -p mcp-tenancy` and the reference profile's build step
`cargo build -p mcp-tenancy-server` — must be one that the test command
`cargo test --workspace` builds too (same package, target, profile, features, and the
same for every unit below it), so that the second command compiles only what the first
did not. The workspace-hack package (workspace-hack/) is what aligns them.

    python3 .ci/one-build.py          # check; exit 1 listing the units that differ
    python3 .ci/one-build.py --fix    # print the [dependencies] workspace-hack needs

Reads cargo's unit graph (`--unit-graph`, a nightly option; nothing is compiled). Without
a nightly toolchain the check says so and exits 0 — it proves nothing then, and says that.
"""
import json
import shutil
import subprocess
import sys

MAIN = [["build", "-p", "mcp-tenancy"], ["build", "-p", "mcp-tenancy-server"]]
TEST = ["test", "--workspace", "--no-run"]


def unit_graph(args):
    out = subprocess.run(
        ["cargo", "+nightly", *args, "--unit-graph", "-Z", "unstable-options"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        sys.exit(f"one-build: cargo {' '.join(args)} --unit-graph failed:\n{out.stderr}")
    return json.loads(out.stdout)


def identities(graph):
    """Each unit's identity: its own key and, recursively, its dependencies'."""
    units = graph["units"]
    memo = {}

    def ident(i):
        if i not in memo:
            u = units[i]
            own = (
                u["pkg_id"],
                u["target"]["name"],
                tuple(u["target"]["kind"]),
                u["mode"],
                u["platform"],
                json.dumps(u["profile"], sort_keys=True),
                tuple(sorted(u["features"])),
            )
            deps = tuple(sorted(ident(d["index"]) for d in u["dependencies"]))
            memo[i] = hash((own, deps))
        return memo[i]

    return [(units[i], ident(i)) for i in range(len(units))]


def main():
    if shutil.which("cargo") is None or subprocess.run(
        ["cargo", "+nightly", "--version"], capture_output=True
    ).returncode != 0:
        print("one-build: no nightly toolchain here: the unit graphs cannot be compared (not checked)")
        return 0
    test = identities(unit_graph(TEST))
    built = {ident for _, ident in test}
    test_features = {}
    for u, _ in test:
        test_features.setdefault(u["pkg_id"], set()).update(u["features"])
    differ = {}
    for args in MAIN:
        for u, ident in identities(unit_graph(args)):
            if ident in built or u["pkg_id"].startswith("path+"):
                continue
            own = set(u["features"])
            wanted = test_features.get(u["pkg_id"], set())
            if own != wanted:
                differ.setdefault(u["pkg_id"], (own, wanted, " ".join(args)))
    if "--fix" in sys.argv:
        meta = json.loads(
            subprocess.run(
                ["cargo", "metadata", "--format-version", "1"], capture_output=True, text=True, check=True
            ).stdout
        )
        declared = {p["id"]: set(p["features"]) for p in meta["packages"]}
        names = {}
        for pkg in differ:
            names.setdefault(pkg.split("#")[-1].split("@")[0], []).append(pkg)
        for pkg, (own, wanted, _) in sorted(differ.items()):
            name, version = pkg.split("#")[-1].split("@")
            # Only declared features can be asked for (an optional dependency behind
            # `dep:` has none of its own name); "default" is default-features.
            ask = sorted(f for f in wanted if f != "default" and f in declared.get(pkg, wanted))
            feats = ", ".join(f'"{f}"' for f in ask)
            default = "true" if "default" in wanted else "false"
            key = name if len(names[name]) == 1 else f"{name}-{version.split('.')[0]}"
            package = "" if key == name else f'package = "{name}", '
            print(f'{key} = {{ {package}version = "{version}", default-features = {default}, features = [{feats}] }}')
        return 0
    if not differ:
        print("one-build: every unit of the main command is a unit of the test command")
        return 0
    print(f"one-build: {len(differ)} dependencies are built with other features by the main command than by the test command:")
    for pkg, (own, wanted, args) in sorted(differ.items()):
        print(f"  {pkg.split('#')[-1]} (cargo {args}): test adds {sorted(wanted - own)}, main only {sorted(own - wanted)}")
    print("align them in workspace-hack/Cargo.toml (`python3 .ci/one-build.py --fix` prints what it needs)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
