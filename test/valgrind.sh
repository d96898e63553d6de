#!/bin/sh
# The server under valgrind's memcheck, for CAMUS_BIN: an invalid access or a leak makes it exit 99
# (the tests assert that it exits 0).  `make valgrind` runs the unit and integration tests this way.
exec valgrind -q --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
  --error-exitcode=99 "$(dirname "$0")/../camus" "$@"
