"""What looking at each exec, or each kill, costs a command that makes many.

Under bubblewrap every ``execve`` waits while corral looks at the program
(is it set-user-ID, set-group-ID, or does it carry file capabilities?), and
every ``kill`` of a pid while corral looks at the target (a host pid the
sandbox does not have? see ``corral/sandbox/witness.py``).  This runs one
shell loop that makes the call N times (``execs``: runs ``/bin/true``;
``kills``: ``kill -0`` of the shell itself, a builtin, so no exec;
``host-kills``: two of pids the sandbox never gave out, this process's and
one likely free, so each kill asks corral's init, the sandbox's PID 1) three
ways, interleaved: without a sandbox, under workspace-write with that call
not looked at (the rest of the sandbox, the write witness included,
unchanged), and under workspace-write as corral runs it.  The ratio of the
last two is the price; the figure per call is their difference over ``N``.
Run: ``python bench/bench_watched_calls.py [execs|kills|host-kills] [RUNS] [N]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from _common import price, replaced

import corral
import corral.sandbox.bwrap
from corral.sandbox.seccomp import build_program

# What each loop makes N times, and the build_program option that watches it.
CALLS = {
    "execs": ("/bin/true", "witness_execs"),
    "kills": ('kill -0 "$$"', "witness_signals"),
    # Each of these a host pid the sandbox does not have: corral asks its init.
    "host-kills": (f"kill -0 {os.getpid()} 2>/dev/null; kill -0 $(($$ + 100000)) 2>/dev/null",
                   "witness_signals"),
}


def main() -> None:
    what = sys.argv[1] if len(sys.argv) > 1 else "execs"
    if what not in CALLS:
        sys.exit(f"usage: bench_watched_calls.py [{'|'.join(CALLS)}] [RUNS] [N]")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    call, option = CALLS[what]
    loop = f'i=0; while [ "$i" -lt "$1" ]; do {call}; i=$((i + 1)); done'
    with tempfile.TemporaryDirectory(prefix="corral-bench-", dir="/var/tmp") as workspace:
        subprocess.run(["git", "init", "-q", workspace], check=True)
        argv = ["sh", "-c", loop, "sh", str(count)]

        def run(policy: str) -> None:
            result = corral.run(argv, cwd=workspace, policy=policy)
            assert result.exit_code == 0 and result.denials == (), result.output.text

        def not_looked_at() -> None:
            with replaced(corral.sandbox.bwrap, "build_program", lambda *args, **options:
                          build_program(*args, **{**options, option: False})):
                run("workspace-write")

        unwatched = f"workspace-write, {what} not looked at"
        price(f"{call} run {count} times by a shell loop; {runs} runs each, interleaved", {
            "no sandbox (full-access)": lambda: run("full-access"),
            unwatched: not_looked_at,
            "workspace-write  (corral's default)": lambda: run("workspace-write"),
        }, runs, unwatched, "workspace-write  (corral's default)",
            count, f"looking at {what} (one call)")


if __name__ == "__main__":
    main()
