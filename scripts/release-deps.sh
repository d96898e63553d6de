#!/bin/sh
# Installs what `make release` and `make test-release` need on Debian 12 (bookworm), as root:
#   sh scripts/release-deps.sh
# Debian's cross compilers for aarch64, armhf, mipsel and s390x (x86_64 is the native gcc), the
# multiarch libmbedtls-dev and libusrsctp-dev of each (dpkg --add-architecture), qemu-user-static, and
# the source package of usrsctp in build/usrsctp/src (scripts/build-usrsctp.sh builds it per architecture;
# `apt-get source` needs deb-src lines, added for the Debian archive if there are none).
# Idempotent: when everything is there already it asks apt nothing and takes well under a second.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

arches="arm64 armhf mipsel s390x"
pkgs="build-essential dpkg-dev qemu-user-static curl libmbedtls-dev libusrsctp-dev
  gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf gcc-mipsel-linux-gnu gcc-s390x-linux-gnu
  libc6-dev-arm64-cross libc6-dev-armhf-cross libc6-dev-mipsel-cross libc6-dev-s390x-cross"
for a in $arches; do pkgs="$pkgs libmbedtls-dev:$a libusrsctp-dev:$a"; done

missing() { # the packages of $pkgs not installed
  for p in $pkgs; do
    case $(dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null) in ii*) ;; *) echo "$p" ;; esac
  done
}
have_source() { [ -f build/usrsctp/src/stamp ] && ls -d build/usrsctp/src/libusrsctp-*/usrsctplib >/dev/null 2>&1; }

need=$(missing)
if [ -z "$need" ] && have_source; then
  echo "release-deps: all there"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "release-deps: missing, and not root to install them: $need" >&2; exit 1; }

updated=0
update() { # a mirror caught mid-sync fails one index now and then: keep what was fetched
  apt-get update -qq || echo "release-deps: apt-get update reported errors; going on with what it has" >&2
  updated=1
}

if [ -n "$need" ]; then
  added=0
  for a in $arches; do
    dpkg --print-foreign-architectures | grep -qx "$a" || { dpkg --add-architecture "$a"; added=1; }
  done
  [ "$added" = 0 ] || update
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need > /dev/null 2>&1 || {
    [ "$updated" = 1 ] || update
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $need > /dev/null
  }
  need=$(missing)
  [ -z "$need" ] || { echo "release-deps: could not install: $need" >&2; exit 1; }
fi

if ! have_source; then
  if ! apt-cache showsrc libusrsctp 2>/dev/null | grep -q '^Package: libusrsctp'; then
    # deb-src twins of the Debian archive's deb entries (deb822 files or sources.list lines).
    list=/etc/apt/sources.list.d/camus-deb-src.sources
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] && [ "$f" != "$list" ] || continue
      awk 'BEGIN { RS = ""; ORS = "\n\n" }
           /Types:[^\n]*deb/ && /URIs:[^\n]*debian\.org/ { sub(/Types:[^\n]*/, "Types: deb-src"); print }' "$f"
    done > "$list.tmp"
    if [ -f /etc/apt/sources.list ]; then
      sed -n 's/^deb \(.*debian\.org.*\)/deb-src \1/p' /etc/apt/sources.list > /etc/apt/sources.list.d/camus-deb-src.list
      [ -s /etc/apt/sources.list.d/camus-deb-src.list ] || rm -f /etc/apt/sources.list.d/camus-deb-src.list
    fi
    if [ -s "$list.tmp" ]; then mv "$list.tmp" "$list"; else rm -f "$list.tmp"; fi
    update
  fi
  sh scripts/build-usrsctp.sh --fetch
fi
echo "release-deps: cross compilers, multiarch libraries and usrsctp's source are installed"
