"""The write witness: each write the sandbox refuses is reported with its path,
even when the command says nothing about it.

Each test makes the write silently (errors to /dev/null), so the report can
only come from the witness, not from the output.  The same writes are made
without a sandbox, and succeed, so each test shows the sandbox refused them.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import corral
import corral.sandbox.bwrap
from conftest import CAP_NET_RAW, caller_holds, landlock_abis
from corral.sandbox.bwrap import BwrapBackend, bwrap_backend
from corral.sandbox.landlock import LandlockBackend, landlock_abi

ABI, WHY = landlock_abi()
_FOUND = bwrap_backend()
ACCEPTED = ("shared-tmp", "visible-processes", "no-deny-read", "unprotected-paths",
            "changeable-attributes")


@pytest.fixture(params=["bwrap", "bwrap-binds",
                        *(f"landlock-abi{abi}" for abi in landlock_abis())])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both rungs: bwrap (with corral's init, which loads the witness's
    filter; "bwrap-binds" where bwrap makes the binds, as with a setuid
    bwrap or before Linux 5.12, and the init only loads the filter) and
    Landlock, at each ABI corral is tested at (see conftest.landlock_abis);
    the rung's name."""
    variant = str(request.param)
    if variant.startswith("bwrap") and (_FOUND is None or _FOUND.init is None):
        pytest.skip("bwrap with corral's sandbox init is not available here")
    if variant == "bwrap-binds":
        assert _FOUND is not None
        fallback = BwrapBackend(_FOUND.path, _FOUND.init, init_mounts=False)
        monkeypatch.setattr(corral.sandbox.bwrap, "bwrap_backend", lambda: fallback)
    if variant.startswith("landlock"):
        if ABI < LandlockBackend.MINIMUM_ABI:
            pytest.skip(f"Landlock ABI {ABI} here ({WHY or 'too old'})")
        monkeypatch.setenv("CORRAL_LANDLOCK_ABI", variant.removeprefix("landlock-abi"))
        monkeypatch.setattr(corral.sandbox.bwrap, "bwrap_backend", lambda: None)
        return "landlock"
    return variant


@pytest.fixture
def workspace(host_dir: Path) -> Path:
    (host_dir / "ws").mkdir()
    outside = host_dir / "outside"
    outside.mkdir()
    (outside / "file").write_text("original\n")
    return host_dir / "ws"


def _policy(backend: str, kind: str = "workspace-write", **options: object) -> corral.SandboxPolicy:
    accept = ACCEPTED if backend == "landlock" else ()
    if kind == "read-only":
        return corral.SandboxPolicy.read_only(accept_weaker=accept, **options)  # type: ignore[arg-type]
    return corral.SandboxPolicy.workspace_write(accept_weaker=accept, **options)  # type: ignore[arg-type]


def _refused(result: corral.ExecResult) -> set[tuple[str | None, str]]:
    """(target, system call) of each write denial."""
    return {(d.target, d.evidence.split("(")[0]) for d in result.denials
            if d.kind is corral.DenialKind.WRITE}


@pytest.mark.parametrize("network", [False, True], ids=["no-network", "network"])
def test_a_silent_refused_write_is_reported_with_its_path(backend, workspace, network):
    outside = workspace.parent / "outside"
    script = f"echo started; exec 2>/dev/null; echo evil > {outside}/new; exit 3"
    result = corral.run(["sh", "-c", script], cwd=workspace,
                        policy=_policy(backend, network=network))
    assert result.sandbox == backend.removesuffix("-binds") and result.exit_code == 3
    assert result.output.text == "started\n"  # nothing for a text heuristic to read
    [denial] = result.denials
    assert denial.kind is corral.DenialKind.WRITE and denial.target == str(outside / "new")
    assert denial.remedy == f"outside the writable roots: add --writable {outside}"
    assert denial.evidence.startswith("openat() refused: ")
    assert not (outside / "new").exists()
    control = corral.run(["sh", "-c", script], cwd=workspace, policy="full-access")
    assert control.exit_code == 3 and (outside / "new").exists() and control.denials == ()


# Every kind of write, each silent; what each names outside the roots.
WRITES = """
import os, sys
outside = sys.argv[1]
def attempt(call, *args):
    try:
        call(*args)
    except OSError:
        pass
attempt(os.mkdir, f"{outside}/dir")
attempt(os.unlink, f"{outside}/file")
attempt(os.rename, f"{outside}/file", "moved-in")
attempt(os.rename, "mine", f"{outside}/moved-out")
attempt(os.symlink, "/etc/passwd", f"{outside}/link")
attempt(os.link, "mine", f"{outside}/hardlink")
attempt(os.chmod, f"{outside}/file", 0o777)
attempt(os.utime, f"{outside}/file")
attempt(os.truncate, f"{outside}/file", 0)
attempt(os.open, f"{outside}/file", os.O_WRONLY | os.O_APPEND)
"""


def test_every_kind_of_write_is_reported(backend, workspace):
    outside = workspace.parent / "outside"
    (workspace / "mine").write_text("mine\n")
    result = corral.run([sys.executable, "-c", WRITES, str(outside)], cwd=workspace,
                        policy=_policy(backend))
    assert result.exit_code == 0, result.output.text
    # A path refused again is reported once, with the first call refused.
    assert {target for target, _ in _refused(result)} == {
        str(outside / name) for name in ("dir", "file", "moved-out", "link", "hardlink")}
    assert (outside / "file").read_text() == "original\n"
    assert sorted(os.listdir(outside)) == ["file"]
    control = corral.run([sys.executable, "-c", WRITES, str(outside)], cwd=workspace,
                         policy="full-access")
    assert control.exit_code == 0 and (outside / "dir").is_dir()


def test_writes_the_policy_allows_report_nothing(backend, workspace):
    script = ("set -e; mkdir d; echo a > d/a; mv d/a b; ln -s b c; chmod 600 b; touch b; "
              "rm c; rmdir d; echo t > \"$TMPDIR/t\"; rm \"$TMPDIR/t\"; echo x > /dev/null")
    result = corral.run(["sh", "-c", script], cwd=workspace, policy=_policy(backend))
    assert result.exit_code == 0 and result.denials == (), result.output.text


