"""The read-only policy under bubblewrap, attacked for real.

Each attack runs sandboxed, where it must fail and leave the host untouched,
and under full-access (the control), where it must succeed, so each test
shows the sandbox is what stops it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

import corral
from conftest import (CAP_NET_RAW, CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN, caller_holds,
                      host_queue, sysv_ids)
from corral.sandbox.probe import probe_machine

# The interpreter itself, not a virtualenv's link to it: attacks use the stdlib only.
PYTHON = os.path.realpath(__import__("sys").executable)
# The test environment's interpreter, which can import corral.
PYTHON_VENV = __import__("sys").executable

_BWRAP = probe_machine().bwrap
pytestmark = pytest.mark.skipif(not _BWRAP.available, reason=f"no usable bwrap: {_BWRAP.detail}")

READ_ONLY = corral.SandboxPolicy.read_only()


def both(argv: list[str], **kwargs: object) -> tuple[corral.ExecResult, corral.ExecResult]:
    """(sandboxed, control) runs of the same command."""
    sandboxed = corral.run(argv, policy=READ_ONLY, timeout=30, **kwargs)  # type: ignore[arg-type]
    control = corral.run(argv, policy="full-access", timeout=30, **kwargs)  # type: ignore[arg-type]
    return sandboxed, control


@pytest.mark.parametrize("attack", [
    'echo evil > "$D/new"', 'echo evil >> "$D/file"', ': > "$D/file"', 'rm "$D/file"',
    'mkdir "$D/dir"', 'ln -s /etc/passwd "$D/link"', 'mv "$D/file" "$D/moved"',
    'echo evil >> "/proc/self/root$D/file"',
])
def test_no_write_reaches_the_host(host_dir, attack):
    (host_dir / "file").write_text("original\n")
    script = f'echo started; D={host_dir}; {attack}'
    sandboxed = corral.run(["sh", "-c", script], policy=READ_ONLY)
    assert sandboxed.stdout.startswith("started")
    assert sandboxed.exit_code != 0 and sandboxed.sandbox == "bwrap"
    assert sorted(p.name for p in host_dir.iterdir()) == ["file"]
    assert (host_dir / "file").read_text() == "original\n"
    control = corral.run(["sh", "-c", script], policy="full-access")
    assert control.exit_code == 0, control.aggregated_output


def test_private_tmp_works_and_stays_private():
    name = f"/tmp/corral-private-{os.getpid()}"
    result = corral.run(["sh", "-c", f'echo x > {name} && cat {name} && echo y > "$TMPDIR/z"'],
                        policy=READ_ONLY)
    assert result.exit_code == 0 and result.stdout == "x\n"
    assert not os.path.exists(name)


def test_host_shared_memory_and_tmp_are_not_reachable():
    marker = f"corral-shm-{os.getpid()}"
    Path("/dev/shm", marker).write_text("host\n")
    try:
        sandboxed = corral.run(["sh", "-c", f"cat /dev/shm/{marker}; echo x > /dev/shm/{marker}"],
                               policy=READ_ONLY)
        assert "host" not in sandboxed.stdout
        assert Path("/dev/shm", marker).read_text() == "host\n"
    finally:
        os.unlink(f"/dev/shm/{marker}")


def test_host_loopback_tcp_is_unreachable(tcp_listener):
    host, port = tcp_listener
    code = ("import socket; print('started', flush=True); "
            f"print(socket.create_connection(({host!r}, {port}), 2).recv(100))")
    sandboxed, control = both([PYTHON, "-c", code])
    assert sandboxed.stdout.startswith("started")  # it ran, and then failed to connect
    assert sandboxed.exit_code != 0 and "hello" not in sandboxed.stdout
    assert [(d.kind, d.target) for d in sandboxed.denials] == [
        (corral.DenialKind.NETWORK, f"{host}:{port}")]
    assert control.exit_code == 0 and "hello from the host" in control.stdout


@pytest.mark.parametrize("call", ["sendto", "sendmsg"])
def test_host_udp_is_unreachable(call):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2)
    port = receiver.getsockname()[1]
    send = "sendto(b'ping', " if call == "sendto" else "sendmsg([b'ping'], [], 0, "
    code = ("import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
            f".{send}('127.0.0.1', {port})); print('sent')")
    try:
        sent = corral.run([PYTHON, "-c", code], policy=READ_ONLY)
        assert sent.stdout == "sent\n"  # delivered to the sandbox's own loopback
        # ...where nothing of the run's is at that port, while the host serves it.
        assert [(d.kind, d.target, d.evidence) for d in sent.denials] == [
            (corral.DenialKind.NETWORK, f"127.0.0.1:{port}", f"{call}() refused")]
        with pytest.raises(socket.timeout):
            receiver.recvfrom(10)
        corral.run([PYTHON, "-c", code], policy="full-access")
        assert receiver.recvfrom(10)[0] == b"ping"
    finally:
        receiver.close()


def test_a_datagram_the_host_would_not_receive_either_is_no_denial():
    """The host serves the port on 127.0.0.1 only: a datagram to ::1 or to
    127.0.0.2 would not reach it without a sandbox either."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    port = receiver.getsockname()[1]
    code = ("import socket; "
            f"socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendmsg([b'x'], [], 0, ('::1', {port})); "
            f"socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', ('127.0.0.2', {port})); "
            "print('sent')")
    try:
        sent = corral.run([PYTHON, "-c", code], policy=READ_ONLY)
        assert sent.stdout == "sent\n" and sent.denials == ()
    finally:
        receiver.close()


