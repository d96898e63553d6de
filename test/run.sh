#!/bin/sh
# Runs every test program given as an argument (C unit tests), then the Node test files,
# and ends with one line "N passed, N failed" summing them all.
cd "$(dirname "$0")/.." || exit 1
[ -d test/node_modules ] || (cd test && npm ci --no-audit --no-fund >/dev/null 2>&1) || (cd test && npm install --no-audit --no-fund)
total_pass=0 total_fail=0 crashed=0
run() {
  echo "== $*"
  out=$("$@" 2>&1); rc=$?
  echo "$out"
  line=$(echo "$out" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -1)
  if [ -z "$line" ]; then crashed=$((crashed + 1)); echo "!! $* ended without a result line (exit $rc)"; return; fi
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
  f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then crashed=$((crashed + 1)); echo "!! $* exited $rc"; fi
}
for t in "$@"; do run "$t"; done
for t in test/integration.mjs test/datachannel.mjs test/aiortc.mjs test/firefox.mjs test/protocol.mjs test/impersonation.mjs test/spoofing.mjs test/fairness.mjs test/hostile.mjs test/browser.mjs test/sfu.mjs test/sfu-firefox.mjs test/icetcp.mjs test/reconnect.mjs test/turn.mjs test/turn-coturn.mjs test/turn-browser.mjs test/persist.mjs test/moderation.mjs test/restart.mjs test/ui.mjs; do
  [ -f "$t" ] && run node "$t"
done
total_fail=$((total_fail + crashed))
echo "all: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
