"""Escapes a reviewer found: each is attempted for real through corral and must fail.

Where it is cheap, the same attack is run where nothing stops it (full-access,
or the target named as a writable root) and must succeed there, so that each
test shows it tests something.  Host targets live in ``host_dir`` (under
/var/tmp, which the sandbox sees read-only, as real user files are); the
servers a test needs are started by the test.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import corral
from conftest import greet_every_client
from corral.sandbox.probe import probe_machine

_BWRAP = probe_machine().bwrap
pytestmark = pytest.mark.skipif(not _BWRAP.available, reason=f"no usable bwrap: {_BWRAP.detail}")

PYTHON = os.path.realpath(sys.executable)
GIT = "git -c user.name=agent -c user.email=agent@example.com"


def sandboxed(script: str, cwd: Path, **kwargs: object) -> corral.ExecResult:
    return corral.run(["sh", "-c", script], cwd=cwd, timeout=30, **kwargs)  # type: ignore[arg-type]


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


def _listing(directory: Path) -> dict[str, bytes]:
    """Every name in ``directory`` (recursively) with its content, or what it is."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(directory))] = b"-> " + os.fsencode(os.readlink(path))
        elif path.is_file():
            found[str(path.relative_to(directory))] = path.read_bytes()
        else:
            found[str(path.relative_to(directory))] = b"<not a file>"
    return found


@pytest.fixture
def workspace(host_dir: Path) -> Path:
    (host_dir / "ws").mkdir()
    return host_dir / "ws"


@pytest.fixture
def outside(host_dir: Path) -> Path:
    """A directory of the user's next to the workspace, which no run may write."""
    (host_dir / "outside").mkdir()
    (host_dir / "outside" / "file").write_text("original\n")
    return host_dir / "outside"


# 1. A .git pointer planted by one run must not make anything writable to the next.

WRITE_OUTSIDE = ('O={outside}; echo started; echo evil > "$O/new"; echo evil >> "$O/file"; '
                 'mkdir -p "$O/hooks" && echo evil > "$O/hooks/pre-commit"; '
                 'test -e "$O/new" || test -e "$O/hooks/pre-commit"')

PLANTS = {
    # .git names the outside directory itself
    "gitdir": 'echo "gitdir: {outside}" > .git',
    # .git names a directory of the workspace whose commondir names the outside
    "commondir": ('mkdir -p fake && echo "{outside}" > fake/commondir && '
                  'echo "$PWD/.git" > fake/gitdir && echo "gitdir: fake" > .git'),
}


@pytest.mark.parametrize("plant", PLANTS.values(), ids=PLANTS.keys())
def test_a_planted_git_pointer_opens_nothing_to_the_next_run(workspace, outside, plant,
                                                             binds_made_by):
    first = sandboxed(plant.format(outside=outside), workspace)
    assert first.exit_code == 0 or not (workspace / ".git").exists(), first.aggregated_output
    before = _listing(outside)
    attack = WRITE_OUTSIDE.format(outside=outside)
    second = sandboxed(attack, workspace)
    assert second.stdout.startswith("started"), second.aggregated_output
    assert _listing(outside) == before, "the second run wrote through the planted .git pointer"
    assert second.exit_code != 0
    # The control: the same script writes there once the directory is a root indeed.
    control = sandboxed(attack, workspace,
                        policy=corral.SandboxPolicy.workspace_write(writable=(str(outside),)))
    assert control.exit_code == 0 and (outside / "new").read_text() == "evil\n"