def test_loopback_server_inside_the_run_works():
    code = textwrap.dedent(
        """
        import socket, threading
        server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=lambda: server.accept()[0].sendall(b"inside"), daemon=True).start()
        print(socket.create_connection(server.getsockname()).recv(10).decode())
        """
    )
    result = corral.run([PYTHON, "-c", code], policy=READ_ONLY)
    assert result.exit_code == 0 and result.stdout == "inside\n", result.aggregated_output


def test_host_unix_socket_is_unreachable(host_dir):
    path = str(host_dir / "service.sock")
    server = socket.socket(socket.AF_UNIX)
    server.bind(path)
    server.listen()
    os.chmod(host_dir, 0o755)
    code = ("import socket; print('started', flush=True); s = socket.socket(socket.AF_UNIX); "
            f"s.connect({path!r}); print('connected')")
    try:
        sandboxed, control = both([PYTHON, "-c", code])
        assert sandboxed.stdout.startswith("started")
        assert sandboxed.exit_code != 0 and "connected" not in sandboxed.stdout
        assert control.exit_code == 0 and control.stdout == "started\nconnected\n"
    finally:
        server.close()


@pytest.mark.parametrize("attack, call, capability", [
    ("mount -t tmpfs none /mnt", "mount", None),
    ("unshare --user --map-root-user true", "unshare", None), ("chroot / true", "chroot", None),
    (f"{PYTHON} -c 'import os; os.setuid(4242)'", "setuid", CAP_SETUID),
    (f"{PYTHON} -c 'import os; os.setresgid(-1, 4242, -1)'", "setresgid", CAP_SETGID),
    (f"{PYTHON} -c 'import os; os.setgroups([])'", "setgroups", CAP_SETGID),
    ("hostname corral-test", "sethostname", CAP_SYS_ADMIN),
])
def test_privileged_operations_fail_and_are_reported(attack, call, capability):
    """Each is refused.  It is reported where the caller could make it
    outside the sandbox: always where a user may, in namespaces of its own
    (mount, unshare, chroot); the others only where the caller holds the
    capability they take, as root does (a user's setuid fails anyway)."""
    sandboxed = corral.run(["sh", "-c", f"echo started; {attack}"], policy=READ_ONLY)
    assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
    # (As a user, a set-user-ID mount runs without its privilege: that is
    # reported too, as a privilege denial.)
    found = [(d.kind.value, d.target) for d in sandboxed.denials]
    reported = capability is None or caller_holds(capability)
    assert (("privilege", call) in found) == reported
    assert {kind for kind, _ in found} <= {"privilege"}
    if os.geteuid() == 0 or capability is not None:
        # The control: what the caller may do on the host, each of them as
        # root (mount and hostname in namespaces of their own: the host's
        # stay as they are), none of these as a user.
        own = {"mount": "--mount", "sethostname": "--uts"}.get(call)
        control = corral.run(["unshare", own, "sh", "-c", attack] if own else ["sh", "-c", attack],
                             policy="full-access")
        assert (control.exit_code == 0) == reported, control.aggregated_output


