# The release's architectures, for the scripts that source this file: qemu_for ARCH names the
# qemu-user-static binary that runs it, triplet_for ARCH the prefix of its cross compiler (the
# Makefile's triplet_ARCH says the same).  Both fail for an architecture they do not know.
qemu_for() {
  case $1 in
    x86_64) echo qemu-x86_64-static ;;
    aarch64) echo qemu-aarch64-static ;;
    armhf) echo qemu-arm-static ;;
    mipsel) echo qemu-mipsel-static ;;
    s390x) echo qemu-s390x-static ;;
    *) echo "unknown architecture $1" >&2; return 1 ;;
  esac
}
triplet_for() {
  case $1 in
    x86_64) echo x86_64-linux-gnu ;; aarch64) echo aarch64-linux-gnu ;; armhf) echo arm-linux-gnueabihf ;;
    mipsel) echo mipsel-linux-gnu ;; s390x) echo s390x-linux-gnu ;;
    *) echo "unknown architecture $1" >&2; return 1 ;;
  esac
}
