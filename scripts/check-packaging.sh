#!/bin/sh
# Checks what an operator installs, without installing anything on this machine:
#   sh scripts/check-packaging.sh [BINARY]       (default dist/camus-x86_64, else ./camus)
# 1. make install into a temporary DESTDIR with PREFIX=/usr: the binary and the systemd unit, whose
#    ExecStart names the installed path; make uninstall removes both.
# 2. systemd-analyze verify on the unit (when systemd-analyze exists), and its exposure score.
# 3. The OpenWrt init script, run in sh against the sample UCI config with stand-ins for OpenWrt's
#    config_* and procd_* functions: the command line procd would be given, and its parameters.
set -eu
cd "$(dirname "$0")/.."
bin=${1:-}
[ -n "$bin" ] || { [ -x dist/camus-x86_64 ] && bin=dist/camus-x86_64 || bin=camus; }
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
tmp=$(mktemp -d /tmp/camus-pkg.XXXXXX)
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "check-packaging: $*" >&2; exit 1; }

# 1. make install / uninstall
make -s install DESTDIR="$tmp/root" PREFIX=/usr CAMUS="$bin" >/dev/null
[ -x "$tmp/root/usr/bin/camus" ] || fail "make install did not install usr/bin/camus"
unit=$tmp/root/usr/lib/systemd/system/camus.service
[ -f "$unit" ] || fail "make install did not install the systemd unit"
grep -q '^ExecStart=/usr/bin/camus ' "$unit" || fail "ExecStart does not name /usr/bin/camus: $(grep ExecStart= "$unit")"
"$tmp/root/usr/bin/camus" --version >/dev/null 2>&1 || [ "$(uname -m)" != x86_64 ] || fail "the installed binary does not run"
echo "make install: $(cd "$tmp/root" && find . -type f | sort | tr '\n' ' ')"
make -s uninstall DESTDIR="$tmp/root" PREFIX=/usr >/dev/null
[ ! -e "$tmp/root/usr/bin/camus" ] && [ ! -e "$unit" ] || fail "make uninstall left files behind"

# 2. the unit, with ExecStart pointing at a binary that exists here
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$tmp/unit"
  sed "s|/usr/local/bin/camus|$bin|" packaging/camus.service > "$tmp/unit/camus.service"
  out=$(systemd-analyze verify "$tmp/unit/camus.service" 2>&1) || fail "systemd-analyze verify: $out"
  [ -z "$out" ] || fail "systemd-analyze verify: $out"
  score=$(systemd-analyze security --offline=yes "$tmp/unit/camus.service" 2>/dev/null | grep -o 'Overall exposure level.*' || true)
  echo "systemd unit: systemd-analyze verify clean; ${score:-no exposure score}"
else
  echo "systemd unit: systemd-analyze absent, not verified"
fi

# 3. the procd init script
sh -n packaging/openwrt/camus.init || fail "camus.init does not parse"
cat > "$tmp/openwrt.sh" <<'EOF'
# Stand-ins for OpenWrt's /lib/functions.sh and procd.sh, enough to run an init script's start_service.
# UCI values live in variables uci_<section>_<option>; lists in uci_<section>_<option>_list, one per line.
sections=
config_load() {
  sec=
  while read -r kw name value; do
    value=${value#\'}; value=${value%\'}; name=${name#\'}; name=${name%\'}
    case $kw in
      config) sec=$value; sections="$sections $value"; eval "uci_${sec}_TYPE=\$name" ;;
      option) eval "uci_${sec}_${name}=\$value" ;;
      list) eval "uci_${sec}_${name}_list=\"\${uci_${sec}_${name}_list:-}\$value
\"" ;;
    esac
  done < "$UCI_FILE"
}
config_get() { eval "$1=\${uci_${2}_${3}-\${4:-}}"; }
config_get_bool() {
  config_get "$1" "$2" "$3" "${4:-}"
  eval "case \$$1 in 1|on|true|yes|enabled) $1=1;; 0|off|false|no|disabled) $1=0;; *) $1=\${4:-};; esac"
}
config_foreach() { for s in $sections; do eval "t=\$uci_${s}_TYPE"; [ "$t" = "$2" ] && "$1" "$s"; done; }
config_list_foreach() {
  eval "items=\${uci_${1}_${2}_list:-}"
  printf '%s' "$items" | while IFS= read -r v; do "$3" "$v"; done
}
user_exists() { return 1; }
user_add() { echo "user_add $*"; }
chown() { echo "chown $*"; }
mkdir() { :; }
chmod() { :; }
procd_open_instance() { echo "instance $1"; }
procd_close_instance() { echo "end"; }
procd_set_param() { printf 'param'; printf ' [%s]' "$@"; echo; }
procd_append_param() { printf 'append'; printf ' [%s]' "$@"; echo; }
procd_add_reload_trigger() { :; }
EOF
cat packaging/openwrt/camus.config > "$tmp/config"
printf "\tlist public_ip '203.0.113.7'\n\tlist extra '--idle-timeout'\n\tlist extra '120'\n" >> "$tmp/config"
out=$(UCI_FILE=$tmp/config sh -c '. "$1"; . "$2"; start_service' sh "$tmp/openwrt.sh" packaging/openwrt/camus.init) ||
  fail "camus.init start_service failed: $out"
cmd=$(echo "$out" | sed -n 's/^param \[command\] //p; s/^append \[command\] //p' | tr '\n' ' ')
expect='[/usr/bin/camus] [--host] [0.0.0.0] [--port] [8443] [--state-dir] [/etc/camus] [--log-level] [info] [--tls] [--small] [--public-ip] [203.0.113.7] [--idle-timeout] [120] '
[ "$cmd" = "$expect" ] || fail "camus.init gives procd: $cmd
expected: $expect"
for p in '\[user\] \[camus\]' '\[respawn\]' '\[reload_signal\] \[HUP\]' '\[no_new_privs\] \[1\]'; do
  echo "$out" | grep -q "^param $p" || fail "camus.init does not set $p: $out"
done
echo "$out" | grep -q '^user_add camus' || fail "camus.init does not make its user"
# each argument must be one the binary takes
if [ "$(uname -m)" = x86_64 ]; then
  help=$("$bin" --help 2>&1 || true)
  for o in $(grep -o -- 'add_arg --[a-z-]*\|"$PROG" .*' packaging/openwrt/camus.init | grep -o -- '--[a-z-]*' | sort -u); do
    echo "$help" | grep -q -- "$o" || fail "camus.init passes $o, which camus --help does not list"
  done
fi
echo "OpenWrt init script: procd gets $cmd"
echo "check-packaging: ok"
