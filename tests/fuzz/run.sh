#!/usr/bin/env bash
# Runs one fuzz target for a bounded time:
#   tests/fuzz/run.sh TARGET SECONDS [libFuzzer options...]
# TARGET: mllp_decoder, hl7_parse, ack_builder, escape_roundtrip (or `all`,
# each for SECONDS). The committed seeds (tests/fuzz/seeds/TARGET) are read;
# the corpus the fuzzer grows and any crash it finds go under the target
# directory (CARGO_TARGET_DIR, else tests/fuzz/target), never into the tree.
# A crash fails the run (exit code 1) and prints the input's path; turn it
# into a regression test before fixing it.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`; .ci/run installs
# it). cargo fuzz uses nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets
# the stable toolchain accept them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="${1:?usage: run.sh TARGET SECONDS [libFuzzer options...]}"
seconds="${2:?usage: run.sh TARGET SECONDS [libFuzzer options...]}"
shift 2
if [ "$target" = all ]; then
    for t in mllp_decoder hl7_parse ack_builder escape_roundtrip; do
        "$0" "$t" "$seconds" "$@"
    done
    exit 0
fi
export RUSTC_BOOTSTRAP=1
out="${CARGO_TARGET_DIR:-$here/target}/fuzz"
mkdir -p "$out/corpus/$target" "$out/artifacts/$target"
cd "$here"
# The fuzz crate's own target directory, so its instrumented build never
# invalidates the engine's.
export CARGO_TARGET_DIR="$out/build"
cargo fuzz run --fuzz-dir "$here" --release --debug-assertions "$target" "$out/corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="$out/artifacts/$target/" -print_final_stats=1 "$@"
