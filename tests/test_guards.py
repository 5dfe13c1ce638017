"""Placeholders for missing protected paths, without a sandbox around them."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from corral.sandbox import guards


def _identities(paths: list[Path]) -> set[tuple[int, int]]:
    return {(p.lstat().st_dev, p.lstat().st_ino) for p in paths}


def test_a_runs_placeholders_are_links_to_one_socket(host_dir: Path) -> None:
    paths = [host_dir / ".envrc", host_dir / ".bashrc", host_dir / ".mcp.json"]
    guard, bound = guards.guard_placeholders(tuple(map(str, paths)))
    assert bound == tuple(map(str, paths))
    assert all(stat.S_ISSOCK(p.lstat().st_mode) for p in paths)
    assert len(_identities(paths)) == 1 and paths[0].lstat().st_nlink == 3
    guard.release()
    assert not any(os.path.lexists(p) for p in paths)


def test_where_no_link_can_be_made_each_placeholder_is_its_own_socket(
        host_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cross_device(source: str, target: str) -> None:
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV))

    monkeypatch.setattr(guards.os, "link", cross_device)
    paths = [host_dir / ".envrc", host_dir / ".bashrc"]
    guard, bound = guards.guard_placeholders(tuple(map(str, paths)))
    assert bound == tuple(map(str, paths)) and len(_identities(paths)) == 2
    guard.release()
    assert not any(os.path.lexists(p) for p in paths)


def test_a_link_another_run_still_uses_is_kept(host_dir: Path) -> None:
    """Runs share inodes across names now: a sweep keeps by path, not inode."""
    first, shared = host_dir / ".envrc", host_dir / ".bashrc"
    guard_a, _ = guards.guard_placeholders((str(first), str(shared)))
    guard_b, bound = guards.guard_placeholders((str(shared),))  # claims A's link
    assert bound == (str(shared),)
    guard_a.release()
    assert not first.exists() and stat.S_ISSOCK(shared.lstat().st_mode)
    guard_b.release()
    assert not os.path.lexists(shared)


def test_the_sandbox_cannot_let_go_of_corrals_hold(host_dir: Path) -> None:
    """The sandbox's hold is an open file of its own: unlocking it (a command
    that reached it) leaves the run live while corral holds its own, and
    the run ends only when both have let go."""
    import fcntl

    guard, _ = guards.guard_placeholders((str(host_dir / ".envrc"),))
    sandbox = guard.sandbox_hold()
    try:
        fcntl.flock(sandbox, fcntl.LOCK_UN)
        assert guards._held(guard.hold)
        fcntl.flock(sandbox, fcntl.LOCK_SH)
        os.close(guard.lock_fd)
        guard.lock_fd = os.open(os.devnull, os.O_RDONLY)  # corral gone, the sandbox not
        assert guards._held(guard.hold)
    finally:
        os.close(sandbox)
    assert not guards._held(guard.hold)
    guard.release(patience=0)