# What the kernel lets through outside the roots: flock(1) opens its lock
# file with O_CREAT, which creates nothing that exists.
OPENS_THAT_WRITE_NOTHING = """
import os, sys
path = sys.argv[1]
os.close(os.open(path, os.O_RDONLY | os.O_CREAT))
try:
    os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
except FileExistsError:
    print("exists")
"""


def test_an_open_that_writes_nothing_is_no_denial(backend, workspace):
    """An open of an existing file outside the roots is refused only when it
    asks to write or truncate: O_CREAT alone, or with O_EXCL, is not."""
    outside = workspace.parent / "outside"
    result = corral.run([sys.executable, "-c", OPENS_THAT_WRITE_NOTHING, str(outside / "file")],
                        cwd=workspace, policy=_policy(backend))
    assert result.stdout == "exists\n" and result.exit_code == 0, result.output.text
    assert result.denials == ()
    truncate = "import os, sys; os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC)"
    refused = corral.run([sys.executable, "-c", truncate, str(outside / "file")],
                         cwd=workspace, policy=_policy(backend))
    assert refused.exit_code != 0 and _refused(refused) == {(str(outside / "file"), "openat")}
    assert (outside / "file").read_text() == "original\n"


def test_a_write_to_a_fifo_outside_the_roots_is_refused_only_by_landlock(backend, workspace):
    """A read-only mount refuses no write to a FIFO (nor to a socket or a
    device: nothing is stored on it), and is no denial; Landlock refuses it."""
    fifo = workspace.parent / "outside" / "fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that a writer's open waits for none
    try:
        result = corral.run(["sh", "-c", f"exec 2>/dev/null; echo x > {fifo}"], cwd=workspace,
                            policy=_policy(backend, "read-only"))
        received = os.read(reader, 100)
    finally:
        os.close(reader)
    if backend == "landlock":
        assert result.exit_code != 0 and received == b""
        assert _refused(result) == {(str(fifo), "openat")}
    else:
        assert result.exit_code == 0 and received == b"x\n"
        assert result.denials == ()


def test_refusals_of_protected_paths_are_reported(workspace):
    if _FOUND is None or _FOUND.init is None:
        pytest.skip("bwrap with corral's sandbox init is not available here")
    (workspace / ".git").mkdir()
    (workspace / ".git" / "config").write_text("[core]\n")
    script = ("exec 2>/dev/null; mkdir .git/hooks; echo > .envrc; rm .git/config; "
              "echo x >> .git/config; mv .git/config elsewhere; true")
    result = corral.run(["sh", "-c", script], cwd=workspace)
    assert result.exit_code == 0
    git = workspace / ".git"
    assert _refused(result) == {
        (str(git / "hooks"), "mkdir"), (str(workspace / ".envrc"), "openat"),
        (str(git / "config"), "unlinkat"),
    }
    for denial in result.denials:
        assert "is protected" in denial.remedy
    assert (git / "config").read_text() == "[core]\n" and not (workspace / ".envrc").exists()


def test_read_only_reports_a_write_to_the_working_directory(backend, workspace):
    result = corral.run(["sh", "-c", "exec 2>/dev/null; echo x > made; mkdir sub"],
                        cwd=workspace, policy=_policy(backend, "read-only"))
    assert result.exit_code != 0
    assert _refused(result) == {(str(workspace / "made"), "openat"),
                                (str(workspace / "sub"), "mkdir")}
    assert all(d.remedy == "read-only writes nowhere: use workspace-write, which writes beneath "
               "the working directory" for d in result.denials)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write /usr: run as another user")
def test_nothing_is_reported_where_the_user_cannot_write_anyway(backend, workspace):
    result = corral.run(["sh", "-c", "exec 2>/dev/null; echo x > /usr/corral-witness"],
                        cwd=workspace, policy=_policy(backend))
    assert result.exit_code != 0 and result.denials == ()


BAD_POINTERS = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.open.argtypes = [ctypes.c_void_p, ctypes.c_int]
for pointer in (None, 1, 0xFFFFFFFFFFFF0000):
    assert libc.open(pointer, os.O_WRONLY | os.O_CREAT) == -1
    assert ctypes.get_errno() == 14  # EFAULT: the kernel's verdict, not the witness's
print("ok")
"""


def test_a_path_the_witness_cannot_read_changes_nothing(backend, workspace):
    result = corral.run([sys.executable, "-c", BAD_POINTERS], cwd=workspace,
                        policy=_policy(backend))
    assert result.stdout == "ok\n" and result.exit_code == 0 and result.denials == ()


PRIVILEGED = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
outcomes = []
for call in (lambda: libc.unshare(0x10000000),  # CLONE_NEWUSER
             lambda: libc.mount(b"none", b"/mnt", b"tmpfs", 0, None),
             lambda: libc.ptrace(16, os.getppid(), None, None)):  # PTRACE_ATTACH
    outcomes.append(ctypes.get_errno() if call() != 0 else 0)
print(outcomes)
"""


def test_a_refused_privileged_call_is_reported(backend, workspace):
    result = corral.run([sys.executable, "-c", PRIVILEGED], cwd=workspace, policy=_policy(backend))
    assert result.exit_code == 0 and result.stdout == "[1, 1, 1]\n"  # EPERM, as the filter gives
    assert [(d.kind, d.target) for d in result.denials] == [
        (corral.DenialKind.PRIVILEGE, name) for name in ("unshare", "mount", "ptrace")]
    assert result.denials[0].evidence == "unshare() refused: Operation not permitted"


DEVICES = """
import os, sys
for path in sys.argv[1:]:
    try:
        os.close(os.open(path, os.O_RDWR))
        print("opened")
    except OSError as e:
        print(e.errno)
"""


def _device_the_sandbox_lacks() -> str:
    """A device of the host's this user may open for writing that bwrap's
    minimal /dev does not have."""
    for path in ("/dev/net/tun", "/dev/kvm", "/dev/fuse", "/dev/loop-control", "/dev/kmsg"):
        if os.path.exists(path) and os.access(path, os.W_OK):
            return path
    pytest.skip("no device here that this user may open and bwrap's /dev lacks")


