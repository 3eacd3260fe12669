#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs a container from the built-in busybox image.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
node dist/scripts/demo.js
