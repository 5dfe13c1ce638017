"""Many runs at once on a loaded machine: 200 concurrent commands from threads.

Two busy loops keep both cores loaded, as a build or a test suite would.
corral must scale like ``subprocess.run``: a spawn path that held the GIL
while its child exec'd made this 100x slower than the baseline.
Run: ``python bench/bench_concurrency.py [ROUNDS]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from _common import interleaved, table

import corral

RUNS = 200
SCRIPT = "echo out-$0; echo err-$0 >&2; sleep 0.05"


def burst(run_one: object) -> None:
    with ThreadPoolExecutor(max_workers=RUNS) as pool:
        list(pool.map(run_one, range(RUNS)))  # type: ignore[arg-type]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(os.cpu_count() or 2)]
    try:
        candidates = {
            "subprocess.run x200  (baseline)": lambda: burst(
                lambda i: subprocess.run(["sh", "-c", SCRIPT, str(i)], capture_output=True)
            ),
            "corral.run x200": lambda: burst(lambda i: corral.run(["sh", "-c", SCRIPT, str(i)],
                                                                policy="full-access")),
        }
        times = interleaved(candidates, rounds, warmup=1)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    table(f"{RUNS} concurrent commands under CPU load, {rounds} rounds, interleaved", times,
          baseline="subprocess.run x200  (baseline)", unit="s")


if __name__ == "__main__":
    main()
