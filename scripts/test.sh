#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs lint and every test suite. Run as root:
# the integration tests use namespaces, mounts, cgroups, veth links and nftables for real.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npm run lint
make -C native fuzz-replay
# The benchmark suite in its one-pass smoke mode, so it cannot rot.
node dist/bench/run.js --quick > /dev/null
npm test
