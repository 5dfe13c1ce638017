"""read-only on the Landlock rung: where bubblewrap cannot run.

bwrap is hidden from the ladder, as on a machine without it (or without user
namespaces).  The policy is refused until the caller accepts, by name, what
Landlock cannot do; then each attack must still fail, with a control.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile

import pytest

import corral
import corral.sandbox.bwrap
from corral.sandbox.landlock import LandlockBackend, landlock_abi

ABI, WHY = landlock_abi()
pytestmark = pytest.mark.skipif(ABI < LandlockBackend.MINIMUM_ABI,
                                reason=f"Landlock ABI {ABI} here ({WHY or 'too old'})")
PYTHON = os.path.realpath(sys.executable)
ACCEPTED = ("shared-tmp", "visible-processes", "no-deny-read")
POLICY = corral.SandboxPolicy.read_only(accept_weaker=ACCEPTED)


@pytest.fixture(autouse=True)
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corral.sandbox.bwrap, "bwrap_backend", lambda: None)


def test_refused_until_the_weaker_guarantees_are_accepted():
    with pytest.raises(corral.PolicyError) as info:
        corral.run(["true"], policy="read-only")
    message = str(info.value)
    assert "bubblewrap" in message and "shared-tmp" in message and "visible-processes" in message
    result = corral.run(["sh", "-c", 'echo "$CORRAL_SANDBOX $CORRAL_SANDBOX_NETWORK_DISABLED"'],
                        policy=POLICY)
    assert result.stdout == "landlock 1\n" and result.sandbox == "landlock"


def test_writes_go_nowhere_but_the_private_tmpdir(host_dir):
    (host_dir / "file").write_text("original\n")
    script = (f'echo started; echo x > "$TMPDIR/ok" && cat "$TMPDIR/ok"; '
              f'echo evil >> {host_dir}/file; echo evil > {host_dir}/new; '
              f'echo evil > /tmp/corral-landlock-{os.getpid()}')
    result = corral.run(["sh", "-c", script], policy=POLICY)
    assert result.stdout == "started\nx\n"
    assert (host_dir / "file").read_text() == "original\n"
    assert not (host_dir / "new").exists()
    assert not os.path.exists(f"/tmp/corral-landlock-{os.getpid()}")
    control = corral.run(["sh", "-c", f"echo evil > {host_dir}/new"], policy="full-access")
    assert control.exit_code == 0 and (host_dir / "new").exists()


def test_the_private_tmpdir_lasts_for_the_session():
    first = corral.run(["sh", "-c", 'echo kept > "$TMPDIR/f"; echo "$TMPDIR"'], policy=POLICY)
    tmpdir = first.stdout.strip()
    assert tmpdir.startswith(f"{tempfile.gettempdir()}/corral-{os.getuid()}/corral-session-")
    second = corral.run(["sh", "-c", 'cat "$TMPDIR/f"'], policy=POLICY)
    assert second.stdout == "kept\n"


def test_no_socket_reaches_the_host(host_dir):
    server = socket.create_server(("127.0.0.1", 0))
    unix_path = str(host_dir / "s.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen()
    port = server.getsockname()[1]
    code = ("import socket; print('started', flush=True); "
            f"socket.create_connection(('127.0.0.1', {port}), 2); print('tcp') ")
    unix_code = ("import socket; print('started', flush=True); s = socket.socket(socket.AF_UNIX); "
                 f"s.connect({unix_path!r}); print('unix')")
    try:
        for script, word in ((code, "tcp"), (unix_code, "unix")):
            sandboxed = corral.run([PYTHON, "-c", script], policy=POLICY)
            assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
            control = corral.run([PYTHON, "-c", script], policy="full-access")
            assert control.stdout == f"started\n{word}\n"
    finally:
        server.close()
        unix.close()


def test_host_processes_cannot_be_signalled():
    import subprocess

    victim = subprocess.Popen(["sleep", "30"])
    try:
        assert corral.run(["kill", "-0", str(victim.pid)], policy=POLICY).exit_code != 0
        assert corral.run(["kill", "-0", str(victim.pid)], policy="full-access").exit_code == 0
    finally:
        victim.kill()
        victim.wait()


PRIVILEGED = {
    "unshare": "unshare --user true",
    "mount": "unshare --mount sh -c 'mount -t tmpfs none /mnt'",
    "chroot": "chroot / true",
    "setuid": f"{PYTHON} -c 'import os; os.setuid(4242)'",
    "raw socket": f"{PYTHON} -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 1)'",
    # Writes the current value back, so the control changes nothing.
    "global sysctl": "v=$(cat /proc/sys/vm/overcommit_ratio); echo $v > /proc/sys/vm/overcommit_ratio",
}


@pytest.mark.parametrize("attack", PRIVILEGED.values(), ids=PRIVILEGED.keys())
def test_privileged_calls_fail(attack):
    result = corral.run(["sh", "-c", f"echo started; {attack}"], policy=POLICY)
    assert result.stdout == "started\n" and result.exit_code != 0
    if os.geteuid() == 0:  # the control: root on the host can do each of them
        control = corral.run(["sh", "-c", attack], policy="full-access")
        assert control.exit_code == 0, control.aggregated_output


def test_a_host_process_cannot_be_traced():
    import subprocess

    victim = subprocess.Popen(["sleep", "30"])
    code = ("import ctypes; libc = ctypes.CDLL(None, use_errno=True); "
            f"print('attached' if libc.ptrace(16, {victim.pid}, 0, 0) == 0 else 'refused')")
    try:
        assert corral.run([PYTHON, "-c", code], policy=POLICY).stdout == "refused\n"
        if os.geteuid() == 0:
            assert corral.run([PYTHON, "-c", code], policy="full-access").stdout == "attached\n"
    finally:
        victim.kill()
        victim.wait()


def test_unknown_weaker_guarantee_is_an_error():
    with pytest.raises(corral.PolicyError, match="unknown weaker guarantee"):
        corral.SandboxPolicy.read_only(accept_weaker=("everything",))


def test_no_capability_is_held_or_regained():
    script = "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status"
    result = corral.run(["sh", "-c", script], policy=POLICY)
    sets = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert {sets[name] for name in ("CapInh", "CapPrm", "CapEff", "CapAmb")} == {"0" * 16}
    if os.geteuid() == 0:
        # Root could regain everything by exec without an empty bounding set;
        # an unprivileged user regains nothing anyway (no_new_privs).
        assert sets["CapBnd"] == "0" * 16
        control = corral.run(["sh", "-c", script], policy="full-access")
        assert "CapEff:\t0000000000000000" not in control.stdout