@pytest.fixture
def linked_worktree(host_dir: Path) -> tuple[Path, Path, Path]:
    """(repository, its linked worktree, the worktree's git directory)."""
    repo = host_dir / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "README").write_text("hello\n")
    (repo / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    worktree = host_dir / "wt"
    _git(repo, "worktree", "add", "-q", str(worktree))
    gitdir = Path(_git(worktree, "rev-parse", "--absolute-git-dir").strip())
    assert gitdir.parent == repo / ".git" / "worktrees"
    return repo, worktree, gitdir


def test_a_real_worktrees_git_directory_commits_but_its_hooks_stay_read_only(
        linked_worktree, binds_made_by):
    repo, worktree, gitdir = linked_worktree
    commit = sandboxed(f"echo wt > wt-file && {GIT} add wt-file && {GIT} commit -qm in-worktree",
                       worktree)
    assert commit.exit_code == 0, commit.aggregated_output  # the control: git works there
    assert "in-worktree" in _git(worktree, "log", "--format=%s")
    before_git, before_common = _listing(gitdir), _listing(repo / ".git" / "hooks")
    pointer, back = (worktree / ".git").read_text(), (gitdir / "gitdir").read_text()
    for attack in ['mkdir -p "$(git rev-parse --git-dir)/hooks"; '
                   'echo evil > "$(git rev-parse --git-dir)/hooks/post-checkout"',
                   f'mkdir -p {gitdir}/hooks; echo evil > {gitdir}/hooks/pre-commit',
                   'echo evil > "$(git rev-parse --git-common-dir)/hooks/pre-commit"',
                   f'echo /tmp/evil/.git > {gitdir}/gitdir',
                   f'echo "gitdir: {repo}/.git" > .git']:
        result = sandboxed(f"echo started; {attack}", worktree)
        assert result.stdout.startswith("started") and result.exit_code != 0, (
            f"{attack}: {result.aggregated_output}")
    assert _listing(gitdir) == before_git
    assert _listing(repo / ".git" / "hooks") == before_common
    assert (worktree / ".git").read_text() == pointer and (gitdir / "gitdir").read_text() == back


def test_a_pointer_to_another_worktrees_git_directory_opens_nothing(
        linked_worktree, workspace, binds_made_by):
    """A workspace that is no repository points its .git at a real worktree's
    git directory (which does not name it back): the next run must write
    neither there nor in the repository's common directory."""
    repo, worktree, gitdir = linked_worktree
    attack = (f'echo started; echo evil > {gitdir}/planted; echo evil > {repo}/.git/planted; '
              f'echo evil > {gitdir}/HEAD; mkdir -p {gitdir}/hooks && '
              f'echo evil > {gitdir}/hooks/post-checkout; echo evil > {repo}/.git/hooks/pre-commit')
    plant = sandboxed(f'echo "gitdir: {gitdir}" > .git', workspace)
    assert plant.exit_code == 0 or not (workspace / ".git").exists(), plant.aggregated_output
    before = _listing(repo / ".git")
    result = sandboxed(attack, workspace)
    assert result.stdout.startswith("started"), result.aggregated_output
    assert not (gitdir / "planted").exists() and not (repo / ".git" / "planted").exists(), \
        "a run wrote into another repository's git directories through a planted .git"
    assert _listing(repo / ".git") == before
    assert result.exit_code != 0
    # The control: from the worktree the pointer belongs to, its git directory is writable.
    control = sandboxed(f"echo x > {gitdir}/planted", worktree)
    assert control.exit_code == 0, control.aggregated_output


# 2. Unix sockets: a run's own listening socket must not vouch for a host one
# that the command puts under its name.

SWAP_CLIENT = """
import os, socket, sys, threading
host, own, how = sys.argv[1], sys.argv[2], sys.argv[3]
server = socket.socket(socket.AF_UNIX); server.bind(own); server.listen(8)
def serve():
    while True:
        server.accept()[0].sendall(b"own greeting")
threading.Thread(target=serve, daemon=True).start()
try:
    if how == "symlink":
        os.unlink(own); os.symlink(host, own)
    elif how == "link":
        os.unlink(own); os.link(host, own)
    elif how == "rename":
        os.rename(host, own)
except OSError as e:  # a sandbox may refuse the swap itself: then it reaches nothing either
    print("swap failed", e.errno)
for address in (own, host):
    c = socket.socket(socket.AF_UNIX); c.settimeout(5)
    try:
        c.connect(address); print(address, c.recv(100).decode() or "nothing")
    except OSError as e:
        print(address, "refused", e.errno)
    c.close()
try:
    os.unlink(own)  # the session's /tmp is shared by its runs
except OSError:
    pass
"""


@pytest.fixture
def host_service(host_dir: Path) -> Iterator[Path]:
    """A host service listening on a Unix socket outside the workspace."""
    (host_dir / "svc").mkdir()
    path = host_dir / "svc" / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(16)
    greet_every_client(server, b"HOST SERVICE")
    yield path
    server.close()


def test_a_symlink_swapped_over_the_runs_own_socket_reaches_no_host_service(
        host_service, workspace):
    own = f"/tmp/own-swap-{os.getpid()}.sock"  # the session's private /tmp
    result = corral.run([PYTHON, "-c", SWAP_CLIENT, str(host_service), own, "symlink"],
                        cwd=workspace, timeout=30)
    assert result.exit_code == 0, result.aggregated_output
    assert "HOST SERVICE" not in result.stdout, result.stdout
    # Controls: without the swap the run reaches its own server; unsandboxed, the swap
    # reaches the host's.
    plain = corral.run([PYTHON, "-c", SWAP_CLIENT, str(host_service), own, "none"],
                       cwd=workspace, timeout=30)
    assert plain.stdout.splitlines()[0] == f"{own} own greeting", plain.aggregated_output
    control = corral.run([PYTHON, "-c", SWAP_CLIENT, str(host_service),
                          str(workspace / "own.sock"), "symlink"],
                         cwd=workspace, policy="full-access", timeout=30)
    assert control.stdout.count("HOST SERVICE") == 2, control.aggregated_output


@pytest.mark.parametrize("how", ["link", "rename"])
def test_a_host_socket_linked_or_renamed_over_the_runs_own_reaches_nothing(workspace, how):
    """A host service listening inside a writable root (as ~/.docker/run/docker.sock
    in a home directory): the command binds its own socket, then puts the host's
    under that name (a hard link, or a rename), and connects."""
    host_path, own_path = workspace / "host.sock", workspace / "own.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(host_path))
    server.listen(16)
    greet_every_client(server, b"HOST SERVICE")
    try:
        result = corral.run([PYTHON, "-c", SWAP_CLIENT, str(host_path), str(own_path), how],
                            cwd=workspace, timeout=30)
        assert result.exit_code == 0, result.aggregated_output
        assert "HOST SERVICE" not in result.stdout, result.stdout
        for name in ("host.sock", "own.sock"):
            if os.path.lexists(workspace / name):
                os.unlink(workspace / name)
        server.close()
        # Controls: a fresh host service; without a swap the run reaches its own; with
        # nothing checking, the swap reaches the host's.
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(host_path))
        server.listen(16)
        greet_every_client(server, b"HOST SERVICE")
        plain = corral.run([PYTHON, "-c", SWAP_CLIENT, str(host_path), str(own_path), "none"],
                           cwd=workspace, timeout=30)
        assert plain.stdout.splitlines()[0] == f"{own_path} own greeting", plain.aggregated_output
        control = corral.run([PYTHON, "-c", SWAP_CLIENT, str(host_path), str(own_path), how],
                             cwd=workspace, policy="full-access", timeout=30)
        assert f"{own_path} HOST SERVICE" in control.stdout, control.aggregated_output
    finally:
        server.close()


# 3 and 4. The sandbox's command runs as the uid of its PID 1: it must not
# reach what PID 1 holds.

TRUNCATE_RECORD = ('echo started; for fd in /proc/1/fd/*; do case "$(readlink $fd)" in '
                   '*/run-*) : > $fd && echo truncated;; esac; done')
FORGE_RECORD = ('echo started; H={host}; for fd in /proc/1/fd/*; do case "$(readlink $fd)" in '
                '*/run-*) printf "%s:%s:%s\\0" "$(stat -c %d $H)" "$(stat -c %i $H)" "$H" >> $fd '
                '&& echo forged;; esac; done')


@pytest.mark.parametrize("attack", [TRUNCATE_RECORD, FORGE_RECORD], ids=["truncate", "forge"])
def test_the_placeholder_record_cannot_be_rewritten_through_pid_1(host_dir, workspace, attack):
    """Truncated, the record no longer names the run's placeholders (they stay in the
    workspace); forged, it names a host socket, which the sweep after the run deletes."""
    (host_dir / "svc").mkdir()
    host_socket = socket.socket(socket.AF_UNIX)
    host_socket.bind(str(host_dir / "svc" / "host.sock"))
    host_socket.listen(1)
    try:
        before = set(os.listdir(workspace))
        result = sandboxed(attack.format(host=host_dir / "svc" / "host.sock"), workspace)
        assert result.stdout.startswith("started"), result.aggregated_output
        assert set(os.listdir(workspace)) == before, (
            f"placeholders left behind: {result.stdout!r}")
        # The next run sweeps what dead runs' records name, as the watchdog would.
        assert sandboxed("true", workspace).exit_code == 0
        assert (host_dir / "svc" / "host.sock").is_socket(), (
            f"the sweep deleted a host socket named by a forged record: {result.stdout!r}")
    finally:
        host_socket.close()


