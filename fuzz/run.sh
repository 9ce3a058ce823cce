#!/bin/sh
# Runs the fuzz targets for a bounded time each, on the stable toolchain:
#   fuzz/run.sh [SECONDS [TARGET...]]      (default: 60 s, every target)
# Needs `cargo install cargo-fuzz`. RUSTC_BOOTSTRAP=1 lets stable take the nightly flags
# cargo-fuzz passes; `--sanitizer none` because stable ships no sanitizer runtime.
# New inputs go to fuzz/corpus/TARGET (not committed); fuzz/seeds/TARGET is only read.
set -eu
cd "$(dirname "$0")/.."
secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-source_plain source_json source_detect config}
for t in $targets; do
    mkdir -p "fuzz/corpus/$t"
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" \
        --sanitizer none -- -max_total_time="$secs"
done
