#!/usr/bin/env bash
# install-deps.sh — install the Debian packages Tessera needs, if missing.
#
# Idempotent: asks dpkg which packages are absent and installs only those
# (one `apt-get update` first, only when something is missing).  Run as root,
# or with sudo available.  Usage: scripts/install-deps.sh [build|test|all]
set -euo pipefail

build_pkgs=(cmake make gcc pkg-config libjansson-dev libpng-dev libtiff-dev libhdf5-dev zlib1g-dev liblz4-dev libzstd-dev liburing-dev libkissfft-dev python3-dev libblosc-dev)
test_pkgs=(clang clang-format libclang-rt-14-dev libcmocka-dev python3-numpy python3-h5py python3-pytest python3-mrcfile python3-hyperspy python3-venv python3-pip python3-setuptools python3-wheel python3-hdf5plugin bitshuffle hdf5-filter-plugin python3-zstandard python3-zarr python3-numcodecs python3-scipy)

case "${1:-all}" in
  build) want=("${build_pkgs[@]}") ;;
  test|all) want=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) echo "usage: $0 [build|test|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
