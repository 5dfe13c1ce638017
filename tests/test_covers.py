"""Deny-read covers served by corral: a refused read is reported with its path.

Each read is made silently (its error to /dev/null), so only the cover
itself can tell.  The controls run the same reads under mode-000 covers
(what corral does where it cannot serve them): nothing to read from, and so
no denial; and without the sandbox, where the secrets are there to read.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import corral
import corral.sandbox.bwrap as bwrap
from corral.sandbox.covers import cover_absence

_FOUND = bwrap.bwrap_backend()
pytestmark = pytest.mark.skipif(
    _FOUND is None or not _FOUND.covers,
    reason=f"deny-read covers are not served here: "
           f"{cover_absence() or (_FOUND and bwrap.covers_absence(_FOUND.path))}")
PYTHON = os.path.realpath(sys.executable)


@pytest.fixture
def home(host_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with secrets where the default deny-read list looks."""
    ssh = host_dir / ".ssh"
    ssh.mkdir()
    (ssh / "known_hosts").write_text("github.com ssh-ed25519 AAAA\n")
    (ssh / "id_ed25519").write_text("PRIVATE KEY\n")
    (host_dir / ".aws").mkdir()
    (host_dir / ".aws" / "credentials").write_text("aws_secret_access_key = x\n")
    (host_dir / ".netrc").write_text("machine x password hunter2\n")
    (host_dir / "work").mkdir()
    monkeypatch.setenv("HOME", str(host_dir))
    return host_dir


SILENT_READS = ("exec 2>/dev/null; cat ~/.ssh/known_hosts; cat ~/.ssh/id_ed25519; "
                "ls ~/.aws; test -r ~/.aws/credentials; cat ~/.netrc; exit 3")


def test_a_silent_read_of_a_hidden_secret_is_reported(home):
    result = corral.run(["sh", "-c", SILENT_READS], cwd=home / "work")
    assert result.exit_code == 3 and result.sandbox == "bwrap"
    assert result.stdout == "github.com ssh-ed25519 AAAA\n"  # known_hosts stays readable
    assert [(d.kind.value, d.target) for d in result.denials] == [
        ("read", f"{home}/.ssh/id_ed25519"), ("read", f"{home}/.aws"),
        ("read", f"{home}/.aws/credentials"), ("read", f"{home}/.netrc")]
    assert all("deny-read" in d.remedy for d in result.denials)
    control = corral.run(["sh", "-c", SILENT_READS], cwd=home / "work", policy="full-access")
    assert "PRIVATE KEY" in control.stdout and "hunter2" in control.stdout


def test_mode_000_covers_hide_the_same_and_report_nothing(home, monkeypatch):
    """What the covers add: the same reads under mode-000 covers."""
    assert _FOUND is not None
    plain = bwrap.BwrapBackend(_FOUND.path, _FOUND.init, covers=False)
    monkeypatch.setattr(bwrap, "bwrap_backend", lambda: plain)
    result = corral.run(["sh", "-c", SILENT_READS], cwd=home / "work")
    assert result.exit_code == 3 and result.stdout == "github.com ssh-ed25519 AAAA\n"
    assert result.denials == ()


def test_a_write_beneath_a_cover_is_refused_as_hidden(home):
    """The path cannot even be looked up: the refusal is the cover's."""
    result = corral.run(["sh", "-c", "echo x > ~/.ssh/config 2>/dev/null; exit 3"],
                        cwd=home / "work")
    assert [(d.kind.value, d.target) for d in result.denials] == [
        ("read", f"{home}/.ssh/config")]
    assert "deny-read" in result.denials[0].remedy
    assert not (home / ".ssh" / "config").exists()


def test_corrals_own_look_is_not_a_read(home):
    """The gate makes a Unix connect itself, looking the path up in the
    sandbox: the command looks up nothing, so no read is reported (the
    server tells corral's requests apart: they come from outside the
    sandbox's PID namespace)."""
    code = ("import os, socket; "
            "print(socket.socket(socket.AF_UNIX).connect_ex(os.path.expanduser("
            "'~/.ssh/agent.sock')))")
    result = corral.run([PYTHON, "-c", code], cwd=home / "work")
    assert result.stdout == "13\n"  # EACCES
    assert [(d.kind.value, d.target) for d in result.denials] == [
        ("unix-socket", f"{home}/.ssh/agent.sock")]


def test_a_working_directory_inside_a_hidden_path_is_refused(home):
    with pytest.raises(corral.PolicyError, match="deny-read"):
        corral.run(["cat", "id_ed25519"], cwd=home / ".ssh")


