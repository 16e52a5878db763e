#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), one after another, and prints a
# summary line per target (runs, exec/s, crashes). New inputs that grow coverage go to
# fuzz/corpus/<target>/ (not committed); a crash is saved under fuzz/artifacts/<target>/:
# fix it, then copy the input into engine/tests/fuzz_regressions/<target>/ (CI runs those).
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs `cargo install cargo-fuzz`. Stable rustc accepts cargo-fuzz's -Z flags with
# RUSTC_BOOTSTRAP=1. Built without a sanitizer (-s none): Ferry has no unsafe code of its
# own, so a panic, a timeout (-timeout) or an allocation past -rss_limit_mb is what we hunt,
# and an uninstrumented build runs twice as many inputs.
set -uo pipefail
cd "$(dirname "$0")"
DURATION=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=(csv_read jsonl_read text_read parquet_read excel_read archive_read config_load age_decrypt vault_open receipt_verify)
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none || exit 1
mkdir -p logs
status=0
summary=()
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus/$t"
  echo "== $t: ${DURATION}s"
  cargo fuzz run -s none "$t" "corpus/$t" "../engine/tests/fuzz_regressions/$t" -- \
    -max_total_time="$DURATION" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
    -print_final_stats=1 >"logs/$t.log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$')
  crashes=$(ls "artifacts/$t" 2>/dev/null | wc -l)
  line="$t: ${DURATION}s, ${runs:-?} runs, ${rate:-?} exec/s, exit $rc, artifacts ${crashes}"
  echo "$line"
  summary+=("$line")
  [ $rc -ne 0 ] && { status=1; tail -30 "logs/$t.log"; }
done
echo "== summary"
printf '%s\n' "${summary[@]}"
exit $status
