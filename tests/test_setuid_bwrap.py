"""A setuid bwrap, as hosts that allow users no user namespace install it.

Such a bwrap makes the namespaces with its own privilege, fails at a user
namespace, and grants the sandbox no capability: corral runs it without one,
bwrap makes the binds, and corral's init only loads the seccomp filter (with
its listener, for the gate and the witness).  Each attack is made as nobody,
with a setuid copy of the machine's bwrap named by $CORRAL_BWRAP, and made
again without corral to show that it would have worked.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral.sandbox.bwrap import find_bwrap, trial_sandbox

from conftest import greet_every_client

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]


@pytest.fixture(scope="module")
def setuid_bwrap() -> Iterator[str]:
    if os.geteuid() != 0:
        pytest.skip("making a setuid bwrap and becoming nobody need root")
    found = find_bwrap()
    if found is None:
        pytest.skip("no bwrap here")
    directory = tempfile.mkdtemp(prefix="corral-suid-", dir="/var/tmp")
    try:
        if os.statvfs(directory).f_flag & os.ST_NOSUID:
            pytest.skip(f"{directory} is on a nosuid mount")
        os.chmod(directory, 0o755)
        path = os.path.join(directory, "bwrap")
        shutil.copy(found, path)
        os.chmod(path, 0o4755)
        yield path
    finally:
        shutil.rmtree(directory)


@pytest.fixture
def layout(host_dir: Path) -> Iterator[dict[str, str]]:
    """A repository and a directory beside it, both nobody's; a TCP listener
    and a Unix socket of the host's, both open to nobody."""
    repo, outside = host_dir / "ws", host_dir / "outside"
    repo.mkdir()
    outside.mkdir()
    (host_dir / "home" / ".ssh").mkdir(parents=True)
    (host_dir / "home" / ".ssh" / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    (host_dir / "home" / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    tcp = socket.create_server(("127.0.0.1", 0))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(str(host_dir / "service.sock"))
    unix.listen(8)
    for server in (tcp, unix):
        greet_every_client(server, b"host service")
    subprocess.run(["chown", "-R", "65534:65534", str(host_dir)], check=True)
    os.chmod(host_dir, 0o755)
    try:
        yield {"repo": str(repo), "outside": str(outside), "port": str(tcp.getsockname()[1]),
               "unix": str(host_dir / "service.sock"), "home": str(host_dir / "home")}
    finally:
        tcp.close()
        unix.close()


# Each attack prints what it reached; a refused one prints nothing.
ATTACKS = {
    "write outside": "exec 2>/dev/null; echo x > {outside}/new && echo written",
    "git config": "exec 2>/dev/null; echo x >> .git/config && echo written",
    "host tcp": ("exec 2>/dev/null; {python} -c 'import socket; "
                 "print(socket.create_connection((\"127.0.0.1\", {port})).recv(64).decode())'"),
    "host unix": ("exec 2>/dev/null; {python} -c 'import socket; s = socket.socket(socket.AF_UNIX); "
                  "s.connect(\"{unix}\"); print(s.recv(64).decode())'"),
}

SCRIPT = """
import json, sys, corral
from corral.sandbox.bwrap import bwrap_backend

backend = bwrap_backend()
results = {{"backend": [backend.path, backend.setuid, backend.init is not None,
                         backend.init_mounts]}}
for name, script in json.loads(sys.argv[1]).items():
    result = corral.run(["sh", "-c", script], cwd={repo!r}, timeout=30)
    results[name] = [result.sandbox, result.stdout, result.timed_out,
                     [[d.kind.value, d.target] for d in result.denials]]
own = corral.run(["{python}", "-c", '''
import os, socket, threading
server = socket.socket(socket.AF_UNIX)
server.bind("own.sock")
server.listen(1)
threading.Thread(target=lambda: server.accept()[0].sendall(b"own service"), daemon=True).start()
client = socket.socket(socket.AF_UNIX)
client.connect("own.sock")
print(client.recv(64).decode())
os.unlink("own.sock")
'''], cwd={repo!r}, timeout=30)
results["own unix"] = [own.sandbox, own.stdout, own.timed_out, []]
ssh = corral.run(["sh", "-c", "cat ~/.ssh/known_hosts; cat ~/.ssh/id_ed25519"], cwd={repo!r})
results["ssh"] = [ssh.sandbox, ssh.stdout, ssh.timed_out, []]
print(json.dumps(results))
"""


def as_nobody(argv: list[str], bwrap: str, cwd: str = "/",
              home: str = "/nonexistent") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NOBODY, *argv], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": home, "XDG_RUNTIME_DIR": "",
                               "CORRAL_BWRAP": bwrap})