@pytest.mark.parametrize("backend", ["bwrap", "bwrap-binds"], indirect=True)
def test_a_device_the_sandbox_lacks_is_reported(backend, workspace):
    """Opened for writing, silently: reported with its path.  A device that
    is in the sandbox's /dev, or that the host lacks too, is not."""
    device = _device_the_sandbox_lacks()
    argv = [sys.executable, "-c", DEVICES, device, "/dev/null", "/dev/corral-no-such-device"]
    unconfined = corral.run(argv, cwd=workspace, policy="full-access")
    assert unconfined.stdout.split() == ["opened", "opened", "2"]
    result = corral.run(argv, cwd=workspace, policy=_policy(backend))
    assert result.exit_code == 0 and result.stdout.split() == ["2", "opened", "2"]  # ENOENT
    assert [(d.kind.value, d.target, d.evidence) for d in result.denials] == [
        ("privilege", device, f"openat({device}): not in the sandbox's /dev")]
    assert result.denials[0].remedy.endswith(f"{device} needs full access")


def test_the_standard_streams_by_name_are_no_missing_devices(workspace):
    """/dev/stdout, /dev/stderr and /dev/fd/N lead through the run's /proc:
    writing to them is no denial, whatever corral's own descriptors are
    (here /dev/null, a device the sandbox has under another name)."""
    if _FOUND is None or _FOUND.init is None:
        pytest.skip("bwrap with corral's sandbox init is not available here")
    code = ("import corral; print(corral.run(['sh', '-c', 'echo 1 >/dev/stdout; echo 2 "
            ">/dev/stderr; echo 3 >/dev/fd/2']).denials)")
    ran = subprocess.run([sys.executable, "-c", code], cwd=workspace, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True)
    assert ran.stdout == "()\n"


def _privileged_program(directory: Path) -> tuple[str, str]:
    """A program that gains a privilege when run, and a silent shell test
    that holds only if it has it: as root, a copy of ``id`` set-user-ID to
    nobody; else a set-user-ID ``passwd``, whose status of the user comes
    from /etc/shadow."""
    if os.geteuid() == 0:
        program = directory / "id"
        shutil.copy("/usr/bin/id", program)
        os.chown(program, 65534, -1)
        program.chmod(0o4755)
        return str(program), f'[ "$({program} -u)" = 65534 ]'
    passwd = shutil.which("passwd")
    if passwd is None or not os.stat(passwd).st_mode & stat.S_ISUID:
        pytest.skip("no set-user-ID passwd here")
    # Without /etc/shadow, passwd -S falls back to what /etc/passwd says.
    status = corral.run([passwd, "-S"], policy="full-access").stdout.strip()
    return passwd, f'[ "$({passwd} -S 2>/dev/null)" = "{status}" ]'


def test_a_program_run_without_its_privilege_is_reported_if_the_run_fails(backend, workspace):
    """no_new_privs voids set-user-ID: silently, so the report comes from the
    exec itself, and only for a run that failed (a program may do without).
    Under Landlock the command's own exec is notified before the spawn
    returns: the server takes the listener from the child itself."""
    program, check = _privileged_program(workspace.parent)
    control = corral.run(["sh", "-c", check], cwd=workspace, policy="full-access")
    assert control.exit_code == 0
    failed = corral.run(["sh", "-c", check], cwd=workspace, policy=_policy(backend))
    assert failed.exit_code != 0 and failed.output.text == ""
    assert [(d.kind.value, d.target) for d in failed.denials] == [("privilege", program)]
    assert failed.denials[0].evidence == (
        f"execve({program}): ran without its privilege (no new privileges)")
    succeeded = corral.run(["sh", "-c", f"{check}; exit 0"], cwd=workspace,
                           policy=_policy(backend))
    assert succeeded.exit_code == 0 and succeeded.denials == ()
    plain = corral.run(["sh", "-c", "id -u >/dev/null; exit 3"], cwd=workspace,
                       policy=_policy(backend))
    assert plain.exit_code == 3 and plain.denials == ()


def test_a_signal_to_a_host_process_is_reported(backend, workspace):
    """The sandbox's PID namespace has no host pid: kill finds no process
    (ESRCH) and says nothing of why, so the report comes from the call, if
    the run fails (a pid found dead is an answer a command may do well
    with).  A pid the sandbox gave out and saw end fails the same way, and
    is not reported.  Under Landlock the host's processes are in sight, and
    its signal scoping refuses them (EPERM)."""
    if backend != "landlock" and not os.path.exists("/proc/sys/kernel/ns_last_pid"):
        pytest.skip("no ns_last_pid (a kernel without CONFIG_CHECKPOINT_RESTORE): not reported")
    victim = subprocess.Popen(["sleep", "30"], process_group=0)
    try:
        error = "Operation not permitted" if backend == "landlock" else "No such process"
        # The process, and its group (kill -PGID), of which it is the leader.
        for target, shown, what in ((f"{victim.pid}", f"pid {victim.pid}", "a process"),
                                    (f"-{victim.pid}", f"process group {victim.pid}",
                                     "a process group")):
            script = f"kill -0 {target} 2>/dev/null || exit 3"
            control = corral.run(["sh", "-c", script], cwd=workspace, policy="full-access")
            assert control.exit_code == 0
            failed = corral.run(["sh", "-c", script], cwd=workspace, policy=_policy(backend))
            assert failed.exit_code == 3 and failed.output.text == ""
            assert [(d.kind.value, d.target, d.evidence) for d in failed.denials] == [
                ("privilege", shown, f"kill({target}) refused: {error} in the sandbox")]
            assert f"{shown} (sleep) is {what} outside the sandbox" in failed.denials[0].remedy
        succeeded = corral.run(["sh", "-c", f"kill -0 {victim.pid} 2>/dev/null; exit 0"],
                               cwd=workspace,
                               policy=_policy(backend))
        assert succeeded.exit_code == 0 and succeeded.denials == ()
        # The sandbox's own pids are small, and so are the host's first ones
        # (pid 2 and on: as root, signalled without a sandbox).
        gone = corral.run(["sh", "-c", "sleep 0 & p=$!; wait $p; kill -0 $p 2>/dev/null || "
                           "exit 4"], cwd=workspace, policy=_policy(backend))
        assert gone.exit_code == 4 and gone.denials == ()
        # A pid the host has no process at either fails for a reason of its own.
        free = next(pid for pid in range(victim.pid + 1000, 1 << 22)
                    if not os.path.exists(f"/proc/{pid}"))
        nowhere = corral.run(["sh", "-c", f"kill -0 {free} 2>/dev/null || exit 5"],
                             cwd=workspace, policy=_policy(backend))
        assert nowhere.exit_code == 5 and nowhere.denials == ()
        # A process of the run's own is reached, and is none of the host's.
        own = corral.run(["sh", "-c", "sleep 5 & kill -0 $! && setsid sh -c 'kill -0 -$$' && "
                          "kill $! && exit 6"],
                         cwd=workspace, policy=_policy(backend))
        assert own.exit_code == 6 and own.denials == ()
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


