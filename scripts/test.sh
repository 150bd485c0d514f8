#!/usr/bin/env bash
# THE test command. Non-interactive and idempotent; works as root on a fresh
# Debian/Ubuntu machine: installs what is missing, starts Docker, then runs
# rustfmt, clippy, the release build, the Rust tests and the Python AWS
# compatibility suite (boto3 + AWS CLI v1 against the real binary).
# Exits non-zero on the first failure. Expect ~10-20 min on 2 cores from cold.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh
quiet_colors_on_ci

banner "set-up: system packages, Docker, Rust, Python venv"
ensure_build_tools
ensure_test_tools
ensure_docker
ensure_cargo
ensure_venv

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
export BERTH_BIN="${BERTH_BIN:-$TARGET_DIR/release/berth}"
report_disk "$TARGET_DIR" "${TMPDIR:-/tmp}"

banner "cargo fmt --all -- --check"
cargo fmt --all -- --check

banner "cargo clippy --workspace --all-targets -- -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

# Only the berth binary (and what it links) is needed in release.
banner "cargo build --release -p berth"
cargo build --release -p berth

banner "cargo test --workspace"
cargo test --workspace

banner "pyflakes tests/compat"
"$VENV_DIR/bin/python" -m pyflakes tests/compat

banner "pytest tests/compat (BERTH_BIN=$BERTH_BIN)"
pytest_args=(-q)
if [ "${CI:-}" = "true" ]; then
    pytest_args+=(--color=no)
fi
"$VENV_DIR/bin/python" -m pytest "${pytest_args[@]}" tests/compat

banner "all checks passed"