PID1_PROBE = """
import errno, os
status = dict(line.split(":", 1) for line in open("/proc/1/status"))
print(status["Seccomp"].strip(), status["NoNewPrivs"].strip(), status["CapEff"].strip())
try:
    descriptors = [f"/proc/1/fd/{fd}" for fd in os.listdir("/proc/1/fd")]
except PermissionError:
    descriptors = []
    print("/proc/1/fd EACCES")
for path in ["/proc/1/mem", "/proc/1/environ", *descriptors]:
    try:
        open(path, "r+b" if path.endswith("mem") else "rb").close()
        print(path, "opened")
    except OSError as e:
        print(path, errno.errorcode[e.errno])
print("own", open("/proc/self/mem", "r+b") is not None)
"""


def test_pid_1_is_out_of_the_commands_reach(workspace, binds_made_by):
    """The sandbox's PID 1 is corral's init, reaping: under the same seccomp
    program, without a capability, and out of the command's reach, although
    it is the same user (its memory, environment and descriptors: it holds
    the run's hold on its placeholders, whose lock is corral's own).
    bwrap's own PID 1 ran outside the filter, and its memory was the
    command's to write."""
    result = corral.run([PYTHON, "-c", PID1_PROBE], cwd=workspace, timeout=30)
    assert result.exit_code == 0, result.aggregated_output
    lines = result.stdout.splitlines()
    seccomp, no_new_privs, capabilities = lines[0].split()
    assert (seccomp, no_new_privs, int(capabilities, 16)) == ("2", "1", 0), result.stdout
    assert lines[-1] == "own True"  # the control: the probe opens the command's own
    assert all(line.endswith(("EACCES", "EPERM")) for line in lines[1:-1]), result.stdout


# Run inside the sandbox: writes an execve("/bin/sh", "-c", CMD) stub at the
# address PID 1's pending system call returns to, through /proc/1/mem; an
# orphan that exits wakes PID 1 from wait().
PID1_TAKEOVER = """
import os, struct, sys, time
cmd = sys.argv[1].encode()
pc = int(open("/proc/1/syscall").read().split()[-1], 16)
data = pc + 29
sh, dc, c = b"/bin/sh\\0", b"-c\\0", cmd + b"\\0"
a_sh, a_dc = data, data + len(sh); a_c = a_dc + len(dc)
a_argv = (a_c + len(c) + 7) & ~7
code = (b"\\x48\\xbf" + struct.pack("<Q", a_sh) + b"\\x48\\xbe" + struct.pack("<Q", a_argv)
        + b"\\x31\\xd2\\xb8\\x3b\\x00\\x00\\x00\\x0f\\x05")
payload = code + sh + dc + c + b"\\0" * (a_argv - a_c - len(c)) + struct.pack("<4Q", a_sh, a_dc, a_c, 0)
fd = os.open("/proc/1/mem", os.O_RDWR)
os.pwrite(fd, payload, pc)
if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(0.2)
        os._exit(0)
    os._exit(0)
os.wait()
time.sleep(3)
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the injected code is x86_64's")
def test_no_code_can_be_written_into_pid_1(host_dir, workspace, binds_made_by):
    """Written into bwrap's PID 1, this ran outside the seccomp filter and
    reached a host socket; corral's PID 1 cannot be written at all."""
    (host_dir / "svc").mkdir()
    host_socket = socket.socket(socket.AF_UNIX)
    host_socket.bind(str(host_dir / "svc" / "host.sock"))
    host_socket.listen(4)
    greet_every_client(host_socket, b"HOST SERVICE REACHED\n")
    report = workspace / "pid1"
    connect = (f"import socket; s = socket.socket(socket.AF_UNIX); "
               f"s.connect('{host_dir}/svc/host.sock'); print(s.recv(64).decode())")
    injected = (f"grep Seccomp: /proc/self/status > {report}; "
                f"{PYTHON} -c \"{connect}\" >> {report} 2>&1")
    try:
        sandboxed_run = corral.run([PYTHON, "-c", PID1_TAKEOVER, injected], cwd=workspace,
                                   timeout=30)
    finally:
        host_socket.close()
    assert "PermissionError" in sandboxed_run.stderr, sandboxed_run.aggregated_output
    assert not report.exists(), report.read_text()


# 5. A protected path that is a symlink: the link itself must stay.

SYMLINK_ATTACKS = {
    "replace .envrc": "rm .envrc && echo evil > .envrc",
    "replace .bashrc": "rm .bashrc && echo evil > .bashrc",
    "rename .envrc away": "mv .envrc x",
    "rename .bashrc away": "mv .bashrc x",
    "write through .envrc": "echo evil > .envrc",
    "write through .bashrc": "echo evil >> .bashrc",
}


@pytest.fixture
def linked_rc_files(workspace: Path) -> Path:
    """A git workspace whose .envrc and .bashrc are relative symlinks to its own files."""
    _git(workspace, "init", "-q")
    (workspace / "envrc.shared").write_text("use flake\n")
    (workspace / "dotfiles").mkdir()
    (workspace / "dotfiles" / "bashrc").write_text("alias ll='ls -l'\n")
    (workspace / ".envrc").symlink_to("envrc.shared")
    (workspace / ".bashrc").symlink_to("dotfiles/bashrc")
    return workspace


@pytest.mark.parametrize("attack", SYMLINK_ATTACKS.values(), ids=SYMLINK_ATTACKS.keys())
def test_a_protected_path_that_is_a_symlink_cannot_be_replaced(linked_rc_files, attack,
                                                               binds_made_by):
    ws = linked_rc_files
    before = _listing(ws)
    if binds_made_by == "bwrap":
        # bwrap alone binds what a link points to, never the link: the run is
        # refused rather than left open to this.
        with pytest.raises(corral.PolicyError, match="is a symbolic link"):
            sandboxed(f"echo started; {attack}", ws)
        assert _listing(ws) == before
        return
    result = sandboxed(f"echo started; {attack}", ws)
    assert result.stdout.startswith("started"), result.aggregated_output
    after = _listing(ws)
    assert after.get(".envrc") == b"-> envrc.shared", f".envrc is now {after.get('.envrc')!r}"
    assert after.get(".bashrc") == b"-> dotfiles/bashrc", f".bashrc is now {after.get('.bashrc')!r}"
    assert after.get("envrc.shared") == b"use flake\n"
    assert after.get("dotfiles/bashrc") == b"alias ll='ls -l'\n"
    assert after == before
    assert result.exit_code != 0, result.aggregated_output
    control = sandboxed(attack, ws, policy="full-access")
    assert control.exit_code == 0 and _listing(ws) != before, control.aggregated_output


# 6. Without network, no socket family reaches past the run's own namespace.

