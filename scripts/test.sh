#!/usr/bin/env bash
# Installs everything the suite needs and runs every quality gate, the whole test suite and
# the benchmark gates. This is exactly what CI runs (.ci/run).
set -euo pipefail
. "$(dirname "$0")/setup.sh"
start=$SECONDS

ensure_redis_server
ensure_venv dev

log "ruff"
ruff check python tests benches
ruff format --check python tests benches

log "mypy"
mypy python/cif
python -m mypy.stubtest cif._core

log "cargo fmt / clippy / test"
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace

log "pytest"
python -m pytest tests -q

log "benchmark gates (release build; ratios measured in the same run)"
python -m pytest benches -q --benchmark-only --benchmark-columns=mean,ops,rounds

log "all checks passed in $((SECONDS - start)) s"
