#!/usr/bin/env bash
# Installs every Debian 12 package nvlsched's build and tests need. Idempotent: prints nothing
# and exits 0 when nothing is missing. Needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(
  cmake g++ clang make pkg-config ccache
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  libabsl-dev libsqlitecpp-dev libsqlite3-dev sqlite3 prometheus-cpp-dev libgtest-dev libgmock-dev
  libbenchmark-dev libspdlog-dev libfmt-dev libjwt-dev libssl-dev libjemalloc-dev
  golang-github-gogo-googleapis-dev
  libclang-rt-14-dev    # clang's sanitizer runtimes, libFuzzer's included (tools/fuzz.sh)
  python3-grpcio python3-protobuf
  postgresql-15 libpqxx-dev    # the HA store (issue 22) and its tests (tools/pg_dev.sh)
  gnuplot-nox curl openssl
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install_deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