FAMILIES = """
import socket
def create(name, *args):
    try:
        socket.socket(*args).close(); print(name, "created")
    except OSError as e:
        print(name, "refused", e.errno)
create("vsock", socket.AF_VSOCK, socket.SOCK_STREAM)
create("inet", socket.AF_INET, socket.SOCK_STREAM)
create("inet6", socket.AF_INET6, socket.SOCK_STREAM)
create("netlink", socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
"""


@pytest.mark.parametrize("policy", ["workspace-write", "read-only"])
def test_vsock_sockets_cannot_be_created_without_network(workspace, policy):
    """A vsock socket reaches the hypervisor and its other guests, which no network
    namespace confines; the families programs need are still created."""
    result = corral.run([PYTHON, "-c", FAMILIES], cwd=workspace, policy=policy, timeout=30)
    assert result.exit_code == 0, result.aggregated_output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("vsock refused"), result.stdout
    assert lines[1:] == ["inet created", "inet6 created", "netlink created"], result.stdout
    control = corral.run([PYTHON, "-c", FAMILIES], cwd=workspace, policy="full-access",
                         timeout=30)
    if control.stdout.startswith("vsock refused 97"):
        pytest.skip("this kernel has no vsock: the sandbox's refusal proves nothing")
    assert control.stdout.startswith("vsock created"), control.aggregated_output


def _on_landlock(monkeypatch: pytest.MonkeyPatch, network: bool = False) -> corral.SandboxPolicy:
    """The workspace-write policy (with ``network``), run on the Landlock
    backend from now on."""
    from corral.sandbox import bwrap
    from corral.sandbox.landlock import LandlockBackend, landlock_abi

    if landlock_abi()[0] < LandlockBackend.MINIMUM_ABI:
        pytest.skip(f"no Landlock ABI {LandlockBackend.MINIMUM_ABI} here")
    monkeypatch.setattr(bwrap, "bwrap_backend", lambda: None)
    return corral.SandboxPolicy.workspace_write(network=network, accept_weaker=(
        "shared-tmp", "visible-processes", "no-deny-read", "unprotected-paths",
        "changeable-attributes"))


# 7. Without network, no Unix datagram socket, of any type or from a pair, sends to a host socket.

UNIX_DATAGRAM = """
import socket, sys
call, kind, path = sys.argv[1], getattr(socket, sys.argv[2]), sys.argv[3]
try:
    if call == "socket":
        a = socket.socket(socket.AF_UNIX, kind | socket.SOCK_CLOEXEC)
    else:
        a, b = socket.socketpair(socket.AF_UNIX, kind)
    a.sendto(b"from the sandbox", path)
    print("sent")
except OSError as e:
    print("refused", e.errno)
a, b = socket.socketpair()
a.sendall(b"x")
print("stream pair", b.recv(1).decode())
"""


@pytest.mark.parametrize("backend", ["bwrap", "landlock"])
@pytest.mark.parametrize("gated", [True, False], ids=["gate", "no-gate"])
@pytest.mark.parametrize("call", ["socket", "socketpair"])
@pytest.mark.parametrize("kind", ["SOCK_DGRAM", "SOCK_RAW"])
def test_no_unix_datagram_socket_sends_to_a_host_socket(host_dir, workspace, backend, gated,
                                                        call, kind, monkeypatch):
    """``sendto`` on a Unix datagram socket takes any path: syslog's /dev/log
    or any service's datagram socket would be in reach.  One comes from
    ``socket`` and from ``socketpair`` alike, and the kernel makes one of
    SOCK_RAW too; without the gate (kernels before 5.6) as well."""
    from corral.sandbox import socket_gate

    policy = _on_landlock(monkeypatch) if backend == "landlock" else "workspace-write"
    if not gated:
        monkeypatch.setattr(socket_gate, "_supported", False)
    argv = [PYTHON, "-c", UNIX_DATAGRAM, call, kind, str(host_dir / "service.dgram")]
    from corral.sandbox.landlock import LandlockBackend, landlock_abi

    if (backend == "landlock" and not gated
            and landlock_abi()[0] < LandlockBackend.SIGNAL_SCOPING_ABI):
        # Nothing would keep the command from signalling the host's processes.
        with pytest.raises(corral.PolicyError, match="signalling the user's other processes"):
            corral.run(argv, cwd=workspace, policy=policy)
        return
    service = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    service.bind(argv[-1])
    service.settimeout(0.5)
    try:
        result = corral.run(argv, cwd=workspace, policy=policy)
        assert result.stdout == "refused 1\nstream pair x\n", result.aggregated_output
        assert result.sandbox == backend
        if gated:  # the witness reports it: a datagram socket needs network, no privilege
            from corral._denial import NEEDS_NETWORK

            assert (f"AF_UNIX {kind}", NEEDS_NETWORK) in [
                (denial.target, denial.remedy) for denial in result.denials], result.denials
        with pytest.raises(TimeoutError):
            service.recv(100)
        control = corral.run(argv, cwd=workspace, policy="full-access")
        assert control.stdout.startswith("sent\n") and service.recv(100) == b"from the sandbox"
    finally:
        service.close()


# 8. The command's environment acts on the command, not on what builds its sandbox.

PRELOADED = r"""
#include <fcntl.h>
#include <unistd.h>
__attribute__((constructor)) static void loaded(void)
{
    static const char *const targets[] = {MARKS};
    for (unsigned i = 0; i < sizeof targets / sizeof *targets; i++) {
        int fd = open(targets[i], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            (void)write(fd, "loaded\n", 7);
            close(fd);
        }
    }
}
"""


@pytest.mark.parametrize("setup", ["init", "bwrap-binds", "no-init"])
def test_a_preloaded_library_runs_only_in_the_command(host_dir, workspace, outside, setup,
                                                      monkeypatch):
    """LD_PRELOAD (and LD_AUDIT, GLIBC_TUNABLES...) in the command's
    environment once reached bwrap, which loaded the library outside the
    sandbox, and corral's init, which loaded it with the capabilities to
    make, or skip, the mounts that protect ``.git/hooks``.  The library
    writes outside the roots and into the hooks: only the command may load
    it, where both are read-only."""
    from corral.sandbox import bwrap

    found = bwrap.bwrap_backend()
    assert found is not None
    if setup == "init" and not found.init_mounts:
        pytest.skip(f"corral's sandbox init cannot work here: "
                    f"{bwrap.sandbox_init_absence(found.path)}")
    if setup != "init":
        chosen = bwrap.BwrapBackend(found.path, None if setup == "no-init" else found.init,
                                    init_mounts=False)
        monkeypatch.setattr(bwrap, "bwrap_backend", lambda: chosen)
    _git(workspace, "init", "-q")
    marks = [outside / "escaped", workspace / ".git" / "hooks" / "pre-commit"]
    source = host_dir / "preloaded.c"
    source.write_text(PRELOADED.replace("MARKS", ", ".join(f'"{m}"' for m in marks)))
    library = host_dir / "preloaded.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    env = {**os.environ, "LD_PRELOAD": str(library)}
    script = 'echo "preload: $LD_PRELOAD"'

    result = corral.run(["sh", "-c", script], cwd=workspace, env=env, timeout=30)
    assert result.stdout == f"preload: {library}\n", result.aggregated_output
    assert [m for m in marks if m.exists()] == []
    control = corral.run(["sh", "-c", script], cwd=workspace, env=env, policy="full-access")
    assert control.exit_code == 0 and all(m.read_text() == "loaded\n" for m in marks)


