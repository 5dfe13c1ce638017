"""The portable spawn path (no C extension: other systems, or no compiler).

On Linux the C path is always used, so these tests switch it off to keep the
fallback working; its containment is the process group.
"""

from __future__ import annotations

import pytest

import corral
import corral._engine
import corral._spawn


@pytest.fixture(autouse=True)
def portable(monkeypatch):
    monkeypatch.setattr(corral._spawn, "_cspawn", None)
    monkeypatch.setattr(corral._engine, "HAVE_NATIVE_SPAWN", False)


def test_runs_and_captures():
    result = corral.run(["sh", "-c", "echo out; echo err >&2; exit 5"], policy="full-access")
    assert (result.exit_code, result.stdout, result.stderr) == (5, "out\n", "err\n")
    assert result.kill_mechanism is corral.KillMechanism.PROCESS_GROUP


def test_timeout_and_signal():
    timed_out = corral.run(["sh", "-c", "echo partial; sleep 30"], timeout=0.3, policy="full-access")
    assert timed_out.timed_out and timed_out.exit_code == 124 and timed_out.stdout == "partial\n"
    signalled = corral.run(["sh", "-c", "kill -KILL $$"], policy="full-access")
    assert signalled.exit_code == 137 and signalled.signal == 9


def test_spawn_errors(tmp_path):
    with pytest.raises(corral.ProgramNotFoundError):
        corral.run([str(tmp_path / "missing")], policy="full-access")
    with pytest.raises(corral.CwdNotFoundError):
        corral.run(["true"], cwd=tmp_path / "missing", policy="full-access")


def test_cgroup_cannot_be_required():
    with pytest.raises(corral.PolicyError, match="C spawn extension"):
        corral.run(["true"], kill_mechanism=corral.KillMechanism.CGROUP, policy="full-access")
