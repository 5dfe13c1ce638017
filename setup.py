"""Builds corral's one C extension, the Linux spawn primitive (see _cspawn.c).

Everything else is declared in pyproject.toml.  On other platforms there is
nothing to compile: corral falls back to its portable spawn path.
"""

import sys

from setuptools import Extension, setup

ext_modules = []
if sys.platform.startswith("linux"):
    ext_modules.append(
        Extension(
            "corral._cspawn",
            sources=["src/corral/_cspawn.c"],
            extra_compile_args=["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    )

setup(ext_modules=ext_modules)