OTHER_SIGNALS = """
import ctypes, os, sys
pid = int(sys.argv[1])
if sys.argv[2] == "sigqueue":
    class Value(ctypes.Union):  # union sigval
        _fields_ = [("integer", ctypes.c_int), ("pointer", ctypes.c_void_p)]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.sigqueue.argtypes = [ctypes.c_int, ctypes.c_int, Value]
    reached = libc.sigqueue(pid, 0, Value(0)) == 0
elif sys.argv[2] in ("tkill", "tgkill"):  # of the process's main thread, whose id is its pid
    libc = ctypes.CDLL(None, use_errno=True)
    numbers = {"x86_64": (200, 234), "aarch64": (130, 131)}[os.uname().machine]
    if sys.argv[2] == "tkill":
        reached = libc.syscall(numbers[0], pid, 0) == 0
    else:
        reached = libc.syscall(numbers[1], pid, pid, 0) == 0
else:
    try:
        descriptor = os.pidfd_open(pid)
        if sys.argv[2] == "pidfd_send_signal":
            import signal
            signal.pidfd_send_signal(descriptor, 0)
        reached = True
    except OSError:
        reached = False
print("reached" if reached else "refused")
sys.exit(0 if reached else 3)
"""


@pytest.mark.parametrize("call", ["sigqueue", "tkill", "tgkill", "pidfd_open",
                                  "pidfd_send_signal"])
def test_a_host_process_signalled_or_looked_for_otherwise_is_reported(backend, workspace, call):
    """sigqueue (rt_sigqueueinfo), tkill, tgkill and pidfd_open name a pid as kill does:
    the sandbox's PID namespace has none of the host's (ESRCH), and
    Landlock's signal scoping refuses a signal (EPERM) but not a
    descriptor, which is then no denial; a signal sent through it is."""
    if backend != "landlock" and not os.path.exists("/proc/sys/kernel/ns_last_pid"):
        pytest.skip("no ns_last_pid (a kernel without CONFIG_CHECKPOINT_RESTORE): not reported")
    victim = subprocess.Popen(["sleep", "30"])
    try:
        argv = [sys.executable, "-c", OTHER_SIGNALS, str(victim.pid), call]
        control = corral.run(argv, cwd=workspace, policy="full-access")
        assert control.stdout == "reached\n", control.aggregated_output
        result = corral.run(argv, cwd=workspace, policy=_policy(backend))
        if backend == "landlock" and call == "pidfd_open":
            assert result.stdout == "reached\n" and result.denials == ()
            return
        syscall = {"sigqueue": "rt_sigqueueinfo", "pidfd_send_signal": (
            "pidfd_send_signal" if backend == "landlock" else "pidfd_open")}.get(call, call)
        error = "Operation not permitted" if backend == "landlock" else "No such process"
        assert result.stdout == "refused\n" and result.exit_code == 3
        assert [(d.kind.value, d.target, d.evidence) for d in result.denials] == [
            ("privilege", f"pid {victim.pid}",
             f"{syscall}({victim.pid}) refused: {error} in the sandbox")]
        own = corral.run([sys.executable, "-c", f"import subprocess, sys; child = "
                          f"subprocess.Popen(['sleep', '5']); sys.argv[1:] = [str(child.pid), "
                          f"{call!r}]; exec({OTHER_SIGNALS!r})"],
                         cwd=workspace, policy=_policy(backend))
        assert own.stdout == "reached\n" and own.denials == (), own.aggregated_output
    finally:
        victim.kill()
        victim.wait()


LONG_STATUS = """
import sys
import corral, corral.sandbox.bwrap
corral.sandbox.bwrap.bwrap_backend = lambda: None  # the Landlock backend
policy = corral.SandboxPolicy.workspace_write(accept_weaker=tuple(sys.argv[2:]))
result = corral.run(["sh", "-c", f"kill -0 $$ || exit 4; kill -0 {sys.argv[1]} 2>/dev/null || exit 3"],
                    policy=policy)
print(result.sandbox, result.exit_code, [d.target for d in result.denials])
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give itself 300 groups")
@pytest.mark.skipif(ABI < LandlockBackend.MINIMUM_ABI, reason=f"Landlock ABI {ABI} here")
def test_a_long_proc_status_is_read_to_its_seccomp_line(workspace):
    """300 supplementary groups push the Seccomp_filters line of
    /proc/<pid>/status past its first 4 KiB: read only that far, corral's own
    count was unknown, and every kill of a Landlock run was refused."""
    victim = subprocess.Popen(["sleep", "30"])
    groups = ",".join(str(1_000_000_000 + i) for i in range(300))
    try:
        ran = subprocess.run(["setpriv", "--groups", groups, sys.executable, "-c", LONG_STATUS,
                              str(victim.pid), *ACCEPTED], cwd=workspace, capture_output=True,
                             text=True, timeout=60)
        assert ran.stdout.split("\n")[0] == f"landlock 3 ['pid {victim.pid}']", ran.stderr
    finally:
        victim.kill()
        victim.wait()


GROUP_PROGRAM = """
import sys
import corral
result = corral.run(["sh", "-c", f"{sys.argv[1]}; exit 3"])
print(result.exit_code, [d.target for d in result.denials])
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give itself 300 groups")
def test_a_set_group_id_program_of_one_of_many_groups_is_no_privilege(workspace):
    """A user in more than 256 groups: a set-group-ID program of one of
    them gains nothing, and a failed run reports nothing of it (a list of 256
    groups once made every such program look privileged)."""
    groups = [1_000_000_000 + i for i in range(300)]
    program = workspace.parent / "true"
    shutil.copy("/bin/true", program)
    os.chown(program, -1, groups[-1])
    program.chmod(0o2755)
    ran = subprocess.run(["setpriv", "--groups", ",".join(map(str, groups)), sys.executable,
                          "-c", GROUP_PROGRAM, str(program)], cwd=workspace,
                         capture_output=True, text=True, timeout=60)
    assert ran.stdout.split("\n")[0] == "3 []", ran.stderr