def test_an_environment_too_large_for_bwrap_is_refused_not_cut(workspace, monkeypatch):
    """Without corral's init bwrap takes the environment as arguments, at
    most 9000 of them: more is refused with the reason.  The init takes any."""
    from corral.sandbox import bwrap

    found = bwrap.bwrap_backend()
    assert found is not None
    env = {**{f"V{i}": "x" for i in range(3100)}, "PATH": os.environ["PATH"]}
    if found.init is not None:
        result = corral.run(["sh", "-c", "env | grep -c '^V'"], cwd=workspace, env=env)
        assert result.stdout == "3100\n", result.aggregated_output
    without_init = bwrap.BwrapBackend(found.path, None)
    monkeypatch.setattr(bwrap, "bwrap_backend", lambda: without_init)
    with pytest.raises(corral.PolicyError, match=r"\d+ variables, more than bwrap takes"):
        corral.run(["true"], cwd=workspace, env=env)


def test_a_working_directory_in_a_git_directory_lifts_no_protection(workspace, binds_made_by):
    """A model names the working directory (MCP's ``workdir``): in ``.git``,
    the root's protections would be made beneath it (``.git/.git/hooks``)
    and the repository's own hooks and config left writable; inside a
    protected path, the run is refused."""
    _git(workspace, "init", "-q")
    plant = "git config -f config core.fsmonitor 'touch pwned; false' && echo evil > hooks/x"
    result = sandboxed(f"echo started; {plant}", workspace / ".git")
    assert result.stdout == "started\n" and result.exit_code != 0, result.aggregated_output
    assert _git(workspace, "config", "--default", "none", "--get", "core.fsmonitor") == "none\n"
    assert not (workspace / ".git" / "hooks" / "x").exists()
    (workspace / ".vscode").mkdir()
    for inside in (workspace / ".git" / "hooks", workspace / ".vscode"):
        with pytest.raises(corral.PolicyError, match="lies inside .*, a protected path"):
            sandboxed("echo evil > tasks.json", inside)
    control = sandboxed(plant, workspace / ".git", policy="full-access")
    assert control.exit_code == 0 and (workspace / ".git" / "hooks" / "x").exists()


# 9. The bwrap corral runs, outside any sandbox, is never one a run could put in its way.

PLANT_BWRAP = ('printf "#!/bin/sh\\necho outside > {mark}\\nexec {bwrap} \\"\\$@\\"\\n" > {bin}/bwrap; '
               'chmod +x {bin}/bwrap')


@pytest.mark.parametrize("where", ["writable root", "working directory"])
def test_a_bwrap_put_on_path_by_a_run_never_runs(host_dir, workspace, outside, where, monkeypatch,
                                                 binds_made_by):
    """A system directory on PATH before the system's bwrap (a
    ``/usr/local/bin``, here one made for the test) inside a root a run may
    write: a ``bwrap`` made there would be the next run's, started outside
    the sandbox.  Made unsandboxed, it is (the control)."""
    from corral.sandbox import bwrap

    real_bwrap = bwrap.find_bwrap()
    tools = host_dir / "tools" if where == "writable root" else workspace / "tools"
    (tools / "bin").mkdir(parents=True)
    monkeypatch.setattr(bwrap, "_SYSTEM_DIRECTORIES",
                        (*bwrap._SYSTEM_DIRECTORIES, str(tools / "bin")))
    monkeypatch.setenv("PATH", f"{tools}/bin{os.pathsep}{os.environ['PATH']}")
    mark = outside / "bwrap-ran"
    plant = PLANT_BWRAP.format(mark=mark, bwrap=real_bwrap, bin=tools / "bin")
    policy = corral.SandboxPolicy.workspace_write(
        writable=(str(tools),) if where == "writable root" else ())

    planting = corral.run(["sh", "-c", plant], cwd=workspace, policy=policy, timeout=30)
    assert planting.exit_code != 0 and not (tools / "bin" / "bwrap").exists()
    assert corral.run(["true"], cwd=workspace, policy=policy).exit_code == 0
    assert not mark.exists()
    if binds_made_by == "bwrap":
        return  # the fixture's backend keeps the bwrap it was given: no control
    control = corral.run(["sh", "-c", plant], cwd=workspace, policy="full-access")
    assert control.exit_code == 0
    assert corral.run(["true"], cwd=workspace, policy=policy).exit_code == 0
    assert mark.read_text() == "outside\n"


def test_a_system_directory_in_a_root_is_guarded_whatever_the_path_even_missing(
        host_dir, workspace, outside, monkeypatch, binds_made_by):
    """A root holding system directories (``/usr/local``, here one made for
    the test): a later run, with any PATH, takes a bwrap from them, so
    ``bwrap`` in each is protected whatever this run's PATH, and a missing
    one (``/usr/local/sbin``) cannot be made.  Made unsandboxed, it would be
    taken (the control)."""
    from corral.sandbox import bwrap

    real_bwrap = bwrap.find_bwrap()
    usr = host_dir / "usr"
    system = usr / "local"  # /usr/local/bin, /usr/local/sbin and /opt/local/bin (no /opt/local)
    (system / "bin").mkdir(parents=True)
    monkeypatch.setattr(bwrap, "_SYSTEM_DIRECTORIES", (
        *bwrap._SYSTEM_DIRECTORIES, str(system / "bin"), str(system / "sbin"),
        str(host_dir / "opt" / "local" / "bin")))
    mark = outside / "bwrap-ran"
    policy = corral.SandboxPolicy.workspace_write(writable=(str(usr), str(host_dir / "opt")))
    (host_dir / "opt").mkdir()
    for directory in (system / "bin", system / "sbin", host_dir / "opt" / "local" / "bin"):
        plant = f"mkdir -p {directory} && " + PLANT_BWRAP.format(  # on no PATH of this run
            mark=mark, bwrap=real_bwrap, bin=directory)
        planting = corral.run(["sh", "-c", plant], cwd=workspace, policy=policy, timeout=30)
        assert planting.exit_code != 0 and not (directory / "bwrap").exists()
    # Their placeholders went with the runs.
    assert not (system / "sbin").exists() and os.listdir(host_dir / "opt") == []
    monkeypatch.setenv("PATH", f"{system}/sbin{os.pathsep}{os.environ['PATH']}")
    assert bwrap.find_bwrap() == real_bwrap
    plant = f"mkdir -p {system}/sbin && " + PLANT_BWRAP.format(mark=mark, bwrap=real_bwrap,
                                                               bin=system / "sbin")
    control = corral.run(["sh", "-c", plant], cwd=workspace, policy="full-access")
    assert control.exit_code == 0 and bwrap.find_bwrap() == str(system / "sbin" / "bwrap")


