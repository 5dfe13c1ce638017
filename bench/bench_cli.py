"""CLI start-up: ``corral run --policy full-access -- true`` as a whole process vs ``python3 -c pass``.

The sandbox's own cost is measured by bench_sandbox.py; this is the engine's.

Measures what an agent pays per command when it shells out to corral.  The
interpreter is the one running this script (the venv corral is installed in).
Run: ``python bench/bench_cli.py [RUNS]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from _common import interleaved, table


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    corral = os.path.join(os.path.dirname(sys.executable), "corral")
    if not os.path.exists(corral):
        corral = shutil.which("corral") or sys.exit("corral is not installed in this environment")
    true = shutil.which("true") or "/bin/true"
    commands = {
        "/bin/true": [true],
        "python -c pass  (baseline)": [sys.executable, "-c", "pass"],
        "python -I -S -c pass": [sys.executable, "-I", "-S", "-c", "pass"],
        "corral run --policy full-access -- true": [corral, "run", "--policy", "full-access",
                                                     "--", "true"],
    }
    candidates = {
        name: (lambda argv=argv: subprocess.run(argv, check=True)) for name, argv in commands.items()
    }
    times = interleaved(candidates, runs, warmup=5)
    table(f"whole-process start-up, {runs} runs each, interleaved", times,
          baseline="python -c pass  (baseline)")


if __name__ == "__main__":
    main()
