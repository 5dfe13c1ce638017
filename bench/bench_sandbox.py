"""Sandboxed command latency: corral's policies vs bare bubblewrap and peers.

Everything runs in a fresh git repository (in /var/tmp), so workspace-write
pays for what a real workspace costs: its git metadata is looked at and its
missing protected paths get placeholders.

Library: ``corral.run(["true"])`` under workspace-write (the default) and
read-only against ``subprocess.run`` of a bare bwrap sandbox (the floor) and
against unsandboxed ``corral.run``; target <= 2x bare bwrap.  One more row
runs bwrap with the mounts corral asks for under workspace-write (its
placeholders in place, the protected paths bound by corral's sandbox init
where corral uses it; without the seccomp program and the status and lock
descriptors), to tell the sandbox's cost from the rest of corral's.

CLI: the whole ``corral run -- true`` process against bare bwrap, its
interpreter's own start-up (``python -c pass``: most of the CLI's time, and
what tells machines and Python builds apart) and, where they are installed,
``codex sandbox`` (npm ``@openai/codex``, in its workspace-write and default
read-only modes) and ``srt true`` (npm ``@anthropic-ai/sandbox-runtime``,
which needs ripgrep and socat).  Peers are looked up on PATH and in
``$CORRAL_PEERS_BIN`` (e.g. a ``node_modules/.bin``); nothing is installed
by this script.

Run: ``python bench/bench_sandbox.py [RUNS]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable

from _common import interleaved, table

import corral

BARE = ["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
        "--proc", "/proc", "--tmpfs", "/tmp", "true"]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    bwrap = shutil.which("bwrap") or sys.exit("bwrap is not installed")
    cli = os.path.join(os.path.dirname(sys.executable), "corral")
    with tempfile.TemporaryDirectory(prefix="corral-bench-", dir="/var/tmp") as workspace:
        subprocess.run(["git", "init", "-q", workspace], check=True)
        os.chdir(workspace)
        measure(runs, bwrap, cli)


def corral_mounts(bwrap: str) -> tuple[list[str], Callable[[], None]]:
    """bwrap's argv for ``true`` under workspace-write here, as corral builds
    it (with its sandbox init, if it uses one), minus the options that pass
    descriptors; and what ends it (the placeholders stay until then)."""
    from corral._launch import plan_launch
    from corral._request import ExecRequest
    from corral.sandbox import select_backend

    request = ExecRequest(argv=("true",))
    policy = request.resolved_policy
    launch = select_backend(policy).transform(plan_launch(request), policy)
    args, skip = [], False
    for arg in launch.argv[1:]:
        if skip:
            skip = False
        elif arg in ("--json-status-fd", "--sync-fd", "--seccomp", "--report-fd", "--seccomp-fd",
                     "--listener-socket", "--hold-fd", "--fuse-fd", "--environ-fd", "--args",
                     "--cover-directory", "--cover-file"):  # descriptors, and the covers they serve
            skip = True
        else:
            args.append(arg)

    def end() -> None:
        launch.release()
        launch.finish()

    return [bwrap, *args], end


def measure(runs: int, bwrap: str, cli: str) -> None:
    mounts, end = corral_mounts(bwrap)
    library = {
        "bare bwrap via subprocess.run  (floor)": lambda: subprocess.run([bwrap, *BARE]),
        f"{'bwrap + init' if any(m.endswith('_sandbox_init') for m in mounts) else 'bwrap'} "
        f"with corral's {mounts.count('--bind') + mounts.count('--ro-bind')} binds": (
            lambda: subprocess.run(mounts, check=True)),
        "corral.run(['true'])  (workspace-write)": lambda: corral.run(["true"]),
        "corral.run(['true'], policy='read-only')": lambda: corral.run(["true"], policy="read-only"),
        "corral.run(['true'], policy='full-access')": lambda: corral.run(["true"],
                                                                        policy="full-access"),
    }
    try:
        times = interleaved(library, runs)
    finally:
        end()
    table(f"library, {runs} runs each, interleaved", times,
          baseline="bare bwrap via subprocess.run  (floor)")
    # The interpreter's own start-up is most of the CLI's time, and it differs
    # widely between builds (Debian's against pyenv's default, without PGO),
    # so it is measured beside the CLI.
    whole = {
        "bwrap ... true  (floor)": lambda: subprocess.run([bwrap, *BARE]),
        "python -c pass  (corral's interpreter)": lambda: subprocess.run(
            [sys.executable, "-c", "pass"], check=True),
        "corral run -- true  (workspace-write)": lambda: subprocess.run(
            [cli, "run", "--", "true"], check=True),
        "corral run --policy read-only -- true": lambda: subprocess.run(
            [cli, "run", "--policy", "read-only", "--", "true"], check=True),
        "corral run --policy full-access -- true": lambda: subprocess.run(
            [cli, "run", "--policy", "full-access", "--", "true"], check=True),
    }
    search = os.pathsep.join(filter(None, [os.environ.get("CORRAL_PEERS_BIN"),
                                           os.environ.get("PATH")]))
    peers = {
        "codex sandbox (workspace-write) -- true": (
            "codex", ["sandbox", "-c", 'sandbox_mode="workspace-write"', "--", "true"]),
        "codex sandbox -- true  (read-only)": ("codex", ["sandbox", "--", "true"]),
        "srt true": ("srt", ["true"]),
    }
    for label, (name, args) in peers.items():
        path = shutil.which(name, path=search)
        if path is None:
            print(f"  ({name} not found: not measured)")
            continue
        argv = [path, *args]
        whole[label] = lambda argv=argv: subprocess.run(argv, check=True,  # type: ignore[misc]
                                                        stdout=subprocess.DEVNULL)
    print(f"\ncorral's interpreter: {sys.executable} ({os.path.realpath(sys.executable)}, "
          f"Python {sys.version.split()[0]})")
    table(f"whole process, {runs // 4} runs each, interleaved", interleaved(whole, runs // 4, 5),
          baseline="bwrap ... true  (floor)")


if __name__ == "__main__":
    main()
