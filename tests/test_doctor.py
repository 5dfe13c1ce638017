"""`corral doctor` and the machine probe, checked against independent tools."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from corral.sandbox.landlock import LandlockBackend
from corral.sandbox.probe import probe_machine

CORRAL = [sys.executable, "-m", "corral"]


def _doctor(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CORRAL, "doctor", *args], capture_output=True, text=True,
                          timeout=60, **kwargs)  # type: ignore[call-overload]


def test_json_report():
    proc = _doctor("--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    machine = report["machine"]
    for key in ("landlock", "seccomp", "user_namespaces", "user_namespace_capabilities",
                "proc_mount", "bwrap", "sandbox_init", "cgroup"):
        assert set(machine[key]) == {"available", "detail"} and machine[key]["detail"]
    assert machine["landlock"]["available"] == (machine["landlock_abi"] > 0)
    assert not machine["sandbox_init"]["available"] or machine["bwrap"]["available"]
    assert set(report["policies"]) == {"full-access", "read-only", "workspace-write"}


def test_text_report():
    proc = _doctor()
    assert proc.returncode == 0
    for word in ("Landlock", "seccomp", "user namespaces", "bubblewrap", "cgroup v2", "Policies",
                 "workspace-write"):
        assert word in proc.stdout


def test_without_bubblewrap_the_landlock_rung_is_offered_with_what_it_lacks():
    if probe_machine().landlock_abi < LandlockBackend.MINIMUM_ABI:
        pytest.skip("no Landlock ABI 2 here: the policies are refused instead")
    proc = _doctor("--json", env={**os.environ, "CORRAL_BWRAP": "/nonexistent/bwrap"})
    read_only = json.loads(proc.stdout)["policies"]["read-only"]
    assert read_only.startswith("no usable bubblewrap") and "visible-processes" in read_only
    assert "System V IPC" in read_only
    below_scoping = probe_machine().landlock_abi < LandlockBackend.SIGNAL_SCOPING_ABI
    assert ("the gate alone, not the kernel, refuses signals" in read_only) == below_scoping
    # An older kernel's Landlock, as CORRAL_LANDLOCK_ABI stands for one.
    for cap, offered in (("2", True), ("1", False)):
        proc = _doctor("--json", env={**os.environ, "CORRAL_BWRAP": "/nonexistent/bwrap",
                                      "CORRAL_LANDLOCK_ABI": cap})
        report = json.loads(proc.stdout)
        detail = report["machine"]["landlock"]["detail"]
        assert detail == f"ABI {cap} (capped by CORRAL_LANDLOCK_ABI)"
        read_only = report["policies"]["read-only"]
        if offered:
            assert read_only.endswith(
                "at Landlock ABI 2 the gate alone, not the kernel, refuses signals to processes "
                "outside the run, TCP beyond loopback, truncating files outside the writable "
                "roots")
        else:
            assert read_only.startswith("refused here") and "ABI 2 needed" in read_only


def test_a_bad_landlock_abi_cap_is_named_not_a_traceback():
    proc = _doctor(env={**os.environ, "CORRAL_LANDLOCK_ABI": "latest"})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert "CORRAL_LANDLOCK_ABI='latest': give a Landlock ABI version" in proc.stdout


@pytest.mark.skipif(shutil.which("unshare") is None, reason="util-linux unshare is not installed")
def test_user_namespaces_agree_with_unshare():
    independent = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "--pid",
                                  "--fork", "--mount-proc", "true"], capture_output=True)
    probe = probe_machine()
    assert probe.proc_mount.available == (independent.returncode == 0)
    if independent.returncode == 0:
        assert probe.user_namespaces.available and probe.user_namespace_capabilities.available


def test_bwrap_agrees_with_running_it():
    path = shutil.which("bwrap")
    probe = probe_machine()
    if path is None:
        assert not probe.bwrap.available and "not on PATH" in probe.bwrap.detail
        return
    works = subprocess.run([path, "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
                            "--proc", "/proc", "true"], capture_output=True).returncode == 0
    assert probe.bwrap.available == works


def test_bwrap_inside_the_workspace_is_ignored_and_said_so(tmp_path, monkeypatch):
    planted = tmp_path / "bwrap"
    planted.write_text("#!/bin/sh\necho planted\n")
    planted.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    detail = probe_machine().bwrap.detail
    assert not detail.startswith(str(planted))  # the one in use comes first
    assert f"{planted}, first on PATH, is not taken" in detail and "$CORRAL_BWRAP" in detail


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody")
def test_as_an_unprivileged_user():
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"]
    proc = subprocess.run([*drop, *CORRAL, "doctor", "--json"], capture_output=True, text=True,
                          cwd="/", timeout=60)
    if proc.returncode != 0 and "Permission denied" in proc.stderr:
        pytest.skip("this interpreter is not usable by nobody")
    assert proc.returncode == 0, proc.stderr
    machine = json.loads(proc.stdout)["machine"]
    assert machine["root"] is False
    if not machine["cgroup"]["available"]:
        assert "delegat" in machine["cgroup"]["detail"] or "read-only" in machine["cgroup"]["detail"]
