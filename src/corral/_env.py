"""The child's environment, built from the host's with an explicit policy.

corral passes a command exactly the mapping it is given; :func:`build_env`
is how that mapping is usually made.  Unlike Codex, secret-looking variables
are dropped by default: agents' sandboxes leaked tokens when they were not.
"""

from __future__ import annotations

import enum
import os
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "CORE_VARIABLES",
    "EnvInherit",
    "SECRET_NAME_PARTS",
    "build_env",
    "looks_like_secret",
    "parse_env_assignment",
]


class EnvInherit(enum.Enum):
    """Which host variables a command inherits; values are the CLI's names."""

    ALL = "all"
    CORE = "core"
    NONE = "none"


#: What ``core`` keeps (plus every ``LC_*``): enough for programs to find
#: their home, their tools, a temp dir, the locale and the terminal type.
CORE_VARIABLES = frozenset(
    "HOME LOGNAME PATH SHELL USER USERNAME TMPDIR TEMP TMP LANG TERM".split()
)
#: A name containing one of these (case-insensitively) looks like a secret.
SECRET_NAME_PARTS = ("KEY", "SECRET", "TOKEN", "PASSWORD")


_secret_search = re.compile("|".join(SECRET_NAME_PARTS), re.IGNORECASE).search


def looks_like_secret(name: str) -> bool:
    """True for names such as ``GITHUB_TOKEN``, ``aws_secret_access_key``."""
    return _secret_search(name) is not None


def _check_variable(name: str, value: str) -> None:
    if not name or "=" in name or "\0" in name:
        raise ValueError(f"invalid environment variable name {name!r}: it must be non-empty, "
                         "without '=' or NUL")
    if "\0" in value:
        raise ValueError(f"environment variable {name} contains a NUL byte")


def build_env(
    inherit: EnvInherit | str = EnvInherit.ALL,
    *,
    set: Mapping[str, str] | None = None,  # noqa: A002 - the natural name at call sites
    unset: Iterable[str] = (),
    exclude_secrets: bool = True,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Returns a new environment mapping for a command.

    In order: take ``source`` (default ``os.environ``) filtered by ``inherit``
    (``all``, ``core`` = :data:`CORE_VARIABLES` and ``LC_*``, or ``none``);
    drop names that :func:`looks_like_secret` unless ``exclude_secrets`` is
    False; drop the names in ``unset``; then apply ``set``, which wins over
    every filter (a secret set explicitly is kept: the caller asked for it).
    Raises ValueError for an unknown ``inherit`` or an invalid name or value.
    """
    try:
        policy = EnvInherit(inherit)
    except ValueError:
        choices = ", ".join(p.value for p in EnvInherit)
        raise ValueError(f"unknown environment inheritance {inherit!r}: choose one of {choices}") from None
    environ = os.environ if source is None else source
    if policy is EnvInherit.ALL:
        env = dict(environ)
    elif policy is EnvInherit.CORE:
        env = {k: v for k, v in environ.items() if k in CORE_VARIABLES or k.startswith("LC_")}
    else:
        env = {}
    if exclude_secrets:
        for name in [k for k in env if _secret_search(k)]:
            del env[name]
    for name in unset:
        env.pop(name, None)
    for name, value in (set or {}).items():
        _check_variable(name, value)
        env[name] = value
    return env


def parse_env_assignment(text: str) -> tuple[str, str]:
    """``"NAME=VALUE"`` -> ``("NAME", "VALUE")`` (the CLI's ``--env``); ``NAME=`` is empty."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    _check_variable(name, value)
    return name, value
