"""How often a signal makes a call corral looks at fail with EINTR.

Under a sandbox every open for writing waits while corral looks at it (see
``corral/sandbox/witness.py``).  A caught signal whose handler lacks
SA_RESTART interrupts that wait, and the open fails with EINTR, which an
open of a file never does without the sandbox.  Since Linux 5.19 the
filter's wait is killable once corral has read the call, which leaves only
the moments before that.

A small C program (built here with ``cc``) opens a file in the workspace
for writing N times while an interval timer sends it SIGALRM every
INTERVAL microseconds, to a handler without SA_RESTART, and counts the
opens that failed with EINTR.  It runs without a sandbox (the baseline:
none fail), under workspace-write on bubblewrap, and on Landlock where the
kernel has it (its weaker guarantees accepted), interleaved.  Printed per
way: the median share of signals that failed an open, and the median time
per open.
Run: ``python bench/bench_interruptions.py [RUNS] [N] [INTERVAL]``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from unittest import mock

import corral
import corral.sandbox.bwrap
from corral.sandbox.landlock import LandlockBackend, landlock_abi

PROGRAM = r"""
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t signals;
static void count(int signum) { (void)signum; signals++; }

int main(int argc, char **argv) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = count;  /* no SA_RESTART */
    sigaction(SIGALRM, &action, NULL);
    int opens = atoi(argv[2]), interrupted = 0, failed = 0;
    struct itimerval every = {{0, atol(argv[3])}, {0, atol(argv[3])}};
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    setitimer(ITIMER_REAL, &every, NULL);
    for (int i = 0; i < opens; i++) {
        int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            close(fd);
        else if (errno == EINTR)
            interrupted++;
        else
            failed++;
    }
    clock_gettime(CLOCK_MONOTONIC, &end);
    double elapsed = (end.tv_sec - start.tv_sec) + (end.tv_nsec - start.tv_nsec) / 1e9;
    printf("%d %d %d %.9f\n", interrupted, failed, (int)signals, elapsed);
    return failed != 0;
}
"""
LANDLOCK_ACCEPTS = ("shared-tmp", "visible-processes", "no-deny-read", "unprotected-paths",
                    "changeable-attributes")


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    opens = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    interval = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    with tempfile.TemporaryDirectory(prefix="corral-bench-",
                                     dir=os.environ.get("CORRAL_BENCH_DIR", "/var/tmp")) as work:
        program = os.path.join(work, "opens")
        subprocess.run(["cc", "-O2", "-o", program, "-x", "c", "-"], input=PROGRAM.encode(),
                       check=True)
        argv = [program, os.path.join(work, "target"), str(opens), str(interval)]

        def run(policy: corral.SandboxPolicy | str) -> tuple[int, int, float]:
            result = corral.run(argv, cwd=work, policy=policy, timeout=600)
            assert result.exit_code == 0, result.output.text
            interrupted, _, signals, elapsed = result.stdout.split()
            return int(interrupted), int(signals), float(elapsed)

        def on_landlock() -> tuple[int, int, float]:
            with mock.patch.object(corral.sandbox.bwrap, "bwrap_backend", lambda: None):
                return run(corral.SandboxPolicy.workspace_write(accept_weaker=LANDLOCK_ACCEPTS))

        ways: dict[str, Callable[[], tuple[int, int, float]]] = {
            "no sandbox (full-access)": lambda: run("full-access"),
            "workspace-write, bubblewrap": lambda: run("workspace-write"),
        }
        abi, why = landlock_abi()
        if abi >= LandlockBackend.MINIMUM_ABI:
            ways["workspace-write, Landlock"] = on_landlock
        else:
            print(f"(no Landlock rung here: ABI {abi} {why})")
        outcomes: dict[str, list[tuple[int, int, float]]] = {name: [] for name in ways}
        for _ in range(runs):
            for name, way in ways.items():
                outcomes[name].append(way())
    print(f"\n{opens} opens for writing under SIGALRM every {interval} us (no SA_RESTART); "
          f"{runs} runs each, interleaved")
    print(f"  {'':<32} {'EINTR/signal':>13} {'EINTR':>7} {'signals':>8} {'per open':>10}")
    for name, rows in outcomes.items():
        share = statistics.median(i / s if s else 0.0 for i, s, _ in rows)
        print(f"  {name:<32} {share:>12.1%} {statistics.median(i for i, _, _ in rows):>7}"
              f" {statistics.median(s for _, s, _ in rows):>8}"
              f" {statistics.median(e for _, _, e in rows) / opens * 1e6:>8.1f}us")


if __name__ == "__main__":
    main()