BINDS = """
import ctypes, socket, struct, sys
for path in (sys.argv[1], "own.sock"):
    try:
        socket.socket(socket.AF_UNIX).bind(path)
        print("bound")
    except OSError as e:
        print(e.errno)
socket.socket().bind(("127.0.0.1", 0))
socket.socket(socket.AF_UNIX).bind("\\0corral-abstract")
# Refused for reasons of their own: an inet socket, no socket, too long an address.
libc = ctypes.CDLL(None, use_errno=True)
def bind(fd, path, length=None):
    address = struct.pack("<H", socket.AF_UNIX) + path.encode() + b"\\0"
    buffer = ctypes.create_string_buffer(address, 128)
    return libc.bind(fd, buffer, length or len(address))
print(bind(socket.socket().fileno(), sys.argv[1] + "-inet"), bind(999, sys.argv[1] + "-none"),
      bind(socket.socket(socket.AF_UNIX).fileno(), sys.argv[1] + "-long", 111))
"""


@pytest.mark.parametrize("backend", ["bwrap", "bwrap-binds"], indirect=True)
def test_a_unix_socket_bound_where_no_file_may_be_made_is_reported(backend, workspace):
    """A socket file is a new file: outside the roots, refused (EROFS) and
    reported as a write; one in the workspace, a TCP or an abstract bind,
    nothing."""
    outside = workspace.parent / "outside" / "service.sock"
    result = corral.run([sys.executable, "-c", BINDS, str(outside)], cwd=workspace,
                        policy=_policy(backend))
    assert result.exit_code == 0 and result.stdout.split() == ["30", "bound", "-1", "-1", "-1"]
    assert [(d.kind.value, d.target, d.evidence) for d in result.denials] == [
        ("write", str(outside), "bind() refused: Read-only file system")]
    assert not outside.exists() and (workspace / "own.sock").exists()


SOCKETS = """
import socket
for family, kind in ((socket.AF_PACKET, socket.SOCK_RAW), (socket.AF_VSOCK, socket.SOCK_STREAM),
                     (socket.AF_UNIX, socket.SOCK_DGRAM), (socket.AF_INET, socket.SOCK_DGRAM)):
    try:
        socket.socket(family, kind).close()
        print(0)
    except OSError as e:
        print(e.errno)
"""


def test_a_refused_socket_is_reported(backend, workspace):
    """A family the run's network namespace lacks (bwrap), anything but TCP
    (Landlock), a Unix datagram socket (both), a raw or packet socket (with
    network as well): refused, silently, and reported (a raw or packet one
    where the caller holds CAP_NET_RAW, as root does)."""
    result = corral.run([sys.executable, "-c", SOCKETS], cwd=workspace, policy=_policy(backend))
    udp = "0" if backend.startswith("bwrap") else "1"  # the namespace's own loopback
    assert result.stdout.split() == ["1", "1", "1", udp]  # EPERM
    expected = [("AF_PACKET SOCK_RAW", "raw and packet")] if caller_holds(CAP_NET_RAW) else []
    expected += [("AF_VSOCK SOCK_STREAM", "network"), ("AF_UNIX SOCK_DGRAM", "network")] + (
        [] if udp == "0" else [("AF_INET SOCK_DGRAM", "network")])
    assert [(d.kind.value, d.target) for d in result.denials] == [
        ("network", target) for target, _ in expected]
    assert all(words in d.remedy for d, (_, words) in zip(result.denials, expected))
    # No sandboxed process may open a packet socket, network or not: a
    # denial where the caller holds CAP_NET_RAW (root), else refused on the
    # host too.
    with_network = corral.run([sys.executable, "-c", SOCKETS], cwd=workspace,
                              policy=_policy(backend, network=True))
    assert with_network.stdout.split() == ["1", "0", "0", "0"]
    assert [(d.kind.value, d.target) for d in with_network.denials] == (
        [("network", "AF_PACKET SOCK_RAW")] if caller_holds(CAP_NET_RAW) else [])


UNREACHABLE = """
import socket
for family, address in ((socket.AF_INET, ("192.0.2.1", 443)), (socket.AF_INET6, ("2001:db8::1", 80)),
                        (socket.AF_INET, ("198.51.100.7", 53))):
    kind = socket.SOCK_DGRAM if address[1] == 53 else socket.SOCK_STREAM
    try:
        socket.socket(family, kind).connect(address)
    except OSError as e:
        print(e.errno)
"""


def test_an_address_beyond_the_sandbox_is_a_network_denial(workspace):
    """Without network, a bwrap run's namespace has loopback only: a connect
    anywhere else (a silent one too) needs network, and says so."""
    if _FOUND is None:
        pytest.skip("bwrap is not available here")
    result = corral.run([sys.executable, "-c", UNREACHABLE], cwd=workspace)
    assert result.stdout.split() == ["101"] * 3  # ENETUNREACH
    assert [(d.kind, d.target) for d in result.denials] == [
        (corral.DenialKind.NETWORK, target)
        for target in ("192.0.2.1:443", "[2001:db8::1]:80", "198.51.100.7:53")]
    assert all(d.remedy == "needs network: rerun with --network (network=True)"
               for d in result.denials)


LONG_PATHS = """
import errno, os
name = "d" * 250
for _ in range(15):  # a working directory of some 3800 characters
    os.mkdir(name)
    os.chdir(name)
far = "/".join(["e" * 250] * 15) + "/file"  # and a relative path as long
try:
    open(far, "w")
except OSError as e:
    print(errno.errorcode[e.errno])
with open("x" * 255, "w") as f:
    f.write("deep")
print(open("x" * 255).read())
"""


def test_paths_longer_than_path_max_are_looked_at_safely(backend, workspace):
    """The witness joins the working directory and a relative path: longer
    than PATH_MAX together, they are left alone, and the write goes on."""
    result = corral.run([sys.executable, "-c", LONG_PATHS], cwd=workspace, policy=_policy(backend))
    assert result.exit_code == 0 and result.stdout == "ENOENT\ndeep\n", result.output.text
    assert result.denials == ()


ON_DESCRIPTORS = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
for call in (lambda: os.fchmod(fd, 0o600), lambda: os.utime(fd),
             lambda: os.setxattr(fd, "user.corral", b"x")):
    try:
        call()
    except OSError:
        pass
