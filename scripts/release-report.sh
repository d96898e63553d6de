#!/bin/sh
# Budgets of the release binaries in dist/:
#   sh scripts/release-report.sh [--size-only] MAX_BYTES ARCH...
# Fails if a binary is larger than MAX_BYTES.  Without --size-only, also starts each one (under
# qemu-user-static, and the host's natively too) on a free port with an empty state directory, waits
# until it listens and has answered GET /healthz, and reads its idle resident memory from /proc.
#
# Under qemu-user the process is qemu: its VmRSS is the guest's memory plus qemu's own (the emulator,
# its heap, its translated-code cache).  The guest's own share is read from /proc/PID/smaps: qemu maps the
# guest's address space at the bottom of its own (guest_base 0: the binary where its ELF headers say, its
# brk heap after it, its mmap area and stack at 0x4000000000 or 0x5500000000, a 32-bit guest below 4 GB),
# while qemu's binary, heap and mappings sit at 0x5555... and 0x7f... (12 hex digits): so the Rss of the
# mappings whose start has at most 11 hex digits is the guest's.  The x86_64 row checks this: natively
# and under qemu-x86_64-static the two figures agree within a few KiB.  For reference, the table also gives
# qemu's whole VmRSS, and that of qemu running a trivial static program (main() { pause(); }).
set -u
cd "$(dirname "$0")/.." || exit 1
size_only=0
[ "${1:-}" = --size-only ] && { size_only=1; shift; }
max=$1; shift
archs=$*

. scripts/arch.sh

fail=0
if [ "$size_only" = 1 ]; then
  for a in $archs; do
    n=$(wc -c < "dist/camus-$a")
    if [ "$n" -gt "$max" ]; then ok="OVER BUDGET"; fail=1; else ok=ok; fi
    printf '%-16s %9d bytes  (budget %d)  %s\n' "camus-$a" "$n" "$max" "$ok"
  done
  [ "$fail" = 0 ] || echo "release: a binary is larger than $max bytes" >&2
  exit "$fail"
fi

tmp=$(mktemp -d /tmp/camus-report.XXXXXX)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

rss_of() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null; }
# KiB resident in the guest's mappings of a qemu-user process (see above).
guest_rss_of() {
  awk '/^[0-9a-f]+-[0-9a-f]+ / { split($1, r, "-"); guest = length(r[1]) <= 11 && $6 !~ /^\[/ }
       /^Rss:/ && guest { kib += $2 } END { print kib + 0 }' "/proc/$1/smaps" 2>/dev/null
}

# "VmRSS guest-RSS" in KiB of "$@" started as camus, once it listens and has answered /healthz; empty on failure.
camus_rss() {
  state=$(mktemp -d "$tmp/state.XXXXXX")
  "$@" --host 127.0.0.1 --port 0 --udp-port 0 --state-dir "$state" 2> "$tmp/log" > /dev/null &
  pid=$!
  port=
  i=0
  while [ $i -lt 300 ] && [ -z "$port" ]; do # 30 s at most: emulated starts are slow
    port=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9]*\) .*/\1/p' "$tmp/log" | head -n 1)
    [ -n "$port" ] || sleep 0.1
    i=$((i + 1))
  done
  r=
  if [ -n "$port" ] && curl -fsS -m 30 "http://127.0.0.1:$port/healthz" > /dev/null; then
    sleep 1
    r="$(rss_of "$pid") $(guest_rss_of "$pid")"
  else
    echo "release-report: $* did not start:" >&2
    cat "$tmp/log" >&2
  fi
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
  echo "$r"
}

# VmRSS in KiB of "$@" (a trivial program that pauses) after it has started.
idle_rss() {
  "$@" &
  pid=$!
  sleep 1
  r=$(rss_of "$pid")
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=
  echo "$r"
}

printf 'int main(void) { for (;;) pause(); }\n' > "$tmp/idle.c"
sed -i '1i #include <unistd.h>' "$tmp/idle.c"

host=$(uname -m)
echo "Idle: listening on a free port, an empty state directory, after one GET /healthz."
printf '| binary | bytes | idle RSS, natively | idle RSS under qemu-user: the guest | qemu process in all | qemu running a trivial program |\n'
printf '| --- | ---: | ---: | ---: | ---: | ---: |\n'
for a in $archs; do
  n=$(wc -c < "dist/camus-$a")
  if [ "$n" -gt "$max" ]; then fail=1; n="$n (over $max)"; fi
  q=$(qemu_for "$a") || { fail=1; continue; }
  "$(triplet_for "$a")-gcc" -static -Os -o "$tmp/idle-$a" "$tmp/idle.c" || { fail=1; continue; }
  native=
  [ "$a" = "$host" ] && native=$(camus_rss "dist/camus-$a" | cut -d' ' -f1)
  set -- $(camus_rss "$q" "dist/camus-$a")
  [ $# = 2 ] || { fail=1; set -- "?" "?"; }
  base=$(idle_rss "$q" "$tmp/idle-$a")
  printf '| camus-%s | %s | %s | %s KiB | %s KiB | %s KiB |\n' "$a" "$n" "${native:+$native KiB}" "$2" "$1" "$base"
  if [ -n "$native" ] && [ "$2" != "?" ] && [ $((native - $2)) -gt 256 -o $(($2 - native)) -gt 256 ]; then
    echo "release-report: natively $native KiB, the guest under qemu $2 KiB: the smaps rule no longer holds" >&2
  fi
done
exit "$fail"
