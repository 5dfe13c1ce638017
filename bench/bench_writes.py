"""What the write witness costs a command that writes many files.

Under a sandbox, every system call that writes to a path waits while corral
looks at it (see ``corral/sandbox/witness.py``).  This runs one command that
creates, writes and removes N files in the workspace (``N`` opens for
writing and ``N`` unlinks: ``2N`` notified calls) three ways, interleaved:
without a sandbox, under workspace-write with no write notified (the rest
of the sandbox unchanged), and under workspace-write as corral runs it.
The ratio of the last two is the witness's price; the figure per call is
their difference over ``2N``.
Run: ``python bench/bench_writes.py [RUNS] [N]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from unittest import mock

from _common import price

import corral
import corral.sandbox.bwrap
import corral.sandbox.landlock
from corral.sandbox.seccomp import build_program

SCRIPT = """
import os, sys
for i in range(int(sys.argv[1])):
    with open(f"f{i}", "w") as f:
        f.write("x")
for i in range(int(sys.argv[1])):
    os.unlink(f"f{i}")
"""


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    files = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    with tempfile.TemporaryDirectory(prefix="corral-bench-", dir=os.environ.get("CORRAL_BENCH_DIR", "/var/tmp")) as workspace:
        subprocess.run(["git", "init", "-q", workspace], check=True)
        argv = [sys.executable, "-c", SCRIPT, str(files)]

        def run(policy: str) -> None:
            result = corral.run(argv, cwd=workspace, policy=policy)
            assert result.exit_code == 0 and result.denials == (), result.output.text

        def without_witness() -> None:
            # The same sandbox, its seccomp program notifying no write.  (A
            # gate without a witness would refuse the calls it is told of.)
            def unwatched(*args: object, **options: object) -> bytes:
                return build_program(*args, **{**options, "witness_writes": False})

            with mock.patch.object(corral.sandbox.bwrap, "build_program", unwatched):
                run("workspace-write")

        price(f"{files} files created, written and removed; {runs} runs each, interleaved", {
            "no sandbox (full-access)": lambda: run("full-access"),
            "workspace-write, witness off": without_witness,
            "workspace-write  (corral's default)": lambda: run("workspace-write"),
        }, runs, "workspace-write, witness off", "workspace-write  (corral's default)",
            2 * files, "witness (a notified call)")


if __name__ == "__main__":
    main()
