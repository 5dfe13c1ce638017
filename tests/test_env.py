"""The environment builder: inheritance policies, secrets, set/unset, errors."""

from __future__ import annotations

import os
from types import MappingProxyType

import pytest

from corral import EnvInherit, build_env
from corral._env import SECRET_NAME_PARTS, looks_like_secret, parse_env_assignment

SECRETS = {
    "GITHUB_TOKEN": "t", "aws_secret_access_key": "s", "MY_PASSWORD": "p",
    "OPENAI_API_KEY": "k",
}
CORE = {
    "PATH": "/bin", "HOME": "/home/a", "USER": "a", "SHELL": "/bin/sh", "TMPDIR": "/tmp",
    "LANG": "C.UTF-8", "TERM": "xterm", "LC_ALL": "C", "LC_CTYPE": "C.UTF-8",
}
OTHER = {"EDITOR": "vi", "path": "lower-case is not PATH", "XLC_FOO": "not LC_"}
# Read-only, so any attempt by build_env to mutate its source fails loudly.
HOST = MappingProxyType({**CORE, **OTHER, **SECRETS})


@pytest.mark.parametrize(
    ("inherit", "expected"),
    [
        (EnvInherit.ALL, {**CORE, **OTHER}),
        ("all", {**CORE, **OTHER}),
        (EnvInherit.CORE, CORE),
        ("core", CORE),
        (EnvInherit.NONE, {}),
        ("none", {}),
    ],
)
def test_inherit_policies(inherit, expected):
    assert build_env(inherit, source=HOST) == expected


def test_default_is_all_without_secrets():
    assert build_env(source=HOST) == {**CORE, **OTHER}


@pytest.mark.parametrize("name", list(SECRETS) + ["OpenAI_Api_Key", "db_Password", "x_token_y"])
def test_secret_names(name):
    assert looks_like_secret(name)


@pytest.mark.parametrize("name", ["PATH", "HOME", "EDITOR", "LC_ALL", "KE_Y", ""])
def test_ordinary_names(name):
    assert not looks_like_secret(name)


def test_secret_patterns():
    assert SECRET_NAME_PARTS == ("KEY", "SECRET", "TOKEN", "PASSWORD")


def test_secrets_kept_on_request():
    assert build_env(source=HOST, exclude_secrets=False) == HOST
    # Secrets never pass the core filter, whatever exclude_secrets says.
    assert build_env("core", source=HOST, exclude_secrets=False) == CORE


def test_set_wins_over_every_filter():
    env = build_env(
        "core",
        set={"API_TOKEN": "explicit", "PATH": "/usr/bin", "EDITOR": "ed", "EMPTY": ""},
        unset=["PATH", "API_TOKEN"],
        source=HOST,
    )
    assert env["API_TOKEN"] == "explicit"   # secret-looking, set explicitly
    assert env["PATH"] == "/usr/bin"        # overrides inherited and unset
    assert env["EDITOR"] == "ed"            # not in core, set explicitly
    assert env["EMPTY"] == ""


def test_unset_removes_exact_names():
    env = build_env(unset=["EDITOR", "lang", "NOT_THERE"], source=HOST)
    assert "EDITOR" not in env
    assert env["LANG"] == "C.UTF-8"         # "lang" is a different name
    assert env == {k: v for k, v in {**CORE, **OTHER}.items() if k != "EDITOR"}


def test_unset_accepts_any_iterable():
    assert "EDITOR" not in build_env(unset=(n for n in ["EDITOR"]), source=HOST)


def test_unknown_inherit():
    with pytest.raises(ValueError, match="'some'.*all, core, none"):
        build_env("some", source=HOST)
    with pytest.raises(ValueError, match="all, core, none"):
        build_env("ALL", source=HOST)


@pytest.mark.parametrize("name", ["", "A=B", "=A", "A\0B"])
def test_invalid_names(name):
    with pytest.raises(ValueError, match="invalid environment variable name"):
        build_env(set={name: "x"}, source=HOST)
    with pytest.raises(ValueError, match="invalid environment variable name"):
        build_env(unset=[name], source=HOST)


def test_nul_in_value():
    with pytest.raises(ValueError, match="A contains a NUL"):
        build_env(set={"A": "x\0y"}, source=HOST)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("A=1", ("A", "1")), ("A=", ("A", "")), ("A=b=c", ("A", "b=c")), ("A= x ", ("A", " x "))],
)
def test_parse_env_assignment(text, expected):
    assert parse_env_assignment(text) == expected


@pytest.mark.parametrize("text", ["NOEQUALS", "", "=value"])
def test_parse_env_assignment_malformed(text):
    with pytest.raises(ValueError, match=f"expected NAME=VALUE, got {text!r}"):
        parse_env_assignment(text)


def test_parse_env_assignment_nul():
    with pytest.raises(ValueError, match="NUL"):
        parse_env_assignment("A\0B=1")
    with pytest.raises(ValueError, match="NUL"):
        parse_env_assignment("A=1\0")


def test_reads_os_environ_by_default_without_mutating_it(monkeypatch):
    monkeypatch.setenv("CORRAL_TEST_PLAIN", "p")
    monkeypatch.setenv("CORRAL_TEST_SECRET", "s")
    before = dict(os.environ)
    env = build_env(unset=["CORRAL_TEST_UNSET"], set={"CORRAL_TEST_NEW": "n"})
    assert env["CORRAL_TEST_PLAIN"] == "p"
    assert "CORRAL_TEST_SECRET" not in env
    env["CORRAL_TEST_LATER"] = "1"
    assert dict(os.environ) == before


def test_result_is_a_new_dict():
    source = {"A": "1"}
    env = build_env(source=source)
    env["B"] = "2"
    assert source == {"A": "1"}
