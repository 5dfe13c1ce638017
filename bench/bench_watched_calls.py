"""What looking at each exec, or each kill, costs a command that makes many.

Every ``execve`` waits while corral looks at the program (is it
set-user-ID, set-group-ID, or does it carry file capabilities?), and every
``kill`` of a pid while corral looks at the target (a host pid, outside the
run? see ``corral/sandbox/witness.py``).  This runs one shell loop that
makes the call N times per pass (``execs``: runs ``/bin/true``; ``kills``:
``kill -0`` of the shell itself, a builtin, so no exec; ``host-kills``: of
a pid above any the sandbox gives out, a new one each pass, so that under
bubblewrap each asks corral's init, the sandbox's PID 1, and under Landlock
each looks for the target's /proc status) three ways,
interleaved: without a sandbox, under workspace-write with that call not
looked at (the rest of the sandbox, the write witness included,
unchanged), and under workspace-write as corral runs it.  The ratio of the
last two is the price; the figure per call is their difference over the
calls made.  ``--landlock`` runs the sandboxed ways on the Landlock backend
(its weaker guarantees accepted) instead of bubblewrap; with
``CORRAL_LANDLOCK_ABI=4`` too, it prices the gate's guard of kills, which
stands in for Landlock's signal scoping below ABI 6.
Run: ``python bench/bench_watched_calls.py [execs|kills|host-kills] [RUNS] [N] [--landlock]``.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from unittest import mock

from _common import price

import corral
import corral.sandbox.bwrap
import corral.sandbox.landlock
from corral.sandbox.seccomp import build_program

# What each loop makes a pass, and the build_program options that watch it
# (below Landlock ABI 6, CORRAL_LANDLOCK_ABI=4 for one, the gate guards kills).
CALLS = {
    "execs": ("/bin/true", ("witness_execs",)),
    "kills": ('kill -0 "$$"', ("witness_signals", "guard_signals")),
    "host-kills": ('kill -0 $(($$ + 100000 + i)) 2>/dev/null',
                   ("witness_signals", "guard_signals")),
}
LANDLOCK_ACCEPTS = ("shared-tmp", "visible-processes", "no-deny-read", "unprotected-paths",
                    "changeable-attributes")


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg != "--landlock"]
    landlock = len(args) < len(sys.argv) - 1
    what = args[0] if args else "execs"
    if what not in CALLS:
        sys.exit(f"usage: bench_watched_calls.py [{'|'.join(CALLS)}] [RUNS] [N] [--landlock]")
    runs = int(args[1]) if len(args) > 1 else 30
    count = int(args[2]) if len(args) > 2 else 1000
    call, options = CALLS[what]
    loop = f'i=0; while [ "$i" -lt "$1" ]; do {call}; i=$((i + 1)); done'
    backend = corral.sandbox.landlock if landlock else corral.sandbox.bwrap
    sandboxed = corral.SandboxPolicy.workspace_write(
        accept_weaker=LANDLOCK_ACCEPTS if landlock else ())
    with tempfile.TemporaryDirectory(prefix="corral-bench-", dir="/var/tmp") as workspace:
        subprocess.run(["git", "init", "-q", workspace], check=True)
        argv = ["sh", "-c", loop, "sh", str(count)]

        def run(policy: str | corral.SandboxPolicy) -> None:
            result = corral.run(argv, cwd=workspace, policy=policy)
            assert result.exit_code == 0 and result.denials == (), result.output.text
            assert result.sandbox == ("landlock" if landlock else "bwrap") or policy == "full-access"

        off = dict.fromkeys(options, False)

        def not_looked_at() -> None:
            with mock.patch.object(backend, "build_program", lambda *args, **given:
                                   build_program(*args, **{**given, **off})):
                run(sandboxed)

        unwatched = f"workspace-write, {what} not looked at"
        with mock.patch.object(corral.sandbox.bwrap, "bwrap_backend",
                               (lambda: None) if landlock else corral.sandbox.bwrap.bwrap_backend):
            price(f"{call} run {count} times by a shell loop ({'Landlock' if landlock else 'bwrap'})"
                  f"; {runs} runs each, interleaved", {
                      "no sandbox (full-access)": lambda: run("full-access"),
                      unwatched: not_looked_at,
                      "workspace-write  (corral's default)": lambda: run(sandboxed),
                  }, runs, unwatched, "workspace-write  (corral's default)",
                  count, f"looking at {what} (one call)")


if __name__ == "__main__":
    main()
