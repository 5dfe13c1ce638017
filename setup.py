"""Builds corral's small C extensions; everything else is in pyproject.toml.

``_cspawn`` (Linux only) is the spawn primitive; ``_cgate`` (Linux only) the
system calls of the Unix socket gate; ``_ccount`` counts newlines in captured
output.  Without them corral falls back to its portable spawn path (no
sandbox) and to ``bytes.count``.
"""

import sys

from setuptools import Extension, setup

FLAGS = ["-std=gnu11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]

ext_modules = [Extension("corral._ccount", sources=["src/corral/_ccount.c"], extra_compile_args=FLAGS)]
if sys.platform.startswith("linux"):
    ext_modules += [
        Extension(f"corral.{name}", sources=[f"src/corral/{name}.c"], extra_compile_args=FLAGS)
        for name in ("_cspawn", "_cgate")
    ]

setup(ext_modules=ext_modules)
