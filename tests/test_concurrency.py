"""Many runs at once from threads and tasks: no fd, process or cgroup leaks."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import corral
from conftest import child_pids, open_fds
from corral._containment import _cgroup_host, cgroup_support

RUNS = 200
SCRIPT = "echo out-$0; echo err-$0 >&2; sleep 0.05"


def _cgroups() -> set[str]:
    parent = cgroup_support()[0]
    if parent is None:
        return set()
    return {n for n in os.listdir(parent) if n.startswith(f"corral-{os.getpid()}-")}


def _check_cgroups(before: set[str]) -> None:
    """Run cgroups are pooled for reuse: a bounded number may remain, all empty."""
    host = _cgroup_host()
    if host is None:
        return
    left = _cgroups()
    assert len(left) <= max(len(before), host._POOL_SIZE) and len(left) == host.pooled()
    for name in left:
        with open(os.path.join(host.parent, name, "cgroup.events")) as f:
            assert "populated 0" in f.read()


def _check(results: list[corral.ExecResult]) -> None:
    assert len(results) == RUNS
    for i, result in enumerate(results):
        assert result.exit_code == 0
        assert result.stdout == f"out-{i}\n" and result.stderr == f"err-{i}\n"


def test_200_concurrent_runs_from_threads():
    corral.run(["true"], policy="full-access")  # one-time probes happen before the baseline
    fds, children, cgroups = open_fds(), child_pids(), _cgroups()
    with ThreadPoolExecutor(max_workers=RUNS) as pool:
        results = list(pool.map(lambda i: corral.run(["sh", "-c", SCRIPT, str(i)], timeout=60, policy="full-access"),
                                range(RUNS)))
    _check(results)
    assert open_fds() == fds
    assert child_pids() == children
    _check_cgroups(cgroups)


def test_200_concurrent_runs_from_tasks():
    corral.run(["true"], policy="full-access")
    fds, children, cgroups = open_fds(), child_pids(), _cgroups()

    async def main() -> list[corral.ExecResult]:
        return await asyncio.gather(
            *(corral.run_async(["sh", "-c", SCRIPT, str(i)], timeout=60, policy="full-access") for i in range(RUNS))
        )

    _check(asyncio.run(main()))
    assert open_fds() == fds
    assert child_pids() == children
    _check_cgroups(cgroups)