def test_a_command_may_take_the_ids_it_has():
    """Only another user's or group's are refused (dropping privileges to
    the same ids, as daemons and test suites do, works)."""
    code = ("import os; uid, gid = os.getuid(), os.getgid(); os.setresgid(gid, gid, -1); "
            "os.setgid(gid); os.setreuid(-1, uid); os.setuid(uid); print(uid, gid)")
    sandboxed = corral.run([PYTHON, "-c", code], policy=READ_ONLY)
    assert sandboxed.exit_code == 0 and sandboxed.denials == (), sandboxed.aggregated_output
    assert sandboxed.stdout == f"{os.getuid()} {os.getgid()}\n"


def test_host_processes_are_invisible():
    victim = subprocess.Popen(["sleep", "30"], env={"CORRAL_SECRET_MARK": "visible"})
    try:
        script = (f"kill -0 {victim.pid} && echo signalled; "
                  f"cat /proc/{victim.pid}/environ && echo read")
        sandboxed, control = both(["sh", "-c", script])
        assert "signalled" not in sandboxed.stdout and "visible" not in sandboxed.stdout
        assert "signalled" in control.stdout and "CORRAL_SECRET_MARK=visible" in control.stdout
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_deny_read_hides_a_planted_secret(host_dir):
    secrets = host_dir / "secrets"
    secrets.mkdir()
    (secrets / "token").write_text("s3cr3t\n")
    (host_dir / "key.pem").write_text("private\n")
    policy = corral.SandboxPolicy.read_only(deny_read=(str(secrets), str(host_dir / "key.pem")))
    script = f"cat {secrets}/token; cat {host_dir}/key.pem; ls {secrets}"
    sandboxed = corral.run(["sh", "-c", script], policy=policy)
    assert "s3cr3t" not in sandboxed.aggregated_output
    assert "private" not in sandboxed.aggregated_output
    assert "token" not in sandboxed.stdout
    control = corral.run(["sh", "-c", script], policy="full-access")
    assert "s3cr3t" in control.stdout and "private" in control.stdout


