"""workspace-write on the Landlock rung: where bubblewrap cannot run.

Landlock cannot make a path inside a writable root read-only, so the policy
is refused until the caller accepts ``unprotected-paths`` (with the other
weaker guarantees) by name; the roots themselves are still enforced.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import corral
import corral.sandbox.bwrap
from conftest import greet_every_client
from corral.sandbox.landlock import LandlockBackend, landlock_abi

ABI, WHY = landlock_abi()
pytestmark = [pytest.mark.skipif(ABI < LandlockBackend.MINIMUM_ABI,
                                 reason=f"Landlock ABI {ABI} here ({WHY or 'too old'})"),
              pytest.mark.usefixtures("landlock_at")]
ACCEPTED = ("shared-tmp", "visible-processes", "no-deny-read", "unprotected-paths",
            "changeable-attributes")


@pytest.fixture(autouse=True)
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corral.sandbox.bwrap, "bwrap_backend", lambda: None)


@pytest.fixture
def workspace(host_dir: Path) -> Path:
    (host_dir / "ws").mkdir()
    (host_dir / "outside").mkdir()
    (host_dir / "outside" / "file").write_text("original\n")
    return host_dir / "ws"


def test_refused_until_unprotected_paths_is_accepted(workspace):
    with pytest.raises(corral.PolicyError, match="unprotected-paths"):
        corral.run(["true"], cwd=workspace, policy=corral.SandboxPolicy.workspace_write(
            accept_weaker=ACCEPTED[:3]))


def test_writes_only_beneath_the_roots(workspace):
    outside = workspace.parent / "outside"
    policy = corral.SandboxPolicy.workspace_write(accept_weaker=ACCEPTED)
    script = (f"echo started; set -e; echo in > made; mkdir d; mv made d/; cat d/made; "
              f"echo evil >> {outside}/file")
    result = corral.run(["sh", "-c", script], cwd=workspace, policy=policy)
    assert result.sandbox == "landlock" and result.stdout == "started\nin\n"
    assert result.exit_code != 0 and (outside / "file").read_text() == "original\n"
    for attack in [f"echo evil > {outside}/new", f"mv d/made {outside}/",
                   f"ln -sf {outside}/file link && echo evil >> link", "echo evil > ../sibling"]:
        attempt = corral.run(["sh", "-c", attack], cwd=workspace, policy=policy)
        assert attempt.exit_code != 0, attack
        control = corral.run(["sh", "-c", attack], cwd=workspace, policy="full-access")
        assert control.exit_code == 0, attack
        (outside / "file").write_text("original\n")
        for leftover in ("new", "made"):
            (outside / leftover).unlink(missing_ok=True)
        (workspace / "link").unlink(missing_ok=True)
        (workspace.parent / "sibling").unlink(missing_ok=True)
    extra = corral.SandboxPolicy.workspace_write(writable=(str(outside),), accept_weaker=ACCEPTED)
    assert corral.run(["sh", "-c", f"echo ok > {outside}/new"], cwd=workspace,
                      policy=extra).exit_code == 0


TRUNCATE = """
import os, sys
for path in sys.argv[1:]:
    try:
        os.truncate(path, 2)
        print(path, "truncated")
    except OSError as e:
        print(path, "refused", e.errno)