def test_a_bwrap_link_to_another_program_is_not_taken(host_dir, monkeypatch):
    """A ``bwrap`` on PATH that is a link to another program, in a system
    directory (one a run wrote there, under a root holding it) or leading
    into one from elsewhere (``.venv/bin/bwrap -> /usr/bin/false`` would
    fail every later run): the first on PATH (the control), never taken."""
    import shutil

    from corral.sandbox import bwrap

    real_bwrap = bwrap.find_bwrap()
    system, venv = host_dir / "system", host_dir / ".venv" / "bin"
    system.mkdir()
    venv.mkdir(parents=True)
    (system / "bwrap").symlink_to(shutil.which("true") or "/bin/true")
    (venv / "bwrap").symlink_to(shutil.which("false") or "/bin/false")
    monkeypatch.setattr(bwrap, "_SYSTEM_DIRECTORIES", (*bwrap._SYSTEM_DIRECTORIES, str(system)))
    for first in (system, venv):
        monkeypatch.setenv("PATH", f"{first}{os.pathsep}{os.environ['PATH']}")
        assert shutil.which("bwrap") == str(first / "bwrap")
        assert bwrap.find_bwrap() == real_bwrap


def test_a_bwrap_the_caller_names_through_a_link_stays_it(host_dir, workspace, outside,
                                                          monkeypatch, binds_made_by):
    """$CORRAL_BWRAP naming a link in a root (``~/.local/bin/bwrap`` with the
    home a root): the link stays that link, or a run could point it at one
    of its own."""
    from corral.sandbox import bwrap

    real_bwrap = bwrap.find_bwrap()
    link = workspace / "tools" / "bwrap"
    link.parent.mkdir()
    link.symlink_to(real_bwrap)
    monkeypatch.setenv(bwrap.BWRAP_VARIABLE, str(link))
    mark = outside / "bwrap-ran"
    plant = (PLANT_BWRAP.format(mark=mark, bwrap=real_bwrap, bin=workspace)
             + f" && ln -sfn {workspace}/bwrap {link}")
    if binds_made_by == "bwrap":
        with pytest.raises(corral.PolicyError, match="symbolic link that must stay one"):
            corral.run(["true"], cwd=workspace)  # bwrap cannot pin it
        return
    planting = corral.run(["sh", "-c", plant], cwd=workspace, timeout=30)
    assert planting.exit_code != 0 and os.readlink(link) == real_bwrap
    assert corral.run(["true"], cwd=workspace).exit_code == 0 and not mark.exists()


BWRAP_PLACES = ["missing directory", "link into a missing one", "entry through ..",
                "home's .local/bin", "relative entry"]


@pytest.mark.parametrize("place", BWRAP_PLACES)
def test_no_bwrap_is_taken_from_where_a_run_may_put_one(host_dir, workspace, outside, place,
                                                       monkeypatch):
    """A directory of PATH a run may make or write: one missing in a
    writable root (a ``.venv/bin`` yet to be made), one a ``bwrap`` link
    there points into, one an entry reaches through ``x/..`` once a run
    makes ``x`` a link, ``~/.local/bin`` with the home a root, and
    whatever directory a relative entry names.  The run may make it (a
    virtualenv must be made), but a bwrap put there is never the next run's,
    nor any process's with another home or working directory: corral takes
    one from a system directory only.  A lookup on PATH (``which bwrap``)
    finds the one put there (the control)."""
    import shutil

    from corral.sandbox import bwrap

    real_bwrap = bwrap.find_bwrap()
    tools = host_dir / "tools"
    tools.mkdir()
    entry, made, prepare, cwd = f"{tools}/bin", tools / "bin", "", workspace
    if place == "link into a missing one":
        (tools / "bin").mkdir()
        (tools / "bin" / "bwrap").symlink_to(tools / "x" / "y" / "bwrap")
        made = tools / "x" / "y"
    elif place == "entry through ..":
        entry, made = f"{tools}/x/../bin", tools / "d1" / "bin"
        prepare = f"mkdir -p {tools}/d1/d2 && ln -s d1/d2 {tools}/x && "
    elif place == "home's .local/bin":
        monkeypatch.setenv("HOME", str(tools))
        entry, made, cwd = f"{tools}/.local/bin", tools / ".local" / "bin", tools
    elif place == "relative entry":
        entry, made = "bin", tools / "bin"
        monkeypatch.chdir(tools)
    monkeypatch.setenv("PATH", f"{entry}{os.pathsep}{os.environ['PATH']}")
    mark = outside / "bwrap-ran"
    plant = prepare + f"mkdir -p {made} && " + PLANT_BWRAP.format(mark=mark, bwrap=real_bwrap,
                                                                 bin=made)
    policy = corral.SandboxPolicy.workspace_write(writable=(str(tools),))

    planting = corral.run(["sh", "-c", plant], cwd=cwd, policy=policy, timeout=30)
    assert planting.exit_code == 0, planting.aggregated_output
    monkeypatch.setenv("HOME", str(host_dir / "elsewhere"))
    assert bwrap.find_bwrap() == real_bwrap
    assert corral.run(["true"], cwd=workspace, policy=policy).exit_code == 0
    assert not mark.exists()
    assert shutil.which("bwrap") == f"{entry}/bwrap"


# 10. The gate makes the command's calls with corral's privileges: none may take one.

PRIVILEGED_BIND = """
import socket, sys
port = int(sys.argv[1])
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    try:
        socket.socket(family).bind((host, port)); print("bound")
    except OSError as e:
        print("refused", e.errno)
socket.socket().bind(("127.0.0.1", 0)); print("bound any port")
"""


