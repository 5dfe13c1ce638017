"""Builds corral's small C extensions; everything else is in pyproject.toml.

``_cspawn`` (Linux only) is the spawn primitive; ``_cgate`` (Linux only) the
system calls of the Unix socket gate; ``_ccount`` counts newlines in captured
output.  Without them corral falls back to its portable spawn path (no
sandbox) and to ``bytes.count``.  ``_sandbox_init`` (Linux only) is not an
extension but a program of its own, built beside them: bubblewrap runs it
first in its sandboxes; so is ``_cover_server``, which serves the
filesystems that cover deny-read paths.
"""

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import LinkError

# The code runs beside sandboxed commands and reads what they pass: an
# overflow must stop the process, not corrupt it.
FLAGS = ["-std=gnu11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter",
         "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"]

ext_modules = [Extension("corral._ccount", sources=["src/corral/_ccount.c"], extra_compile_args=FLAGS)]
if sys.platform.startswith("linux"):
    ext_modules += [
        Extension(f"corral.{name}", sources=[f"src/corral/{name}.c"], extra_compile_args=FLAGS)
        for name in ("_cspawn", "_cgate")
    ]

class BuildWithPrograms(build_ext):
    """Builds the extensions, then the helper programs into the same package
    directory (the source tree for an editable install)."""

    programs = ("_sandbox_init", "_cover_server") if sys.platform.startswith("linux") else ()

    def run(self) -> None:
        super().run()
        package_dir = os.path.dirname(self.get_ext_fullpath("corral._ccount"))
        for name in self.programs:
            objects = self.compiler.compile([f"src/corral/{name}.c"], output_dir=self.build_temp,
                                            extra_postargs=FLAGS)
            # Static, where the C library has what that takes: the init starts
            # in every sandbox, and without the dynamic loader's work a run
            # takes about 0.5 ms less (bench/bench_sandbox.py); position
            # independent, so that its addresses stay random.
            try:
                self.compiler.link_executable(objects, name, output_dir=package_dir,
                                              libraries=["pthread"], extra_postargs=["-static-pie"])
            except LinkError:
                self.compiler.link_executable(objects, name, output_dir=package_dir,
                                              libraries=["pthread"])


setup(ext_modules=ext_modules, cmdclass={"build_ext": BuildWithPrograms})
