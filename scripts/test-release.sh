#!/bin/sh
# Tests each release binary on its own architecture under qemu-user-static:
#   sh scripts/test-release.sh ARCH...      (after make release and build/release/ARCH/unit)
# For each architecture: the unit tests built for it (build/release/ARCH/unit), then the integration,
# protocol and data channel tests, which run natively in node against dist/camus-ARCH started through a
# small wrapper (build/release/ARCH/camus-run) that execs it under qemu.  Logs go to build/release/logs/;
# the end is a table of results and times, and the exit status says whether everything passed.
# RELEASE_TESTS overrides the list of test/*.mjs files (default: integration protocol datachannel).
set -u
cd "$(dirname "$0")/.." || exit 1
top=$(pwd)
tests=${RELEASE_TESTS:-integration protocol datachannel}
limit=${RELEASE_TEST_TIMEOUT:-1200} # s for one test file at most
logs=build/release/logs
mkdir -p "$logs"
[ -d test/node_modules ] || (cd test && npm ci --no-audit --no-fund >/dev/null 2>&1) || (cd test && npm install --no-audit --no-fund)

. scripts/arch.sh
# The emulator that runs ARCH here: none for this machine's own.
runner_for() { if [ "$1" = "$(uname -m)" ]; then echo ""; else qemu_for "$1" || exit 2; fi; }

now() { date +%s; }
# result LOG: "P/T" from the log's last "N passed, N failed" line, or "crashed".
result() {
  line=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
  [ -n "$line" ] || { echo crashed; return; }
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
  f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  echo "$p/$((p + f))"
}

# one NAME WHAT CMD...: runs CMD for run_arch's architecture $a, its output in $logs/$a-NAME.log; says
# how it went (WHAT: what it was), adds that to the table row, and sets fail if it did not all pass.
one() {
  name=$1 what=$2 t0=$(now)
  shift 2
  "$@" > "$logs/$a-$name.log" 2>&1
  rc=$?
  r=$(result "$logs/$a-$name.log")
  if [ "$rc" != 0 ] || [ "$r" = crashed ]; then
    fail=1
    r="$r FAILED (exit $rc)"
    grep -E 'FAIL|^unit:' "$logs/$a-$name.log" | head -n 30 | sed "s/^/   $a $name: /"
  fi
  echo "== $a: $what: $r in $(($(now) - t0)) s"
  row="$row $r, $(($(now) - t0)) s |"
}

# run_arch ARCH: its tests one after another; prints progress, leaves its table row in $logs/ARCH.row
# and exits non-zero if anything failed.
run_arch() {
  a=$1 fail=0
  q=$(runner_for "$a")
  wrap=$top/build/release/$a/camus-run
  printf '#!/bin/sh\n# dist/camus-%s on this machine (written by scripts/test-release.sh)\nexec %s "%s" "$@"\n' \
    "$a" "$q" "$top/dist/camus-$a" > "$wrap"
  chmod 755 "$wrap"
  row="| $a |"

  # shellcheck disable=SC2086
  one unit "unit tests ${q:+under $q}" timeout "$limit" $q "build/release/$a/unit"
  for t in $tests; do
    one "$t" "test/$t.mjs against the ${q:+emulated }server" env CAMUS_BIN="$wrap" timeout "$limit" node "test/$t.mjs"
  done
  echo "$row" > "$logs/$a.row"
  return "$fail"
}

# Architectures are dealt round-robin to RELEASE_TEST_JOBS queues (default 2) that run side by side:
# the tests mostly wait (timers, handshakes), so two emulated servers at once fit on two cores.
jobs=${RELEASE_TEST_JOBS:-2}
start_all=$(now)
rm -f "$logs"/*.row "$logs"/queue-*.failed
i=0
pids=
while [ "$i" -lt "$jobs" ]; do
  mine= k=0
  for a in "$@"; do
    [ $((k % jobs)) = "$i" ] && mine="$mine $a"
    k=$((k + 1))
  done
  if [ -n "$mine" ]; then
    ( for a in $mine; do run_arch "$a" || touch "$logs/queue-$i.failed"; done ) &
    pids="$pids $!"
  fi
  i=$((i + 1))
done
for p in $pids; do wait "$p"; done
fail=0
ls "$logs"/queue-*.failed > /dev/null 2>&1 && fail=1

echo
echo "Each binary on its architecture (passed/run, wall time; logs in $logs/):"
printf '| arch | unit |'; for t in $tests; do printf ' %s |' "$t"; done; echo
printf '| --- | --- |'; for t in $tests; do printf ' --- |'; done; echo
for a in "$@"; do cat "$logs/$a.row" 2>/dev/null || echo "| $a | did not finish |"; done
echo "total: $(($(now) - start_all)) s, $jobs at a time"
[ "$fail" = 0 ] && echo "test-release: all passed" || echo "test-release: FAILURES (see above)"
exit "$fail"