FLOOD = """
import os, socket, sys, threading
home = os.environ["HOME"]
def look():
    for i in range(100000):
        try:
            os.stat(f"{home}/.ssh/k{i}")
        except OSError:
            pass
        try:
            open(f"{home}/.ssh/w{i}", "w")
        except OSError:
            pass
        try:
            socket.socket(socket.AF_UNIX).connect(f"{home}/.ssh/agent{i}.sock")
        except OSError:
            pass
for _ in range(8):
    threading.Thread(target=look, daemon=True).start()
print("flooding", flush=True)
threading.Event().wait()
"""


def test_a_flood_of_lookups_stops_neither_the_clock_nor_corral(home):
    """Lookups, writes (which the witness resolves) and connects (which the
    gate resolves) beneath a cover, from eight threads: the run still ends
    at its timeout."""
    started = time.monotonic()
    result = corral.run([PYTHON, "-c", FLOOD], cwd=home / "work", timeout=3)
    assert result.timed_out and result.stdout == "flooding\n"
    assert time.monotonic() - started < 10
    assert "read" in {d.kind.value for d in result.denials}


def test_a_killed_corral_ends_even_while_it_looks_into_a_cover(home):
    """corral's own threads look into covers; killed meanwhile, it must
    still end (a FUSE server among its threads would leave it waiting for
    ever on a request only that server could answer), and its cover server
    with it."""
    script = ("import corral, sys; "
              f"corral.run([{PYTHON!r}, '-c', sys.argv[1]], cwd={str(home / 'work')!r})")
    corral_process = subprocess.Popen([sys.executable, "-c", script, FLOOD],
                                      stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(2)  # the flood under way
        servers = _cover_servers(parent=corral_process.pid)
        assert servers, "no cover server started"
        corral_process.send_signal(signal.SIGKILL)
        corral_process.wait(timeout=10)
    finally:
        if corral_process.poll() is None:
            corral_process.kill()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(servers) & set(_cover_servers()):
        time.sleep(0.1)
    assert not set(servers) & set(_cover_servers()), "its cover server outlived it"


def _cover_servers(parent: int | None = None) -> list[int]:
    """The running cover servers (of ``parent`` only, if given)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if (command.startswith(b"_cover_server") and fields[0] != "Z"
                and (parent is None or int(fields[1]) == parent)):
            found.append(int(entry))
    return found


def test_the_cover_trial_does_not_look_into_its_own_cover(monkeypatch, tmp_path):
    """The trial covers /tmp with a filesystem nobody serves: made from a
    working directory there, it once waited for an answer until its timeout."""
    assert _FOUND is not None and _FOUND.init is not None
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    assert bwrap.trial_sandbox(_FOUND.path, _FOUND.init, covers=True) is None
    assert time.monotonic() - started < 5


def test_a_cover_server_that_died_is_started_again(home):
    from corral.sandbox.covers import cover_server

    first = corral.run(["sh", "-c", "cat ~/.netrc 2>/dev/null; exit 3"], cwd=home / "work")
    assert [d.target for d in first.denials] == [f"{home}/.netrc"]
    for pid in _cover_servers(parent=os.getpid()):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    server = cover_server()
    while server is not None and not server.gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    again = corral.run(["sh", "-c", "cat ~/.netrc 2>/dev/null; exit 3"], cwd=home / "work")
    assert [d.target for d in again.denials] == [f"{home}/.netrc"]
    assert _cover_servers(parent=os.getpid())


def test_a_large_kept_file_reads_whole_even_mapped(home):
    """The kernel's reads of a kept file are no larger than the server
    answers (max_read): a mapped page past 64 KiB once raised SIGBUS."""
    content = "".join(f"host{i} ssh-ed25519 AAAA\n" for i in range(5000)).encode()
    (home / ".ssh" / "known_hosts").write_bytes(content)
    code = ("import mmap, os, sys; f = open(os.path.expanduser('~/.ssh/known_hosts'), 'rb'); "
            "m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ); "
            "sys.stdout.write(str(m[len(m) - 10]) + ' ' + str(m[:] == f.read()))")
    result = corral.run([PYTHON, "-c", code], cwd=home / "work")
    assert len(content) > 100000
    assert result.exit_code == 0 and result.stdout == f"{content[-10]} True", result.stderr


def test_the_directory_of_a_kept_file_can_be_entered(home):
    result = corral.run(["sh", "-c", "cd ~/.ssh && cat known_hosts && test -x ."],
                        cwd=home / "work")
    assert result.exit_code == 0 and result.stdout == "github.com ssh-ed25519 AAAA\n"
    assert result.denials == ()


def test_a_hidden_path_beneath_another_is_hidden_with_it(home):
    policy = corral.SandboxPolicy.read_only(deny_read=(f"{home}/.aws", f"{home}/.aws/credentials"))
    result = corral.run(["sh", "-c", "cat ~/.aws/credentials 2>/dev/null; exit 3"],
                        cwd=home / "work", policy=policy, timeout=20)
    assert result.exit_code == 3 and not result.timed_out
    assert [(d.kind.value, d.target) for d in result.denials] == [
        ("read", f"{home}/.aws/credentials")]


def test_more_hidden_paths_than_the_init_covers_are_hidden_all_the_same(home):
    many = home / "many"
    many.mkdir()
    for i in range(70):
        (many / f"f{i}").write_text(f"secret {i}\n")
    policy = corral.SandboxPolicy.read_only(deny_read=(f"{many}/*",))
    result = corral.run(["sh", "-c", f"cat {many}/f0 {many}/f69 2>/dev/null; exit 3"],
                        cwd=home / "work", policy=policy)
    assert result.exit_code == 3 and "secret" not in result.stdout
    assert ("read", f"{many}/f0") in [(d.kind.value, d.target) for d in result.denials]


WITHDRAWN = """
import os, signal, sys, threading, time
hidden, other = sys.argv[1], sys.argv[2]
worst = 0.0
for _ in range(150):
    children = []
    for _ in range(8):
        pid = os.fork()
        if pid == 0:
            while True:
                try:
                    os.stat(hidden + "/x")
                except OSError:
                    pass
        children.append(pid)
    time.sleep(0.005)
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    for pid in children:
        os.waitpid(pid, 0)
    started = time.monotonic()
    try:
        os.stat(other + "/y")
    except OSError:
        pass
    worst = max(worst, time.monotonic() - started)
print(round(worst, 3))
"""


def test_a_lookup_withdrawn_by_a_killed_caller_stalls_no_other_cover(home):
    """A caller killed while its request waits takes the request back; the
    server, woken for it, must not then wait in read() for the next one,
    while every other cover waits for it."""
    hidden, other = home / "hidden", home / "other"
    hidden.mkdir()
    other.mkdir()
    policy = corral.SandboxPolicy.read_only(deny_read=(str(hidden), str(other)))
    result = corral.run([PYTHON, "-c", WITHDRAWN, str(hidden), str(other)], cwd=home / "work",
                        policy=policy, timeout=60)
    assert result.exit_code == 0, result.stderr
    assert float(result.stdout) < 1.0


@pytest.mark.parametrize("served", [True, False], ids=["served", "mode-000"])
@pytest.mark.parametrize("how", ["symlink", "hard link"])
def test_a_kept_file_that_could_be_a_secret_is_hidden_too(home, monkeypatch, served, how):
    """known_hosts stays readable only as a file of its own: a dotfiles link
    into a writable root could be pointed at the private key by a command
    there, and a hard link may be the key itself."""
    assert _FOUND is not None
    backend = bwrap.BwrapBackend(_FOUND.path, _FOUND.init, covers=served)
    monkeypatch.setattr(bwrap, "bwrap_backend", lambda: backend)
    known_hosts = home / ".ssh" / "known_hosts"
    known_hosts.unlink()
    if how == "symlink":
        (home / "work" / "dot").symlink_to(home / ".ssh" / "id_ed25519")
        known_hosts.symlink_to(home / "work" / "dot")
    else:
        os.link(home / ".ssh" / "id_ed25519", known_hosts)
    result = corral.run(["sh", "-c", "cat ~/.ssh/known_hosts"], cwd=home / "work")
    assert result.exit_code != 0 and "PRIVATE" not in result.stdout
    control = corral.run(["sh", "-c", "cat ~/.ssh/known_hosts"], cwd=home / "work",
                         policy="full-access")
    assert "PRIVATE KEY" in control.stdout


def test_a_hidden_path_inside_the_workspace_keeps_its_place(home):
    """Renamed or replaced by one run, it would be the next run's to read."""
    (home / "store").mkdir()
    (home / "store" / "private.key").write_text("gpg secret\n")
    (home / ".gnupg").symlink_to(home / "store")
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text("docker secret\n")
    moved = corral.run(["sh", "-c", "mv ~/.docker ~/.d2; rm ~/.gnupg && mkdir ~/.gnupg"],
                       cwd=home)
    assert moved.exit_code != 0
    assert {(d.kind.value, d.target) for d in moved.denials} >= {
        ("write", f"{home}/.docker"), ("write", f"{home}/.gnupg")}
    assert (home / ".gnupg").is_symlink() and (home / ".docker" / "config.json").exists()
    read = corral.run(["sh", "-c", "cat ~/.d2/config.json ~/.gnupg/private.key"], cwd=home)
    assert "secret" not in read.stdout
    control = corral.run(["sh", "-c", "mv ~/.docker ~/.d2 && mv ~/.d2 ~/.docker"], cwd=home,
                         policy="full-access")
    assert control.exit_code == 0


def test_a_relative_hidden_path_is_the_runs(home, monkeypatch):
    project = home / "work"
    (project / ".env").write_text("TOKEN=s3cr3t\n")
    monkeypatch.chdir("/")
    policy = corral.SandboxPolicy.read_only(deny_read=(".env", "*.pem"))
    result = corral.run(["cat", ".env"], cwd=project, policy=policy)
    assert result.exit_code != 0 and "s3cr3t" not in result.stdout
    assert [(d.kind.value, d.target) for d in result.denials] == [("read", f"{project}/.env")]


def test_a_hidden_link_to_nothing_hides_nothing_and_fails_no_run(home):
    """A command may leave one there (~/.git-credentials is hidden by default)."""
    (home / ".git-credentials").symlink_to("/nonexistent/corral")
    result = corral.run(["true"], cwd=home / "work")
    assert result.exit_code == 0, result.stderr


FORKED = """
import os, sys, time, corral
corral.run(["true"], cwd=sys.argv[1])
servers = []
for entry in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{entry}/stat") as f:
            parent = int(f.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{entry}/cmdline", "rb") as f:
            if f.read().startswith(b"_cover_server") and parent == os.getpid():
                servers.append(entry)
    except OSError:
        pass
child = os.fork()
if child == 0:
    os.close(1)
    time.sleep(30)
    os._exit(0)
print(child, " ".join(servers), flush=True)
"""


def test_a_forked_child_does_not_keep_the_cover_server(home):
    """The server ends when its corral does, even if a child forked after a
    covered run lives on."""
    process = subprocess.run([sys.executable, "-c", FORKED, str(home / "work")],
                             capture_output=True, text=True, timeout=60)
    child, *servers = [int(pid) for pid in process.stdout.split()]
    try:
        assert servers, process.stderr
        deadline = time.monotonic() + 10
        while set(servers) & set(_cover_servers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not set(servers) & set(_cover_servers()), "the cover server outlived its corral"
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_link_on_the_way_to_a_hidden_path_stays_that_link(home):
    """~/.config a dotfiles link, ~/.config/gh hidden, the home writable:
    replacing the link would leave the next run nothing to cover."""
    (home / "dotfiles" / "config" / "gh").mkdir(parents=True)
    (home / "dotfiles" / "config" / "gh" / "hosts.yml").write_text("TOKEN=ghp_SECRET\n")
    (home / ".config").symlink_to(home / "dotfiles" / "config")
    moved = corral.run(["sh", "-c", "mv ~/.config ~/.config-old && mkdir ~/.config"], cwd=home)
    assert moved.exit_code != 0 and (home / ".config").is_symlink()
    read = corral.run(["sh", "-c", "cat ~/dotfiles/config/gh/hosts.yml"], cwd=home)
    assert "SECRET" not in read.stdout
    control = corral.run(["sh", "-c", "mv ~/.config ~/.config-old && mv ~/.config-old ~/.config"],
                         cwd=home, policy="full-access")
    assert control.exit_code == 0


def test_a_hidden_path_the_sandbox_does_not_show_fails_no_run(host_dir):
    """The host's /tmp is not the sandbox's: nothing to cover there."""
    import tempfile

    secret = Path(tempfile.mkdtemp(prefix="corral-secret-", dir="/tmp"))
    try:
        (secret / "token").write_text("s3cr3t\n")
        policy = corral.SandboxPolicy.read_only(deny_read=(str(secret),))
        result = corral.run(["sh", "-c", f"cat {secret}/token; true"], cwd=host_dir,
                            policy=policy)
        assert result.exit_code == 0 and "s3cr3t" not in result.stdout
    finally:
        import shutil

        shutil.rmtree(secret)
