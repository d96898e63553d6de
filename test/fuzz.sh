#!/bin/sh
# Builds and runs the libFuzzer targets of test/fuzz.c (needs clang).
#
#   sh test/fuzz.sh [seconds-per-target] [target...]   fuzz each target (default: all, 10 s each)
#   sh test/fuzz.sh replay <target> <file>...          run one target on the given inputs only
#
# Targets: http json sdp stun dcep rtp rtcp srtp msg media udp turn tcp.  Each is built into
# test/out/fuzz-<target> and run on a scratch copy of test/corpus/<target>/ (the committed corpus
# never grows).  Crash, leak and timeout inputs are saved as test/out/artifacts/<target>-*.  Exits
# nonzero if any target failed.  CC, FUZZ_CFLAGS and FUZZ_ARGS (extra libFuzzer flags) may be set
# in the environment.
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
ALL="http json sdp stun dcep rtp rtcp srtp msg media udp turn tcp"
CC=${CC:-clang}
case $CC in *clang*) ;; *) CC=clang ;; esac # libFuzzer comes with clang only
CFLAGS="-std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  -Wall -Wextra -Wpedantic -Werror -Wshadow -Wundef -Wstrict-prototypes -Wmissing-prototypes ${FUZZ_CFLAGS:-}"
LDLIBS="-lmbedtls -lmbedx509 -lmbedcrypto -lusrsctp -lpthread"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

known() {
  for k in $ALL; do [ "$k" = "$1" ] && return 0; done
  echo "fuzz: unknown target '$1' (targets: $ALL)" >&2
  return 1
}

# Builds test/out/fuzz-$1 unless it is newer than its sources and was built with the same flags.
build() {
  bin=test/out/fuzz-$1
  mkdir -p test/out/artifacts || return 1
  flags="$CC $CFLAGS $LDLIBS"
  if [ -x "$bin" ] && [ "$bin" -nt test/fuzz.c ] && [ "$bin" -nt camus.c ] && [ "$bin" -nt camus.h ] &&
     [ "$bin" -nt camus_web.h ] && [ "$(cat "$bin.flags" 2>/dev/null)" = "$flags" ]; then
    return 0
  fi
  echo "fuzz: building $bin"
  rm -f "$bin.flags"
  # shellcheck disable=SC2086
  $CC $CFLAGS -DFUZZ_"$1" -DFUZZ_FIXTURES="\"$ROOT/test/fixtures\"" -o "$bin" test/fuzz.c $LDLIBS &&
    echo "$flags" >"$bin.flags"
}

# The CPU seconds (user + system) of the children so far, from `times` (run in this shell, not a subshell).
cpu() {
  times >"$scratch/times"
  tail -n 1 "$scratch/times" |
    awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
           printf "%.2f", t }'
}

if [ "${1:-}" = replay ]; then
  [ $# -ge 3 ] || { echo "usage: sh test/fuzz.sh replay <target> <file>..." >&2; exit 2; }
  known "$2" || exit 2
  build "$2" || exit 1
  t=$2
  shift 2
  exec "test/out/fuzz-$t" -timeout=25 "$@"
fi

secs=10
case ${1:-} in '' | *[!0-9]*) ;; *) secs=$1; shift ;; esac
targets=${*:-$ALL}
for t in $targets; do known "$t" || exit 2; done
for t in $targets; do build "$t" || { echo "fuzz: cannot build $t"; exit 1; }; done

scratch=$(mktemp -d "${TMPDIR:-/tmp}/camus-fuzz.XXXXXX") || exit 1
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM
failed=""
for t in $targets; do
  mkdir -p "$scratch/$t"
  [ -d "test/corpus/$t" ] && cp test/corpus/"$t"/* "$scratch/$t"/ 2>/dev/null
  log=test/out/fuzz-$t.log
  cpu >"$scratch/before"
  # -max_total_time stops between inputs; -timeout catches a hang in one; timeout(1) bounds the rest.
  # shellcheck disable=SC2086
  timeout -k 10 $((secs + 120)) "test/out/fuzz-$t" -max_total_time="$secs" -timeout=25 -print_final_stats=1 \
    -artifact_prefix="test/out/artifacts/$t-" ${FUZZ_ARGS:-} "$scratch/$t" >"$log" 2>&1
  rc=$?
  cpu >"$scratch/after"
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$')
  cputime=$(awk -v a="$(cat "$scratch/before")" -v b="$(cat "$scratch/after")" 'BEGIN { printf "%.1f", b - a }')
  if [ "$rc" -eq 0 ]; then
    echo "fuzz-$t: ok: ${execs:-?} executions, $cputime s CPU, coverage ${cov:-?} (log: $log)"
  else
    failed="$failed $t"
    echo "fuzz-$t: FAILED (exit $rc): ${execs:-?} executions, $cputime s CPU (log: $log)"
    grep -E '^==[0-9]+==ERROR|SUMMARY|runtime error|invariant broken|Test unit written|ERROR: libFuzzer' "$log" |
      head -n 8 | sed 's/^/  /'
  fi
done
if [ -n "$failed" ]; then
  echo "fuzz: failed:$failed (replay: sh test/fuzz.sh replay <target> test/out/artifacts/<target>-...)"
  exit 1
fi
echo "fuzz: all passed ($targets)"
