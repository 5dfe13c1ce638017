"""The environment builder."""

from __future__ import annotations

import os

import pytest

from corral import EnvInherit, build_env
from corral._env import looks_like_secret, parse_env_assignment

HOST = {
    "PATH": "/bin", "HOME": "/home/a", "LANG": "C.UTF-8", "LC_ALL": "C", "TERM": "xterm",
    "EDITOR": "vi", "GITHUB_TOKEN": "t", "aws_secret_access_key": "s", "MY_PASSWORD": "p",
    "OPENAI_API_KEY": "k",
}


def test_inherit_all_drops_secrets_by_default():
    env = build_env(source=HOST)
    assert env == {k: HOST[k] for k in ("PATH", "HOME", "LANG", "LC_ALL", "TERM", "EDITOR")}


def test_secrets_kept_on_request():
    assert build_env(source=HOST, exclude_secrets=False) == HOST


def test_core_and_none():
    assert set(build_env("core", source=HOST)) == {"PATH", "HOME", "LANG", "LC_ALL", "TERM"}
    assert build_env(EnvInherit.NONE, source=HOST) == {}


def test_set_wins_and_unset_removes():
    env = build_env("none", set={"API_TOKEN": "explicit", "A": "1"}, source=HOST)
    assert env == {"API_TOKEN": "explicit", "A": "1"}
    assert "EDITOR" not in build_env(unset=["EDITOR"], source=HOST)


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "aws_secret_access_key", "MY_PASSWORD",
                                  "OpenAI_Api_Key"])
def test_looks_like_secret(name):
    assert looks_like_secret(name)
    assert not looks_like_secret("PATH")


def test_errors():
    with pytest.raises(ValueError, match="all, core, none"):
        build_env("some")
    with pytest.raises(ValueError, match="name"):
        build_env(set={"A=B": "x"})
    with pytest.raises(ValueError, match="NUL"):
        build_env(set={"A": "x\0"})
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_env_assignment("NOEQUALS")
    assert parse_env_assignment("A=") == ("A", "")
    assert parse_env_assignment("A=b=c") == ("A", "b=c")


def test_host_environment_untouched(monkeypatch):
    monkeypatch.setenv("CORRAL_TEST_SECRET", "x")
    before = dict(os.environ)
    env = build_env()
    assert "CORRAL_TEST_SECRET" not in env
    env["NEW"] = "1"
    assert dict(os.environ) == before
