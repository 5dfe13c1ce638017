"""The child's environment, built from the host's with an explicit policy.

corral passes a command exactly the mapping it is given; :func:`build_env`
is how that mapping is usually made.  Unlike Codex, whose ``*KEY*``,
``*SECRET*``, ``*TOKEN*`` excludes are off by default (and agents leaked
tokens), corral drops secret-looking variables by default.
"""

from __future__ import annotations

import enum
import os
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


#: What ``core`` keeps, plus every name starting with ``LC_``: enough for
#: programs to find their home, their tools, a temp dir, the locale and the
#: terminal type.
CORE_VARIABLES = frozenset(
    "HOME LOGNAME PATH SHELL USER USERNAME TMPDIR TEMP TMP LANG TERM".split()
)
#: Upper-case substrings that make a name look like a secret.
SECRET_NAME_PARTS = ("KEY", "SECRET", "TOKEN", "PASSWORD")


def looks_like_secret(name: str) -> bool:
    """True if ``name`` contains any of :data:`SECRET_NAME_PARTS`, ignoring case.

    A substring test, like Codex's ``*KEY*`` globs: ``GITHUB_TOKEN`` and
    ``aws_secret_access_key`` match, and so do harmless names such as
    ``KEYBOARD`` -- dropping too much is the safe way to be wrong.
    """
    upper = name.upper()
    return any(part in upper for part in SECRET_NAME_PARTS)


def _check_name(name: str) -> None:
    if not name or "=" in name or "\0" in name:
        raise ValueError(
            f"invalid environment variable name {name!r}: it must be non-empty "
            "and contain no '=' or NUL"
        )


def _check_value(name: str, value: str) -> None:
    if "\0" in value:
        raise ValueError(f"the value of environment variable {name} contains a NUL byte")


def build_env(
    inherit: EnvInherit | str = EnvInherit.ALL,
    *,
    set: Mapping[str, str] | None = None,  # noqa: A002 - the natural name at call sites
    unset: Iterable[str] = (),
    exclude_secrets: bool = True,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Returns a new environment mapping for a command, in four steps.

    1. Take ``source`` (default :data:`os.environ`) filtered by ``inherit``:
       ``all`` keeps every variable, ``core`` keeps :data:`CORE_VARIABLES`
       and every name starting with ``LC_``, ``none`` keeps nothing.
       Names are compared exactly (case-sensitively).
    2. If ``exclude_secrets`` (the default), drop every name for which
       :func:`looks_like_secret` is true.
    3. Drop the names in ``unset`` (exact names; absent ones are ignored).
    4. Apply ``set``.  It wins over every filter: a secret-looking name, or
       one not in ``core``, set here is kept, since the caller asked for it.

    ``source`` is only read, never modified, and the result is a new dict.
    Inherited entries are taken as they are; the names in ``set`` and
    ``unset`` and the values in ``set`` are checked.

    Raises :class:`ValueError` for an ``inherit`` that is not one of
    ``all``, ``core``, ``none``; for a name that is empty or contains ``=``
    or NUL; and for a value that contains NUL.
    """
    try:
        policy = EnvInherit(inherit)
    except ValueError:
        choices = ", ".join(p.value for p in EnvInherit)
        raise ValueError(
            f"unknown environment inheritance {inherit!r}: expected one of {choices}"
        ) from None
    # Check the caller's input before building anything, so an error never
    # depends on what the host environment happens to contain.
    removed = list(unset)
    for name in removed:
        _check_name(name)
    explicit = dict(set or {})
    for name, value in explicit.items():
        _check_name(name)
        _check_value(name, value)

    environ = os.environ if source is None else source
    if policy is EnvInherit.ALL:
        env = dict(environ)
    elif policy is EnvInherit.CORE:
        env = {k: v for k, v in environ.items() if k in CORE_VARIABLES or k.startswith("LC_")}
    else:
        env = {}
    if exclude_secrets:
        env = {k: v for k, v in env.items() if not looks_like_secret(k)}
    for name in removed:
        env.pop(name, None)
    env.update(explicit)
    return env


def parse_env_assignment(text: str) -> tuple[str, str]:
    """Splits the CLI's ``--env NAME=VALUE`` at the first ``=``.

    ``"A=b=c"`` gives ``("A", "b=c")`` and ``"A="`` gives ``("A", "")``.
    Raises :class:`ValueError` ("expected NAME=VALUE, got ...") when there
    is no ``=`` or the name is empty, and for a NUL in the name or value.
    """
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(f"expected NAME=VALUE, got {text!r}")
    _check_name(name)
    _check_value(name, value)
    return name, value
