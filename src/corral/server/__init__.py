"""``corral mcp``: corral as the shell tool of any agent, over the Model Context Protocol.

:mod:`.config` reads the server's settings (flags and a TOML file, the same
keys as ``corral run``'s options); :mod:`.app` builds the MCP server on the
official SDK (``pip install 'corral[mcp]'``).
"""

from __future__ import annotations

from .config import ConfigError, ServerConfig, load_config

__all__ = ["ConfigError", "ServerConfig", "load_config"]
