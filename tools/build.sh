#!/usr/bin/env bash
# Configures and builds nvlsched into build/ (every executable in build/bin/).
# Usage: tools/build.sh [cmake --build args...]   e.g. tools/build.sh --target nvlschedd
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build build -j2 "$@"
