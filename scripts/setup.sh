#!/usr/bin/env bash
# Makes a Debian machine ready to build and run AuthRelay: installs libtirpc-dev,
# rpcsvc-proto (rpcgen), rpcbind and libpq-dev (the PostgreSQL sink's client
# library) when missing, and starts rpcbind when it is not running. Sourced by
# scripts/demo.sh and scripts/test.sh; safe to run again.
set -euo pipefail

as_root() {
  if [[ $(id -u) == 0 ]]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else echo "setup: '$*' needs root; run it as root or install sudo" >&2; exit 1
  fi
}

missing=()
dpkg -s libtirpc-dev >/dev/null 2>&1 || missing+=(libtirpc-dev)
command -v rpcgen >/dev/null || missing+=(rpcsvc-proto)
command -v rpcbind >/dev/null || [[ -x /usr/sbin/rpcbind ]] || missing+=(rpcbind)
command -v pkg-config >/dev/null || missing+=(pkg-config)
dpkg -s libpq-dev >/dev/null 2>&1 || missing+=(libpq-dev)
if (( ${#missing[@]} )); then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Ask rpcbind itself: a process list can show a dead (zombie) rpcbind.
rpcbind_answers() { rpcinfo -T local localhost 100000 4 >/dev/null 2>&1; }
if ! rpcbind_answers; then
  echo "setup: starting rpcbind"
  if [[ -d /run/systemd/system ]]; then
    as_root systemctl start rpcbind.socket rpcbind.service || as_root /usr/sbin/rpcbind -w
  else
    as_root /usr/sbin/rpcbind -w
  fi
fi
for _ in $(seq 50); do rpcbind_answers && break; sleep 0.1; done
rpcbind_answers || { echo "setup: rpcbind does not answer on its local socket (try: rpcbind -w)" >&2; exit 1; }
