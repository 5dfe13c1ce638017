"""Process lifecycle: every process a run starts ends with it.

The escape attempts are real: a daemon that calls setsid() and ignores
SIGTERM, and a double-forked grandchild.  With the cgroup mechanism they must
be dead when run() returns; with the process-group fallback the setsid daemon
is expected to escape, which proves the attack works and the test can fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import corral
from conftest import MECHANISMS, PYTHON, kill_quietly, needs_cgroup, pid_alive, wait_dead

ESCAPER = textwrap.dedent(
    """
    import os, signal, sys, time
    out, leader_sleeps = sys.argv[1], float(sys.argv[2])

    def record(name):
        tmp = f"{out}.{name}.tmp"
        with open(tmp, "w") as f:
            f.write(str(os.getpid()))
        os.rename(tmp, f"{out}.{name}")

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:                      # a daemon in its own session
        os.setsid()
        record("daemon")
        time.sleep(60)
        os._exit(0)
    if os.fork() == 0:                      # a double fork: the grandchild is orphaned
        os.setsid()
        if os.fork() == 0:
            record("grandchild")
            time.sleep(60)
            os._exit(0)
        os._exit(0)
    while not (os.path.exists(out + ".daemon") and os.path.exists(out + ".grandchild")):
        time.sleep(0.005)
    print("ready", flush=True)
    time.sleep(leader_sleeps)
    """
)


def _ended(pid: int) -> bool:
    """Whether an orphan of the run's is dead by now, or a moment later: its
    cgroup reads empty once it has left it, which it does in the kernel's
    exit path before it becomes a zombie (cgroup_exit before exit_notify),
    running no code of its own any more.  (Seen once in a full suite: /proc
    still showed such a process running, just after the run returned.)"""
    return wait_dead(pid, timeout=1.0)


def _escapees(base: Path) -> dict[str, int]:
    return {name: int(Path(f"{base}.{name}").read_text()) for name in ("daemon", "grandchild")}


def _run_escaper(tmp_path: Path, mechanism: corral.KillMechanism, leader_sleeps: float,
                 timeout: float) -> tuple[corral.ExecResult, dict[str, int]]:
    base = tmp_path / "pids"
    result = corral.run(
        [PYTHON, "-c", ESCAPER, str(base), str(leader_sleeps)],
        timeout=timeout, kill_mechanism=mechanism, drain_timeout=0.5, policy="full-access",
    )
    return result, _escapees(base)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_timeout_kills_setsid_daemon_and_double_forked_grandchild(tmp_path, mechanism):
    result, pids = _run_escaper(tmp_path, mechanism, leader_sleeps=60, timeout=3)
    try:
        assert result.timed_out and result.exit_code == 124
        assert "ready" in result.stdout
        assert result.kill_mechanism is mechanism
        if mechanism is corral.KillMechanism.CGROUP:
            assert _ended(pids["daemon"]) and _ended(pids["grandchild"])
        else:
            # The documented weakness of the fallback: setsid escapes killpg.
            assert pid_alive(pids["daemon"]) and pid_alive(pids["grandchild"])
            assert result.drain_timed_out  # they hold the pipes open
    finally:
        for pid in pids.values():
            kill_quietly(pid)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_exit_with_descendants_running_kills_them(tmp_path, mechanism):
    result, pids = _run_escaper(tmp_path, mechanism, leader_sleeps=0, timeout=30)
    try:
        assert not result.timed_out and result.exit_code == 0
        if mechanism is corral.KillMechanism.CGROUP:
            assert _ended(pids["daemon"]) and _ended(pids["grandchild"])
            assert result.duration < 5 and not result.drain_timed_out
        else:
            assert pid_alive(pids["daemon"])
    finally:
        for pid in pids.values():
            kill_quietly(pid)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_kill_the_containment_fails_to_make_still_ends_the_run(monkeypatch, mechanism):
    """Its cgroup or process group not what it was, the containment's kill
    misses the run: the timeout still ends it, at once, since its first
    process is killed directly too (without that, this run waits 30 s)."""
    import corral._containment as containment

    for kind in (containment.CgroupContainment, containment.ProcessGroupContainment):
        monkeypatch.setattr(kind, "kill", lambda self: None)
    started = time.monotonic()
    result = corral.run(["sh", "-c", "exec sleep 30"], timeout=0.3, kill_mechanism=mechanism,
                        policy="full-access")
    assert result.timed_out and result.exit_code == 124
    assert time.monotonic() - started < 5


def test_runs_after_a_killed_run_are_unaffected():
    # A run whose leftovers were killed, then plain runs: none of them may
    # inherit the kill (run cgroups are reused only when nothing was killed).
    for _ in range(3):
        leftover = corral.run(["sh", "-c", "sleep 30 & echo started"], policy="full-access")
        assert leftover.exit_code == 0 and leftover.stdout == "started\n"
        plain = corral.run(["sh", "-c", "echo a; (echo b); echo c"], policy="full-access")
        assert plain.exit_code == 0 and plain.stdout == "a\nb\nc\n"


def test_drain_timeout_bounds_a_pipe_held_open(tmp_path):
    # Under the process-group fallback a setsid grandchild survives and keeps
    # stdout open: the run must still end, after the drain timeout.
    pidfile = tmp_path / "pid"
    script = (
        f"setsid sh -c 'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 30' & "
        f"while [ ! -s {pidfile} ]; do sleep 0.01; done; echo started"
    )
    started = time.monotonic()
    result = corral.run(
        ["sh", "-c", script], timeout=20, drain_timeout=0.5,
        kill_mechanism=corral.KillMechanism.PROCESS_GROUP, policy="full-access",
    )
    elapsed = time.monotonic() - started
    holder = int(pidfile.read_text())
    assert pid_alive(holder)  # the pipe holder escaped killpg, as setsid does
    kill_quietly(holder)
    assert result.exit_code == 0 and not result.timed_out
    assert result.drain_timed_out
    assert "started" in result.stdout
    assert 0.4 < elapsed < 5


@needs_cgroup
def test_cgroup_kill_leaves_no_pipe_holder(tmp_path):
    pidfile = tmp_path / "pid"
    script = (
        f"setsid sh -c 'echo $$ > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; exec sleep 30' & "
        f"while [ ! -s {pidfile} ]; do sleep 0.01; done; echo started"
    )
    result = corral.run(["sh", "-c", script], timeout=20, drain_timeout=5, policy="full-access")
    assert result.kill_mechanism is corral.KillMechanism.CGROUP
    assert not result.drain_timed_out and result.duration < 3
    assert wait_dead(int(pidfile.read_text()), timeout=0.1)


def test_self_killed_command_reports_signal():
    result = corral.run(["sh", "-c", "echo before; kill -SEGV $$"], policy="full-access")
    assert result.exit_code == 128 + signal.SIGSEGV
    assert result.signal == signal.SIGSEGV and result.signal_name == "SIGSEGV"
    assert not result.timed_out and "before" in result.stdout
    with pytest.raises(corral.ExecSignaledError) as info:
        corral.check(result)
    assert info.value.result is result


def test_exit_code_is_the_commands_own():
    assert corral.run(["sh", "-c", "exit 3"], policy="full-access").exit_code == 3
    assert corral.run(["true"], policy="full-access").exit_code == 0
    with pytest.raises(corral.ExecFailedError):
        corral.check(corral.run(["false"], policy="full-access"))


def test_timeout_result_carries_partial_output():
    result = corral.run(["sh", "-c", "echo partial; sleep 30"], timeout=0.5, policy="full-access")
    assert result.timed_out and result.exit_code == corral.TIMEOUT_EXIT_CODE
    assert result.stdout == "partial\n"
    assert 0.4 < result.duration < 3
    with pytest.raises(corral.ExecTimeoutError) as info:
        corral.check(result)
    assert info.value.result.stdout == "partial\n"


def test_default_timeout_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(corral.TIMEOUT_ENV_VAR, "0.3")
    result = corral.run(["sleep", "10"], policy="full-access")
    assert result.timed_out and result.duration < 3
    monkeypatch.setenv(corral.TIMEOUT_ENV_VAR, "soon")
    with pytest.raises(corral.RequestError, match="CORRAL_DEFAULT_TIMEOUT"):
        corral.run(["true"], policy="full-access")


def test_cancel_from_another_thread():
    token = corral.CancelToken()
    threading.Timer(0.3, token.cancel).start()
    result = corral.run(["sh", "-c", "echo going; sleep 30"], cancel=token, timeout=None, policy="full-access")
    assert result.cancelled and not result.timed_out
    assert result.exit_code == corral.CANCEL_EXIT_CODE == 137
    assert result.stdout == "going\n" and result.duration < 5


def test_cancel_token_already_cancelled():
    token = corral.CancelToken()
    token.cancel()
    result = corral.run(["sleep", "30"], cancel=token, policy="full-access")
    assert result.cancelled and result.duration < 3


def test_cancel_from_another_task(tmp_path):
    pidfile = tmp_path / "pid"

    async def main() -> corral.ExecResult:
        token = corral.CancelToken()
        task = asyncio.create_task(
            corral.run_async(["sh", "-c", f"echo $$ > {pidfile}; sleep 30"], cancel=token, policy="full-access")
        )
        await asyncio.sleep(0.3)
        token.cancel()
        return await task

    result = asyncio.run(main())
    assert result.cancelled and result.exit_code == 137
    assert not pid_alive(int(pidfile.read_text()))


def test_cancelling_the_task_kills_the_run(tmp_path):
    pidfile = tmp_path / "pid"

    async def main() -> None:
        task = asyncio.create_task(
            corral.run_async(["sh", "-c", f"echo $$ > {pidfile}; sleep 30"], timeout=None, policy="full-access")
        )
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    # CancelledError propagated only after the process was gone.
    assert not pid_alive(int(pidfile.read_text()))


@contextlib.contextmanager
def _sigkilled_host(host: str, pidfile: Path) -> Iterator[list[int]]:
    """Runs ``host`` (Python calling corral) until its command has written its
    pids to ``pidfile``, checks they live, SIGKILLs the host, and yields the
    pids; whatever is left of them is killed afterwards."""
    proc = subprocess.Popen([sys.executable, "-c", host])
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 10
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline, "the command never started"
            time.sleep(0.01)
        pids = [int(p) for p in pidfile.read_text().split()]
        assert all(pid_alive(p) for p in pids)
        proc.kill()
        proc.wait()
        yield pids
    finally:
        proc.kill()
        proc.wait()
        for pid in pids:
            kill_quietly(pid)


def test_child_dies_with_corral(tmp_path):
    """The parent-death signal: SIGKILL corral and its command dies too."""
    pidfile = tmp_path / "pid"
    host = textwrap.dedent(
        f"""
        import corral
        corral.run(["sh", "-c", "echo $$ > {pidfile}; exec sleep 60"], timeout=None,
                   policy="full-access")
        """
    )
    with _sigkilled_host(host, pidfile) as pids:
        assert wait_dead(pids[0], timeout=5)


def test_stdin_is_dev_null():
    # `cat` would wait forever on an open stdin.
    result = corral.run(["cat"], timeout=5, policy="full-access")
    assert result.exit_code == 0 and not result.timed_out and result.stdout == ""


def test_child_runs_in_its_own_session():
    result = corral.run(["sh", "-c", "cut -d' ' -f6 /proc/$$/stat"], policy="full-access")
    assert int(result.stdout.strip()) != os.getsid(0)


@needs_cgroup
def test_keyboard_interrupt_in_the_library_kills_the_whole_run(tmp_path):
    """Ctrl-C in a program calling run(): the exception propagates, nothing survives.

    The daemon is setsid'd, so the parent-death signal alone would not reach
    it: only the run's own cleanup on the way out can.
    """
    pidfile = tmp_path / "pid"
    # A test run started in the background by a shell without job control
    # (CI scripts) inherits SIGINT ignored, and Python then raises no
    # KeyboardInterrupt: the host asks for it.
    host = textwrap.dedent(
        f"""
        import signal
        signal.signal(signal.SIGINT, signal.default_int_handler)
        import corral
        corral.run(["sh", "-c", "setsid sleep 60 & echo $! > {pidfile}; wait"], timeout=None,
                   policy="full-access")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", host], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline, "the command never started"
        time.sleep(0.01)
    daemon = int(pidfile.read_text())
    try:
        assert pid_alive(daemon)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=10)
        assert "KeyboardInterrupt" in stderr
        assert wait_dead(daemon, timeout=1)
    finally:
        kill_quietly(daemon)
        proc.kill()