def _free_privileged_port() -> int:
    """A port below ``ip_unprivileged_port_start`` free on loopback, IPv4 and IPv6."""
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as setting:
        start = int(setting.read())
    for port in range(81, start):
        try:
            with socket.socket() as v4, socket.socket(socket.AF_INET6) as v6:
                v4.bind(("127.0.0.1", port))
                v6.bind(("::1", port))
            return port
        except PermissionError:
            break
        except OSError:
            continue
    pytest.skip("this caller cannot bind a privileged port: the sandbox's refusal proves nothing")


@pytest.mark.parametrize("network", [False, True], ids=["no-network", "network"])
def test_a_server_binds_no_privileged_port_on_landlock(workspace, monkeypatch, network):
    """On Landlock without network the gate binds the command's TCP sockets
    itself: a root caller's corral holds CAP_NET_BIND_SERVICE, which the
    command does not; with network the kernel refuses it the same.  A run
    that failed for it is told which port."""
    port = _free_privileged_port()
    argv = [PYTHON, "-c", PRIVILEGED_BIND + "sys.exit(3)\n", str(port)]
    result = corral.run(argv, cwd=workspace, policy=_on_landlock(monkeypatch, network))
    assert result.sandbox == "landlock" and result.exit_code == 3
    assert result.stdout == "refused 13\nrefused 13\nbound any port\n", result.aggregated_output
    assert [(d.kind.value, d.target) for d in result.denials] == [("privilege", f"port {port}")]
    control = corral.run(argv, cwd=workspace, policy="full-access")
    assert control.stdout == "bound\nbound\nbound any port\n", control.aggregated_output


def test_a_privileged_port_is_refused_and_reported_under_bwrap(workspace):
    """In the run's own network namespace no sandboxed process holds
    CAP_NET_BIND_SERVICE; a run that failed for it is told which port."""
    port = _free_privileged_port()
    argv = [PYTHON, "-c", PRIVILEGED_BIND + "sys.exit(3)\n", str(port)]
    result = corral.run(argv, cwd=workspace)
    assert result.sandbox == "bwrap" and result.exit_code == 3
    assert result.stdout == "refused 13\nrefused 13\nbound any port\n", result.aggregated_output
    assert [(d.kind.value, d.target) for d in result.denials] == [("privilege", f"port {port}")]
    control = corral.run(argv, cwd=workspace, policy="full-access")
    assert control.stdout == "bound\nbound\nbound any port\n", control.aggregated_output


NETLINK_PEERS = """
import socket
for name, protocol, address in (("kernel", 0, (0, 0)), ("group", 0, (0, 1)),
                                ("process", 0, (4242, 0)), ("usersock process", 2, (4242, 0))):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, protocol)
    try:
        s.connect(address); print(name, "connected")
    except OSError as e:
        print(name, "refused", e.errno)
"""


def test_a_netlink_connect_takes_no_privilege_from_the_gate(workspace):
    """Under bwrap the gate connects the command's sockets itself, in the run's
    network namespace, over which corral holds CAP_NET_ADMIN: a netlink
    connect to a multicast group or a process takes it, and the command
    gets EPERM for it wherever it makes the call itself (with network).
    NETLINK_USERSOCK takes no privilege: it connects everywhere."""
    refused = ("kernel connected\ngroup refused 1\nprocess refused 1\n"
               "usersock process connected\n")
    result = corral.run([PYTHON, "-c", NETLINK_PEERS], cwd=workspace, timeout=30)
    assert result.sandbox == "bwrap" and result.stdout == refused, result.aggregated_output
    itself = corral.run([PYTHON, "-c", NETLINK_PEERS], cwd=workspace, timeout=30,
                        policy=corral.SandboxPolicy.workspace_write(network=True))
    assert itself.stdout == refused, itself.aggregated_output
    control = corral.run([PYTHON, "-c", NETLINK_PEERS], cwd=workspace, policy="full-access")
    if control.stdout == refused:
        pytest.skip("this caller holds no CAP_NET_ADMIN: the sandbox's refusal proves nothing")
    assert control.stdout == ("kernel connected\ngroup connected\nprocess connected\n"
                              "usersock process connected\n")


# 11. What a run leaves where git keeps a file must not stop the next one from starting.

