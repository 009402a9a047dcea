#!/usr/bin/env bash
# Coverage-guided fuzzing of gregor's targets with cargo-fuzz and libFuzzer (AddressSanitizer).
#
#   fuzz/run.sh [SECONDS_PER_TARGET (default 60)] [TARGET ...]   targets: frame decode batch dispatch
#
# Needs the nightly toolchain (rustup toolchain install nightly) and cargo-fuzz (installed from
# crates.io when missing). Seeds come from the frames captured from real clients (tests/golden);
# the corpus grows in fuzz/corpus/<target>/, crashes land in fuzz/artifacts/<target>/ (copy the
# input to fuzz/regressions/<target>/ once fixed: tests/fuzz_replay.rs replays it on every run).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(frame decode batch dispatch)
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
cargo +nightly fuzz build -O
"$HERE/target/x86_64-unknown-linux-gnu/release/seeds" tests/golden "$HERE/corpus"
failed=()
for t in "${TARGETS[@]}"; do
  echo "== $t: ${SECONDS_PER_TARGET}s"
  set +e
  cargo +nightly fuzz run -O "$t" "$HERE/corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -rss_limit_mb=4096 -timeout=30 \
    2>&1 | grep -E '^(#[0-9]+[[:space:]]+DONE|stat::|==[0-9]+==|SUMMARY|thread .* panicked|Done |Test unit written)'
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" -eq 0 ] || failed+=("$t")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found failures in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
