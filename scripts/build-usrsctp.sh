#!/bin/sh
# Builds usrsctp for one architecture from Debian's source package, for the release binaries:
#   sh scripts/build-usrsctp.sh TRIPLET OUTDIR      (e.g. mipsel-linux-gnu build/usrsctp/mipsel)
# leaves OUTDIR/libusrsctp.a and OUTDIR/include/usrsctp.h.
#
# Why not Debian's libusrsctp-dev:<arch>?  Its configure script defaults to --enable-debug, which adds
# SCTP_DEBUG and "-g -O0" after dpkg's flags: the library is built unoptimised with debug printing compiled
# in (928 KB of code on mipsel, a third of that binary, and slow on a router's CPU).  The same source, with
# the switches Debian's build uses (IPv4, IPv6, process-level locks, simple allocator) but without
# SCTP_DEBUG and at -Os, is 435 KB.  `make release USRSCTP=system` links Debian's instead.
#
# The source comes from `apt-get source libusrsctp` (scripts/release-deps.sh makes sure deb-src lines
# exist) and is unpacked once under build/usrsctp/src (`build-usrsctp.sh --fetch`).  Objects are archived
# in a fixed order with deterministic ar flags and paths mapped away, so the same inputs give the same bytes.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
srcdir=$top/build/usrsctp/src

# --fetch: only get and unpack the source (once; make runs this before the builds, which may run in parallel).
if [ "$1" = --fetch ]; then
  if ! ls -d "$srcdir"/libusrsctp-*/usrsctplib >/dev/null 2>&1; then
    rm -rf "$srcdir.tmp"
    mkdir -p "$srcdir.tmp"
    (cd "$srcdir.tmp" && apt-get source -qq libusrsctp >/dev/null 2>&1) || {
      rm -rf "$srcdir.tmp"
      echo "build-usrsctp: 'apt-get source libusrsctp' failed: run scripts/release-deps.sh (as root) first" >&2
      exit 1
    }
    rm -rf "$srcdir"
    mv "$srcdir.tmp" "$srcdir"
  fi
  touch "$srcdir/stamp"
  exit 0
fi

triplet=$1
mkdir -p "$(dirname "$2")"
out=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
[ -f "$srcdir/stamp" ] || sh "$0" --fetch
lib=$(ls -d "$srcdir"/libusrsctp-*/usrsctplib | tail -n 1)

# The files and switches of usrsctplib/Makefile.am and configure.ac (Linux), minus --enable-debug.
files="user_environment.c user_mbuf.c user_recv_thread.c user_socket.c
  netinet/sctp_asconf.c netinet/sctp_auth.c netinet/sctp_bsd_addr.c netinet/sctp_callout.c
  netinet/sctp_cc_functions.c netinet/sctp_crc32.c netinet/sctp_indata.c netinet/sctp_input.c
  netinet/sctp_output.c netinet/sctp_pcb.c netinet/sctp_peeloff.c netinet/sctp_sha1.c
  netinet/sctp_ss_functions.c netinet/sctp_sysctl.c netinet/sctp_userspace.c netinet/sctp_timer.c
  netinet/sctp_usrreq.c netinet/sctputil.c netinet6/sctp6_usrreq.c"
flags="-std=c99 -pthread -Os -ffunction-sections -fdata-sections -ffile-prefix-map=$lib/=usrsctplib/
  -D__Userspace__ -DSCTP_SIMPLE_ALLOCATOR -DSCTP_PROCESS_LEVEL_LOCKS -D_GNU_SOURCE -DINET -DINET6
  -DHAVE_STDATOMIC_H -DHAVE_SYS_QUEUE_H -DHAVE_LINUX_IF_ADDR_H -DHAVE_LINUX_RTNETLINK_H
  -DHAVE_NETINET_IP_ICMP_H -Wno-address-of-packed-member -w"

rm -rf "$out.tmp"
mkdir -p "$out.tmp/obj" "$out.tmp/include"
objs=
pids=
for f in $files; do
  o=$out.tmp/obj/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')
  objs="$objs $o"
  # Two at a time: the machines this runs on have two cores.
  (cd "$lib" && "$triplet-gcc" $flags -I. -c "$f" -o "$o") &
  pids="$pids $!"
  set -- $pids
  if [ $# -ge 2 ]; then wait "$1" || exit 1; shift; pids="$*"; fi
done
for p in $pids; do wait "$p" || exit 1; done
"$triplet-ar" rcD "$out.tmp/libusrsctp.a" $objs
"$triplet-ranlib" -D "$out.tmp/libusrsctp.a"
cp "$lib/usrsctp.h" "$out.tmp/include/usrsctp.h"
rm -rf "$out.tmp/obj" "$out"
mv "$out.tmp" "$out"
echo "usrsctp for $triplet: $(wc -c < "$out/libusrsctp.a") bytes ($(basename "$(dirname "$lib")"), -Os, no SCTP_DEBUG)"