@needs_cgroup
def test_falls_back_to_process_group_when_the_child_cannot_join(monkeypatch, tmp_path):
    """A cgroup the child may not enter (e.g. not delegated to this user)."""
    import corral._containment as containment

    # Restored after the test: the fallback disables cgroups process-wide.
    monkeypatch.setattr(containment, "_host", containment._host)
    monkeypatch.setattr(containment, "_cgroup_problem", containment._cgroup_problem)
    real_init = containment.CgroupContainment.__init__

    def unusable(self: containment.CgroupContainment, host: object) -> None:
        real_init(self, host)  # type: ignore[arg-type]
        os.close(self.cgroup_fd)
        self.cgroup_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)  # not a cgroup

    monkeypatch.setattr(containment.CgroupContainment, "__init__", unusable)
    result = corral.run(["echo", "still runs"], policy="full-access")
    assert result.stdout == "still runs\n"
    assert result.kill_mechanism is corral.KillMechanism.PROCESS_GROUP
    with pytest.raises(corral.PolicyError, match="cgroup"):
        corral.run(["true"], kill_mechanism=corral.KillMechanism.CGROUP, policy="full-access")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody; "
                    "run as a normal user, the whole suite is already unprivileged")
def test_runs_as_an_unprivileged_user():
    """Users are usually not root: corral must work, and say which containment it got."""
    script = textwrap.dedent(
        """
        import json, corral
        r = corral.run(["sh", "-c", "id -u; sleep 30 & echo started"], timeout=10,
                       policy="full-access")
        print(json.dumps([r.exit_code, r.stdout, r.kill_mechanism.value, r.duration]))
        """
    )
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    probe = subprocess.run([*drop, sys.executable, "-c", "import corral"], cwd="/",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"this interpreter is not usable by nobody: {probe.stderr.strip()[-200:]}")
    proc = subprocess.run([*drop, sys.executable, "-c", script], cwd="/",
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    exit_code, stdout, mechanism, duration = json.loads(proc.stdout)
    assert exit_code == 0 and stdout == "65534\nstarted\n"
    assert mechanism in ("cgroup", "process-group")
    assert duration < 5  # the background sleep was killed, not waited for


@needs_cgroup
def test_a_forked_host_does_not_share_run_cgroups():
    """After fork, parent and child must not hand the same run cgroup to two runs."""
    from corral._containment import _cgroup_host

    corral.run(["true"], policy="full-access")
    parent_pool = list(_cgroup_host()._free)
    assert parent_pool  # the parent has a run cgroup waiting for reuse
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            result = corral.run(["true"], policy="full-access")
            host = _cgroup_host()
            own = all(f"/corral-{os.getpid()}-" in path for path in host._free)
            os.write(write_end, f"{result.exit_code} {own} {len(host._free)}".encode())
            host.clear()
        finally:
            os._exit(0)
    os.close(write_end)
    report = os.read(read_end, 100).decode()
    os.waitpid(pid, 0)
    os.close(read_end)
    assert report == "0 True 1"
    assert _cgroup_host()._free == parent_pool  # untouched by the child


@needs_cgroup
def test_nothing_survives_a_sigkilled_corral_even_without_a_sandbox(tmp_path):
    """The parent-death signal reaches only the command itself; corral's
    watchdog ends the rest (a setsid daemon, an orphan) once corral is gone."""
    pidfile = tmp_path / "pids"
    host = textwrap.dedent(
        f"""
        import corral
        corral.run(["sh", "-c", "setsid sleep 60 & a=$!; sleep 60 & b=$!; "
                    "echo $a $b > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; wait"], timeout=None,
                   policy="full-access")
        """
    )
    with _sigkilled_host(host, pidfile) as pids:
        assert len(pids) == 2 and all(wait_dead(p, timeout=5) for p in pids)


def test_a_sigkilled_corral_leaves_no_process_group_behind(tmp_path):
    """With process-group containment the watchdog kills the run's group once
    corral is gone; the parent-death signal alone reaches only the command."""
    pidfile = tmp_path / "pids"
    host = textwrap.dedent(
        f"""
        import corral
        corral.run(["sh", "-c", "sleep 60 & echo $! > {pidfile}.tmp; mv {pidfile}.tmp {pidfile}; "
                    "wait"], timeout=None, policy="full-access",
                   kill_mechanism=corral.KillMechanism.PROCESS_GROUP)
        """
    )
    with _sigkilled_host(host, pidfile) as pids:
        assert wait_dead(pids[0], timeout=5)


def test_what_a_process_leaves_is_named_beyond_its_pid():
    """pids come back quickly (pid_max is 32768 here): a dead corral's watchdog must not
    take the cgroups or session of a new process that got the same pid."""
    from corral._containment import process_token

    token = process_token()
    pid, _, random_part = token.partition("-")
    assert pid == str(os.getpid()) and len(random_part) == 8
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a forked child is a new owner: a new token
        os.write(write, process_token().encode())
        os._exit(0)
    os.waitpid(child, 0)
    child_token = os.read(read, 100).decode()
    os.close(read)
    os.close(write)
    assert child_token.startswith(f"{child}-") and child_token != token
