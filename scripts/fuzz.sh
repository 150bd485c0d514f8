#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder of outside input (fuzz/, cargo-fuzz
# with libFuzzer on the stable toolchain, no sanitizer). A figure-printing
# command like `berth bench`, not a CI test: it runs for as long as you ask.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# Installs cargo-fuzz if it is missing, builds the targets, runs each one for
# SECONDS_PER_TARGET (default 60) seconds, one after the other, and prints per
# target: inputs run, crashes (and timeouts) found, the panic sites, and where
# the inputs are saved. The seeds in fuzz/corpus/<target>/ are read, never
# written; the growing corpus is kept in fuzz/target/corpus/<target>/ and
# crashing inputs in fuzz/artifacts/<target>/.
# Reproduce a crash with: fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>
# Set FUZZ_NICE=0 to run at normal priority (default: nice -n 19), and
# FUZZ_NO_BUILD=1 to run the targets as last built.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib/setup.sh
source scripts/lib/setup.sh

SECONDS_PER_TARGET="${1:-60}"
shift || true
ALL_TARGETS=(ecs_json elbv2_query query_form sigv4 agent_session lb_proxy lb_routing cluster_query)
if [ "$#" -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=("${ALL_TARGETS[@]}")
fi
case "$SECONDS_PER_TARGET" in
    '' | *[!0-9]*) die "SECONDS_PER_TARGET must be a number of seconds, not '$SECONDS_PER_TARGET'" ;;
esac

NICE=(nice -n 19)
if [ "${FUZZ_NICE:-19}" = "0" ]; then
    NICE=()
fi
FUZZ_DIR="$REPO_ROOT/fuzz"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$FUZZ_DIR/target/$TRIPLE/release"
LOG_DIR="$FUZZ_DIR/target/logs"

banner "set-up: build tools, cargo, cargo-fuzz"
ensure_build_tools
command -v c++ >/dev/null 2>&1 || apt_install g++
ensure_cargo
if ! cargo fuzz --version >/dev/null 2>&1; then
    note "installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

banner "cargo fuzz build (libFuzzer, --sanitizer none, stable)"
# --sanitizer none: AddressSanitizer needs nightly's -Zsanitizer; Rust code is
# memory-safe here (unsafe_code is forbidden), so panics are what we look for.
build_targets=("")
if [ "${#TARGETS[@]}" -ne "${#ALL_TARGETS[@]}" ]; then
    build_targets=("${TARGETS[@]}")
fi
if [ "${FUZZ_NO_BUILD:-0}" = "1" ]; then
    note "FUZZ_NO_BUILD=1: running the targets as last built"
    build_targets=()
fi
for target in "${build_targets[@]}"; do
    # shellcheck disable=SC2086 # an empty name builds every target
    "${NICE[@]}" cargo fuzz build --fuzz-dir "$FUZZ_DIR" --sanitizer none $target 2>&1 \
        | grep -v '^ *Compiling ' || true
done
for target in "${TARGETS[@]}"; do
    [ -x "$BIN_DIR/$target" ] || die "fuzz target '$target' did not build (see the output above)"
done

# Words that help libFuzzer reach deeper: every ECS JSON member name and
# operation, every ELBv2 action and form member prefix.
DICT_DIR="$FUZZ_DIR/target/dict"
mkdir -p "$DICT_DIR" "$LOG_DIR"
{
    grep -o 'rename = "[A-Za-z0-9]*"' crates/ecs-wire/src/generated.rs | sed 's/rename = "\(.*\)"/"\\"\1\\""/'
    grep -o '^        name: "[A-Za-z]*"' crates/ecs-wire/src/generated.rs | sed 's/.*name: "\(.*\)"/"\1"/'
} | sort -u >"$DICT_DIR/ecs_json.dict"
{
    sed -n '/^pub const OPERATIONS/,/^];/s/^    "\([A-Za-z]*\)",$/"Action=\1"/p' crates/elbv2-wire/src/generated.rs
    grep -o 'format!("{prefix}[A-Za-z]*' crates/elbv2-wire/src/generated.rs | sed 's/.*{prefix}\(.*\)/"\1"/'
    printf '"%s"\n' ".member.1." ".member.2" ".entry.1.key" ".entry.1.value" "&" "="
} | sort -u >"$DICT_DIR/elbv2_query.dict"
cp "$DICT_DIR/elbv2_query.dict" "$DICT_DIR/query_form.dict"

# Per-target libFuzzer settings: largest input, and the dictionary if any.
max_len() {
    case "$1" in
        ecs_json | elbv2_query | agent_session) echo 16384 ;;
        lb_proxy | sigv4) echo 8192 ;;
        *) echo 4096 ;;
    esac
}

# The distinct places the log's panics happened, or "none" (timeouts, OOMs).
panic_sites() {
    local sites
    sites=$(grep -o 'panicked at [^:]*:[0-9]*' "$1" | sed 's/panicked at //' | sort -u | paste -sd' ' || true)
    printf '%s' "${sites:-none}"
}

count_files() {
    find "$1" -type f -name "$2" | wc -l
}

results=()
for target in "${TARGETS[@]}"; do
    banner "fuzz $target for ${SECONDS_PER_TARGET}s"
    seeds="$FUZZ_DIR/corpus/$target"
    work="$FUZZ_DIR/target/corpus/$target"
    artifacts="$FUZZ_DIR/artifacts/$target"
    log="$LOG_DIR/$target.log"
    mkdir -p "$work" "$artifacts"
    : >"$log"
    crashes_before=$(count_files "$artifacts" 'crash-*')
    hangs_before=$(($(count_files "$artifacts" 'timeout-*') + $(count_files "$artifacts" 'oom-*')))
    args=(
        -max_len="$(max_len "$target")"
        -timeout=10
        -rss_limit_mb=4096
        -artifact_prefix="$artifacts/"
        -print_final_stats=1
    )
    if [ -f "$DICT_DIR/$target.dict" ]; then
        args+=(-dict="$DICT_DIR/$target.dict")
    fi
    started=$(date +%s)
    deadline=$((started + SECONDS_PER_TARGET))
    execs=0
    # libFuzzer stops at the first crash (saving the input): start it again
    # until the time is up, the corpus kept in $work.
    while [ "$(date +%s)" -lt "$deadline" ]; do
        run_log="$LOG_DIR/$target.run.log"
        "${NICE[@]}" "$BIN_DIR/$target" "${args[@]}" \
            -max_total_time=$((deadline - $(date +%s))) "$work" "$seeds" >"$run_log" 2>&1 || true
        cat "$run_log" >>"$log"
        run_execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$run_log" | tail -1)
        execs=$((execs + ${run_execs:-0}))
        rm -f "$run_log"
    done
    elapsed=$(($(date +%s) - started))
    crashes=$(($(count_files "$artifacts" 'crash-*') - crashes_before))
    hangs=$(($(count_files "$artifacts" 'timeout-*') + $(count_files "$artifacts" 'oom-*') - hangs_before))
    corpus=$(find "$work" -type f | wc -l)
    line=$(printf '%-14s %10s execs in %4ss, corpus %5s, %s crash(es), %s timeout/oom' \
        "$target" "$execs" "$elapsed" "$corpus" "$crashes" "$hangs")
    if [ "$((crashes + hangs))" -gt 0 ]; then
        line="$line -> $artifacts/ (panics at: $(panic_sites "$log"))"
    fi
    printf '%s\n' "$line"
    results+=("$line")
done

banner "fuzzing results (${SECONDS_PER_TARGET}s per target; logs in $LOG_DIR)"
printf '%s\n' "${results[@]}"
