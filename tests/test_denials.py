"""Structured denials: what the sandbox refused, checked against the policy.

The pure cases feed error lines in the formats real tools print; the
sandboxed cases attempt each refused operation for real and check the
report, and that a run where nothing was refused reports nothing.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import corral
from corral import DenialKind, find_denials
from conftest import openable_device
from corral.sandbox.probe import probe_machine

WW = corral.SandboxPolicy.workspace_write()


def _kinds(denials: tuple[corral.Denial, ...]) -> list[tuple[str, str | None]]:
    return [(d.kind.value, d.target) for d in denials]


def test_writes_outside_the_roots_and_into_protected_paths(tmp_path):
    (tmp_path / ".git" / "hooks").mkdir(parents=True)
    output = "\n".join([
        "sh: 1: cannot create /etc/motd: Read-only file system",
        "mkdir: cannot create directory ‘.vscode’: Not a directory",
        "OSError: [Errno 30] Read-only file system: '.git/hooks/pre-commit'",
        "Error: EROFS: read-only file system, open '/var/tmp/cache/x'",
    ])
    denials = find_denials(WW, str(tmp_path), 1, output, "bwrap")
    assert _kinds(denials) == [
        ("write", "/etc/motd"), ("write", f"{tmp_path}/.vscode"),
        ("write", f"{tmp_path}/.git/hooks/pre-commit"), ("write", "/var/tmp/cache/x"),
    ]
    assert denials[0].remedy == "outside the writable roots: add --writable /etc"
    assert "protected" in denials[1].remedy and "protected" in denials[2].remedy
    assert denials[0].evidence == "sh: 1: cannot create /etc/motd: Read-only file system"


def test_the_hosts_tmp_and_dev_shm_are_refused_only_on_landlock(host_dir):
    """bwrap gives the run a /tmp and a /dev of its own; Landlock shows the
    host's, read-only (``shared-tmp``): a refused write there is a denial,
    with a remedy that says why."""
    output = "\n".join([
        "sh: 1: cannot create /tmp/out.txt: Permission denied",
        "mkdir: cannot create directory '/dev/shm/cache': Permission denied",
        "sh: 1: cannot create /dev/tty: Permission denied",  # no terminal either way
        "PermissionError: [Errno 13] Permission denied: '/dev/pts/7'",  # the user's, hidden
    ])
    assert find_denials(WW, str(host_dir), 1, output, "bwrap") == ()
    denials = find_denials(WW, str(host_dir), 1, output, "landlock")
    assert _kinds(denials) == [("write", "/tmp/out.txt"), ("write", "/dev/shm/cache"),
                               ("read", "/dev/pts/7")]
    assert "$TMPDIR" in denials[0].remedy and "--writable /tmp" in denials[0].remedy
    assert "shm_open" in denials[1].remedy and "--writable /dev/shm" in denials[1].remedy
    read_only = find_denials(corral.SandboxPolicy.read_only(), str(host_dir), 1, output,
                             "landlock")
    assert "--writable" not in read_only[0].remedy


def test_a_hidden_path_in_the_hosts_tmp_is_a_read_on_landlock(tmp_path):
    """Landlock shows the host's /tmp: a deny-read path there, refused, is a
    read denial (under bwrap the sandbox's own /tmp hides it anyway), and
    another user's file there, refused, is none."""
    secret = tmp_path / "token"
    secret.write_text("s3cr3t\n")
    policy = corral.SandboxPolicy.read_only(deny_read=(str(secret),))
    line = f"cat: {secret}: Permission denied"
    assert _kinds(find_denials(policy, str(tmp_path), 1, line, "landlock")) == [
        ("read", str(secret))]
    secret.chmod(0o444)
    if not os.access(secret, os.W_OK):  # a user: as another's file would be
        unhidden = corral.SandboxPolicy.read_only(deny_read=())
        assert find_denials(unhidden, str(tmp_path), 1, line, "landlock") == ()


def test_a_host_device_refused_on_landlock_is_a_privilege_denial(tmp_path):
    """Landlock's rules hide the host's devices but those bubblewrap's /dev
    has: one the user could open outside is a denial (one the user could not
    open, or /dev/tty, which no run has as its terminal, is none)."""
    line = "sh: 1: cannot create /dev/tty: Permission denied"
    assert find_denials(WW, str(tmp_path), 1, line, "landlock") == ()
    import stat

    devices = [f"/dev/{name}" for name in sorted(os.listdir("/dev"))
               if name not in ("null", "zero", "full", "random", "urandom", "tty", "ptmx")
               and stat.S_ISCHR(os.lstat(f"/dev/{name}").st_mode)]
    if not devices:
        pytest.skip("this /dev has no device beyond the sandbox's own (a container's)")
    device = devices[0]
    line = f"sh: 1: cannot create {device}: Permission denied"
    could = os.access(device, os.R_OK) or os.access(device, os.W_OK)
    expected = [("privilege", device)] if could else []
    denials = find_denials(WW, str(tmp_path), 1, line, "landlock")
    assert _kinds(denials) == expected
    assert all("full access" in d.remedy for d in denials)
    assert find_denials(WW, str(tmp_path), 1, line, "bwrap") == ()  # its own /dev: EACCES is DAC


def test_errors_the_policy_does_not_explain_are_not_denials(host_dir):
    tmp_path = host_dir  # outside /tmp, which is private (and so writable) in the sandbox
    output = "\n".join([
        "touch: cannot touch 'inside.txt': Permission denied",   # inside the root: its own
        "cat: /nonexistent: No such file or directory",
        "mkdir: cannot create directory ‘build’: Not a directory",
        "connect: Connection refused",
        "ls: cannot read symbolic link '/proc/1/fd/0': Permission denied",  # another process's
    ])
    assert find_denials(WW, str(tmp_path), 1, output, "bwrap") == ()
    assert find_denials(WW, str(tmp_path), 0, "all good\n", "bwrap") == ()
    # Without a sandbox nothing is a denial.
    assert find_denials(corral.SandboxPolicy.full_access(), str(tmp_path), 1,
                        "sh: 1: cannot create /etc/x: Read-only file system", None) == ()


def test_a_file_missing_only_in_the_sandbox_under_a_hidden_path_is_a_read(host_dir, tmp_path):
    """A mode-000 cover keeps ``~/.ssh/known_hosts`` and shows nothing else:
    "No such file" for a file the host has there is a refused read; for one
    the host lacks too, or anywhere else, it is nothing.  Beneath /tmp the
    sandbox's own /tmp hides the host's files, deny-read or not, except in
    a root or the working directory, which the sandbox shows all the same."""
    for home in (host_dir, tmp_path):
        (home / ".ssh").mkdir()
        (home / ".ssh" / "id_ed25519").write_text("key\n")
        (home / ".envrc").write_text("x\n")
    for cwd, home, reported in ((host_dir, host_dir, True), (tmp_path, tmp_path, True),
                                (host_dir, tmp_path, False)):
        ssh = home / ".ssh"
        policy = corral.SandboxPolicy.workspace_write(deny_read=(str(ssh),))
        output = "\n".join([
            f"cat: {ssh}/id_ed25519: No such file or directory",
            f"fatal: unable to read config file '{ssh}/config': No such file or directory",
            f"cat: {home}/.envrc: No such file or directory",  # protected, not hidden
            "Error: ENOENT: no such file or directory, open '/nonexistent/x'",
        ])
        hidden = [("read", f"{ssh}/id_ed25519")] if reported else []
        assert _kinds(find_denials(policy, str(cwd), 1, output, "bwrap")) == hidden, (cwd, home)


def test_network_unix_sockets_and_privileges(tmp_path):
    lines = {
        "curl: (6) Could not resolve host: example.com": ("network", "example.com"),
        "ssh: connect to host 10.0.0.7 port 22: Network is unreachable": ("network", "10.0.0.7:22"),
        "Get http://docker/v1: dial unix /var/run/docker.sock: socket: operation not permitted":
            ("unix-socket", "/var/run/docker.sock"),
        "unshare: unshare failed: Operation not permitted": ("privilege", "unshare"),
        "sudo: The \"no new privileges\" flag is set, which prevents sudo from running as root.":
            ("privilege", "privileges"),
    }
    for line, expected in lines.items():
        assert _kinds(find_denials(WW, str(tmp_path), 1, line, "bwrap")) == [expected], line
    # A refused socket() in Python: "_socket.socket" names no Unix socket.
    traceback = ('  File "/usr/lib/python3.11/socket.py", line 232, in __init__\n'
                 "    _socket.socket.__init__(self, family, type, proto, fileno)\n"
                 "PermissionError: [Errno 1] Operation not permitted")
    assert _kinds(find_denials(WW, str(tmp_path), 1, traceback, "bwrap")) == [("network", None)]
    allowed = corral.SandboxPolicy.workspace_write(network=True)
    assert find_denials(allowed, str(tmp_path), 6,
                        "curl: (6) Could not resolve host: example.com", "bwrap") == ()


def test_a_seccomp_kill_and_an_unexplained_read_only_failure(tmp_path):
    killed = find_denials(WW, str(tmp_path), 159, "", "bwrap")
    assert _kinds(killed) == [("privilege", "seccomp")]
    vague = find_denials(WW, str(tmp_path), 1, "fatal: Read-only file system", "bwrap")
    assert _kinds(vague) == [("write", None)] and "--writable" in vague[0].remedy


def test_a_refused_tunable_is_one_privilege_denial_where_the_user_could_change_it(tmp_path):
    """A write to a kernel tunable fails with EROFS in the sandbox: a
    privilege denial if the user could write it on the host, else nothing;
    never also a write denial without a target (the line is explained)."""
    writable = "/proc/sys/vm/overcommit_ratio"  # root's to change, no one else's
    line = f"sh: 1: cannot create {writable}: Read-only file system"
    expected = [("privilege", writable)] if os.access(writable, os.W_OK) else []
    assert _kinds(find_denials(WW, str(tmp_path), 2, line, "bwrap")) == expected
    line = "sh: 1: cannot create /proc/sys/kernel/no-such-tunable: Read-only file system"
    assert find_denials(WW, str(tmp_path), 2, line, "bwrap") == ()


def test_a_host_device_the_sandbox_does_not_show_is_a_privilege_denial(tmp_path):
    """bwrap's sandbox has a /dev of its own: a device of the host's that the
    user could open is missing there, a denial; a link such as /dev/fd/N, a
    device the host lacks too, or Landlock's sandbox (the host's /dev) is not."""
    for other in ("/dev/fd/7", "/dev/no-such-device"):
        line = f"cat: {other}: No such file or directory"
        assert find_denials(WW, str(tmp_path), 1, line, "bwrap") == (), other
    device = _host_only_device()
    if device is None:
        pytest.skip("this /dev has no device beyond the sandbox's own (a container's)")
    line = f"dd: failed to open '{device}': No such file or directory"
    assert _kinds(find_denials(WW, str(tmp_path), 1, line, "bwrap")) == [("privilege", device)]
    assert find_denials(WW, str(tmp_path), 1, line, "landlock") == ()


def _host_only_device() -> str | None:
    """A device in the host's /dev, readable by its mode, that bwrap's /dev
    does not have, or None."""
    import stat

    for name in sorted(os.listdir("/dev")):
        path = f"/dev/{name}"
        if name in ("null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"):
            continue
        mode = os.lstat(path).st_mode
        if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and os.access(path, os.R_OK):
            return path
    return None


_BWRAP = probe_machine().bwrap
needs_bwrap = pytest.mark.skipif(not _BWRAP.available, reason=f"no usable bwrap: {_BWRAP.detail}")


@needs_bwrap
def test_real_refusals_are_reported(host_dir: Path, tcp_listener):
    ws = host_dir / "ws"
    ws.mkdir()
    outside = host_dir / "outside"
    outside.mkdir()
    host, port = tcp_listener
    python = os.path.realpath(sys.executable)
    cases = {
        f"echo x > {outside}/a": (DenialKind.WRITE, f"{outside}/a"),
        "echo x > .envrc": (DenialKind.WRITE, f"{ws}/.envrc"),
        "unshare --user true": (DenialKind.PRIVILEGE, "unshare"),
        # The sandbox's loopback has no server there; the host's has.
        f"{python} -c \"import socket; socket.create_connection(('{host}', {port}), 2)\"":
            (DenialKind.NETWORK, f"{host}:{port}"),
    }
    for script, expected in cases.items():
        result = corral.run(["sh", "-c", script], cwd=ws, timeout=30)
        assert result.exit_code != 0, script
        assert [(d.kind, d.target) for d in result.denials] == [expected], result.aggregated_output
    fine = corral.run(["sh", "-c", "echo ok > made; ls /nonexistent; exit 0"], cwd=ws)
    assert fine.exit_code == 0 and fine.denials == ()
    shrugged = corral.run(["sh", "-c", f"echo x > {outside}/f; exit 0"], cwd=ws)
    assert shrugged.exit_code == 0
    assert [(d.kind, d.target) for d in shrugged.denials] == [(DenialKind.WRITE, f"{outside}/f")]
    with pytest.raises(corral.SandboxDeniedError, match="add --writable"):
        corral.check(corral.run(["sh", "-c", f"echo x > {outside}/g"], cwd=ws))


@needs_bwrap
@pytest.mark.skipif(openable_device() is None, reason="no harmless host device opens for this user")
def test_a_host_device_is_reported_missing_from_the_sandbox(host_dir: Path):
    device = openable_device()
    script = f"dd if={device} of=/dev/null count=0"
    result = corral.run(["sh", "-c", script], cwd=host_dir)
    assert result.exit_code != 0
    assert [(d.kind, d.target) for d in result.denials] == [(DenialKind.PRIVILEGE, device)]
    control = corral.run(["sh", "-c", script], cwd=host_dir, policy="full-access")
    assert control.exit_code == 0 and control.denials == (), control.aggregated_output
