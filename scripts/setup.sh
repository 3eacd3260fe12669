#!/usr/bin/env bash
# Sets a fresh machine up for berth: Debian packages, npm packages, the TypeScript and native
# builds, and the test fixture images. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: busybox for the fixture images, a real registry, skopeo and
# umoci as third-party image tools, runc for differential tests, iproute2 and nftables for the
# network and cleanup checks, a C compiler and make for berth-shim, zstd for zstd layers.
APT_PACKAGES=(busybox-static docker-registry skopeo umoci runc iproute2 nftables gcc make libc6-dev python3 tar openssl systemd perl python3-docker docker-compose iperf3 containernetworking-plugins bzip2 xz-utils zstd)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund
fi
npm run build
node dist/fixtures/cli.js busybox layers
