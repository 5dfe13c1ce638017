"""Per-command latency: ``corral.run(["true"])`` vs ``subprocess.run(["true"])``.

Target: median ratio <= 1.5 with the tree-kill guarantee in place (the
cgroup mechanism where the machine has it).  Run: ``python bench/bench_latency.py [RUNS]``.
"""

from __future__ import annotations

import subprocess
import sys

from _common import interleaved, table

import corral


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    # The engine's own cost: no sandbox (bench_sandbox.py measures the policies).
    mechanism = corral.run(["true"], policy="full-access").kill_mechanism
    candidates = {
        "subprocess.run(['true'])  (baseline)": lambda: subprocess.run(["true"]),
        f"corral.run(['true'])  [{mechanism.value}]": lambda: corral.run(
            ["true"], policy="full-access"),
        "corral.run(['true'])  [process-group]": lambda: corral.run(
            ["true"], policy="full-access", kill_mechanism=corral.KillMechanism.PROCESS_GROUP
        ),
    }
    times = interleaved(candidates, runs)
    table(f"latency of one command, {runs} runs each, interleaved", times,
          baseline="subprocess.run(['true'])  (baseline)")


if __name__ == "__main__":
    main()