def test_a_setuid_bwrap_confines_a_user_and_reports_what_it_refuses(setuid_bwrap, layout):
    python = shutil.which("python3", path="/usr/bin:/bin")  # nobody's, unlike a root's pyenv
    if python is None:
        pytest.skip("no python3 in /usr/bin for the attacks")
    attacks = {name: script.format(python=python, **layout) for name, script in ATTACKS.items()}
    script = SCRIPT.format(python=python, **layout)
    started = time.monotonic()
    proc = as_nobody([sys.executable, "-c", script, json.dumps(attacks)], setuid_bwrap,
                     home=layout["home"])
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip("this interpreter is not usable by nobody")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started < 60
    results = json.loads(proc.stdout)
    # The setuid bwrap, with the init loading the filter, bwrap making the binds.
    assert results.pop("backend") == [setuid_bwrap, True, True, False]
    repo, outside = layout["repo"], layout["outside"]
    assert results.pop("own unix")[:3] == ["bwrap", "own service\n", False]
    # The secrets are hidden, known_hosts not.
    assert results.pop("ssh")[:3] == ["bwrap", "github.com ssh-ed25519 AAAA\n", False]
    for name, (sandbox, stdout, timed_out, _) in results.items():
        assert (sandbox, stdout, timed_out) == ("bwrap", "", False), name
    # Every refusal was silent: the witness and the gate report them.
    assert results["write outside"][3] == [["write", f"{outside}/new"]]
    assert results["git config"][3] == [["write", f"{repo}/.git/config"]]
    assert results["host tcp"][3] == [["network", f"127.0.0.1:{layout['port']}"]]
    assert results["host unix"][3] == [["unix-socket", layout["unix"]]]
    assert not os.path.exists(f"{outside}/new")
    assert "x" not in Path(f"{repo}/.git/config").read_text()
    # Nothing of the runs is left: the setuid bwrap is not the user's to kill.
    left = subprocess.run(["pgrep", "-f", setuid_bwrap], capture_output=True, text=True)
    assert left.stdout == ""
    # The controls: as nobody, without corral, every attack works.
    for name, script in attacks.items():
        control = as_nobody(["sh", "-c", script], "/nonexistent", cwd=repo)
        assert control.stdout.strip() in ("written", "host service"), (name, control)


def test_a_trial_ends_with_bwrap_not_with_what_it_leaves_behind(tmp_path):
    """A bwrap failing at its setup may leave a child holding its stderr (a
    setuid bwrap 0.8 does, at a user namespace): the trial, made before the
    first run, once waited for that stderr to end, and so did every run."""
    leftover = tmp_path / "leftover"
    fake = tmp_path / "bwrap"
    fake.write_text(f"#!/bin/sh\nsleep 60 & echo $! > {leftover}\n"
                    "echo 'bwrap: setting up uid map: Invalid argument' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    started = time.monotonic()
    try:
        assert trial_sandbox(str(fake)) == "bwrap: setting up uid map: Invalid argument"
        assert time.monotonic() - started < 5
    finally:
        os.kill(int(leftover.read_text()), 9)
