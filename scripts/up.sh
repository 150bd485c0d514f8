#!/usr/bin/env bash
# THE run command: installs what is missing, starts Docker, builds Berth in
# release mode and runs `berth up` (arguments are passed through, e.g.
# `bash scripts/up.sh --listen 127.0.0.1:4566`).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh
quiet_colors_on_ci

banner "set-up: system packages, Docker, Rust"
ensure_build_tools
ensure_docker
ensure_cargo

# Only the berth binary (and what it links) is needed in release.
banner "cargo build --release -p berth"
cargo build --release -p berth

TARGET_DIR="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
banner "berth up $*"
exec "$TARGET_DIR/release/berth" up "$@"
