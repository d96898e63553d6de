#!/bin/sh
# Reproducibility: builds the release again from a copy of the sources at another path and compares it
# byte for byte with dist/:
#   sh scripts/release-check.sh ARCH...        (make release-check runs it after make release)
# The copy is told the same commit (it has no .git) and the same SOURCE_DATE_EPOCH.  usrsctp is built
# again from the same downloaded source for the architectures in RELEASE_CHECK_USRSCTP (default mipsel;
# "all" for every one; each takes a minute of CPU) and its library compared too; the others' libraries
# are copied.
set -eu
cd "$(dirname "$0")/.."
[ -f dist/SHA256SUMS ] || { echo "release-check: run make release first" >&2; exit 1; }
base=$(mktemp -d /tmp/camus-repro.XXXXXX)
trap 'rm -rf "$base"' EXIT INT TERM
copy=$base/elsewhere/camus
mkdir -p "$copy/build/usrsctp"
cp -p camus.c camus.h camus_web.h Makefile "$copy/"
cp -pR scripts web "$copy/"
cp -pR build/usrsctp/src "$copy/build/usrsctp/"
again=${RELEASE_CHECK_USRSCTP:-mipsel}
[ "$again" = all ] && again="$*"
[ "$(sed -n 2p build/release/version)" = system ] && again=
for a in "$@"; do
  case " $again " in
    *" $a "*) ;;
    *) if [ -d "build/usrsctp/$a" ]; then
         cp -pR "build/usrsctp/$a" "$copy/build/usrsctp/"
         touch "$copy/build/usrsctp/$a/libusrsctp.a" # newer than the script: make keeps it
       fi ;;
  esac
done
commit=$(head -n 1 build/release/version)
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
echo "release-check: building $* again in $copy"
SOURCE_DATE_EPOCH=$epoch make -s -j"${RELEASE_JOBS:-2}" -C "$copy" release RELEASE_ARCHS="$*" \
  RELEASE_COMMIT="$commit" USRSCTP="$(sed -n 2p build/release/version)" > "$base/log" 2>&1 || {
  cat "$base/log" >&2
  exit 1
}
bad=0
for a in $again; do
  if cmp -s "build/usrsctp/$a/libusrsctp.a" "$copy/build/usrsctp/$a/libusrsctp.a"; then
    echo "  usrsctp for $a, built again: identical"
  else
    echo "  usrsctp for $a, built again: DIFFERS"
    bad=1
  fi
done
for a in "$@"; do
  if cmp -s "dist/camus-$a" "$copy/dist/camus-$a"; then
    echo "  camus-$a: identical ($(sha256sum < "dist/camus-$a" | cut -c1-16)…)"
  else
    echo "  camus-$a: DIFFERS"
    bad=1
  fi
done
if [ "$bad" = 0 ] && cmp -s dist/SHA256SUMS "$copy/dist/SHA256SUMS"; then
  echo "release-check: the same bytes twice"
else
  echo "release-check: the two builds differ" >&2
  exit 1
fi
