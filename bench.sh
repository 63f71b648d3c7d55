#!/usr/bin/env bash
# The head-to-head benchmark of sluicedb, RocksDB and redb (see README.md).
# Installs what a fresh machine lacks, builds once per machine (one shared
# target directory, so RocksDB's C++ is compiled once), then runs the
# comparison with the arguments given, e.g. `./bench.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")"

if ! ldconfig -p 2>/dev/null | grep -q 'libclang' && ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    echo "installing libclang (RocksDB's bindings need it)..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libclang-dev
  else
    echo "libclang is missing; install it with:  sudo apt-get install -y libclang-dev" >&2
    exit 1
  fi
fi

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluicedb-target}"
exec cargo run --release -p sluicedb-bench --bin compare -- "$@"
