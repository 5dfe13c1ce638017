"""Landlock confinement through the real spawn path, attacked by every write route.

The sandbox policies are not exposed yet; these tests plug a confining
backend into the engine (as the Landlock backend will) and run each attack
twice: confined, where it must fail and leave the outside untouched, and
unconfined (the control), where it must succeed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import corral
import corral._engine
from corral._launch import LaunchSpec
from corral._policy import SandboxPolicy
from corral.sandbox.base import SandboxBackend
from corral.sandbox.landlock import landlock_abi, write_ruleset
from corral.sandbox.seccomp import SUPPORTED_ARCHES, build_program

ABI, WHY = landlock_abi()
pytestmark = pytest.mark.skipif(not ABI, reason=f"no Landlock here: {WHY}")


class ConfiningBackend(SandboxBackend):
    """Writes only beneath ``roots``; seccomp on top, as the backend will do."""

    name = "landlock-test"

    def __init__(self, roots: list[str]) -> None:
        self.roots = roots

    def transform(self, launch: LaunchSpec, policy: SandboxPolicy) -> LaunchSpec:
        from corral._record import replace
        import platform

        ruleset = write_ruleset([*self.roots, "/dev/null"])
        program = build_program() if platform.machine() in SUPPORTED_ARCHES else None
        return replace(launch, landlock_ruleset=ruleset, seccomp_program=program,
                       owned_fds=(ruleset,))


@pytest.fixture
def tree(tmp_path: Path) -> dict[str, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "file").write_text("original\n")
    (root / "inside").write_text("mine\n")
    return {"root": root, "outside": outside, "file": outside / "file"}


def run(script: str, cwd: Path, confined_to: list[Path] | None, monkeypatch) -> corral.ExecResult:
    if confined_to is not None:
        backend = ConfiningBackend([str(p) for p in confined_to])
        monkeypatch.setattr(corral._engine, "select_backend", lambda policy, cwd: backend)
    else:
        monkeypatch.setattr(corral._engine, "select_backend",
                            lambda policy, cwd: corral.sandbox.select_backend(policy, cwd))
    return corral.run(["sh", "-c", script], cwd=cwd, timeout=20, policy="full-access")


ATTACKS = {
    "create": 'echo evil > "$OUT/new"',
    "append": 'echo evil >> "$OUT/file"',
    "truncate": ': > "$OUT/file"',
    "move out": 'mv inside "$OUT/moved"',
    "hard link then write": 'ln "$OUT/file" link && echo evil >> link',
    "symlink inside pointing out": 'ln -sf "$OUT/file" sym && echo evil >> sym',
    "via /proc/self/root": 'echo evil >> "/proc/self/root$OUT/file"',
    "mkdir": 'mkdir "$OUT/dir"',
    "delete": 'rm "$OUT/file"',
}


def _outside_changed(tree: dict[str, Path]) -> bool:
    names = sorted(p.name for p in tree["outside"].iterdir())
    return names != ["file"] or tree["file"].read_text() != "original\n"


@pytest.mark.parametrize("name", list(ATTACKS))
def test_writes_outside_the_roots_fail(tree, name, monkeypatch):
    script = f'OUT={tree["outside"]}; {ATTACKS[name]}'
    confined = run(script, tree["root"], [tree["root"]], monkeypatch)
    assert confined.exit_code != 0, confined.aggregated_output
    assert not _outside_changed(tree)
    assert confined.sandbox == "landlock-test"
    control = run(script, tree["root"], None, monkeypatch)
    assert control.exit_code == 0, control.aggregated_output
    assert _outside_changed(tree)


@pytest.mark.parametrize("target", ["/dev/shm", "/tmp"])
def test_shared_temporary_directories_are_outside(target, monkeypatch, tmp_path):
    probe = f"{target}/corral-landlock-probe-{os.getpid()}"
    try:
        confined = run(f"echo x > {probe}", tmp_path, [tmp_path], monkeypatch)
        assert confined.exit_code != 0 and not os.path.exists(probe)
        control = run(f"echo x > {probe}", tmp_path, None, monkeypatch)
        assert control.exit_code == 0 and os.path.exists(probe)
    finally:
        if os.path.exists(probe):
            os.unlink(probe)


def test_work_inside_the_root_is_unaffected(tree, monkeypatch):
    script = ("mkdir -p a/b && echo ok > a/b/c && mv a/b/c a/d && ln -s d a/e && cat a/e "
              "&& rm -r a && echo done > /dev/null && cat inside")
    result = run(script, tree["root"], [tree["root"]], monkeypatch)
    assert result.exit_code == 0, result.aggregated_output
    assert result.stdout == "ok\nmine\n"


@pytest.mark.skipif(ABI < 6, reason="signal scoping needs Landlock ABI 6")
def test_cannot_signal_a_process_outside(tmp_path, monkeypatch):
    import subprocess

    victim = subprocess.Popen(["sleep", "30"])
    try:
        script = f"kill -0 {victim.pid}"
        assert run(script, tmp_path, [tmp_path], monkeypatch).exit_code != 0
        assert run(script, tmp_path, None, monkeypatch).exit_code == 0
        assert victim.poll() is None
    finally:
        victim.kill()
        victim.wait()


def test_privileged_calls_fail_inside(tmp_path, monkeypatch):
    if os.uname().machine not in SUPPORTED_ARCHES:
        pytest.skip("no seccomp table here")
    script = "unshare --user true"
    assert run(script, tmp_path, [tmp_path], monkeypatch).exit_code != 0
    control = run(script, tmp_path, None, monkeypatch)
    if control.exit_code != 0:
        pytest.skip("user namespaces are unavailable here: no control")