"""


def test_a_refused_change_through_a_descriptor_is_reported(workspace):
    """fchmod, futimens and fsetxattr name no path: the witness reports the
    file the descriptor is open on (bubblewrap's read-only mounts refuse them;
    Landlock has no right for attributes at all)."""
    if _FOUND is None or _FOUND.init is None:
        pytest.skip("bwrap with corral's sandbox init is not available here")
    outside = workspace.parent / "outside" / "file"
    before = outside.stat()
    result = corral.run([sys.executable, "-c", ON_DESCRIPTORS, str(outside)], cwd=workspace)
    assert result.exit_code == 0 and result.output.text == ""
    assert [(d.target, d.evidence.split("(")[0]) for d in result.denials] == [
        (str(outside), "fchmod")]  # once per path: the first call refused
    assert outside.stat().st_mode == before.st_mode and outside.stat().st_mtime == before.st_mtime
    control = corral.run([sys.executable, "-c", ON_DESCRIPTORS, str(outside)], cwd=workspace,
                         policy="full-access")
    assert control.exit_code == 0 and outside.stat().st_mode & 0o777 == 0o600


RESOLVE = """
import socket
try:
    socket.getaddrinfo("pypi.org", 443)
except OSError:
    pass
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(("127.0.0.53", 53))  # as glibc's resolver does with systemd-resolved
try:
    s.send(b"query")
    s.recv(512)
except OSError:
    pass
"""


def test_a_name_server_on_loopback_the_run_lacks_is_a_network_denial(workspace):
    if _FOUND is None:
        pytest.skip("bwrap is not available here")
    result = corral.run([sys.executable, "-c", RESOLVE], cwd=workspace)
    assert result.exit_code == 0 and result.output.text == ""
    assert ("network", "127.0.0.53:53") in [(d.kind.value, d.target) for d in result.denials]
    with_network = corral.run([sys.executable, "-c", RESOLVE], cwd=workspace,
                              policy=corral.SandboxPolicy.workspace_write(network=True))
    assert with_network.exit_code == 0 and with_network.denials == ()



DATAGRAMS = """
import ctypes, socket, struct
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 0))
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.sendto(b"ping", server.getsockname())  # the run's own, on loopback
client.sendmsg([b"ping"], [], 0, server.getsockname())
print(server.recv(10).decode(), server.recv(10).decode())
for address in (("192.0.2.9", 53), ("198.51.100.1", 9)):
    try:
        client.sendto(b"x", address)
    except OSError as e:
        print(e.errno)
try:
    client.sendmsg([b"x"], [], 0, ("192.0.2.10", 53))
except OSError as e:
    print(e.errno)
six = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
for address in (("2001:db8::1", 53), ("::ffff:192.0.2.11", 53)):
    try:
        six.sendmsg([b"x"], [], 0, address)
    except OSError as e:
        print(e.errno)

class Header(ctypes.Structure):  # struct msghdr
    _fields_ = [("name", ctypes.c_char_p), ("namelen", ctypes.c_uint32),
                ("iov", ctypes.c_void_p), ("iovlen", ctypes.c_size_t),
                ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]
class Message(ctypes.Structure):  # struct mmsghdr
    _fields_ = [("header", Header), ("len", ctypes.c_uint)]
def inet(host, port):
    return struct.pack("<H", socket.AF_INET) + struct.pack(">H", port) + socket.inet_aton(host) + bytes(8)
names = [inet(*server.getsockname()), inet("203.0.113.7", 7)]
messages = (Message * 2)(*(Message(Header(name, len(name))) for name in names))
libc = ctypes.CDLL(None, use_errno=True)
print(libc.sendmmsg(client.fileno(), messages, 2, 0))  # the first is sent, the second refused
"""


def test_a_destination_a_stream_socket_ignores_is_no_denial(workspace):
    """A connected TCP socket ignores the destination sendmsg names."""
    if _FOUND is None or _FOUND.init is None:
        pytest.skip("bwrap with corral's sandbox init is not available here")
    code = ("import socket; server = socket.create_server(('127.0.0.1', 0)); "
            "client = socket.create_connection(server.getsockname()); "
            "print(client.sendmsg([b'x'], [], 0, ('192.0.2.1', 80)), "
            "client.sendto(b'y', ('192.0.2.1', 80)), "
            "server.accept()[0].recv(2).decode())")
    result = corral.run([sys.executable, "-c", code], cwd=workspace)
    assert result.stdout == "1 1 xy\n" and result.denials == ()


def test_a_datagram_sent_beyond_loopback_is_a_network_denial(workspace):
    if _FOUND is None or _FOUND.init is None:
        pytest.skip("bwrap with corral's sandbox init is not available here")
    result = corral.run([sys.executable, "-c", DATAGRAMS], cwd=workspace)
    # ENETUNREACH for each, bar the sendmmsg's first message
    assert result.stdout.split() == ["ping", "ping", "101", "101", "101", "101", "101", "1"]
    assert [(d.kind.value, d.target, d.evidence) for d in result.denials] == [
        ("network", "192.0.2.9:53", "sendto() refused"),
        ("network", "198.51.100.1:9", "sendto() refused"),
        ("network", "192.0.2.10:53", "sendmsg() refused"),
        ("network", "[2001:db8::1]:53", "sendmsg() refused"),
        ("network", "[::ffff:192.0.2.11]:53", "sendmsg() refused"),
        ("network", "203.0.113.7:7", "sendmmsg() refused")]


def test_the_command_holds_no_descriptor_of_corrals(backend, workspace):
    """The listener's socket (on which the init answers about pids), the
    init's report and hold descriptors, the covers' FUSE connections: none
    reaches the command, which could answer in the init's place or hold the
    sandbox open."""
    code = "import os; print(sorted(int(fd) for fd in os.listdir('/proc/self/fd')))"
    result = corral.run([sys.executable, "-c", code], cwd=workspace, policy=_policy(backend))
    assert result.exit_code == 0, result.output.text
    assert result.stdout == "[0, 1, 2, 3]\n"  # 3: the listing's own


CAPABLE_CALLS = """
import os, resource, stat, sys
def attempt(name, call):
    try:
        call()
        print(name, "done")
    except (OSError, ValueError):  # resource.setrlimit raises ValueError for EPERM
        print(name, "refused")
