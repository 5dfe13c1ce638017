"""The MCP server's settings: from flags and a TOML file, validated.

The keys are ``corral run``'s option names without the dashes, so one
vocabulary serves the command line, the config file and the server::

    policy = "workspace-write"        # read-only | workspace-write | full-access
    writable = ["~/.cache/pip"]
    network = false
    allow-unix-socket = []
    deny-read = []
    accept-weaker = []
    approval = "on-request"           # untrusted | on-failure | on-request | never
    rules = ["~/team.rules"]
    timeout = 60                      # seconds; "none" for no limit
    max-output-tokens = 10000

Flags given on the command line win over the file.
"""

from __future__ import annotations

import os

from .._errors import CorralError, RequestError
from .._record import record, replace

__all__ = ["ConfigError", "ServerConfig", "load_config"]

_POLICIES = ("workspace-write", "read-only", "full-access")
_APPROVALS = ("untrusted", "on-failure", "on-request", "never")
DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_OUTPUT_TOKENS = 10_000


class ConfigError(CorralError, ValueError):
    """A setting that cannot be used; the message names the file and key."""


@record
class ServerConfig:
    """What ``corral mcp`` runs commands with (see the module docstring)."""

    policy: str = "workspace-write"
    writable: tuple[str, ...] = ()
    network: bool = False
    allow_unix_socket: tuple[str, ...] = ()
    deny_read: tuple[str, ...] = ()
    accept_weaker: tuple[str, ...] = ()
    approval: str = "on-request"
    rules: tuple[str, ...] = ()
    timeout: float | None = DEFAULT_TIMEOUT
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS

    def __post_init__(self) -> None:
        if self.policy not in _POLICIES:
            raise ConfigError(f"policy {self.policy!r} is not one of {', '.join(_POLICIES)}")
        if self.approval not in _APPROVALS:
            raise ConfigError(f"approval {self.approval!r} is not one of {', '.join(_APPROVALS)}")
        if self.timeout is not None:
            from .._request import checked_wait

            try:
                checked_wait("timeout", self.timeout)
            except RequestError as exc:
                raise ConfigError(str(exc)) from None
        if self.max_output_tokens < 1:
            raise ConfigError(f"max-output-tokens must be at least 1, not {self.max_output_tokens}")

    def merged(self, **flags: object) -> ServerConfig:
        """This configuration with the flags that were given (not None) on top."""
        return replace(self, **{k: v for k, v in flags.items() if v is not None and v != ()})


# key -> (field, kind): kind is "str", "bool", "paths", "names", "seconds" or "count"
_KEYS = {
    "policy": ("policy", "str"), "writable": ("writable", "paths"), "network": ("network", "bool"),
    "allow-unix-socket": ("allow_unix_socket", "paths"), "deny-read": ("deny_read", "paths"),
    "accept-weaker": ("accept_weaker", "names"), "approval": ("approval", "str"),
    "rules": ("rules", "paths"), "timeout": ("timeout", "seconds"),
    "max-output-tokens": ("max_output_tokens", "count"),
}


def load_config(path: str) -> ServerConfig:
    """The settings of the TOML file at ``path``.  Raises :class:`ConfigError`."""
    import tomllib

    try:
        with open(os.path.expanduser(path), "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    values: dict[str, object] = {}
    for key, value in data.items():
        if key not in _KEYS:
            raise ConfigError(f"{path}: unknown key {key!r} (the keys are "
                              f"{', '.join(_KEYS)})")
        field, kind = _KEYS[key]
        values[field] = _value(path, key, kind, value)
    try:
        return ServerConfig(**values)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _value(path: str, key: str, kind: str, value: object) -> object:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(f"{path}: {key} must be {expected}, not {value!r}")

    if kind == "str":
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if kind in ("paths", "names"):
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise wrong("a list of strings")
        return tuple(os.path.expanduser(v) for v in value) if kind == "paths" else tuple(value)
    if kind == "seconds":
        if value == "none":
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise wrong('a positive number of seconds or "none"')
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise wrong("a positive whole number")
    return value
