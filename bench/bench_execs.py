"""What looking at each exec costs a command that runs many programs.

Under bubblewrap every ``execve`` waits while corral looks at the program
(is it set-user-ID, set-group-ID, or does it carry file capabilities? see
``corral/sandbox/witness.py``).  This runs one shell loop that runs
``/bin/true`` N times three ways, interleaved: without a sandbox, under
workspace-write with execs not looked at (the rest of the sandbox, the write
witness included, unchanged), and under workspace-write as corral runs it.
The ratio of the last two is the price; the figure per exec is their
difference over ``N``.
Run: ``python bench/bench_execs.py [RUNS] [N]``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile

from _common import price, replaced

import corral
import corral.sandbox.bwrap
from corral.sandbox.seccomp import build_program

LOOP = 'i=0; while [ "$i" -lt "$1" ]; do /bin/true; i=$((i + 1)); done'


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    execs = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    with tempfile.TemporaryDirectory(prefix="corral-bench-", dir="/var/tmp") as workspace:
        subprocess.run(["git", "init", "-q", workspace], check=True)
        argv = ["sh", "-c", LOOP, "sh", str(execs)]

        def run(policy: str) -> None:
            result = corral.run(argv, cwd=workspace, policy=policy)
            assert result.exit_code == 0 and result.denials == (), result.output.text

        def execs_not_looked_at() -> None:
            with replaced(corral.sandbox.bwrap, "build_program", lambda *args, **options:
                          build_program(*args, **{**options, "witness_execs": False})):
                run("workspace-write")

        price(f"/bin/true run {execs} times by a shell loop; {runs} runs each, interleaved", {
            "no sandbox (full-access)": lambda: run("full-access"),
            "workspace-write, execs not looked at": execs_not_looked_at,
            "workspace-write  (corral's default)": lambda: run("workspace-write"),
        }, runs, "workspace-write, execs not looked at", "workspace-write  (corral's default)",
            execs, "looking at execs (an exec)")


if __name__ == "__main__":
    main()
