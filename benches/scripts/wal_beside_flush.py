#!/usr/bin/env python3
"""How a tree flush's write-back slows the WAL syncs beside it, on this disk.

A durable batch commit of 1000 keys appends about 133 KB to the WAL and
syncs it, with about 0.5 ms of CPU (the next batch's build) between syncs.
At 10M keys a flush of the memtable into the tree rewrites most leaves:
hundreds of MiB of 4 KiB pages scattered over the data file, written back
while the writer keeps committing. This measures the WAL-like sync of
`fsync_cadence.py` (beside this script), after 0.5 ms of busy CPU, alone
and then beside a second process that writes random 4 KiB pages of a
1 GiB file and fdatasyncs after every CHUNK bytes (16 MiB, 1 MiB,
256 KiB, 64 KiB), the flusher's throughput printed as it runs. Python 3, standard
library only:

    python3 benches/scripts/wal_beside_flush.py [DIR]   # DIR on the disk to test (default .)

Results on the benchmark host are in design/benchmarks.md (fifty-fourth
session). Nothing here is part of the engine or the benchmark's rows.
"""
import os
import random
import subprocess
import sys
import time

from fsync_cadence import measure  # the WAL-like sync, shared with that script

GAP_S = 500e-6
FLUSHER_FILE_BYTES = 1 << 30
CHUNKS = (16 << 20, 1 << 20, 256 << 10, 64 << 10)


def row(name, latencies):
    n = len(latencies)
    p50, p90, p99 = (latencies[int(n * q)] for q in (0.5, 0.9, 0.99))
    mean = sum(latencies) / n
    print(f"| {name} | {p50:.0f} us | {p90:.0f} us | {p99:.0f} us | {mean:.0f} us |", flush=True)


def flusher(path, chunk):
    """Random 4 KiB page writes, an fdatasync after every `chunk` bytes,
    until killed; prints its write rate every 4 s."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    os.ftruncate(fd, FLUSHER_FILE_BYTES)
    page = b"y" * 4096
    pages = FLUSHER_FILE_BYTES // 4096
    written, began = 0, time.perf_counter()
    while True:
        for _ in range(chunk // 4096):
            os.pwrite(fd, page, random.randrange(pages) * 4096)
            written += 4096
        os.fdatasync(fd)
        elapsed = time.perf_counter() - began
        if elapsed > 4:
            print(f"  (flusher, {chunk >> 10} KiB per sync: {written / elapsed / 1e6:.0f} MB/s)", flush=True)
            written, began = 0, time.perf_counter()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--flusher":
        flusher(sys.argv[2], int(sys.argv[3]))
        return
    directory = sys.argv[1] if len(sys.argv) > 1 else "."
    wal = os.path.join(directory, "wal-beside-flush.tmp")
    data = os.path.join(directory, "wal-beside-flush-data.tmp")
    print("| 133 KB + fdatasync, 0.5 ms of CPU before each | p50 | p90 | p99 | mean |")
    print("|---|---|---|---|---|")
    try:
        row("alone", measure(wal, GAP_S))
        for chunk in CHUNKS:
            beside = subprocess.Popen([sys.executable, __file__, "--flusher", data, str(chunk)])
            try:
                time.sleep(1)
                row(f"beside a flusher syncing every {chunk >> 10} KiB", measure(wal, GAP_S))
                time.sleep(3.5)
            finally:
                beside.kill()
                beside.wait()
        row("alone, again", measure(wal, GAP_S))
    finally:
        for path in (wal, data):
            if os.path.exists(path):
                os.remove(path)


if __name__ == "__main__":
    main()