@pytest.mark.parametrize("fifo", ["commondir", "gitdir", "config"])
def test_a_fifo_left_where_git_keeps_a_file_hangs_no_later_run(workspace, fifo):
    """corral reads a .git file's git directory before the sandbox exists, so
    before any timeout applies: an open of a FIFO there waited for ever."""
    plant = sandboxed(f'echo "gitdir: fake" > .git && mkdir fake && mkfifo fake/{fifo}',
                      workspace)
    assert plant.exit_code == 0, plant.aggregated_output
    assert (workspace / "fake" / fifo).is_fifo()
    try:
        later = subprocess.run([sys.executable, "-m", "corral", "run", "--timeout", "5", "--",
                                "echo", "hello"], cwd=workspace, capture_output=True, text=True,
                               timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the next run hung before starting its command")
    assert later.returncode == 0 and later.stdout == "hello\n", later.stderr


# 12. A link on the way to a protected path: corral works where the path really
# is, and the link stays that link.

def _run_watching(cwd: Path, watched: Path,
                  **kwargs: object) -> tuple[corral.ExecResult, list[str]]:
    """Runs a command that waits until the test has listed ``watched`` from
    the host while the sandbox exists (its placeholders made); returns the
    result and that listing."""
    listing: list[str] = []

    def look(event: corral.OutputEvent) -> None:
        if b"ready" in event.data and not listing:
            listing.extend(sorted(os.listdir(watched)))
            (cwd / "go").write_text("")

    result = corral.run(["sh", "-c", "echo ready; while [ ! -e go ]; do sleep 0.02; done"],
                        cwd=cwd, timeout=30, on_output=look, **kwargs)  # type: ignore[arg-type]
    (cwd / "go").unlink()
    return result, listing


@pytest.mark.parametrize("where", ["/var/tmp", "/tmp"])
def test_a_git_link_out_of_the_roots_makes_corral_touch_nothing_there(host_dir, workspace, where,
                                                                       binds_made_by):
    """A .git link a run planted made corral, unsandboxed, make placeholders
    where it points, and remove a socket of the user's found there; under
    /tmp, which the sandbox does not show, every later run failed."""
    import stat
    import tempfile

    victim = Path(tempfile.mkdtemp(prefix="corral-victim-", dir=where))
    try:
        os.mknod(victim / "config", 0o600 | stat.S_IFSOCK)  # the user's, say an agent's socket
        before = os.lstat(victim / "config").st_ino
        plant = sandboxed(f"ln -s {victim} .git", workspace)
        assert plant.exit_code == 0, plant.aggregated_output
        accepted: dict[str, object] = {}
        if binds_made_by == "bwrap":  # bwrap alone cannot keep the link: refused, unless accepted
            with pytest.raises(corral.PolicyError, match=r"/\.git is a symbolic link"):
                sandboxed("true", workspace)
            accepted = {"policy": corral.SandboxPolicy.workspace_write(
                accept_weaker=("unprotected-paths",))}
        for _ in range(2):  # and the next run works as well
            result, during = _run_watching(workspace, victim, **accepted)
            assert result.exit_code == 0, result.aggregated_output
            assert during == ["config"], "corral made placeholders outside the roots"
            assert sorted(os.listdir(victim)) == ["config"]
            assert os.lstat(victim / "config").st_ino == before
    finally:
        import shutil

        shutil.rmtree(victim)


def test_a_git_link_inside_the_workspace_stays_that_link(workspace, binds_made_by):
    """.git a link to the repository's real git directory in the workspace:
    pointed at a directory of the command's, its hooks would run on the host."""
    _git(workspace, "init", "-q")
    (workspace / ".git").rename(workspace / "gitstore")
    (workspace / ".git").symlink_to("gitstore")
    (workspace / "gitstore" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    hooks = _listing(workspace / "gitstore" / "hooks")
    repoint = ("mkdir -p evil/hooks && cp -R gitstore/. evil/ && "
               "printf '#!/bin/sh\\ntouch pwned\\n' > evil/hooks/pre-commit && "
               "ln -sfn evil .git")
    attacks = [repoint, "mv .git moved", "rm .git && mkdir .git",
               "echo evil > .git/hooks/pre-commit", "echo evil > gitstore/hooks/pre-commit"]
    accepted: dict[str, object] = {}
    if binds_made_by == "bwrap":
        with pytest.raises(corral.PolicyError, match=r"/\.git is a symbolic link"):
            sandboxed("true", workspace)
        accepted = {"policy": corral.SandboxPolicy.workspace_write(
            accept_weaker=("unprotected-paths",))}
    commit = sandboxed(f"echo x > file && {GIT} add file && {GIT} commit -qm agent", workspace,
                       **accepted)
    assert commit.exit_code == 0, commit.aggregated_output  # the git directory is writable
    if binds_made_by == "bwrap":
        return
    for attack in attacks:
        result = sandboxed(f"echo started; {attack}", workspace)
        assert result.stdout.startswith("started") and result.exit_code != 0, (
            f"{attack}: {result.aggregated_output}")
        assert os.readlink(workspace / ".git") == "gitstore", attack
        assert _listing(workspace / "gitstore" / "hooks") == hooks, attack
    # What the sandboxed attempt copied is read-only to a user other than root.
    control = sandboxed(f"rm -rf evil && {repoint}", workspace, policy="full-access")
    assert control.exit_code == 0 and os.readlink(workspace / ".git") == "evil"


# 13. What in a git directory tells git where to take hooks and config from.

def _repository_with_a_submodule_and_a_worktree(host_dir: Path) -> Path:
    source = host_dir / "subsource"
    source.mkdir()
    _git(source, "init", "-q")
    _git(source, "commit", "-q", "--allow-empty", "-m", "sub")
    ws = host_dir / "ws"
    ws.mkdir()
    _git(ws, "init", "-q")
    (ws / "README").write_text("hello\n")
    _git(ws, "add", "README")
    _git(ws, "commit", "-qm", "first")
    _git(ws, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(source), "sub")
    _git(ws, "worktree", "add", "-q", str(host_dir / "wt"))
    return ws


# (the checkout git runs in, its git directory, the file written there)
GIT_REDIRECTS = {
    "commondir": ("ws", "ws/.git", "commondir"),
    "config.worktree": ("ws", "ws/.git", "config.worktree"),
    "submodule commondir": ("ws/sub", "ws/.git/modules/sub", "commondir"),
    "worktree commondir": ("wt", "ws/.git/worktrees/wt", "commondir"),
    "worktree config.worktree": ("wt", "ws/.git/worktrees/wt", "config.worktree"),
}


@pytest.mark.parametrize("redirect", GIT_REDIRECTS.values(), ids=GIT_REDIRECTS.keys())
def test_git_takes_no_config_from_a_directory_of_the_commands(host_dir, redirect, binds_made_by):
    """A commondir the command writes names a directory of its own, with a
    config whose core.fsmonitor the user's next git status runs on the host;
    so does a config.worktree where extensions.worktreeConfig is set."""
    ws = _repository_with_a_submodule_and_a_worktree(host_dir)
    _git(ws, "config", "extensions.worktreeConfig", "true")
    checkout, gitdir, name = host_dir / redirect[0], host_dir / redirect[1], redirect[2]
    mark = host_dir / "PWNED"
    evil_config = f'[core]\\n\\tfsmonitor = "touch {mark}; false"\\n'
    if name == "commondir":
        attack = (f"mkdir -p evil && ln -s {ws}/.git/objects evil/objects && "
                  f"ln -s {ws}/.git/refs evil/refs && cp {gitdir}/HEAD evil/ && "
                  f"printf '{evil_config}' > evil/config && echo {ws}/evil > {gitdir}/{name}")
    else:
        attack = f"printf '{evil_config}' > {gitdir}/{name}"
    before = (gitdir / name).read_bytes() if (gitdir / name).exists() else None

    def host_git_status() -> None:
        subprocess.run(["git", "status", "--porcelain"], cwd=checkout, capture_output=True)

    result = sandboxed(f"echo started; {attack}", ws)
    assert result.stdout == "started\n" and result.exit_code != 0, result.aggregated_output
    assert {d.target for d in result.denials} == {str(gitdir / name)}
    host_git_status()
    assert not mark.exists(), "the host's git ran what the command planted"
    assert subprocess.run(["git", "config", "--get", "core.fsmonitor"], cwd=checkout,
                          capture_output=True).returncode == 1
    after = (gitdir / name).read_bytes() if (gitdir / name).exists() else None
    assert after == before  # and a placeholder is gone with the run
    commit = sandboxed(f"echo x >> README && {GIT} commit -qam agent && {GIT} status", ws)
    assert commit.exit_code == 0, commit.aggregated_output
    control = sandboxed(attack, ws, policy="full-access")
    assert control.exit_code == 0, control.aggregated_output
    host_git_status()
    assert mark.exists()
