#!/bin/sh
# The release matrix (issue 14), the last stage of .ci/run: run from the checkout.
set -e
cd "$(dirname "$0")/.."
# Release: static binaries for five architectures (cross compilers and multiarch libraries installed by
# scripts/release-deps.sh; usrsctp's libraries are built once and kept in build/usrsctp), built twice to
# check they are reproducible, each tested on its architecture under qemu-user-static (the unit tests, and
# the integration, protocol and data channel tests against it), their sizes and idle memory reported, and
# what make install and the OpenWrt init script give checked.  Browser suites run above, natively only.
if [ "$(id -u)" = 0 ]; then sh scripts/release-deps.sh; fi
make -j2 release
make release-check
make -j2 test-release
make release-report
sh scripts/check-packaging.sh
