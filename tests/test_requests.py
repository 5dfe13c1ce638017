"""Every malformed request or unstartable command gives its typed error."""

from __future__ import annotations

import errno
import os

import pytest

import corral


@pytest.mark.parametrize(
    ("kwargs", "error", "words"),
    [
        ({"command": []}, corral.EmptyCommandError, "empty"),
        ({"command": ["echo", "a\0b"]}, corral.NulByteError, "argv[1]"),
        ({"command": ["echo"], "env": {"A": "x\0"}}, corral.NulByteError, "environment"),
        ({"command": ["echo"], "cwd": "/tmp\0x"}, corral.NulByteError, "cwd"),
        ({"command": "echo hi"}, corral.RequestError, "list of arguments"),
        ({"command": [""]}, corral.RequestError, "empty string"),
        ({"command": ["echo", 3]}, corral.RequestError, "argv[1] must be str"),
        ({"command": ["echo"], "timeout": -1}, corral.RequestError, "timeout"),
        ({"command": ["echo"], "timeout": "5"}, corral.RequestError, "timeout"),
        ({"command": ["echo"], "policy": "yolo"}, corral.PolicyError, "full-access"),
        ({"command": ["echo"], "env": {"A=B": "x"}}, corral.RequestError, "variable name"),
    ],
)
def test_bad_requests(kwargs, error, words):
    command = kwargs.pop("command")
    with pytest.raises(error, match=None) as info:
        corral.run(command, **kwargs)
    assert words in str(info.value)
    assert isinstance(info.value, corral.CorralError)


@pytest.mark.parametrize("given", [{"timeout": 1e27}, {"timeout": float("inf")},
                                   {"timeout": float("nan")}, {"timeout": 10**400},
                                   {"timeout": 10**5000},
                                   {"drain_timeout": 1e27}, {"drain_timeout": float("nan")}])
def test_a_wait_too_long_to_make_is_a_request_error(given):
    """A timeout no poll() can wait (more than about 24 days) once raised
    OverflowError mid-run; it is refused before anything starts."""
    with pytest.raises(corral.RequestError, match="at most 2147483.647"):
        corral.run(["sleep", "77"], policy="full-access", **given)


def test_the_longest_wait_is_one_a_run_can_make():
    from corral._request import MAX_WAIT_SECONDS

    result = corral.run(["sleep", "0.1"], timeout=MAX_WAIT_SECONDS,
                        drain_timeout=MAX_WAIT_SECONDS, policy="full-access")
    assert result.exit_code == 0 and not result.timed_out


def test_program_not_found():
    with pytest.raises(corral.ProgramNotFoundError) as info:
        corral.run(["corral-no-such-program-xyz"], policy="full-access")
    assert info.value.errno == errno.ENOENT
    assert "not found" in str(info.value) and "corral-no-such-program-xyz" in str(info.value)


def test_program_path_not_found(tmp_path):
    with pytest.raises(corral.ProgramNotFoundError):
        corral.run([str(tmp_path / "missing")], policy="full-access")


def test_not_executable(tmp_path):
    script = tmp_path / "script.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    with pytest.raises(corral.NotExecutableError) as info:
        corral.run([str(script)], policy="full-access")
    assert info.value.errno == errno.EACCES
    on_path = {"PATH": str(tmp_path)}
    with pytest.raises(corral.NotExecutableError, match="not executable"):
        corral.run(["script.sh"], env=on_path, policy="full-access")


def test_directory_is_not_executable(tmp_path):
    with pytest.raises(corral.NotExecutableError):
        corral.run([str(tmp_path)], policy="full-access")


def test_missing_cwd(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(corral.CwdNotFoundError) as info:
        corral.run(["true"], cwd=missing, policy="full-access")
    assert str(missing) in str(info.value)


def test_spawn_errors_are_oserrors():
    with pytest.raises(OSError):
        corral.run(["corral-no-such-program-xyz"], policy="full-access")


def test_request_object_and_fields_do_not_mix():
    request = corral.ExecRequest(["true"], policy="full-access")
    assert corral.run(request).exit_code == 0
    with pytest.raises(TypeError, match="ExecRequest"):
        corral.run(request, timeout=3)


def test_env_is_exactly_the_mapping_given():
    result = corral.run(["/usr/bin/env"], env={"ONLY": "this"}, policy="full-access")
    assert result.stdout == "ONLY=this\n"


def test_default_env_drops_secrets(monkeypatch):
    monkeypatch.setenv("CORRAL_TEST_API_TOKEN", "hunter2")
    monkeypatch.setenv("CORRAL_TEST_PLAIN", "visible")
    result = corral.run(["/usr/bin/env"], policy="full-access")
    assert "CORRAL_TEST_PLAIN=visible" in result.stdout
    assert "hunter2" not in result.stdout


def test_arg0_override():
    result = corral.run(["sh", "-c", "echo $0"], arg0="custom-name", policy="full-access")
    assert result.stdout == "custom-name\n"


def test_cwd_is_used(tmp_path):
    assert corral.run(["pwd"], cwd=tmp_path, policy="full-access").stdout.strip() == os.path.realpath(tmp_path)


def test_policy_by_name_and_object():
    by_name = corral.run(["true"], policy="full-access")
    by_object = corral.run(["true"], policy=corral.SandboxPolicy.full_access())
    assert by_name.policy == by_object.policy == "full-access"
    assert by_name.sandbox is None


def test_undecodable_bytes_in_arguments_and_environment_round_trip():
    # Names and values that are not UTF-8 reach Python as surrogate escapes
    # (PEP 383) and must reach the child as the original bytes.
    raw = os.fsdecode(b"caf\xe9")
    result = corral.run(["/usr/bin/env"], env={"RAW": raw}, policy="full-access")
    assert result.stdout_capture.total_bytes == len(b"RAW=caf\xe9\n")
    echoed = corral.run(["printf", "%s", raw], policy="full-access")
    assert echoed.stdout_capture.total_bytes == 4
