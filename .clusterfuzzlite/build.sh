#!/bin/bash -eu
# Builds every cargo-fuzz target of fuzz/ (as `cargo fuzz list` names them) with the
# same flags, and puts each binary and its seed corpus in $OUT. Run by ClusterFuzzLite
# (and OSS-Fuzz) in the Dockerfile's image; runs outside it too:
#   SRC=$PWD/.. OUT=/tmp/cflite-out bash .clusterfuzzlite/build.sh
# The sanitizer comes from $SANITIZER (address by default, as on the service).
cd "$SRC/mcp-tenancy/fuzz"
sanitizer="${SANITIZER:-address}"
targets=$(cargo fuzz list)
[ -n "$targets" ] || { echo "no fuzz targets" >&2; exit 1; }
# -O: optimised with debug assertions kept (cargo fuzz's default), one sanitizer for all.
cargo fuzz build -O --sanitizer "$sanitizer"
triple=$(rustc -vV | sed -n 's/^host: //p')
mkdir -p "$OUT"
for t in $targets; do
    cp "target/$triple/release/$t" "$OUT/$t"
    if [ -d "seeds/$t" ]; then
        (cd "seeds/$t" && zip -q -r "$OUT/${t}_seed_corpus.zip" .)
    fi
    echo "built $t"
done
