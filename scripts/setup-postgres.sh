#!/usr/bin/env bash
# Makes a Debian machine ready to build AuthRelayPostgres and to run its
# tests against a real server: installs libpq-dev (libpq and its pkg-config
# file, needed to build) and postgresql (initdb and postgres, needed by the
# tests' and benchmarks' temporary clusters: TemporaryPostgres) when missing.
# No system cluster is created or started: every test runs its own cluster in
# a temporary directory as the `postgres` user the package creates.
# Sourced by CI (or run directly); safe to run again.
#   AUTHRELAY_REQUIRE_POSTGRES=1   what CI sets afterwards: the PostgreSQL tests fail instead of skipping
set -euo pipefail

pg_as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "setup-postgres: '$*' needs root; run it as root or install sudo" >&2; return 1
  fi
}

pg_missing=()
pkg-config --exists libpq 2>/dev/null || pg_missing+=(libpq-dev)
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || pg_missing+=(postgresql)
command -v pkg-config >/dev/null || pg_missing+=(pkg-config)
if (( ${#pg_missing[@]} )); then
  if ! command -v apt-get >/dev/null; then
    echo "setup-postgres: install ${pg_missing[*]} with this system's packages (or set AUTHRELAY_POSTGRES_BIN to initdb's folder)" >&2
    return 1 2>/dev/null || exit 1
  fi
  echo "setup-postgres: installing ${pg_missing[*]}"
  if [[ " ${pg_missing[*]} " == *" postgresql "* && ! -e /etc/postgresql-common/createcluster.conf ]]; then
    # The package would create and start a "main" cluster on port 5432; nothing here uses one.
    pg_as_root mkdir -p /etc/postgresql-common
    echo "create_main_cluster = false" | pg_as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  fi
  pg_as_root apt-get update -qq
  pg_as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold \
    "${pg_missing[@]}" >/dev/null
fi

pg_bin="$(compgen -G "/usr/lib/postgresql/*/bin/postgres" | sort -V | tail -1)"
echo "setup-postgres: libpq $(pkg-config --modversion libpq), server $("$pg_bin" --version | awk '{print $3}') in ${pg_bin%/postgres}"
unset pg_missing pg_bin
