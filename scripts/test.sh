#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh), then runs lint and every test suite. Run as root:
# the integration tests use namespaces, mounts, cgroups, veth links and nftables for real.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
npm run lint
# A short coverage-guided fuzz pass (docs/security.md, "Fuzzing"): the TypeScript parsers, then
# libFuzzer on the shim's plan decoder when clang can link it (the corpus replay otherwise).
node dist/test/fuzz/run.js --seconds 60 --jobs 2
if echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' |
  clang -fsanitize=fuzzer -x c -o /dev/null - 2>/dev/null; then
  make -C native fuzz FUZZ_SECONDS=30
else
  make -C native fuzz-replay
fi
# The benchmark suite in its one-pass smoke mode, so it cannot rot.
node dist/bench/run.js --quick > /dev/null
npm test
