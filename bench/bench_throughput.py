"""Capture throughput and memory: 1 GiB on stdout, captured by corral vs a plain read loop.

Targets: corral's throughput >= 0.8 of the baseline's (a Popen whose stdout is
read in 64 KiB chunks and discarded), and corral's peak RSS growth <= 64 MiB.
Each measurement runs in a fresh interpreter so that peak RSS is its own.
Run: ``python bench/bench_throughput.py [ROUNDS]``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

SIZE = 1024**3
# A producer faster than any reader: 1 MiB blocks of 64-byte lines, written
# straight to the pipe, so the figures measure the reading side.
PRODUCER = (
    "import os\n"
    "block = (b'corral throughput benchmark'.ljust(63, b'.') + b'\\n') * 16384\n"
    f"for _ in range({SIZE // (64 * 16384)}):\n"
    "    view = memoryview(block)\n"
    "    while view:\n"
    "        view = view[os.write(1, view):]\n"
)
COMMAND = [sys.executable, "-c", PRODUCER]

BASELINE = """
import fcntl, json, os, resource, subprocess, sys, time
cmd, pipe_size, chunk_size = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
fd, total = proc.stdout.fileno(), 0
if pipe_size:
    fcntl.fcntl(fd, 1031, pipe_size)  # F_SETPIPE_SZ
while chunk := os.read(fd, chunk_size):
    total += len(chunk)
proc.wait()
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": elapsed, "bytes": total, "rss_growth_kib": after - before}))
"""

CORRAL = """
import json, resource, sys, time
import corral
cmd = json.loads(sys.argv[1])
corral.run(["true"], policy="full-access")  # load lazily imported parts before measuring memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
result = corral.run(cmd, timeout=None, policy="full-access")
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert result.exit_code == 0, result.stderr
print(json.dumps({"seconds": elapsed, "bytes": result.stdout_capture.total_bytes,
                  "rss_growth_kib": after - before}))
"""


BASELINE_NAME = "baseline: Popen + 64 KiB read loop"


def measure(script: str, *args: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(COMMAND), *args],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    # The baseline the target is set against, and the same read pattern as
    # corral's (1 MiB pipe, 256 KiB reads) to show what capturing itself costs.
    candidates = {
        BASELINE_NAME: (BASELINE, "0", "65536"),
        "Popen + 1 MiB pipe + 256 KiB reads": (BASELINE, str(2**20), str(2**18)),
        "corral.run (capture)": (CORRAL,),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, (script, *args) in candidates.items():
            runs[name].append(measure(script, *args))
    print(f"\nthroughput, 1 GiB on stdout, {rounds} rounds each, interleaved")
    print(f"  {'':<38} {'median MiB/s':>13} {'median s':>9} {'peak RSS growth':>16} {'ratio':>6}")
    base = statistics.median(r["bytes"] / r["seconds"] for r in runs[BASELINE_NAME])
    for name, results in runs.items():
        assert all(r["bytes"] == SIZE for r in results), results
        rate = statistics.median(r["bytes"] / r["seconds"] for r in results)
        seconds = statistics.median(r["seconds"] for r in results)
        rss = max(r["rss_growth_kib"] for r in results) / 1024
        print(f"  {name:<38} {rate / 2**20:>13.0f} {seconds:>9.3f} {rss:>13.1f}MiB {rate / base:>6.2f}")


if __name__ == "__main__":
    main()
