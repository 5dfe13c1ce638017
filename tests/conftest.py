"""Shared helpers for corral's tests."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import corral
from corral._containment import cgroup_support

PYTHON = sys.executable

HAVE_CGROUP = cgroup_support()[0] is not None
needs_cgroup = pytest.mark.skipif(
    not HAVE_CGROUP, reason=f"no writable cgroup v2 here: {cgroup_support()[1]}"
)
MECHANISMS = [
    pytest.param(corral.KillMechanism.CGROUP, marks=needs_cgroup, id="cgroup"),
    pytest.param(corral.KillMechanism.PROCESS_GROUP, id="process-group"),
]


# Capabilities, by their bit in /proc/self/status's CapEff.
CAP_CHOWN, CAP_SETGID, CAP_SETUID, CAP_NET_RAW, CAP_SYS_ADMIN = 0, 6, 7, 13, 21


def caller_holds(capability: int) -> bool:
    """Whether the tests' process holds ``capability`` (as root usually
    does, and a user does not): what decides whether a call that needs it
    works outside the sandbox, and so whether the sandbox's refusal of it is
    a denial.  (On this machine's own kernel, in its initial user namespace.)"""
    with open("/proc/self/status") as status:
        effective = next(int(line.split()[1], 16) for line in status
                         if line.startswith("CapEff:"))
    return bool(effective >> capability & 1)


def sysv_ids(kind: str) -> set[str]:
    """The ids of the host's System V IPC objects of ``kind`` (msg, sem, shm)."""
    with open(f"/proc/sysvipc/{kind}") as table:
        return {line.split()[1] for line in table.read().splitlines()[1:]}


def host_queue() -> str:
    """A System V message queue of the host's, made here: its id."""
    made = subprocess.run(["ipcmk", "-Q"], capture_output=True, text=True, check=True)
    return made.stdout.split()[-1]


def openable_device() -> str | None:
    """A device of the host's that bubblewrap's /dev lacks, harmless to open
    for reading and openable by this user, or None (as nobody, /dev/kmsg
    refuses where dmesg_restrict is set)."""
    for device in ("/dev/kmsg", "/dev/fuse", "/dev/kvm"):
        try:
            os.close(os.open(device, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY))
            return device
        except OSError:
            pass
    return None


def pid_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting to be reaped counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def wait_dead(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.01)
    return not pid_alive(pid)


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def child_pids() -> set[int]:
    pids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/children") as f:
                pids.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            pass
    return pids


def greet_every_client(server: socket.socket, greeting: bytes) -> None:
    """Serves ``greeting`` to each client of the listening ``server``, in a
    thread that ends soon after the server is closed.

    The thread accepts on a duplicate of its own: were it to accept on
    ``server``'s descriptor, a close racing its next ``accept`` could let it
    accept on whatever socket took that number next (another test's
    server), and greet that socket's clients."""
    own = server.dup()

    def serve() -> None:
        with own:
            while server.fileno() >= 0:
                if not select.select([own], [], [], 0.05)[0]:
                    continue
                try:
                    conn, _ = own.accept()
                except OSError:
                    return
                try:
                    conn.sendall(greeting)
                except OSError:
                    pass  # a racing client may be gone already
                conn.close()

    threading.Thread(target=serve, daemon=True).start()


@pytest.fixture
def host_dir() -> Iterator[Path]:
    """A directory outside /tmp (which the sandbox replaces), as real user files are."""
    path = Path(tempfile.mkdtemp(prefix="corral-test-", dir="/var/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path)


@pytest.fixture
def tcp_listener() -> Iterator[tuple[str, int]]:
    """A TCP server on the host's loopback that greets every client."""
    server = socket.create_server(("127.0.0.1", 0))
    greet_every_client(server, b"hello from the host\n")
    yield server.getsockname()
    server.close()


def landlock_abis() -> list[int]:
    """The Landlock ABIs the Landlock rung is tested at: the kernel's, and
    those below it where corral's gate stands in for what Landlock lacks:
    4 (no signal scoping) and the least corral takes, 2 (no TCP rules, no
    TRUNCATE)."""
    from corral.sandbox.landlock import LandlockBackend, landlock_abi

    kernel = landlock_abi()[0]
    return [kernel, *(abi for abi in (LandlockBackend.TCP_ABI, LandlockBackend.MINIMUM_ABI)
                      if abi < kernel)]


@pytest.fixture(params=landlock_abis(), ids=lambda abi: f"abi{abi}")
def landlock_at(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """A Landlock test using this runs at each of :func:`landlock_abis`
    (CORRAL_LANDLOCK_ABI)."""
    monkeypatch.setenv("CORRAL_LANDLOCK_ABI", str(request.param))
    return int(request.param)


@pytest.fixture(params=["init", "bwrap"])
def binds_made_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A test using this runs twice: with the protected paths bound by
    corral's sandbox init (where this machine can run it), and by bwrap
    itself (its fallback, where the init only loads the seccomp program).
    Commands run through the CLI use what the machine picks."""
    from corral.sandbox import bwrap

    found = bwrap.bwrap_backend()
    assert found is not None
    if request.param == "init" and not found.init_mounts:
        pytest.skip(f"corral's sandbox init cannot work here: "
                    f"{bwrap.sandbox_init_absence(found.path)}")
    if request.param == "bwrap":
        fallback = bwrap.BwrapBackend(found.path, found.init, init_mounts=False)
        monkeypatch.setattr(bwrap, "bwrap_backend", lambda: fallback)
    return str(request.param)
