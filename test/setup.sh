#!/bin/sh
# Installs the Debian packages the test suite talks to (never skipped silently):
#   dig (bind9-dnsutils)  - the conformance battery and the README's dig examples
#   kdig (knot-dnsutils)  - an independent parser in the conformance battery
#   knotd (knot)          - the reference server of the differential test
#   python3               - raw-packet checks in the conformance battery
#   mmdblookup (mmdb-bin) - an independent reader of the geo databases we write
#   chromium              - the /ui status page test (playwright-core drives it)
#   redis-server          - the shared-state (store: redis) multi-node tests
# Runs apt-get only when something is missing; needs root (or sudo) then.
set -eu
missing=""
command -v dig >/dev/null 2>&1 || missing="$missing bind9-dnsutils"
command -v kdig >/dev/null 2>&1 || missing="$missing knot-dnsutils"
command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ] || missing="$missing knot"
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v mmdblookup >/dev/null 2>&1 || missing="$missing mmdb-bin"
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
[ -z "$missing" ] && exit 0
echo "test/setup.sh: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