def test_a_secret_hidden_without_a_served_cover_is_reported_as_the_command_names_it(
        host_dir, monkeypatch):
    """Where corral cannot serve its covers (no /dev/fuse the user may open),
    a hidden directory is an empty tmpfs, which keeps ``known_hosts`` only:
    what the command prints is all there is to go on, and "No such file"
    there is a refusal only for a file the host has."""
    from corral.sandbox import bwrap

    found = bwrap.bwrap_backend()
    assert found is not None
    plain = bwrap.BwrapBackend(found.path, found.init, covers=False)
    monkeypatch.setattr(bwrap, "bwrap_backend", lambda: plain)
    (host_dir / ".ssh").mkdir()
    (host_dir / ".ssh" / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    (host_dir / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (host_dir / ".aws").mkdir()
    (host_dir / ".aws" / "credentials").write_text("aws_secret_access_key = x\n")
    (host_dir / "work").mkdir()
    monkeypatch.setenv("HOME", str(host_dir))
    script = "cat ~/.ssh/known_hosts ~/.ssh/id_ed25519 ~/.ssh/config ~/.aws/credentials"
    result = corral.run(["sh", "-c", script], cwd=host_dir / "work")
    assert result.exit_code == 1 and result.stdout == "github.com ssh-ed25519 AAAA\n"
    assert [(d.kind.value, d.target) for d in result.denials] == [
        ("read", f"{host_dir}/.ssh/id_ed25519"), ("read", f"{host_dir}/.aws/credentials")]
    control = corral.run(["sh", "-c", script], cwd=host_dir / "work", policy="full-access")
    assert "PRIVATE KEY" in control.stdout and "aws_secret_access_key" in control.stdout


@pytest.mark.parametrize("kind", ["workspace-write", "read-only"])
def test_a_secret_in_a_working_directory_beneath_tmp_is_hidden_too(tmp_path, kind):
    """The sandbox's /tmp is its own, but a working directory there is
    bound back over it, and what it holds is in sight: deny-read too."""
    (tmp_path / ".ssh").mkdir()
    (tmp_path / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    make = (corral.SandboxPolicy.workspace_write if kind == "workspace-write"
            else corral.SandboxPolicy.read_only)
    policy = make(deny_read=(".ssh",))
    result = corral.run(["cat", ".ssh/id_ed25519"], cwd=tmp_path, policy=policy)
    assert result.exit_code != 0 and "PRIVATE KEY" not in result.aggregated_output
    assert [(d.kind.value, d.target) for d in result.denials] == [
        ("read", f"{tmp_path}/.ssh/id_ed25519")]
    control = corral.run(["cat", ".ssh/id_ed25519"], cwd=tmp_path, policy="full-access")
    assert control.stdout == "PRIVATE KEY\n"


def test_a_working_directory_or_root_inside_a_hidden_path_beneath_tmp_is_refused(tmp_path,
                                                                                   host_dir):
    """Beneath /tmp a hidden directory is out of sight only where nothing in
    it is bound back: a working directory or root inside it would show it."""
    (tmp_path / "proj" / "secret").mkdir(parents=True)
    (tmp_path / "proj" / "secret" / "k").write_text("S1\n")
    hide = corral.SandboxPolicy.read_only(deny_read=(str(tmp_path / "proj"),))
    with pytest.raises(corral.PolicyError, match="the working directory .* is inside"):
        corral.run(["cat", "k"], cwd=tmp_path / "proj" / "secret", policy=hide)
    root = corral.SandboxPolicy.workspace_write(deny_read=(str(tmp_path / "proj"),),
                                                writable=(str(tmp_path / "proj" / "secret"),))
    with pytest.raises(corral.PolicyError, match="writable root .* is inside"):
        corral.run(["cat", str(tmp_path / "proj" / "secret" / "k")], cwd=host_dir, policy=root)
    control = corral.run(["cat", "k"], cwd=tmp_path / "proj" / "secret", policy="full-access")
    assert control.stdout == "S1\n"


def test_deny_read_globs_hide_every_match(host_dir):
    for project in ("alpha", "beta", ".hidden"):
        (host_dir / project).mkdir()
        (host_dir / project / "credentials.json").write_text(f"{project}-s3cr3t\n")
        (host_dir / project / "README").write_text(f"{project} readme\n")
    policy = corral.SandboxPolicy.workspace_write(
        deny_read=(f"{host_dir}/*/credentials.json",))
    script = (f"cat {host_dir}/*/credentials.json {host_dir}/.hidden/credentials.json; "
              f"cat {host_dir}/*/README")
    sandboxed = corral.run(["sh", "-c", script], cwd=host_dir, policy=policy)
    assert "s3cr3t" not in sandboxed.aggregated_output
    assert sandboxed.stdout == "alpha readme\nbeta readme\n"
    assert {d.kind for d in sandboxed.denials} == {corral.DenialKind.READ}
    control = corral.run(["sh", "-c", script], cwd=host_dir, policy="full-access")
    assert control.stdout.count("s3cr3t") == 3
    with pytest.raises(corral.PolicyError, match=r"recursive glob"):
        corral.SandboxPolicy.read_only(deny_read=(f"{host_dir}/**/credentials.json",))


def test_whole_tree_ends_with_the_run():
    # A setsid daemon inside the sandbox, with only killpg to stop it: the
    # PID namespace ends it with the command.
    script = "setsid sh -c 'sleep 30' & echo started"
    result = corral.run(["sh", "-c", script], policy=READ_ONLY, timeout=10, drain_timeout=5,
                        kill_mechanism=corral.KillMechanism.PROCESS_GROUP)
    assert result.exit_code == 0 and result.stdout == "started\n"
    assert result.duration < 3 and not result.drain_timed_out


def test_signal_and_environment_markers():
    result = corral.run(["sh", "-c", 'echo "$CORRAL_SANDBOX $CORRAL_SANDBOX_NETWORK_DISABLED"; kill -TERM $$'],
                        policy=READ_ONLY)
    assert result.stdout == "bwrap 1\n"
    assert result.signal == 15 and result.exit_code == 143


def test_network_can_be_allowed():
    policy = corral.SandboxPolicy.read_only(network=True)
    result = corral.run(["sh", "-c", 'echo "[$CORRAL_SANDBOX_NETWORK_DISABLED]"; cat /proc/net/dev | wc -l'],
                        policy=policy)
    assert result.stdout.startswith("[]\n")
    host_interfaces = Path("/proc/net/dev").read_text().count("\n")
    assert int(result.stdout.split()[-1]) == host_interfaces


def test_argv0_is_kept_and_an_override_needs_a_recent_bwrap():
    assert corral.run(["sh", "-c", "echo $0"], policy=READ_ONLY).stdout == "sh\n"
    from corral.sandbox.bwrap import bwrap_backend

    backend = bwrap_backend()
    assert backend is not None
    if backend.version() >= (0, 9) or backend.init is not None:  # the init sets argv[0]
        result = corral.run(["sh", "-c", "echo $0"], arg0="custom", policy=READ_ONLY)
        assert result.stdout == "custom\n"
    else:
        with pytest.raises(corral.PolicyError, match="0.9"):
            corral.run(["sh", "-c", "echo $0"], arg0="custom", policy=READ_ONLY)


def test_missing_bwrap_is_refused_not_ignored(monkeypatch, tmp_path):
    import corral.sandbox.bwrap as bwrap

    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap anywhere
    monkeypatch.setattr(bwrap, "_wheel_bwrap", lambda: None)
    with pytest.raises(corral.PolicyError, match="no bwrap is in a system directory on PATH or "
                                                 "installed by"):
        corral.run(["/bin/true"], policy=READ_ONLY)


def _processes_with(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(entry))
            except OSError:
                pass
    return found


def test_nothing_survives_a_sigkilled_corral(tmp_path):
    marker = "31.41592"  # a sleep length nothing else uses
    started = tmp_path / "started"
    host = textwrap.dedent(
        f"""
        import corral
        corral.run(["sh", "-c", "setsid sleep {marker} & sleep {marker}"], policy="read-only",
                   timeout=None, on_output=None)
        """
    )
    proc = subprocess.Popen([PYTHON_VENV, "-c", host])
    try:
        import time

        deadline = time.monotonic() + 10
        while len(_processes_with(marker)) < 2:
            assert time.monotonic() < deadline, "the sandboxed command never started"
            time.sleep(0.02)
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 5
        while _processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _processes_with(marker) == []
    finally:
        proc.kill()
        for pid in _processes_with(marker):
            os.kill(pid, 9)
    del started


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_as_an_unprivileged_user(host_dir):
    script = textwrap.dedent(
        f"""
        import json, corral
        write = corral.run(["sh", "-c", "echo x > {host_dir}/f"], policy="read-only")
        tmp = corral.run(["sh", "-c", "echo x > /tmp/f && cat /tmp/f"], policy="read-only")
        print(json.dumps([write.exit_code, tmp.stdout, write.sandbox]))
        """
    )
    os.chmod(host_dir, 0o777)  # writable by nobody, so only the sandbox can stop it
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    proc = subprocess.run([*drop, PYTHON_VENV, "-c", script], cwd="/", capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip("this interpreter is not usable by nobody")
    assert proc.returncode == 0, proc.stderr
    import json

    write_code, tmp_out, sandbox = json.loads(proc.stdout)
    assert write_code != 0 and tmp_out == "x\n" and sandbox == "bwrap"
    assert not (host_dir / "f").exists()
    control = subprocess.run([*drop, "sh", "-c", f"echo x > {host_dir}/f"], cwd="/")
    assert control.returncode == 0 and (host_dir / "f").exists()


def test_a_sandbox_that_cannot_be_built_is_reported_not_run(monkeypatch, tmp_path):
    from corral.sandbox.bwrap import BwrapBackend

    real = BwrapBackend._arguments

    def broken(self, launch, policy, *rest):  # type: ignore[no-untyped-def]
        args = real(self, launch, policy, *rest)
        return ["--ro-bind", str(tmp_path / "missing"), "/nowhere", *args]

    monkeypatch.setattr(BwrapBackend, "_arguments", broken)
    with pytest.raises(corral.SandboxSetupError, match="could not be set up.*missing"):
        corral.run(["sh", "-c", "echo ran > /dev/null"], policy=READ_ONLY)
    monkeypatch.undo()
    # A command that fails on its own is not mistaken for a setup failure.
    failed = corral.run(["sh", "-c", "echo 'bwrap: not really' >&2; exit 1"], policy=READ_ONLY)
    assert failed.exit_code == 1


def test_cli_exits_125_when_the_sandbox_cannot_be_built(tmp_path):
    # A bwrap that cannot create namespaces, and no accepted weaker guarantees:
    # refused before anything runs.
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    proc = subprocess.run([PYTHON_VENV, "-m", "corral", "run", "--policy", "read-only", "--",
                           "/bin/true"], env={"PATH": "/usr/bin:/bin", "CORRAL_BWRAP": str(fake)},
                          capture_output=True, text=True, timeout=60, cwd="/")
    assert proc.returncode == 125, proc.stderr
    assert "cannot build a sandbox here" in proc.stderr and "No permissions" in proc.stderr


def test_a_workspace_under_tmp_is_visible_read_only(tmp_path):
    # /tmp is private inside the sandbox; a project that lives there must still be there.
    (tmp_path / "README").write_text("project\n")
    result = corral.run(["sh", "-c", "cat README; pwd; echo x > new"], cwd=tmp_path,
                        policy=READ_ONLY)
    assert result.stdout == f"project\n{tmp_path}\n"
    assert result.exit_code != 0 and not (tmp_path / "new").exists()


def test_missing_cwd_is_named(tmp_path):
    with pytest.raises(corral.CwdNotFoundError, match="does not exist"):
        corral.run(["true"], cwd=tmp_path / "missing", policy=READ_ONLY)


def test_default_secret_stores_are_hidden_but_known_hosts_stays(host_dir, monkeypatch):
    ssh = host_dir / ".ssh"
    ssh.mkdir()
    (ssh / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    (ssh / "id_ed25519").write_text("PRIVATE KEY\n")
    (host_dir / ".netrc").write_text("machine x password hunter2\n")
    monkeypatch.setenv("HOME", str(host_dir))
    script = "cat ~/.ssh/known_hosts; cat ~/.ssh/id_ed25519; cat ~/.netrc; ls ~/.ssh"
    sandboxed = corral.run(["sh", "-c", script], policy="read-only")
    assert sandboxed.stdout == "github.com ssh-ed25519 AAAA\n"
    assert "PRIVATE" not in sandboxed.aggregated_output
    assert "hunter2" not in sandboxed.aggregated_output
    control = corral.run(["sh", "-c", script], policy="full-access")
    assert "PRIVATE KEY" in control.stdout and "hunter2" in control.stdout


def test_host_ipv6_loopback_is_unreachable():
    try:
        server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    except OSError:
        pytest.skip("no IPv6 loopback on this host")
    threading = __import__("threading")
    threading.Thread(target=lambda: server.accept()[0].sendall(b"v6 host\n"), daemon=True).start()
    port = server.getsockname()[1]
    code = ("import socket; print('started', flush=True); "
            f"print(socket.create_connection(('::1', {port}), 2).recv(20).decode())")
    try:
        sandboxed, control = both([PYTHON, "-c", code])
        assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
        assert control.exit_code == 0 and "v6 host" in control.stdout
    finally:
        server.close()


def test_dns_resolution_fails():
    code = ("import socket; print('started', flush=True); "
            "print(socket.getaddrinfo('pypi.org', 443)[0][4][0])")
    control = corral.run([PYTHON, "-c", code], policy="full-access", timeout=30)
    if control.exit_code != 0:
        pytest.skip("this host cannot resolve names either")
    sandboxed = corral.run([PYTHON, "-c", code], policy=READ_ONLY, timeout=30)
    assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
    assert [d.kind for d in sandboxed.denials] == [corral.DenialKind.NETWORK]


PRIVILEGED_SOCKETS = {  # what creates one, and the denial's target
    "raw ICMP": ("socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)",
                 "AF_INET SOCK_RAW"),
    "packet": ("socket.socket(socket.AF_PACKET, socket.SOCK_RAW)", "AF_PACKET SOCK_RAW"),
}


@pytest.mark.parametrize("create, target", PRIVILEGED_SOCKETS.values(),
                         ids=PRIVILEGED_SOCKETS.keys())
def test_raw_and_packet_sockets_are_refused(create, target):
    """With network as well: no sandboxed process holds CAP_NET_RAW.  Reported
    where the caller holds it (root): a user is refused one on the host too."""
    code = f"import socket; print('started', flush=True); {create}; print('opened')"
    holds = caller_holds(CAP_NET_RAW)
    for policy in (READ_ONLY, corral.SandboxPolicy.read_only(network=True)):
        sandboxed = corral.run([PYTHON, "-c", code], policy=policy)
        assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
        assert [d.target for d in sandboxed.denials] == ([target] if holds else [])
    control = corral.run([PYTHON, "-c", code], policy="full-access")
    assert (control.stdout == "started\nopened\n") == holds, control.aggregated_output


def test_ipc_objects_are_the_runs_own():
    """bubblewrap gives the run an IPC namespace of its own: its System V
    IPC works, reaches none of the host's objects, and ends with it."""
    queue = host_queue()
    segments = sysv_ids("shm")
    try:
        removed = corral.run(["ipcrm", "-q", queue], policy=READ_ONLY)
        assert removed.exit_code != 0 and queue in sysv_ids("msg")
        own = corral.run(["sh", "-c", "ipcmk -M 4096 >/dev/null && ipcs -m | grep -c 4096"],
                         policy=READ_ONLY)
        assert own.stdout == "1\n" and own.denials == (), own.aggregated_output
        assert sysv_ids("shm") == segments  # nothing left behind
        control = corral.run(["ipcrm", "-q", queue], policy="full-access")
        assert control.exit_code == 0 and queue not in sysv_ids("msg")
    finally:
        subprocess.run(["ipcrm", "-q", queue], capture_output=True)


def test_a_host_process_cannot_be_traced():
    victim = subprocess.Popen(["sleep", "30"])
    code = ("import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
            f"print('started', flush=True); r = libc.ptrace(16, {victim.pid}, 0, 0); "
            "print('attached' if r == 0 else f'refused {ctypes.get_errno()}')")
    try:
        sandboxed = corral.run([PYTHON, "-c", code], policy=READ_ONLY)
        assert sandboxed.stdout.startswith("started\nrefused")
        if os.geteuid() == 0:
            control = corral.run([PYTHON, "-c", code], policy="full-access")
            assert control.stdout == "started\nattached\n", control.aggregated_output
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root could write a global sysctl anyway")
def test_kernel_tunables_stay_read_only_even_for_root():
    # Writes the current value back, so the control changes nothing on the host.
    tunable = "/proc/sys/vm/overcommit_ratio"
    script = f"echo started; cat {tunable} > /tmp/v && cat /tmp/v > {tunable} && echo written"
    sandboxed = corral.run(["sh", "-c", script], policy=READ_ONLY)
    assert sandboxed.stdout == "started\n" and sandboxed.exit_code != 0
    control = corral.run(["sh", "-c", script.replace("/tmp/v", "/dev/shm/corral-sysctl")],
                         policy="full-access")
    os.unlink("/dev/shm/corral-sysctl")
    assert control.stdout == "started\nwritten\n", control.aggregated_output
