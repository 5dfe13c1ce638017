"""plan_workspace: which roots are writable and what stays protected in them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import corral
from corral.sandbox.workspace import plan_workspace


def _plan(cwd: Path, **kwargs: object):  # type: ignore[no-untyped-def]
    return plan_workspace(corral.SandboxPolicy.workspace_write(**kwargs), str(cwd))  # type: ignore[arg-type]


def test_a_plain_directory(tmp_path):
    (tmp_path / ".vscode").mkdir()
    plan = _plan(tmp_path)
    assert plan.roots == (str(tmp_path),)
    assert plan.protected == (str(tmp_path / ".vscode"),)
    assert str(tmp_path / ".envrc") in plan.missing
    # .git/hooks has no parent here: the command's own `git init` makes it.
    assert not any("/.git/" in path for path in plan.missing + plan.pinned)


def test_dangling_links_protect_what_they_name(tmp_path):
    (tmp_path / ".envrc").symlink_to("sub/envrc")  # inside, its directory exists
    (tmp_path / "sub").mkdir()
    (tmp_path / ".profile").symlink_to("/nonexistent/profile")  # outside every root
    (tmp_path / ".zshrc").symlink_to(".zshrc")  # a loop names nothing
    (tmp_path / ".bashrc").symlink_to("sub")  # not dangling: bound where it points
    plan = _plan(tmp_path)
    assert str(tmp_path / "sub" / "envrc") in plan.missing and str(tmp_path / "sub") in plan.pinned
    assert str(tmp_path / "sub") in plan.protected  # where .bashrc points
    # The links themselves too: each could be removed and a file made in its place.
    for name in (".envrc", ".profile", ".zshrc", ".bashrc"):
        assert str(tmp_path / name) in plan.protected
    assert not any(path.startswith("/nonexistent") for path in plan.protected + plan.missing)


def test_links_of_any_length_or_in_a_loop_are_located_as_realpath_would(tmp_path):
    """What a command links to is its own choice: thousands of components,
    chains of links, loops.  The plan of the next run must still be made."""
    (tmp_path / "store" / "hooks").mkdir(parents=True)
    (tmp_path / "a").symlink_to("./" * 2000 + "store")  # past Python's recursion limit
    (tmp_path / "b").symlink_to("a")
    (tmp_path / ".git").symlink_to("b")
    (tmp_path / "loop").symlink_to("loop")
    plan = _plan(tmp_path, protected=(".git/hooks", "loop/x"))
    store = os.path.realpath(tmp_path / ".git")
    assert store == str(tmp_path / "store") and f"{store}/hooks" in plan.protected
    for link in ("a", "b", ".git"):  # each stays that link
        assert str(tmp_path / link) in plan.pinned


def _opened(path: Path, action) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``action()`` opens ``path`` (inotify's IN_OPEN, which an
    ``O_PATH`` look does not raise)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    in_open, in_nonblock = 0x20, 0o4000
    fd = libc.inotify_init1(in_nonblock)
    assert fd >= 0 and libc.inotify_add_watch(fd, os.fsencode(path), in_open) >= 0
    try:
        action()
        try:
            return bool(os.read(fd, 4096))
        except BlockingIOError:
            return False
    finally:
        os.close(fd)


def test_what_a_command_links_a_git_file_to_is_never_opened_unless_a_file(tmp_path):
    """A device can act on being opened (a watchdog, a serial line): what
    the plan reads is looked at before it is opened.  A FIFO stands in for
    the device here (its open raises IN_OPEN as a device's would)."""
    ws = tmp_path / "ws"
    (ws / "wt").mkdir(parents=True)
    (ws / ".git").write_text("gitdir: wt\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (ws / "wt" / "gitdir").symlink_to(fifo)
    assert not _opened(fifo, lambda: _plan(ws))
    assert _opened(fifo, lambda: os.close(os.open(ws / "wt" / "gitdir",
                                                 os.O_RDONLY | os.O_NONBLOCK)))  # the control


def test_a_repository_and_its_submodules(tmp_path):
    git = tmp_path / ".git"
    (git / "hooks").mkdir(parents=True)
    (git / "config").write_text("")
    module = git / "modules" / "lib" / "nested"
    (module / "hooks").mkdir(parents=True)
    (module / "HEAD").write_text("ref: refs/heads/main\n")
    (module / "config").write_text("")
    plan = _plan(tmp_path)
    for path in (git / "hooks", git / "config", module / "hooks", module / "config"):
        assert str(path) in plan.protected
    # None of the directories leading to a protected path can be renamed away.
    assert {str(git), str(git / "modules"), str(module)} <= set(plan.pinned)


def test_a_linked_worktree_adds_its_git_directories(tmp_path):
    common = tmp_path / "main" / ".git"
    gitdir = common / "worktrees" / "wt"
    gitdir.mkdir(parents=True)
    (common / "hooks").mkdir()
    (common / "config").write_text("")
    (gitdir / "commondir").write_text("../..\n")
    work = tmp_path / "wt"
    work.mkdir()
    (work / ".git").write_text(f"gitdir: {gitdir}\n")
    (gitdir / "gitdir").write_text(f"{work / '.git'}\n")  # git's record of the worktree
    plan = _plan(work)
    assert set(plan.roots) == {str(work), str(gitdir), str(common)}
    for path in (work / ".git", gitdir / "commondir", gitdir / "gitdir", common / "hooks",
                 common / "config"):
        assert str(path) in plan.protected
    assert str(gitdir / "hooks") in plan.missing


def test_a_git_pointer_nothing_confirms_is_not_followed(tmp_path):
    """A sandboxed command can write a .git file where there is none: the
    directory it names must not become writable to the next run."""
    outside = tmp_path / "outside"
    outside.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / ".git").write_text(f"gitdir: {outside}\n")
    plan = _plan(work)
    assert plan.roots == (str(work),)
    assert str(work / ".git") in plan.protected
    # Nor a worktree directory of another checkout, nor a common directory
    # the pointer's own directory names, where git never puts one.
    other = tmp_path / "main" / ".git" / "worktrees" / "other"
    other.mkdir(parents=True)
    (other / "gitdir").write_text(f"{tmp_path / 'other' / '.git'}\n")
    (work / ".git").write_text(f"gitdir: {other}\n")
    assert _plan(work).roots == (str(work),)
    forged = work / "forged"
    forged.mkdir()
    (forged / "gitdir").write_text(f"{work / '.git'}\n")
    (forged / "commondir").write_text(f"{outside}\n")
    (work / ".git").write_text("gitdir: forged\n")
    assert _plan(work).roots == (str(work),)


def test_a_submodule_checkout_adds_the_git_directory_that_names_it(tmp_path):
    gitdir = tmp_path / "super" / ".git" / "modules" / "sub"
    gitdir.mkdir(parents=True)
    work = tmp_path / "sub"
    work.mkdir()
    (gitdir / "config").write_text("[core]\n\tbare = false\n\tworktree = ../../../../sub\n")
    (work / ".git").write_text(f"gitdir: {gitdir}\n")
    plan = _plan(work)
    assert set(plan.roots) == {str(work), str(gitdir)}
    assert str(gitdir / "config") in plan.protected


def test_extra_roots_absolute_entries_and_errors(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    plan = _plan(tmp_path / "home", writable=(str(tmp_path),), protected=("~/.config/corral",),
                 deny_read=())
    assert plan.roots == (str(tmp_path), str(home))
    assert plan.missing == (str(home / ".config" / "corral"),)
    with pytest.raises(corral.PolicyError, match="does not exist"):
        _plan(tmp_path, writable=(str(tmp_path / "nope"),))
    (tmp_path / "file").write_text("")
    with pytest.raises(corral.PolicyError, match="not a directory"):
        _plan(tmp_path, writable=(str(tmp_path / "file"),))


@pytest.mark.parametrize("bad", [("../escape",), "single-string", ("",)])
def test_bad_protected_entries_are_refused(bad):
    with pytest.raises(corral.PolicyError):
        corral.SandboxPolicy.workspace_write(protected=bad)


def test_writable_roots_belong_to_workspace_write():
    with pytest.raises(corral.PolicyError, match="workspace-write"):
        corral.SandboxPolicy(corral.PolicyKind.READ_ONLY, writable=(os.getcwd(),))


@pytest.mark.parametrize("home", ["", "relative/home"])
def test_a_home_that_is_no_absolute_path_is_the_users_own(monkeypatch, home):
    """``~`` named "/.ssh" with HOME empty, and a directory of the cwd's with
    HOME relative, while ssh and git find the user's own through the
    password database."""
    import pwd

    from corral.sandbox.workspace import deny_read_paths, home_directory

    monkeypatch.setenv("HOME", home)
    own = pwd.getpwuid(os.getuid()).pw_dir
    assert home_directory() == own
    policy = corral.SandboxPolicy.read_only(deny_read=("~/.corral-test-secret",))
    monkeypatch.setattr(os.path, "exists", lambda path: True)  # what would be hidden
    assert deny_read_paths(policy, "/") == [f"{own.rstrip('/')}/.corral-test-secret"]
