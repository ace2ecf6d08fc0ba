#!/usr/bin/env bash
# run-tests.sh — run the ctest suite of each given build directory and print
# one closing line "tests: N passed, M failed" over all of them.
# DIR:REGEX runs only the tests whose name matches REGEX in DIR.
set -uo pipefail
pass=0; fail=0; status=0
for arg in "$@"; do
  dir=${arg%%:*}; filter=()
  [ "$arg" != "$dir" ] && filter=(-R "${arg#*:}")
  echo "== ctest in $dir ${filter[*]}"
  log=$(mktemp)
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    ctest --test-dir "$dir" --output-on-failure -j2 "${filter[@]}" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  [ "$rc" -ne 0 ] && status=1
  line=$(grep -E "tests passed, [0-9]+ tests failed out of" "$log" | tail -1)
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
  failed=$(sed -E 's/.*passed, ([0-9]+) tests failed.*/\1/' <<<"$line")
  if [ -n "$line" ]; then
    pass=$((pass + total - failed)); fail=$((fail + failed))
  else
    fail=$((fail + 1)); status=1
  fi
  rm -f "$log"
done
echo "tests: $pass passed, $fail failed"
exit $status
