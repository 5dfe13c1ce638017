"""Sandboxed command latency: corral's read-only policy vs bare bubblewrap and peers.

Library: ``corral.run(["true"], policy="read-only")`` against
``subprocess.run`` of a bare bwrap sandbox (the floor) and against
unsandboxed ``corral.run``; target <= 2x bare bwrap.  CLI: the whole
``corral run --policy read-only -- true`` process against bare bwrap and,
where they are installed, ``codex sandbox -- true`` (npm ``@openai/codex``)
and ``srt true`` (npm ``@anthropic-ai/sandbox-runtime``, which needs ripgrep
and socat).  Peers are looked up on PATH and in ``$CORRAL_PEERS_BIN`` (e.g.
a ``node_modules/.bin``); nothing is installed by this script.
Run: ``python bench/bench_sandbox.py [RUNS]``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from _common import interleaved, table

import corral

BARE = ["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--dev", "/dev",
        "--proc", "/proc", "--tmpfs", "/tmp", "true"]


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    bwrap = shutil.which("bwrap") or sys.exit("bwrap is not installed")
    cli = os.path.join(os.path.dirname(sys.executable), "corral")
    library = {
        "bare bwrap via subprocess.run  (floor)": lambda: subprocess.run([bwrap, *BARE]),
        "corral.run(['true'], policy='read-only')": lambda: corral.run(["true"], policy="read-only"),
        "corral.run(['true'])  (no sandbox)": lambda: corral.run(["true"]),
    }
    table(f"library, {runs} runs each, interleaved", interleaved(library, runs),
          baseline="bare bwrap via subprocess.run  (floor)")
    whole = {
        "bwrap ... true  (floor)": lambda: subprocess.run([bwrap, *BARE]),
        "corral run --policy read-only -- true": lambda: subprocess.run(
            [cli, "run", "--policy", "read-only", "--", "true"], check=True),
        "corral run -- true": lambda: subprocess.run([cli, "run", "--", "true"], check=True),
    }
    search = os.pathsep.join(filter(None, [os.environ.get("CORRAL_PEERS_BIN"),
                                           os.environ.get("PATH")]))
    peers = {"codex sandbox -- true": ("codex", ["sandbox", "--", "true"]),
             "srt true": ("srt", ["true"])}
    for label, (name, args) in peers.items():
        path = shutil.which(name, path=search)
        if path is None:
            print(f"  ({name} not found: not measured)")
            continue
        argv = [path, *args]
        whole[label] = lambda argv=argv: subprocess.run(argv, check=True,  # type: ignore[misc]
                                                        stdout=subprocess.DEVNULL)
    table(f"whole process, {runs // 4} runs each, interleaved", interleaved(whole, runs // 4, 5),
          baseline="bwrap ... true  (floor)")


if __name__ == "__main__":
    main()
