#!/bin/sh
# Side-by-side benchmark of issue 7: steerdns vs gdnsd 3 (plugin_geoip) vs Knot
# DNS, loopback only. Installs dnsperf, gdnsd and knot from Debian when missing
# (needs root or sudo), then runs compare.mjs, which exports HEAD, builds it in
# a temporary directory, and prints the Markdown tables. Every flag is passed
# on (bench/README.md); the defaults take about 5 minutes, --seconds 3
# --reload-seconds 6 about 2.
#
#   bench/compare/run.sh [--seconds 10] [--rate 10000] [--repeat 1] [--out FILE] ...
set -eu
here=$(cd "$(dirname "$0")" && pwd)

missing=""
command -v dnsperf >/dev/null 2>&1 || missing="$missing dnsperf"
command -v gdnsd >/dev/null 2>&1 || missing="$missing gdnsd"
command -v knotd >/dev/null 2>&1 || missing="$missing knot"
command -v taskset >/dev/null 2>&1 || missing="$missing util-linux"
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing:$missing" >&2
  $sudo apt-get update -qq
  # The packages' own services are not wanted: the bench starts its servers on loopback ports.
  # RUNLEVEL=1 keeps invoke-rc.d from starting them on install.
  $sudo env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >&2
fi

exec timeout --signal=INT --kill-after=30 1800 node "$here/compare.mjs" "$@"
