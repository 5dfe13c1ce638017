"""corral's sandbox init, run by hand: its command line, its reports, its exec.

Inside a sandbox it is covered by the workspace-write tests (each runs with
and without it).  Here it runs outside any sandbox, so it is never asked to
mount on the host: a bind is only tried where it must fail (as nobody).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from corral.sandbox.bwrap import _SANDBOX_INIT

pytestmark = pytest.mark.skipif(not os.access(_SANDBOX_INIT, os.X_OK),
                                reason=f"{_SANDBOX_INIT} was not built (not Linux?)")


def _received(sock: int) -> list[int]:
    """The descriptors of one SCM_RIGHTS message on ``sock``."""
    import socket

    with socket.socket(fileno=os.dup(sock)) as receiver:
        return socket.recv_fds(receiver, 1, 66)[1]


def init(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_SANDBOX_INIT, *args], capture_output=True, text=True, timeout=30,
                          **kwargs)  # type: ignore[call-overload]


@pytest.mark.parametrize(("args", "message"), [
    (["--frobnicate", "x", "--", "true", "true"], "unknown option --frobnicate"),
    (["--ro-bind"], "no value for --ro-bind"),
    (["--ro-bind", "/x"], "no command after --"),
    (["--", "true"], "no command after --"),
    (["--seccomp-fd", "seven", "--", "true", "true"], "not a file descriptor: seven"),
    (["--", "/nonexistent/corral-program", "x"], "cannot run /nonexistent/corral-program: No such"),
    (["--listener-socket", "3", "--", "true", "true"], "--listener-socket needs --seccomp-fd"),
])
def test_a_bad_command_line_runs_nothing(args, message):
    proc = init(*args)
    assert proc.returncode == 125 and proc.stdout == ""
    assert proc.stderr.startswith("corral-setup-error: ") and message in proc.stderr, proc.stderr


def test_the_report_goes_to_its_descriptor_and_the_command_never_holds_it():
    read_end, write_end = os.pipe()
    try:
        failed = init("--report-fd", str(write_end), "--", "/nonexistent/x", "x",
                      pass_fds=(write_end,))
        ran = init("--report-fd", str(write_end), "--", "ls", "ls", "/proc/self/fd",
                   pass_fds=(write_end,))
    finally:
        os.close(write_end)
    with os.fdopen(read_end) as report:
        assert report.read() == ("corral-setup-error: cannot run /nonexistent/x: "
                                 "No such file or directory\n")
    assert failed.returncode == 125 and failed.stderr == ""
    assert ran.returncode == 0 and str(write_end) not in ran.stdout.split()


def test_the_command_gets_its_argv0_and_no_capability():
    proc = init("--", "/bin/sh", "custom", "-c", "echo $0; grep -E '^Cap(Prm|Eff|Bnd|Amb)' "
                "/proc/self/status; grep NoNewPrivs /proc/self/status")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "custom"
    held = {line.split(":")[0]: int(line.split()[1], 16) for line in lines[1:5]}
    # A user without CAP_SETPCAP cannot empty the bounding set, and holds nothing it bounds.
    assert held == {**held, "CapPrm": 0, "CapEff": 0, "CapAmb": 0}, lines
    assert held["CapBnd"] == 0 or os.geteuid() != 0, lines
    assert lines[5].split() == ["NoNewPrivs:", "1"]


def test_the_seccomp_program_is_loaded():
    from corral.sandbox.seccomp import build_program

    fd = os.memfd_create("program")
    os.write(fd, build_program(deny_unix_sockets=True, deny_unix_datagrams=False))
    os.lseek(fd, 0, os.SEEK_SET)
    try:
        code = "import socket; socket.socket(socket.AF_UNIX)"
        loaded = init("--seccomp-fd", str(fd), "--", sys.executable, "python", "-c", code,
                      pass_fds=(fd,))
        control = init("--", sys.executable, "python", "-c", code)
    finally:
        os.close(fd)
    assert loaded.returncode != 0 and "PermissionError" in loaded.stderr, loaded.stderr
    assert control.returncode == 0, control.stderr


def test_a_bind_it_may_not_make_is_reported():
    # Without CAP_SYS_ADMIN (as a user, outside any namespace) mount must fail.
    drop = ([] if os.geteuid() != 0 else
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
    proc = subprocess.run([*drop, _SANDBOX_INIT, "--ro-bind", "/dev", "--", "true", "true"],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 125
    assert proc.stderr == ("corral-setup-error: cannot bind read-only /dev: "
                           "Operation not permitted\n")


def test_the_listener_and_a_diagnostics_socket_are_sent_before_the_command_runs():
    """With --listener-socket, the seccomp program is loaded with a listener,
    sent with a NETLINK_SOCK_DIAG socket over that socket; the command holds
    neither the socket nor the listener."""
    from corral import _cgate
    from corral.sandbox.seccomp import build_program

    ours, theirs = _cgate.socketpair()
    program = os.memfd_create("program")
    os.write(program, build_program(witness_writes=True))
    os.lseek(program, 0, os.SEEK_SET)
    try:
        proc = init("--seccomp-fd", str(program), "--listener-socket", str(theirs), "--",
                    "ls", "ls", "/proc/self/fd", pass_fds=(program, theirs))
        listener, diag = _received(ours)
    finally:
        for fd in (ours, theirs, program):
            os.close(fd)
    try:
        assert proc.returncode == 0, proc.stderr
        assert os.readlink(f"/proc/self/fd/{listener}") == "anon_inode:seccomp notify"
        assert _cgate.socket_option(diag, 1, 39) == 16  # SO_DOMAIN: AF_NETLINK
        assert str(theirs) not in proc.stdout.split() and str(program) not in proc.stdout.split()
    finally:
        os.close(listener)
        os.close(diag)


def test_as_pid_1_it_answers_which_pids_its_namespace_gave_out():
    """Only a process inside a PID namespace can read its last pid: as that
    namespace's PID 1, the init answers each pid corral asks about with it,
    and with whether the namespace has that pid now (which tells a pid it
    never gave out from one of its own, present or gone)."""
    import select
    import shutil
    import struct

    from corral import _cgate
    from corral.sandbox.seccomp import build_program

    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-Urpf", "--mount-proc", "true"]).returncode:
        pytest.skip("no PID namespace to be PID 1 of here")
    if not os.path.exists("/proc/sys/kernel/ns_last_pid"):
        pytest.skip("no ns_last_pid (a kernel without CONFIG_CHECKPOINT_RESTORE): no answers")
    ours, theirs = _cgate.socketpair()
    program = os.memfd_create("program")
    os.write(program, build_program())
    os.lseek(program, 0, os.SEEK_SET)
    # The command's pid, and that of a child it saw end.
    script = 'true & gone=$!; wait "$gone"; echo "$$ $gone"; exec cat'
    proc = subprocess.Popen(
        [unshare, "-Urpf", "--mount-proc", _SANDBOX_INIT, "--seccomp-fd", str(program),
         "--listener-socket", str(theirs), "--", "sh", "sh", "-c", script],
        pass_fds=(program, theirs), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    os.close(theirs)
    os.close(program)
    try:
        for fd in _received(ours):
            os.close(fd)
        assert proc.stdout is not None
        command, gone = map(int, proc.stdout.readline().split())

        def ask(pid: int) -> tuple[int, int]:
            os.write(ours, struct.pack("<i", pid))
            assert select.select([ours], [], [], 10)[0], "the init did not answer"
            return struct.unpack("<ii", os.read(ours, 8))

        last, present = ask(command)
        assert present == 1 and command < gone <= last < 100
        assert ask(gone) == (last, 0)  # gone: at or below the last, not there
        assert ask(last + 1) == (last, 0)  # never given out
        assert ask(1) == (last, 1)  # the init itself
    finally:
        os.close(ours)
        proc.communicate(timeout=10)
    assert proc.returncode == 0
