#!/usr/bin/env bash
# Runs every check and test: generated code up to date, the build, the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The PostgreSQL store's tests run a temporary server of their own.
source scripts/setup-postgres.sh

rpcgen/generate.sh --check
swift build 2>&1 | tail -n 3
# The integration tests start the built programs (authrelayd, authrelay, legacy-*).
swift test 2>&1
