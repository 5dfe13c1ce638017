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
COMMAND = ["sh", "-c", f"yes 'corral throughput benchmark line' | head -c {SIZE}"]

BASELINE = """
import json, os, resource, subprocess, sys, time
cmd = json.loads(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
fd, total = proc.stdout.fileno(), 0
while chunk := os.read(fd, 65536):
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
corral.run(["true"])  # load lazily imported parts before measuring memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
result = corral.run(cmd, timeout=None)
elapsed = time.perf_counter() - started
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
assert result.exit_code == 0, result.stderr
print(json.dumps({"seconds": elapsed, "bytes": result.stdout_capture.total_bytes,
                  "rss_growth_kib": after - before}))
"""


def measure(script: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", script, json.dumps(COMMAND)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    runs: dict[str, list[dict[str, float]]] = {"baseline: Popen + 64 KiB read loop": [],
                                               "corral.run (capture)": []}
    for _ in range(rounds):
        runs["baseline: Popen + 64 KiB read loop"].append(measure(BASELINE))
        runs["corral.run (capture)"].append(measure(CORRAL))
    print(f"\nthroughput, 1 GiB on stdout, {rounds} rounds each, interleaved")
    print(f"  {'':<38} {'median MiB/s':>13} {'median s':>9} {'peak RSS growth':>16} {'ratio':>6}")
    base = statistics.median(r["bytes"] / r["seconds"] for r in runs["baseline: Popen + 64 KiB read loop"])
    for name, results in runs.items():
        assert all(r["bytes"] == SIZE for r in results), results
        rate = statistics.median(r["bytes"] / r["seconds"] for r in results)
        seconds = statistics.median(r["seconds"] for r in results)
        rss = max(r["rss_growth_kib"] for r in results) / 1024
        print(f"  {name:<38} {rate / 2**20:>13.0f} {seconds:>9.3f} {rss:>13.1f}MiB {rate / base:>6.2f}")


if __name__ == "__main__":
    main()