"""


def test_a_truncate_outside_the_roots_is_refused_and_reported(workspace, landlock_at):
    """truncate(2) of a path: Landlock refuses one outside the roots from
    ABI 3 (TRUNCATE); below it corral's gate makes the call, beneath the
    roots only, with the command's own rights (root-owned files included,
    as root without capabilities), and refuses the rest the same way."""
    outside = workspace.parent / "outside" / "file"
    (workspace / "own").write_text("original\n")
    link = workspace / "link"
    link.symlink_to(outside)  # in a root, naming a file outside: what it names decides
    protected = workspace / "protected"
    protected.write_text("original\n")
    protected.chmod(0o444)
    argv = [sys.executable, "-c", TRUNCATE, str(outside), "own", str(link), str(protected),
            "missing"]
    policy = corral.SandboxPolicy.workspace_write(accept_weaker=ACCEPTED)
    result = corral.run(argv, cwd=workspace, policy=policy)
    assert result.stdout.splitlines() == [
        f"{outside} refused 13", "own truncated", f"{link} refused 13",
        f"{protected} refused 13", "missing refused 2"], result.aggregated_output
    assert outside.read_text() == "original\n" and (workspace / "own").read_text() == "or"
    assert protected.read_text() == "original\n"
    assert [(d.kind.value, d.target) for d in result.denials] == [("write", str(outside))]
    control = corral.run(argv[:4], cwd=workspace, policy="full-access")
    assert control.stdout.splitlines()[0] == f"{outside} truncated"
    assert outside.read_text() == "or"


def test_the_accepted_weakness_is_real(workspace):
    """What was accepted is what happens: a protected path can be created."""
    policy = corral.SandboxPolicy.workspace_write(accept_weaker=ACCEPTED)
    result = corral.run(["sh", "-c", "echo x > .envrc"], cwd=workspace, policy=policy)
    assert result.exit_code == 0 and (workspace / ".envrc").exists()


def test_attributes_outside_the_roots_are_changeable_as_accepted(workspace):
    """Landlock has no right for a file's mode, owner, times or extended
    attributes: the run is refused until that is accepted by name, and then
    a change outside the roots happens, and is not reported as refused."""
    outside = workspace.parent / "outside" / "file"
    script = f"chmod 600 {outside} && touch -d @0 {outside}"
    with pytest.raises(corral.PolicyError, match="changeable-attributes"):
        corral.run(["sh", "-c", script], cwd=workspace, policy=corral.SandboxPolicy.workspace_write(
            accept_weaker=tuple(n for n in ACCEPTED if n != "changeable-attributes")))
    assert outside.stat().st_mode & 0o777 != 0o600
    policy = corral.SandboxPolicy.workspace_write(accept_weaker=ACCEPTED)
    result = corral.run(["sh", "-c", script], cwd=workspace, policy=policy)
    assert result.exit_code == 0
    # touch's open for writing was refused (reported); its utimensat was not.
    assert [d.evidence.split("(")[0] for d in result.denials] == ["openat"]
    assert outside.stat().st_mode & 0o777 == 0o600 and outside.stat().st_mtime == 0


def test_unix_sockets_reach_their_own_and_the_allowed_ones(workspace):
    import socket

    outside = workspace.parent / "outside"
    servers = []
    for name in ("allowed.sock", "other.sock"):
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(outside / name))
        server.listen(8)
        servers.append(server)
        greet_every_client(server, name.encode())
    code = ("import os, socket, sys, threading\n"
            "def ask(path):\n"
            "    c = socket.socket(socket.AF_UNIX)\n"
            "    try:\n        c.connect(path); return c.recv(20).decode()\n"
            "    except OSError as e:\n        return f'refused {e.errno}'\n"
            "own = os.path.join(os.environ['TMPDIR'], f'own-{os.getpid()}.sock')\n"
            "s = socket.socket(socket.AF_UNIX); s.bind(own); s.listen()\n"
            "threading.Thread(target=lambda: s.accept()[0].sendall(b'own'), daemon=True).start()\n"
            "print(ask(own), ask(sys.argv[1]), ask(sys.argv[2]))\n")
    policy = corral.SandboxPolicy.workspace_write(
        accept_weaker=ACCEPTED, allow_unix_sockets=(str(outside / "allowed.sock"),))
    try:
        result = corral.run([sys.executable, "-c", code, str(outside / "allowed.sock"),
                             str(outside / "other.sock")], cwd=workspace, policy=policy, timeout=30)
        assert result.sandbox == "landlock"
        assert result.stdout == "own allowed.sock refused 13\n", result.aggregated_output
        assert [d.target for d in result.denials] == [str(outside / "other.sock")]
    finally:
        for server in servers:
            server.close()


# The run's own server in its workspace, beside a host service's socket
# there; then the host's socket given the own one's name (the own socket's
# file unlinked, a hard link to the host's in its place), and renamed.
OWN_IN_THE_WORKSPACE = """
import os, socket, threading
def ask(path):
    c = socket.socket(socket.AF_UNIX)
    try:
        c.connect(path); return c.recv(20).decode()
    except OSError as e:
        return f"refused {e.errno}"
s = socket.socket(socket.AF_UNIX); s.bind("own.sock"); s.listen()
def serve():
    while True:
        s.accept()[0].sendall(b"own")
threading.Thread(target=serve, daemon=True).start()
print(ask("own.sock"), ask(os.path.abspath("own.sock")), ask("host.sock"))
os.unlink("own.sock"); os.link("host.sock", "own.sock"); os.rename("host.sock", "moved.sock")
print(ask("own.sock"), ask("moved.sock"))
"""


def test_a_server_the_run_starts_in_its_workspace_is_its_own(workspace):
    """Without a network namespace of its own, a Unix socket is the run's
    by the cookie of the socket the run bound there; a host service's
    socket in the same workspace is not, whatever name it is given."""
    import socket

    host = socket.socket(socket.AF_UNIX)
    host.bind(str(workspace / "host.sock"))
    host.listen(8)
    greet_every_client(host, b"host")
    policy = corral.SandboxPolicy.workspace_write(accept_weaker=ACCEPTED)
    try:
        result = corral.run([sys.executable, "-c", OWN_IN_THE_WORKSPACE], cwd=workspace,
                            policy=policy, timeout=30)
        assert result.sandbox == "landlock"
        assert result.stdout == "own own refused 13\nrefused 13 refused 13\n", (
            result.aggregated_output)
        assert {d.target for d in result.denials} == {  # relative, as the command gave them
            repr(name) for name in ("host.sock", "own.sock", "moved.sock")}
        for name in ("own.sock", "moved.sock"):
            (workspace / name).unlink()
        host.close()
        host = socket.socket(socket.AF_UNIX)
        host.bind(str(workspace / "host.sock"))
        host.listen(8)
        greet_every_client(host, b"host")
        control = corral.run([sys.executable, "-c", OWN_IN_THE_WORKSPACE], cwd=workspace,
                             policy="full-access", timeout=30)
        assert control.stdout == "own own host\nhost host\n", control.aggregated_output
    finally:
        host.close()