attempt("device", lambda: os.mknod("device", 0o600 | stat.S_IFCHR, os.makedev(1, 3)))
attempt("whiteout", lambda: os.mknod("whiteout", 0o600 | stat.S_IFCHR, 0))
attempt("fifo", lambda: os.mknod("fifo", 0o600 | stat.S_IFIFO))
open("taken", "w").close()
attempt("taken", lambda: os.mknod("taken", 0o600 | stat.S_IFCHR, os.makedev(1, 3)))  # EEXIST
attempt("nicer", lambda: os.setpriority(os.PRIO_PROCESS, 0, 5))
attempt("less nice", lambda: os.setpriority(os.PRIO_PROCESS, 0, -5))
attempt("less nice by pid", lambda: os.setpriority(os.PRIO_PROCESS, os.getpid(), -6))
resource.setrlimit(resource.RLIMIT_CORE, (0, 1000))  # lowered: anyone may
attempt("soft", lambda: resource.setrlimit(resource.RLIMIT_CORE, (1000, 1000)))
attempt("hard", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 2000)))
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
attempt("hard by pid", lambda: resource.prlimit(os.getpid(), resource.RLIMIT_FSIZE,
                                                (1 << 20, 1 << 21)))
with open("/proc/sys/fs/nr_open") as ceiling:  # beyond it, root is refused too
    beyond = int(ceiling.read()) + 1
attempt("beyond", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, beyond)))
wait, go = os.pipe()
child = os.fork()  # another process of the run's, as nice as its parent (5)
if child == 0:
    os.read(wait, 1)
    os._exit(0)
attempt("less nice, a child", lambda: os.setpriority(os.PRIO_PROCESS, child, -7))
resource.prlimit(child, resource.RLIMIT_MSGQUEUE, (4096, 4096))
attempt("hard, a child", lambda: resource.prlimit(child, resource.RLIMIT_MSGQUEUE, (4096, 8192)))
os.write(go, b"x")
os.waitpid(child, 0)
sys.exit(int(sys.argv[1]))
"""
# What only a capability lets through.
CAPABLE = ["device", "less nice", "less nice by pid", "hard", "hard by pid", "less nice, a child",
           "hard, a child"]


def _capable_denials(workspace: Path) -> dict[str, tuple[str, str, str]]:
    return {"device": ("privilege", str(workspace / "device"), "CAP_MKNOD"),
            "less nice": ("privilege", "nice -5", "CAP_SYS_NICE"),
            "less nice by pid": ("privilege", "nice -6", "CAP_SYS_NICE"),
            "hard": ("privilege", "RLIMIT_CORE hard limit", "CAP_SYS_RESOURCE"),
            "hard by pid": ("privilege", "RLIMIT_FSIZE hard limit", "CAP_SYS_RESOURCE"),
            "less nice, a child": ("privilege", "nice -7", "CAP_SYS_NICE"),
            "hard, a child": ("privilege", "RLIMIT_MSGQUEUE hard limit", "CAP_SYS_RESOURCE")}


def _outcomes(result: corral.ExecResult) -> dict[str, str]:
    """What each attempt of CAPABLE_CALLS came to, by its name."""
    return dict(line.rsplit(" ", 1) for line in result.stdout.splitlines())


def test_a_call_only_a_capability_allows_is_seen(backend, workspace, monkeypatch):
    """A device node, a lower nice value, a higher hard limit: the kernel
    refuses each to every sandboxed process (it holds no capability), and
    the gate sees each, by its arguments and the limits of the process it
    changes (the caller, or another of the run's), where nothing else
    refuses it first: not a whiteout, a FIFO, a path
    that exists, a higher nice value, a soft limit, a hard one beyond
    ``fs.nr_open``.  Reported if the run fails, for a caller that holds
    the capability (here made to look so: this test runs for any caller)."""
    from corral.sandbox import witness as module

    monkeypatch.setattr(module, "_caller_capabilities", lambda: (-1, True))
    failed = corral.run([sys.executable, "-c", CAPABLE_CALLS, "3"], cwd=workspace,
                        policy=_policy(backend))
    assert _outcomes(failed) == {
        "device": "refused", "whiteout": "done", "fifo": "done", "taken": "refused",
        "nicer": "done", "less nice": "refused", "less nice by pid": "refused", "soft": "done",
        "hard": "refused", "hard by pid": "refused", "beyond": "refused",
        "less nice, a child": "refused", "hard, a child": "refused"}, failed.aggregated_output
    expected = _capable_denials(workspace)
    assert [(d.kind.value, d.target) for d in failed.denials] == [
        expected[name][:2] for name in CAPABLE]
    assert all(expected[name][2] in d.remedy for name, d in zip(CAPABLE, failed.denials))
    for name in ("device", "whiteout", "fifo"):
        (workspace / name).unlink(missing_ok=True)
    succeeded = corral.run([sys.executable, "-c", CAPABLE_CALLS, "0"], cwd=workspace,
                           policy=_policy(backend))
    assert succeeded.exit_code == 0 and succeeded.denials == ()  # only if the run failed


def test_a_call_only_a_capability_allows_is_a_denial_where_the_caller_holds_it(backend,
                                                                              workspace):
    """Without pretending: each is a denial exactly where the control, the
    same calls outside the sandbox, gets through (with the capability, as
    root; never as a user)."""
    failed = corral.run([sys.executable, "-c", CAPABLE_CALLS, "3"], cwd=workspace,
                        policy=_policy(backend))
    for name in ("device", "whiteout", "fifo"):
        (workspace / name).unlink(missing_ok=True)
    control = corral.run([sys.executable, "-c", CAPABLE_CALLS, "3"], cwd=workspace,
                         policy="full-access")
    allowed = [name for name in CAPABLE if _outcomes(control)[name] == "done"]
    expected = _capable_denials(workspace)
    assert [(d.kind.value, d.target) for d in failed.denials] == [
        expected[name][:2] for name in allowed]


IN_A_USER_NAMESPACE = """
import corral
for policy in ("workspace-write", "full-access"):
    result = corral.run(["sh", "-c", "mknod device c 1 3 || exit 3"], policy=policy)
    print(policy, result.exit_code, [d.target for d in result.denials])
"""


def test_a_containers_root_is_not_told_of_what_its_host_refuses_it_too(workspace, tmp_path):
    """As root in a user namespace of its own (a rootless container's), the
    caller holds every capability by CapEff, but the kernel looks for
    CAP_MKNOD in the initial one: no device node is made, sandboxed or not,
    so the sandbox's refusal is no denial."""
    # Its own runtime and temporary directories, as a container has: the
    # host's /tmp/corral-0 is the real root's, whom the namespace does not map.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    ran = subprocess.run(["unshare", "--user", "--map-root-user", sys.executable, "-c",
                          IN_A_USER_NAMESPACE], cwd=workspace, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "XDG_RUNTIME_DIR": str(private),
                                           "TMPDIR": str(private)})
    if ran.returncode != 0 and ran.stderr.startswith("unshare:"):
        pytest.skip(f"no user namespace here: {ran.stderr.strip()}")
    assert ran.stdout == "workspace-write 3 []\nfull-access 3 []\n", ran.stderr


