#!/usr/bin/env bash
# Sets the machine up (scripts/setup.sh), builds in release, and runs `authrelay demo`:
# a collector and an agent on temporary paths, a collector outage mid-run, and a report.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "demo: building (release; the first build takes a few minutes)"
swift build -c release --product authrelay 2>&1 | tail -n 1
swift build -c release --product authrelayd 2>&1 | tail -n 1
exec .build/release/authrelay demo "$@"
