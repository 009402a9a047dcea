#!/usr/bin/env bash
# The whole test suite, from a fresh clone: builds gregor once (release), runs the Rust tests
# against that build profile, then installs the compat-test dependencies from the package
# registries (PyPI, Maven Central, the Go module proxy) and runs the compat suite against the built
# binary, then the benchmark harness's quick mode.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
cargo build --release --locked
cargo test --release --locked
export GREGOR_BIN="$ROOT/target/release/gregor"
"$ROOT/compat-tests/run.sh" "$@"
# The benchmark harness in its quick form (tiny counts, no speed assertions) so it never rots.
"$ROOT/compat-tests/bench/run.sh" --quick