@pytest.mark.parametrize("private, capable, start, reported", [
    (True, True, 1024, True), (True, False, 1024, False), (True, False, 0, True),
    (True, False, 80, True), (True, False, 81, False),
    (False, True, 1024, True), (False, True, 0, False), (False, False, 1024, False),
    (False, False, 0, False)])
def test_a_privileged_port_is_a_denial_where_the_host_would_allow_it(
        monkeypatch, tmp_path, private, capable, start, reported):
    """A sandboxed process is refused a port below its network namespace's
    ``ip_unprivileged_port_start``: 1024 in the run's own, the host's
    setting in corral's (where it binds with network, or on Landlock).
    The host refuses a caller without CAP_NET_BIND_SERVICE one below its
    setting too (then it is no denial of the sandbox's)."""
    from corral.sandbox import witness as module

    monkeypatch.setattr(module, "_caller_capabilities",
                        lambda: (1 << 10 if capable else 0, True))  # CAP_NET_BIND_SERVICE
    monkeypatch.setattr(module, "unprivileged_port_start", lambda: start)
    recorded = module.Witness(corral.SandboxPolicy.workspace_write(), str(tmp_path), None,
                              private_network=private)
    recorded.record_port(80)
    recorded.record_port(80)  # once
    assert [d.target for d in recorded.if_failed] == (["port 80"] if reported else [])
    assert recorded.denials == []  # only if the run failed


@pytest.mark.parametrize("capabilities, initial, reported", [
    (-1, True, ["setuid", "mount", "settimeofday", "reboot", "kexec_load"]),
    (0, True, ["mount"]),  # a user: only what it could do in namespaces of its own
    (1 << 7, True, ["setuid", "mount"]),  # CAP_SETUID alone
    # A container's root: no CAP_SYS_TIME on the host, nor CAP_SYS_BOOT for
    # kexec; reboot would end its own container (its PID namespace's).
    (-1, False, ["setuid", "mount", "reboot"]),
])
def test_a_privileged_call_is_a_denial_where_the_caller_could_make_it(monkeypatch, tmp_path,
                                                                     capabilities, initial,
                                                                     reported):
    from corral.sandbox import witness as module
    from corral.sandbox.seccomp import IDENTITY_CALLS, privileged_calls

    machine = os.uname().machine
    if machine not in IDENTITY_CALLS:
        pytest.skip(f"no system-call table for {machine}")
    numbers = {name: number for number, name in privileged_calls().items()}
    monkeypatch.setattr(module, "_caller_capabilities", lambda: (capabilities, initial))
    recorded = module.Witness(corral.SandboxPolicy.workspace_write(), str(tmp_path), None)
    for name in ("setuid", "mount", "settimeofday", "reboot", "kexec_load"):
        recorded.record_privileged(numbers[name], 0, 0)
    assert [d.target for d in recorded.denials] == reported
    assert recorded.if_failed == []
    # What was no denial excuses the command's complaint of it.
    assert recorded.excused == ({corral.DenialKind.PRIVILEGE} if len(reported) < 5 else set())


@pytest.mark.parametrize("capabilities, initial, reported", [
    (-1, True, True), (0, True, False), (-1, False, False)])
def test_a_device_node_a_nice_value_and_a_hard_limit_count_only_with_the_capability(
        monkeypatch, tmp_path, capabilities, initial, reported):
    """Each takes a capability the kernel looks for in the initial user
    namespace only (a container's root in one of its own lacks it), and
    counts only if the run fails."""
    from corral.sandbox import witness as module
    from corral.sandbox.seccomp import LIMIT_CALLS

    calls = LIMIT_CALLS.get(os.uname().machine)
    if calls is None:
        pytest.skip(f"no system-call table for {os.uname().machine}")
    monkeypatch.setattr(module, "_caller_capabilities", lambda: (capabilities, initial))
    monkeypatch.setattr(module, "_open_files_ceiling", lambda: 4096)
    recorded = module.Witness(corral.SandboxPolicy.workspace_write(), str(tmp_path), None)
    recorded.record_device(str(tmp_path / "null"))
    recorded.record_limit(calls["setpriority"], -5, 0)
    recorded.record_limit(calls["prlimit64"], 4, 2**64 - 1)  # RLIMIT_CORE, unlimited
    recorded.record_limit(calls["setrlimit"], 7, 8192)  # RLIMIT_NOFILE beyond fs.nr_open
    recorded.record_limit(calls["setrlimit"], 4, 100)  # the same resource again: once
    assert recorded.denials == []
    assert [(d.target, d.evidence) for d in recorded.if_failed] == ([
        (str(tmp_path / "null"),
         f"mknod({tmp_path / 'null'}) refused: Operation not permitted in the sandbox"),
        ("nice -5", "setpriority(-5) refused: Permission denied in the sandbox"),
        ("RLIMIT_CORE hard limit",
         "prlimit64(RLIMIT_CORE) refused: Operation not permitted in the sandbox"),
    ] if reported else [])
    if reported:
        assert "RLIMIT_CORE to unlimited" in recorded.if_failed[2].remedy


def test_the_callers_capabilities_are_read_from_proc():
    from corral.sandbox.witness import _caller_capabilities

    with open("/proc/self/status") as status:
        effective = next(int(line.split()[1], 16) for line in status if line.startswith("CapEff:"))
    assert _caller_capabilities()[0] == effective
    assert _caller_capabilities()[1] == (os.stat("/proc/self/ns/user").st_ino == 0xEFFFFFFD)
