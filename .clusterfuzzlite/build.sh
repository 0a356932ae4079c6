#!/bin/bash -eu
# Builds every cargo-fuzz target of fuzz/ (as `cargo fuzz list` names them) with the
# same flags, and puts each binary and its seed corpus in $OUT. Run by ClusterFuzzLite
# (and OSS-Fuzz) in the Dockerfile's image; runs outside it too:
#   SRC=/tmp/src OUT=/tmp/cflite-out RUSTUP_TOOLCHAIN=nightly bash .clusterfuzzlite/build.sh
# (with $SRC/mcp-tenancy the repository; the service's image has nightly as its default
# toolchain, a machine with stable as default needs RUSTUP_TOOLCHAIN=nightly). The
# sanitizer comes from $SANITIZER (address by default, as on the service).
set -euo pipefail
cd "$SRC/mcp-tenancy/fuzz"
sanitizer="${SANITIZER:-address}"
targets=$(cargo fuzz list)
[ -n "$targets" ] || { echo "no fuzz targets" >&2; exit 1; }
stamp=$(mktemp)
# -O: optimised (cargo fuzz's default), one sanitizer for all targets.
cargo fuzz build -O --sanitizer "$sanitizer"
triple=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p "$OUT"
for t in $targets; do
    # Only what this build made: a binary older than the build started is stale.
    [ "target/$triple/release/$t" -nt "$stamp" ] || { echo "$t was not rebuilt" >&2; exit 1; }
    cp "target/$triple/release/$t" "$OUT/$t"
    if [ -d "seeds/$t" ]; then
        (cd "seeds/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
    fi
    echo "built $t"
done
