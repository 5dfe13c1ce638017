"""Builds corral's two small C extensions; everything else is in pyproject.toml.

``_cspawn`` (Linux only) is the spawn primitive; ``_ccount`` counts newlines
in captured output.  Without them corral falls back to its portable spawn
path and to ``bytes.count``.
"""

import sys

from setuptools import Extension, setup

FLAGS = ["-std=gnu11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]

ext_modules = [Extension("corral._ccount", sources=["src/corral/_ccount.c"], extra_compile_args=FLAGS)]
if sys.platform.startswith("linux"):
    ext_modules.append(
        Extension(
            "corral._cspawn",
            sources=["src/corral/_cspawn.c"],
            extra_compile_args=FLAGS,
        )
    )

setup(ext_modules=ext_modules)
