#!/usr/bin/env python3
"""How this machine's fdatasync latency depends on the time between syncs.

A durable batch commit of 1000 keys appends about 133 KB to the WAL and
syncs it; a single writer spends its next transaction's build (about
0.2-0.6 ms of CPU) before the next sync. This measures a 133 KB pwrite +
fdatasync to a preallocated file, back to back and after a busy gap of
that length, and the same with another process syncing a 4 KiB file in a
loop beside it (the device kept busy). Python 3, standard library only:

    python3 benches/scripts/fsync_cadence.py [DIR]   # DIR on the disk to test (default .)

Results on the benchmark host are in design/benchmarks.md (fifty-third
session). Nothing here is part of the engine or the benchmark's rows.
"""
import os
import subprocess
import sys
import time

RECORD = 133_000
SYNCS = 300


def measure(path, gap_s):
    """pwrite + fdatasync of RECORD bytes, SYNCS times, `gap_s` of busy CPU
    between them; returns the latencies in microseconds, sorted."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC)
    try:
        os.pwrite(fd, b"\0" * (RECORD * SYNCS), 0)
        os.fsync(fd)
        payload = b"x" * RECORD
        latencies = []
        for i in range(SYNCS):
            until = time.perf_counter() + gap_s
            while time.perf_counter() < until:
                pass
            began = time.perf_counter()
            os.pwrite(fd, payload, i * RECORD)
            os.fdatasync(fd)
            latencies.append((time.perf_counter() - began) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    return sorted(latencies)


def row(label, latencies):
    n = len(latencies)
    print(
        f"{label:<44} p50 {latencies[n // 2]:6.0f} us  p90 {latencies[n * 9 // 10]:6.0f}"
        f"  p99 {latencies[n * 99 // 100]:6.0f}  mean {sum(latencies) / n:6.0f}"
    )


BESIDE = """
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_TRUNC)
while True:
    os.pwrite(fd, b"y" * 4096, 0)
    os.fdatasync(fd)
"""


def main():
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    path = os.path.join(directory, "fsync-cadence.tmp")
    beside_path = os.path.join(directory, "fsync-cadence-beside.tmp")
    for gap_us in (0, 50, 200, 500):
        row(f"133 KB + fdatasync, {gap_us} us busy before each", measure(path, gap_us / 1e6))
    beside = subprocess.Popen([sys.executable, "-c", BESIDE, beside_path])
    try:
        time.sleep(0.5)
        for gap_us in (0, 500):
            row(f"the same, {gap_us} us busy, 4 KiB syncs beside", measure(path, gap_us / 1e6))
    finally:
        beside.kill()
        beside.wait()
        os.unlink(beside_path)


if __name__ == "__main__":
    main()
