# shellcheck shell=bash
# Shared set-up for scripts/test.sh and scripts/up.sh: install what is missing on
# a fresh Debian/Ubuntu machine, start Docker, check for Rust, make the Python venv.
# Every step checks first and does nothing when it is already done.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV_DIR="$REPO_ROOT/.venv"
PYTHON_REQUIREMENTS="$REPO_ROOT/tests/compat/requirements.txt"
DOCKERD_LOG=/var/log/berth-dockerd.log
DOCKER_WAIT_S=60

banner() {
    printf '\n==== %s ====\n' "$*"
}

note() {
    printf 'setup: %s\n' "$*"
}

die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

# Run as root: directly when we are root, else through sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "'$*' needs root and sudo is not available"
    fi
}

APT_UPDATED=0
apt_install() {
    [ "$#" -gt 0 ] || return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages ($*) and no apt-get to install them"
    if [ "$APT_UPDATED" -eq 0 ]; then
        note "apt-get update"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        APT_UPDATED=1
    fi
    note "apt-get install $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
    # The downloaded .debs are not needed once installed; small disks need the room.
    as_root apt-get clean
}

# Free space where the build and the tests write, said before they start: a
# cold build and the test suite need about 6 GiB (target/ with line tables only).
report_disk() {
    local dir avail_kib
    for dir in "$@"; do
        mkdir -p "$dir"
        avail_kib=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
        note "free space under $dir: $((avail_kib / 1024)) MiB"
        if [ "$avail_kib" -lt $((6 * 1024 * 1024)) ]; then
            echo "setup: warning: less than 6 GiB free under $dir; the build may run out of space" >&2
        fi
    done
}

# C toolchain for crates that build C code (rusqlite's bundled SQLite), and
# protoc, which etcd-client's build script runs to generate its gRPC code.
ensure_build_tools() {
    local missing=()
    command -v cc >/dev/null 2>&1 || missing+=(build-essential)
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
    # The Docker tests build their image FROM scratch with Debian's static busybox.
    dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
    apt_install "${missing[@]}"
}

# Clients the compatibility tests drive besides boto3, the AWS CLI and docker:
# skopeo, a second registry client (OCI manifests); Prometheus, which scrapes
# Berth's /metrics (the test starts its own; the package's service is not used);
# etcd, which store-etcd's tests start on loopback ports (the package's service
# is not used either).
ensure_test_tools() {
    local missing=()
    command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
    command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
    command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
    apt_install "${missing[@]}"
}

# python3 that can make a venv with pip in it.
ensure_python() {
    local missing=()
    if ! command -v python3 >/dev/null 2>&1; then
        missing+=(python3 python3-venv python3-pip)
    elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv python3-pip)
    fi
    apt_install "${missing[@]}"
}

# A running Docker daemon. Machines of this kind may have no systemd, so dockerd
# is started directly when `docker info` fails.
ensure_docker() {
    if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
        apt_install docker.io
    fi
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    note "starting dockerd (log: $DOCKERD_LOG)"
    as_root sh -c "nohup dockerd >'$DOCKERD_LOG' 2>&1 </dev/null &"
    local waited=0
    until docker info >/dev/null 2>&1; do
        if [ "$waited" -ge "$DOCKER_WAIT_S" ]; then
            tail -n 30 "$DOCKERD_LOG" >&2 || true
            die "the Docker daemon did not come up within ${DOCKER_WAIT_S}s"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    note "dockerd is up after ${waited}s"
}

# Rust stable with rustfmt and clippy. It cannot be downloaded here, so only check.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        cat >&2 <<'MSG'
error: cargo (Rust) is not installed.
Berth needs the stable Rust toolchain with rustfmt and clippy. Install it with rustup
(https://rustup.rs), for example:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile default
then open a new shell (or `source "$HOME/.cargo/env"`) and run this script again.
MSG
        exit 1
    fi
    cargo fmt --version >/dev/null 2>&1 \
        || die "rustfmt is missing: run \`rustup component add rustfmt\`"
    cargo clippy --version >/dev/null 2>&1 \
        || die "clippy is missing: run \`rustup component add clippy\`"
}

# .venv with the pinned test requirements; reinstalled only when the pins change.
ensure_venv() {
    ensure_python
    local stamp="$VENV_DIR/.requirements.sha256"
    local wanted
    wanted="$(sha256sum "$PYTHON_REQUIREMENTS" | cut -d' ' -f1)"
    if [ -x "$VENV_DIR/bin/python" ] && "$VENV_DIR/bin/python" -c 'import sys' >/dev/null 2>&1 \
        && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
        note "Python venv up to date ($VENV_DIR)"
        return 0
    fi
    note "creating the Python venv in $VENV_DIR"
    python3 -m venv --clear "$VENV_DIR"
    "$VENV_DIR/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        -r "$PYTHON_REQUIREMENTS"
    echo "$wanted" >"$stamp"
}

# Plain output under CI.
quiet_colors_on_ci() {
    if [ "${CI:-}" = "true" ]; then
        export CARGO_TERM_COLOR=never
        export NO_COLOR=1
        export PY_COLORS=0
    fi
}
