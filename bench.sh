#!/usr/bin/env bash
# The head-to-head benchmark of sluicedb, RocksDB, redb and LMDB (see README.md).
# Installs what a fresh machine lacks, builds once per machine (one shared
# target directory, so RocksDB's C++ is compiled once), then runs the
# comparison with the arguments given, e.g. `./bench.sh --quick`.
set -euo pipefail
cd "$(dirname "$0")"

.ci/ensure-libclang

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sluicedb-target}"
exec cargo run --release -p sluicedb-bench --bin compare -- "$@"
